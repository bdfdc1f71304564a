"""Login pages and JSON API: password -> (first login: 机构负责人) -> pick -> SMS code -> session.

Each action calls one function of services.py; a view only loads input, calls it and commits once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, flash, make_response, redirect, render_template, request
from flask_smorest import Blueprint as ApiBlueprint
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common import auth as cauth
from services.common.auth import access, current, issue_token, set_login_cookie
from services.common.config import get_settings
from services.common.errors import AppError, KeptError
from services.common.schemas import load_form
from services.common.sms_codes import PendingSms

from ..audit import models as audit
from ..db import db
from ..institutions.models import Institution
from ..institutions.services import admin_note, change_own_password
from . import schemas as sc
from . import services as svc

pages = Blueprint("projects_auth", __name__, template_folder="templates")
api = ApiBlueprint("projects_auth_api", __name__, url_prefix="/projects/api",
                   description="登录：账号密码、机构负责人、短信验证码")

T = TypeVar("T")


def act(fn: Callable[[Session], T]) -> T:
    """act -> one commit; a refusal rolls back, except a counted wrong try (KeptError) which is kept."""
    session = db.session
    try:
        result = fn(session)
    except KeptError:
        session.commit()
        raise
    except Exception:
        session.rollback()
        raise
    session.commit()
    return result


def deliver(pending: PendingSms) -> None:
    """After the commit: send the SMS; if it cannot leave, remove the code so a retry is not blocked."""
    pending.deliver(lambda code_id: act(lambda s: svc.forget_code(s, code_id)))


# ------------------------------------------------------------------ pages


def _pre_cookie(response: Any, token: str) -> Any:
    response.set_cookie(svc.PRE_COOKIE, token, max_age=svc.PRE_MAX_AGE, httponly=True, samesite="Lax",
                        secure=get_settings().public_base_url.startswith("https"), path="/projects")
    return response


def _pre_or_none() -> svc.PreLogin | None:
    try:
        return svc.read_pre(request.cookies.get(svc.PRE_COOKIE))
    except AppError:
        return None


def _back_to_login() -> Any:
    flash("登录已过期，请重新输入账号和密码。", "error")
    resp = redirect("/projects/login")
    resp.delete_cookie(svc.PRE_COOKIE, path="/projects")
    return resp


@pages.route("/projects/login", methods=["GET", "POST"])
@access("public")
def login_page() -> Any:
    form: dict[str, Any] = {"kind": request.args.get("kind", "institution")}
    errors: dict[str, Any] = {}
    if request.method == "GET":
        then = cauth.safe_next(request.args.get("next"))
        resp = make_response(render_template("auth/login.html", form=form, errors=errors, kinds=svc.KIND_LABELS,
                                             then=then))
        if then:  # a page asked for before logging in: opened again once the SMS code is verified
            resp.set_cookie(cauth.NEXT_COOKIE, then, max_age=svc.PRE_MAX_AGE, httponly=True, samesite="Lax",
                            path="/projects")
        return resp
    cauth.check_public_csrf()
    form = {k: v for k, v in request.form.items() if k in ("kind", "account")}
    data, errors = load_form(sc.LoginForm(), request.form)
    if data is None:
        return render_template("auth/login.html", form=form, errors=errors, kinds=svc.KIND_LABELS), 422
    try:
        pre = act(lambda s: svc.password_login(s, data["kind"], data["account"], data["password"]))
    except AppError as exc:
        return render_template("auth/login.html", form=form, errors=exc.fields, message=exc.message,
                               kinds=svc.KIND_LABELS), exc.status
    resp = redirect("/projects/login/admins" if pre.first else "/projects/login/sms")
    return _pre_cookie(resp, pre.token())


@pages.route("/projects/login/admins", methods=["GET", "POST"])
@access("public")
def first_admins_page() -> Any:
    pre = _pre_or_none()
    if pre is None:
        return _back_to_login()
    session = db.session
    if not pre.first:  # already has responsible persons: straight to the pick-and-SMS step
        return redirect("/projects/login/sms")
    added = svc.choices(session, pre)
    if request.method == "GET":
        return render_template("auth/first_admins.html", added=added, form={}, errors={})
    cauth.check_public_csrf()
    return _admin_form_step(
        lambda d: act(lambda s: svc.add_first_admin(s, pre, d["real_name"], d["mobile"])),
        lambda form, errors, status: (render_template("auth/first_admins.html", added=added, form=form,
                                                      errors=errors), status),
        action="/projects/login/admins", done="/projects/login/admins")


def _admin_form_step(save: Callable[[dict[str, Any]], Any], again: Callable[[dict, dict, int], Any],
                     action: str, done: str) -> Any:
    """新增 -> 确认信息 (tick 确认信息无误) -> 确定 -> 添加成功; shared by the first login and /projects/admins."""
    form = {k: request.form.get(k, "") for k in ("real_name", "mobile")}
    data, errors = load_form(sc.AdminForm(), request.form)
    if data is None:
        return again(form, errors, 422)
    if request.form.get("step") != "confirm" or data.get("confirm") != "1":
        confirm_error = "请勾选“确认信息无误”后点击确定。" if request.form.get("step") == "confirm" else ""
        return render_template("auth/admin_confirm.html", form=form, action=action, error=confirm_error)
    try:
        save(data)
    except AppError as exc:
        return again(form, exc.fields or {"mobile": exc.message}, exc.status)
    flash(f"添加成功：{data['real_name']}。", "ok")
    return redirect(done)


@pages.get("/projects/login/sms")
@access("public")
def sms_page() -> Any:
    pre = _pre_or_none()
    if pre is None:
        return _back_to_login()
    session = db.session
    if svc.needs_admins(session, pre):
        return redirect("/projects/login/admins")
    return _render_sms(pre, request.args.get("admin_id", ""), {}, None, 200)


def _render_sms(pre: svc.PreLogin, selected: str, errors: dict[str, Any], message: str | None, status: int) -> Any:
    people = svc.choices(db.session, pre)
    return render_template("auth/sms.html", people=people, selected=str(selected), errors=errors,
                           message=message, reviewer=pre.kind == "reviewer"), status


@pages.post("/projects/login/sms/send")
@access("public")
def sms_send_page() -> Any:
    pre = _pre_or_none()
    if pre is None:
        return _back_to_login()
    cauth.check_public_csrf()
    data, errors = load_form(sc.SmsSendForm(), request.form)
    selected = request.form.get("admin_id", "")
    if data is None:
        return _render_sms(pre, selected, errors, "请选择接收验证码的负责人。", 422)
    try:
        pending = act(lambda s: svc.send_code(s, pre, data["admin_id"]))
        deliver(pending)
    except AppError as exc:
        return _render_sms(pre, selected, exc.fields, exc.message, exc.status)
    flash(f"验证码已发送至 {pending.mobile_masked}，5分钟内有效。", "ok")
    return redirect(f"/projects/login/sms?admin_id={selected}")


def _landing(principal: Any) -> str:
    """Where a login lands: an office still on the committee's password (新建, 重置密码) is asked to set its own."""
    if principal.role == "institution" and db.session.scalar(
            select(Institution.password_initial).where(Institution.id == principal.institution_id)):
        return "/projects/password"
    return "/projects/"


