"""ReminderSent: one row per reminder message that left (or is leaving) for one responsible person.

The unique key (kind, object_id, stage, due_on, admin_id) is what makes a rerun, or a second beat process,
send nothing twice: the row is inserted (and committed) before the SMS goes, and removed again if the SMS
could not be sent, so the next run retries. ``due_on`` is part of the key so that a draft filing whose start
date is moved gets reminders for its new deadline. ``admin_id`` is not a foreign key: the record of what was
sent outlives a responsible person who is later removed.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Date, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.common import clock
from services.common.db import UTCDateTime

from ..db import Base

__all__ = ["ReminderSent", "KINDS", "STAGES"]

KINDS = ("report", "filing")  # report: object_id = offering id (a report may not exist yet); filing: filing id
STAGES = ("before", "due")  # before: 3 days (or less) before the deadline; due: on the deadline day


class ReminderSent(Base):
    __tablename__ = "reminders_sent"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    object_id: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(10))
    due_on: Mapped[dt.date] = mapped_column(Date)
    admin_id: Mapped[int] = mapped_column(Integer)
    institution_id: Mapped[int] = mapped_column(Integer, index=True)
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)

    __table_args__ = (
        UniqueConstraint("kind", "object_id", "stage", "due_on", "admin_id"),
        CheckConstraint("kind IN ('report', 'filing')", name="kind_known"),
        CheckConstraint("stage IN ('before', 'due')", name="stage_known"),
    )
