"""Pages and JSON API of 继续教育管理 → 继教活动-项目管理.

An institution sees its own activities only (another's are "not found"); a reviewer sees all.
The page and the API share the query schema, the scoping (models.activity_query) and paging.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import EXCLUDE, ValidationError

from services.common.auth import access, current, own_institution
from services.common.errors import AppError
from services.common.paging import paginate
from services.common.schemas import strip_blank

from ..db import db
from .models import Activity, activity_query, fmt_decimal, institution_choices
from .schemas import FIELD_LABELS, ActivityOutSchema, ActivityPageSchema, ActivityQuerySchema

pages = Blueprint("checkin_activities", __name__, template_folder="templates")
api = ApiBlueprint("checkin_activities_api", __name__, url_prefix="/checkin/api",
                   description="继教活动：审批通过的项目期次（继续教育管理 → 继教活动-项目管理）")

BEARER = [{"bearer": []}]


def _page_of(args: dict[str, Any]) -> dict[str, Any]:
    """One page of the activities the principal may see; a page past the end is the last page."""
    principal = current()
    assert principal is not None  # @access made sure
    stmt = activity_query(principal, q=args.get("q"), year=args.get("year"),
                          institution_id=args.get("institution_id"))
    return paginate(db.session(), stmt, args)  # activity_query already orders: newest start first


def _get_visible(activity_id: int) -> Activity:
    principal = current()
    assert principal is not None
    activity = db.session().get(Activity, activity_id)
    if activity is None:
        raise AppError(404, "not_found", "该继教活动不存在。")
    own_institution(principal, activity.institution_id, "该继教活动不存在。")
    return activity


def _load_page_args() -> dict[str, Any]:
    """Query arguments of a browser page: blank inputs are missing, unknown ones ignored, bad ones a 422."""
    raw = {k: v.strip() for k, v in request.args.items()}
    try:
        return ActivityQuerySchema().load(strip_blank(raw), unknown=EXCLUDE)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        fields = {FIELD_LABELS.get(k, k): (v[0] if isinstance(v, list) and v else v) for k, v in messages.items()}
        raise AppError(422, "invalid_input", "查询条件有误，请修改后重新查询。", fields) from exc


# ---- pages -------------------------------------------------------------------------------------

@pages.get("/checkin/activities")
@access("institution", "reviewer")
def activity_list() -> Any:
    args = _load_page_args()
    result = _page_of(args)  # a stale link past the end shows the last page
    args["page"] = result["page"]
    keep = {k: v for k, v in args.items() if k in ("q", "year", "institution_id") and v not in (None, "")}
    principal = current()
    assert principal is not None
    # the committee's 申办机构 box; an institution sees its own activities only and gets none
    institutions = institution_choices(db.session()) if principal.role == "reviewer" else []
    chosen = args.get("institution_id")
    if principal.role == "reviewer" and chosen and chosen not in dict(institutions):
        # a host with no activity (an old link): the box still says which host the empty list is of
        institutions.append((chosen, f"申办机构 {chosen}（暂无继教活动）"))
    return render_template("checkin/activities/list.html", result=result, args=args, keep=keep,
                           institutions=institutions, fmt_decimal=fmt_decimal)


@pages.get("/checkin/activities/<int:activity_id>")
@access("institution", "reviewer")
def activity_detail(activity_id: int) -> Any:
    activity = _get_visible(activity_id)
    return render_template("checkin/activities/detail.html", a=activity, fmt_decimal=fmt_decimal)


# ---- JSON API ----------------------------------------------------------------------------------

@api.route("/activities", methods=["GET"])
@access("institution", "reviewer")
@api.arguments(ActivityQuerySchema, location="query")
@api.response(200, ActivityPageSchema)
@api.doc(security=BEARER, summary="继教活动列表（本机构；审核员可见全部）")
def api_activity_list(args: dict[str, Any]) -> Any:
    return _page_of(args)


@api.route("/activities/<int:activity_id>", methods=["GET"])
@access("institution", "reviewer")
@api.response(200, ActivityOutSchema)
@api.doc(security=BEARER, summary="继教活动详情")
def api_activity_detail(activity_id: int) -> Any:
    return _get_visible(activity_id)
