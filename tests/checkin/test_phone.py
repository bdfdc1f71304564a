"""The trainee's phone flow in WeChat: QR URL -> fake WeChat OAuth -> form or one tap -> 已签到."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import re
import secrets
import threading
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import func, select
from stdnum.cn import ric
from werkzeug.serving import make_server

from deploy.fakes import wechat as fake
from services.common import clock

UTC = dt.UTC
START = dt.datetime(2026, 12, 10, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai
NOW = START + dt.timedelta(minutes=5)
WECHAT_UA = ("Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/116.0 Mobile Safari/537.36 MicroMessenger/8.0.40.2420(0x28002837) NetType/WIFI Language/zh_CN")
PLAIN_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"


def id_number(serial: int) -> str:
    body = f"610102199001{serial:02d}123"[:17]
    return body + ric.calc_check_digit(body + "0")


def identity(serial: int = 1, **over) -> dict[str, str]:
    return {"name": f"张{'一二三四五六七八九'[serial - 1]}明", "id_number": id_number(serial),
            "mobile": f"1391234{serial:04d}", "title": "主治医师", "unit": "西安市第一医院", **over}


# ---- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fake_base():
    server = make_server("127.0.0.1", 0, fake.create_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def env(monkeypatch, fake_base):
    for name in ("CME_WECHAT_APPID", "CME_WECHAT_SECRET", "CME_SCAN_TICKET_SECONDS", "CME_QR_SLOT_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CME_WECHAT_API_BASE", fake_base)
    monkeypatch.setenv("CME_WECHAT_OPEN_BASE", fake_base)
    monkeypatch.setenv("CME_WECHAT_UA_REQUIRED", "1")
    clock.set_now(NOW)
    return fake_base


def _activity(s, n: int):
    from services.checkin.activities.models import Activity

    a = Activity(offering_id=n, institution_id=1, institution_name="西安市第一医院", project_id=n,
                 project_number=f"2026-01-00{n}", project_title=f"心血管疾病诊疗进展{n}", year=2026, seq=1,
                 credit_class="Ⅰ类", credit_value=10, hours=20, starts_on=START.date(), ends_on=START.date(),
                 venue="西安", mode="线下", schedule=[], approved_at=START)
    s.add(a)
    s.flush()
    return a


@pytest.fixture
def hall(databases, env):
    """Two activities; the first has a morning sign-in and a sign-out window, the second one window."""
    from services.checkin.db import db
    from services.checkin.windows.models import CheckinWindow

    s = db.new_session()
    a, b = _activity(s, 1), _activity(s, 2)
    w1 = CheckinWindow(activity_id=a.id, title="上午", kind="sign_in", starts_at=START,
                       ends_at=START + dt.timedelta(hours=4))
    w2 = CheckinWindow(activity_id=a.id, title="上午签退", kind="sign_out", starts_at=START,
                       ends_at=START + dt.timedelta(hours=4))
    wb = CheckinWindow(activity_id=b.id, title="全天", kind="sign_in", starts_at=START,
                       ends_at=START + dt.timedelta(hours=8))
    s.add_all([w1, w2, wb])
    s.commit()
    ids = {"a": a.id, "b": b.id, "w1": w1.id, "w2": w2.id, "wb": wb.id}
    s.close()
    return ids


@pytest.fixture
def phone(checkin_app):
    client = checkin_app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = WECHAT_UA
    return client


def token_for(activity_id: int, window_id: int) -> str:
    from services.checkin.qr.tokens import current_token

    return current_token(activity_id, window_id)[0]


def wechat_login(phone, location: str, user: str):
    """Follow the authorize redirect to the fake WeChat and come back to the callback."""
    resp = requests.get(location.removesuffix("#wechat_redirect") + f"&fake_user={user}", allow_redirects=False,
                        timeout=5)
    assert resp.status_code == 302, resp.text
    target = urlsplit(resp.headers["Location"])
    assert target.path == "/checkin/wechat/callback"
    return phone.get(f"{target.path}?{target.query}")


def open_code(phone, token: str, user: str = "alice"):
    """Open the QR URL as a phone: WeChat login when needed; returns the /checkin/scan page."""
    resp = phone.get(f"/checkin/s/{token}")
    if resp.status_code != 302:
        return resp
    location = resp.headers["Location"]
    if "/connect/oauth2/authorize" in location:
        resp = wechat_login(phone, location, user)
        if resp.status_code != 302:
            return resp
        location = resp.headers["Location"]
    assert urlsplit(location).path == "/checkin/scan"
    return phone.get("/checkin/scan")


def nonce_of(page) -> str:
    return re.search(r'name="nonce" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def submit(phone, nonce: str, who: dict[str, str] | None = None):
    data = {"nonce": nonce, "mode": "form", **who} if who else {"nonce": nonce, "mode": "tap"}
    return phone.post("/checkin/scan", data=data)


def count(model) -> int:
    from services.checkin.db import db

    s = db.new_session()
    try:
        return s.scalar(select(func.count()).select_from(model))
    finally:
        s.close()


def refusals() -> list[str]:
    from services.checkin.db import db
    from services.checkin.scans.models import RefusedScan

    s = db.new_session()
    try:
        return s.scalars(select(RefusedScan.reason).order_by(RefusedScan.id)).all()
    finally:
        s.close()


def checkins():
    from services.checkin.db import db
    from services.checkin.scans.models import Checkin

    s = db.new_session()
    try:
        return s.scalars(select(Checkin).order_by(Checkin.id)).all()
    finally:
        s.close()


# ---- the happy path ----------------------------------------------------------------------------

def test_first_scan_with_form_then_one_tap(phone, hall):
    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html
    for label in ("姓名", "身份证号码", "手机号码", "职称", "单位", "心血管疾病诊疗进展1", "上午"):
        assert label in html
    assert "主治医师" in html and "其他" in html  # the 职称 list
    assert page.headers["Cache-Control"] == "no-store"
    ticket = phone.get_cookie("cme_scan", path="/checkin/")
    assert ticket.http_only and ticket.same_site == "Lax"
    assert phone.get_cookie("cme_wx", path="/checkin/").http_only

    clock.set_now(NOW + dt.timedelta(seconds=40))  # the trainee types for a while
    done = submit(phone, nonce_of(page), identity(1))
    text = done.get_data(as_text=True)
    assert done.status_code == 200, text
    assert "已签到" in text and "2026-12-10 08:35" in text  # the first open, in Shanghai time
    assert "此前已在本时段签到" not in text
    [c] = checkins()
    assert c.scanned_at == NOW and c.window_id == hall["w1"] and not c.forced
    assert c.openid == fake.openid_for("wx-fake-appid", "alice")

    # a later scan (another code, another window) by the same WeChat: no OAuth, one tap
    clock.set_now(NOW + dt.timedelta(minutes=3))
    resp = phone.get(f"/checkin/s/{token_for(hall['a'], hall['w2'])}")
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/checkin/scan"
    tap = phone.get("/checkin/scan")
    text = tap.get_data(as_text=True)
    assert tap.status_code == 200 and "确认签退" in text and "不是我" in text  # w2 is a 签退 window
    assert "张一明" in text and "6101**********" + id_number(1)[-4:] in text
    assert id_number(1) not in text and "13912340001" not in text
    assert 'name="id_number"' not in text
    done = submit(phone, nonce_of(tap))
    assert done.status_code == 200 and "已签退" in done.get_data(as_text=True)
    assert [(c.window_id, c.scanned_at) for c in checkins()] == [(hall["w1"], NOW),
                                                                  (hall["w2"], NOW + dt.timedelta(minutes=3))]


def test_same_window_again_is_already_recorded(phone, hall):
    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    assert submit(phone, nonce_of(page), identity(1)).status_code == 200
    clock.set_now(NOW + dt.timedelta(minutes=10))
    tap = open_code(phone, token_for(hall["a"], hall["w1"]))
    again = submit(phone, nonce_of(tap))
    text = again.get_data(as_text=True)
    assert again.status_code == 200 and "已签到" in text and "此前已在本时段签到" in text
    assert "2026-12-10 08:35" in text  # the time of the stored check-in
    assert len(checkins()) == 1


def test_same_form_posted_twice_is_one_checkin(phone, hall):
    from services.checkin.db import outbox

    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    nonce = nonce_of(page)
    first = submit(phone, nonce, identity(1))
    second = submit(phone, nonce, identity(1))
    assert first.status_code == second.status_code == 200
    assert "此前已在本时段签到" in second.get_data(as_text=True)
    assert len(checkins()) == 1
    assert count(outbox) == 1  # one checkin.recorded


def test_concurrent_identical_submissions_are_one_checkin(checkin_app, phone, hall):
    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    nonce = nonce_of(page)
    cookies = {name: phone.get_cookie(name, path="/checkin/").value for name in ("cme_scan", "cme_wx")}
    barrier = threading.Barrier(8)
    results: list[tuple[int, str]] = []

    def tap_submit():
        client = checkin_app.test_client()
        client.environ_base["HTTP_USER_AGENT"] = WECHAT_UA
        for name, value in cookies.items():
            client.set_cookie(name, value, path="/checkin/")
        barrier.wait()
        resp = client.post("/checkin/scan", data={"nonce": nonce, "mode": "form", **identity(1)})
        results.append((resp.status_code, resp.get_data(as_text=True)))

    threads = [threading.Thread(target=tap_submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [status for status, _ in results] == [200] * 8, [t[:300] for _, t in results if "已签到" not in t]
    assert all("已签到" in text for _, text in results)
    assert len(checkins()) == 1


# ---- the scanned code ---------------------------------------------------------------------------

def test_stale_code_is_refused_with_410(phone, hall):
    from services.checkin.qr.tokens import get_qr_config

    token = token_for(hall["a"], hall["w1"])
    cfg = get_qr_config()
    clock.set_now(NOW + dt.timedelta(seconds=cfg.slot_seconds + cfg.grace_seconds + 1))
    resp = phone.get(f"/checkin/s/{token}")
    text = resp.get_data(as_text=True)
    assert resp.status_code == 410
    assert "token_expired" in text and "二维码已过期" in text
    assert phone.get_cookie("cme_scan", path="/checkin/") is None
    assert refusals() == ["token_expired"]


def _forged(activity_id: int, window_id: int, slot: int) -> str:
    from services.checkin.qr import tokens

    raw = bytes([1]) + tokens._uvarint(activity_id) + tokens._uvarint(window_id) + tokens._uvarint(slot)
    return base64.urlsafe_b64encode(raw + secrets.token_bytes(10)).rstrip(b"=").decode()


def test_forged_and_malformed_codes(phone, hall):
    from services.checkin.qr.tokens import slot_at

    resp = phone.get(f"/checkin/s/{_forged(hall['a'], hall['w1'], slot_at())}")
    assert resp.status_code == 400 and "token_forged" in resp.get_data(as_text=True)
    resp = phone.get("/checkin/s/not-a-token-at-all")
    assert resp.status_code == 400 and "token_malformed" in resp.get_data(as_text=True)
    assert refusals() == ["token_forged", "token_malformed"]
    assert checkins() == []


def test_code_of_another_activity_or_unknown_window(phone, hall):
    from services.checkin.qr.tokens import make_token, slot_at

    # an authentic token naming activity A but the window of activity B
    resp = phone.get(f"/checkin/s/{make_token(hall['a'], hall['wb'], slot_at())}")
    assert resp.status_code == 403 and "token_wrong_activity" in resp.get_data(as_text=True)
    resp = phone.get(f"/checkin/s/{make_token(hall['a'], 999999, slot_at())}")
    assert resp.status_code == 404 and "token_wrong_window" in resp.get_data(as_text=True)
    assert refusals() == ["token_wrong_activity", "token_wrong_window"]


def test_scan_outside_the_window_is_refused(phone, hall):
    clock.set_now(START + dt.timedelta(hours=5))
    resp = phone.get(f"/checkin/s/{token_for(hall['a'], hall['w1'])}")
    assert resp.status_code == 403 and "not_in_window" in resp.get_data(as_text=True)
    assert "<h1 class=\"refused\">未能签到</h1>" in resp.get_data(as_text=True)
    # the sign-out window's refusal says 签退
    resp = phone.get(f"/checkin/s/{token_for(hall['a'], hall['w2'])}")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 403 and "<h1 class=\"refused\">未能签退</h1>" in html
    assert refusals() == ["not_in_window", "not_in_window"]
    # and all of it says 签退, with the window's own times, so she knows whether to come back
    assert "当前不在签退时段内。" in html and "请在主办单位规定的签退时段内扫码" in html and "签到时段" not in html
    assert "“上午签退”的签退时间为 12-10 08:30–12:30。" in html


# ---- the ticket's bounded time --------------------------------------------------------------------

def test_slow_wechat_login_within_the_ticket_still_succeeds(phone, hall):
    resp = phone.get(f"/checkin/s/{token_for(hall['a'], hall['w1'])}")
    assert resp.status_code == 302 and "/connect/oauth2/authorize" in resp.headers["Location"]
    clock.set_now(NOW + dt.timedelta(minutes=4))  # the projector's code changed several times meanwhile
    back = wechat_login(phone, resp.headers["Location"], "slowpoke")
    assert back.status_code == 302
    page = phone.get("/checkin/scan")
    assert page.status_code == 200
    clock.set_now(NOW + dt.timedelta(minutes=9))
    done = submit(phone, nonce_of(page), identity(2))
    assert done.status_code == 200 and "已签到" in done.get_data(as_text=True)
    [c] = checkins()
    assert c.scanned_at == NOW


def test_ticket_older_than_ten_minutes_is_expired(phone, hall):
    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    nonce = nonce_of(page)
    clock.set_now(NOW + dt.timedelta(seconds=601))
    resp = phone.get("/checkin/scan")
    assert resp.status_code == 410 and "ticket_expired" in resp.get_data(as_text=True)
    assert "重新扫描" in resp.get_data(as_text=True)
    resp = submit(phone, nonce, identity(1))
    assert resp.status_code == 410 and "ticket_expired" in resp.get_data(as_text=True)
    assert checkins() == []
    assert refusals() == ["ticket_expired", "ticket_expired"]


def test_a_form_typed_for_longer_than_the_ticket_comes_back_on_the_next_scan(checkin_app, phone, hall):
    """The lecture began while she typed: the form sent after 10 minutes is refused as ever, but what she typed
    waits (encrypted, for her WeChat account) for the form of her next scan; nothing is typed twice."""
    from services.checkin.phone.services import KEPT_COOKIE, load_kept

    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    clock.set_now(NOW + dt.timedelta(seconds=700))
    late = submit(phone, nonce_of(page), identity(1))
    said = late.get_data(as_text=True)
    assert late.status_code == 410 and "ticket_expired" in said and "您填写的内容已保留" in said
    assert checkins() == [] and refusals() == ["ticket_expired"]
    kept = phone.get_cookie(KEPT_COOKIE, path="/checkin/")
    assert kept is not None and id_number(1) not in kept.value and "张一明" not in kept.value
    assert load_kept(kept.value, "someone-else") is None  # another WeChat account is not given her form

    again = open_code(phone, token_for(hall["a"], hall["w1"]))
    html = again.get_data(as_text=True)
    assert again.status_code == 200 and "已填入您上次填写的内容" in html
    for value in identity(1).values():
        assert value in html
    done = submit(phone, nonce_of(again), identity(1))
    assert done.status_code == 200 and "已签到" in done.get_data(as_text=True)
    assert phone.get_cookie(KEPT_COOKIE, path="/checkin/") is None and len(checkins()) == 1

    # another phone, never late, gets an empty form
    other = checkin_app.test_client()
    other.environ_base["HTTP_USER_AGENT"] = WECHAT_UA
    fresh = open_code(other, token_for(hall["a"], hall["w1"]), user="bob").get_data(as_text=True)
    assert "已填入" not in fresh and "张一明" not in fresh

    # kept for 30 minutes, not longer
    page = open_code(other, token_for(hall["a"], hall["w1"]), user="bob")
    clock.set_now(NOW + dt.timedelta(seconds=1400))
    assert submit(other, nonce_of(page), identity(2)).status_code == 410
    clock.set_now(NOW + dt.timedelta(seconds=1400 + 1801))
    stale = open_code(other, token_for(hall["a"], hall["w1"]), user="bob").get_data(as_text=True)
    assert "已填入" not in stale and id_number(2) not in stale


def test_a_late_change_of_details_comes_back_as_the_change_form(phone, hall):
    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    assert submit(phone, nonce_of(page), identity(1)).status_code == 200
    open_code(phone, token_for(hall["a"], hall["w2"]))
    edit = phone.get("/checkin/scan?edit=1")
    clock.set_now(NOW + dt.timedelta(seconds=700))
    changed = identity(1, unit="西安市中心医院", mobile="13912349999")
    late = phone.post("/checkin/scan", data={"nonce": nonce_of(edit), "mode": "form", "edit": "1", **changed})
    assert late.status_code == 410 and "您填写的内容已保留" in late.get_data(as_text=True)
    again = open_code(phone, token_for(hall["a"], hall["w2"])).get_data(as_text=True)
    assert 'name="edit" value="1"' in again and 'value="西安市中心医院"' in again and "13912349999" in again


def test_a_retry_after_the_ticket_time_of_a_stored_check_in_says_it_is_stored(phone, hall):
    """A slow network resends the submission after the ticket's 10 minutes: she is checked in, and is told so
    (not "扫码后超过有效时间", and no refusal for the office to chase)."""
    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    nonce = nonce_of(page)
    assert submit(phone, nonce, identity(1)).status_code == 200
    # a real browser drops a cookie at its Max-Age: the ticket must outlive its 10 minutes for this answer
    from services.checkin.phone.services import TICKET_COOKIE

    assert phone.get_cookie(TICKET_COOKIE, path="/checkin/").max_age >= 660 + 3000
    clock.set_now(NOW + dt.timedelta(seconds=660))
    again = submit(phone, nonce, identity(1))
    assert again.status_code == 200 and "已签到" in again.get_data(as_text=True)
    assert "您此前已在本时段签到" in again.get_data(as_text=True)
    assert len(checkins()) == 1 and refusals() == []


def test_ticket_time_is_configurable(phone, hall, monkeypatch):
    monkeypatch.setenv("CME_SCAN_TICKET_SECONDS", "120")
    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    clock.set_now(NOW + dt.timedelta(seconds=121))
    assert submit(phone, nonce_of(page), identity(1)).status_code == 410


def test_no_ticket_at_all(phone, hall):
    resp = phone.get("/checkin/scan")
    assert resp.status_code == 410 and "ticket_expired" in resp.get_data(as_text=True)
    resp = phone.post("/checkin/scan", data={"nonce": "x", "mode": "tap"})
    assert resp.status_code == 410


def test_form_of_an_earlier_scan_is_shown_again_for_the_newer_one_with_what_was_typed(phone, hall):
    """A doctor filling the form scans the code again in another tab, then submits the first page: nothing is
    stored from the old page; it comes back for the newer scan with what was typed, to submit once more."""
    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    old_nonce = nonce_of(page)
    clock.set_now(NOW + dt.timedelta(minutes=2))
    newer = open_code(phone, token_for(hall["a"], hall["w2"]))  # scanned again: a new ticket replaces the old
    resp = submit(phone, old_nonce, identity(1))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409 and checkins() == [] and "本页已按最新一次扫码（上午签退）更新" in html
    assert f'value="{identity(1)["id_number"]}"' in html and nonce_of(resp) == nonce_of(newer) != old_nonce
    assert submit(phone, nonce_of(resp), identity(1)).status_code == 200
    assert [c.window_id for c in checkins()] == [hall["w2"]]


def test_reload_of_the_opened_code_keeps_the_ticket(phone, hall):
    token = token_for(hall["a"], hall["w1"])
    page = open_code(phone, token)
    clock.set_now(NOW + dt.timedelta(minutes=3))  # the code is stale now, but was fresh at the first open
    again = open_code(phone, token)
    assert again.status_code == 200 and nonce_of(again) == nonce_of(page)


# ---- WeChat -----------------------------------------------------------------------------------

def test_snapshot_user_is_refused(phone, hall):
    resp = phone.get(f"/checkin/s/{token_for(hall['a'], hall['w1'])}")
    back = wechat_login(phone, resp.headers["Location"], fake.SNAPSHOT_USER)
    text = back.get_data(as_text=True)
    assert back.status_code == 403 and "snapshot_user" in text and "使用完整服务" in text
    assert phone.get_cookie("cme_wx", path="/checkin/") is None
    assert refusals() == ["snapshot_user"]
    from services.checkin.scans.models import REASONS  # the institution's 未通过的扫码 says what the phone said

    assert "快照页" in REASONS["snapshot_user"]


def test_wechat_state_must_match_the_ticket(phone, hall):
    resp = phone.get(f"/checkin/s/{token_for(hall['a'], hall['w1'])}")
    location = resp.headers["Location"].replace("state=", "state=x")
    back = wechat_login(phone, location, "mallory")
    assert back.status_code == 400 and "wechat_state_mismatch" in back.get_data(as_text=True)
    assert phone.get_cookie("cme_wx", path="/checkin/") is None


def test_used_wechat_code_is_refused(phone, hall):
    resp = phone.get(f"/checkin/s/{token_for(hall['a'], hall['w1'])}")
    location = resp.headers["Location"].removesuffix("#wechat_redirect") + "&fake_user=carol"
    target = urlsplit(requests.get(location, allow_redirects=False, timeout=5).headers["Location"])
    callback = f"{target.path}?{target.query}"
    assert phone.get(callback).status_code == 302
    again = phone.get(callback)  # WeChat's codes are single use
    assert again.status_code == 400 and "wechat_code_invalid" in again.get_data(as_text=True)


def test_second_id_from_the_same_wechat_is_refused(phone, hall):
    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    assert submit(phone, nonce_of(page), identity(1)).status_code == 200
    tap = open_code(phone, token_for(hall["a"], hall["w2"]))
    resp = submit(phone, nonce_of(tap), identity(2))  # someone posts a second identity from this account
    text = resp.get_data(as_text=True)
    assert resp.status_code == 403 and "wechat_bound_to_other" in text and "一个微信号只能绑定一个身份证号码" in text
    assert len(checkins()) == 1
    assert refusals() == ["wechat_bound_to_other"]


def test_a_doctor_whose_title_or_unit_changed_mends_them_from_the_one_tap_page(checkin_app, phone, hall):
    """Promoted, or moved to another hospital: the one-tap page offers the form with her details as on record;
    the ID number and the mobile are typed again, never written into the page."""
    from services.checkin.db import db
    from services.checkin.trainees.models import Trainee
    from services.common import pii

    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    assert submit(phone, nonce_of(page), identity(1)).status_code == 200
    clock.set_now(NOW + dt.timedelta(minutes=3))
    tap = open_code(phone, token_for(hall["a"], hall["w2"]))
    # w2 is a 签退 window: the link, the form's heading and its button say so
    assert "职称、单位或手机号码有变化？修改后签退" in tap.get_data(as_text=True)
    edit = phone.get("/checkin/scan?edit=1")
    html = edit.get_data(as_text=True)
    assert "<h1>签退</h1>" in html and ">提交签退</button>" in html and "签到" not in html.split("<h1>")[1]
    assert edit.status_code == 200 and 'value="张一明"' in html and 'value="西安市第一医院"' in html
    assert '<option value="主治医师" selected>' in html and "返回一键确认" in html
    assert id_number(1) not in html and "13912340001" not in html
    changed = identity(1, title="副主任医师", unit="西安交通大学第一附属医院", mobile="13912349999")
    # a typo in her own number: said next to the field, the form kept, nothing stored or flagged
    typo = phone.post("/checkin/scan", data={"nonce": nonce_of(edit), "mode": "form", "edit": "1",
                                             **changed, "id_number": id_number(2)})
    said = typo.get_data(as_text=True)
    assert typo.status_code == 422 and "与此微信号登记的身份证号码（6101" in said and 'name="edit" value="1"' in said
    assert 'value="西安交通大学第一附属医院"' in said and refusals() == [] and len(checkins()) == 1
    done = phone.post("/checkin/scan", data={"nonce": nonce_of(edit), "mode": "form", "edit": "1", **changed})
    assert done.status_code == 200 and "已签退" in done.get_data(as_text=True)
    assert "您修改的职称、单位和手机号码已保存" in done.get_data(as_text=True)
    s = db.new_session()
    [t] = s.scalars(select(Trainee)).all()
    assert (t.title, t.unit, pii.decrypt(t.mobile_enc)) == ("副主任医师", "西安交通大学第一附属医院", "13912349999")
    s.close()
    assert [c.window_id for c in checkins()] == [hall["w1"], hall["w2"]]
    # changed again in the window she has already left: kept, and the page says so beside 此前已签退
    clock.set_now(NOW + dt.timedelta(minutes=4))
    open_code(phone, token_for(hall["a"], hall["w2"]))
    edit = phone.get("/checkin/scan?edit=1")
    again = phone.post("/checkin/scan", data={"nonce": nonce_of(edit), "mode": "form", "edit": "1",
                                              **{**changed, "unit": "西安市中心医院"}})
    said = again.get_data(as_text=True)
    assert again.status_code == 200 and "您此前已在本时段签退" in said and "您修改的职称、单位和手机号码已保存" in said
    s = db.new_session()
    assert s.scalars(select(Trainee.unit)).all() == ["西安市中心医院"]
    s.close()
    assert len(checkins()) == 2

    # a second WeChat account bound later to the same ID number is not offered the change
    other = checkin_app.test_client()
    other.environ_base["HTTP_USER_AGENT"] = WECHAT_UA
    form = open_code(other, token_for(hall["b"], hall["wb"]), user="bob")
    assert submit(other, nonce_of(form), changed).status_code == 200
    clock.set_now(NOW + dt.timedelta(minutes=6))
    later = open_code(other, token_for(hall["a"], hall["w1"]), user="bob")
    assert "有变化？修改后签到" not in later.get_data(as_text=True)
    assert 'name="id_number"' not in other.get("/checkin/scan?edit=1").get_data(as_text=True)


def test_another_phone_gets_its_own_form(checkin_app, phone, hall):
    page = open_code(phone, token_for(hall["a"], hall["w1"]), user="alice")
    assert submit(phone, nonce_of(page), identity(1)).status_code == 200
    other = checkin_app.test_client()
    other.environ_base["HTTP_USER_AGENT"] = WECHAT_UA
    page = open_code(other, token_for(hall["a"], hall["w1"]), user="bob")
    assert 'name="id_number"' in page.get_data(as_text=True)
    assert submit(other, nonce_of(page), identity(2)).status_code == 200
    assert len(checkins()) == 2


def test_a_colleague_typing_someone_elses_id_number_on_his_phone_is_refused(checkin_app, phone, hall):
    """An ID number another WeChat account gave, typed with another name: refused on the phone with what to do,
    listed for the institution, and the owner's record untouched."""
    page = open_code(phone, token_for(hall["a"], hall["w1"]), user="alice")
    assert submit(phone, nonce_of(page), identity(1)).status_code == 200
    other = checkin_app.test_client()
    other.environ_base["HTTP_USER_AGENT"] = WECHAT_UA
    page = open_code(other, token_for(hall["a"], hall["w2"]), user="mallory")
    resp = submit(other, nonce_of(page), identity(1, name="王五", mobile="13700000000"))
    text = resp.get_data(as_text=True)
    # the form again as typed, the name marked: a typo is mended, not retyped after a new scan
    assert resp.status_code == 422 and "填写的姓名与该身份证号码已登记的姓名不一致" in text
    assert "请核对姓名和身份证号码" in text
    assert 'value="王五"' in text and 'value="13700000000"' in text and 'id="e-name"' in text
    assert "张一明" not in text  # the name on record is not told
    assert len(checkins()) == 1 and refusals() == ["id_name_mismatch"]
    # the office's 未通过的扫码 shows the number typed, masked, so the doctor at the desk can be found
    from tests.checkin.test_windows_support import client_for

    office = client_for(checkin_app, "inst_a")
    listing = office.get(f"/checkin/activities/{hall['a']}/checkins").get_data(as_text=True)
    refused_part = listing.split("未通过的扫码")[1]
    assert f"{id_number(1)[:4]}**********{id_number(1)[-4:]}" in refused_part and id_number(1) not in listing
    # with her name he checks in, marked; his phone is then shown her name and masked ID, not her 职称 and 单位
    page = open_code(other, token_for(hall["a"], hall["w2"]), user="mallory")
    assert submit(other, nonce_of(page), identity(1, mobile="13700000000")).status_code == 200
    # (w1: the same code of w2 again would say 已签退, its check-in being stored)
    tap = open_code(other, token_for(hall["a"], hall["w1"]), user="mallory").get_data(as_text=True)
    assert "确认签到" in tap and "张一明" in tap and "<dt>单位</dt>" not in tap and "主治医师" not in tap


