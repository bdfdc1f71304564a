"""Pages and JSON API of 二维码考勤: 刷卡周期 (windows), 代签 (forced check-ins) and the 签到名单 (check-in list).

Access: the institution that owns the activity (another institution gets "not found"); a reviewer of
the committee may read the windows and the check-in list (and export it, audit-logged), nothing else.
Every input goes through a schema in schemas.py; every rule lives in services.py, shared by both faces.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, flash, redirect, render_template, request
from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import Schema, ValidationError

from services.common import clock, inputs, pii
from services.common.auth import Principal, access, current
from services.common.errors import AppError
from services.common.identity import TITLES
from services.common.inputs import flatten as _flatten
from services.common.inputs import load_json, page_version
from services.common.schemas import STALE_PAGE, load_form, strip_blank
from services.common.web import XLSX, download

from ..db import db
from . import services
from .models import KINDS
from .schemas import (
    FIELD_LABELS,
    CheckinPageSchema,
    CheckinQuerySchema,
    CheckinSearchSchema,
    ForcedCheckinFormSchema,
    ForcedCheckinSchema,
    ForcedOutSchema,
    RefusedListSchema,
    RefusedQuerySchema,
    WindowCreateFormSchema,
    WindowCreateSchema,
    WindowListSchema,
    WindowOutSchema,
    WindowUpdateFormSchema,
    WindowUpdateSchema,
)

pages = Blueprint("checkin_windows", __name__, template_folder="templates")
api = ApiBlueprint("checkin_windows_api", __name__, url_prefix="/checkin/api",
                   description="二维码考勤：刷卡周期、代签、签到名单")
BEARER = [{"bearer": []}]
SEALED_SEARCH_TTL = 4 * 3600  # a page searched in the morning still exports in the afternoon


def _me() -> Principal:
    p = current()
    assert p is not None  # @access made sure
    return p


def commit() -> None:
    db.commit("该刷卡周期已被他人修改，请刷新页面后重试。")


def load_query(schema: Schema) -> dict[str, Any]:
    return inputs.load_query(schema, FIELD_LABELS)


def local_input(value: dt.datetime | None) -> str:
    """An aware time as the value of an <input type="datetime-local"> in Shanghai time."""
    return clock.fmt(value, "%Y-%m-%dT%H:%M") if value else ""


# ---- 刷卡周期: pages ------------------------------------------------------------------------------

@pages.get("/checkin/activities/<int:activity_id>/windows")
@access("institution", "reviewer")
def window_list(activity_id: int) -> Any:
    session = db.session()
    activity = services.get_activity(session, _me(), activity_id)
    counts = services.checkin_counts(session, activity.id)
    rows = [services.window_dict(w, counts.get(w.id, (0, 0))) for w in services.list_windows(session, activity)]
    # a cancelled 期's windows are history: listed with their check-ins, without the actions it refuses
    return render_template("checkin/windows/list.html", a=activity, rows=rows, states=services.STATE_LABELS,
                           can_edit=_me().role == "institution" and not activity.cancelled)


def _render_window_form(activity: Any, window: Any, values: dict[str, Any], errors: dict[str, str],
                        status: int = 200) -> Any:
    scans = services.window_count(db.session(), window.id)[0] if window is not None else 0
    return render_template("checkin/windows/form.html", a=activity, w=window, v=values, errors=errors,
                           kinds=KINDS, scans=scans), status


def _form_values(form: Any) -> dict[str, Any]:
    return {k: form.get(k, "") for k in ("title", "kind", "starts_at", "ends_at", "reason", "version")}


@pages.get("/checkin/activities/<int:activity_id>/windows/new")
@access("institution")
def window_new(activity_id: int) -> Any:
    activity = services.get_activity(db.session(), _me(), activity_id)
    activity.refuse_if_cancelled("不能新建刷卡周期")
    day = activity.starts_on.isoformat()
    return _render_window_form(activity, None, {"title": "", "kind": "sign_in", "starts_at": f"{day}T08:00",
                                                "ends_at": f"{day}T12:00"}, {})


@pages.post("/checkin/activities/<int:activity_id>/windows")
@access("institution")
def window_create(activity_id: int) -> Any:
    session = db.session()
    activity = services.get_activity(session, _me(), activity_id, lock=True)
    values = _form_values(request.form)
    data, errors = load_form(WindowCreateFormSchema(), request.form)
    if errors:
        return _render_window_form(activity, None, values, errors, 422)
    try:
        window = services.create_window(session, _me(), activity, data)  # type: ignore[arg-type]
    except AppError as exc:
        session.rollback()
        return _render_window_form(activity, None, values, exc.fields or {"_schema": exc.message}, exc.status)
    commit()
    flash(f"已新建刷卡周期“{window.title}”。", "ok")
    return redirect(f"/checkin/activities/{activity.id}/windows")


@pages.get("/checkin/activities/<int:activity_id>/windows/<int:window_id>/edit")
@access("institution")
def window_edit(activity_id: int, window_id: int) -> Any:
    window = services.get_window(db.session(), _me(), activity_id, window_id)
    window.activity.refuse_if_cancelled("不能修改刷卡周期")
    values = {"title": window.title, "kind": window.kind, "starts_at": local_input(window.starts_at),
              "ends_at": local_input(window.ends_at), "reason": "", "version": window.version}
    return _render_window_form(window.activity, window, values, {})


@pages.post("/checkin/activities/<int:activity_id>/windows/<int:window_id>/edit")
@access("institution")
def window_save(activity_id: int, window_id: int) -> Any:
    session = db.session()
    window = services.get_window(session, _me(), activity_id, window_id, lock=True)
    values = _form_values(request.form)
    if page_version(request.form) is None:  # a page always sends one: garbled or gone is a stale page
        return _render_window_form(window.activity, window, {**values, "version": window.version},
                                   {"_schema": STALE_PAGE}, 409)
    data, errors = load_form(WindowUpdateFormSchema(), request.form)
    if errors:
        return _render_window_form(window.activity, window, values, errors, 422)
    try:
        changed = services.update_window(session, _me(), window, data)  # type: ignore[arg-type]
    except AppError as exc:
        session.rollback()
        window = services.get_window(session, _me(), activity_id, window_id)
        errors = dict(exc.fields or {})
        if not errors or exc.code == services.CHECKINS_OUTSIDE:  # its fields say where, the message says why
            errors["_schema"] = exc.message
        return _render_window_form(window.activity, window, values, errors, exc.status)
    commit()
    flash("已保存。" if changed else "没有修改任何内容。", "ok")
    return redirect(f"/checkin/activities/{activity_id}/windows")


@pages.post("/checkin/activities/<int:activity_id>/windows/<int:window_id>/delete")
@access("institution")
def window_delete(activity_id: int, window_id: int) -> Any:
    session = db.session()
    window = services.get_window(session, _me(), activity_id, window_id, lock=True)
    title = window.title
    try:
        services.delete_window(session, _me(), window)
    except AppError as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(f"/checkin/activities/{activity_id}/windows")
    commit()
    flash(f"已删除刷卡周期“{title}”。", "ok")
    return redirect(f"/checkin/activities/{activity_id}/windows")


# ---- 代签: pages --------------------------------------------------------------------------------

def _render_forced(window: Any, values: dict[str, Any], errors: dict[str, str], status: int = 200) -> Any:
    now = clock.now()
    # the picker offers no 到场时间 the service refuses: inside the window, and not later than now
    return render_template("checkin/windows/forced.html", a=window.activity, w=window, v=values, errors=errors,
                           titles=TITLES, not_started=now < window.starts_at,
                           present_max=min(now, window.ends_at)), status


@pages.get("/checkin/activities/<int:activity_id>/windows/<int:window_id>/forced")
@access("institution")
def forced_form(activity_id: int, window_id: int) -> Any:
    window = services.get_window(db.session(), _me(), activity_id, window_id)
    window.activity.refuse_if_cancelled("不能代签")
    return _render_forced(window, {"nonce": services.new_forced_nonce()}, {})


@pages.post("/checkin/activities/<int:activity_id>/windows/<int:window_id>/forced")
@access("institution")
def forced_submit(activity_id: int, window_id: int) -> Any:
    session = db.session()
    window = services.get_window(session, _me(), activity_id, window_id)
    values = {k: request.form.get(k, "")
              for k in ("name", "id_number", "mobile", "title", "unit", "reason", "present_at", "nonce")}
    data, errors = load_form(ForcedCheckinFormSchema(), request.form)
    if errors:
        return _render_forced(window, values, errors, 422)
    assert data is not None
    reason, nonce, present_at = data.pop("reason"), data.pop("nonce", None), data.pop("present_at", None)
    try:
        checkin, created = services.forced_checkin(session, _me(), window, data, reason, nonce, present_at)
    except AppError as exc:
        session.rollback()
        return _render_forced(window, values, exc.fields or {"_schema": exc.message}, exc.status)
    name, kept = checkin.trainee.name, services.kept_details(checkin.trainee, data)
    commit()
    if created:
        flash(f"已为 {name} 代签（{window.title}）。代签记录标记为“代签”，并记入操作日志。"
              + (f"该学员已登记过本人信息，{'、'.join(kept)}以其本人登记的为准，未按本次填写更改。" if kept else ""),
              "ok")
    else:
        flash(f"{name} 在本时段已有签到记录（{clock.fmt(checkin.scanned_at)}），未重复签到。", "error")
    return redirect(f"/checkin/activities/{activity_id}/checkins?window_id={window.id}")


# ---- 签到名单: pages ------------------------------------------------------------------------------

def _render_checkins(activity: Any, args: dict[str, Any], result: dict[str, Any], q_shown: str,
                     sealed_q: str = "") -> Any:
    """`sealed_q`: a full number searched for, encrypted, so 导出 Excel (a POST) exports what the page lists
    without the number being written into the page."""
    session = db.session()
    windows = services.list_windows(session, activity)
    refused_total, refused = services.refused_scans(session, activity, args.get("window_id"))
    keep = {k: v for k, v in args.items() if k in ("q", "window_id") and v not in (None, "")}
    resp = Response(render_template("checkin/windows/checkins.html", a=activity, args=args, result=result,
                                    windows=windows, keep=keep, q_shown=q_shown, refused=refused,
                                    refused_total=refused_total, sealed_q=sealed_q,
                                    can_force=_me().role == "institution"))
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


def _no_number_in_address(args: dict[str, Any]) -> dict[str, Any]:
    """The pages' search posts a number; one typed into an address (or a link passed on) is refused rather than
    searched for, so no page teaches that an ID number or a mobile may sit in the browser's history."""
    if services.search_kind(args.get("q")) not in (None, "name"):
        raise AppError(422, "number_in_address", "身份证号码和手机号码请在签到名单页面的检索框中输入后点击“查询”，"
                       "不要写在网址中。")
    return args


