"""Pages and JSON API of this feature: the credit terms of an approved offering."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask_smorest import Blueprint as ApiBlueprint
from sqlalchemy import select

from services.common.auth import access, current, own_institution
from services.common.errors import AppError

from ..db import db
from .models import OfferingCredit
from .schemas import OfferingCreditOutSchema

pages = Blueprint("credits_offerings", __name__, template_folder="templates")
api = ApiBlueprint("credits_offerings_api", __name__, url_prefix="/credits/api",
                   description="已审批期次的学分信息（学分类别、学分、学时）")


@api.route("/offerings/<int:offering_id>", methods=["GET"])
@access("institution", "reviewer")
@api.response(200, OfferingCreditOutSchema)
@api.doc(security=[{"bearer": []}], summary="期次的学分信息")
def api_offering_credit(offering_id: int) -> Any:
    principal = current()
    assert principal is not None  # @access made sure
    row = db.session().scalars(select(OfferingCredit).where(OfferingCredit.offering_id == offering_id)).first()
    if row is None:
        raise AppError(404, "not_found", "该期次的学分信息不存在（期次尚未审批通过，或审批消息尚未送达）。")
    own_institution(principal, row.institution_id, "该期次的学分信息不存在（期次尚未审批通过，或审批消息尚未送达）。")
    return row
