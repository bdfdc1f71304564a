"""代签: a forced check-in needs a reason, is marked, audit-logged and travels as checkin.recorded."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from services.common import clock
from tests.checkin.test_windows_support import (
    INST_A,
    OPEN_AT,
    api_headers,
    audit_entries,
    client_for,
    csrf_for,
    id_number,
    identity,
    make_activity,
)


@pytest.fixture
def cdb(databases):
    return databases["checkin"]


def checkins(cdb):
    from services.checkin.scans.models import Checkin

    s = cdb.new_session()
    try:
        return s.scalars(select(Checkin).order_by(Checkin.id)).all()
    finally:
        s.close()


def outbox_rows(cdb):
    from services.checkin.db import outbox

    s = cdb.new_session()
    try:
        return s.execute(select(outbox.c.name, outbox.c.envelope)).all()
    finally:
        s.close()


def test_page_form_needs_a_reason_then_marks_and_logs(checkin_app, cdb):
    aid, wids = make_activity(cdb)
    clock.set_now(OPEN_AT + dt.timedelta(minutes=20))
    c = client_for(checkin_app, "inst_a")
    url = f"/checkin/activities/{aid}/windows/{wids[0]}/forced"
    page = c.get(url).get_data(as_text=True)
    assert "代签原因" in page and 'name="nonce"' in page
    form = {"csrf_token": csrf_for(INST_A), **identity(3), "nonce": "a" * 32}
    r = c.post(url, data=form)
    assert r.status_code == 422 and "请填写代签原因" in r.get_data(as_text=True)
    assert identity(3)["name"] in r.get_data(as_text=True)  # what was typed is kept
    assert checkins(cdb) == []
    r = c.post(url, data={**form, "reason": "手机没电，已核对身份证"})
    assert r.status_code == 302 and f"window_id={wids[0]}" in r.headers["Location"]
    (row,) = checkins(cdb)
    assert row.forced and row.forced_reason == "手机没电，已核对身份证" and row.flags == ["forced"]
    assert row.forced_by == INST_A.describe() and row.scanned_at == clock.now() and row.openid is None
    (entry,) = audit_entries(cdb, "forced_checkin")
    assert (entry.object_type, entry.object_id, entry.reason, entry.actor) == (
        "checkin", row.id, "手机没电，已核对身份证", INST_A.describe())
    events = [json.loads(env) for name, env in outbox_rows(cdb) if name == "checkin.recorded"]
    assert len(events) == 1 and events[0]["payload"]["forced"] is True and "forced" in events[0]["payload"]["flags"]
    assert events[0]["payload"]["window_title"] == "开幕式与专题讲座"  # a 代签 names its window as a scan does
    assert id_number(3) not in json.dumps(events[0])
    # the same form sent again (a double click) changes nothing
    r = c.post(url, data={**form, "reason": "手机没电，已核对身份证"})
    assert r.status_code == 302 and len(checkins(cdb)) == 1 and len(audit_entries(cdb, "forced_checkin")) == 1
    # marked 代签 in the list
    html = c.get(f"/checkin/activities/{aid}/checkins").get_data(as_text=True)
    assert "代签" in html and "手机没电" in html


def test_api_forced_checkin_and_refusals(checkin_app, cdb):
    aid, wids = make_activity(cdb)
    c = checkin_app.test_client()
    url = f"/checkin/api/activities/{aid}/windows/{wids[0]}/forced"
    clock.set_now(OPEN_AT - dt.timedelta(minutes=5))
    r = c.post(url, json={**identity(4), "reason": "手机故障"}, headers=api_headers("inst_a"))
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "window_not_started"
    clock.set_now(OPEN_AT + dt.timedelta(hours=5))  # after the window: allowed, marked, stamped at its end
    r = c.post(url, json={**identity(4)}, headers=api_headers("inst_a"))
    assert r.status_code == 422 and "reason" in r.get_json()["error"]["fields"]
    r = c.post(url, json={**identity(4), "reason": "  "}, headers=api_headers("inst_a"))
    assert r.status_code == 422
    r = c.post(url, json={**identity(4, id_number="610102199001041230"), "reason": "手机故障"},
               headers=api_headers("inst_a"))
    assert r.status_code == 422 and "id_number" in r.get_json()["error"]["fields"]
    r = c.post(url, json={**identity(4), "reason": "手机故障", "nonce": "b" * 32}, headers=api_headers("inst_a"))
    assert r.status_code == 201
    body = r.get_json()
    assert body["created"] and body["checkin"]["method"] == "代签" and body["checkin"]["forced"] is True
    assert body["checkin"]["id_number_masked"] == "6101**********" + id_number(4)[-4:]
    r = c.post(url, json={**identity(4), "reason": "手机故障"}, headers=api_headers("inst_a"))
    assert r.status_code == 200 and r.get_json()["created"] is False
    assert len(checkins(cdb)) == 1
    assert c.post(url, json={**identity(5), "reason": "x故障"}, headers=api_headers("reviewer")).status_code == 403
    assert c.post(url, json={**identity(5), "reason": "x故障"}, headers=api_headers("inst_b")).status_code == 404
    assert len(checkins(cdb)) == 1


def test_the_institution_s_typing_never_replaces_a_trainee_s_identity(checkin_app, cdb):
    """代签 of someone who scanned before: another name is refused (nothing stored, nothing changed); the same
    name with another mobile or unit checks her in under what she gave herself."""
    from services.checkin.trainees.models import Trainee
    from services.common import pii
    from tests.checkin.test_windows_support import scan

    aid, wids = make_activity(cdb)
    clock.set_now(OPEN_AT + dt.timedelta(minutes=10))
    scan(cdb, wids[0], 6)
    c = checkin_app.test_client()
    url = f"/checkin/api/activities/{aid}/windows/{wids[-1]}/forced"
    clock.set_now(OPEN_AT + dt.timedelta(days=3))  # after every window
    r = c.post(url, json={**identity(6, name="李四"), "reason": "手机故障"}, headers=api_headers("inst_a"))
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "name_mismatch"
    assert "姓名" in r.get_json()["error"]["fields"]["name"]
    assert len(checkins(cdb)) == 1
    r = c.post(url, json={**identity(6, mobile="13700000000", unit="别的医院"), "reason": "手机故障"},
               headers=api_headers("inst_a"))
    assert r.status_code == 201, r.get_json()
    s = cdb.new_session()
    (trainee,) = s.scalars(select(Trainee)).all()
    assert trainee.name == identity(6)["name"] and trainee.unit == "西安市第一医院"
    assert pii.decrypt(trainee.mobile_enc) == identity(6)["mobile"]
    s.close()


def test_a_forced_check_in_after_the_window_is_stamped_at_its_end(checkin_app, cdb):
    """So that 考勤分析, whose ranges are the windows' times, finds it; when it was made stays on record."""
    from services.checkin.windows.models import CheckinWindow

    aid, wids = make_activity(cdb)
    late = OPEN_AT + dt.timedelta(days=1)
    clock.set_now(late)
    r = checkin_app.test_client().post(f"/checkin/api/activities/{aid}/windows/{wids[0]}/forced",
                                       json={**identity(7), "reason": "次日补录，已核对签到表"},
                                       headers=api_headers("inst_a"))
    assert r.status_code == 201, r.get_json()
    s = cdb.new_session()
    window = s.get(CheckinWindow, wids[0])
    (row,) = checkins(cdb)
    assert row.scanned_at == window.ends_at and row.recorded_at == late
    s.close()
    events = [json.loads(env) for name, env in outbox_rows(cdb) if name == "checkin.recorded"]
    assert events[-1]["payload"]["scanned_at"].startswith(window.ends_at.isoformat()[:19])
    # the list does not pass the window's end off as the time it was made (the office's walk)
    listing = client_for(checkin_app, "inst_a").get(f"/checkin/activities/{aid}/checkins").get_data(as_text=True)
    assert "时段结束后补录，补录时间 2026-12-11 08:30" in listing


