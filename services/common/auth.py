"""Signed tokens shared by every service: a cookie for pages, a bearer header for the JSON API.

Every view declares who may call it with @access(...); the app factory refuses to start when
a view has no declaration, and the permission tests read the same declarations.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from flask import current_app, g, redirect, request, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .config import get_settings
from .errors import AppError, wants_json

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

    def describe(self) -> str:
        return f"{self.role}:{self.subject}"


def _serializer(salt: str = "cme-auth") -> URLSafeTimedSerializer:
    return _serializer_for(get_settings().secret_key, salt)


@functools.lru_cache(maxsize=16)
def _serializer_for(secret_key: str, salt: str) -> URLSafeTimedSerializer:
    """One serializer per (key, salt), not one per request: it holds no per-call state, and a changed
    secret key (settings reloaded) gets a serializer of its own."""
    return URLSafeTimedSerializer(secret_key, salt=salt)


def issue_token(principal: Principal, salt: str = "cme-auth") -> str:
    return _serializer(salt).dumps({k: v for k, v in asdict(principal).items() if v is not None})


def read_token(token: str, salt: str = "cme-auth", max_age: int = TOKEN_MAX_AGE) -> dict[str, Any] | None:
    try:
        return _serializer(salt).loads(token, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None


def principal_from_token(token: str) -> Principal | None:
    data = read_token(token)
    if not data or data.get("role") not in ROLES:
        return None
    try:
        return Principal(**data)
    except TypeError:
        return None


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


def csrf_token() -> str:
    p = current()
    basis = p.subject if p else request.cookies.get("cme_pre", "anon")
    return hmac.new(get_settings().secret_key.encode(), f"csrf:{basis}".encode(), hashlib.sha256).hexdigest()[:32]


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
                        return redirect(current_app.config.get("LOGIN_URL", "/projects/login"))
                    raise AppError(401, "login_required", "请先登录。")
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


def require(principal: Principal | None, *roles: str) -> Principal:
    if principal is None:
        raise AppError(401, "login_required", "请先登录。")
    if principal.role not in roles:
        raise AppError(403, "forbidden", "您没有权限进行此操作。")
    return principal


def own_institution(principal: Principal, institution_id: int) -> None:
    """An institution sees only its own rows; another's are 'not found', so ids leak nothing."""
    if principal.role == "institution" and principal.institution_id != institution_id:
        raise AppError(404, "not_found", "您要找的内容不存在。")


def set_login_cookie(response: Any, principal: Principal) -> Any:
    response.set_cookie(COOKIE, issue_token(principal), max_age=TOKEN_MAX_AGE, httponly=True, samesite="Lax",
                        secure=get_settings().public_base_url.startswith("https"), path="/")
    return response


def clear_login_cookie(response: Any) -> Any:
    response.delete_cookie(COOKIE, path="/")
    return response
