"""省级项目申报 → 项目举办前登记: the institution's pages and JSON API (one service call per action)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request
from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import ValidationError

from services.common.auth import access, current
from services.common.db import savepoint
from services.common.errors import AppError
from services.common.inputs import flatten, keep_args, load_json, load_query, page_version, require_page_version
from services.common.schemas import STALE_PAGE, load_form, strip_blank

from .. import uploads as jpg
from ..catalogue.models import MODES
from ..catalogue.services import fmt_decimal
from ..db import db
from . import services, states
from .schemas import (
    FIELD_LABELS,
    PROJECT_STATUS_LABELS,
    CancelFormSchema,
    CancelSchema,
    FilingFormSchema,
    FilingInSchema,
    FilingOutSchema,
    FilingsQuerySchema,
    ProjectRowPageSchema,
    SubmitSchema,
    UploadOutSchema,
    cancel_refused,
)

pages = Blueprint("projects_filings", __name__, template_folder="templates")
api = ApiBlueprint("projects_filings_api", __name__, url_prefix="/projects/api",
                   description="项目举办前登记（申办机构）")
BEARER = [{"bearer": []}]
QUERY_LABELS = {"q": "项目名称", "number": "项目编号", "year": "年度", "status": "状态", "page": "页码",
                "per_page": "每页条数"}
BLANK_ROWS = 3


def commit() -> None:
    db.commit("该登记已被他人修改，请刷新页面后重试。")


def _me() -> Any:
    p = current()
    assert p is not None  # @access made sure
    return p


# ---- pages -------------------------------------------------------------------------------------


@pages.get("/projects/filings")
@access("institution")
def filing_list() -> Any:
    args = load_query(FilingsQuerySchema(), QUERY_LABELS)
    page = services.own_projects_page(db.session(), _me(), args)
    return render_template("projects/filings/list.html", page=page, args=args,
                           returned=services.returned_counts(db.session(), _me()),
                           keep=keep_args(args, ("q", "number", "year", "status")),
                           status_labels=PROJECT_STATUS_LABELS, fmt_decimal=fmt_decimal)


@pages.post("/projects/filings/projects/<int:project_id>/offerings")
@access("institution")
def filing_start(project_id: int) -> Any:
    filing = services.start_offering(db.session(), _me(), project_id)
    commit()
    return redirect(f"/projects/filings/{filing.id}")


def _form_values(form: Any) -> dict[str, Any]:
    """What the clerk typed, to show again next to the errors."""
    values = {k: form.get(k, "") for k in ("starts_on", "ends_on", "venue", "mode", "expected_trainees",
                                            "contact_person", "contact_phone", "note", "version")}
    values["schedule"] = _schedule_rows(form)
    return values


def _schedule_rows(form: Any) -> list[dict[str, str]]:
    cols = [form.getlist(f"sched_{c}") for c in ("date", "start", "end", "title")]
    rows = []
    for date, start, end, title in zip(*cols, strict=False):
        row = {"date": date.strip(), "start": start.strip(), "end": end.strip(), "title": title.strip()}
        if any(row.values()):
            rows.append(row)
    return rows


def _load_filing_form(form: Any) -> tuple[dict[str, Any] | None, dict[str, str], dict[str, Any]]:
    """(the loaded form, None when refused; the refusals by field; the fields a refusal may still keep)."""
    raw: dict[str, Any] = strip_blank({k: form.get(k, "").strip() for k in
                                       ("starts_on", "ends_on", "venue", "mode", "expected_trainees",
                                        "contact_person", "contact_phone", "note", "version")})
    raw["schedule"] = _schedule_rows(form)
    try:
        data = FilingFormSchema().load(raw)
    except ValidationError as exc:
        errors = flatten(exc.messages, FIELD_LABELS)
        valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        starts_on, earliest = valid.get("starts_on"), services.earliest_start()
        if form.get("action") == "submit" and starts_on is not None and starts_on < earliest:
            # 保存并上报 would refuse the date too: said now, not after the other mistakes are mended
            errors.setdefault("starts_on",
                              f"须在举办前 {services.MIN_DAYS_BEFORE} 天上报，今天上报最早可选 {earliest}。")
        outside = services.schedule_outside(starts_on, valid.get("ends_on"), raw["schedule"])
        if outside:  # so is a session dated outside the days, once the dates can be read
            errors["schedule"] = f"{errors['schedule']} {outside}" if errors.get("schedule") else outside
        return None, errors, _keepable(valid, errors, valid.get("version"))
    # a form sends every field: a blank input clears the value (the JSON API leaves missing ones alone)
    for name in ("starts_on", "ends_on", "expected_trainees", "contact_phone"):
        data.setdefault(name, None)
    for name in ("venue", "contact_person", "note"):
        data.setdefault(name, "")
    return data, {}, {}


# the dates and the schedule are checked against each other: one refused, none of them is kept
_TIED = ("starts_on", "ends_on", "schedule")


def _keepable(valid: dict[str, Any], errors: dict[str, str], version: Any) -> dict[str, Any]:
    """Of a refused form, the typed fields that were right on their own, with the page's version: a refusal that
    stores the chosen files anyway stores these with them. A blank input is left alone (it clears nothing)."""
    refused = set(errors)
    if refused & set(_TIED):
        refused |= set(_TIED)
    kept = {k: v for k, v in valid.items() if k not in refused and k != "version" and v not in (None, "", [])}
    return {**kept, "version": version} if kept else {}


def _render_form(filing: Any, values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                 status: int = 200, typed_reason: str = "", not_submitted: str = "") -> Any:
    """The form; `not_submitted` is why 保存并上报 saved the draft but did not send it (all typed is saved)."""
    session = db.session()
    p = _me()
    info = services.filing_dict(session, p, filing)
    info["not_held_labels"] = services.not_held_labels(session, filing)
    if values is None:
        values = {k: info[k] if info[k] is not None else "" for k in
                  ("starts_on", "ends_on", "venue", "mode", "expected_trainees", "contact_person",
                   "contact_phone", "note", "version", "schedule")}
    rows = list(values["schedule"]) + [{"date": "", "start": "", "end": "", "title": ""}] * BLANK_ROWS
    return render_template("projects/filings/form.html", f=filing, info=info, v=values, rows=rows,
                           errors=errors or {}, modes=MODES, kinds=jpg.KINDS, labels=states.LABELS,
                           action_labels=states.ACTION_LABELS, editable=filing.state in states.EDITABLE,
                           earliest=services.earliest_start(), fmt_decimal=fmt_decimal, typed_reason=typed_reason,
                           not_submitted=not_submitted,
                           required=services.required_uploads(filing), max_mb=jpg.MAX_BYTES // (1024 * 1024)), status


@pages.get("/projects/filings/<int:filing_id>")
@access("institution")
def filing_form(filing_id: int) -> Any:
    return _render_form(services.get_filing(db.session(), _me(), filing_id))


@pages.post("/projects/filings/<int:filing_id>")
@access("institution")
def filing_save(filing_id: int) -> Any:
    session = db.session()
    p = _me()
    filing = services.get_filing(session, p, filing_id, lock=True)
    if request.form.get("action") == "submit" and services.just_submitted(session, p, filing):
        flash("已保存并上报，请等待陕西省继续医学教育委员会审批。", "ok")  # a double click: the first one's answer
        return redirect(f"/projects/filings/{filing.id}")
    values = _form_values(request.form)
    if page_version(request.form) is None:  # what was typed is shown again over the draft as it now is
        return _render_form(filing, {**values, "version": filing.version}, {"_schema": STALE_PAGE}, 409)
    data, errors, keepable = _load_filing_form(request.form)
    if errors:
        return _refused_keeping_files(filing_id, values, errors, 422, keepable)
    try:
        services.save_filing(session, p, filing, data)  # type: ignore[arg-type]
        for kind in jpg.KINDS:
            f = request.files.get(kind)
            if f is not None and f.filename:
                services.put_upload(session, p, filing, kind, f.filename, f.read())
    except AppError as exc:
        session.rollback()
        errors = exc.fields or {"_schema": exc.message}
        keepable = _keepable(data, errors, data.get("version")) if exc.fields else {}  # type: ignore[arg-type]
        return _refused_keeping_files(filing_id, values, errors, exc.status, keepable)
    if request.form.get("action") == "submit":
        try:
            services.submit_filing(session, p, filing)
        except AppError as exc:
            commit()  # the draft is kept; only the 上报 was refused
            # one message: saved, not sent, and why (what is missing is said again beside its field)
            return _render_form(filing, None, {k: v for k, v in exc.fields.items() if k != "missing"}, exc.status,
                                not_submitted=exc.message)
        commit()
        flash("已保存并上报，请等待陕西省继续医学教育委员会审批。", "ok")
    else:
        commit()
        flash("已保存。", "ok")
    return redirect(f"/projects/filings/{filing.id}")


def _missing_as_typed(filing: Any, values: dict[str, Any]) -> list[str]:
    """The fields 保存并上报 would find empty, by the form as typed and the JPGs the draft now holds."""
    blank = [field for field, _label in services.REQUIRED_FIELDS if not values.get(field)]
    return blank + [k for k in services.required_uploads(filing, values.get("mode")) if filing.upload(k) is None]


def _refused_keeping_files(filing_id: int, values: dict[str, Any], errors: dict[str, str], status: int,
                           keepable: dict[str, Any] | None = None) -> Any:
    """The fields were refused: the files chosen with them are kept all the same (a browser cannot put a chosen
    file back into the form, and choosing three JPGs again after mending a date is what the office should not
    have to do). Each good JPG is stored on the draft in a transaction of its own; a bad one is refused next to
    its field. Once files are stored, so are the typed fields that were right (`keepable`), unless the page was
    older than the draft: an office that leaves after a refused first 保存 finds its dates and venue with the
    files, not files alone. The form comes back with what was typed and the filing's new version."""
    session = db.session()
    p = _me()
    filing = services.get_filing(session, p, filing_id, lock=True)
    kept: list[str] = []
    fields_kept = False
    if filing.state in states.EDITABLE:
        typed_on = filing.version  # before the files bump it: was the page the draft as it now is?
        for kind, label in jpg.KINDS.items():
            f = request.files.get(kind)
            if f is None or not f.filename:
                continue
            f.stream.seek(0)  # read already when the whole save was tried
            try:
                with savepoint(session):
                    services.put_upload(session, p, filing, kind, f.filename, f.read())
                kept.append(label)
            except AppError as exc:
                errors.setdefault(kind, exc.message)
        if kept and keepable and keepable.get("version") == typed_on:
            try:
                with savepoint(session):
                    services.save_filing(session, p, filing, {k: v for k, v in keepable.items() if k != "version"})
                fields_kept = True
            except AppError:
                pass  # e.g. new dates against the schedule saved before: those stay as they were
    if request.form.get("action") == "submit" and filing.state in states.EDITABLE:
        # 保存并上报 refused for a mistake: what it would still find empty is said next to its field too, so that
        # a missing 线上学员授予学分监管说明 is not found out one round later
        for field in _missing_as_typed(filing, values):
            errors.setdefault(field, services.missing_message(field))
    if kept:
        commit()
        values = {**values, "version": filing.version}
        also = "，填写正确的其他内容也已保存" if fields_kept else ""
        errors = {**errors,
                  "_kept": f"已保存所选附件（{'、'.join(kept)}），无需重新选择{also}；请修改标出的内容后再保存。"}
    else:
        session.rollback()
        filing = services.get_filing(session, p, filing_id)
    return _render_form(filing, values, errors, status)


