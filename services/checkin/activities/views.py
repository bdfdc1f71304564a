"""Pages and JSON API of this feature."""

from flask import Blueprint
from flask_smorest import Blueprint as ApiBlueprint

pages = Blueprint("checkin_activities", __name__, template_folder="templates")
api = ApiBlueprint("checkin_activities_api", __name__, url_prefix="/checkin/api")
