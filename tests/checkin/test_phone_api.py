"""The JSON mirror of the phone flow: the same cookies (scan ticket, WeChat identity), JSON in and out."""

from __future__ import annotations

import datetime as dt

import pytest

from services.common import clock

from .test_phone import NOW, WECHAT_UA, checkins, fake_base, hall, id_number, identity, open_code, phone, token_for  # noqa: F401
from .test_phone import env as env  # noqa: F401


def _ready(phone, hall, user="alice"):  # noqa: F811
    page = open_code(phone, token_for(hall["a"], hall["w1"]), user=user)
    assert page.status_code == 200
    return phone.get("/checkin/api/scan").get_json()


def test_ticket_then_first_scan_then_repeat(phone, hall):  # noqa: F811
    ticket = _ready(phone, hall)
    assert ticket["bound"] is False and ticket["identity"] is None
    assert ticket["window_id"] == hall["w1"] and ticket["window_kind"] == "签到"
    assert ticket["activity_title"] == "心血管疾病诊疗进展1（第一期）"
    assert dt.datetime.fromisoformat(ticket["scanned_at"]) == NOW
    assert dt.datetime.fromisoformat(ticket["expires_at"]) == NOW + dt.timedelta(minutes=10)

    resp = phone.post("/checkin/api/scan", json={"nonce": ticket["nonce"], **identity(1)})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "已签到" and body["created"] is True
    assert body["checkin"]["window_id"] == hall["w1"] and body["checkin"]["forced"] is False
    assert dt.datetime.fromisoformat(body["checkin"]["scanned_at"]) == NOW

    again = phone.post("/checkin/api/scan", json={"nonce": ticket["nonce"], **identity(1)}).get_json()
    assert again["created"] is False and again["checkin"]["id"] == body["checkin"]["id"]
    assert len(checkins()) == 1

    bound = phone.get("/checkin/api/scan").get_json()
    assert bound["bound"] is True
    assert bound["identity"] == {"name": "张一明", "masked_id": "6101**********" + id_number(1)[-4:],
                                 "title": "主治医师", "unit": "西安市第一医院"}


def test_one_tap_by_json(phone, hall):  # noqa: F811
    ticket = _ready(phone, hall)
    assert phone.post("/checkin/api/scan", json={"nonce": ticket["nonce"], **identity(1)}).status_code == 200
    clock.set_now(NOW + dt.timedelta(minutes=2))
    page = open_code(phone, token_for(hall["a"], hall["w2"]))
    assert page.status_code == 200
    ticket = phone.get("/checkin/api/scan").get_json()
    body = phone.post("/checkin/api/scan", json={"nonce": ticket["nonce"]}).get_json()
    assert body["created"] is True and body["checkin"]["window_id"] == hall["w2"]


def test_errors_have_the_common_shape(phone, hall):  # noqa: F811
    resp = phone.post("/checkin/api/scan", json={"nonce": "x"})
    assert resp.status_code == 410 and resp.get_json()["error"]["code"] == "ticket_expired"
    ticket = _ready(phone, hall)

    resp = phone.post("/checkin/api/scan", json={"nonce": ticket["nonce"], **identity(1, mobile="123")})
    err = resp.get_json()["error"]
    assert resp.status_code == 422 and err["code"] == "invalid_input"
    assert err["fields"] == {"mobile": "请输入 11 位中国大陆手机号码，如 13800000000。"}

    resp = phone.post("/checkin/api/scan", json={"nonce": ticket["nonce"], "name": "张一明"})
    assert resp.status_code == 422 and "id_number" in resp.get_json()["error"]["fields"]

    resp = phone.post("/checkin/api/scan", json={"nonce": ticket["nonce"], "openid": "someone-else"})
    assert resp.status_code == 422 and resp.get_json()["error"]["fields"] == {"openid": "不允许的字段。"}

    resp = phone.post("/checkin/api/scan", json={"nonce": ticket["nonce"]})  # one tap, not bound yet
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "identity_required"

    resp = phone.post("/checkin/api/scan", json={"nonce": "another-form", **identity(1)})
    assert resp.status_code == 410 and resp.get_json()["error"]["code"] == "ticket_expired"

    clock.set_now(NOW + dt.timedelta(minutes=11))
    resp = phone.post("/checkin/api/scan", json={"nonce": ticket["nonce"], **identity(1)})
    assert resp.status_code == 410 and resp.get_json()["error"]["code"] == "ticket_expired"
    assert checkins() == []


def test_wechat_login_is_needed(checkin_app, phone, hall):  # noqa: F811
    _ready(phone, hall)
    ticket_cookie = phone.get_cookie("cme_scan", path="/checkin/").value
    bare = checkin_app.test_client()
    bare.set_cookie("cme_scan", ticket_cookie, path="/checkin/")
    nonce = phone.get("/checkin/api/scan").get_json()["nonce"]
    resp = bare.post("/checkin/api/scan", json={"nonce": nonce, **identity(1)})
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "wechat_login_required"
    bare.set_cookie("cme_wx", "forged.value", path="/checkin/")
    assert bare.post("/checkin/api/scan", json={"nonce": nonce, **identity(1)}).status_code == 401


