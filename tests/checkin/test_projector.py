"""微信二维码考勤: the projector page, its live status and image under the projector token."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from services.common import clock
from services.common.auth import issue_token
from tests.checkin.test_windows_support import INST_A, OPEN_AT, client_for, make_activity, scan


@pytest.fixture
def cdb(databases):
    return databases["checkin"]


def expected_svg(aid, wid, at):
    from services.checkin.projector.services import scan_url
    from services.checkin.qr import image, tokens

    token, slot = tokens.current_token(aid, wid, at)
    return image.qr_svg(aid, wid, slot, scan_url(token)), slot, token


def ptoken_of(html: str) -> str:
    start = html.index('"live_url": "/checkin/projector/') + len('"live_url": "/checkin/projector/')
    return html[start:html.index("/live", start)]


def open_page(app, aid, wid, who="inst_a"):
    return client_for(app, who).get(f"/checkin/activities/{aid}/windows/{wid}/projector")


def test_owner_sees_the_current_code_with_countdown_and_count(checkin_app, cdb):
    aid, wids = make_activity(cdb)
    scan(cdb, wids[0], 1)
    now = OPEN_AT + dt.timedelta(minutes=30, seconds=15)
    clock.set_now(now)
    r = open_page(checkin_app, aid, wids[0])
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    html = r.get_data(as_text=True)
    svg, _slot, token = expected_svg(aid, wids[0], now)
    assert svg in html and "<svg" in html
    assert "心血管急危重症诊治进展" in html and "开幕式与专题讲座" in html and "签到" in html
    assert '<span id="count">1</span>' in html and '<span id="countdown">45</span>' in html
    assert "/checkin/s/" + token not in html  # the URL is only inside the picture


def test_a_sign_out_window_counts_sign_outs(checkin_app, cdb):
    from sqlalchemy import update

    from services.checkin.windows.models import CheckinWindow

    aid, wids = make_activity(cdb)
    with cdb.engine.begin() as conn:
        conn.execute(update(CheckinWindow).where(CheckinWindow.id == wids[0]).values(kind="sign_out"))
    clock.set_now(OPEN_AT + dt.timedelta(minutes=30))
    html = open_page(checkin_app, aid, wids[0]).get_data(as_text=True)
    assert "本时段已签退" in html and '"kind_label": "签退"' in html and "本时段已签到" not in html
    # the room is told to scan to 签退, not to 签到
    assert "请使用微信扫描二维码签退" in html and "二维码签到" not in html
    anon = checkin_app.test_client()
    live = anon.get(f"/checkin/projector/{ptoken_of(html)}/live").get_json()
    assert live["text"] == "请使用微信扫描二维码签退"
    clock.set_now(OPEN_AT - dt.timedelta(seconds=30))
    assert "即将开始签退（08:30 开始）" in open_page(checkin_app, aid, wids[0]).get_data(as_text=True)


@pytest.mark.parametrize(("who", "status"), [("inst_b", 404), ("reviewer", 403), ("trainee", 403),
                                             ("anonymous", 302)])
def test_others_do_not_get_the_projector(checkin_app, cdb, who, status):
    aid, wids = make_activity(cdb)
    clock.set_now(OPEN_AT)
    r = open_page(checkin_app, aid, wids[0], who)
    assert r.status_code == status
    assert b"<svg" not in r.data


def test_live_with_valid_forged_expired_and_foreign_tokens(checkin_app, cdb):
    from services.checkin.projector.services import _serializer

    aid, wids = make_activity(cdb)
    other_aid, other_wids = make_activity(cdb, offering_id=202, institution_id=2)
    clock.set_now(OPEN_AT + dt.timedelta(minutes=1))
    ptoken = ptoken_of(open_page(checkin_app, aid, wids[0]).get_data(as_text=True))
    anon = checkin_app.test_client()
    r = anon.get(f"/checkin/projector/{ptoken}/live")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    body = r.get_json()
    _svg, slot, _token = expected_svg(aid, wids[0], clock.now())
    assert (body["state"], body["show_code"], body["slot"], body["count"]) == ("open", True, slot, 0)
    assert 0 < body["seconds_left"] <= 60
    assert body["svg_url"] == f"/checkin/projector/{ptoken}/qr.svg?slot={slot}&w={wids[0]}"
    scan(cdb, wids[0], 1)
    scan(cdb, wids[1], 2, at=OPEN_AT + dt.timedelta(hours=6))  # another window's check-in is not counted
    assert anon.get(f"/checkin/projector/{ptoken}/live").get_json()["count"] == 1

    forged = ptoken[:-3] + ("AAA" if not ptoken.endswith("AAA") else "BBB")
    r = anon.get(f"/checkin/projector/{forged}/live")
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "projector_token_invalid"
    login = issue_token(INST_A)  # a login token is not a projector token
    assert anon.get(f"/checkin/projector/{login}/live").status_code == 403
    # signed, but naming another institution's activity: not found; a window of another activity is never shown
    # (a token's window that is not in its activity counts as deleted: the activity's own windows stand in)
    r = anon.get(f"/checkin/projector/{_serializer().dumps({'a': other_aid, 'w': other_wids[0], 'i': 1})}/live")
    assert r.status_code == 404
    r = anon.get(f"/checkin/projector/{_serializer().dumps({'a': aid, 'w': other_wids[0], 'i': 1})}/live")
    assert r.status_code == 200 and r.get_json()["window_id"] == wids[0]
    clock.set_now(OPEN_AT + dt.timedelta(hours=24, minutes=2))
    r = anon.get(f"/checkin/projector/{ptoken}/live")
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "projector_token_expired"


def test_the_link_stops_with_the_openers_sessions_not_with_her_logout(checkin_app, cdb):
    """停用 or 重置密码 ends every session of the office, and the projector links it opened with them: a link that
    left the hall shows live codes. Logging out of the hall's laptop leaves the projector running."""
    import dataclasses
    import time

    from flask import g

    from services.common.auth import COOKIE, end_sessions_of, end_this_session
    from tests.conftest import login_client

    # a person of her own: the sessions ended here stay ended for the rest of the run
    her = dataclasses.replace(INST_A, subject="inst:1:admin:97")
    aid, wids = make_activity(cdb)
    clock.set_now(OPEN_AT + dt.timedelta(minutes=1))
    laptop = checkin_app.test_client()
    laptop.set_cookie(COOKIE, issue_token(her, sid="projector-laptop"), domain="localhost", path="/")
    page = laptop.get(f"/checkin/activities/{aid}/windows/{wids[0]}/projector")
    ptoken = ptoken_of(page.get_data(as_text=True))
    anon = checkin_app.test_client()
    svg_url = anon.get(f"/checkin/projector/{ptoken}/live").get_json()["svg_url"]
    with checkin_app.test_request_context():  # she logs out of the hall's laptop
        g.session_sid = "projector-laptop"
        end_this_session()
    assert laptop.get(f"/checkin/activities/{aid}/windows/{wids[0]}/projector").status_code == 302
    assert anon.get(f"/checkin/projector/{ptoken}/live").status_code == 200
    assert anon.get(svg_url).status_code == 200

    time.sleep(0.005)  # the sessions' clock counts milliseconds: the end comes after the link was opened
    end_sessions_of(her.subject)  # what 停用 and 重置密码 do
    r = anon.get(f"/checkin/projector/{ptoken}/live")  # the page's script shows this sentence instead of the code
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "projector_token_ended"
    assert "账号已停用或密码已重置" in r.get_json()["error"]["message"]
    r = anon.get(svg_url)
    assert r.status_code == 403 and b"<svg" not in r.data
    time.sleep(0.005)
    # her next login opens it again
    html = login_client(checkin_app.test_client(), her).get(
        f"/checkin/activities/{aid}/windows/{wids[0]}/projector").get_data(as_text=True)
    assert anon.get(f"/checkin/projector/{ptoken_of(html)}/live").status_code == 200


