"""考勤分析 lists every 刷卡周期 credits knows of, one nobody scanned in too (0 人签到, not ticked, said): it built
its windows from the check-in copies only, so an activity with three windows and scans in two listed two, and 须在全部
所选刷卡周期内签到 quietly meant "all windows someone scanned in". Credits keeps its own copy of the windows from
checkin.recorded and checkin.window_changed (sent when a window is made and when it is edited); a window deleted in
checkin (checkin.window_deleted) is listed no more, whatever order the events arrive in."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from services.common import clock, pii
from services.common.events import make_envelope
from tests.checkin.test_windows_support import INST_A, api_headers, client_for, csrf_for, id_number
from tests.credits.test_attendance import event
from tests.credits.test_offerings import deliver, payload

UTC = dt.UTC
OFFERING = 101
DAY1 = dt.datetime(2026, 12, 10, 0, 30, tzinfo=UTC)  # 08:30 Shanghai
WINDOWS = {3: ("第一天上午 签到", DAY1), 4: ("第一天下午 签到", DAY1 + dt.timedelta(hours=5)),
           5: ("第二天上午 签到", DAY1 + dt.timedelta(days=1))}


def window_changed(window_id: int, **over):
    title, starts = WINDOWS[window_id]
    body = {"activity_id": 7, "offering_id": OFFERING, "window_id": window_id, "window_kind": "sign_in",
            "window_starts_at": starts, "window_ends_at": starts + dt.timedelta(hours=1), "window_title": title,
            **over}
    return make_envelope("checkin.window_changed", "checkin", body)


def scan(checkin_id: int, serial: int, window_id: int):
    title, starts = WINDOWS[window_id]
    return event(checkin_id=checkin_id, window_id=window_id, window_title=title, window_starts_at=starts,
                 window_ends_at=starts + dt.timedelta(hours=1), trainee_key=pii.id_hash(id_number(serial)),
                 id_enc=pii.encrypt(id_number(serial)), name=f"学员{serial}",
                 scanned_at=starts + dt.timedelta(minutes=5))


def stored_windows(databases):
    from services.credits.attendance.models import ActivityWindow

    s = databases["credits"].new_session()
    try:
        return {w.window_id: (w.title, w.starts_at) for w in s.scalars(select(ActivityWindow))}
    finally:
        s.close()


def test_a_window_nobody_scanned_in_is_listed_with_0_not_ticked_and_said(credits_app, databases):
    clock.set_now(dt.datetime(2026, 12, 12, 2, 0, tzinfo=UTC))
    deliver(make_envelope("offering.approved", "projects", payload()))
    for n, (serial, window_id) in enumerate([(1, 3), (2, 3), (1, 4), (2, 4)], 1):
        assert deliver(scan(n, serial, window_id)) is True
    # window 5: nobody scanned in it; the office moved it by ten minutes in checkin, which told credits of it
    assert deliver(window_changed(5, window_starts_at=WINDOWS[5][1] + dt.timedelta(minutes=10))) is True
    assert set(stored_windows(databases)) == {3, 4, 5}
    assert stored_windows(databases)[5] == ("第二天上午 签到", WINDOWS[5][1] + dt.timedelta(minutes=10))

    c = client_for(credits_app, "inst_a")
    page = c.get(f"/credits/awards/{OFFERING}/analysis").get_data(as_text=True)
    assert "第二天上午 签到 · 2026-12-11 08:40 至 09:30（签到）" in page
    row5 = page.split('id="w-5"')[0].rsplit("<tr>", 1)[1] + page.split('id="w-5"')[1].split("</tr>")[0]
    assert "0 人签到" in row5 and "该刷卡周期无人扫码签到" in row5 and "checked" not in row5
    row3 = page.split('id="w-3"')[1].split("</tr>")[0]
    assert "2 人签到" in row3 and "无人扫码" not in row3
    assert "本期次有 1 个刷卡周期无人扫码签到" in page
    assert re.findall(r'name="window" value="(\d+)"', page) == ["3", "4", "5"]

    # ticked with 须在全部所选刷卡周期内签到, it means what it says: nobody was there in all three
    token = csrf_for(INST_A)
    all_three = c.post(f"/credits/awards/{OFFERING}/analysis",
                       data={"csrf_token": token, "window": ["3", "4", "5"], "action": "preview"})
    assert all_three.status_code == 200 and "有效人员 <strong>0</strong> 人" in all_three.get_data(as_text=True)
    two = c.post(f"/credits/awards/{OFFERING}/analysis",
                 data={"csrf_token": token, "window": ["3", "4"], "action": "preview"})
    assert "有效人员 <strong>2</strong> 人" in two.get_data(as_text=True)
    # the API lists it too, with scans 0
    api = credits_app.test_client().get(f"/credits/api/offerings/{OFFERING}/windows", headers=api_headers("inst_a"))
    assert [(w["window_id"], w["scans"]) for w in api.json] == [(3, 2), (4, 2), (5, 0)]


def test_the_copy_of_a_window_follows_its_edits_and_takes_a_title_it_lacked(databases):
    deliver(make_envelope("offering.approved", "projects", payload()))
    old = scan(1, 1, 3)
    old["payload"].pop("window_title")  # written before the title travelled
    assert deliver(old) is True
    assert stored_windows(databases)[3] == (None, DAY1)
    assert deliver(scan(2, 2, 3)) is True  # a later check-in with the title names it
    assert stored_windows(databases)[3] == ("第一天上午 签到", DAY1)
    later = DAY1 + dt.timedelta(minutes=15)
    assert deliver(window_changed(3, window_starts_at=later, window_title="第一天上午 签到（改）")) is True
    assert stored_windows(databases)[3] == ("第一天上午 签到（改）", later)
    # an edit without a title (written before it travelled) keeps the one known
    edit = window_changed(3, window_starts_at=DAY1)
    edit["payload"].pop("window_title")
    assert deliver(edit) is True
    assert stored_windows(databases)[3] == ("第一天上午 签到（改）", DAY1)


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_the_migration_copies_the_windows_of_the_check_ins_kept(dialect, monkeypatch, tmp_path):
    from alembic import command
    from sqlalchemy import text

    from tests.conftest import fresh_service_db

    with fresh_service_db("credits", dialect, tmp_path, monkeypatch, "windows") as cdb:
        config = cdb.alembic_config()
        command.upgrade(config, "e4c9a7f1b3d8")
        with cdb.engine.begin() as conn:
            for n, (window_id, title) in enumerate([(3, None), (3, "第一天上午 签到"), (4, None)], 1):
                conn.execute(text(
                    "INSERT INTO attendance_records (checkin_id, activity_id, offering_id, institution_id, window_id,"
                    " window_kind, window_starts_at, window_ends_at, window_title, trainee_key, name, id_enc,"
                    " mobile_enc, title, unit, scanned_at, forced, flags, received_at) VALUES (:n, 7, 101, 1, :w,"
                    " 'sign_in', :s, :e, :t, :k, '张三', 'x', 'x', '主治医师', '某医院', :s, false, '[]', :s)"),
                    {"n": n, "w": window_id, "s": DAY1, "e": DAY1 + dt.timedelta(hours=1), "t": title,
                     "k": f"{n:064d}"})
        command.upgrade(config, "head")
        with cdb.engine.connect() as conn:
            rows = conn.execute(text("SELECT window_id, offering_id, title FROM activity_windows ORDER BY window_id"))
            assert [tuple(r) for r in rows] == [(3, 101, "第一天上午 签到"), (4, 101, None)]
        command.downgrade(config, "e4c9a7f1b3d8")
        command.upgrade(config, "head")


# ---------------------------------------------------------------- windows made and deleted in checkin

def window_deleted(window_id: int, **over):
    title, starts = WINDOWS[window_id]
    body = {"activity_id": 7, "offering_id": OFFERING, "window_id": window_id, "window_kind": "sign_in",
            "window_starts_at": starts, "window_ends_at": starts + dt.timedelta(hours=1), "window_title": title,
            "deleted_at": dt.datetime(2026, 12, 1, 2, 0, tzinfo=UTC), **over}
    return make_envelope("checkin.window_deleted", "checkin", body)


def listed(credits_app) -> list[tuple[int, int]]:
    """(window id, scans) as 考勤分析's API lists them."""
    r = credits_app.test_client().get(f"/credits/api/offerings/{OFFERING}/windows", headers=api_headers("inst_a"))
    assert r.status_code == 200
    return [(w["window_id"], w["scans"]) for w in r.json]