@pages.post("/projects/filings/<int:filing_id>/delete")
@access("institution")
def filing_delete(filing_id: int) -> Any:
    session = db.session()
    filing = services.get_filing(session, _me(), filing_id, lock=True)
    offering = services.delete_draft(session, _me(), filing, require_page_version(request.form))
    commit()
    flash(f"已删除 {offering.project.number} {offering.label}的登记草稿；需要时可重新登记。", "ok")
    return redirect("/projects/filings")


@pages.post("/projects/filings/<int:filing_id>/cancel")
@access("institution")
def filing_cancel(filing_id: int) -> Any:
    session = db.session()
    filing = services.get_filing(session, _me(), filing_id, lock=True)
    version = require_page_version(request.form)
    data, errors = load_form(CancelFormSchema(), request.form)
    if errors:  # what was typed comes back beside the refusal
        return _render_form(filing, errors={"reason": errors.get("reason", "请填写未举办的原因。")}, status=422,
                            typed_reason=request.form.get("reason", ""))
    services.end_filing(session, _me(), filing, "cancel", data["reason"], version)  # type: ignore[index]
    commit()
    flash(f"已取消举办：{filing.project.title} {filing.offering.label}。本项目可另登记一期。", "ok")
    return redirect("/projects/filings")


@pages.get("/projects/filings/<int:filing_id>/uploads/<kind>")
@access("institution", "reviewer")
def filing_upload(filing_id: int, kind: str) -> Any:
    """An upload is shown to its own institution and to the committee (once sent), to nobody else."""
    session = db.session()
    p = _me()
    if p.role == "reviewer":
        from ..reviews.services import get_for_review

        filing = get_for_review(session, filing_id)
    else:
        filing = services.get_filing(session, p, filing_id)
    up = filing.upload(kind)
    if up is None:
        raise AppError(404, "not_found", "该附件不存在。")
    resp = Response(up.data, mimetype="image/jpeg")
    resp.headers["Cache-Control"] = "private, no-store"
    resp.headers["Content-Disposition"] = "inline"
    resp.headers["Content-Security-Policy"] = "default-src 'none'"
    return resp