# ---- the form -----------------------------------------------------------------------------------

def test_invalid_id_and_mobile_show_chinese_errors_and_keep_values(phone, hall):
    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    bad_id = id_number(1)[:-1] + ("0" if id_number(1)[-1] != "0" else "1")
    who = identity(1, id_number=bad_id, mobile="12345", unit="西安市 第一医院")
    resp = submit(phone, nonce_of(page), who)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "身份证号码校验位不正确" in text and "请输入 11 位中国大陆手机号码" in text
    assert f'value="{bad_id}"' in text and 'value="12345"' in text and 'value="张一明"' in text
    assert 'value="西安市 第一医院"' in text
    assert '<option value="主治医师" selected>' in text
    assert nonce_of(resp) == nonce_of(page)
    assert checkins() == []
    # a reload (WeChat's pull-to-refresh) or the code's link opened again brings back what she typed (QA walk:
    # it was an empty form), kept sealed for this WeChat account
    from services.checkin.phone.services import KEPT_COOKIE

    assert bad_id not in phone.get_cookie(KEPT_COOKIE, path="/checkin/").value
    for again in (phone.get("/checkin/scan"), open_code(phone, token_for(hall["a"], hall["w1"]))):
        html = again.get_data(as_text=True)
        assert again.status_code == 200 and "已填入您上次填写的内容" in html
        assert f'value="{bad_id}"' in html and 'value="12345"' in html and 'value="西安市 第一医院"' in html
    # corrected, the same form goes through, and nothing is kept any more
    assert submit(phone, nonce_of(resp), identity(1)).status_code == 200
    assert phone.get_cookie(KEPT_COOKIE, path="/checkin/") is None


