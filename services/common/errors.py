"""One error shape for the JSON API and a readable Chinese page for the browser.

JSON: {"error": {"code": "...", "message": "<Chinese sentence>", "fields": {...}, "request_id": "..."}}
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, g, jsonify, render_template, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

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


class AppError(Exception):
    """A refusal a user can act on: an HTTP status, a stable code and a Chinese message."""

    def __init__(self, status: int, code: str, message: str, fields: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}


class KeptError(AppError):
    """A refusal whose side effect (a counted wrong try, a lock) must still be committed before answering."""


def wants_json() -> bool:
    if "/api/" in request.path or request.headers.get("Authorization", "").startswith("Bearer "):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_response(status: int, code: str, message: str, fields: dict[str, Any] | None = None):
    rid = getattr(g, "request_id", None)
    if wants_json():
        body = {"error": {"code": code, "message": message, "fields": fields or {}, "request_id": rid}}
        resp = jsonify(body)
    else:
        resp = render_template("error.html", status=status, message=message, fields=fields or {},
                               request_id=rid)
    return resp, status


def _flatten_smorest(data: dict[str, Any]) -> dict[str, Any]:
    # flask-smorest puts marshmallow messages under errors -> location -> field
    errors = data.get("errors") or data.get("messages") or {}
    if isinstance(errors, dict) and len(errors) == 1 and next(iter(errors)) in {"json", "form", "query", "files"}:
        errors = next(iter(errors.values()))
    return errors if isinstance(errors, dict) else {"_schema": errors}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AppError)
    def _app_error(exc: AppError):
        return error_response(exc.status, exc.code, exc.message, exc.fields)

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

    @app.errorhandler(OperationalError)
    def _db_down(exc: OperationalError):
        log.error("database unavailable: %s", type(exc).__name__)
        return error_response(503, "unavailable", "数据库暂时不可用，请稍后重试，已填写的内容不会丢失。")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", STATUS_MESSAGES[500])