def test_qr_changes_with_the_slot_and_old_slots_are_gone(checkin_app, cdb):
    from services.checkin.qr import image

    aid, wids = make_activity(cdb)
    t0 = OPEN_AT + dt.timedelta(minutes=10, seconds=50)
    clock.set_now(t0)
    ptoken = ptoken_of(open_page(checkin_app, aid, wids[0]).get_data(as_text=True))
    anon = checkin_app.test_client()
    first = anon.get(f"/checkin/projector/{ptoken}/live").get_json()
    r = anon.get(first["svg_url"])
    assert r.status_code == 200 and r.mimetype == "image/svg+xml"
    assert r.headers["Cache-Control"] == "private, max-age=10"
    svg0 = r.get_data(as_text=True)
    assert svg0 == expected_svg(aid, wids[0], t0)[0]
    hits = image.qr_svg.cache_info().hits
    anon.get(first["svg_url"])
    assert image.qr_svg.cache_info().hits > hits  # many viewers, one picture per slot

    clock.set_now(t0 + dt.timedelta(seconds=15))
    second = anon.get(f"/checkin/projector/{ptoken}/live").get_json()
    assert second["slot"] == first["slot"] + 1 and second["svg_url"] != first["svg_url"]
    svg1 = anon.get(second["svg_url"]).get_data(as_text=True)
    assert svg1 != svg0
    r = anon.get(first["svg_url"])
    assert r.status_code == 404 and r.headers.get("Cache-Control") != "private, max-age=10"