def test_missing_fields_are_named(phone, hall):
    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    resp = phone.post("/checkin/scan", data={"nonce": nonce_of(page), "mode": "form", "name": "李四"})
    text = resp.get_data(as_text=True)
    assert resp.status_code == 422
    for msg in ("请填写身份证号码。", "请填写手机号码。", "请选择职称。", "请填写单位。"):
        assert msg in text


def test_one_tap_without_binding_asks_for_the_form(phone, hall):
    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    resp = submit(phone, nonce_of(page))  # mode=tap, but this WeChat is not bound yet
    assert resp.status_code == 422 and 'name="id_number"' in resp.get_data(as_text=True)


# ---- outside WeChat -------------------------------------------------------------------------------

def test_outside_wechat_only_says_open_in_wechat(checkin_app, hall, monkeypatch):
    browser = checkin_app.test_client()
    browser.environ_base["HTTP_USER_AGENT"] = PLAIN_UA
    token = token_for(hall["a"], hall["w1"])
    resp = browser.get(f"/checkin/s/{token}")
    text = resp.get_data(as_text=True)
    assert resp.status_code == 403 and "请使用微信扫一扫打开" in text
    assert browser.get_cookie("cme_scan", path="/checkin/") is None
    assert browser.get("/checkin/scan").status_code == 403
    assert refusals() == []
    monkeypatch.setenv("CME_WECHAT_UA_REQUIRED", "0")  # the local run and the stack tests
    resp = browser.get(f"/checkin/s/{token}")
    assert resp.status_code == 302 and "/connect/oauth2/authorize" in resp.headers["Location"]


