"""刷卡周期: default windows from the schedule, the pages and API to edit them, the audit trail."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from services.common import clock
from tests.checkin.test_windows_support import (
    INST_A,
    OPEN_AT,
    SCHEDULE,
    UTC,
    api_headers,
    audit_entries,
    client_for,
    csrf_for,
    make_activity,
    scan,
)


@pytest.fixture
def cdb(databases):
    return databases["checkin"]


def windows(cdb, activity_id):
    from services.checkin.windows.models import CheckinWindow

    s = cdb.new_session()
    try:
        return s.scalars(select(CheckinWindow).where(CheckinWindow.activity_id == activity_id)
                         .order_by(CheckinWindow.starts_at)).all()
    finally:
        s.close()


def test_one_sign_in_window_per_schedule_session_in_utc(cdb):
    aid, _ = make_activity(cdb)
    rows = windows(cdb, aid)
    assert [(w.title, w.kind, w.from_schedule) for w in rows] == [
        ("开幕式与专题讲座", "sign_in", True), ("12月10日 14:00–17:30", "sign_in", True), ("病例讨论", "sign_in", True)]
    assert (rows[0].starts_at, rows[0].ends_at) == (OPEN_AT, dt.datetime(2026, 12, 10, 4, 0, tzinfo=UTC))
    assert rows[2].starts_at == dt.datetime(2026, 12, 11, 0, 30, tzinfo=UTC)


def test_reapproval_does_not_duplicate_or_move_windows(cdb):
    aid, wids = make_activity(cdb)
    clock.set_now(dt.datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    make_activity(cdb, venue="西安曲江国际会议中心",
                  schedule=[{"date": dt.date(2026, 12, 10), "start": dt.time(9, 0), "end": dt.time(11, 0),
                             "title": "新"}])
    assert [w.id for w in windows(cdb, aid)] == wids
    assert windows(cdb, aid)[0].title == "开幕式与专题讲座"


def test_activity_without_schedule_gets_windows_on_a_later_approval(cdb):
    aid, wids = make_activity(cdb, schedule=[])
    assert wids == []
    clock.set_now(dt.datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    make_activity(cdb)
    assert len(windows(cdb, aid)) == 3


def test_session_ending_before_it_starts_makes_no_window(cdb):
    bad = [{"date": dt.date(2026, 12, 10), "start": dt.time(12, 0), "end": dt.time(8, 0), "title": "错"}, SCHEDULE[0]]
    aid, wids = make_activity(cdb, schedule=bad)
    assert len(wids) == 1


def test_list_page_shows_shanghai_times_counts_and_projector_links(checkin_app, cdb):
    aid, wids = make_activity(cdb)
    scan(cdb, wids[0], 1)
    html = client_for(checkin_app, "inst_a").get(f"/checkin/activities/{aid}/windows").get_data(as_text=True)
    assert "2026-12-10 08:30" in html and "2026-12-10 12:00" in html
    assert f"/checkin/activities/{aid}/windows/{wids[0]}/projector" in html and "微信二维码考勤" in html
    assert f'window_id={wids[0]}">1</a>' in html
    # a reviewer reads, but gets no editing links
    html = client_for(checkin_app, "reviewer").get(f"/checkin/activities/{aid}/windows").get_data(as_text=True)
    assert "开幕式与专题讲座" in html and "/edit" not in html and "/projector" not in html


def test_create_through_the_page_and_refusals(checkin_app, cdb):
    aid, _ = make_activity(cdb)
    c = client_for(checkin_app, "inst_a")
    form = {"csrf_token": csrf_for(INST_A), "title": "下午签退", "kind": "sign_out",
            "starts_at": "2026-12-10T17:00", "ends_at": "2026-12-10T17:45"}
    r = c.post(f"/checkin/activities/{aid}/windows", data=form)
    assert r.status_code == 302
    new = [w for w in windows(cdb, aid) if w.title == "下午签退"][0]
    assert (new.kind, new.from_schedule) == ("sign_out", False)
    assert new.starts_at == dt.datetime(2026, 12, 10, 9, 0, tzinfo=UTC)
    assert audit_entries(cdb, "window_created")[0].to_state == "签退 2026-12-10 17:00~17:45"
    r = c.post(f"/checkin/activities/{aid}/windows", data={**form, "ends_at": "2026-12-10T16:00"})
    assert r.status_code == 422 and "结束时间应晚于开始时间" in r.get_data(as_text=True)
    assert "下午签退" in r.get_data(as_text=True)  # what was typed is kept
    r = c.post(f"/checkin/activities/{aid}/windows", data={**form, "starts_at": "2026-12-20T08:00",
                                                           "ends_at": "2026-12-20T09:00"})
    assert r.status_code == 422 and "活动举办期间" in r.get_data(as_text=True)
    r = c.post(f"/checkin/activities/{aid}/windows", data={**form, "csrf_token": "forged"})
    assert r.status_code == 403


def test_edit_without_scans_needs_no_reason_with_scans_needs_one(checkin_app, cdb):
    aid, wids = make_activity(cdb)
    c = checkin_app.test_client()
    url = f"/checkin/api/activities/{aid}/windows/{wids[0]}"
    r = c.put(url, json={"ends_at": "2026-12-10T12:30"}, headers=api_headers("inst_a"))
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["ends_at"] == "2026-12-10T04:30:00+00:00"
    scan(cdb, wids[0], 1)
    r = c.put(url, json={"starts_at": "2026-12-10T08:00"}, headers=api_headers("inst_a"))
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "reason_required"
    assert "reason" in r.get_json()["error"]["fields"]
    assert windows(cdb, aid)[0].starts_at == OPEN_AT  # unchanged
    r = c.put(url, json={"starts_at": "2026-12-10T08:00", "reason": "会议提前开始"}, headers=api_headers("inst_a"))
    assert r.status_code == 200
    edit = audit_entries(cdb, "window_edited")[-1]
    assert (edit.from_state, edit.to_state, edit.reason) == (
        "签到 2026-12-10 08:30~12:30", "签到 2026-12-10 08:00~12:30", "会议提前开始")
    assert edit.actor == INST_A.describe() and edit.actor_name == INST_A.name and edit.object_id == wids[0]
    assert edit.at is not None


def test_edit_page_with_scans_asks_for_a_reason(checkin_app, cdb):
    aid, wids = make_activity(cdb)
    scan(cdb, wids[0], 1)
    c = client_for(checkin_app, "inst_a")
    page = c.get(f"/checkin/activities/{aid}/windows/{wids[0]}/edit").get_data(as_text=True)
    assert "已有 1 条签到记录" in page
    form = {"csrf_token": csrf_for(INST_A), "title": "开幕式与专题讲座", "kind": "sign_out",
            "starts_at": "2026-12-10T08:30", "ends_at": "2026-12-10T12:00", "version": "1"}
    r = c.post(f"/checkin/activities/{aid}/windows/{wids[0]}/edit", data=form)
    assert r.status_code == 422 and "请填写修改原因" in r.get_data(as_text=True)
    r = c.post(f"/checkin/activities/{aid}/windows/{wids[0]}/edit", data={**form, "reason": "a"})
    assert r.status_code == 422 and "2 到 500 个字符" in r.get_data(as_text=True)  # as every other reason
    assert windows(cdb, aid)[0].kind == "sign_in"
    r = c.post(f"/checkin/activities/{aid}/windows/{wids[0]}/edit", data={**form, "reason": "应为签退"})
    assert r.status_code == 302
    assert windows(cdb, aid)[0].kind == "sign_out"
    assert audit_entries(cdb, "window_edited")[-1].reason == "应为签退"
    # a stale form (the version moved on) is refused
    r = c.post(f"/checkin/activities/{aid}/windows/{wids[0]}/edit", data={**form, "reason": "再改"})
    assert r.status_code == 409


def test_delete_only_without_scans(checkin_app, cdb):
    aid, wids = make_activity(cdb)
    scan(cdb, wids[0], 1)
    c = checkin_app.test_client()
    r = c.delete(f"/checkin/api/activities/{aid}/windows/{wids[0]}", headers=api_headers("inst_a"))
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "window_has_checkins"
    r = c.delete(f"/checkin/api/activities/{aid}/windows/{wids[1]}", headers=api_headers("inst_a"))
    assert r.status_code == 204
    assert [w.id for w in windows(cdb, aid)] == [wids[0], wids[2]]
    assert audit_entries(cdb, "window_deleted")[0].object_id == wids[1]
    web = client_for(checkin_app, "inst_a")
    r = web.post(f"/checkin/activities/{aid}/windows/{wids[2]}/delete", data={"csrf_token": csrf_for(INST_A)})
    assert r.status_code == 302 and len(windows(cdb, aid)) == 1


def test_api_create_and_list(checkin_app, cdb):
    aid, _ = make_activity(cdb)
    c = checkin_app.test_client()
    r = c.post(f"/checkin/api/activities/{aid}/windows", headers=api_headers("inst_a"),
               json={"title": "签退", "kind": "sign_out", "starts_at": "2026-12-11T03:30:00Z",
                     "ends_at": "2026-12-11T04:30:00Z"})
    assert r.status_code == 201 and r.get_json()["kind_label"] == "签退"
    # the same window again (Back, then 保存): refused, naming the one that exists
    same = {"title": "签退", "kind": "sign_out", "starts_at": "2026-12-11T03:30:00Z", "ends_at": "2026-12-11T04:30:00Z"}
    r = c.post(f"/checkin/api/activities/{aid}/windows", headers=api_headers("inst_a"), json=same)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "window_exists"
    assert "“签退”" in r.get_json()["error"]["message"]
    r = c.post(f"/checkin/api/activities/{aid}/windows", headers=api_headers("inst_a"),
               json={**same, "title": "分会场签退"})
    assert r.status_code == 201  # another name at the same time: a second hall, say
    c.delete(f"/checkin/api/activities/{aid}/windows/{r.get_json()['id']}", headers=api_headers("inst_a"))
    # times typed in a 全角 input mode are the same times, not a format error
    r = c.post(f"/checkin/api/activities/{aid}/windows", headers=api_headers("inst_a"),
               json={**same, "title": "晚间签退", "starts_at": "２０２６－１２－１１　１９：００",
                     "ends_at": "２０２６－１２－１１　１９：３０"})
    assert r.status_code == 201 and r.get_json()["starts_at"].startswith("2026-12-11T11:00")
    c.delete(f"/checkin/api/activities/{aid}/windows/{r.get_json()['id']}", headers=api_headers("inst_a"))
    r = c.post(f"/checkin/api/activities/{aid}/windows", headers=api_headers("inst_a"),
               json={"title": "x", "kind": "lunch", "starts_at": "2026-12-11T08:00", "ends_at": "2026-12-11T09:00",
                     "extra": 1})
    assert r.status_code == 422 and set(r.get_json()["error"]["fields"]) == {"kind", "extra"}
    # a year Python cannot convert to UTC (found by the API fuzz test): the field's own message, not a 500
    r = c.post(f"/checkin/api/activities/{aid}/windows", headers=api_headers("inst_a"),
               json={"title": "0", "kind": "sign_in", "starts_at": "0001-01-01T00:00:00.0+00:01",
                     "ends_at": "0025-11-01T01:00:23+11:19"})
    assert r.status_code == 422
    assert r.get_json()["error"]["fields"] == {"starts_at": "时间超出范围（年份应在 2000 至 2099 之间）。",
                                               "ends_at": "时间超出范围（年份应在 2000 至 2099 之间）。"}
    items = c.get(f"/checkin/api/activities/{aid}/windows", headers=api_headers("reviewer")).get_json()["items"]
    assert len(items) == 4 and items[0]["checkins"] == 0 and items[0]["state"] == "before"


def test_a_title_with_quotes_cannot_break_out_of_the_delete_confirmation(checkin_app, cdb):
    """The 删除 button asks '确定删除刷卡周期“…”吗？' in an onsubmit attribute: a title with an apostrophe used to
    end the script's string there (HTML escaping is undone before the script runs)."""
    import html
    import json
    import re

    from services.checkin.windows.models import CheckinWindow

    aid, wids = make_activity(cdb)
    evil = "上午');alert(1);('"
    s = cdb.new_session()
    s.get(CheckinWindow, wids[0]).title = evil
    s.commit()
    s.close()
    page = client_for(checkin_app, "inst_a").get(f"/checkin/activities/{aid}/windows").get_data(as_text=True)
    handlers = [html.unescape(m) for m in re.findall(r"onsubmit='([^']*)'", page)]
    assert handlers, page[:500]
    for handler in handlers:
        call = re.fullmatch(r"return confirm\((.*)\);?", handler)
        assert call is not None, handler
        assert json.loads(call.group(1)).startswith("确定删除刷卡周期“")  # one string: nothing runs after it
    assert any(evil in json.loads(re.fullmatch(r"return confirm\((.*)\);?", h).group(1)) for h in handlers)