# ---- JSON API ----------------------------------------------------------------------------------


def _out(filing: Any) -> dict[str, Any]:
    return services.filing_dict(db.session(), _me(), filing)


@api.route("/filings", methods=["GET"])
@access("institution")
@api.arguments(FilingsQuerySchema, location="query")
@api.response(200, ProjectRowPageSchema)
@api.doc(security=BEARER, summary="本机构项目及各期登记状态（next_label 如 第一期未登记）")
def api_filing_list(args: dict[str, Any]) -> Any:
    return services.own_projects_page(db.session(), _me(), args)


@api.route("/projects/<int:project_id>/offerings", methods=["POST"])
@access("institution")
@api.response(201, FilingOutSchema)
@api.doc(security=BEARER, summary="登记下一期：创建（或打开已有的）第一个未登记期次的草稿")
def api_filing_start(project_id: int) -> Any:
    filing = services.start_offering(db.session(), _me(), project_id)
    commit()
    return _out(filing), 201


@api.route("/filings/<int:filing_id>", methods=["GET"])
@access("institution")
@api.response(200, FilingOutSchema)
@api.doc(security=BEARER, summary="登记详情")
def api_filing_get(filing_id: int) -> Any:
    return _out(services.get_filing(db.session(), _me(), filing_id))


@api.route("/filings/<int:filing_id>", methods=["PUT"])
@access("institution")
@api.response(200, FilingOutSchema)
@api.doc(security=BEARER, summary="保存（草稿或被退回的登记）；只修改提交的字段",
         requestBody={"content": {"application/json": {"schema": FilingInSchema}}})