def test_no_code_outside_the_window(checkin_app, cdb):
    aid, wids = make_activity(cdb)
    clock.set_now(OPEN_AT - dt.timedelta(hours=1))
    r = open_page(checkin_app, aid, wids[0])
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "<svg" not in html and "尚未开始签到" in html
    ptoken = ptoken_of(html)
    anon = checkin_app.test_client()
    live = anon.get(f"/checkin/projector/{ptoken}/live").get_json()
    assert (live["state"], live["show_code"], live["svg_url"]) == ("before", False, None)
    assert anon.get(f"/checkin/projector/{ptoken}/qr.svg").status_code == 404
    # a little before: the wall says it is about to start, without a code a phone would be refused with
    clock.set_now(OPEN_AT - dt.timedelta(seconds=30))
    live = anon.get(f"/checkin/projector/{ptoken}/live").get_json()
    assert (live["state"], live["show_code"], live["svg_url"]) == ("soon", False, None)
    assert live["text"] == "即将开始签到（08:30 开始）" and live["seconds_to_change"] == 30
    assert anon.get(f"/checkin/projector/{ptoken}/qr.svg").status_code == 404
    # (such a code would be refused: a scan's time is judged against the window's)
    early = expected_svg(aid, wids[0], clock.now())[2]
    r = anon.get(f"/checkin/s/{early}", headers={"User-Agent": "Mozilla/5.0 MicroMessenger/8.0.50"})
    assert r.status_code == 403 and "not_in_window" in r.get_data(as_text=True)
    # the last window of the activity over: the page says so, and that nothing follows
    clock.set_now(dt.datetime(2026, 12, 11, 4, 1, tzinfo=dt.UTC))  # 12:01 on day 2
    closed = open_page(checkin_app, aid, wids[2]).get_data(as_text=True)
    live = anon.get(f"/checkin/projector/{ptoken_of(closed)}/live").get_json()
    assert (live["state"], live["show_code"], live["text"]) == (
        "closed", False, "本时段签到已结束，本活动已没有后续的刷卡周期")
    assert "<svg" not in closed
    # the QR area says it once, in large type; no "scan the newest code" beside a window that is over
    assert '<p class="state" id="state" hidden>' in closed and '<p class="muted" id="hint" hidden>' in closed