def test_an_edited_window_reaches_credits_copies_of_its_checkins(checkin_app, cdb, databases):
    """Shortening a window (with a reason) after scans: credits' 考勤分析 must offer the new range and kind,
    not the one its copies of the check-ins were made with (found by the office's trial walk)."""
    import json

    from services.checkin.db import outbox
    from services.credits.awards.services import windows_of
    from tests.credits.test_offerings import deliver

    aid, wids = make_activity(cdb)
    scan(cdb, wids[0], 1)
    r = checkin_app.test_client().put(
        f"/checkin/api/activities/{aid}/windows/{wids[0]}", headers=api_headers("inst_a"),
        json={"ends_at": "2026-12-10T09:00", "kind": "sign_out", "reason": "实际于九点结束"})
    assert r.status_code == 200, r.get_json()
    s = cdb.new_session()
    envelopes = [json.loads(e) for e in s.scalars(select(outbox.c.envelope).order_by(outbox.c.id))]
    s.close()
    mine = [e for e in envelopes if e["name"].startswith("checkin.") and e["payload"].get("window_id") == wids[0]]
    # the window's creation (from the schedule at approval), the scan, the edit
    assert [e["name"] for e in mine] == ["checkin.window_changed", "checkin.recorded", "checkin.window_changed"]
    for envelope in mine:
        assert deliver(envelope) is True
    credits = databases["credits"].new_session()
    offering_id = mine[0]["payload"]["offering_id"]
    [info] = [w for w in windows_of(credits, offering_id) if w.window_id == wids[0]]
    credits.close()
    assert (info.kind, info.starts_at, info.ends_at) == ("sign_out", OPEN_AT, dt.datetime(2026, 12, 10, 1, 0,
                                                                                          tzinfo=dt.UTC))
    assert {e["payload"]["window_title"] for e in mine} == {"开幕式与专题讲座"}
    assert info.title == "开幕式与专题讲座" and info.label.startswith("开幕式与专题讲座 · ")

    # a rename alone: with scans it needs a reason, as any edit of the window does, and credits' copies follow it
    url = f"/checkin/api/activities/{aid}/windows/{wids[0]}"
    r = checkin_app.test_client().put(url, headers=api_headers("inst_a"), json={"title": "上午签退"})
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "reason_required"
    r = checkin_app.test_client().put(url, headers=api_headers("inst_a"), json={"title": "上午签退", "reason": "改名"})
    assert r.status_code == 200
    assert audit_entries(cdb, "window_renamed")[0].reason == "改名"
    s = cdb.new_session()
    renamed = [json.loads(e) for e in s.scalars(select(outbox.c.envelope).order_by(outbox.c.id))][len(envelopes):]
    s.close()
    assert [(e["name"], e["payload"]["window_title"], e["payload"]["window_kind"]) for e in renamed] == [
        ("checkin.window_changed", "上午签退", "sign_out")]
    assert deliver(renamed[0]) is True
    credits = databases["credits"].new_session()
    [info] = [w for w in windows_of(credits, offering_id) if w.window_id == wids[0]]
    credits.close()
    assert info.title == "上午签退" and info.ends_at == dt.datetime(2026, 12, 10, 1, 0, tzinfo=dt.UTC)


