"""省级项目申报 → 执行情况反馈: the institution's pages and JSON API, and the committee's review of reports.

Each action is one service call and one commit; the state rules are in states.py.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request
from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import ValidationError
from sqlalchemy import select

from services.common import clock
from services.common.auth import access, current
from services.common.db import savepoint
from services.common.errors import AppError
from services.common.formats import fmt_credits
from services.common.inputs import flatten, keep_args, load_json, load_query, require_page_version
from services.common.paging import keep_per_page, past_last
from services.common.schemas import half_width, load_form, strip_blank
from services.common.web import XLSX, download

from ..audit.models import record
from ..catalogue.models import MODES
from ..catalogue.services import fmt_decimal
from ..db import db
from ..institutions.models import Institution
from ..reviews.schemas import return_refused
from . import files, services, sheets, states
from .schemas import (
    FIELD_LABELS,
    MATERIAL_LABELS,
    OFFERING_STATUS_LABELS,
    PAGES,
    REVIEW_STATE_LABELS,
    FactsFormSchema,
    FactsInSchema,
    LecturersInSchema,
    MaterialsInSchema,
    OfferingRowOutSchema,
    OfferingRowPageSchema,
    OfferingsQuerySchema,
    OverduePageSchema,
    OverdueQuerySchema,
    ReportOutSchema,
    ReportReturnFormSchema,
    ReportReturnSchema,
    ReportReviewQuerySchema,
    ReportUploadOutSchema,
    ReviewPageSchema,
    VersionSchema,
)

pages = Blueprint("projects_reports", __name__, template_folder="templates")
api = ApiBlueprint("projects_reports_api", __name__, url_prefix="/projects/api",
                   description="执行情况反馈（申办机构填报，继续医学教育委员会审批）")
BEARER = [{"bearer": []}]
QUERY_LABELS = {"q": "项目名称", "year": "年度", "status": "状态", "state": "状态", "institution_id": "申办机构",
                "page": "页码", "per_page": "每页条数"}
BLANK_ROWS = 3
OVERDUE_PREVIEW = 10  # 已逾期未提交 under the reports list: its first rows, the rest on a paged page of its own
OVERDUE_FILTERS = ("year", "institution_id", "q")
FACT_FIELDS = ("actual_starts_on", "actual_ends_on", "venue", "mode", "trainees_count", "total_hours", "organiser",
               "contact_person", "contact_phone")
LECTURER_FIELDS = ("name", "title", "unit", "topic", "hours")
MATERIAL_FIELDS = ("title", "editor", "publisher", "year")


def commit() -> None:
    db.commit("该反馈记录已被他人修改，请刷新页面后重试。")


def _me() -> Any:
    p = current()
    assert p is not None  # @access made sure
    return p


def _render_args() -> dict[str, Any]:
    return {"labels": states.LABELS, "action_labels": states.ACTION_LABELS, "page_labels": PAGES,
            "kinds": files.KINDS, "fmt_decimal": fmt_decimal, "today": clock.today_local()}


# ---- the institution's pages ---------------------------------------------------------------------


@pages.get("/projects/reports")
@access("institution")
def report_list() -> Any:
    args = load_query(OfferingsQuerySchema(), QUERY_LABELS)
    page = services.own_offerings_page(db.session(), _me(), args)
    return render_template("projects/reports/list.html", page=page, args=args,
                           keep=keep_args(args, ("q", "year", "status")), status_labels=OFFERING_STATUS_LABELS,
                           not_held=services.not_held_count(db.session(), _me()),
                           **_render_args())


@pages.get("/projects/reports/offering/<int:offering_id>")
@access("institution")
def report_records(offering_id: int) -> Any:
    """反馈记录管理 of one offering: its record (if any) and 新建."""
    row = services.offering_row(*services.own_offering(db.session(), _me(), offering_id))
    return render_template("projects/reports/records.html", row=row, **_render_args())


@pages.post("/projects/reports/offering/<int:offering_id>/new")
@access("institution")
def report_new(offering_id: int) -> Any:
    session = db.session()
    try:
        report = services.create_report(session, _me(), offering_id)
    except AppError as exc:
        if exc.code != "exists":
            raise
        # a double click (or a second tab) asked for the record the first click made: open it, not an error page
        session.rollback()
        existing = services.own_offering(session, _me(), offering_id)[3]
        if existing is None:  # deleted again in the meantime
            raise
        flash("本期已有反馈记录，已为您打开。", "ok")
        return redirect(f"/projects/reports/{existing.id}")
    commit()
    flash("已新建反馈记录，请逐页填写并“保存本页”。", "ok")
    return redirect(f"/projects/reports/{report.id}/pages/1")


@pages.get("/projects/reports/<int:report_id>")
@access("institution")
def report_view(report_id: int) -> Any:
    report = services.get_report(db.session(), _me(), report_id)
    return _render_view(report)


def _render_view(report: Any, errors: dict[str, str] | None = None, status: int = 200) -> Any:
    info = services.report_dict(db.session(), _me(), report)
    return render_template("projects/reports/view.html", r=report, info=info, errors=errors or {},
                           **_render_args()), status


def _page_values(report: Any, info: dict[str, Any], page: int) -> dict[str, Any]:
    if page == 1:
        values = {k: ("" if info["facts"][k] is None else info["facts"][k]) for k in FACT_FIELDS}
        if values["total_hours"] != "":  # 12, not the column's 12.0
            values["total_hours"] = fmt_credits(values["total_hours"])
        return values
    if page == 2:
        # 学时 as typed (8, 1.5), not the column's 8.0
        return {"rows": [{k: fmt_credits(lec[k]) if k == "hours" else str(lec[k]) for k in LECTURER_FIELDS}
                         for lec in info["lecturers"]]}
    if page == 5:
        return {"rows": [{k: "" if m[k] is None else str(m[k]) for k in MATERIAL_FIELDS} for m in info["materials"]],
                "summary": info["summary"]}
    return {}


def _render_page(report: Any, page: int, values: dict[str, Any] | None = None,
                 errors: dict[str, str] | None = None, status: int = 200) -> Any:
    if page not in PAGES:
        raise AppError(404, "not_found", "没有这一页。")
    if report.state not in states.EDITABLE:
        return _render_view(report)  # locked after 提交: everything is shown read-only
    info = services.report_dict(db.session(), _me(), report)
    if values is None:
        values = _page_values(report, info, page)
    if "rows" in values:
        blank = dict.fromkeys(LECTURER_FIELDS if page == 2 else MATERIAL_FIELDS, "")
        values = {**values, "rows": list(values["rows"]) + [blank] * BLANK_ROWS}
    return render_template(f"projects/reports/page{page}.html", r=report, info=info, page=page, v=values,
                           errors=errors or {}, modes=MODES, version=report.version,
                           max_mb=files.JPG_MAX_BYTES // (1024 * 1024),
                           exam_mb=files.EXAM_MAX_BYTES // (1024 * 1024), **_render_args()), status


@pages.get("/projects/reports/<int:report_id>/pages/<int:page>")
@access("institution")
def report_page(report_id: int, page: int) -> Any:
    return _render_page(services.get_report(db.session(), _me(), report_id), page)


def _form_rows(form: Any, prefix: str, names: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a repeating table (prefix-<i>-<name>), in their order; blank rows and rows ticked 删除 are dropped.
    The rows are the ones the form holds, not its hidden count: a count edited to 0 or abc dropped every typed
    row (and one too low the rows past it), while the page said 已保存. More than the page allows are refused by
    the schema, not cut."""
    field = re.compile(rf"{re.escape(prefix)}-(\d{{1,4}})-({'|'.join(names)}|remove)")
    indices = sorted({int(m.group(1)) for m in map(field.fullmatch, form.keys()) if m})
    rows = []
    for i in indices:
        if form.get(f"{prefix}-{i}-remove"):
            continue
        row = {n: form.get(f"{prefix}-{i}-{n}", "").strip() for n in names}
        if any(row.values()):
            rows.append(row)
    return rows


