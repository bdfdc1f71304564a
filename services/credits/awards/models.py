"""Models of 学分管理 → 项目参加者授分.

AttendanceAnalysis: one 考勤分析 the institution confirmed (确定): the ticked windows with their ranges and
the rule. Granting recomputes the valid attendees from the latest one, so a check-in that arrived late is
picked up by granting again, and nobody is granted twice (one award per trainee per offering).

AwardExclusion: a trainee the institution unticked in 筛选授分人员, with the reason (also in the audit log).

CreditAward: credit granted to one trainee for one offering (授分). ``method`` says how: by venue attendance
(根据会场考勤授分) or manual entry (手工录入学分, never valid credit: it never counts toward compliance, never
becomes effective and never gets a certificate). ``state``: pending until the committee approves the
offering's execution report, then effective; withdrawn (撤销, with a reason): by the institution while the report is
not submitted, by the committee at any time (an effective one keeps its effective_at). A withdrawal is never undone
in place: 恢复授分 (pending, the institution) and 恢复 (effective, the committee) add a new award, the withdrawn one
staying as history (and its certificate revoked).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from services.common import clock
from services.common.db import UTCDateTime

from ..db import Base

__all__ = ["METHODS", "PRINTABLE_AFTER", "STATES", "AttendanceAnalysis", "AwardExclusion", "CreditAward"]

METHODS = {"attendance": "根据会场考勤授分", "manual": "手工录入学分"}
STATES = {"pending": "待生效", "effective": "已生效", "withdrawn": "已撤销"}
# Certificates print from 4 weeks after the offering ends (DESIGN §1 stage 5).
PRINTABLE_AFTER = dt.timedelta(weeks=4)


class AttendanceAnalysis(Base):
    """A confirmed 考勤分析 of one activity (the offering's check-in activity)."""

    __tablename__ = "attendance_analyses"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offering_id: Mapped[int] = mapped_column(Integer, index=True)
    activity_id: Mapped[int] = mapped_column(Integer)
    institution_id: Mapped[int] = mapped_column(Integer)
    # [{"window_id": int, "from_ts": ISO-8601 UTC, "to_ts": ISO-8601 UTC}, ...]
    windows: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    rule_mode: Mapped[str] = mapped_column(String(10))
    rule_n: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pairs_required: Mapped[bool] = mapped_column(Boolean, default=False)
    include_forced: Mapped[bool] = mapped_column(Boolean, default=False)
    valid_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    created_by: Mapped[str] = mapped_column(String(120))

    __table_args__ = (
        CheckConstraint("rule_mode IN ('all', 'at_least')", name="rule_mode_known"),
        CheckConstraint("(rule_mode = 'all' AND rule_n IS NULL) OR (rule_mode = 'at_least' AND rule_n >= 1)",
                        name="rule_n_fits_mode"),
    )


class AwardExclusion(Base):
    """A valid attendee the institution unticked in 筛选授分人员 (not granted), with the reason."""

    __tablename__ = "award_exclusions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offering_id: Mapped[int] = mapped_column(Integer)
    trainee_key: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    created_by: Mapped[str] = mapped_column(String(120))

    __table_args__ = (
        UniqueConstraint("offering_id", "trainee_key"),
        CheckConstraint("length(reason) > 0", name="reason_given"),
    )


YEAR_OF_DAY = {"postgresql": "CAST(EXTRACT(YEAR FROM activity_date) AS INTEGER)",
               "sqlite": "CAST(strftime('%Y', activity_date) AS INTEGER)"}  # SQLite keeps a date as ISO text


class CreditAward(Base):
    """Credit granted to one trainee for one offering; the offering's terms are copied, so an award reads alone."""

    __tablename__ = "credit_awards"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offering_id: Mapped[int] = mapped_column(Integer)
    institution_id: Mapped[int] = mapped_column(Integer, index=True)
    trainee_key: Mapped[str] = mapped_column(String(64))  # pii.id_hash(ID number)
    name: Mapped[str] = mapped_column(String(100))
    id_enc: Mapped[str] = mapped_column(String(400))
    mobile_enc: Mapped[str | None] = mapped_column(String(400), nullable=True)
    title: Mapped[str] = mapped_column(String(100), default="")
    unit: Mapped[str] = mapped_column(String(200), default="")
    project_number: Mapped[str] = mapped_column(String(64))
    project_title: Mapped[str] = mapped_column(String(300))
    institution_name: Mapped[str] = mapped_column(String(200), default="")
    credit_class: Mapped[str] = mapped_column(String(20))
    credit_value: Mapped[Decimal] = mapped_column(Numeric(6, 2))
    offering_starts_on: Mapped[dt.date] = mapped_column(Date)
    offering_ends_on: Mapped[dt.date] = mapped_column(Date)
    activity_date: Mapped[dt.date] = mapped_column(Date)
    year: Mapped[int] = mapped_column(Integer)  # the activity date's year: the year the credit counts for
    method: Mapped[str] = mapped_column(String(12))
    state: Mapped[str] = mapped_column(String(12), default="pending")
    analysis_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    granted_by: Mapped[str] = mapped_column(String(120))
    effective_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    withdraw_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # when the trainee was told by SMS that the certificate can be printed (services/credits/notices)
    printable_notice_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # 恢复: the withdrawn effective award this one gives back (the committee's mistake undone); one restore each
    restored_from: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        # one award per trainee per offering (DESIGN §3); a withdrawn one is history, and may be followed by a new
        # grant (a 手工录入 withdrawn so that valid attendance can be granted)
        Index("uq_credit_awards_current", "offering_id", "trainee_key", unique=True,
              postgresql_where=text("state != 'withdrawn'"), sqlite_where=text("state != 'withdrawn'")),
        Index("ix_credit_awards_trainee_year", "trainee_key", "year"),
        Index("uq_credit_awards_restored_from", "restored_from", unique=True),
        CheckConstraint("method IN ('attendance', 'manual')", name="method_known"),
        CheckConstraint("state IN ('pending', 'effective', 'withdrawn')", name="state_known"),
        CheckConstraint("NOT (method = 'manual' AND state = 'effective')", name="manual_never_effective"),
        CheckConstraint("(state = 'withdrawn') = (withdrawn_at IS NOT NULL AND withdraw_reason IS NOT NULL)",
                        name="withdrawal_has_reason"),
        # an effective award keeps its effective_at when the committee later withdraws it
        CheckConstraint("state != 'effective' OR effective_at IS NOT NULL", name="effective_has_time"),
        CheckConstraint("credit_value >= 0", name="credit_value_not_negative"),
        CheckConstraint("activity_date BETWEEN offering_starts_on AND offering_ends_on",
                        name="activity_date_in_offering"),
        # the year a credit counts in (达标情况查询, 年度统计) is its activity date's: a correction of the day that
        # left the year behind counted a 31 December credit in the next year; each dialect reads a date's year
        CheckConstraint(f"year = {YEAR_OF_DAY['postgresql']}", name="year_of_activity_date").ddl_if(
            dialect="postgresql"),
        CheckConstraint(f"year = {YEAR_OF_DAY['sqlite']}", name="year_of_activity_date").ddl_if(dialect="sqlite"),
    )

    @property
    def counts_as_valid(self) -> bool:
        """Manual entries are never valid credit; withdrawn awards are nothing."""
        return self.method == "attendance" and self.state != "withdrawn"

    @property
    def printable_from(self) -> dt.date:
        return self.offering_ends_on + PRINTABLE_AFTER
