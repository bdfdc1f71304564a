"""Pages and JSON API of this feature."""

from flask import Blueprint
from flask_smorest import Blueprint as ApiBlueprint

pages = Blueprint("projects_filings", __name__, template_folder="templates")
api = ApiBlueprint("projects_filings_api", __name__, url_prefix="/projects/api")
