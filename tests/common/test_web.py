"""The app factory's own parts: Flask's cookie session opened only when its cookie came, the <int:> converter, the
Shanghai-time input field."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import request, session
from werkzeug.routing import IntegerConverter

from services.common.schemas import MAX_ID
from services.common.web import CookieSessionInterface, IdConverter


def test_flask_session_round_trips_through_its_cookie(projects_app):
    assert isinstance(projects_app.session_interface, CookieSessionInterface)
    with projects_app.test_request_context("/"):
        assert dict(session) == {}  # no cookie: an empty session, nothing signed or verified
        session["_flashes"] = [("ok", "添加成功")]
        response = projects_app.response_class()
        projects_app.session_interface.save_session(projects_app, session, response)
        cookie = response.headers["Set-Cookie"].split(";")[0]
    assert "SameSite=Lax" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]
    name, value = cookie.split("=", 1)
    assert name == projects_app.config["SESSION_COOKIE_NAME"]
    with projects_app.test_request_context("/", headers={"Cookie": cookie}):
        assert session["_flashes"] == [("ok", "添加成功")]
    with projects_app.test_request_context("/", headers={"Cookie": f"{name}={value[:-2]}xx"}):
        assert dict(session) == {}  # a forged cookie is no session


def test_request_without_session_cookie_sets_none(projects_app):
    response = projects_app.test_client().get("/projects/healthz")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_int_converter_is_a_class_with_the_id_maximum(projects_app):
    converter = projects_app.url_map.converters["int"]
    assert converter is IdConverter and issubclass(converter, IntegerConverter)
    assert IdConverter(projects_app.url_map).max == MAX_ID


def test_redis_client_is_one_per_process_and_url(monkeypatch):
    """Healthz, metrics and the certificate verification's rate limit call it on every request: one pool, not a
    new connection each time; a changed REDIS_URL gets its own."""
    from services.common.config import get_settings, redis_client

    first = redis_client()
    assert redis_client() is first and first.ping()
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/13")
    get_settings.cache_clear()
    try:
        other = redis_client()
        assert other is not first and other.connection_pool.connection_kwargs["db"] == 13
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert redis_client() is first


@pytest.mark.parametrize("typed, utc", [
    ("2026-12-10 08:30", dt.datetime(2026, 12, 10, 0, 30, tzinfo=dt.UTC)),  # Shanghai wall clock
    ("2026/12/10 08:30", dt.datetime(2026, 12, 10, 0, 30, tzinfo=dt.UTC)),
    ("２０２６－１２－１０　０８：３０", dt.datetime(2026, 12, 10, 0, 30, tzinfo=dt.UTC)),  # a 全角 input mode
    ("2026-12-10T08:30:00+01:00", dt.datetime(2026, 12, 10, 7, 30, tzinfo=dt.UTC)),
])
def test_local_datetime_loads_as_utc(typed, utc):
    from marshmallow import Schema

    from services.common.schemas import LocalDateTime

    class At(Schema):
        at = LocalDateTime()

    assert At().load({"at": typed})["at"] == utc


@pytest.mark.parametrize("typed", ["0001-01-01T00:00", "0001-01-01T00:00:00.0+00:01", "9999-12-31T23:59-01:00",
                                   "1999-12-31 23:59", "2100-01-01 00:00"])
def test_local_datetime_outside_the_years_is_an_input_error(typed):
    """Year 1 in Shanghai is before year 1 in UTC, which Python cannot hold: a 500 before this check (found by
    the API fuzz test with random seeds)."""
    from marshmallow import Schema, ValidationError

    from services.common.schemas import LocalDateTime

    class At(Schema):
        at = LocalDateTime()

    with pytest.raises(ValidationError) as caught:
        At().load({"at": typed})
    assert caught.value.messages == {"at": ["时间超出范围（年份应在 2000 至 2099 之间）。"]}


def test_calendar_date_keeps_to_the_same_years():
    from marshmallow import Schema, ValidationError

    from services.common.schemas import CalendarDate

    class On(Schema):
        on = CalendarDate()

    assert On().load({"on": "2026-12-10"})["on"] == dt.date(2026, 12, 10)
    assert On().load({"on": " ２０２６－１２－１０"})["on"] == dt.date(2026, 12, 10)  # pasted from a Word file
    for typed in ("0001-01-01", "9999-12-31", "1999-12-31", "2100-01-01"):
        with pytest.raises(ValidationError) as caught:
            On().load({"on": typed})
        assert caught.value.messages == {"on": ["日期超出范围（年份应在 2000 至 2099 之间）。"]}, typed
    # written the right way but not in the calendar: said so, not 格式不正确 (which sends her to the dashes)
    for typed, said in (("2026-13-01", "没有 13 月，月份应为 1–12，请核对日期。"),
                        ("2026-02-30", "2026 年 2 月没有 30 日（该月共 28 天），请核对日期。"),
                        ("2028-02-30", "2028 年 2 月没有 30 日（该月共 29 天），请核对日期。"),
                        ("２０２６－０４－３１", "2026 年 4 月没有 31 日（该月共 30 天），请核对日期。"),
                        ("2026/04/01", "日期格式不正确（应为 年-月-日，如 2026-05-01）。"),
                        ("2026-4-", "日期格式不正确（应为 年-月-日，如 2026-05-01）。")):
        with pytest.raises(ValidationError) as caught:
            On().load({"on": typed})
        assert caught.value.messages == {"on": [said]}, typed


def test_a_time_on_a_day_the_calendar_has_not_says_so():
    from marshmallow import Schema, ValidationError

    from services.common.schemas import LocalDateTime

    class At(Schema):
        at = LocalDateTime()

    with pytest.raises(ValidationError) as caught:
        At().load({"at": "2026-02-29 08:30"})
    assert caught.value.messages == {"at": ["2026 年 2 月没有 29 日（该月共 28 天），请核对日期。"]}
    with pytest.raises(ValidationError) as caught:
        At().load({"at": "2026-02-28 25:30"})  # the day is right: the time's own message
    assert caught.value.messages == {"at": ["时间格式不正确（应为 年-月-日 时:分，如 2026-12-10 08:30）。"]}



@pytest.mark.parametrize("path", ["/projects/login", "/credits/login", "/checkin/healthz",
                                  "/certs/verify/2027AAAAAAAAAAAA"])
def test_no_page_may_be_framed_by_another_site(projects_app, credits_app, checkin_app, certs_app, path):
    """Clickjacking: every answer says it may not be shown in another site's frame; an answer with its own
    policy (an upload, the QR image) keeps it and is still refused to frames by X-Frame-Options."""
    app = {"projects": projects_app, "credits": credits_app, "checkin": checkin_app, "certs": certs_app}[
        path.split("/")[1]]
    resp = app.test_client().get(path)
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Content-Security-Policy"] == "frame-ancestors 'none'"


def test_a_textarea_s_line_breaks_count_as_the_browser_counts_them(projects_app):
    """CR LF from a browser's textarea reaches the views as LF: maxlength counted one character a line break."""
    with projects_app.test_request_context("/", method="POST", data={"summary": "第一行\r\n第二行", "n": "1"}):
        assert request.form["summary"] == "第一行\n第二行" and request.form["n"] == "1"
    with projects_app.test_request_context("/", method="POST", data={"a": ["x\r\ny", "z"]}):
        assert request.form.getlist("a") == ["x\ny", "z"]