# ---- personal data ----------------------------------------------------------------------------

def test_id_numbers_and_mobiles_never_reach_the_logs(phone, hall, caplog):
    caplog.set_level(logging.DEBUG)
    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    bad = submit(phone, nonce_of(page), identity(1, mobile="1391234000"))
    assert bad.status_code == 422
    assert submit(phone, nonce_of(page), identity(1)).status_code == 200
    tap = open_code(phone, token_for(hall["a"], hall["w2"]))
    assert submit(phone, nonce_of(tap)).status_code == 200
    clock.set_now(NOW + dt.timedelta(minutes=2))
    tap = open_code(phone, token_for(hall["a"], hall["w2"]))  # a new scan, a new nonce
    refused = submit(phone, nonce_of(tap), identity(2))
    assert refused.status_code == 403
    resp = phone.post("/checkin/api/scan", json={"nonce": nonce_of(tap), **identity(3)})
    assert resp.status_code == 403
    assert caplog.records  # the access log and the flow did log
    for secret in (id_number(1), id_number(2), id_number(3), "13912340001", "13912340002", "13912340003",
                   "1391234000"):
        assert secret not in caplog.text


def test_scan_url_helper(monkeypatch):
    from services.checkin.phone.services import scan_url
    from services.common.config import get_settings

    assert scan_url("abc") == get_settings().public_base_url.rstrip("/") + "/checkin/s/abc"


