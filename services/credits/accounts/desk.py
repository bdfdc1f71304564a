"""学员账号 (the committee's desk): a trainee who changed her mobile, forgot everything, or whose account was
opened by someone else typing her ID number first, comes to the committee with her ID card. The clerk finds the
account by the full ID number (posted, never in a URL), sees it masked, and may record her new mobile (忘记密码
codes go there) or put the initial password back and unlock it. Each change needs a reason, is audit-logged and
ends the account's open sessions. The committee only: an institution could otherwise move a doctor's login
to a phone of its own."""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

import redis
from flask import Blueprint, redirect, render_template, request

from services.common import auth as cauth
from services.common.auth import access, current
from services.common.config import redis_client
from services.common.errors import AppError
from services.common.logs import brief
from services.common.schemas import ValidationError, load_form

from ..awards import services as award_svc
from ..db import db
from . import schemas as sc
from . import services as svc
from .views import act, ending_sessions, principal_for

log = logging.getLogger(__name__)
pages = Blueprint("credits_accounts_desk", __name__, template_folder="templates")

PAGE = "credits/accounts/desk.html"

# A change done, its page is reached by a redirect to GET /credits/accounts?r=<token>: F5 shows it again and never
# runs the change twice (恢复初始密码 would otherwise end her sessions again and log a second reset). The token
# names, in Redis for a few minutes, which account and which change, for the clerk who made it only; the ID
# number is never in the address.
RESULT_PREFIX = "cme:desk-result:"
RESULT_KEEP_SECONDS = 600
RESULT_GONE = "该操作已完成，结果页已过期（保留 10 分钟）。如需查看该学员账号，请重新输入身份证号码查询。"
DONE = {
    "mobile": "已更新登记的手机号码（已记入操作日志）。学员可凭新手机号码通过“密码找回”重设密码。",
    "name": "已更正姓名（已记入操作日志），其学分记录和学分证书上的姓名随之更正。"
            "未修改过密码的，初始密码为新姓名的全拼。",
    "reset": "已恢复初始密码并解除锁定（已记入操作日志）。学员用姓名全拼登录后须先修改密码。",
}


def _page(status: int = 200, **context: Any) -> Any:
    context.setdefault("errors", {})
    context.setdefault("form", {})
    context.setdefault("kept", {})
    return render_template(PAGE, **context), status


@pages.get("/credits/accounts")
@access("reviewer")
def desk() -> Any:
    """The desk; with ?r=<token>, the result of a change just made (see RESULT_PREFIX), shown as often as asked."""
    try:
        # as sent, not as typed: ?r= left blank is a broken link (said so below), not the desk
        token = sc.DeskResultQuery().load(request.args)["r"]
    except ValidationError:  # not a token we give out: said as one expired, nothing is looked up
        return _page(errors={"_schema": RESULT_GONE})
    if token is None:
        return _page()
    result = _result(token)
    account = svc.find_account_by_key(db.session, result["trainee_key"]) if result else None
    if result is None or account is None:
        return _page(errors={"_schema": RESULT_GONE})
    return _page(account=svc.account_view(db.session, account), done=DONE[result["which"]])


def _keep_result(trainee_key: str, which: str) -> str | None:
    """A token for the result of a change (None without Redis: the page is then shown in the POST's answer)."""
    token = secrets.token_urlsafe(24)
    me = current()
    record = json.dumps({"trainee_key": trainee_key, "which": which, "by": me.subject if me else ""})
    try:
        redis_client().set(RESULT_PREFIX + token, record, ex=RESULT_KEEP_SECONDS)
    except redis.RedisError as exc:
        log.warning("desk result not kept, shown in the POST's answer (%s)", brief(exc))
        return None
    return token


def _result(token: str) -> dict[str, str] | None:
    """The kept result the (well-formed) token names, if it is the clerk's own and not expired."""
    try:
        raw = redis_client().get(RESULT_PREFIX + token)
    except redis.RedisError as exc:
        log.warning("desk result not read (%s)", brief(exc))
        return None
    try:
        record = json.loads(raw) if raw else None
    except ValueError:
        return None
    me = current()
    if (not isinstance(record, dict) or me is None or record.get("by") != me.subject
            or record.get("which") not in DONE or not isinstance(record.get("trainee_key"), str)):
        return None
    return record