@pages.get("/checkin/activities/<int:activity_id>/checkins")
@access("institution", "reviewer")
def checkin_list(activity_id: int) -> Any:
    session = db.session()
    activity = services.get_activity(session, _me(), activity_id)
    args = _no_number_in_address(load_query(CheckinQuerySchema()))
    result = services.checkin_page(session, activity, args)
    args["page"] = result["page"]
    return _render_checkins(activity, args, result, args.get("q") or "")


@pages.post("/checkin/activities/<int:activity_id>/checkins")
@access("institution", "reviewer")
def checkin_search(activity_id: int) -> Any:
    """The search form posts, so a full ID number or mobile never lands in a URL (or an access log).
    A name search is sent on to the ordinary GET page, whose links can be paged and bookmarked."""
    session = db.session()
    activity = services.get_activity(session, _me(), activity_id)
    args = _search_form()
    kind = services.search_kind(args.get("q"))
    if kind in (None, "name"):
        keep = {k: v for k, v in args.items() if k in ("q", "window_id") and v not in (None, "")}
        query = "&".join(f"{k}={quote(str(v))}" for k, v in keep.items())
        return redirect(f"/checkin/activities/{activity.id}/checkins" + (f"?{query}" if query else ""))
    args["per_page"] = 100
    result = services.checkin_page(session, activity, args)
    shown = {"id": "身份证号码（已隐藏）", "mobile": "手机号码（已隐藏）"}.get(
        kind, "号码（已隐藏；请输入完整的身份证号码或手机号码）")
    sealed = pii.seal(args["q"])
    args["q"] = None  # the number is not echoed into the page's links
    return _render_checkins(activity, args, result, shown, sealed)