def test_the_office_may_say_when_she_came_inside_the_window(checkin_app, cdb):
    """A 代签 made the next morning is stamped at the window's end, which a 考勤分析 range narrowed to the first half
    hour leaves out even with 代签 counted: the office may give her 到场时间, inside the window and not later than
    now; a time outside is refused beside the field with everything typed kept."""
    from services.checkin.windows.models import CheckinWindow

    aid, wids = make_activity(cdb)
    s = cdb.new_session()
    window = s.get(CheckinWindow, wids[0])
    starts, ends = window.starts_at, window.ends_at
    s.close()
    clock.set_now(OPEN_AT + dt.timedelta(days=1))
    office = client_for(checkin_app, "inst_a")
    url = f"/checkin/activities/{aid}/windows/{wids[0]}/forced"
    form = office.get(url).get_data(as_text=True)
    assert 'name="present_at" type="datetime-local"' in form and "到场时间" in form
    typed = {**identity(8), "reason": "次日补录，已核对纸质签到表", "csrf_token": csrf_for(INST_A), "nonce": "n" * 16}
    for outside in (starts - dt.timedelta(minutes=5), ends + dt.timedelta(minutes=5)):
        r = office.post(url, data={**typed, "present_at": clock.fmt(outside, "%Y-%m-%dT%H:%M")})
        page = r.get_data(as_text=True)
        assert r.status_code == 422 and "到场时间须在本时段内" in page
        assert "次日补录，已核对纸质签到表" in page and identity(8)["unit"] in page and not checkins(cdb)
    came = starts + dt.timedelta(minutes=12)
    r = office.post(url, data={**typed, "present_at": clock.fmt(came, "%Y-%m-%d %H:%M")})
    assert r.status_code == 302
    (row,) = checkins(cdb)
    assert row.scanned_at == came and row.forced
    listing = office.get(f"/checkin/activities/{aid}/checkins").get_data(as_text=True)
    assert clock.fmt(came, "%Y-%m-%d %H:%M:%S") in listing and "时段结束后补录，补录时间 2026-12-11 08:30" in listing
    (entry,) = audit_entries(cdb, "forced_checkin")
    assert entry.reason == f"次日补录，已核对纸质签到表（到场时间 {clock.fmt(came, '%m-%d %H:%M')}）"
    # during the window, a time later than now is refused (she cannot have come yet), an earlier one is noted;
    # the page's picker offers nothing later than now (after the window: nothing later than its end)
    assert f'max="{clock.fmt(ends, "%Y-%m-%dT%H:%M")}"' in form
    clock.set_now(starts + dt.timedelta(minutes=40, seconds=30))
    form = office.get(url).get_data(as_text=True)
    assert f'max="{clock.fmt(starts + dt.timedelta(minutes=40), "%Y-%m-%dT%H:%M")}"' in form
    api = f"/checkin/api/activities/{aid}/windows/{wids[0]}/forced"
    body = {**identity(9), "reason": "手机没电"}
    later = clock.fmt(starts + dt.timedelta(minutes=50), "%Y-%m-%dT%H:%M")
    r = checkin_app.test_client().post(api, json={**body, "present_at": later}, headers=api_headers("inst_a"))
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "present_at_outside"
    earlier = clock.fmt(starts + dt.timedelta(minutes=5), "%Y-%m-%dT%H:%M")
    r = checkin_app.test_client().post(api, json={**body, "present_at": earlier}, headers=api_headers("inst_a"))
    assert r.status_code == 201
    assert r.get_json()["checkin"]["time_note"] == "到场时间由举办机构填写，代签时间 " + clock.fmt(clock.now())