def test_routes_are_public_and_documented(checkin_app):
    from services.common.web import endpoint_access

    table = endpoint_access(checkin_app)
    for rule in ("GET /checkin/s/<token>", "GET /checkin/wechat/callback", "GET /checkin/scan",
                 "POST /checkin/scan", "GET /checkin/api/scan", "POST /checkin/api/scan"):
        assert table[rule] == ("public",), rule
    spec = checkin_app.test_client().get("/checkin/api/openapi.json").get_json()
    assert {"get", "post"} <= set(spec["paths"]["/checkin/api/scan"])


PHONE_ENDPOINTS = {
    # rule -> (method, url, status without a scan ticket: the same for everyone, logged in or not)
    "GET /checkin/s/<token>": ("get", "/checkin/s/{token}", 302),
    "GET /checkin/wechat/callback": ("get", "/checkin/wechat/callback?code=x&state=y", 410),
    "GET /checkin/scan": ("get", "/checkin/scan", 410),
    "POST /checkin/scan": ("post", "/checkin/scan", 410),
    "GET /checkin/api/scan": ("get", "/checkin/api/scan", 410),
    "POST /checkin/api/scan": ("post", "/checkin/api/scan", 410),
}


@pytest.mark.parametrize("rule", sorted(PHONE_ENDPOINTS))
@pytest.mark.parametrize("who", ["anonymous", "institution", "reviewer", "trainee"])
def test_phone_permissions(checkin_app, hall, rule, who):  # noqa: F811
    """Public by design: a login neither grants nor blocks anything; the scan ticket does."""
    from services.common.auth import COOKIE, Principal, csrf_token, issue_token, load_principal

    principals = {
        "institution": Principal(role="institution", subject="inst:1:admin:1", name="西安市第一医院",
                                 institution_id=1, admin_id=1),
        "reviewer": Principal(role="reviewer", subject="reviewer:1", name="审核员甲", reviewer_id=1),
        "trainee": Principal(role="trainee", subject="trainee:abc", name="张一明", trainee_key="abc"),
    }
    client = checkin_app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = WECHAT_UA
    headers = {}
    if who in principals:  # a logged-in browser: its pages carry the csrf token, as the phone forms do
        cookie = issue_token(principals[who])
        client.set_cookie(COOKIE, cookie, path="/")
        with checkin_app.test_request_context(headers={"Cookie": f"{COOKIE}={cookie}"}):
            load_principal()
            headers["X-CSRF-Token"] = csrf_token()
    method, url, expected = PHONE_ENDPOINTS[rule]
    url = url.format(token=token_for(hall["a"], hall["w1"]))
    if method == "post":
        kwargs = {"json": {"nonce": "n"}} if "/api/" in url else {"data": {"nonce": "n", "csrf_token":
                                                                            headers.get("X-CSRF-Token", "")}}
        resp = client.post(url, headers=headers, **kwargs)
    else:
        resp = client.get(url, headers=headers)
    assert resp.status_code == expected, resp.get_data(as_text=True)[:300]


@pytest.mark.parametrize("created, forced, kind", [(True, False, "sign_in"), (False, False, "sign_in"),
                                                   (False, True, "sign_in"), (True, False, "sign_out")])
def test_scan_answer_written_by_hand_is_the_schemas_dump(created, forced, kind):
    """The scan API writes its JSON without marshmallow; PhoneScanResultSchema stays its description."""
    from services.checkin.phone.schemas import PhoneScanResultSchema, dump_scan_result
    from services.checkin.scans.services import ScanResult

    at = dt.datetime(2026, 5, 12, 1, 2, 3, 456789, tzinfo=dt.UTC)
    for scanned_at in (at, at.replace(microsecond=0)):
        r = ScanResult(checkin_id=2**31 - 1, window_id=7, scanned_at=scanned_at, created=created, forced=forced,
                       name="张一明", kind=kind)
        status = {"sign_in": "已签到", "sign_out": "已签退"}[kind]
        expected = PhoneScanResultSchema().dump({"status": status, "created": created, "checkin": {
            "id": r.checkin_id, "scanned_at": r.scanned_at, "window_id": r.window_id, "forced": r.forced}})
        assert dump_scan_result(r) == expected


def test_a_body_nested_past_the_recursion_limit_is_bad_json_never_a_500(phone, hall):  # noqa: F811
    """The 500-hunt: 2000 nested objects reached json.loads' recursion limit on every JSON endpoint."""
    _ready(phone, hall)
    for body in ('{"a":' * 2000 + "1" + "}" * 2000, "[" * 5000 + "]" * 5000):
        r = phone.post("/checkin/api/scan", data=body, content_type="application/json")
        assert r.status_code == 400 and r.get_json()["error"]["code"] == "bad_json", r.get_data(as_text=True)
    assert checkins() == []


