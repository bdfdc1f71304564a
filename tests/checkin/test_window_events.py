"""Credits keeps its own copy of every 刷卡周期 (考勤分析 lists one nobody scanned in), so checkin tells it of each
window made (from the 日程 at approval, or by the office) and each one deleted, through the outbox in the same
transaction as the change: a window never edited nor scanned in was unknown to credits, one deleted stayed listed."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from services.common import clock
from services.common.events import schema_of
from tests.checkin.test_windows_support import (
    INST_A,
    OPEN_AT,
    UTC,
    api_headers,
    client_for,
    csrf_for,
    make_activity,
    scan,
)


@pytest.fixture
def cdb(databases):
    return databases["checkin"]


def window_events(cdb) -> list[dict]:
    """checkin's outbox rows for credits about windows, oldest first, as loaded by the consumer's schema."""
    from services.checkin.db import outbox

    s = cdb.new_session()
    try:
        rows = s.execute(select(outbox.c.name, outbox.c.consumer, outbox.c.envelope)
                         .where(outbox.c.name.in_(["checkin.window_changed", "checkin.window_deleted"]))
                         .order_by(outbox.c.id)).all()
    finally:
        s.close()
    assert {consumer for _, consumer, _ in rows} <= {"credits"}
    return [{"name": name, **schema_of(name).load(json.loads(envelope)["payload"])} for name, _, envelope in rows]


def test_approval_sends_each_window_made_from_the_schedule(cdb):
    aid, wids = make_activity(cdb)
    events = window_events(cdb)
    assert [(e["name"], e["window_id"]) for e in events] == [("checkin.window_changed", w) for w in wids]
    first = events[0]
    assert (first["activity_id"], first["offering_id"], first["window_kind"], first["window_title"],
            first["window_starts_at"], first["window_ends_at"]) == (
        aid, 101, "sign_in", "开幕式与专题讲座", OPEN_AT, dt.datetime(2026, 12, 10, 4, 0, tzinfo=UTC))
    assert events[1]["window_title"] == "12月10日 14:00–17:30"  # the name the window was given, not the 日程's blank

    # a re-approval leaves the windows alone, and sends nothing about them
    clock.set_now(dt.datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    make_activity(cdb, venue="西安曲江国际会议中心")
    assert len(window_events(cdb)) == 3


def test_an_approval_that_comes_after_its_cancellation_makes_no_window_and_sends_none(cdb):
    from services.checkin.worker import handle_event
    from services.common.events import make_envelope

    assert handle_event.run(make_envelope("offering.cancelled", "projects", {
        "offering_id": 101, "institution_id": 1, "cancelled_at": dt.datetime(2026, 11, 21, tzinfo=UTC),
        "by": "institution", "reason": "专家无法到场"})) is True
    _, wids = make_activity(cdb)
    assert wids == [] and window_events(cdb) == []


def test_a_window_the_office_makes_is_sent_whole(checkin_app, cdb):
    aid, wids = make_activity(cdb, schedule=[])
    r = checkin_app.test_client().post(
        f"/checkin/api/activities/{aid}/windows", headers=api_headers("inst_a"),
        json={"title": "第二天下午 签退", "kind": "sign_out", "starts_at": "2026-12-11T07:00:00Z",
              "ends_at": "2026-12-11T08:00:00Z"})
    assert r.status_code == 201
    [made] = window_events(cdb)
    assert made["name"] == "checkin.window_changed"
    assert (made["window_id"], made["activity_id"], made["offering_id"], made["window_kind"], made["window_title"],
            made["window_starts_at"]) == (r.get_json()["id"], aid, 101, "sign_out", "第二天下午 签退",
                                          dt.datetime(2026, 12, 11, 7, 0, tzinfo=UTC))
    # refused (the same window again): nothing sent
    again = checkin_app.test_client().post(
        f"/checkin/api/activities/{aid}/windows", headers=api_headers("inst_a"),
        json={"title": "第二天下午 签退", "kind": "sign_out", "starts_at": "2026-12-11T07:00:00Z",
              "ends_at": "2026-12-11T08:00:00Z"})
    assert again.status_code == 409 and len(window_events(cdb)) == 1


def test_a_delete_is_sent_and_a_window_with_check_ins_cannot_be_deleted(checkin_app, cdb):
    aid, wids = make_activity(cdb)
    scan(cdb, wids[0], 1)
    clock.set_now(dt.datetime(2026, 12, 10, 5, 0, tzinfo=UTC))
    c = checkin_app.test_client()
    r = c.delete(f"/checkin/api/activities/{aid}/windows/{wids[0]}", headers=api_headers("inst_a"))
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "window_has_checkins"
    assert [e["name"] for e in window_events(cdb)] == ["checkin.window_changed"] * 3  # the refusal sent nothing
    r = c.delete(f"/checkin/api/activities/{aid}/windows/{wids[1]}", headers=api_headers("inst_a"))
    assert r.status_code == 204
    deleted = window_events(cdb)[-1]
    assert (deleted["name"], deleted["window_id"], deleted["activity_id"], deleted["offering_id"],
            deleted["window_title"], deleted["deleted_at"]) == (
        "checkin.window_deleted", wids[1], aid, 101, "12月10日 14:00–17:30", dt.datetime(2026, 12, 10, 5, 0,
                                                                                     tzinfo=UTC))
    # the page's 删除 sends it too
    r = client_for(checkin_app, "inst_a").post(f"/checkin/activities/{aid}/windows/{wids[2]}/delete",
                                               data={"csrf_token": csrf_for(INST_A)})
    assert r.status_code == 302
    assert [(e["name"], e["window_id"]) for e in window_events(cdb)[3:]] == [
        ("checkin.window_deleted", wids[1]), ("checkin.window_deleted", wids[2])]


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_the_migration_sends_the_windows_made_before_without_check_ins(dialect, monkeypatch, tmp_path):
    """Windows made before checkin sent creations: each one without check-ins goes to credits once (one with
    check-ins is known there through them)."""
    from alembic import command
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from services.checkin.activities.models import Activity
    from services.checkin.scans.models import Checkin
    from services.checkin.trainees.models import Trainee
    from services.checkin.windows.models import CheckinWindow
    from tests.conftest import fresh_service_db

    with fresh_service_db("checkin", dialect, tmp_path, monkeypatch, "winsend") as db:
        cfg = db.alembic_config()
        command.upgrade(cfg, "d8f2b5c9a3e6")
        with Session(bind=db.engine) as s:
            activity_id = s.execute(Activity.__table__.insert().values(
                offering_id=101, institution_id=1, institution_name="某医院", project_id=1,
                project_number="2026-04-01-001", project_title="项目", year=2026, seq=1, credit_class="Ⅰ类",
                credit_value=5, hours=10, starts_on=OPEN_AT.date(), ends_on=OPEN_AT.date(), venue="西安",
                mode="线下", schedule=[], approved_at=OPEN_AT).returning(Activity.__table__.c.id)).scalar_one()
            scanned = CheckinWindow(activity_id=activity_id, title="上午签到", kind="sign_in", starts_at=OPEN_AT,
                                    ends_at=OPEN_AT + dt.timedelta(hours=2))
            empty = CheckinWindow(activity_id=activity_id, title="下午签退", kind="sign_out",
                                  starts_at=OPEN_AT + dt.timedelta(hours=5), ends_at=OPEN_AT + dt.timedelta(hours=6))
            trainee = Trainee(trainee_key="k1", id_enc="e", name="王小明", mobile_enc="m", mobile_hash="h",
                              title="医师", unit="某医院")
            s.add_all([scanned, empty, trainee])
            s.flush()
            s.add(Checkin(activity_id=activity_id, window_id=scanned.id, trainee_id=trainee.id, scanned_at=OPEN_AT,
                          recorded_at=OPEN_AT, nonce="n1", flags=[]))
            s.commit()
            empty_id = empty.id
        command.upgrade(cfg, "head")
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT name, consumer, envelope, sent_at FROM outbox")).all()
        assert [(name, consumer, sent) for name, consumer, _, sent in rows] == [
            ("checkin.window_changed", "credits", None)]
        sent = schema_of("checkin.window_changed").load(json.loads(rows[0][2])["payload"])
        assert sent == {"activity_id": activity_id, "offering_id": 101, "window_id": empty_id,
                        "window_kind": "sign_out", "window_title": "下午签退",
                        "window_starts_at": OPEN_AT + dt.timedelta(hours=5),
                        "window_ends_at": OPEN_AT + dt.timedelta(hours=6)}
        command.downgrade(cfg, "d8f2b5c9a3e6")
        command.upgrade(cfg, "head")