def test_a_forced_check_in_during_the_window_is_not_called_a_late_one(checkin_app, cdb):
    """The clerk checks a trainee in while the window is open: its time is the moment it was made (a few
    milliseconds before the row's recorded_at on a real clock), with no "时段结束后补录" on the list or in Excel."""
    import io

    from openpyxl import load_workbook

    from services.checkin.scans.models import Checkin

    aid, wids = make_activity(cdb)
    clock.set_now(OPEN_AT + dt.timedelta(minutes=10))
    r = checkin_app.test_client().post(f"/checkin/api/activities/{aid}/windows/{wids[0]}/forced",
                                       json={**identity(9), "reason": "手机没电"}, headers=api_headers("inst_a"))
    assert r.status_code == 201, r.get_json()
    s = cdb.new_session()
    s.execute(Checkin.__table__.update().values(recorded_at=OPEN_AT + dt.timedelta(minutes=10, milliseconds=3)))
    s.commit()
    s.close()
    c = client_for(checkin_app, "inst_a")
    listing = c.get(f"/checkin/activities/{aid}/checkins").get_data(as_text=True)
    assert "代签" in listing and "补录" not in listing
    ws = load_workbook(io.BytesIO(c.get(f"/checkin/activities/{aid}/checkins.xlsx").data)).active
    assert not any("补录" in str(v) for row in ws.iter_rows(values_only=True) for v in row if v)