def _labels(schema: Any) -> dict[str, str]:
    return MATERIAL_LABELS if isinstance(schema, MaterialsInSchema) else FIELD_LABELS


def _load(schema: Any, raw: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, str]]:
    try:
        return schema.load(raw), {}
    except ValidationError as exc:
        return None, flatten(exc.messages, _labels(schema))


DATE_FIELDS = ("actual_starts_on", "actual_ends_on")


def _typed_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(half_width(text).strip())
    except ValueError:
        return None


def _save_page(report: Any, page: int, form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """保存本页 from the browser; returns (values typed, errors) — no errors means saved."""
    session = db.session()
    p = _me()
    version = require_page_version(form) if page in (1, 2, 5) else None  # the pages that save with a check
    if page == 1:
        values = {k: form.get(k, "").strip() for k in FACT_FIELDS}
        data, errors = load_form(FactsFormSchema(), {**values, "version": "" if version is None else str(version)})
        if errors:  # with the year rule's marks, so the office mends everything in one round
            return values, {**services.dates_outside_year(report, {k: _typed_date(values[k]) for k in DATE_FIELDS}),
                            **{k: str(v) for k, v in errors.items()}}
        services.save_facts(session, p, report, data)  # type: ignore[arg-type]
        return values, {}
    if page == 2:
        rows = _form_rows(form, "lec", LECTURER_FIELDS)
        values = {"rows": rows}
        if not rows:
            return values, {"lecturers": "请至少填写一位授课专家（姓名、职称、单位、授课题目、学时）。"}
        data, errors = _load(LecturersInSchema(), {"lecturers": [strip_blank(r) for r in rows],
                                                   "version": version})
        if errors:
            return values, errors
        services.save_lecturers(session, p, report, data)  # type: ignore[arg-type]
        return values, {}
    if page == 3:
        # each file on its own: one wrong photo among ten refused the nine good ones, unnamed, and the office
        # chose them all again guessing which to leave out
        done, refused, errors = 0, [], {}
        for kind in files.KINDS:
            for f in request.files.getlist(kind):
                if f is None or not f.filename:
                    continue
                try:
                    with savepoint(session):
                        services.put_upload(session, p, report, kind, f.filename, f.read())
                    done += 1
                except AppError as exc:
                    if exc.code != "bad_upload":
                        raise
                    reason = str(exc.fields.get(kind, exc.message))
                    named = f"{files.KINDS[kind]}上传失败（“{f.filename[:100]}”）：{reason}"
                    refused.append(named)
                    errors[kind] = f"{errors[kind]} {named}" if kind in errors else named
        if refused:
            kept = f"其余 {done} 个文件已上传，无需重新选择。" if done else ""
            said = "；".join(r.rstrip("。") for r in refused) + "。"
            return {"done": done}, {**errors, "_schema": said + kept}
        if not done:
            return {}, {"_schema": "请选择要上传的文件。"}
        return {"done": done}, {}
    if page == 4:
        n, filled = services.import_attendance(session, p, report)
        return {"imported": n, "filled": filled}, {}
    rows = _form_rows(form, "mat", MATERIAL_FIELDS)
    values = {"rows": rows, "summary": form.get("summary", "").strip()}
    data, errors = _load(MaterialsInSchema(), strip_blank({"materials": [strip_blank(r) for r in rows],
                                                           "summary": values["summary"]})
                         | {"version": version})
    if errors:
        return values, errors
    services.save_materials(session, p, report, data)  # type: ignore[arg-type]
    return values, {}


@pages.post("/projects/reports/<int:report_id>/pages/<int:page>")
@access("institution")
def report_page_save(report_id: int, page: int) -> Any:
    session = db.session()
    p = _me()
    if page not in PAGES:
        raise AppError(404, "not_found", "没有这一页。")
    report = services.get_report(session, p, report_id, lock=True)
    states.ensure_editable(report)
    try:
        values, errors = _save_page(report, page, request.form)
    except AppError as exc:
        if exc.status in (403, 404):
            raise
        session.rollback()
        report = services.get_report(session, p, report_id)
        errors = {k: str(v) for k, v in exc.fields.items()} or {"_schema": exc.message}
        errors.setdefault("_schema", exc.message)
        if exc.code == "conflict":  # another page or window saved the report: what was typed here is kept
            errors["_schema"] = ("本反馈记录刚在其他页面或窗口保存过，本页未保存。您填写的内容仍在下方，"
                                 "核对无误后请再次点击“保存本页”。")
        return _render_page(report, page, None if page in (3, 4) else _typed(page, request.form), errors,
                            exc.status)
    if errors:
        if page == 3 and values.get("done"):
            commit()  # the good files of page 3 are kept beside the ones refused
        else:
            session.rollback()
        report = services.get_report(session, p, report_id)
        return _render_page(report, page, values if page not in (3, 4) else None, errors, 422)
    commit()
    if page == 4:
        flash(f"已导入本期考勤（授分）记录 {values['imported']} 人。" + (
            f"第1页的培训人数尚未填写，已按导入人数填为 {values['imported']}；实际培训人数不同的，请在第1页修改。"
            if values["filled"] else ""), "ok")
    elif page == 3:
        flash(f"已上传 {values['done']} 个文件。", "ok")
    else:
        flash(f"第{page}页（{PAGES[page]}）已保存。", "ok")
    if page in (1, 2) and request.form.get("next"):  # 保存并进入下一页
        return redirect(f"/projects/reports/{report_id}/pages/{page + 1}")
    return redirect(f"/projects/reports/{report_id}/pages/{page}")


def _typed(page: int, form: Any) -> dict[str, Any]:
    if page == 1:
        return {k: form.get(k, "").strip() for k in FACT_FIELDS}
    if page == 2:
        return {"rows": _form_rows(form, "lec", LECTURER_FIELDS)}
    return {"rows": _form_rows(form, "mat", MATERIAL_FIELDS), "summary": form.get("summary", "")}


@pages.post("/projects/reports/<int:report_id>/uploads/<int:upload_id>/delete")
@access("institution")
def report_upload_delete(report_id: int, upload_id: int) -> Any:
    session = db.session()
    report = services.get_report(session, _me(), report_id, lock=True)
    services.delete_upload(session, _me(), report, upload_id)
    commit()
    flash("已删除该文件。", "ok")
    return redirect(f"/projects/reports/{report_id}/pages/3")


@pages.get("/projects/reports/<int:report_id>/uploads/<int:upload_id>")
@access("institution", "reviewer")
def report_upload(report_id: int, upload_id: int) -> Any:
    """A file is served to its own institution and to the committee (once submitted), to nobody else."""
    report = services.get_visible(db.session(), _me(), report_id)
    up = next((u for u in report.uploads if u.id == upload_id), None)
    if up is None:
        raise AppError(404, "not_found", "该文件不存在。")
    resp = Response(up.data, mimetype=up.content_type)
    resp.headers["Cache-Control"] = "private, no-store"
    # images are shown on the page; PDF and Word are downloaded, never rendered inside our origin
    disposition = "inline" if up.is_image else "attachment"
    resp.headers["Content-Disposition"] = f"{disposition}; filename=\"report-{report.id}-{up.id}" \
                                          f"{files.EXTENSIONS[up.content_type]}\""
    resp.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return resp


@pages.post("/projects/reports/<int:report_id>/submit")
@access("institution")
def report_submit(report_id: int) -> Any:
    session = db.session()
    p = _me()
    report = services.get_report(session, p, report_id, lock=True)
    version = require_page_version(request.form)
    try:
        services.submit_report(session, p, report, version)
    except AppError as exc:
        if exc.status != 422:
            raise
        session.rollback()
        return _render_view(services.get_report(session, p, report_id), {"_submit": exc.message}, 422)
    commit()
    flash("已提交，请等待陕西省继续医学教育委员会审批。提交后不能再修改或删除。", "ok")
    return redirect(f"/projects/reports/{report_id}")


@pages.post("/projects/reports/<int:report_id>/delete")
@access("institution")
def report_delete(report_id: int) -> Any:
    session = db.session()
    report = services.get_report(session, _me(), report_id, lock=True)
    offering_id = report.offering_id
    services.delete_report(session, _me(), report, require_page_version(request.form))
    commit()
    flash("已删除该反馈记录，可以重新新建。", "ok")
    return redirect(f"/projects/reports/offering/{offering_id}")


# ---- the committee's pages -----------------------------------------------------------------------


@pages.get("/projects/review/reports")
@access("reviewer")
def review_list() -> Any:
    args = load_query(ReportReviewQuerySchema(), QUERY_LABELS)
    session = db.session()
    page = services.review_page(session, args)
    rows = [services.review_row(r) for r in page["items"]]
    institutions = session.scalars(select(Institution).order_by(Institution.name)).all()
    overdue_keep = keep_args(args, OVERDUE_FILTERS)
    overdue = services.overdue_page(session, {**overdue_keep, "page": 1, "per_page": OVERDUE_PREVIEW})
    return render_template("projects/reports/review_list.html", page=page, rows=rows, args=args,
                           institutions=institutions, overdue=overdue, overdue_keep=overdue_keep,
                           keep=keep_per_page(keep_args(args, ("state", *OVERDUE_FILTERS)), args),
                           past_last=past_last(args, page), state_labels=REVIEW_STATE_LABELS, **_render_args())


@pages.get("/projects/review/reports/overdue")
@access("reviewer")
def review_overdue() -> Any:
    """已逾期未提交, paged, each 期 opening its filing; filtered as 执行情况反馈审批 is."""
    args = load_query(OverdueQuerySchema(), QUERY_LABELS)
    session = db.session()
    institutions = session.scalars(select(Institution).order_by(Institution.name)).all()
    page = services.overdue_page(session, args)
    return render_template("projects/reports/review_overdue.html", page=page, past_last=past_last(args, page),
                           args=args, institutions=institutions,
                           keep=keep_per_page(keep_args(args, OVERDUE_FILTERS), args), **_render_args())


@pages.get("/projects/review/reports/overdue.xlsx")
@access("reviewer")
def review_overdue_xlsx() -> Any:
    """已逾期未提交 as Excel, every row under the filters, for chasing the hosts."""
    args = load_query(OverdueQuerySchema(), QUERY_LABELS)
    session = db.session()
    today = clock.today_local()
    said = []
    if args.get("year"):
        said.append(f"年度 {args['year']}")
    if args.get("institution_id"):
        inst = session.get(Institution, args["institution_id"])
        said.append(f"申办机构 {inst.name if inst else args['institution_id']}")
    if args.get("q"):
        said.append(f"检索“{args['q']}”")
    narrowed = f"；按{'、'.join(said)}筛选" if said else ""
    data = sheets.overdue_xlsx(services.overdue_offerings(session, today, args), today, narrowed)
    return download(data, XLSX, f"overdue-reports-{today.isoformat()}.xlsx",
                    f"{sheets.TITLE}-{today.isoformat()}.xlsx")


def _render_review(report: Any, errors: dict[str, str] | None = None, status: int = 200,
                   reveal: bool = False, typed_reason: str = "") -> Any:
    info = services.report_dict(db.session(), _me(), report)
    if reveal:
        info["facts"]["contact_phone"], info["contact_revealed"] = report.contact_phone, True
    return render_template("projects/reports/review_detail.html", r=report, info=info, errors=errors or {},
                           can_decide=states.can(report, "approve"), typed_reason=typed_reason,
                           **_render_args()), status


@pages.get("/projects/review/reports/<int:report_id>")
@access("reviewer")
def review_detail(report_id: int) -> Any:
    return _render_review(services.get_for_review(db.session(), report_id))


@pages.post("/projects/review/reports/<int:report_id>/contact")
@access("reviewer")
def review_contact(report_id: int) -> Any:
    """显示完整号码 of the report's 联系人, kept in the report's 办理记录."""
    session = db.session()
    report = services.get_for_review(session, report_id)
    record(session, _me(), states.OBJECT, report.id, "view_contact")
    commit()
    return _render_review(report, reveal=True)


@pages.post("/projects/review/reports/<int:report_id>/approve")
@access("reviewer")
def review_approve(report_id: int) -> Any:
    session = db.session()
    report = services.get_for_review(session, report_id, lock=True)
    services.approve(session, _me(), report, require_page_version(request.form))
    commit()
    flash("已审批通过该执行情况反馈，本期学员的学分将生效。", "ok")
    return redirect("/projects/review/reports")


@pages.post("/projects/review/reports/<int:report_id>/return")
@access("reviewer")
def review_return(report_id: int) -> Any:
    session = db.session()
    report = services.get_for_review(session, report_id, lock=True)
    version = require_page_version(request.form)  # the page always sends it: without one, no check would run
    data, errors = load_form(ReportReturnFormSchema(), request.form)
    if errors:
        # what the clerk typed comes back to be lengthened, not typed again
        return _render_review(report, {"reason": errors.get("reason", "请填写退回原因。")}, 422,
                              typed_reason=request.form.get("reason", ""))
    services.return_report(session, _me(), report, data["reason"], version)  # type: ignore[index]
    commit()
    flash("已退回该执行情况反馈。", "ok")
    return redirect("/projects/review/reports")


# ---- JSON API: the institution -------------------------------------------------------------------


def _json(schema: Any) -> dict[str, Any]:
    """load_json, with the rows' field names in Chinese (第 1 行职称：…)."""
    body = request.get_json(silent=True)
    body = {} if body is None else body
    if not isinstance(body, dict):
        raise AppError(422, "invalid_input", "请提交 JSON 对象。")
    try:
        return schema.load(body)
    except ValidationError as exc:
        raise AppError(422, "invalid_input", "提交的内容有误，请按提示修改。",
                       flatten(exc.messages, _labels(schema))) from exc


def _out(report: Any) -> dict[str, Any]:
    return services.report_dict(db.session(), _me(), report)


def _own_locked(report_id: int) -> Any:
    return services.get_report(db.session(), _me(), report_id, lock=True)


@api.route("/reports", methods=["GET"])
@access("institution")
@api.arguments(OfferingsQuerySchema, location="query")
@api.response(200, OfferingRowPageSchema)
@api.doc(security=BEARER, summary="执行情况反馈：本机构已审批通过（可举办）的期次，含反馈状态与应提交日期")
def api_offerings(args: dict[str, Any]) -> Any:
    return services.own_offerings_page(db.session(), _me(), args)


@api.route("/reports/offering/<int:offering_id>", methods=["GET"])
@access("institution")
@api.response(200, OfferingRowOutSchema)
@api.doc(security=BEARER, summary="反馈管理：一期的反馈记录")
def api_offering(offering_id: int) -> Any:
    return services.offering_row(*services.own_offering(db.session(), _me(), offering_id))


@api.route("/reports/offering/<int:offering_id>", methods=["POST"])
@access("institution")
@api.response(201, ReportOutSchema)
@api.doc(security=BEARER, summary="新建反馈记录（每期一条；原记录删除后可再新建）")
def api_create(offering_id: int) -> Any:
    report = services.create_report(db.session(), _me(), offering_id)
    commit()
    return _out(report), 201


@api.route("/reports/<int:report_id>", methods=["GET"])
@access("institution")
@api.response(200, ReportOutSchema)
@api.doc(security=BEARER, summary="反馈记录详情（五页全部内容、附件地址、办理记录）")
def api_get(report_id: int) -> Any:
    return _out(services.get_report(db.session(), _me(), report_id))


@api.route("/reports/<int:report_id>", methods=["DELETE"])
@access("institution")
@api.response(204)
@api.doc(security=BEARER, summary="删除（仅从未提交的草稿；已退回的不能删除）",
         requestBody={"content": {"application/json": {"schema": VersionSchema}}})
def api_delete(report_id: int) -> Any:
    report = _own_locked(report_id)
    data = load_json(VersionSchema())
    services.delete_report(db.session(), _me(), report, data.get("version"))
    commit()
    return "", 204


@api.route("/reports/<int:report_id>/pages/1", methods=["PUT"])
@access("institution")
@api.response(200, ReportOutSchema)
@api.doc(security=BEARER, summary="保存第1页（执行情况）",
         requestBody={"content": {"application/json": {"schema": FactsInSchema}}})
def api_page1(report_id: int) -> Any:
    report = _own_locked(report_id)
    states.ensure_editable(report)
    services.save_facts(db.session(), _me(), report, _json(FactsInSchema()))
    commit()
    return _out(report)


@api.route("/reports/<int:report_id>/pages/2", methods=["PUT"])
@access("institution")
@api.response(200, ReportOutSchema)
@api.doc(security=BEARER, summary="保存第2页（授课情况：授课专家与课程，整表替换）",
         requestBody={"content": {"application/json": {"schema": LecturersInSchema}}})
def api_page2(report_id: int) -> Any:
    report = _own_locked(report_id)
    states.ensure_editable(report)
    services.save_lecturers(db.session(), _me(), report, _json(LecturersInSchema()))
    commit()
    return _out(report)


@api.route("/reports/<int:report_id>/pages/5", methods=["PUT"])
@access("institution")
@api.response(200, ReportOutSchema)
@api.doc(security=BEARER, summary="保存第5页（教材与总结）",
         requestBody={"content": {"application/json": {"schema": MaterialsInSchema}}})
def api_page5(report_id: int) -> Any:
    report = _own_locked(report_id)
    states.ensure_editable(report)
    services.save_materials(db.session(), _me(), report, _json(MaterialsInSchema()))
    commit()
    return _out(report)


@api.route("/reports/<int:report_id>/uploads/<kind>", methods=["POST"])
@access("institution")
@api.response(201, ReportUploadOutSchema)
@api.doc(security=BEARER, summary="第3页上传（multipart，字段 file）；kind = schedule 日程 | notice 会议通知 | "
                                  "photo 会议照片（JPG）| exam 试题（PDF、.docx 或 JPG）")
def api_upload(report_id: int, kind: str) -> Any:
    report = _own_locked(report_id)
    states.ensure_editable(report)
    f = request.files.get("file")
    if f is None or not f.filename:
        raise AppError(422, "invalid_input", "请选择要上传的文件。", {"file": "请选择文件。"})
    up = services.put_upload(db.session(), _me(), report, kind, f.filename, f.read())
    commit()
    return services.upload_dict(report, up), 201


@api.route("/reports/<int:report_id>/uploads/<int:upload_id>", methods=["DELETE"])
@access("institution")
@api.response(204)
@api.doc(security=BEARER, summary="删除一个已上传的文件（仅提交前）")
def api_upload_delete(report_id: int, upload_id: int) -> Any:
    report = _own_locked(report_id)
    services.delete_upload(db.session(), _me(), report, upload_id)
    commit()
    return "", 204


@api.route("/reports/<int:report_id>/attendance/import", methods=["POST"])
@access("institution")
@api.response(200, ReportOutSchema)
@api.doc(security=BEARER, summary="第4页 导入：复制本期当前的授分名单（再次导入替换，不会重复）")
def api_import(report_id: int) -> Any:
    report = _own_locked(report_id)
    services.import_attendance(db.session(), _me(), report)
    commit()
    return _out(report)


@api.route("/reports/<int:report_id>/submit", methods=["POST"])
@access("institution")
@api.response(200, ReportOutSchema)
@api.doc(security=BEARER, summary="提交（检查五页必填内容；提交后锁定，写出 report.submitted 事件）",
         requestBody={"content": {"application/json": {"schema": VersionSchema}}})
def api_submit(report_id: int) -> Any:
    report = _own_locked(report_id)
    data = load_json(VersionSchema())
    services.submit_report(db.session(), _me(), report, data.get("version"))
    commit()
    return _out(report)


# ---- JSON API: the committee ---------------------------------------------------------------------


@api.route("/review/reports", methods=["GET"])
@access("reviewer")
@api.arguments(ReportReviewQuerySchema, location="query")
@api.response(200, ReviewPageSchema)
@api.doc(security=BEARER, summary="待审批（及已处理）的执行情况反馈")
def api_review_list(args: dict[str, Any]) -> Any:
    session = db.session()
    page = services.review_page(session, args, whole=True)
    page["items"] = services.report_dicts(session, _me(), page["items"])
    return page


@api.route("/review/reports/overdue", methods=["GET"])
@access("reviewer")
@api.arguments(OverdueQuerySchema, location="query")
@api.response(200, OverduePageSchema)
@api.doc(security=BEARER, summary="已逾期未提交执行情况反馈的期次（结束日期 + 14 天已过），分页；最久逾期的在前")
def api_review_overdue(args: dict[str, Any]) -> Any:
    return services.overdue_page(db.session(), args)


@api.route("/review/reports/<int:report_id>", methods=["GET"])
@access("reviewer")
@api.response(200, ReportOutSchema)
@api.doc(security=BEARER, summary="反馈记录详情（含全部附件地址与办理记录）")
def api_review_get(report_id: int) -> Any:
    return _out(services.get_for_review(db.session(), report_id))


@api.route("/review/reports/<int:report_id>/approve", methods=["POST"])
@access("reviewer")
@api.response(200, ReportOutSchema)
@api.doc(security=BEARER, summary="审批通过（同一事务写出 report.approved 事件）",
         requestBody={"content": {"application/json": {"schema": VersionSchema}}})
def api_review_approve(report_id: int) -> Any:
    report = services.get_for_review(db.session(), report_id, lock=True)
    data = load_json(VersionSchema())
    services.approve(db.session(), _me(), report, data.get("version"))
    commit()
    return _out(report)


@api.route("/review/reports/<int:report_id>/return", methods=["POST"])
@access("reviewer")
@api.response(200, ReportOutSchema)
@api.doc(security=BEARER, summary="退回修改（reason 必填；写出 report.returned 事件）",
         requestBody={"content": {"application/json": {"schema": ReportReturnSchema}}})
def api_review_return(report_id: int) -> Any:
    report = services.get_for_review(db.session(), report_id, lock=True)
    try:
        data = load_json(ReportReturnSchema())
    except AppError as exc:
        if "reason" in exc.fields:
            raise return_refused(exc) from None
        raise
    services.return_report(db.session(), _me(), report, data["reason"], data.get("version"))
    commit()
    return _out(report)