def deleted_marks(databases) -> dict[int, dt.datetime | None]:
    from services.credits.attendance.models import ActivityWindow

    s = databases["credits"].new_session()
    try:
        return {w.window_id: w.deleted_at for w in s.scalars(select(ActivityWindow))}
    finally:
        s.close()


def test_a_window_made_and_never_scanned_in_is_listed_until_it_is_deleted(credits_app, databases):
    clock.set_now(dt.datetime(2026, 12, 12, 2, 0, tzinfo=UTC))
    deliver(make_envelope("offering.approved", "projects", payload()))
    for window_id in (3, 4, 5):  # made in checkin (from the 日程 at approval): each sent once, never edited
        assert deliver(window_changed(window_id)) is True
    assert deliver(scan(1, 1, 3)) is True
    assert listed(credits_app) == [(3, 1), (4, 0), (5, 0)]
    page = client_for(credits_app, "inst_a").get(f"/credits/awards/{OFFERING}/analysis").get_data(as_text=True)
    row4 = page.split('id="w-4"')[0].rsplit("<tr>", 1)[1] + page.split('id="w-4"')[1].split("</tr>")[0]
    assert "第一天下午 签到" in row4 and "0 人签到" in row4 and "checked" not in row4
    assert "本期次有 2 个刷卡周期无人扫码签到" in page

    assert deliver(window_deleted(4)) is True
    assert listed(credits_app) == [(3, 1), (5, 0)]
    page = client_for(credits_app, "inst_a").get(f"/credits/awards/{OFFERING}/analysis").get_data(as_text=True)
    assert 'id="w-4"' not in page and "第一天下午 签到" not in page and "本期次有 1 个刷卡周期无人扫码签到" in page
    # ticking the deleted window (a page opened before) is refused as any window credits does not offer
    r = client_for(credits_app, "inst_a").post(f"/credits/awards/{OFFERING}/analysis", data={
        "csrf_token": csrf_for(INST_A), "window": ["3", "4"], "action": "preview"})
    assert r.status_code == 422 and "已在二维码考勤中删除" in r.get_data(as_text=True)
    assert deleted_marks(databases)[4] == dt.datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    # the same delete sent again (a producer that re-emitted it) keeps the first time
    assert deliver(window_deleted(4, deleted_at=dt.datetime(2026, 12, 2, tzinfo=UTC))) is True
    assert deleted_marks(databases)[4] == dt.datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def test_events_out_of_order_never_bring_a_deleted_window_back(credits_app, databases):
    clock.set_now(dt.datetime(2026, 12, 12, 2, 0, tzinfo=UTC))
    deliver(make_envelope("offering.approved", "projects", payload()))
    assert deliver(window_changed(3)) is True
    # window 5's delete arrives before its creation (several relays, a resend after Redis came back)
    assert deliver(window_deleted(5)) is True
    assert deleted_marks(databases)[5] is not None and listed(credits_app) == [(3, 0)]
    assert deliver(window_changed(5)) is True  # its creation, late
    # an edit sent before the delete, arriving after it
    assert deliver(window_changed(5, window_starts_at=WINDOWS[5][1] + dt.timedelta(minutes=10))) is True
    assert listed(credits_app) == [(3, 0)]
    assert stored_windows(databases)[5] == ("第二天上午 签到", WINDOWS[5][1])  # the edit was not applied either
    # the same for a window credits knew before its delete
    assert deliver(window_deleted(3)) is True
    assert deliver(window_changed(3, window_title="第一天上午 签到（改）")) is True
    assert listed(credits_app) == [] and stored_windows(databases)[3][0] == "第一天上午 签到"