def test_a_page_whose_window_was_deleted_goes_on_with_the_activitys_others(checkin_app, cdb):
    from tests.checkin.test_windows_support import api_headers

    aid, wids = make_activity(cdb)
    clock.set_now(OPEN_AT)
    ptoken = ptoken_of(open_page(checkin_app, aid, wids[0]).get_data(as_text=True))
    c = checkin_app.test_client()
    r = c.delete(f"/checkin/api/activities/{aid}/windows/{wids[0]}", headers=api_headers("inst_a"))
    assert r.status_code == 204
    live = c.get(f"/checkin/projector/{ptoken}/live").get_json()
    assert (live["window_id"], live["state"], live["show_code"]) == (wids[1], "before", False)
    assert live["text"].startswith("本时段尚未开始签到")
    for wid in wids[1:]:
        r = c.delete(f"/checkin/api/activities/{aid}/windows/{wid}", headers=api_headers("inst_a"))
        assert r.status_code == 204
    r = c.get(f"/checkin/projector/{ptoken}/live")
    assert r.status_code == 404 and "本活动已没有刷卡周期" in r.get_json()["error"]["message"]


def test_api_gives_a_projector_token(checkin_app, cdb):
    from tests.checkin.test_windows_support import api_headers

    aid, wids = make_activity(cdb)
    clock.set_now(OPEN_AT)
    c = checkin_app.test_client()
    body = c.get(f"/checkin/api/activities/{aid}/windows/{wids[0]}/projector", headers=api_headers("inst_a")).get_json()
    assert body["state"] == "open" and c.get(body["live_url"]).status_code == 200
    assert c.get(f"/checkin/api/activities/{aid}/windows/{wids[0]}/projector",
                 headers=api_headers("inst_b")).status_code == 404


def test_live_answers_from_memory_for_a_moment(checkin_app, cdb, monkeypatch):
    """Many screens polling one window cost one count query per period, not one per poll."""
    from services.checkin.projector import services as projector

    monkeypatch.setenv("CME_PROJECTOR_LIVE_CACHE_SECONDS", "60")
    projector._live_seen.clear()
    aid, wids = make_activity(cdb)
    clock.set_now(OPEN_AT + dt.timedelta(minutes=1))
    ptoken = ptoken_of(open_page(checkin_app, aid, wids[0]).get_data(as_text=True))
    c = checkin_app.test_client()
    assert c.get(f"/checkin/projector/{ptoken}/live").get_json()["count"] == 0
    scan(cdb, wids[0], 1)
    assert c.get(f"/checkin/projector/{ptoken}/live").get_json()["count"] == 0  # still the remembered count
    monkeypatch.setenv("CME_PROJECTOR_LIVE_CACHE_SECONDS", "0")
    projector._live_seen.clear()
    assert c.get(f"/checkin/projector/{ptoken}/live").get_json()["count"] == 1
    # a cached window never outlives its token's signature check
    assert c.get(f"/checkin/projector/{ptoken[:-2]}xx/live").status_code == 403


def add_window(cdb, aid, title, kind, starts_at, ends_at) -> int:
    from services.checkin.windows.models import CheckinWindow

    s = cdb.new_session()
    try:
        w = CheckinWindow(activity_id=aid, title=title, kind=kind, starts_at=starts_at, ends_at=ends_at,
                          from_schedule=False, created_at=OPEN_AT)
        s.add(w)
        s.commit()
        return w.id
    finally:
        s.close()


