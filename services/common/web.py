"""The app factory every service builds on: request ids, auth, errors, health, OpenAPI, base layout."""

from __future__ import annotations

import gc
import logging
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Flask, Request, Response, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SecureCookieSessionInterface
from flask_smorest import Api
from marshmallow import fields as ma_fields
from sqlalchemy import Integer, text
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from . import auth, clock, pii
from .auth import access
from .config import env, get_settings, max_body_bytes, redis_client
from .db import ServiceDB, UTCDateTime
from .errors import ErrorSchema, register_error_handlers, with_retry_after
from .logs import brief, setup_logging
from .schemas import MAX_ID

COMMON_DIR = Path(__file__).resolve().parent
access_log = logging.getLogger("access")
log = logging.getLogger(__name__)

SERVICE_TITLES = {
    "projects": "项目管理服务（机构登录、项目目录、举办前登记、审批）",
    "checkin": "考勤服务（继教活动、二维码考勤）",
    "credits": "学分服务（考勤分析、授分、达标情况）",
    "certs": "证书服务（学分证书、验证）",
}


class IdConverter(IntegerConverter):
    """<int:...> in every URL: a number beyond the integer ids names nothing (404, documented as the path
    parameter's maximum) instead of reaching PostgreSQL as an out-of-range value (a 500)."""

    def __init__(self, map: Any, fixed_digits: int = 0, min: int | None = None, max: int | None = None,  # noqa: A002
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits, min, MAX_ID if max is None else max, signed)


