"""Issue 3's "done when", end to end through nginx: the QR of the projector page is read from a
screenshot by zbar and opened by a phone in headless Chromium, which passes the fake WeChat login,
fills the form and sees 已签到; a second scan is one tap; stale, forged and cross-activity tokens
are refused, each with its own reason; 100 concurrent identical submissions leave one check-in.

(Credits keeping the check-in after Redis was stopped during the scan and started again is
test_wechat_and_attendance.py::test_checkin_reaches_credits_after_redis_comes_back; here credits'
copy is checked for the check-ins made through the phone.)

The activity is approved through the real flow (a fresh responsible person of the demo institution
xjtu1 files an offering, a fresh committee member approves it), then moved to today in the checkin
database: filing needs 7 days' notice, and a window can only be open while the activity is held.
Screenshots are kept in test-output/checkin-e2e/ (git-ignored).
"""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from services.common import clock, pii

from .flows import (
    activity_held_today,
    cookie_header,
    id_number,
    local_minute,
    phone_scan,
)

pytestmark = pytest.mark.stack

OUT = Path(__file__).resolve().parents[2] / "test-output" / "checkin-e2e"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# an ordinary Android Chrome, not WeChat's browser: the stack sets CME_WECHAT_UA_REQUIRED=0
PHONE_UA = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/130.0.0.0 Mobile Safari/537.36")
ADMIN_MOBILE = "13700003301"  # fresh mobiles: the other stack tests' 60-second SMS rule stays out of the way
REVIEWER = ("committee03", "审核员丙", "Review3@2026", "13900003303")
VENUE = "曲江国际会议中心"


@dataclass
class Hall:
    """An approved activity of xjtu1 held today, and the institution's login."""

    base: str
    activity_id: int
    offering_id: int
    auth: dict[str, str]
    http: requests.Session

    @property
    def bearer(self) -> str:
        return self.auth["Authorization"].removeprefix("Bearer ")

    def open_window(self, title: str, kind: str = "sign_in", starts_in: dt.timedelta = dt.timedelta(minutes=-10),
                    lasts: dt.timedelta = dt.timedelta(hours=3)) -> int:
        """A check-in window (刷卡周期) through the institution's API; by default open now."""
        starts = max(clock.now() + starts_in, clock.local_midnight_utc(clock.today_local()))
        r = self.http.post(f"{self.base}/checkin/api/activities/{self.activity_id}/windows", headers=self.auth,
                           json={"title": title, "kind": kind, "starts_at": local_minute(starts),
                                 "ends_at": local_minute(starts + lasts)})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def checkins(self, **params: object) -> dict:
        r = self.http.get(f"{self.base}/checkin/api/activities/{self.activity_id}/checkins", headers=self.auth,
                          params={"per_page": 100, **params})
        assert r.status_code == 200, r.text
        return r.json()

    def attendance(self) -> list[dict]:
        """Credits' copy of the activity's check-ins (empty until the first one arrives)."""
        r = self.http.get(f"{self.base}/credits/api/activities/{self.activity_id}/attendance", headers=self.auth)
        return r.json()["records"] if r.status_code == 200 else []


@pytest.fixture(scope="module")
def hall(stack, demo) -> Hall:
    aid, offering_id, auth, office = activity_held_today(
        stack, demo, admin=("签到测试员", ADMIN_MOBILE), reviewer=REVIEWER, venue=VENUE,
        addresses=("127.0.0.41", "127.0.0.42"))
    OUT.mkdir(parents=True, exist_ok=True)
    return Hall(stack.base_url, aid, offering_id, auth, office)


