"""One error shape for the JSON API and a readable Chinese page for the browser.

JSON: {"error": {"code": "...", "message": "<Chinese sentence>", "fields": {...}, "request_id": "..."}}
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Request, g, has_request_context, jsonify, make_response, render_template, request
from flask_smorest import Blueprint as SmorestBlueprint
from marshmallow import Schema
from marshmallow import fields as ma_fields
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from .logs import brief

log = logging.getLogger(__name__)


STATUS_MESSAGES = {
    400: "请求有误，请检查后重试。",
    401: "请先登录。",
    403: "您没有权限进行此操作。",
    404: "您要找的内容不存在。",
    405: "不支持此操作方式。",
    409: "数据已被他人修改，请刷新后重试。",
    413: "上传的文件太大。",
    415: "不支持的内容格式。",
    422: "提交的内容有误，请按提示修改。",
    429: "操作过于频繁，请稍后再试。",
    500: "系统内部错误，请稍后再试。",
    503: "服务暂时不可用，请稍后再试。",
}
STATUS_CODES = {
    400: "bad_request", 401: "login_required", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
    422: "invalid_input", 429: "too_many_requests", 500: "internal_error", 503: "unavailable",
}


# The database is restarting or unreachable: a retryable answer (503 + Retry-After), never a 500.
DB_BUSY_MESSAGE = "系统繁忙，请稍后重试。"
RETRY_AFTER_SECONDS = 3
OUT_OF_RANGE_MESSAGE = "提交的数值超出允许范围，请检查后重试。"


def db_unavailable(exc: BaseException) -> bool:
    """A failure of the database connection (refused, dropped by a restart, pool exhausted), not of the query."""
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeoutError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def unique_violation(exc: IntegrityError) -> str:
    """The unique constraint (PostgreSQL) or columns (SQLite) that refused an insert, "" for another integrity
    error; names only, never the values (the detail of a violation quotes them, personal data included)."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "23505":
        return getattr(getattr(orig, "diag", None), "constraint_name", None) or "unique"
    text = str(orig).splitlines()[0] if orig is not None else ""
    return text.removeprefix("UNIQUE constraint failed: ") if text.startswith("UNIQUE constraint failed") else ""


class ErrorDetailSchema(Schema):
    """The inside of the JSON error shape (for the OpenAPI documents; the body is built by error_response)."""

    code = ma_fields.String(required=True, metadata={"description": "稳定的错误代码，如 invalid_input"})
    message = ma_fields.String(required=True, metadata={"description": "给用户看的中文说明"})
    fields_ = ma_fields.Dict(keys=ma_fields.String(), values=ma_fields.String(), required=True, data_key="fields",
                            metadata={"description": "逐项的中文说明：字段名 → 一句说明"})
    request_id = ma_fields.String(required=True, allow_none=True, metadata={"description": "请求编号"})


class ErrorSchema(Schema):
    """{"error": {...}}: what every refusal of the JSON API answers, documented as each operation's default."""

    error = ma_fields.Nested(ErrorDetailSchema, required=True)


class AppError(Exception):
    """A refusal a user can act on: an HTTP status, a stable code and a Chinese message; `retry_after` (seconds
    until a limit lifts) is answered as the Retry-After header, so a client waits instead of hammering."""

    def __init__(self, status: int, code: str, message: str, fields: dict[str, Any] | None = None,
                 retry_after: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}
        self.retry_after = max(1, int(retry_after)) if retry_after is not None else None
        if self.retry_after is not None and has_request_context():
            # many pages catch the refusal and render their own form with its status; the after-request hook
            # (with_retry_after) gives those answers the header too
            g.retry_after = self.retry_after


def with_retry_after(response: Any) -> Any:
    """A 429 answer of this request gets Retry-After from the refusal that caused it (see AppError)."""
    seconds = getattr(g, "retry_after", None)
    if response.status_code == 429 and seconds is not None and "Retry-After" not in response.headers:
        response.headers["Retry-After"] = str(seconds)
    return response


BAD_JSON_MESSAGE = "请求内容不是有效的 JSON，请检查后重试。"


class SafeFlaskParser(FlaskParser):
    """webargs' parser of flask-smorest's @arguments (it decodes the body itself): a body nested past Python's
    recursion limit is bad JSON, a 400, as with Flask's own JSON (web.SafeJSONProvider), not a 500."""

    def _raw_load_json(self, req: Request) -> Any:
        try:
            return super()._raw_load_json(req)
        except RecursionError:
            raise json.JSONDecodeError("JSON nested too deeply", "[", 0) from None

    def _handle_invalid_json_error(self, error: Any, req: Request, *args: Any, **kwargs: Any) -> Any:
        raise AppError(400, "bad_json", BAD_JSON_MESSAGE)


