"""Credits keeps its own copy of the check-ins (event "checkin.recorded"), once per check-in."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import func, select

from services.common import clock, pii
from services.common.events import CheckinRecordedSchema, make_envelope
from tests.conftest import bearer
from tests.credits.test_offerings import INST_A, NAMES, REVIEWER, deliver

WINDOW_START = dt.datetime(2026, 12, 10, 0, 30, tzinfo=dt.UTC)
ID_NUMBER = "11010519491231002X"


def payload(**over):
    base = {
        "checkin_id": 1, "activity_id": 7, "offering_id": 101, "institution_id": 1, "window_id": 3,
        "window_kind": "sign_in", "window_starts_at": WINDOW_START,
        "window_ends_at": WINDOW_START + dt.timedelta(hours=1), "window_title": "第一天上午 签到",
        "trainee_key": pii.id_hash(ID_NUMBER),
        "name": "张三", "id_enc": pii.encrypt(ID_NUMBER), "mobile_enc": pii.encrypt("13912345678"),
        "title": "主治医师", "unit": "西安市第一医院", "scanned_at": WINDOW_START + dt.timedelta(minutes=5),
        "forced": False, "flags": [],
    }
    base.update(over)
    assert set(base) == set(CheckinRecordedSchema().fields), "the test payload follows the event's schema"
    return base


def event(**over):
    return make_envelope("checkin.recorded", "checkin", payload(**over))


def records(databases):
    from services.credits.attendance.models import AttendanceRecord

    s = databases["credits"].new_session()
    try:
        return s.scalars(select(AttendanceRecord).order_by(AttendanceRecord.checkin_id)).all()
    finally:
        s.close()


def test_checkin_copied_once(databases):
    from services.credits.db import processed_events

    clock.set_now(dt.datetime(2026, 12, 10, 0, 40, tzinfo=dt.UTC))
    env = event(flags=["many_identities_same_address"])
    assert deliver(env) is True
    assert deliver(env) is False  # the same envelope again (relay resent it)
    [row] = records(databases)
    assert (row.checkin_id, row.activity_id, row.offering_id, row.institution_id, row.window_id, row.window_kind) == (
        1, 7, 101, 1, 3, "sign_in")
    assert (row.window_starts_at, row.window_ends_at) == (WINDOW_START, WINDOW_START + dt.timedelta(hours=1))
    assert row.window_title == "第一天上午 签到"
    assert row.scanned_at == WINDOW_START + dt.timedelta(minutes=5)
    assert row.received_at == dt.datetime(2026, 12, 10, 0, 40, tzinfo=dt.UTC)
    assert (row.name, row.title, row.unit, row.forced, row.flags) == (
        "张三", "主治医师", "西安市第一医院", False, ["many_identities_same_address"])
    assert row.trainee_key == pii.id_hash(ID_NUMBER)
    assert ID_NUMBER not in row.id_enc and pii.decrypt(row.id_enc) == ID_NUMBER
    assert pii.decrypt(row.mobile_enc) == "13912345678"
    s = databases["credits"].new_session()
    assert s.scalar(select(func.count()).select_from(processed_events)) == 1
    s.close()


def test_same_checkin_under_another_event_id_changes_nothing(databases):
    assert deliver(event(name="张三")) is True
    assert deliver(event(name="张三丰")) is True  # a new event id: processed, but the check-in is known
    [row] = records(databases)
    assert row.name == "张三"


def test_a_used_checkin_id_for_another_trainee_is_an_error_for_the_person_on_call(databases, caplog):
    """checkin's database restored alone from an older backup gives used ids to new check-ins: not silently
    taken for a repeat."""
    other = "610102199001011237"
    assert deliver(event(checkin_id=1)) is True
    caplog.set_level(logging.INFO, logger="services.credits")
    assert deliver(event(checkin_id=1, trainee_key=pii.id_hash(other), id_enc=pii.encrypt(other), name="李四")) is True
    [row] = records(databases)
    assert (row.checkin_id, row.name) == (1, "张三")
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "check-in id 1 is already kept for another trainee or window" in error.getMessage()
    assert other not in caplog.text and "李四" not in caplog.text


def test_second_checkin_of_a_trainee_in_a_window_keeps_the_first(databases):
    assert deliver(event(checkin_id=1)) is True
    assert deliver(event(checkin_id=2, scanned_at=WINDOW_START + dt.timedelta(minutes=9))) is True
    [row] = records(databases)
    assert row.checkin_id == 1


def test_windows_and_trainees_each_get_a_record(databases):
    other = "610102199001011237"
    deliver(event(checkin_id=1))
    deliver(event(checkin_id=2, trainee_key=pii.id_hash(other), id_enc=pii.encrypt(other), name="李四"))
    deliver(event(checkin_id=3, window_id=4, window_kind="sign_out", forced=True, flags=["forced"],
                  window_starts_at=WINDOW_START + dt.timedelta(hours=8),
                  window_ends_at=WINDOW_START + dt.timedelta(hours=9),
                  scanned_at=WINDOW_START + dt.timedelta(hours=8, minutes=1)))
    rows = records(databases)
    assert [(r.checkin_id, r.window_id, r.forced) for r in rows] == [(1, 3, False), (2, 3, False), (3, 4, True)]


def old_event(**over):
    """A checkin.recorded written before the window's title travelled (in an outbox, or redelivered): its payload
    has no window_title at all."""
    envelope = event(**over)
    envelope["payload"].pop("window_title")
    return envelope


def window_changed(**over):
    body = {"activity_id": 7, "offering_id": 101, "window_id": 3, "window_kind": "sign_in",
            "window_starts_at": WINDOW_START, "window_ends_at": WINDOW_START + dt.timedelta(hours=1), **over}
    return make_envelope("checkin.window_changed", "checkin", body)


def test_an_event_without_the_window_title_is_taken_and_a_rename_names_every_copy(databases):
    other = "610102199001011237"
    assert deliver(old_event(checkin_id=1)) is True
    assert deliver(old_event(checkin_id=2, trainee_key=pii.id_hash(other), id_enc=pii.encrypt(other),
                             name="李四")) is True
    assert deliver(event(checkin_id=3, window_id=4, window_title="第一天下午 签到")) is True
    assert [(r.checkin_id, r.window_title) for r in records(databases)] == [
        (1, None), (2, None), (3, "第一天下午 签到")]
    # an edit sent before the title travelled moves the times and leaves the title it does not know alone
    old_edit = window_changed(window_id=4, window_ends_at=WINDOW_START + dt.timedelta(minutes=50))
    assert "window_title" not in old_edit["payload"]
    assert deliver(old_edit) is True
    assert [(r.window_id, r.window_title, r.window_ends_at - WINDOW_START) for r in records(databases)][2] == (
        4, "第一天下午 签到", dt.timedelta(minutes=50))
    # the office renames window 3 in checkin: both copies of it take the title, window 4's keeps its own
    assert deliver(window_changed(window_title="第一天上午 签到（补）")) is True
    assert [(r.window_id, r.window_title) for r in records(databases)] == [
        (3, "第一天上午 签到（补）"), (3, "第一天上午 签到（补）"), (4, "第一天下午 签到")]


def test_window_out_of_order_is_refused_without_retry(databases):
    assert deliver(event(window_ends_at=WINDOW_START)) is True  # processed (a retry would not help), not stored
    assert records(databases) == []


def test_api_lists_masked_records(credits_app):
    deliver(event(checkin_id=1, forced=True, flags=["forced"]))
    resp = credits_app.test_client().get("/credits/api/activities/7/attendance", headers=bearer(INST_A))
    assert resp.status_code == 200, resp.json
    body = resp.json
    assert (body["activity_id"], body["institution_id"], body["count"]) == (7, 1, 1)
    [rec] = body["records"]
    assert rec["id_masked"] == pii.mask_id(ID_NUMBER) == "1101**********002X"
    assert rec["mobile_masked"] == "139****5678"
    assert (rec["checkin_id"], rec["window_id"], rec["name"], rec["forced"], rec["flags"]) == (
        1, 3, "张三", True, ["forced"])
    assert rec["flag_labels"] == ["由举办单位代为签到"]  # what the code means, as checkin's list says it
    assert (rec["window_kind"], rec["window_title"]) == ("sign_in", "第一天上午 签到")
    assert ID_NUMBER not in resp.get_data(as_text=True) and "13912345678" not in resp.get_data(as_text=True)
    assert "id_enc" not in rec and "trainee_key" not in rec
    missing = credits_app.test_client().get("/credits/api/activities/999/attendance", headers=bearer(REVIEWER))
    assert missing.status_code == 404 and "暂无考勤记录" in missing.json["error"]["message"]


@pytest.mark.parametrize("who,status", [("anonymous", 401), ("inst_a", 200), ("inst_b", 404), ("reviewer", 200),
                                        ("trainee", 403)])
def test_permissions(credits_app, who, status):
    deliver(event())
    principal = NAMES[who]
    resp = credits_app.test_client().get("/credits/api/activities/7/attendance",
                                         headers=bearer(principal) if principal else {})
    assert resp.status_code == status
    if status == 200:
        assert resp.json["count"] == 1
    else:
        assert resp.json["error"]["message"]


def test_a_message_of_checkins_is_copied_as_one_at_a_time_would(databases, caplog):
    """What the relay sends after a hall's burst: a message of many check-ins, applied by one handler call. Each is
    judged as if it came alone: a trainee's two windows open one account (with the first's details), a check-in
    sent again under another event id and a second check-in in a window are not copied, a known trainee's account
    is left alone, a window out of order is refused, an unreadable mobile opens the account without one."""
    from services.credits.accounts.models import TraineeAccount
    from services.credits.db import processed_events
    from services.credits.worker import celery
    from tests.credits.conftest import new_account

    known, other = "610102198001011234", "610102199001011237"
    new_account(databases, "单雄信", known, "Andere2026pw", "13700000000")
    first = event(checkin_id=1, name="张三")
    envs = [
        first,
        event(checkin_id=2, window_id=4, name="张三丰", mobile_enc=pii.encrypt("13800001111")),
        {**first, "id": "11111111-1111-4111-8111-111111111111"},  # the same check-in under another event id
        event(checkin_id=3, name="张叁", scanned_at=WINDOW_START + dt.timedelta(minutes=9)),  # 张三 again, window 3
        event(checkin_id=4, trainee_key=pii.id_hash(known), id_enc=pii.encrypt(known), name="单二哥"),
        event(checkin_id=5, window_id=5, window_ends_at=WINDOW_START),  # out of order
        event(checkin_id=6, trainee_key=pii.id_hash(other), id_enc=pii.encrypt(other), name="李四",
              mobile_enc="not-a-token"),
    ]
    caplog.set_level(logging.INFO, logger="services.credits")
    assert celery.tasks["credits.handle_events"].run(envs) == len(envs)
    assert [(r.checkin_id, r.window_id, r.name) for r in records(databases)] == [
        (1, 3, "张三"), (2, 4, "张三丰"), (4, 3, "单二哥"), (6, 3, "李四")]
    s = databases["credits"].new_session()
    try:
        accounts = {a.trainee_key: a for a in s.scalars(select(TraineeAccount))}
        assert s.scalar(select(func.count()).select_from(processed_events)) == len(envs)
    finally:
        s.close()
    assert set(accounts) == {pii.id_hash(k) for k in (ID_NUMBER, known, other)}
    mine = accounts[pii.id_hash(ID_NUMBER)]
    assert mine.name == "张三" and pii.decrypt(mine.mobile_enc) == "13912345678"
    theirs = accounts[pii.id_hash(known)]
    assert theirs.name == "单雄信" and theirs.password_hash is not None and theirs.must_change is False
    assert accounts[pii.id_hash(other)].mobile_enc is None and accounts[pii.id_hash(other)].name == "李四"
    said = caplog.text
    assert "check-in 1 is already recorded" in said
    assert "check-in 3 is a second one of a trainee in window 3 (kept check-in 1)" in said
    assert "window 5 ends before it starts" in said and "the mobile of check-in 6 cannot be decrypted" in said
    # one line for the message: the two accounts it opened, each with the check-in that opened it
    [opened] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("trainee accounts opened")]
    assert opened == (f"trainee accounts opened (account from check-in): {mine.id} from 1, "
                      f"{accounts[pii.id_hash(other)].id} from 6")
    assert celery.tasks["credits.handle_events"].run(envs) == len(envs)  # the message again: nothing changes
    assert len(records(databases)) == 4