def api_filing_put(filing_id: int) -> Any:
    session = db.session()
    filing = services.get_filing(session, _me(), filing_id, lock=True)
    data = load_json(FilingInSchema(), FIELD_LABELS)
    services.save_filing(session, _me(), filing, data)
    commit()
    return _out(filing)


@api.route("/filings/<int:filing_id>", methods=["DELETE"])
@access("institution")
@api.response(204)
@api.doc(security=BEARER, summary="删除草稿（仅从未上报的草稿，连同该期次；已退回的不能删除）",
         requestBody={"content": {"application/json": {"schema": SubmitSchema}}})
def api_filing_delete(filing_id: int) -> Any:
    session = db.session()
    filing = services.get_filing(session, _me(), filing_id, lock=True)
    data = load_json(SubmitSchema())
    services.delete_draft(session, _me(), filing, data.get("version"))
    commit()
    return "", 204


@api.route("/filings/<int:filing_id>/uploads/<kind>", methods=["POST"])
@access("institution")
@api.response(201, UploadOutSchema)
@api.doc(security=BEARER, summary="上传 JPG（multipart，字段 file）；kind = notice | agenda | online_supervision")
def api_filing_upload(filing_id: int, kind: str) -> Any:
    session = db.session()
    filing = services.get_filing(session, _me(), filing_id, lock=True)
    f = request.files.get("file")
    if f is None or not f.filename:
        raise AppError(422, "invalid_input", "请选择要上传的 JPG 图片。", {"file": "请选择文件。"})
    up = services.put_upload(session, _me(), filing, kind, f.filename, f.read())
    commit()
    return {"kind": up.kind, "label": jpg.KINDS[up.kind], "filename": up.filename, "size": up.size,
            "width": up.width, "height": up.height, "sha256": up.sha256,
            "url": f"/projects/filings/{filing.id}/uploads/{up.kind}"}, 201


@api.route("/filings/<int:filing_id>/submit", methods=["POST"])
@access("institution")
@api.response(200, FilingOutSchema)
@api.doc(security=BEARER, summary="保存并上报（开始日期须在 7 天之后）")
def api_filing_submit(filing_id: int) -> Any:
    session = db.session()
    filing = services.get_filing(session, _me(), filing_id, lock=True)
    data = load_json(SubmitSchema())
    services.submit_filing(session, _me(), filing, data.get("version"))
    commit()
    return _out(filing)


def load_cancel() -> dict[str, Any]:
    """The JSON body of 取消举办 or 标记未举办, its refusal in the sentence the page shows beside the field."""
    try:
        return load_json(CancelSchema())
    except AppError as exc:
        raise cancel_refused(exc) from None


@api.route("/filings/<int:filing_id>/cancel", methods=["POST"])
@access("institution")
@api.response(200, FilingOutSchema)
@api.doc(security=BEARER, summary="取消举办（审批通过且尚未开始的期次；reason 必填；同一事务写出 offering.cancelled）",
         requestBody={"content": {"application/json": {"schema": CancelSchema}}})
def api_filing_cancel(filing_id: int) -> Any:
    session = db.session()
    filing = services.get_filing(session, _me(), filing_id, lock=True)
    data = load_cancel()
    services.end_filing(session, _me(), filing, "cancel", data["reason"], data.get("version"))
    commit()
    return _out(filing)