@pages.post("/projects/login/sms/verify")
@access("public")
def sms_verify_page() -> Any:
    pre = _pre_or_none()
    if pre is None:
        return _back_to_login()
    cauth.check_public_csrf()
    data, errors = load_form(sc.SmsVerifyForm(), request.form)
    selected = request.form.get("admin_id", "")
    if data is None:
        return _render_sms(pre, selected, errors, "请输入收到的6位验证码。", 422)
    try:
        principal = act(lambda s: svc.verify_code(s, pre, data["admin_id"], data["code"]))
    except AppError as exc:
        return _render_sms(pre, selected, exc.fields, exc.message, exc.status)
    resp = redirect(cauth.safe_next(request.cookies.get(cauth.NEXT_COOKIE)) or _landing(principal))
    resp.delete_cookie(svc.PRE_COOKIE, path="/projects")
    resp.delete_cookie(cauth.NEXT_COOKIE, path="/projects")
    return set_login_cookie(resp, principal)


@pages.post("/projects/logout")
@access("public")  # a stale or broken cookie must still be able to log out
def logout() -> Any:
    cauth.end_this_session()  # a copy of the cookie (another tab, a shared computer) is refused too
    resp = redirect("/projects/login")
    resp.delete_cookie(svc.PRE_COOKIE, path="/projects")
    return cauth.clear_login_cookie(resp)