def test_a_name_the_committee_corrected_reaches_the_list_and_the_name_a_forced_check_in_is_checked_against(
        checkin_app, cdb):
    """credits.name_corrected (学员账号's 更正姓名) renames her record here: 签到名单 shows the corrected name, and a
    代签 with it is accepted where the old one is now refused. Delivered twice, it is done once."""
    from services.checkin.worker import handle_event
    from services.common import pii
    from services.common.events import make_envelope
    from tests.checkin.test_windows_support import scan

    aid, wids = make_activity(cdb)
    clock.set_now(OPEN_AT + dt.timedelta(minutes=10))
    scan(cdb, wids[0], 3)
    old = identity(3)["name"]
    env = make_envelope("credits.name_corrected", "credits",
                        {"trainee_key": pii.id_hash(id_number(3)), "name": "欧阳娜娜"})
    assert handle_event.run(env) is True and handle_event.run(env) is False  # the second: already done
    c = client_for(checkin_app, "inst_a")
    listing = c.get(f"/checkin/activities/{aid}/checkins").get_data(as_text=True)
    assert "欧阳娜娜" in listing and old not in listing
    clock.set_now(OPEN_AT + dt.timedelta(days=3))
    url = f"/checkin/api/activities/{aid}/windows/{wids[-1]}/forced"
    refused = c.post(url, json={**identity(3), "reason": "手机没电"}, headers=api_headers("inst_a"))
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "name_mismatch"
    done = c.post(url, json={**identity(3, name="欧阳娜娜"), "reason": "手机没电"}, headers=api_headers("inst_a"))
    assert done.status_code == 201, done.get_json()


def test_the_page_says_which_typed_details_were_not_used(checkin_app, cdb):
    """The clerk typed a new mobile for someone who scanned before: checked in, and told the mobile on record
    stays (the list would otherwise show another number without a word)."""
    from tests.checkin.test_windows_support import scan

    aid, wids = make_activity(cdb)
    clock.set_now(OPEN_AT + dt.timedelta(minutes=10))
    scan(cdb, wids[0], 8)
    clock.set_now(OPEN_AT + dt.timedelta(days=3))
    c = client_for(checkin_app, "inst_a")
    r = c.post(f"/checkin/activities/{aid}/windows/{wids[-1]}/forced",
               data={"csrf_token": csrf_for(INST_A), **identity(8, mobile="13700000000"), "reason": "手机没电"})
    assert r.status_code == 302
    html = c.get(r.headers["Location"]).get_data(as_text=True)
    assert "该学员已登记过本人信息，手机号码以其本人登记的为准，未按本次填写更改。" in html  # the mobile alone