@pytest.mark.parametrize(("setting", "cap", "said"), [("12m", 12 * 1024**2, 12), ("3m", 3 * 1024**2, 3),
                                                      ("2048k", 2 * 1024**2, 2), ("0", None, 0),
                                                      ("twelve", 12 * 1024**2, 12)])
def test_the_gateway_s_body_cap_is_the_services_and_the_pages(databases, monkeypatch, setting, cap, said):
    """One setting: an operator raising CME_GATEWAY_MAX_BODY for photo-heavy reports also raises what the services
    accept and what the upload forms check and say (before, those stayed at a literal 12 MB)."""
    import importlib

    from deploy.local import GATEWAY_DEFAULTS
    from services.common.config import DEFAULT_MAX_BODY

    assert GATEWAY_DEFAULTS["max_body"] == DEFAULT_MAX_BODY  # deploy.local stands alone, so it keeps a copy
    monkeypatch.setenv("CME_GATEWAY_MAX_BODY", setting)
    app = importlib.import_module("services.projects.app").create_app({"TESTING": True})
    assert app.config["MAX_CONTENT_LENGTH"] == cap
    assert app.jinja_env.globals["max_body_mb"] == said
    with app.test_request_context():
        guard = app.jinja_env.from_string('{% from "_macros.html" import total_guard %}{{ total_guard() }}').render()
    assert (f"超过一次提交的上限 {said} MB" in guard) if said else guard.strip() == ""
    if cap:
        r = app.test_client().post("/projects/login", data=b"x" * (cap + 1), content_type="application/octet-stream")
        assert r.status_code == 413 and "太大" in r.get_data(as_text=True)