def test_a_sign_out_window_answers_signed_out_first_again_and_on_reload(phone, hall):  # noqa: F811
    """The 签退 window's answer says 已签退 with its time, in the JSON as on the page: the first submit, the same
    form sent again, and a reload of the page (the JSON said 已签到 for a sign-out)."""
    page = open_code(phone, token_for(hall["a"], hall["w2"]))
    assert page.status_code == 200
    ticket = phone.get("/checkin/api/scan").get_json()
    assert ticket["window_kind"] == "签退"
    first = phone.post("/checkin/api/scan", json={"nonce": ticket["nonce"], **identity(1)})
    body = first.get_json()
    assert first.status_code == 200 and body["status"] == "已签退" and body["created"] is True, body
    assert dt.datetime.fromisoformat(body["checkin"]["scanned_at"]) == NOW
    again = phone.post("/checkin/api/scan", json={"nonce": ticket["nonce"], **identity(1)}).get_json()
    assert again["status"] == "已签退" and again["created"] is False
    reload = phone.get("/checkin/scan").get_data(as_text=True)
    assert "✓ 已签退" in reload and "签退时间" in reload and "2026-12-10 08:35" in reload and "已签到" not in reload
    sent = phone.post("/checkin/scan", data={"nonce": ticket["nonce"], "mode": "tap"}).get_data(as_text=True)
    assert "✓ 已签退" in sent and "您此前已在本时段签退（2026-12-10 08:35）" in sent and "已签到" not in sent
    # the sign-in window of the same activity still says 已签到
    open_code(phone, token_for(hall["a"], hall["w1"]))
    nonce = phone.get("/checkin/api/scan").get_json()["nonce"]
    assert phone.post("/checkin/api/scan", json={"nonce": nonce}).get_json()["status"] == "已签到"
    assert len(checkins()) == 2


def test_a_stored_scan_sent_again_after_the_tickets_time_is_answered_not_expired(phone, hall):  # noqa: F811
    """The JSON mirror of the page's retry: a scan stored whose answer was lost, sent again after the ticket's
    time (a slow network retrying), is answered with the stored check-in (已签退 on the 签退 window), not 410;
    another form (nonce) after that time is still refused."""
    open_code(phone, token_for(hall["a"], hall["w2"]))
    nonce = phone.get("/checkin/api/scan").get_json()["nonce"]
    first = phone.post("/checkin/api/scan", json={"nonce": nonce, **identity(1)}).get_json()
    clock.set_now(NOW + dt.timedelta(minutes=11))
    again = phone.post("/checkin/api/scan", json={"nonce": nonce, **identity(1)})
    body = again.get_json()
    assert again.status_code == 200, body
    assert (body["status"], body["created"], body["checkin"]) == ("已签退", False, first["checkin"])
    late = phone.post("/checkin/api/scan", json={"nonce": "another-form", **identity(1)})
    assert late.status_code == 410 and late.get_json()["error"]["code"] == "ticket_expired"
    assert len(checkins()) == 1


def test_a_refusal_on_a_sign_out_window_says_what_the_page_says(phone, hall):  # noqa: F811
    """A 签退 window's refusal through the JSON API names the 签退 window and its time, with the hint the refused
    page shows (the JSON said 当前不在签到时段内 on a sign-out window)."""
    from services.checkin.db import db
    from services.checkin.windows.models import CheckinWindow

    from .test_phone import START

    open_code(phone, token_for(hall["a"], hall["w2"]))
    nonce = phone.get("/checkin/api/scan").get_json()["nonce"]
    s = db.new_session()  # the office moves the sign-out window to the afternoon while her form is open
    s.get(CheckinWindow, hall["w2"]).starts_at = START + dt.timedelta(hours=5)
    s.get(CheckinWindow, hall["w2"]).ends_at = START + dt.timedelta(hours=6)
    s.commit()
    s.close()
    resp = phone.post("/checkin/api/scan", json={"nonce": nonce, **identity(1)})
    err = resp.get_json()["error"]
    assert resp.status_code == 403 and err["code"] == "not_in_window", err
    assert err["message"] == "当前不在签退时段内。"
    assert err["hint"] == ("“上午签退”的签退时间为 12-10 13:30–14:30。"
                           "请在主办单位规定的签退时段内扫码；如有疑问请联系会场工作人员。")
    # the page of the same refusal says the same words
    page = phone.post("/checkin/scan", data={"nonce": nonce, "mode": "tap"}).get_data(as_text=True)
    assert err["message"] in page and err["hint"] in page and "签到时段" not in page
    assert checkins() == []


def test_input_errors_carry_no_hint_and_refusals_of_the_ticket_do(phone, hall):  # noqa: F811
    """The hint is what the trainee can do about a refusal; a field marked wrong says it next to the field."""
    resp = phone.post("/checkin/api/scan", json={"nonce": "x"})
    err = resp.get_json()["error"]
    assert resp.status_code == 410 and err["hint"] == "请扫描会场投影上正在显示的最新二维码。"
    nonce = _ready(phone, hall)["nonce"]
    err = phone.post("/checkin/api/scan", json={"nonce": nonce, **identity(1, mobile="123")}).get_json()["error"]
    assert err["code"] == "invalid_input" and "hint" not in err
    spec = phone.get("/checkin/api/openapi.json").get_json()
    assert "hint" in spec["components"]["schemas"]["ScanRefusalDetail"]["properties"]
