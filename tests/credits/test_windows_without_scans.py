"""考勤分析 lists every 刷卡周期 credits knows of, one nobody scanned in too (0 人签到, not ticked, said): it built
its windows from the check-in copies only, so an activity with three windows and scans in two listed two, and 须在全部
所选刷卡周期内签到 quietly meant "all windows someone scanned in". Credits keeps its own copy of the windows from
checkin.recorded and checkin.window_changed (checkin sends no event when a window is created: a scanless window is
known from its first edit)."""

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
