"""继教活动 (Activity): an approved offering as the checkin service sees it.

Rows are written only by the consumers of "offering.approved" and "offering.cancelled" (see handlers.py); the
pages and the JSON API read them through ``activity_query`` so both scope and filter alike.

A cancelled activity (取消举办 by the office, 标记未举办 by the committee) takes no more check-ins, 代签, window
changes nor projector: every one of those asks ``Activity.refuse_if_cancelled`` (the phone's scan function in
scans/sql.py says the same in SQL). Its check-ins stay, listed and exportable: they are history.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, Integer, Numeric, Select, String, Text, false, func, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from services.common import clock
from services.common.auth import Principal
from services.common.db import UTCDateTime
from services.common.errors import AppError
from services.common.events import CANCELLED_BY
from services.common.formats import seq_label
from services.common.inputs import half_width
from services.common.sorting import zh_sort_key

from ..db import Base

__all__ = ["Activity", "CancelledOffering", "MODES", "ACTIVITY_CANCELLED", "CANCEL_LABELS", "activity_query",
           "institution_choices", "seq_label", "fmt_decimal"]

MODES = ("线下", "线上", "线上线下")
# who ended the 期 (services.common.events.CANCELLED_BY) -> the state as the pages name it
CANCEL_LABELS = {"institution": "已取消举办", "committee": "已标记未举办"}
ACTIVITY_CANCELLED = "activity_cancelled"


class Activity(Base):
    """继教活动: one approved offering (期) of a provincial project, listed under 继教活动-项目管理."""

    __tablename__ = "activities"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offering_id: Mapped[int] = mapped_column(Integer, unique=True)
    institution_id: Mapped[int] = mapped_column(Integer, index=True)
    institution_name: Mapped[str] = mapped_column(String(200))
    project_id: Mapped[int] = mapped_column(Integer)
    project_number: Mapped[str] = mapped_column(String(64), index=True)
    project_title: Mapped[str] = mapped_column(String(300))
    year: Mapped[int] = mapped_column(Integer, index=True)
    seq: Mapped[int] = mapped_column(Integer)
    credit_class: Mapped[str] = mapped_column(String(20))
    credit_value: Mapped[Decimal] = mapped_column(Numeric(6, 2))
    hours: Mapped[Decimal] = mapped_column(Numeric(6, 2))
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date] = mapped_column(Date)
    venue: Mapped[str] = mapped_column(String(300))
    mode: Mapped[str] = mapped_column(String(10))
    schedule: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    approved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now, onupdate=clock.now)
    # offering.cancelled: final, never cleared (a later offering.approved leaves these alone)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cancelled_by: Mapped[str | None] = mapped_column(String(20), nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        CheckConstraint("ends_on >= starts_on", name="dates_in_order"),
        CheckConstraint("(cancelled_at IS NULL) = (cancelled_by IS NULL) "
                        "AND (cancelled_at IS NULL) = (cancel_reason IS NULL)", name="cancellation_complete"),
        CheckConstraint("cancelled_by IS NULL OR cancelled_by IN ('institution', 'committee')",
                        name="cancelled_by_known"),
        CheckConstraint("seq >= 1", name="seq_positive"),
        CheckConstraint("credit_value >= 0", name="credit_value_not_negative"),
        CheckConstraint("hours >= 0", name="hours_not_negative"),
        CheckConstraint("mode IN ('线下', '线上', '线上线下')", name="mode_known"),
    )

    @property
    def seq_label(self) -> str:
        return seq_label(self.seq)

    @property
    def period_label(self) -> str:
        if self.starts_on == self.ends_on:
            return self.starts_on.isoformat()
        return f"{self.starts_on.isoformat()} 至 {self.ends_on.isoformat()}"

    @property
    def credit_label(self) -> str:
        return f"{self.credit_class} {fmt_decimal(self.credit_value)} 分"

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None

    @property
    def cancel_label(self) -> str | None:
        """已取消举办 / 已标记未举办, or None while the 期 stands."""
        return CANCEL_LABELS.get(self.cancelled_by or "")

    @property
    def cancelled_by_label(self) -> str:
        """Who ended it: 举办机构取消举办 / 省继续医学教育委员会标记未举办."""
        return CANCELLED_BY.get(self.cancelled_by or "", "")

    @property
    def cancel_sentence(self) -> str:
        """"本期已取消举办（2026-12-01）" as the refusals begin."""
        return f"本期{self.cancel_label}（{clock.fmt(self.cancelled_at, '%Y-%m-%d')}）" if self.cancelled else ""

    def refuse_if_cancelled(self, what: str, status: int = 409) -> None:
        """The one rule of a cancelled 期: `what` (不能代签, 不能修改刷卡周期 …) is refused with its own code."""
        if self.cancelled:
            raise AppError(status, ACTIVITY_CANCELLED, f"{self.cancel_sentence}，{what}。")


class CancelledOffering(Base):
    """An offering.cancelled of an offering that is not an activity yet (the relay delivered it before its
    offering.approved): the approval that comes later makes the activity cancelled, with these values."""

    __tablename__ = "cancelled_offerings"
    offering_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # projects' id
    institution_id: Mapped[int] = mapped_column(Integer)
    cancelled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    cancelled_by: Mapped[str] = mapped_column(String(20))
    cancel_reason: Mapped[str] = mapped_column(Text)

    __table_args__ = (CheckConstraint("cancelled_by IN ('institution', 'committee')", name="cancelled_by_known"),)


def activity_query(principal: Principal, q: str | None = None, year: int | None = None,
                   institution_id: int | None = None) -> Select[tuple[Activity]]:
    """The activities a principal may see, filtered: an institution its own only, a reviewer all. `q` finds a 期 by
    its project number, its title or its host's name (as the 期 was approved under)."""
    stmt = select(Activity)
    if principal.role == "institution":
        stmt = stmt.where(Activity.institution_id == principal.institution_id)
    elif principal.role != "reviewer":
        stmt = stmt.where(false())  # nobody else lists activities (views refuse them before this)
    elif institution_id is not None:
        stmt = stmt.where(Activity.institution_id == institution_id)
    if q:
        q = half_width(q)  # a project number typed in 全角 digits is the same number
        stmt = stmt.where(or_(Activity.project_number.icontains(q, autoescape=True),
                              Activity.project_title.icontains(q, autoescape=True),
                              Activity.institution_name.icontains(q, autoescape=True)))
    if year is not None:
        stmt = stmt.where(Activity.year == year)
    return stmt.order_by(Activity.starts_on.desc(), Activity.id.desc())


def institution_choices(session: Session) -> list[tuple[int, str]]:
    """The committee's 申办机构 filter: every host with an activity once, by the name of its latest approval
    (checkin knows a host only from its offering.approved events), in pinyin order."""
    names: dict[int, tuple[dt.datetime, str]] = {}
    for iid, name, at in session.execute(
            select(Activity.institution_id, Activity.institution_name, func.max(Activity.approved_at))
            .group_by(Activity.institution_id, Activity.institution_name)):
        if iid not in names or at > names[iid][0]:  # a renamed host: its newest name
            names[iid] = (at, name)
    return sorted(((iid, name) for iid, (_, name) in names.items()), key=lambda c: (zh_sort_key(c[1]), c[0]))


def fmt_decimal(value: Decimal | None) -> str:
    """10.00 -> "10", 0.50 -> "0.5"."""
    if value is None:
        return ""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