def test_concurrent_first_binding_of_a_known_trainee(checkin_app, phone, hall):
    """The trainee exists already (forced check-in earlier); a new WeChat double-taps the form."""
    from services.checkin.db import db
    from services.checkin.scans.services import record_checkin
    from services.checkin.windows.models import CheckinWindow
    from services.common.auth import Principal

    s = db.new_session()
    actor = Principal(role="institution", subject="inst:1:admin:1", name="西安市第一医院", institution_id=1, admin_id=1)
    record_checkin(s, s.get(CheckinWindow, hall["w2"]), nonce="forced-1", scanned_at=NOW, identity=identity(1),
                   forced=True, forced_reason="手机没电", actor=actor)
    s.commit()
    s.close()
    page = open_code(phone, token_for(hall["a"], hall["w1"]), user="newphone")
    nonce = nonce_of(page)
    cookies = {name: phone.get_cookie(name, path="/checkin/").value for name in ("cme_scan", "cme_wx")}
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def post():
        client = checkin_app.test_client()
        client.environ_base["HTTP_USER_AGENT"] = WECHAT_UA
        for name, value in cookies.items():
            client.set_cookie(name, value, path="/checkin/")
        barrier.wait()
        statuses.append(client.post("/checkin/scan", data={"nonce": nonce, "mode": "form", **identity(1)}).status_code)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert statuses == [200] * 8
    assert [c.window_id for c in checkins()] == [hall["w2"], hall["w1"]]