def _search_form() -> dict[str, Any]:
    raw = strip_blank({k: request.form.get(k, "").strip() for k in ("q", "window_id")})
    try:
        return CheckinSearchSchema().load(raw)
    except ValidationError as exc:
        fields = {FIELD_LABELS.get(k, k): v for k, v in _flatten(exc.messages).items()}
        raise AppError(422, "invalid_input", "查询条件有误，请修改后重新查询。", fields) from exc


@pages.get("/checkin/activities/<int:activity_id>/checkins.xlsx")
@access("institution", "reviewer")
def checkin_export(activity_id: int) -> Any:
    activity = services.get_activity(db.session(), _me(), activity_id)
    return _export(activity, _no_number_in_address(load_query(CheckinQuerySchema())))


@pages.post("/checkin/activities/<int:activity_id>/checkins.xlsx")
@access("institution", "reviewer")
def checkin_export_search(activity_id: int) -> Any:
    """导出 Excel from the 签到名单 page: the list as that page's search gave it, a full ID number or mobile
    included (posted, so it stays out of the address; the page holds it sealed)."""
    activity = services.get_activity(db.session(), _me(), activity_id)
    args = _search_form()
    if request.form.get("q_sealed"):
        try:
            args["q"] = pii.unseal(request.form["q_sealed"], SEALED_SEARCH_TTL)
        except ValueError as exc:
            raise AppError(422, "search_expired", "这次检索的页面已打开太久，请重新查询后再导出。") from exc
    return _export(activity, args)


