"""A year-end QA walk through nginx in headless Chromium: a doctor checks in on her phone through the projector's
QR link, the committee then marks the 期 未举办 on its filing page, and what each of them sees afterwards.

1. xjtu1's approved 期 is held today (flows.activity_held_today) with a 签到 window open now;
2. the projector page (微信二维码考勤) shows a QR; a 360 px phone reads it (zbar on a screenshot), passes the fake
   WeChat login, sends the form with a mistyped check digit (the error is Chinese, next to the field, and what she
   typed stays), corrects it and sees 已签到;
3. the committee opens the filing under 举办前登记审批 and presses 标记未举办 with a reason;
4. the projector page stops showing codes and says why; the office's 二维码考勤 says 已标记未举办 with the reason;
5. the doctor logs in (ID number, pinyin), sets her password, and 达标情况查询 lists the 期 she checked in to
   as 项目未举办: 本期已标记未举办，不会授分 -- every phone page within 360 px.

Screenshots: $CME_TEST_OUTPUT/year-end-walk/ or test-output/<run id>/year-end-walk/ (git-ignored).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from services.common import clock

from .browser import CHROMIUM, CHROMIUM_ARGS, DESK, PHONE, Shots, decode_qr, desk_login, output_dir
from .flows import activity_held_today, id_number, local_minute

pytestmark = pytest.mark.stack

ADMIN = ("年终走查员", "13700007101")  # fresh mobiles: the other stack tests' 60-second SMS rule stays out of the way
REVIEWER = ("committee71", "审核员年终", "Review71@2026", "13900007103")  # approves the filing through the API
CLERK = ("committee72", "审核员年终乙", "Review72@2026", "13900007104")  # a second SMS to REVIEWER waits 60 s
DOCTOR = {"name": "王丽华", "id_number": id_number("61010419910212246"), "mobile": "13600007111",
          "title": "主治医师", "unit": "西安市第四医院", "pinyin": "wanglihua"}
NEW_PASSWORD = "Wlh2026walk"
REASON = "讲者临时无法到场，本期未能举办，主办方已申请另行登记"


def fits_phone(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"{page.url} is {width} px wide on a 360 px phone"


def test_checked_in_doctor_sees_the_committees_unheld_mark(stack, demo) -> None:
    from playwright.sync_api import sync_playwright

    from services.projects import models as projects_models  # noqa: F401 - the whole schema is known
    from services.projects.filings.models import Filing
    from services.projects.institutions.services import create_reviewer

    base = stack.base_url
    aid, offering_id, auth, office = activity_held_today(
        stack, demo, admin=ADMIN, reviewer=REVIEWER, venue="西安国际会议中心（年终走查）",
        addresses=("127.0.0.71", "127.0.0.72"))
    starts = max(clock.now() - dt.timedelta(minutes=10), clock.local_midnight_utc(clock.today_local()))
    r = office.post(f"{base}/checkin/api/activities/{aid}/windows", headers=auth, json={
        "title": "上午签到", "kind": "sign_in", "starts_at": local_minute(starts),
        "ends_at": local_minute(starts + dt.timedelta(hours=3))})
    assert r.status_code == 201, r.text
    window_id = r.json()["id"]
    s = stack.session("projects")
    try:
        filing_id = s.query(Filing.id).filter_by(offering_id=offering_id).scalar()
        create_reviewer(s, *CLERK)
        s.commit()
    finally:
        s.close()
    shots = Shots(output_dir("year-end-walk"))

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            desk = browser.new_context(**DESK)
            desk.add_cookies([{"name": "cme_session", "value": auth["Authorization"].removeprefix("Bearer "),
                               "url": base}])
            room = desk.new_page()
            room.goto(f"{base}/checkin/activities/{aid}/windows/{window_id}/projector")
            room.locator("#qr svg, #qr img").first.wait_for(state="visible", timeout=10_000)
            [url] = decode_qr(shots(room, "projector", full_page=False))

            # the doctor's phone: the QR's link, the fake WeChat login, the form
            phone = browser.new_context(**PHONE)
            p = phone.new_page()
            p.goto(url)
            assert p.url.startswith(f"{base}/checkin/scan"), p.url
            typo = DOCTOR["id_number"][:-1] + ("0" if DOCTOR["id_number"][-1] != "0" else "1")
            p.fill("#f-name", DOCTOR["name"])
            p.fill("#f-id_number", typo)
            p.fill("#f-mobile", DOCTOR["mobile"])
            p.select_option("#f-title", DOCTOR["title"])
            p.fill("#f-unit", DOCTOR["unit"])
            p.get_by_role("button", name="提交签到").click()
            error = p.locator("#e-id_number")  # the field's own error (aria-describedby), under the field
            error.wait_for(timeout=10_000)
            assert p.locator("#f-id_number").get_attribute("aria-describedby") == "e-id_number"
            assert "身份证号码校验位不正确" in error.inner_text()
            assert p.locator("#f-name").input_value() == DOCTOR["name"]  # nothing typed is lost
            assert p.locator("#f-unit").input_value() == DOCTOR["unit"]
            assert p.locator("#f-title").input_value() == DOCTOR["title"]
            fits_phone(p)
            shots(p, "phone-form-error")
            p.fill("#f-id_number", DOCTOR["id_number"])
            p.get_by_role("button", name="提交签到").click()
            p.locator("h1.ok").wait_for(timeout=10_000)
            assert "已签到" in p.locator("h1").inner_text() and DOCTOR["name"] in p.content()
            fits_phone(p)
            shots(p, "phone-checked-in")

            # the committee ends the 期 on its filing page
            committee = browser.new_context(**DESK).new_page()
            desk_login(committee, base, stack.sms_log, "reviewer", CLERK[0], CLERK[2], CLERK[3])
            committee.goto(f"{base}/projects/review/filings/{filing_id}")
            committee.fill("#f-unheld-reason", REASON)
            committee.once("dialog", lambda d: d.accept())
            committee.get_by_role("button", name="标记未举办").click()
            committee.wait_for_load_state()
            body = committee.locator("body").inner_text()
            assert "未举办" in body and REASON in body, body[:2000]
            shots(committee, "committee-unheld")

            # the projector stops (its live status follows by itself) and 二维码考勤 says why
            room.wait_for_function("document.body.innerText.includes('已标记未举办')", timeout=30_000)
            assert room.locator("#qr svg, #qr img").filter(visible=True).count() == 0
            shots(room, "projector-stopped", full_page=False)
            windows = desk.new_page()
            windows.goto(f"{base}/checkin/activities/{aid}/windows")
            assert "已标记未举办" in windows.content() and REASON in windows.content()

            # the doctor: her account opened at the check-in; 达标情况查询 says the 期 was not held
            def logged_in() -> bool:
                p.goto(f"{base}/credits/login")
                p.fill("#f-id_number", DOCTOR["id_number"])
                p.fill("#f-password", DOCTOR["pinyin"])
                p.get_by_role("button", name="登录").click()
                p.wait_for_load_state()
                return "/credits/password" in p.url

            stack.wait_until(logged_in, 60, interval=1.0, what="the doctor's account opened by her check-in")
            fits_phone(p)
            passwords = p.locator("main form input[type=password]")
            passwords.nth(0).fill(DOCTOR["pinyin"])
            passwords.nth(1).fill(NEW_PASSWORD)
            passwords.nth(2).fill(NEW_PASSWORD)
            p.get_by_role("button", name="确认修改").click()
            p.wait_for_load_state()
            assert "密码已修改" in p.content()

            deadline = time.monotonic() + 60
            while True:
                p.goto(f"{base}/credits/compliance")
                section = p.locator("body").inner_text()
                if "项目未举办" in section or time.monotonic() > deadline:
                    break
                time.sleep(1.0)
            shots(p, "phone-compliance")
            assert "已签到、尚无授分的项目" in section, section
            assert "项目未举办" in section and "本期已标记未举办，不会授分" in section, section
            assert "已签到，待举办机构授分" not in section.split("已签到、尚无授分的项目", 1)[1], section
            fits_phone(p)
        finally:
            browser.close()
