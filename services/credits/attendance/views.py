"""JSON API of credits' copy of the check-ins (the pages come with attendance analysis)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint as ApiBlueprint
from sqlalchemy import select

from services.common import pii
from services.common.auth import access, current, own_institution
from services.common.errors import AppError
from services.common.events import CHECKIN_FLAGS

from ..db import db
from .models import AttendanceRecord
from .schemas import AttendanceOutSchema

api = ApiBlueprint("credits_attendance_api", __name__, url_prefix="/credits/api",
                   description="学分系统收到的考勤记录（考勤分析的依据）")


@api.route("/activities/<int:activity_id>/attendance", methods=["GET"])
@access("institution", "reviewer")
@api.response(200, AttendanceOutSchema)
@api.doc(security=[{"bearer": []}], summary="继教活动的考勤记录（身份证号码、手机号码脱敏）")
def api_activity_attendance(activity_id: int) -> Any:
    principal = current()
    assert principal is not None  # @access made sure
    rows = db.session().scalars(select(AttendanceRecord).where(AttendanceRecord.activity_id == activity_id)
                                .order_by(AttendanceRecord.window_starts_at, AttendanceRecord.scanned_at,
                                          AttendanceRecord.id)).all()
    if not rows:
        raise AppError(404, "not_found", "该活动暂无考勤记录（尚无人签到，或签到消息尚未送达）。")
    own_institution(principal, rows[0].institution_id, "该活动暂无考勤记录（尚无人签到，或签到消息尚未送达）。")
    records = [{
        "checkin_id": r.checkin_id, "offering_id": r.offering_id, "window_id": r.window_id,
        "window_kind": r.window_kind, "window_starts_at": r.window_starts_at, "window_ends_at": r.window_ends_at,
        "window_title": r.window_title,
        "name": r.name, "id_masked": pii.masked(r.id_enc),
        "mobile_masked": pii.masked(r.mobile_enc, pii.mask_mobile), "title": r.title, "unit": r.unit,
        "scanned_at": r.scanned_at, "forced": r.forced, "flags": list(r.flags or []),
        "flag_labels": [CHECKIN_FLAGS.get(f, f).rstrip("。") for f in r.flags or []], "received_at": r.received_at,
    } for r in rows]
    return {"activity_id": activity_id, "institution_id": rows[0].institution_id, "count": len(records),
            "records": records}
