"""刷卡周期 (CheckinWindow): a time window of an activity in which scans count."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.common import clock
from services.common.audit import AuditMixin
from services.common.db import UTCDateTime

from ..activities.models import Activity
from ..db import Base

KINDS = {"sign_in": "签到", "sign_out": "签退"}


class CheckinWindow(Base):
    __tablename__ = "checkin_windows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10), default="sign_in")
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    from_schedule: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now, onupdate=clock.now)
    version: Mapped[int] = mapped_column(Integer, default=1)
    activity: Mapped[Activity] = relationship()

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("kind IN ('sign_in', 'sign_out')", name="kind_known"),
        # what a check-in's (window_id, activity_id) refers to: its window, and that window's own activity. An
        # index, not a constraint: SQLite adds one without rebuilding the table (a rebuild drops the old table, and
        # its ON DELETE CASCADE would take every check-in with it)
        Index("ux_checkin_windows_id_activity_id", "id", "activity_id", unique=True),
    )

    @property
    def kind_label(self) -> str:
        return KINDS[self.kind]

    def is_open(self, at: dt.datetime) -> bool:
        return self.starts_at <= at <= self.ends_at


class AuditLog(AuditMixin, Base):
    """Window edits after scans, forced check-ins, refusals worth keeping: who, when, why."""
