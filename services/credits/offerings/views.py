"""Pages and JSON API of this feature."""

from flask import Blueprint
from flask_smorest import Blueprint as ApiBlueprint

pages = Blueprint("credits_offerings", __name__, template_folder="templates")
api = ApiBlueprint("credits_offerings_api", __name__, url_prefix="/credits/api")