@pages.post("/credits/accounts")
@access("reviewer")
def desk_lookup() -> Any:
    """Posted so the ID number stays out of URLs and logs."""
    data, errors = load_form(sc.AccountLookupForm(), request.form)
    typed = {"id_number": request.form.get("id_number", "")[:40]}  # kept in the box to mend, never in a URL
    kept = _kept(request.form, request.form.get("kept_which", ""), "kept_")
    if data is None:
        return _page(422, errors=errors, form=typed, kept=kept)
    account = svc.find_account(db.session, data["id_number"])
    if account is None:
        return _page(404, errors={"id_number": "没有该身份证号码的学员账号（学员首次签到或获授学分后才有账号）。"},
                     form=typed, kept=kept)
    if kept:  # a change refused for want of its account: its form as the clerk typed it
        which = kept.pop("which")
        return _page(account=svc.account_view(db.session, account), form=kept, which=which)
    return _page(account=svc.account_view(db.session, account))


# what each change form holds besides the account's key, for keeping it when the account is not named
CHANGE_FIELDS = {"mobile": ("mobile", "reason"), "name": ("name", "reason"), "reset": ("reason",)}


def _kept(form: Any, which: str, prefix: str = "") -> dict[str, str]:
    """The fields typed in the change form `which` ({} for none), with "which" itself."""
    if which not in CHANGE_FIELDS:
        return {}
    return {"which": which, **{k: form.get(prefix + k, "")[:500] for k in CHANGE_FIELDS[which]}}


def _change(which: str, schema: Any, apply: Any) -> Any:
    data, errors = load_form(schema, request.form)
    key = request.form.get("trainee_key", "")
    # the form does not name its account (its hidden key lost, a page from before the keys were rotated): nothing
    # is changed, and what was typed rides on the lookup, so the account found next shows it filled in again
    again = "请重新输入身份证号码查询该学员账号，已填写的内容将保留在查询后的表单中。"
    if "trainee_key" in errors:
        return _page(422, errors={"_schema": f"未能确定是哪个学员账号。{again}"}, kept=_kept(request.form, which))
    account = svc.find_account_by_key(db.session, key)
    if account is None:
        return _page(404, errors={"_schema": f"未找到该学员账号。{again}"}, kept=_kept(request.form, which))
    if data is None:
        return _page(422, account=svc.account_view(db.session, account), errors=errors, form=request.form,
                     which=which)
    me = current()
    try:
        act(lambda s: ending_sessions(apply(s, me, svc.desk_account(s, key), data), account))
    except AppError as exc:  # rolled back: the account (the same object, expired) is read again as it is
        return _page(exc.status, account=svc.account_view(db.session, account),
                     errors={**(exc.fields or {}), "_schema": exc.message}, form=request.form, which=which)
    cauth.end_sessions_of(principal_for(account).subject)  # a phone signed in as her must sign in again
    token = _keep_result(account.trainee_key, which)
    if token is None:
        return _page(account=svc.account_view(db.session, account), done=DONE[which])
    return redirect(f"/credits/accounts?r={token}", 303)


@pages.post("/credits/accounts/mobile")
@access("reviewer")
def desk_mobile() -> Any:
    return _change("mobile", sc.AccountMobileForm(),
                   lambda s, me, account, data: svc.desk_change_mobile(s, me, account, data["mobile"], data["reason"]))


@pages.post("/credits/accounts/name")
@access("reviewer")
def desk_name() -> Any:
    return _change("name", sc.AccountNameForm(), _change_name)


def _change_name(session: Any, me: Any, account: Any, data: dict[str, Any]) -> None:
    svc.desk_change_name(session, me, account, data["name"], data["reason"])
    award_svc.rename_trainee(session, account.trainee_key, data["name"])


@pages.post("/credits/accounts/reset")
@access("reviewer")
def desk_reset() -> Any:
    return _change("reset", sc.AccountResetForm(),
                   lambda s, me, account, data: svc.desk_reset(s, me, account, data["reason"]))