def test_a_delete_never_drops_the_copies_of_check_ins(credits_app, databases, caplog):
    """checkin refuses to delete a window with check-ins; should credits hold copies of one it is told is deleted
    (checkin's database restored from an older backup), the copies stay and the window is still listed."""
    from services.credits.attendance.models import AttendanceRecord

    clock.set_now(dt.datetime(2026, 12, 12, 2, 0, tzinfo=UTC))
    deliver(make_envelope("offering.approved", "projects", payload()))
    assert deliver(scan(1, 1, 3)) is True and deliver(scan(2, 2, 3)) is True
    assert deliver(window_deleted(3)) is True
    s = databases["credits"].new_session()
    assert len(s.scalars(select(AttendanceRecord).where(AttendanceRecord.window_id == 3)).all()) == 2
    s.close()
    assert listed(credits_app) == [(3, 2)]
    assert "credits keeps 2 check-in copies" in caplog.text


def test_windows_made_and_deleted_in_checkin_reach_credits_analysis(checkin_app, credits_app, databases):
    """Through both services' own code: checkin's outbox rows for credits, delivered to credits' consumer."""
    import json

    from services.checkin.db import outbox
    from tests.checkin.test_windows_support import make_activity

    sent: set[str] = set()

    def relay() -> None:
        s = databases["checkin"].new_session()
        try:
            rows = s.execute(select(outbox.c.event_id, outbox.c.envelope).where(outbox.c.consumer == "credits")
                             .order_by(outbox.c.id)).all()
        finally:
            s.close()
        for event_id, envelope in rows:
            if event_id not in sent:
                sent.add(event_id)
                assert deliver(json.loads(envelope)) is True

    aid, wids = make_activity(databases["checkin"])  # three windows from the 日程
    deliver(make_envelope("offering.approved", "projects", payload()))
    made = checkin_app.test_client().post(
        f"/checkin/api/activities/{aid}/windows", headers=api_headers("inst_a"),
        json={"title": "第二天上午 签退", "kind": "sign_out", "starts_at": "2026-12-11T03:30:00Z",
              "ends_at": "2026-12-11T04:00:00Z"})
    assert made.status_code == 201
    relay()
    clock.set_now(dt.datetime(2026, 12, 12, 2, 0, tzinfo=UTC))
    assert listed(credits_app) == [(w, 0) for w in wids] + [(made.get_json()["id"], 0)]
    clock.set_now(dt.datetime(2026, 12, 9, 2, 0, tzinfo=UTC))
    r = checkin_app.test_client().delete(f"/checkin/api/activities/{aid}/windows/{wids[1]}",
                                         headers=api_headers("inst_a"))
    assert r.status_code == 204
    relay()
    clock.set_now(dt.datetime(2026, 12, 12, 2, 0, tzinfo=UTC))
    assert listed(credits_app) == [(wids[0], 0), (wids[2], 0), (made.get_json()["id"], 0)]