def _export(activity: Any, args: dict[str, Any]) -> Any:
    session = db.session()
    data, _n = services.export_checkins(session, _me(), activity, args.get("q"), args.get("window_id"))
    session.commit()  # the audit entry of the export
    name = f"签到名单-{activity.project_number}-{activity.seq_label}.xlsx"
    return download(data, XLSX, "checkins.xlsx", name)


# ---- JSON API ----------------------------------------------------------------------------------

def _window_out(window: Any) -> dict[str, Any]:
    return services.window_dict(window, services.window_count(db.session(), window.id))


@api.route("/activities/<int:activity_id>/windows", methods=["GET"])
@access("institution", "reviewer")
@api.response(200, WindowListSchema)
@api.doc(security=BEARER, summary="刷卡周期列表（含各时段签到人数）")
def api_window_list(activity_id: int) -> Any:
    session = db.session()
    activity = services.get_activity(session, _me(), activity_id)
    counts = services.checkin_counts(session, activity.id)
    return {"items": [services.window_dict(w, counts.get(w.id, (0, 0)))
                      for w in services.list_windows(session, activity)]}


@api.route("/activities/<int:activity_id>/windows", methods=["POST"])
@access("institution")
@api.response(201, WindowOutSchema)
@api.doc(security=BEARER, summary="新建刷卡周期",
         requestBody={"content": {"application/json": {"schema": WindowCreateSchema}}})
def api_window_create(activity_id: int) -> Any:
    session = db.session()
    activity = services.get_activity(session, _me(), activity_id, lock=True)
    data = load_json(WindowCreateSchema())
    window = services.create_window(session, _me(), activity, data)
    commit()
    return _window_out(window), 201


@api.route("/activities/<int:activity_id>/windows/<int:window_id>", methods=["GET"])
@access("institution", "reviewer")
@api.response(200, WindowOutSchema)
@api.doc(security=BEARER, summary="刷卡周期详情")
def api_window_get(activity_id: int, window_id: int) -> Any:
    return _window_out(services.get_window(db.session(), _me(), activity_id, window_id))