# every flask-smorest Blueprint of the suite parses through it; set here, since every views module imports this
# one (through auth) before its @arguments decorators read the attribute
SmorestBlueprint.ARGUMENTS_PARSER = SafeFlaskParser()


class KeptError(AppError):
    """A refusal whose side effect (a counted wrong try, a lock) must still be committed before answering."""


def wants_json() -> bool:
    if "/api/" in request.path or request.headers.get("Authorization", "").startswith("Bearer "):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def page_items(fields: dict[str, Any] | None, headline: str) -> list[tuple[str, str]]:
    """What an error page lists: (field, sentence) for each sentence in marshmallow's nested lists and dicts
    (a list printed as such showed "['…']"), less the headline's own sentence; a whole-form message has no field."""
    items: list[tuple[str, str]] = []

    def walk(name: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(name if key == "_schema" else (f"{name}.{key}" if name else str(key)), inner)
        elif isinstance(value, list | tuple):
            for inner in value:
                walk(name, inner)
        elif value not in (None, "") and str(value) != headline and (name, str(value)) not in items:
            items.append((name, str(value)))

    walk("", fields or {})
    return items


def _page_audience() -> tuple[bool, str]:
    """Whether the error page is a trainee's (the phone layout), and where its 首页 leads: a trainee's home, the public
    verification for someone checking a certificate, else the institutions' and committee's."""
    principal = getattr(g, "principal", None)
    if principal is not None:
        return (True, "/credits/") if principal.role == "trainee" else (False, "/projects/")
    if request.path.startswith("/credits/"):
        return True, "/credits/"
    if request.path.startswith("/certs/"):
        return True, "/certs/verify"
    return False, "/projects/"


def error_response(status: int, code: str, message: str, fields: dict[str, Any] | None = None):
    rid = getattr(g, "request_id", None)
    if wants_json():
        body = {"error": {"code": code, "message": message, "fields": fields or {}, "request_id": rid}}
        resp = jsonify(body)
    else:
        phone, home = _page_audience()
        resp = render_template("error.html", status=status, message=message, items=page_items(fields, message),
                               request_id=rid, phone=phone, home=home,
                               login_again=getattr(g, "login_again", None) if status == 401 else None)
    return resp, status


def _flatten_smorest(data: dict[str, Any]) -> dict[str, Any]:
    """flask-smorest puts marshmallow messages under errors -> location -> field, each a list: an API client gets
    them as every other endpoint gives them, {field: one Chinese sentence}."""
    from .inputs import flatten  # inputs raises this module's AppError

    errors = data.get("errors") or data.get("messages") or {}
    if isinstance(errors, dict) and len(errors) == 1 and next(iter(errors)) in {"json", "form", "query", "files"}:
        errors = next(iter(errors.values()))
    return flatten(errors)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AppError)
    def _app_error(exc: AppError):
        resp, status = error_response(exc.status, exc.code, exc.message, exc.fields)
        if exc.retry_after is None:
            return resp, status
        resp = make_response(resp, status)
        resp.headers["Retry-After"] = str(exc.retry_after)
        return resp

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        fields = _flatten_smorest(getattr(exc, "data", None) or {}) if status == 422 else {}
        return error_response(status, STATUS_CODES.get(status, "error"),
                              STATUS_MESSAGES.get(status, exc.description or "请求失败。"), fields)

    @app.errorhandler(StaleDataError)
    def _stale(exc: StaleDataError):
        # a versioned row changed under us: the other person's save wins, this one is told to reload
        return error_response(409, "conflict", STATUS_MESSAGES[409])

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", STATUS_MESSAGES[500])

    @app.errorhandler(DBAPIError)
    @app.errorhandler(PoolTimeoutError)
    def _db_down(exc: Exception):
        if isinstance(exc, DataError):  # a value the column cannot hold (an id beyond integer): the request's fault
            log.warning("value refused by the database: %s", str(exc.orig).splitlines()[0] if exc.orig else exc)
            return error_response(422, "invalid_input", OUT_OF_RANGE_MESSAGE)
        if isinstance(exc, IntegrityError) and (constraint := unique_violation(exc)):
            # two requests saved the same thing at the same moment (two tabs, two clerks): the other one won
            log.warning("unique constraint refused a save: %s", constraint)
            return error_response(409, "conflict", STATUS_MESSAGES[409])
        if not db_unavailable(exc):  # any other failing statement (a broken rule of ours) stays a 500
            return _unexpected(exc)
        return db_unavailable_response(exc)


def db_unavailable_response(exc: BaseException, message: str = DB_BUSY_MESSAGE):
    """503 with Retry-After for a database that is down or restarting (the JSON shape or the error page)."""
    log.error("database unavailable: %s", brief(exc))
    resp, status = error_response(503, "unavailable", message)
    resp = make_response(resp, status)
    resp.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    resp.headers["Cache-Control"] = "no-store"
    return resp
