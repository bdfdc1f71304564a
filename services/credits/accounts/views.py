"""Trainee login (学员登录), the forced first change and later changes of the password, for the phone browser
and as JSON API.

Username = the ID number, initial password = the pinyin of the name (services.py). The session names the account
(subject "trainee:<account id>"); whether the initial password is still in force is read from the account on
every trainee page, so the forced change holds until it is done, whatever cookie or token is presented.
ID numbers and passwords travel only in POST bodies and are never logged.

忘记密码 (public): /credits/password/forgot sends a code to the mobile on record and shows it masked, the same
answer for an ID number without an account (no SMS then); /credits/password/reset takes the code and the new
password. The code rules are services.common.sms_codes', as for the institution login.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, flash, redirect, render_template, request
from flask_smorest import Blueprint as ApiBlueprint
from sqlalchemy.orm import Session

from services.common import auth as cauth
from services.common import pii
from services.common.auth import Principal, access, current, issue_token, set_login_cookie
from services.common.errors import AppError, KeptError
from services.common.inputs import id_or_none
from services.common.schemas import load_form
from services.common.sms_codes import PendingSms

from ..db import db
from . import schemas as sc
from . import services as svc
from .models import TraineeAccount

pages = Blueprint("credits_trainee", __name__, template_folder="templates")
api = ApiBlueprint("credits_trainee_api", __name__, url_prefix="/credits/api",
                   description="学员登录：身份证号码 + 密码（初始密码为姓名全拼），首次登录须修改密码")

LOGIN_PAGE = "/credits/login"
SESSION_ENDED = "登录已失效（可能已在其他设备修改了密码、退出登录，或已超过 12 小时），请重新登录。"
HOME_PAGE = "/credits/"
PASSWORD_PAGE = "/credits/password"
FORGOT_PAGE = "/credits/password/forgot"
RESET_PAGE = "/credits/password/reset"
# trainee pages: an anonymous visitor is sent to the trainee login (the app-wide default is the institution's)
TRAINEE_PAGES = {"credits_trainee.home_page", "credits_trainee.password_page"}

T = TypeVar("T")


def act(fn: Callable[[Session], T]) -> T:
    """One commit; a refusal rolls back, except a counted wrong try (KeptError), which is kept."""
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


def ending_sessions(result: T, account: Any = None) -> T:
    """Inside act, after a password change's or reset's checks and before its commit: the account's (given, or
    the one returned) sessions end now, or the change is refused (503, nothing changed)."""
    cauth.sessions_must_end(principal_for(account if account is not None else result).subject)
    return result


def deliver(pending: PendingSms | None) -> None:
    """After the commit: send the SMS; if it cannot leave, remove the code so a retry is not blocked."""
    if pending is not None:
        pending.deliver(lambda code_id: act(lambda s: svc.forget_code(s, code_id)))


def principal_for(account: TraineeAccount) -> Principal:
    return Principal(role="trainee", subject=f"trainee:{account.id}", name=account.name,
                     trainee_key=account.trainee_key, must_change=True if account.must_change else None)


SESSION_GONE = "登录已失效，请重新登录。"


def session_account_id() -> tuple[int | None, str | None]:
    """(account id, trainee key) the trainee session names; the id is None when the subject names no account."""
    p = current()
    if p is None or p.role != "trainee":
        raise AppError(401, "login_required", "请先登录。")
    kind, _, raw_id = p.subject.partition(":")
    return (id_or_none(raw_id) if kind == "trainee" else None), p.trainee_key


def signed_in_account() -> TraineeAccount:
    """The account of the trainee session; a token whose account is gone (or is not ours) must log in again."""
    account_id, trainee_key = session_account_id()
    account = db.session.get(TraineeAccount, account_id) if account_id is not None else None
    if account is None or account.trainee_key != trainee_key:
        raise AppError(401, "login_required", SESSION_GONE)
    return account


def masked_id(account: Any) -> str:
    """The ID number masked, of anything with id_enc (an account, compliance's SignedIn)."""
    return pii.masked(account.id_enc) or "****"


@pages.before_request
def _trainee_login_first() -> Any:
    if request.endpoint in TRAINEE_PAGES and current() is None and request.method == "GET":
        return redirect(LOGIN_PAGE)
    return None


def _account_or_login() -> TraineeAccount | Any:
    try:
        return signed_in_account()
    except AppError as exc:
        if exc.status != 401:
            raise
        flash(exc.message, "error")
        return cauth.clear_login_cookie(redirect(LOGIN_PAGE))


# ------------------------------------------------------------------ pages


@pages.route("/credits/login", methods=["GET", "POST"])
@access("public")
def login_page() -> Any:
    form: dict[str, Any] = {}
    # the page she was sent here from (her certificate export, 学分证书): back there after the login
    then = cauth.safe_next(request.values.get("next"))
    if request.method == "GET":
        p = current()
        if p is not None and p.role == "trainee":
            return redirect(then or HOME_PAGE)
        # the browser still sends a login that is no longer good: say why she is here, not just "log in"
        stale = p is None and bool(request.cookies.get(cauth.COOKIE))
        return render_template("credits/trainee/login.html", form=form, errors={}, then=then,
                               notice=SESSION_ENDED if stale else None)
    cauth.check_public_csrf()
    form = {"id_number": request.form.get("id_number", "").strip()}
    data, errors = load_form(sc.LoginForm(), request.form)
    if data is None:
        return render_template("credits/trainee/login.html", form=form, errors=errors, then=then), 422
    try:
        account = act(lambda s: svc.authenticate(s, data["id_number"], data["password"]))
    except AppError as exc:
        return render_template("credits/trainee/login.html", form=form, errors={}, message=exc.message,
                               then=then), exc.status
    resp = redirect(PASSWORD_PAGE if account.must_change else then or HOME_PAGE)
    return set_login_cookie(resp, principal_for(account))


@pages.get("/credits/")
@access("trainee", "institution", "reviewer")
def home_page() -> Any:
    if current().role != "trainee":  # the office's and the committee's way in is the award lists (学分管理)
        return redirect("/credits/awards")
    account = _account_or_login()
    if not isinstance(account, TraineeAccount):
        return account
    if account.must_change:
        return redirect(PASSWORD_PAGE)
    return render_template("credits/trainee/home.html", account=account, masked_id=masked_id(account))


@pages.route("/credits/password", methods=["GET", "POST"])
@access("trainee")
def password_page() -> Any:
    account = _account_or_login()
    if not isinstance(account, TraineeAccount):
        return account
    if request.method == "GET":
        return _password_page(account, {})
    data, errors = load_form(sc.PasswordForm(), request.form)
    if data is not None and data["new_password"] != data["repeat_password"]:
        errors = {"repeat_password": "两次输入的新密码不一致。"}
    if data is None or errors:
        return _password_page(account, errors, 422)
    try:
        act(lambda s: ending_sessions(svc.change_password(s, account, data["old_password"], data["new_password"]),
                                      account))
    except AppError as exc:
        account = signed_in_account()  # reloaded after the rollback (or the commit of a counted wrong try)
        if exc.code == "account_locked":
            return _password_page(account, {}, exc.status)  # said by the lock notice, with what to do
        fields = {k: v for k, v in exc.fields.items() if k in sc.PasswordForm().fields}
        # a wrong 原密码 says above the form too how many tries are left, as the login does
        return _password_page(account, fields or {"_schema": exc.message}, exc.status,
                              message=exc.message if exc.code == "wrong_old_password" else None)
    cauth.end_sessions_of(principal_for(account).subject)  # other phones and tabs log in again
    flash("密码已修改，下次登录请使用新密码。", "ok")
    return set_login_cookie(redirect(HOME_PAGE), principal_for(account))  # a session without the initial-password mark


def _password_page(account: TraineeAccount, errors: dict[str, Any], status: int = 200,
                   message: str | None = None) -> Any:
    # a locked account (wrong 原密码 or wrong logins) is told so before she types, with 忘记密码 as the way out
    return render_template("credits/trainee/password.html", account=account, errors=errors, message=message,
                           locked=svc.lock_notice(account)), status


def _reset_page(form: dict[str, Any], errors: dict[str, Any], status: int = 200, **extra: Any) -> Any:
    return render_template("credits/trainee/reset.html", form=form, errors=errors, **extra), status


@pages.route(FORGOT_PAGE, methods=["GET", "POST"])
@access("public")
def forgot_page() -> Any:
    """忘记密码, step 1: the ID number; a code goes to the mobile on record. With have_code (已收到验证码 on a
    refusal) nothing is sent: the reset form opens with the ID number, which so never travels in a URL."""
    if request.method == "GET":
        return render_template("credits/trainee/forgot.html", form={}, errors={})
    cauth.check_public_csrf()
    form = {"id_number": request.form.get("id_number", "").strip()}
    data, errors = load_form(sc.ForgotForm(), request.form)
    if data is None:
        return render_template("credits/trainee/forgot.html", form=form, errors=errors), 422
    if data["have_code"]:  # she has the code already (told to wait 60 s): the reset form keeps her ID number
        return _reset_page(form, {})
    try:
        answer = act(lambda s: svc.request_reset(s, data["id_number"]))
        deliver(answer.pending)
    except AppError as exc:
        return render_template("credits/trainee/forgot.html", form=form, errors={}, message=exc.message), exc.status
    return _reset_page(form, {}, sent=answer.mobile_masked, minutes=answer.expires_in // 60)


@pages.route(RESET_PAGE, methods=["GET", "POST"])
@access("public")
def reset_page() -> Any:
    """忘记密码, step 2: ID number, the SMS code and the new password twice."""
    if request.method == "GET":
        return _reset_page({}, {})
    cauth.check_public_csrf()
    # what was typed comes back, the SMS code too: a mistyped password must not send her back to her messages
    form = {"id_number": request.form.get("id_number", "").strip(), "code": request.form.get("code", "").strip()[:6]}
    data, errors = load_form(sc.ResetForm(), request.form)
    if data is not None and data["new_password"] != data["repeat_password"]:
        errors = {"repeat_password": "两次输入的新密码不一致。"}
    if data is None or errors:
        return _reset_page(form, errors, 422)
    try:
        account = act(lambda s: ending_sessions(svc.reset_password(s, data["id_number"], data["code"],
                                                                   data["new_password"])))
    except AppError as exc:
        return _reset_page(form, exc.fields, exc.status, message=exc.message)
    cauth.end_sessions_of(principal_for(account).subject)
    flash("密码已重置，请用新密码登录。", "ok")
    return redirect(LOGIN_PAGE)


@pages.post("/credits/logout")
@access("public")  # a stale or broken cookie must still be able to log out
def logout() -> Any:
    cauth.end_this_session()  # a copy of the cookie (another tab, a shared phone's history) is refused too
    return cauth.clear_login_cookie(redirect(LOGIN_PAGE))


# ------------------------------------------------------------------ JSON API


@api.route("/auth/login", methods=["POST"])
@access("public")
@api.arguments(sc.LoginSchema)
@api.response(200, sc.TokenOut)
@api.doc(summary="学员登录（身份证号码 + 密码）")
def api_login(data: dict[str, Any]) -> Any:
    """返回 bearer token；must_change 为 true 时须先调用 /credits/api/auth/password 修改初始密码。
    连续输错密码会锁定账号，错误信息说明锁定至何时（fields.locked_until）。"""
    account = act(lambda s: svc.authenticate(s, data["id_number"], data["password"]))
    return {"token": issue_token(principal_for(account)), "must_change": account.must_change}


@api.route("/auth/password", methods=["POST"])
@access("trainee")
@api.arguments(sc.PasswordSchema)
@api.response(200, sc.PasswordOut)
@api.doc(security=[{"bearer": []}], summary="学员修改密码（首次登录必须修改初始密码）")
def api_password(data: dict[str, Any]) -> Any:
    """新密码至少 8 位，须同时包含字母和数字，不能是姓名拼音，也不能与原密码相同。
    原密码输错与登录输错密码合并计次，连续输错会锁定账号（429，fields.locked_until）。
    成功后本 token 及此前的其他登录均失效，请用新密码重新登录。"""
    account = signed_in_account()
    act(lambda s: ending_sessions(svc.change_password(s, account, data["old_password"], data["new_password"]),
                                  account))
    cauth.end_sessions_of(principal_for(account).subject)  # this token too: log in with the new password
    return {"changed": True, "must_change": account.must_change}


@api.route("/auth/forgot", methods=["POST"])
@access("public")
@api.arguments(sc.ForgotSchema)
@api.response(200, sc.ForgotOut)
@api.doc(summary="忘记密码：向登记的手机号发送验证码")
def api_forgot(data: dict[str, Any]) -> Any:
    """验证码 5 分钟内有效；同一手机号 60 秒内不能重复获取，每天有次数上限。
    无论该身份证号码是否有账号，回答都相同（未开通账号或未登记手机号时不发送短信）。"""
    answer = act(lambda s: svc.request_reset(s, data["id_number"]))
    deliver(answer.pending)
    return {"sent": True, "mobile_masked": answer.mobile_masked, "expires_in": answer.expires_in}


@api.route("/auth/reset", methods=["POST"])
@access("public")
@api.arguments(sc.ResetSchema)
@api.response(200, sc.ResetOut)
@api.doc(summary="忘记密码：凭短信验证码设置新密码")
def api_reset(data: dict[str, Any]) -> Any:
    """验证码输错 5 次即失效；新密码规则同修改密码。成功后可用新密码登录，账号锁定同时解除。"""
    account = act(lambda s: ending_sessions(svc.reset_password(s, data["id_number"], data["code"],
                                                               data["new_password"])))
    cauth.end_sessions_of(principal_for(account).subject)
    return {"reset": True, "must_change": account.must_change}