@pages.route("/projects/admins", methods=["GET", "POST"])
@access("institution")
def own_admins_page() -> Any:
    principal = current()
    assert principal is not None
    admins = svc.list_admins(db.session, principal)
    if request.method == "GET":
        return render_template("auth/admins.html", admins=admins, form={}, errors={})
    return _admin_form_step(
        lambda d: act(lambda s: svc.add_own_admin(s, principal, d["real_name"], d["mobile"])),
        lambda form, errors, status: (render_template("auth/admins.html", admins=admins, form=form,
                                                      errors=errors), status),
        action="/projects/admins", done="/projects/admins")


def _remove_admin(admin_id: int, reason: str) -> str:
    """移除机构负责人: her sessions end (or nothing is done), and the committee sees it in the institution's 办理记录.
    Returns her name (the row is gone after the commit)."""
    principal = current()
    assert principal is not None

    def remove(s: Session) -> tuple[str, str]:
        admin = svc.remove_own_admin(s, principal, admin_id)
        audit.record(s, principal, "institution", admin.institution_id, "admin_removed",
                     reason=admin_note("移除", admin, reason))
        cauth.sessions_must_end(admin.subject)  # or refused: never removed with her still signed in
        return admin.real_name, admin.subject

    name, subject = act(remove)
    cauth.end_sessions_of(subject)  # a login she completed meanwhile ends too
    return name


@pages.post("/projects/admins/<int:admin_id>/remove")
@access("institution")
def own_admin_remove_page(admin_id: int) -> Any:
    svc.own_admin(db.session, current(), admin_id)  # type: ignore[arg-type]  # another's: 404 before the form
    data, errors = load_form(sc.AdminRemoveForm(), request.form)
    if data is None:
        return _admins_page(errors={**errors, "remove_id": admin_id}, status=422,
                            typed={"reason": request.form.get("reason", "")})
    try:
        name = _remove_admin(admin_id, data["reason"])
    except AppError as exc:
        return _admins_page(errors={**(exc.fields or {}), "_remove": exc.message, "remove_id": admin_id},
                            status=exc.status, typed={"reason": request.form.get("reason", "")})
    flash(f"已移除机构负责人 {name}，其已登录的设备同时退出（已记入操作日志）。", "ok")
    return redirect("/projects/admins")


def _change_password(old: str, new: str) -> None:
    """修改密码: the office's own password instead of the committee's; in the institution's 操作记录."""
    principal = current()
    assert principal is not None and principal.institution_id is not None

    def change(s: Session) -> None:
        inst = s.get(Institution, principal.institution_id)
        assert inst is not None
        change_own_password(s, inst, old, new)
        audit.record(s, principal, "institution", inst.id, "password_changed",
                     reason=f"机构负责人 {principal.name} 修改了登录密码")

    act(change)


@pages.route("/projects/password", methods=["GET", "POST"])
@access("institution")
def own_password_page() -> Any:
    principal = current()
    assert principal is not None
    initial = db.session.scalar(select(Institution.password_initial)
                                .where(Institution.id == principal.institution_id))
    if request.method == "GET":
        return render_template("auth/password.html", errors={}, initial=initial)
    data, errors = load_form(sc.OwnPasswordForm(), request.form)
    try:
        if data is None:
            raise AppError(422, "invalid_input", "提交的内容有误，请按提示修改。", errors)
        _change_password(data["old_password"], data["new_password"])
    except AppError as exc:  # passwords are never typed back into a page
        return render_template("auth/password.html", errors={**(exc.fields or {}), "_schema": exc.message},
                               initial=initial), exc.status
    flash("密码已修改（已记入操作日志）。下次登录请使用新密码；请同时核对机构负责人名单。", "ok")
    return redirect("/projects/admins")


def _admins_page(errors: dict[str, Any], status: int, typed: dict[str, str]) -> Any:
    principal = current()
    assert principal is not None
    admins = svc.list_admins(db.session, principal)
    return render_template("auth/admins.html", admins=admins, form={}, errors={}, remove_errors=errors,
                           typed=typed), status


# ------------------------------------------------------------------ JSON API