def test_a_form_without_its_version_is_a_stale_page_never_a_blind_save(checkin_app, cdb):
    """The 500-hunt: a window form posted with its hidden version blank or gone saved over another's edit."""
    aid, wids = make_activity(cdb)
    c = client_for(checkin_app, "inst_a")
    form = {"csrf_token": csrf_for(INST_A), "title": "我的陈旧标题", "kind": "sign_in",
            "starts_at": "2026-12-10T08:30", "ends_at": "2026-12-10T12:00"}
    for version in (None, "", "abc", "²", "99999999999"):
        data = form if version is None else {**form, "version": version}
        r = c.post(f"/checkin/activities/{aid}/windows/{wids[0]}/edit", data=data)
        html = r.get_data(as_text=True)
        assert r.status_code == 409 and "页面已过期" in html and "我的陈旧标题" in html, (version, r.status_code)
    assert windows(cdb, aid)[0].title != "我的陈旧标题"
    # a title that is no character at all (JSON's lone surrogate) is refused by its field
    r = c.post(f"/checkin/api/activities/{aid}/windows", headers=api_headers("inst_a"), data=(
        '{"title": "x\\ud800", "kind": "sign_in", "starts_at": "2026-12-10T13:00", "ends_at": "2026-12-10T14:00"}'),
        content_type="application/json")
    assert r.status_code == 422 and "无法识别的字符" in r.get_json()["error"]["fields"]["title"]


