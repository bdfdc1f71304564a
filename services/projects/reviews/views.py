"""举办前登记审批: the committee's pages and JSON API (state rules in filings.states)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request
from flask_smorest import Blueprint as ApiBlueprint
from sqlalchemy import select

from services.common import clock
from services.common.auth import access, current
from services.common.errors import AppError
from services.common.inputs import keep_args, load_json, load_query, require_page_version
from services.common.schemas import load_form

from ..audit.models import record
from ..catalogue.services import fmt_decimal
from ..db import db
from ..filings import states
from ..filings.schemas import CancelFormSchema, CancelSchema, FilingOutSchema
from ..filings.services import (
    MIN_DAYS_BEFORE,
    earliest_start,
    end_filing,
    filing_checks,
    filing_dict,
    not_held_labels,
    unheld_refused,
    unheld_warning,
)
from ..filings.views import commit, load_cancel
from ..institutions.models import Institution
from . import services
from .schemas import (
    REVIEW_STATE_LABELS,
    ApproveSchema,
    ReturnFormSchema,
    ReturnSchema,
    ReviewPageSchema,
    ReviewQuerySchema,
    return_refused,
)

pages = Blueprint("projects_reviews", __name__, template_folder="templates")
api = ApiBlueprint("projects_reviews_api", __name__, url_prefix="/projects/api",
                   description="举办前登记审批（继续医学教育委员会）")
BEARER = [{"bearer": []}]
QUERY_LABELS = {"state": "状态", "year": "年度", "institution_id": "申办机构", "q": "检索", "page": "页码",
                "per_page": "每页条数"}


def _me() -> Any:
    p = current()
    assert p is not None
    return p


def _render_detail(filing: Any, errors: dict[str, str] | None = None, status: int = 200,
                   reveal: bool = False, typed_reason: str = "") -> Any:
    info = filing_dict(db.session(), _me(), filing)
    info["not_held_labels"] = not_held_labels(db.session(), filing)
    if reveal:
        info["contact_phone"], info["contact_revealed"] = filing.contact_phone, True
    return render_template("projects/reviews/detail.html", f=filing, info=info, errors=errors or {},
                           labels=states.LABELS, action_labels=states.ACTION_LABELS,
                           can_decide=states.can(filing, "approve"), fmt_decimal=fmt_decimal,
                           typed_reason=typed_reason, min_days=MIN_DAYS_BEFORE, earliest=earliest_start(),
                           unheld_refused=unheld_refused(db.session(), filing),
                           unheld_warning=unheld_warning(db.session(), filing, clock.today_local())
                           if filing.state == "approved" else ""), status


@pages.get("/projects/review/filings")
@access("reviewer")
def review_list() -> Any:
    args = load_query(ReviewQuerySchema(), QUERY_LABELS)
    session = db.session()
    page = services.review_page(session, args)
    institutions = session.scalars(select(Institution).order_by(Institution.name)).all()
    return render_template("projects/reviews/list.html", page=page, args=args, institutions=institutions,
                           keep=keep_args(args, ("state", "year", "institution_id", "q")),
                           state_labels=REVIEW_STATE_LABELS, labels=states.LABELS,
                           checked={f.id: filing_checks(f) for f in page["items"]}, today=clock.today_local())


@pages.get("/projects/review/filings/<int:filing_id>")
@access("reviewer")
def review_detail(filing_id: int) -> Any:
    return _render_detail(services.get_for_review(db.session(), filing_id))


@pages.get("/projects/review/offerings/<int:offering_id>")
@access("reviewer")
def review_offering(offering_id: int) -> Any:
    """A 期 named by its offering id (what other services know, e.g. 年度统计's chase list) opens its filing."""
    return redirect(f"/projects/review/filings/{services.filing_of_offering(db.session(), offering_id).id}")


@pages.post("/projects/review/filings/<int:filing_id>/contact")
@access("reviewer")
def review_contact(filing_id: int) -> Any:
    """显示完整号码: the clerk calls the filing's 联系人; the number is masked on every page until asked for, and
    each look is kept in the filing's 办理记录."""
    session = db.session()
    filing = services.get_for_review(session, filing_id)
    record(session, _me(), "filing", filing.id, "view_contact")
    commit()
    return _render_detail(filing, reveal=True)


@pages.post("/projects/review/filings/<int:filing_id>/approve")
@access("reviewer")
def review_approve(filing_id: int) -> Any:
    session = db.session()
    filing = services.get_for_review(session, filing_id, lock=True)
    services.approve(session, _me(), filing, require_page_version(request.form))
    commit()
    flash(f"已审批通过：{filing.project.title} {filing.offering.label}。", "ok")
    return redirect("/projects/review/filings")


@pages.post("/projects/review/filings/<int:filing_id>/return")
@access("reviewer")
def review_return(filing_id: int) -> Any:
    session = db.session()
    filing = services.get_for_review(session, filing_id, lock=True)
    version = require_page_version(request.form)  # the page always sends it: without one, no check would run
    data, errors = load_form(ReturnFormSchema(), request.form)
    if errors:
        # what the clerk typed comes back to be lengthened, not typed again
        return _render_detail(filing, {"reason": errors.get("reason", "请填写退回原因。")}, 422,
                              typed_reason=request.form.get("reason", ""))
    services.return_filing(session, _me(), filing, data["reason"], version)  # type: ignore[index]
    commit()
    flash(f"已退回：{filing.project.title} {filing.offering.label}。", "ok")
    return redirect("/projects/review/filings")


@pages.post("/projects/review/filings/<int:filing_id>/unheld")
@access("reviewer")
def review_unheld(filing_id: int) -> Any:
    session = db.session()
    filing = services.get_for_review(session, filing_id, lock=True)
    version = require_page_version(request.form)
    data, errors = load_form(CancelFormSchema(), request.form)
    if errors:
        return _render_detail(filing, {"reason": errors.get("reason", "请填写未举办的原因。")}, 422,
                              typed_reason=request.form.get("reason", ""))
    end_filing(session, _me(), filing, "mark_unheld", data["reason"], version)  # type: ignore[index]
    commit()
    flash(f"已标记未举办：{filing.project.title} {filing.offering.label}。", "ok")
    return redirect(f"/projects/review/filings/{filing.id}")


# ---- JSON API ----------------------------------------------------------------------------------


@api.route("/review/filings", methods=["GET"])
@access("reviewer")
@api.arguments(ReviewQuerySchema, location="query")
@api.response(200, ReviewPageSchema)
@api.doc(security=BEARER, summary="待审批（及已处理）的举办前登记")
def api_review_list(args: dict[str, Any]) -> Any:
    session = db.session()
    page = services.review_page(session, args)
    page["items"] = [filing_dict(session, _me(), f) for f in page["items"]]
    return page


@api.route("/review/filings/<int:filing_id>", methods=["GET"])
@access("reviewer")
@api.response(200, FilingOutSchema)
@api.doc(security=BEARER, summary="登记详情（含附件地址与办理记录）")
def api_review_detail(filing_id: int) -> Any:
    return filing_dict(db.session(), _me(), services.get_for_review(db.session(), filing_id))


@api.route("/review/filings/<int:filing_id>/approve", methods=["POST"])
@access("reviewer")
@api.response(200, FilingOutSchema)
@api.doc(security=BEARER, summary="审批通过（同一事务写出 offering.approved 事件）")
def api_review_approve(filing_id: int) -> Any:
    session = db.session()
    filing = services.get_for_review(session, filing_id, lock=True)
    data = load_json(ApproveSchema())
    services.approve(session, _me(), filing, data.get("version"))
    commit()
    return filing_dict(session, _me(), filing)


@api.route("/review/filings/<int:filing_id>/return", methods=["POST"])
@access("reviewer")
@api.response(200, FilingOutSchema)
@api.doc(security=BEARER, summary="退回修改（reason 必填）")
def api_review_return(filing_id: int) -> Any:
    session = db.session()
    filing = services.get_for_review(session, filing_id, lock=True)
    try:
        data = load_json(ReturnSchema())
    except AppError as exc:
        if "reason" in exc.fields:
            raise return_refused(exc) from None
        raise
    services.return_filing(session, _me(), filing, data["reason"], data.get("version"))
    commit()
    return filing_dict(session, _me(), filing)


@api.route("/review/filings/<int:filing_id>/unheld", methods=["POST"])
@access("reviewer")
@api.response(200, FilingOutSchema)
@api.doc(security=BEARER, summary="标记未举办（审批通过、未有执行情况反馈的期次，须填原因，写出 offering.cancelled）",
         requestBody={"content": {"application/json": {"schema": CancelSchema}}})
def api_review_unheld(filing_id: int) -> Any:
    session = db.session()
    filing = services.get_for_review(session, filing_id, lock=True)
    data = load_cancel()
    end_filing(session, _me(), filing, "mark_unheld", data["reason"], data.get("version"))
    commit()
    return filing_dict(session, _me(), filing)