def test_a_page_left_on_the_wall_follows_the_day(checkin_app, cdb):
    """Opened on the morning's 签到 before 08:30 and never touched: it shows each window of the activity in turn
    (签到, then the overlapping 签退, then the afternoon's), with that window's name, times, count and code, and
    says in each gap which window comes next and when."""
    aid, wids = make_activity(cdb)
    # 上午签退 11:30–12:30 (Shanghai), overlapping the morning 签到 that ends at 12:00
    sign_out = add_window(cdb, aid, "上午签退", "sign_out", dt.datetime(2026, 12, 10, 3, 30, tzinfo=dt.UTC),
                          dt.datetime(2026, 12, 10, 4, 30, tzinfo=dt.UTC))
    scan(cdb, wids[0], 1)
    scan(cdb, wids[0], 2)
    scan(cdb, sign_out, 1, at=dt.datetime(2026, 12, 10, 4, 10, tzinfo=dt.UTC))
    clock.set_now(OPEN_AT - dt.timedelta(minutes=10))
    html = open_page(checkin_app, aid, wids[0]).get_data(as_text=True)
    assert "本时段尚未开始签到（08:30 开始）" in html and "<svg" not in html
    ptoken = ptoken_of(html)
    anon = checkin_app.test_client()

    def live_at(at):
        clock.set_now(at)
        return anon.get(f"/checkin/projector/{ptoken}/live").get_json()

    at = OPEN_AT + dt.timedelta(hours=2)  # 10:30: the morning 签到 itself
    live = live_at(at)
    assert (live["window_id"], live["state"], live["count"]) == (wids[0], "open", 2)
    assert live["count_label"] == "本时段已签到"
    assert live["title"] == "开幕式与专题讲座" and live["period"] == "2026-12-10 08:30 – 12:00"

    at = dt.datetime(2026, 12, 10, 4, 0, 30, tzinfo=dt.UTC)  # 12:00:30: the 签到 is over, the 签退 is open
    live = live_at(at)
    assert (live["window_id"], live["state"], live["text"]) == (sign_out, "open", "请使用微信扫描二维码签退")
    assert (live["title"], live["kind_label"], live["count"], live["count_label"]) == ("上午签退", "签退", 1,
                                                                                       "本时段已签退")
    assert live["period"] == "2026-12-10 11:30 – 12:30"
    svg, slot, _token = expected_svg(aid, sign_out, at)
    assert live["svg_url"].endswith(f"slot={slot}&w={sign_out}")
    assert anon.get(live["svg_url"]).get_data(as_text=True) == svg  # the 签退 window's code, not the 签到's
    # a picture asked for the window the page has left is refused (the page asks again), never served
    assert anon.get(f"/checkin/projector/{ptoken}/qr.svg?slot={slot}&w={wids[0]}").status_code == 404

    live = live_at(dt.datetime(2026, 12, 10, 5, 0, tzinfo=dt.UTC))  # 13:00: the lunch break
    assert (live["window_id"], live["state"], live["show_code"], live["svg_url"]) == (wids[1], "before", False, None)
    assert live["text"] == "上一时段已结束，下一时段 14:00 开始签到"
    assert (live["count"], live["count_label"], live["period"]) == (0, "本时段已签到", "2026-12-10 14:00 – 17:30")

    live = live_at(dt.datetime(2026, 12, 10, 5, 59, 30, tzinfo=dt.UTC))  # 13:59:30
    assert (live["window_id"], live["state"], live["show_code"]) == (wids[1], "soon", False)
    assert live["text"] == "即将开始签到（14:00 开始）" and live["seconds_to_change"] == 30
    at = dt.datetime(2026, 12, 10, 6, 0, 5, tzinfo=dt.UTC)  # 14:00:05: the afternoon's code is up
    live = live_at(at)
    assert (live["window_id"], live["state"], live["show_code"]) == (wids[1], "open", True)
    assert anon.get(live["svg_url"]).get_data(as_text=True) == expected_svg(aid, wids[1], at)[0]

    live = live_at(dt.datetime(2026, 12, 10, 9, 31, tzinfo=dt.UTC))  # 17:31: the day is over, tomorrow's is next
    assert (live["window_id"], live["state"], live["title"]) == (wids[2], "before", "病例讨论")
    # opened at 08:20, the page stops at 08:20 tomorrow: the wall says so tonight, not only once it has stopped
    assert live["text"] == ("上一时段已结束，下一时段 12月11日 08:30 开始签到。"
                            "本页面将于 12月11日 08:20 失效，请在此之前从刷卡周期页面重新打开")


def test_the_header_follows_an_edit_of_the_window(checkin_app, cdb):
    """The office corrects the name or times while the projector is up: the wall says what the window now is."""
    from tests.checkin.test_windows_support import api_headers

    aid, wids = make_activity(cdb)
    clock.set_now(OPEN_AT + dt.timedelta(minutes=5))
    html = open_page(checkin_app, aid, wids[0]).get_data(as_text=True)
    assert '<span id="wperiod">2026-12-10 08:30 – 12:00</span>' in html
    c = checkin_app.test_client()
    r = c.put(f"/checkin/api/activities/{aid}/windows/{wids[0]}", headers=api_headers("inst_a"),
              json={"title": "开幕式", "ends_at": "2026-12-10T12:30:00+08:00"})
    assert r.status_code == 200, r.get_json()
    live = c.get(f"/checkin/projector/{ptoken_of(html)}/live").get_json()
    assert (live["title"], live["period"]) == ("开幕式", "2026-12-10 08:30 – 12:30")