def _decimal_property(self: Any, field: Any, ret: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """apispec documents every Decimal as a number, with its Range bounds as Decimals (which JSON writes as
    strings, an invalid document); one dumped with as_string=True is a JSON string."""
    if not isinstance(field, ma_fields.Decimal):
        return {}
    if field.as_string:
        return {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}
    return {k: float(ret[k]) for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") if k in ret}


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's cookie session (flash messages on the projects pages), opened only when its cookie came: the
    default builds a signing serializer on every request, to find no cookie on nearly all of them."""

    def open_session(self, app: Flask, request: Any) -> Any:
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


class FormRequest(Request):
    """A browser sends each line break of a textarea as CR LF but counts it as one character against maxlength:
    folded to LF, a 2000-character 执行情况总结 with line breaks is not refused as longer than 2000."""

    def _load_form_data(self) -> None:
        super()._load_form_data()
        form = self.__dict__.get("form")
        if form and any("\r" in v for _, v in form.items(multi=True)):
            self.__dict__["form"] = self.parameter_storage_class(
                [(k, v.replace("\r\n", "\n")) for k, v in form.items(multi=True)])


class SafeJSONProvider(DefaultJSONProvider):
    """Flask's JSON, where a body nested past Python's recursion limit is bad JSON (a 4xx), not a 500."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


class ServiceApi(Api):
    """flask-smorest, documenting the error shape our handlers really answer (not its own)."""

    ERROR_SCHEMA = ErrorSchema


def service_metrics(service: str, sdb: ServiceDB, queues: tuple[str, ...]) -> str:
    """The service's gauges in Prometheus' text format, read fresh on each scrape (no per-process counters, so
    any gunicorn worker answers the same): database and Redis up, the outbox backlog (events waiting for Redis or
    the relay) and its oldest age, events consumed, and the length of the service's Celery queues."""
    lines: list[str] = []

    def gauge(name: str, value: float, help_text: str, **labels: str) -> None:
        label = ",".join(f'{k}="{v}"' for k, v in {"service": service, **labels}.items())
        if not any(line.startswith(f"# HELP {name} ") for line in lines):
            lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} gauge"])
        lines.append(f"{name}{{{label}}} {value:g}")

    # read everything first and write only then: a failure halfway must not leave a series written twice
    # (cme_database_up 1, then 0), which makes Prometheus reject the whole scrape
    try:
        with sdb.engine.connect() as conn:
            # typed columns: SQLite returns min() of a datetime as text, UTCDateTime parses it on both backends
            unsent, oldest = conn.execute(text(
                "SELECT count(*) AS unsent, min(created_at) AS oldest FROM outbox WHERE sent_at IS NULL"
            ).columns(unsent=Integer(), oldest=UTCDateTime())).one()
            processed = conn.execute(text("SELECT count(*) FROM processed_events")).scalar_one()
        age = (clock.now() - oldest).total_seconds() if oldest is not None else 0.0
    except Exception as exc:  # noqa: BLE001 - metrics report, never raise
        log.warning("metrics: database not read: %s", brief(exc))
        gauge("cme_database_up", 0, "1 when the service's database answers")
    else:
        gauge("cme_database_up", 1, "1 when the service's database answers")
        gauge("cme_outbox_unsent", unsent, "events committed but not yet handed to Redis")
        gauge("cme_outbox_oldest_unsent_seconds", max(age, 0.0), "age of the oldest event waiting in the outbox")
        gauge("cme_events_processed", processed, "events consumed (ids kept 2x CME_OUTBOX_KEEP_DAYS)")
    try:
        client = redis_client()
        lengths = {q: client.llen(q) for q in queues}
        gauge("cme_redis_up", 1, "1 when Redis answers")
        for queue, length in lengths.items():
            gauge("cme_queue_length", length, "messages waiting in a Celery queue of this service", queue=queue)
    except Exception:  # noqa: BLE001
        gauge("cme_redis_up", 0, "1 when Redis answers")
    return "\n".join(lines) + "\n"


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def download(data: bytes, mimetype: str, ascii_name: str, name: str) -> Response:
    """A file to save, never kept by a shared browser or proxy: `name` (Chinese) where the browser reads
    RFC 5987's filename*, `ascii_name` where it does not."""
    resp = Response(data, mimetype=mimetype)
    resp.headers["Content-Disposition"] = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


def create_service_app(service: str, sdb: ServiceDB, blueprints: Iterable[Blueprint],
                       api_blueprints: Iterable[Any] = (), config: dict[str, Any] | None = None,
                       queues: tuple[str, ...] | None = None) -> Flask:
    """The service's Flask app; `queues` are its Celery queues for /metrics (default: the one named as the service)."""
    setup_logging(service)
    settings = get_settings()
    app = Flask(f"services.{service}", template_folder=str(COMMON_DIR / "templates"),
                static_folder=str(COMMON_DIR / "static"), static_url_path=f"/{service}/static")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=max_body_bytes(),
        JSON_AS_ASCII=False,
        API_TITLE=SERVICE_TITLES[service],
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=f"/{service}/api",
        OPENAPI_JSON_PATH="openapi.json",
        SERVICE=service,
        LOGIN_URL="/projects/login",
        SESSION_COOKIE_SAMESITE="Lax",  # the flash-message cookie, like the login cookie, stays on this site
    )
    app.json = SafeJSONProvider(app)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.session_interface = CookieSessionInterface()
    app.request_class = FormRequest
    # services listen only behind the gateway, whose X-Forwarded-* headers give the client's address
    proxies = int(env("CME_TRUSTED_PROXIES", "1"))
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]
    app.config.update(config or {})
    app.extensions["cme_db"] = sdb

    app.url_map.converters["int"] = IdConverter
    api = ServiceApi(app, spec_kwargs={"components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer"}}}})
    api.ma_plugin.converter.add_attribute_function(_decimal_property)
    # our handlers replace flask-smorest's so the API and the pages share one error shape
    register_error_handlers(app)

    @app.before_request
    def _start() -> None:
        g.t0 = time.perf_counter()
        rid = request.environ.get("HTTP_X_REQUEST_ID", "")  # the header, without werkzeug's KeyError on a miss
        g.request_id = rid if 8 <= len(rid) <= 64 and rid.replace("-", "").isalnum() else uuid.uuid4().hex
        auth.load_principal()

    @app.after_request
    def _finish(response: Any) -> Any:
        ctx = g._get_current_object()  # one proxy look-up instead of one per attribute
        headers = response.headers
        headers["X-Request-ID"] = getattr(ctx, "request_id", "")
        with_retry_after(response)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        # no page of the suite may be framed by another site (a hidden 审批通过 or 授分 button under a click)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
        req = request._get_current_object()  # type: ignore[attr-defined]
        fresh = getattr(ctx, "new_anon_csrf", None)
        if fresh:  # an anonymous form was rendered: the cookie its token is bound to (auth._anonymous_basis)
            response.set_cookie(auth.ANON_CSRF_COOKIE, fresh, httponly=True, samesite="Lax", path="/",
                                secure=get_settings().public_base_url.startswith("https"))
        p = getattr(ctx, "principal", None)
        if (p is not None or req.method not in ("GET", "HEAD")) and req.endpoint != "static":
            # a signed-in answer holds personal data, and an answer to a POST may be a login's token: a shared
            # phone's Back button or a proxy must not keep either
            headers.setdefault("Cache-Control", "private, no-store")
        if req.endpoint != "static" and access_log.isEnabledFor(logging.INFO):
            now = time.perf_counter()
            access_log.info("%s %s %s %.1fms %s", req.method, req.path, response.status_code,
                            (now - getattr(ctx, "t0", now)) * 1000, p.describe() if p else "anonymous")
        return response

    @app.teardown_appcontext
    def _cleanup(_exc: BaseException | None) -> None:
        try:
            sdb.session.remove()
        except Exception as exc:  # noqa: BLE001 - the database dropped the connection (a restart) after the
            # answer was made: the answer stands (a 500 from here would hide it), the broken session is let go
            log.warning("closing the request's session failed: %s", type(exc).__name__)
            sdb.session.registry.clear()

    # globals (not a context processor) so that imported macros such as csrf() see them too
    app.jinja_env.globals.update(csrf_token=auth.csrf_token, fmt_time=clock.fmt, mask_mobile=pii.mask_mobile,
                                 mask_id=pii.mask_id, service=service, current_principal=auth.current,
                                 max_body_mb=(max_body_bytes() or 0) // (1024 * 1024))

    @app.context_processor
    def _template_globals() -> dict[str, Any]:
        return {"principal": auth.current()}

    health = Blueprint(f"{service}_health", __name__)

    @health.get(f"/{service}/healthz")
    @access("public")
    def healthz() -> Any:
        checks: dict[str, str] = {}
        try:
            with sdb.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - health reports, never raises
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            redis_client().ping()
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["redis"] = f"error: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return jsonify({"service": service, "status": "ok" if ok else "unavailable", "checks": checks}), (
            200 if ok else 503)

    @health.get(f"/{service}/metrics")
    @access("public")  # counts only, no personal data; the gateway does not route it (scraped on the service port)
    def metrics() -> Any:
        return Response(service_metrics(service, sdb, queues or (service,)), mimetype="text/plain; version=0.0.4")

    app.register_blueprint(health)
    for bp in blueprints:
        app.register_blueprint(bp)
    for bp in api_blueprints:
        api.register_blueprint(bp)
    check_access_declared(app)
    # What is loaded by now (modules, the app, schemas) lives as long as the process: keep it out of the cyclic
    # collector's full passes, which otherwise walk all of it whenever a request allocates much (~50 ms for an
    # analysis of 10,000 attendees) and show up in p99. Objects made later are collected as usual.
    gc.freeze()
    return app


# Endpoints made by libraries, public by design: static files and the OpenAPI document.
LIBRARY_PUBLIC = {"static", "api-docs.openapi_json"}


def declared_access(app: Flask, endpoint: str) -> tuple[str, ...] | None:
    if endpoint in LIBRARY_PUBLIC:
        return ("public",)
    return getattr(app.view_functions[endpoint], "_cme_access", None)


def check_access_declared(app: Flask) -> None:
    """Every endpoint says who may call it; a view without @access(...) stops the service from starting."""
    missing = [rule.rule for rule in app.url_map.iter_rules() if declared_access(app, rule.endpoint) is None]
    if missing:
        raise RuntimeError(f"endpoints without an access declaration: {missing}")


def endpoint_access(app: Flask) -> dict[str, tuple[str, ...]]:
    """rule -> declared roles, for the permission tests."""
    return {f"{','.join(sorted(r.methods - {'HEAD', 'OPTIONS'}))} {r.rule}": declared_access(app, r.endpoint) or ()
            for r in app.url_map.iter_rules() if r.endpoint != "static"}
