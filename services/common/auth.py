"""Signed tokens shared by every service: a cookie for pages, a bearer header for the JSON API.

Every view declares who may call it with @access(...); the app factory refuses to start when
a view has no declaration, and the permission tests read the same declarations.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import redis
from flask import current_app, g, has_request_context, redirect, request, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .config import get_settings, redis_client_for
from .errors import AppError, wants_json
from .logs import brief

log = logging.getLogger(__name__)

COOKIE = "cme_session"
TOKEN_MAX_AGE = 12 * 3600
ROLES = ("institution", "reviewer", "trainee")
PUBLIC = "public"
TRAINEE_PASSWORD_URL = "/credits/password"


@dataclass(frozen=True)
class Principal:
    role: str  # institution | reviewer | trainee
    subject: str  # stable id of the person/account, e.g. "inst:3:admin:7", "reviewer:1", "trainee:<hash>"
    name: str = ""
    institution_id: int | None = None
    admin_id: int | None = None
    reviewer_id: int | None = None
    trainee_key: str | None = None
    # a trainee logged in with the initial password: credits, which knows the account, lets it change the password
    # and shows nothing else; every other service refuses such a token (see access()) until the change, after which
    # credits issues a session without the mark (or the trainee logs in with the new password)
    must_change: bool | None = None
    # an institution's login: the 机构负责人 who received the SMS code, named in the audit trail beside the institution
    person: str | None = None

    def describe(self) -> str:
        return f"{self.role}:{self.subject}"

    def audit_name(self) -> str:
        """Who did it, as 办理记录 shows it: "西安市第一医院（张主任）" for an institution's responsible person."""
        return (f"{self.name}（{self.person}）" if self.person else self.name)[:100]


def _serializer(salt: str = "cme-auth") -> URLSafeTimedSerializer:
    return _serializer_for(get_settings().secret_key, salt)


@functools.lru_cache(maxsize=16)
def _serializer_for(secret_key: str, salt: str) -> URLSafeTimedSerializer:
    """One serializer per (key, salt), not one per request: it holds no per-call state, and a changed
    secret key (settings reloaded) gets a serializer of its own."""
    return URLSafeTimedSerializer(secret_key, salt=salt)


SESSION_SALT = "cme-auth"


def issue_token(principal: Principal, salt: str = SESSION_SALT, sid: str | None = None) -> str:
    """A signed token of the principal; a login's (SESSION_SALT) has its own id `sid` (random unless given: the
    tests name theirs, to know its forms' token) and when it was issued (ms), so that it can be ended early."""
    data: dict[str, Any] = {k: v for k, v in asdict(principal).items() if v is not None}
    if salt == SESSION_SALT:
        data.update(sid=sid or secrets.token_hex(8), at=_now_ms())
    return _serializer(salt).dumps(data)