NO_NETWORK = "网络连接中断，正在重试……二维码可能未及时更新。"


def test_the_page_itself_swaps_window_and_comes_back_after_a_network_drop(checkin_app, cdb):
    """Chromium runs the page's own script against the service (the suite's clock moved by the test): the picture
    is swapped when the page moves on to the next window within one code slot, the header and count's label
    follow, and when the network returns the page asks at once instead of showing a faded code until its next
    retry."""
    from playwright.sync_api import sync_playwright
    from sqlalchemy import update

    from services.checkin.windows.models import CheckinWindow
    from tests.stack.browser import CHROMIUM, CHROMIUM_ARGS

    aid, wids = make_activity(cdb)
    # the morning 签到 ends at 12:00:30, the 签退 opened at 11:30: one code slot (12:00:00–12:01:00) sees both
    with cdb.engine.begin() as conn:
        conn.execute(update(CheckinWindow).where(CheckinWindow.id == wids[0])
                     .values(ends_at=dt.datetime(2026, 12, 10, 4, 0, 30, tzinfo=dt.UTC)))
    sign_out = add_window(cdb, aid, "上午签退", "sign_out", dt.datetime(2026, 12, 10, 3, 30, tzinfo=dt.UTC),
                          dt.datetime(2026, 12, 10, 4, 30, tzinfo=dt.UTC))
    clock.set_now(dt.datetime(2026, 12, 10, 4, 0, 10, tzinfo=dt.UTC))
    url = f"/checkin/activities/{aid}/windows/{wids[0]}/projector"
    html = open_page(checkin_app, aid, wids[0]).get_data(as_text=True)
    anon = checkin_app.test_client()
    down: dict[str, Any] = {"on": False}

    def answer(route):
        path = route.request.url.removeprefix("http://cme.test")
        if path == url:
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)
        elif down["on"]:
            route.abort("internetdisconnected")
        elif down.get("status"):
            route.fulfill(status=down["status"], content_type="application/json",
                          body='{"error": {"code": "unavailable", "message": "服务暂时不可用"}}')
        else:
            r = anon.get(path)
            route.fulfill(status=r.status_code, content_type=r.content_type, body=r.get_data())

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("http://cme.test/**", answer)
            page.goto(f"http://cme.test{url}")
            assert page.locator("#wtitle").inner_text() == "开幕式与专题讲座 · 签到"
            clock.set_now(dt.datetime(2026, 12, 10, 4, 0, 40, tzinfo=dt.UTC))  # same slot, the 签退's turn
            page.wait_for_function("document.getElementById('wtitle').textContent === '上午签退 · 签退'",
                                   timeout=10_000)
            page.wait_for_selector(f"#qr img[src$='&w={sign_out}']", timeout=10_000)
            assert page.locator("#qr img").get_attribute("alt") == "签退二维码"
            assert page.locator("#count-label").inner_text() == "本时段已签退"
            assert page.locator("#state").inner_text() == "请使用微信扫描二维码签退"

            down["on"] = True
            page.context.set_offline(True)
            page.wait_for_selector("#offline.on", timeout=10_000)
            page.wait_for_timeout(6_500)  # two failed tries: the next would be 8 seconds away
            down["on"] = False
            page.context.set_offline(False)
            page.wait_for_selector("#offline:not(.on)", state="attached", timeout=2_500)
            assert page.locator("#offline").inner_text(timeout=1_000) == NO_NETWORK

            # the network is up but the service answers it cannot (a database restart): the wall says which
            down["status"] = 503
            page.wait_for_selector("#offline.on", timeout=10_000)
            said = page.locator("#offline").inner_text()
            assert said == "服务器暂时无法应答（503），正在重试……二维码可能未及时更新。"
        finally:
            browser.close()