def test_a_refused_form_says_why_once(checkin_app, cdb):
    """Before the window: the refusal is said once (the page's notice and the refusal said it twice); a garbled
    提交编号 (the hidden field) is said, where the page showed nothing at all."""
    aid, wids = make_activity(cdb)
    clock.set_now(OPEN_AT - dt.timedelta(minutes=5))
    c = client_for(checkin_app, "inst_a")
    url = f"/checkin/activities/{aid}/windows/{wids[0]}/forced"
    form = {"csrf_token": csrf_for(INST_A), **identity(3), "nonce": "a" * 32, "reason": "手机没电"}
    html = c.post(url, data=form).get_data(as_text=True)
    assert html.count("该刷卡周期尚未开始") == 1
    clock.set_now(OPEN_AT + dt.timedelta(minutes=5))
    r = c.post(url, data={**form, "nonce": "!"})
    assert r.status_code == 422 and "提交编号格式不正确，请刷新页面后重试。" in r.get_data(as_text=True)
    assert identity(3)["name"] in r.get_data(as_text=True) and checkins(cdb) == []


def test_a_form_sent_after_the_login_ended_comes_back_filled_in_chromium(checkin_app, cdb):
    """The office's login ran out while the 代签 form was open: the 401 page offers 重新登录 and says what it keeps;
    back on the form, what was typed is filled in again, except the ID number and mobile (never stored in the
    browser); an answer other than the 401 page forgets it."""
    from tests.stack.browser import DESK, served_page

    aid, wids = make_activity(cdb)
    clock.set_now(OPEN_AT + dt.timedelta(minutes=20))
    url = f"/checkin/activities/{aid}/windows/{wids[0]}/forced"
    office = client_for(checkin_app, "inst_a")
    form_html = office.get(url).get_data(as_text=True)
    ended = checkin_app.test_client().post(url, data={"name": "x"}, headers={"Referer": f"http://localhost{url}"})
    assert ended.status_code == 401
    answers = [ended.get_data(as_text=True)]

    def answer(route):  # type: ignore[no-untyped-def]
        route.fulfill(status=200, content_type="text/html; charset=utf-8", body=answers.pop(0))

    typed = {"#f-name": "王芳", "#f-id_number": id_number(4), "#f-mobile": "13912340004", "#f-unit": "西安市第一医院",
             "#f-reason": "手机没电，已核对身份证件",
             "#f-present": clock.fmt(OPEN_AT + dt.timedelta(minutes=5), "%Y-%m-%dT%H:%M")}
    with served_page(form_html, url, answer, device=DESK, static_from=office) as page:
        for selector, value in typed.items():
            page.fill(selector, value)
        page.select_option("#f-title", "主治医师")
        page.click("form[data-keep] button[type=submit]")
        page.wait_for_selector("#login-again")
        assert "已填写的内容会自动填回" in page.text_content("#login-again-hint")
        page.goto(f"http://cme.test{url}")  # logged in again, back on the form
        assert "已填回登录失效前填写但未提交的内容" in page.text_content("#kept-typed")
        for selector in ("#f-name", "#f-unit", "#f-reason", "#f-present"):
            assert page.input_value(selector) == typed[selector], selector
        assert page.input_value("#f-title") == "主治医师"
        assert page.input_value("#f-id_number") == "" and page.input_value("#f-mobile") == ""
        stored = page.evaluate("() => JSON.stringify(sessionStorage)")
        assert id_number(4) not in stored and "13912340004" not in stored
        page.reload()  # once only
        assert page.input_value("#f-name") == "" and page.locator("#kept-typed").count() == 0
        # sent and answered by the form itself (saved, or refused with the form shown): nothing comes back later
        answers.append(office.get(f"/checkin/activities/{aid}/checkins").get_data(as_text=True))
        page.fill("#f-name", "张伟")
        page.click("form[data-keep] button[type=submit]")
        page.wait_for_selector("text=签到名单")
        page.goto(f"http://cme.test{url}")
        assert page.input_value("#f-name") == "" and page.locator("#kept-typed").count() == 0