def test_times_that_would_leave_check_ins_outside_are_refused(checkin_app, cdb):
    """Narrowing a window past its check-ins: they would stay in 签到名单 and on the projector's count, yet 考勤分析
    (whose ranges lie inside the window) could never count them. Refused, saying what to do; what was typed stays."""
    aid, wids = make_activity(cdb)
    scan(cdb, wids[0], 1, at=OPEN_AT + dt.timedelta(minutes=5, seconds=20))  # 08:35:20
    scan(cdb, wids[0], 2, at=OPEN_AT + dt.timedelta(hours=3, minutes=20, seconds=30))  # 11:50:30
    c = client_for(checkin_app, "inst_a")
    form = {"csrf_token": csrf_for(INST_A), "title": "开幕式与专题讲座", "kind": "sign_in",
            "starts_at": "2026-12-10T09:00", "ends_at": "2026-12-10T11:00", "version": "1", "reason": "按实际时间"}
    r = c.post(f"/checkin/activities/{aid}/windows/{wids[0]}/edit", data=form)
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert "该刷卡周期有 2 条签到记录（08:35:20–11:50:30）不在修改后的时间内" in html and "考勤分析中缩小" in html
    assert "开始时间不能晚于 2026-12-10 08:35" in html and "结束时间不能早于 2026-12-10 11:51" in html
    assert 'value="2026-12-10T09:00"' in html and "按实际时间" in html
    assert (windows(cdb, aid)[0].starts_at, windows(cdb, aid)[0].ends_at) == (
        OPEN_AT, dt.datetime(2026, 12, 10, 4, 0, tzinfo=UTC))
    # narrowed but keeping every check-in inside: saved as before
    r = c.post(f"/checkin/activities/{aid}/windows/{wids[0]}/edit",
               data={**form, "starts_at": "2026-12-10T08:35", "ends_at": "2026-12-10T11:51"})
    assert r.status_code == 302
    r = c.put(f"/checkin/api/activities/{aid}/windows/{wids[0]}", headers=api_headers("inst_a"),
              json={"ends_at": "2026-12-10T11:00", "reason": "提前结束"})
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "checkins_outside"
    assert "结束时间不能早于" in r.get_json()["error"]["fields"]["ends_at"]