def _login_answer(pre: svc.PreLogin) -> dict[str, Any]:
    session = db.session
    return {"login_token": pre.token(), "needs_admins": svc.needs_admins(session, pre),
            "admins": [c.as_dict() for c in svc.choices(session, pre)]}


@api.route("/auth/login", methods=["POST"])
@access("public")
@api.arguments(sc.LoginSchema)
@api.response(200, sc.LoginOut)
def api_login(data: dict[str, Any]) -> Any:
    """账号密码登录（第一步）：返回短时有效的 login_token 与可选的机构负责人（手机号已脱敏）。"""
    pre = act(lambda s: svc.password_login(s, data["kind"], data["account"], data["password"]))
    return _login_answer(pre)


@api.route("/auth/admins", methods=["POST"])
@access("public")
@api.arguments(sc.AdminSchema)
@api.response(200, sc.LoginOut)
def api_first_admin(data: dict[str, Any]) -> Any:
    """首次登录：新增机构负责人（真实姓名、手机号码，confirm 必须为 true）。"""
    pre = svc.read_pre(data["login_token"])
    act(lambda s: svc.add_first_admin(s, pre, data["real_name"], data["mobile"]))
    answer = _login_answer(pre)
    answer["login_token"] = data["login_token"]  # the same first-login window goes on
    return answer


@api.route("/auth/sms/send", methods=["POST"])
@access("public")
@api.arguments(sc.SmsSendSchema)
@api.response(200, sc.SentOut)
def api_sms_send(data: dict[str, Any]) -> Any:
    """向所选机构负责人（或审核员本人）发送6位短信验证码。"""
    pre = svc.read_pre(data["login_token"])
    pending = act(lambda s: svc.send_code(s, pre, data["admin_id"]))
    deliver(pending)
    return {"sent": True, "mobile_masked": pending.mobile_masked, "expires_at": pending.expires_at}


@api.route("/auth/sms/verify", methods=["POST"])
@access("public")
@api.arguments(sc.SmsVerifySchema)
@api.response(200, sc.TokenOut)
def api_sms_verify(data: dict[str, Any]) -> Any:
    """校验短信验证码，成功后返回 bearer token。"""
    pre = svc.read_pre(data["login_token"])
    principal = act(lambda s: svc.verify_code(s, pre, data["admin_id"], data["code"]))
    return {"token": issue_token(principal), "role": principal.role, "name": principal.name}


@api.route("/admins", methods=["GET"])
@access("institution")
@api.response(200, sc.ChoiceOut(many=True))
@api.doc(security=[{"bearer": []}])
def api_admins() -> Any:
    """本机构的机构负责人（手机号已脱敏）。"""
    principal = current()
    assert principal is not None
    return [{"id": a.id, "real_name": a.real_name, "mobile_masked": a.masked_mobile}
            for a in svc.list_admins(db.session, principal)]


@api.route("/admins/<int:admin_id>/remove", methods=["POST"])
@access("institution")
@api.arguments(sc.AdminRemoveSchema)
@api.response(204)
@api.doc(security=[{"bearer": []}])
def api_remove_admin(data: dict[str, Any], admin_id: int) -> Any:
    """移除本机构的机构负责人（原因必填；不能移除本人或最后一名负责人）：其后不再向其发送验证码，其已登录的会话结束。"""
    _remove_admin(admin_id, data["reason"])
    return "", 204


@api.route("/auth/password", methods=["POST"])
@access("institution")
@api.arguments(sc.OwnPasswordSchema)
@api.response(204)
@api.doc(security=[{"bearer": []}])
def api_own_password(data: dict[str, Any]) -> Any:
    """修改密码：本机构的登录密码（old_password 原密码，new_password 新密码：8 位以上，含字母和数字）。"""
    _change_password(data["old_password"], data["new_password"])
    return "", 204


@api.route("/admins", methods=["POST"])
@access("institution")
@api.arguments(sc.OwnAdminSchema)
@api.response(201, sc.ChoiceOut)
@api.doc(security=[{"bearer": []}])
def api_add_admin(data: dict[str, Any]) -> Any:
    """为本机构新增机构负责人（confirm 必须为 true）。"""
    principal = current()
    assert principal is not None
    admin = act(lambda s: svc.add_own_admin(s, principal, data["real_name"], data["mobile"]))
    return {"id": admin.id, "real_name": admin.real_name, "mobile_masked": admin.masked_mobile}