def decode_qr(png: Path) -> str:
    """What a phone's camera reads: zbar on the screenshot."""
    r = subprocess.run(["zbarimg", "--raw", "-q", str(png)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.strip(), f"zbar found no QR code in {png}: {r.stderr}"
    [url] = r.stdout.strip().splitlines()
    return url


def forged(token: str) -> str:
    """The same activity, window and slot with another MAC (the last 10 bytes)."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    raw = raw[:-10] + bytes(b ^ 0x5A for b in raw[-10:])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# ---- 1. projector → screenshot → zbar → phone in headless Chromium ------------------------------------------

def test_projector_qr_scanned_by_phone_in_headless_chromium(stack, hall):
    from playwright.sync_api import sync_playwright

    sign_in = hall.open_window("上午签到")
    sign_out = hall.open_window("上午签退", kind="sign_out")
    person = {"name": "陈晓明", "id_number": id_number("61010219850312123"), "mobile": "13612345678",
              "title": "主治医师", "unit": "西安市第一医院"}
    shots: list[Path] = []

    def shot(page, name: str) -> Path:
        path = OUT / f"{name}.png"
        page.screenshot(path=str(path))
        shots.append(path)
        print(f"screenshot: {path}")
        return path

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            desk = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
            desk.add_cookies([{"name": "cme_session", "value": hall.bearer, "url": hall.base}])
            phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                        user_agent=PHONE_UA, locale="zh-CN")

            def projector(window_id: int, name: str):
                page = desk.new_page()
                r = page.goto(f"{hall.base}/checkin/activities/{hall.activity_id}/windows/{window_id}/projector")
                assert r is not None and r.status == 200, r and r.status
                page.locator("#qr svg, #qr img").first.wait_for(state="visible", timeout=10_000)
                assert page.locator("#count").inner_text() == "0"
                url = decode_qr(shot(page, name))
                assert url.startswith(f"{hall.base}/checkin/s/"), url
                return page, url

            # first scan: the fake WeChat login, then the form
            room, url = projector(sign_in, "1-projector-sign-in")
            p = phone.new_page()
            r = p.goto(url)
            # (a browser keeps the #wechat_redirect of WeChat's authorize URL through the redirects back)
            assert r is not None and r.status == 200 and r.url == f"{hall.base}/checkin/scan", (p.url, r and r.status)
            assert "MicroMessenger" not in p.evaluate("navigator.userAgent")  # any browser passes in the stack
            assert p.locator("h1").inner_text() == "签到"
            p.fill("#f-name", person["name"])
            p.fill("#f-id_number", person["id_number"])
            p.fill("#f-mobile", person["mobile"])
            p.select_option("#f-title", person["title"])
            p.fill("#f-unit", person["unit"])
            shot(p, "2-phone-form")
            p.get_by_role("button", name="提交签到").click()
            p.locator("h1.ok").wait_for(timeout=10_000)
            assert "已签到" in p.locator("h1").inner_text()
            assert person["name"] in p.content() and "此前已在本时段签到" not in p.content()
            shot(p, "3-phone-done")
            # the projector counts it by itself, without a reload
            room.wait_for_function("document.getElementById('count').textContent === '1'", timeout=10_000)
            shot(room, "4-projector-count")

            # the same code scanned again (a second tap in the same window, its form already stored): 已签到 with
            # its time at once, nothing to tap and nothing stored twice
            again = decode_qr(shot(room, "5-projector-sign-in-again"))
            p = phone.new_page()
            r = p.goto(again)
            assert r is not None and r.status == 200 and r.url == f"{hall.base}/checkin/scan", r and r.url
            assert "已签到" in p.locator("h1.ok").inner_text() and person["name"] in p.content()
            assert p.get_by_role("button", name="确认签到").count() == 0
            shot(p, "6-phone-same-window-again")
            room.wait_for_timeout(2_500)  # past the live count's cache: still one
            assert room.locator("#count").inner_text() == "1"

            # second scan (the sign-out window's code) by the same phone: masked identity and one button
            _room2, url2 = projector(sign_out, "7-projector-sign-out")
            p = phone.new_page()
            r = p.goto(url2)
            assert r is not None and r.status == 200 and r.url == f"{hall.base}/checkin/scan", r and r.url
            assert p.locator("h1").inner_text() == "确认签退"  # the window's kind, not always 签到
            assert p.locator("input:not([type=hidden]), select").count() == 0  # nothing to type
            page_text = p.locator("body").inner_text()
            assert pii.mask_id(person["id_number"]) in page_text and person["id_number"] not in p.content()
            buttons = p.locator("form button")
            assert buttons.count() == 1
            shot(p, "8-phone-one-tap")
            buttons.click()
            p.locator("h1.ok").wait_for(timeout=10_000)
            assert "已签退" in p.locator("h1").inner_text() and "此前已在本时段签退" not in p.content()
            shot(p, "9-phone-done-sign-out")
        finally:
            browser.close()

    rows = hall.checkins(q=person["name"])["items"]
    assert sorted((r["window_id"], r["forced"], r["method"]) for r in rows) == [
        (sign_in, False, "扫码"), (sign_out, False, "扫码")]
    assert {r["id_number_masked"] for r in rows} == {pii.mask_id(person["id_number"])}
    mine = lambda: [r for r in hall.attendance() if r["name"] == person["name"]]  # noqa: E731
    records = stack.wait_until(lambda: len(mine()) == 2 and mine(), 30, what="credits' copy of both check-ins")
    assert {r["window_id"] for r in records} == {sign_in, sign_out}
    assert all(p.stat().st_size > 0 for p in shots)


# ---- 2. refusals -------------------------------------------------------------------------------------------

def test_stale_forged_and_cross_activity_tokens_are_refused(stack, hall):
    from services.checkin.qr.tokens import make_token, slot_at

    window = hall.open_window("下午签到")
    later = hall.open_window("晚间签到", starts_in=dt.timedelta(hours=2), lasts=dt.timedelta(hours=1))
    now_slot = slot_at()
    current = make_token(hall.activity_id, window, now_slot)

    def open_code(token: str) -> requests.Response:
        phone = requests.Session()  # a fresh phone each time
        return phone.get(f"{hall.base}/checkin/s/{token}", allow_redirects=False, timeout=10)

    # the control: the test's tokens are the stack's (same secret), so a refusal below is for its reason
    ok = open_code(current)
    assert ok.status_code == 302 and "connect/oauth2/authorize" in ok.headers["Location"], ok.text[:500]
    assert "cme_scan" in ok.cookies

    cases = {
        "a past slot (a photo of an old code)": (make_token(hall.activity_id, window, now_slot - 2), 410,
                                                "token_expired"),
        "a forged MAC": (forged(current), 400, "token_forged"),
        "not a token": ("not-a-token!", 400, "token_malformed"),
        "another activity's id with this window": (make_token(hall.activity_id + 100_000, window, now_slot), 403,
                                                   "token_wrong_activity"),
        "a window that does not exist": (make_token(hall.activity_id, 2**31 - 1, now_slot), 404,
                                         "token_wrong_window"),
        "a window not open now": (make_token(hall.activity_id, later, now_slot), 403, "not_in_window"),
    }
    for what, (token, status, code) in cases.items():
        r = open_code(token)
        assert r.status_code == status and f'<span class="code">{code}</span>' in r.text, (what, r.status_code,
                                                                                          r.text[:800])
        assert "未能签到" in r.text and "cme_scan" not in r.cookies, what
    assert len({c for _t, _s, c in cases.values()}) == len(cases)  # each its own reason

    r = hall.http.get(f"{hall.base}/checkin/api/activities/{hall.activity_id}/refused-scans", headers=hall.auth)
    assert r.status_code == 200, r.text
    kept = {row["reason"] for row in r.json()["items"]}
    assert {"token_expired", "token_wrong_activity", "not_in_window"} <= kept, kept


# ---- 3. 100 concurrent identical submissions ----------------------------------------------------------------

def test_hundred_concurrent_identical_submissions_leave_one_checkin(stack, hall):
    from services.checkin.qr.tokens import make_token, slot_at

    window = hall.open_window("并发签到")
    phone = requests.Session()
    r = phone_scan(phone, f"{hall.base}/checkin/s/{make_token(hall.activity_id, window, slot_at())}")
    assert r.status_code == 200 and r.url.split("#")[0] == f"{hall.base}/checkin/scan", r.url
    assert 'name="nonce"' in r.text and 'name="id_number"' in r.text  # a first scan: the form
    ticket = phone.get(f"{hall.base}/checkin/api/scan", timeout=10).json()
    assert ticket["window_id"] == window and ticket["bound"] is False
    body = {"nonce": ticket["nonce"], "name": "刘双击", "id_number": id_number("11010519900101456"),
            "mobile": "13598765432", "title": "护师", "unit": "陕西省人民医院"}
    headers = {"Cookie": cookie_header(phone, "cme_scan", "cme_wx")}
    n = 100
    start = threading.Barrier(n, timeout=30)

    def submit(_: int) -> tuple[int, dict]:
        with requests.Session() as s:  # its own connection, as 100 retries/taps would be
            start.wait()
            resp = s.post(f"{hall.base}/checkin/api/scan", json=body, headers=headers, timeout=60)
            return resp.status_code, (resp.json() if resp.headers.get("Content-Type", "").startswith(
                "application/json") else {"text": resp.text[:200]})

    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=n) as pool:
        answers = list(pool.map(submit, range(n), timeout=90))
    took = time.monotonic() - began
    statuses = Counter(status for status, _ in answers)
    print(f"100 concurrent identical submissions: {dict(statuses)} in {took:.1f}s")
    assert set(statuses) <= {200, 201}, (statuses, [a for s, a in answers if s not in (200, 201)][:3])
    assert all(a["status"] == "已签到" for _, a in answers)
    assert sum(a["created"] for _, a in answers) == 1
    assert len({a["checkin"]["id"] for _, a in answers}) == 1

    listed = hall.checkins(window_id=window)
    assert listed["total"] == 1 and listed["items"][0]["name"] == "刘双击", listed
    records = stack.wait_until(lambda: [r for r in hall.attendance() if r["window_id"] == window], 30,
                               what="credits' copy of the check-in")
    time.sleep(1)  # a duplicate event would land within this
    assert len([r for r in hall.attendance() if r["window_id"] == window]) == len(records) == 1


def test_scan_while_redis_is_down_reaches_credits_when_it_returns(stack, hall):
    """The phone is answered 已签到 while Redis is down; the check-in reaches credits once it is back."""
    from services.checkin.qr.tokens import make_token, slot_at

    window = hall.open_window("Redis 停机时签到")
    phone = requests.Session()
    stack.stop_process("redis")
    try:
        r = phone_scan(phone, f"{hall.base}/checkin/s/{make_token(hall.activity_id, window, slot_at())}")
        assert r.status_code == 200 and 'name="id_number"' in r.text, r.text[:300]
        ticket = phone.get(f"{hall.base}/checkin/api/scan", timeout=10).json()
        answer = phone.post(f"{hall.base}/checkin/api/scan", timeout=30, json={
            "nonce": ticket["nonce"], "name": "孙停机", "id_number": id_number("61010219850505321"),
            "mobile": "13512348765", "title": "主治医师", "unit": "西安市第三医院"})
        assert answer.status_code in (200, 201) and answer.json()["status"] == "已签到", answer.text
        time.sleep(2)  # the relay tries and fails meanwhile
        assert not [r for r in hall.attendance() if r["window_id"] == window]
    finally:
        stack.start_process("redis")
    stack.wait_healthy(60)
    records = stack.wait_until(lambda: [r for r in hall.attendance() if r["window_id"] == window], 60,
                               what="credits' copy after Redis came back")
    assert len(records) == 1 and records[0]["name"] == "孙停机"


# ---- the gateway keeps the projector's live status a second ---------------------------------------------------

def test_every_screen_of_one_projector_link_shares_the_gateways_copy_for_a_second(stack, hall):
    window_id = hall.open_window("网关缓存")
    r = hall.http.get(f"{hall.base}/checkin/api/activities/{hall.activity_id}/windows/{window_id}/projector",
                      headers=hall.auth)
    assert r.status_code == 200, r.text
    live = f"{hall.base}{r.json()['live_url']}"
    first = requests.get(live, timeout=10)
    second = requests.get(live, timeout=10)
    assert first.status_code == second.status_code == 200
    assert second.headers["X-Cache-Status"] == "HIT" and second.json() == first.json()
    # the browser itself keeps nothing, and each answer still has its own request id
    assert second.headers["Cache-Control"] == "no-store" and second.headers["X-Request-ID"] != first.headers[
        "X-Request-ID"]
    time.sleep(2.1)  # nginx keeps time in whole seconds: "1s" is served for one to two seconds
    assert requests.get(live, timeout=10).headers["X-Cache-Status"] != "HIT"  # then the service is asked again
    # a refused link is never kept: each attempt reaches the service and is refused again
    bad = live.replace("/projector/", "/projector/x")
    answers = [requests.get(bad, timeout=10) for _ in range(2)]
    assert [a.status_code for a in answers] == [403, 403]
    assert all(a.headers.get("X-Cache-Status") != "HIT" for a in answers)