@api.route("/activities/<int:activity_id>/windows/<int:window_id>", methods=["PUT"])
@access("institution")
@api.response(200, WindowOutSchema)
@api.doc(security=BEARER, summary="修改刷卡周期（只改提交的字段；已有签到时须填写 reason，记入操作日志）",
         requestBody={"content": {"application/json": {"schema": WindowUpdateSchema}}})
def api_window_update(activity_id: int, window_id: int) -> Any:
    session = db.session()
    window = services.get_window(session, _me(), activity_id, window_id, lock=True)
    data = load_json(WindowUpdateSchema())
    services.update_window(session, _me(), window, data)
    commit()
    return _window_out(window)


@api.route("/activities/<int:activity_id>/windows/<int:window_id>", methods=["DELETE"])
@access("institution")
@api.response(204)
@api.doc(security=BEARER, summary="删除刷卡周期（仅限尚无签到记录的）")
def api_window_delete(activity_id: int, window_id: int) -> Any:
    session = db.session()
    window = services.get_window(session, _me(), activity_id, window_id, lock=True)
    services.delete_window(session, _me(), window)
    commit()
    return "", 204


@api.route("/activities/<int:activity_id>/windows/<int:window_id>/forced", methods=["POST"])
@access("institution")
@api.response(201, ForcedOutSchema)
@api.response(200, ForcedOutSchema, description="该学员在本时段已有签到（或同一 nonce 已提交），未重复记录")
@api.doc(security=BEARER, summary="代签：须填写原因；标记为代签并记入操作日志",
         requestBody={"content": {"application/json": {"schema": ForcedCheckinSchema}}})
def api_forced(activity_id: int, window_id: int) -> Any:
    session = db.session()
    window = services.get_window(session, _me(), activity_id, window_id)
    data = load_json(ForcedCheckinSchema())
    reason, nonce, present_at = data.pop("reason"), data.pop("nonce", None), data.pop("present_at", None)
    checkin, created = services.forced_checkin(session, _me(), window, data, reason, nonce, present_at)
    row = services.checkin_row(checkin)
    commit()
    return {"created": created, "checkin": row}, 201 if created else 200


@api.route("/activities/<int:activity_id>/checkins", methods=["GET"])
@access("institution", "reviewer")
@api.arguments(CheckinQuerySchema, location="query")
@api.response(200, CheckinPageSchema)
@api.doc(security=BEARER, summary="签到名单（身份证号码、手机号码打码）；按完整证件号检索请用 POST …/checkins/search")
def api_checkin_list(args: dict[str, Any], activity_id: int) -> Any:
    session = db.session()
    activity = services.get_activity(session, _me(), activity_id)
    return services.checkin_page(session, activity, args)


@api.route("/activities/<int:activity_id>/checkins/search", methods=["POST"])
@access("institution", "reviewer")
@api.response(200, CheckinPageSchema)
@api.doc(security=BEARER, summary="签到名单检索（正文 {q, window_id, page, per_page}；证件号不进入网址和日志）",
         requestBody={"content": {"application/json": {"schema": CheckinSearchSchema}}})
def api_checkin_search(activity_id: int) -> Any:
    session = db.session()
    activity = services.get_activity(session, _me(), activity_id)
    args = load_json(CheckinSearchSchema())
    return services.checkin_page(session, activity, args)


@api.route("/activities/<int:activity_id>/refused-scans", methods=["GET"])
@access("institution", "reviewer")
@api.arguments(RefusedQuerySchema, location="query")
@api.response(200, RefusedListSchema)
@api.doc(security=BEARER, summary="被拒绝的扫码（最近 50 条）及原因")
def api_refused(args: dict[str, Any], activity_id: int) -> Any:
    session = db.session()
    activity = services.get_activity(session, _me(), activity_id)
    total, items = services.refused_scans(session, activity, args.get("window_id"))
    return {"total": total, "items": items}
