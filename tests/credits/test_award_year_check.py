"""The database refuses a credit award whose year is not its activity date's (达标情况查询 and 年度统计 count by
the year): 更正活动日期 once moved the day and left the year, counting a 31 December credit in the next year.
Built by the migrations on both databases the suite runs on (SQLite is the local run's embedded default)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.conftest import fresh_service_db


def _award(day: dt.date, year: int):  # type: ignore[no-untyped-def]
    from services.credits.awards.models import CreditAward

    return CreditAward(offering_id=1, institution_id=1, trainee_key="k" * 64, name="曾小明", id_enc="e",
                       project_number="2026-01-01-001", project_title="跨年项目", institution_name="西安市第一医院",
                       credit_class="Ⅰ类", credit_value=Decimal("5"), offering_starts_on=dt.date(2026, 12, 31),
                       offering_ends_on=dt.date(2027, 1, 1), activity_date=day, year=year, method="attendance",
                       state="pending", granted_by="inst:1:admin:1")


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_an_award_s_year_is_its_activity_date_s(dialect, monkeypatch, tmp_path):
    with fresh_service_db("credits", dialect, tmp_path, monkeypatch, "year") as cdb:
        command.upgrade(cdb.alembic_config(), "head")
        with Session(bind=cdb.engine) as s:
            s.add(_award(dt.date(2026, 12, 31), 2026))
            s.commit()
            s.add(_award(dt.date(2026, 12, 31), 2027))
            with pytest.raises(IntegrityError):
                s.commit()
            s.rollback()
            with pytest.raises(IntegrityError):  # the day moved without the year
                s.execute(text("UPDATE credit_awards SET activity_date = :d"), {"d": dt.date(2027, 1, 1)})
            s.rollback()
            s.execute(text("UPDATE credit_awards SET activity_date = :d, year = 2027"), {"d": dt.date(2027, 1, 1)})
            s.commit()
            assert s.execute(text("SELECT year FROM credit_awards")).scalar_one() == 2027