def read_token(token: str, salt: str = "cme-auth", max_age: int = TOKEN_MAX_AGE) -> dict[str, Any] | None:
    try:
        return _serializer(salt).loads(token, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None


def principal_from_token(token: str) -> Principal | None:
    """The principal of a login token that is signed, unexpired and not ended (logout, password change)."""
    data = read_token(token)
    if not data or data.get("role") not in ROLES:
        return None
    sid, at = data.pop("sid", None), data.pop("at", 0)
    try:
        principal = Principal(**data)
    except TypeError:
        return None
    if _ended(principal.subject, sid, at if isinstance(at, int) else 0):
        return None
    if has_request_context():
        g.session_sid = sid
    return principal


# ---- ending sessions before their 12 hours -------------------------------------------------------
# A login token is signed, not stored: logging out used to drop the cookie only, and a copy of it (another tab, a
# shared computer's history, a stolen cookie) stayed good for 12 hours, as did the sessions of other devices after
# a password change. The ends are kept in Redis for a token's lifetime: one session (logout) by its sid, or every
# session of a person issued before a moment (password changed or reset). Every signed-in
# request reads both keys in one round trip. When Redis cannot answer, signed tokens are accepted as before
# (logged): a Redis outage must not log the whole province out.
_ENDED = "cme:session-ended:"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _ends() -> redis.Redis:
    return redis_client_for(get_settings().redis_url, 0.5)  # short timeouts: this sits on every signed-in request


def _ended(subject: str, sid: str | None, at: int) -> bool:
    try:
        ended_sid, ended_before = _ends().mget(f"{_ENDED}sid:{sid or '-'}", f"{_ENDED}subject:{subject}")
    except redis.RedisError as exc:
        log.warning("session ends unreadable (%s): signed sessions accepted", brief(exc))
        return False
    return ended_sid is not None or (ended_before is not None and at < int(ended_before))


def ended_since(subject: str, issued_ms: int) -> bool:
    """Whether every session of `subject` issued at `issued_ms` has been ended since (password changed or reset,
    停用): for what a login hands out to outlive the login itself, such as a projector link."""
    return _ended(subject, None, issued_ms)


def end_this_session() -> None:
    """Logout: the request's own session ends everywhere its token is (other sessions of the person go on)."""
    sid = g.get("session_sid")
    if sid:
        try:
            _ends().set(f"{_ENDED}sid:{sid}", 1, ex=TOKEN_MAX_AGE)
        except redis.RedisError as exc:
            log.warning("logout could not end the session in Redis (%s): only the cookie is dropped",
                        brief(exc))


def end_sessions_of(subject: str) -> None:
    """Every session of `subject` issued before now ends (a session issued afterwards, e.g. the one a password
    change hands back, is untouched). Called after the change is committed, to end a session that logged in
    while it was being made; the change itself needed sessions_must_end before its commit."""
    try:
        _end_before_now(subject)
    except redis.RedisError as exc:
        log.error("could not end the earlier sessions of %s in Redis (%s)", subject, brief(exc))


def _end_before_now(subject: str) -> None:
    _ends().set(f"{_ENDED}subject:{subject}", _now_ms(), ex=TOKEN_MAX_AGE)


SESSION_END_UNAVAILABLE = ("暂时无法完成：系统无法让该账号已登录的设备退出（会话服务暂不可用），"
                           "本次未做任何修改，请稍后再试。")


def sessions_must_end(subject: str) -> None:
    """Inside a change that ends a person's sessions (password changed or reset, mobile or name corrected, 停用),
    after its checks and before its commit: the end is recorded now, or the change is refused (503, rolled
    back). Recorded only after the commit, a Redis outage let the change succeed while every old session (a
    stolen cookie, the phone of whoever had the account) stayed good for hours once Redis was back."""
    try:
        _end_before_now(subject)
    except redis.RedisError as exc:
        log.error("refused a change: the sessions of %s could not be ended in Redis (%s)", subject,
                  brief(exc))
        raise AppError(503, "sessions_not_ended", SESSION_END_UNAVAILABLE) from exc


def load_principal() -> None:
    """before_request: bearer header for the API, else the cookie."""
    principal, via_cookie = None, False
    # the WSGI environ key of the Authorization header: unlike request.headers.get, an absent header
    # (every page request) costs no KeyError raised and caught inside werkzeug
    header = request.environ.get("HTTP_AUTHORIZATION", "")
    if header.startswith("Bearer "):
        principal = principal_from_token(header[7:].strip())
    else:
        token = request.cookies.get(COOKIE)
        if token:
            principal = principal_from_token(token)
            via_cookie = principal is not None
    g.principal, g.via_cookie = principal, via_cookie


def current() -> Principal | None:
    return getattr(g, "principal", None)


ANON_CSRF_COOKIE = "cme_csrf"


def _anonymous_basis() -> str:
    """A visitor without a session (the login, 忘记密码 and reset forms) gets a random cookie of her own, SameSite:
    the token of her forms is bound to it, so another site can neither know it nor post with it (with one token
    for every visitor, a hostile page could sign a victim's browser into the attacker's account)."""
    basis = request.cookies.get("cme_pre") or request.cookies.get(ANON_CSRF_COOKIE) or g.get("new_anon_csrf")
    if not basis:
        basis = g.new_anon_csrf = secrets.token_hex(16)  # set on the answer by services.common.web
    return f"anon:{basis}"


def csrf_basis(subject: str, sid: str | None) -> str:
    """What a signed-in person's form token is bound to: the session, not only the person, so a token seen once
    (a cached page, a screenshot) is dead after that session's logout, and each login has its own."""
    return f"{subject}:{sid}" if sid else subject


def csrf_token() -> str:
    p = current()
    basis = csrf_basis(p.subject, g.get("session_sid")) if p else _anonymous_basis()
    return hmac.new(get_settings().secret_key.encode(), f"csrf:{basis}".encode(), hashlib.sha256).hexdigest()[:32]


def check_public_csrf() -> None:
    """A form posted without a session (a login, a public check): common's check_csrf skips it, so the token is
    checked here against the anonymous cookie it was rendered for."""
    if g.get("via_cookie"):
        return  # access() already checked it against the session
    if not hmac.compare_digest(request.form.get("csrf_token", ""), csrf_token()):
        raise AppError(403, "csrf_failed", "页面已过期，请刷新页面后重新提交。")


def check_csrf() -> None:
    """Cookie-authenticated state changes must carry the form's token (bearer calls cannot be forged cross-site)."""
    if request.method in ("GET", "HEAD", "OPTIONS") or not g.get("via_cookie"):
        return
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token", "")
    if not hmac.compare_digest(sent, csrf_token()):
        raise AppError(403, "csrf_failed", "页面已过期，请刷新页面后重新提交。")


def access(*roles: str) -> Callable:
    """Declare who may call a view: access("public"), access("institution"), access("institution", "reviewer")."""
    for role in roles:
        if role != PUBLIC and role not in ROLES:
            raise ValueError(f"unknown role {role}")

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if PUBLIC not in roles:
                p = current()
                if p is None:
                    if not wants_json() and request.method == "GET":
                        login = current_app.config.get("LOGIN_ENDPOINT")
                        if login:
                            return redirect(url_for(login, next=request.full_path))
                        return redirect(_login_url(roles, request.full_path.rstrip("?")))
                    # a form sent after the login ended: its page offers to log in again and come back to the page
                    # it was sent from (the form's own address may take no GET)
                    g.login_again = _login_url(roles, _referring_page())
                    stale = bool(request.cookies.get(COOKIE))
                    raise AppError(401, "login_required", "登录已失效，请重新登录。" if stale else "请先登录。")
                if p.role not in roles:
                    raise AppError(403, "forbidden", "您没有权限进行此操作。")
                if p.must_change and current_app.config.get("SERVICE") != "credits":
                    if not wants_json() and request.method == "GET":
                        return redirect(TRAINEE_PASSWORD_URL)
                    raise AppError(403, "password_change_required", "您正在使用初始密码（姓名全拼），请先修改密码。")
            check_csrf()
            return view(*args, **kwargs)

        wrapper._cme_access = roles  # type: ignore[attr-defined]
        return wrapper

    return decorate


TRAINEE_LOGIN_URL = "/credits/login"


def trainee_login_url(back_to: str | None) -> str:
    """The trainees' login (credits; the username is the ID number), with the page to come back to."""
    return _with_next(TRAINEE_LOGIN_URL, back_to)


def _with_next(url: str, back_to: str | None) -> str:
    return f"{url}?{urlencode({'next': back_to})}" if back_to else url


def _login_url(roles: tuple[str, ...], back_to: str | None) -> str:
    """The login page of whoever may call the view: a trainee's pages (certificates among them) go to the
    trainees' login, the rest to the app's (the institutions' and committee's)."""
    if set(roles) == {"trainee"}:
        return trainee_login_url(back_to)
    return _with_next(current_app.config.get("LOGIN_URL", "/projects/login"), back_to)


def _referring_page() -> str | None:
    """The path of the page a form was sent from, when it is a page of this suite on this host."""
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc and referrer.netloc != request.host:
        return None
    path = referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return safe_next(path)


NEXT_COOKIE = "cme_next"
_SUITE_PATHS = ("/projects/", "/checkin/", "/credits/", "/certs/")


def safe_next(value: str | None) -> str | None:
    """Where to go after logging in: a page of the suite (a path, never another site or a header's worth)."""
    if not value or len(value) > 2000 or any(c in value for c in "\\\r\n") or value.startswith("//"):
        return None
    return value if value.startswith(_SUITE_PATHS) else None


def require(principal: Principal | None, *roles: str) -> Principal:
    if principal is None:
        raise AppError(401, "login_required", "请先登录。")
    if principal.role not in roles:
        raise AppError(403, "forbidden", "您没有权限进行此操作。")
    return principal


def own_institution(principal: Principal, institution_id: int, missing: str = "您要找的内容不存在。") -> None:
    """An institution sees only its own rows; another's are 'not found' in the very words a missing one gets
    (`missing`), so ids leak nothing."""
    if principal.role == "institution" and principal.institution_id != institution_id:
        raise AppError(404, "not_found", missing)


def set_login_cookie(response: Any, principal: Principal) -> Any:
    response.set_cookie(COOKIE, issue_token(principal), max_age=TOKEN_MAX_AGE, httponly=True, samesite="Lax",
                        secure=get_settings().public_base_url.startswith("https"), path="/")
    return response


def clear_login_cookie(response: Any) -> Any:
    response.delete_cookie(COOKIE, path="/")
    return response
