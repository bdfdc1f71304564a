"""Migration 7d3a9e1f2c46: a check-in's (window_id, activity_id) refers to its window and that window's own
activity. Upgrading keeps every check-in (on SQLite too, where changing a table rebuilds it), and afterwards the
database refuses a check-in naming another activity than its window's."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.conftest import fresh_service_db

UTC = dt.UTC
BEFORE = "5b2e8d4c7a31"


def _seed(engine) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    from services.checkin.activities.models import Activity
    from services.checkin.scans.models import Checkin
    from services.checkin.trainees.models import Trainee
    from services.checkin.windows.models import CheckinWindow

    now = dt.datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    with Session(bind=engine, expire_on_commit=False) as s:
        # the columns of that revision only (an ORM object would write the ones later migrations add, too)
        activities = [s.execute(Activity.__table__.insert().values(
            offering_id=n, institution_id=1, institution_name="某医院", project_id=n,
            project_number=f"2026-04-01-00{n}", project_title="项目", year=2026, seq=1, credit_class="Ⅰ类",
            credit_value=5, hours=10, starts_on=now.date(), ends_on=now.date(), venue="西安", mode="线下", schedule=[],
            approved_at=now).returning(Activity.__table__.c.id)).scalar_one() for n in (1, 2)]
        window = CheckinWindow(activity_id=activities[0], title="上午签到", kind="sign_in", starts_at=now,
                               ends_at=now + dt.timedelta(hours=2))
        trainee = Trainee(trainee_key="k1", id_enc="e", name="王小明", mobile_enc="m", mobile_hash="h", title="医师",
                          unit="某医院")
        s.add_all([window, trainee])
        s.flush()
        s.add(Checkin(activity_id=activities[0], window_id=window.id, trainee_id=trainee.id, scanned_at=now,
                      recorded_at=now, nonce="n1", flags=[]))
        s.commit()
        return activities[1], window.id, trainee.id


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_upgrade_keeps_checkins_and_ties_each_to_its_windows_activity(dialect, monkeypatch, tmp_path):
    with fresh_service_db("checkin", dialect, tmp_path, monkeypatch, "key") as cdb:
        cfg = cdb.alembic_config()
        command.upgrade(cfg, BEFORE)
        other_activity, window_id, trainee_id = _seed(cdb.engine)
        command.upgrade(cfg, "head")
        cdb.engine.dispose()
        keys = {fk["name"]: fk["constrained_columns"] for fk in inspect(cdb.engine).get_foreign_keys("checkins")}
        assert keys["fk_checkins_window_id_checkin_windows"] == ["window_id", "activity_id"]
        assert "fk_checkins_activity_id_activities" not in keys
        with cdb.engine.connect() as conn:
            assert conn.execute(text("SELECT nonce FROM checkins")).scalars().all() == ["n1"]
            with pytest.raises(IntegrityError):
                conn.execute(text(
                    "INSERT INTO checkins (activity_id, window_id, trainee_id, scanned_at, recorded_at, nonce, forced, "
                    "flags) VALUES (:a, :w, :t, :at, :at, 'n2', false, '[]')"),
                    {"a": other_activity, "w": window_id, "t": trainee_id, "at": dt.datetime.now(UTC)})
            conn.rollback()
        command.downgrade(cfg, BEFORE)  # and back: the two keys of before, the check-in still there
        cdb.engine.dispose()
        keys = {fk["name"]: fk["constrained_columns"] for fk in inspect(cdb.engine).get_foreign_keys("checkins")}
        assert keys["fk_checkins_activity_id_activities"] == ["activity_id"]
        assert keys["fk_checkins_window_id_checkin_windows"] == ["window_id"]
        with cdb.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM checkins")).scalar() == 1
