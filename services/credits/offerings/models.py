"""OfferingCredit: what credits needs to know of an approved offering for the later stages
(attendance analysis, 授分, compliance): the project's credit class and value, its hours and dates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.common import clock
from services.common.db import UTCDateTime
from services.common.formats import seq_label

from ..db import Base

__all__ = ["CANCELLED", "REPORT_WAIT", "CancelledOffering", "OfferingCredit", "wait_key"]


# Why an awarded credit is not effective yet, by the offering's report state: 达标情况查询 and the desk's 学员账号
# page tell a doctor the same sentence (an approved report's credits are effective; in between, the event is on its
# way, and the desk says so itself)
# way, and the desk says so itself). A cancelled 期 (offering.cancelled) never gets a report, so its pending awards
# never take effect: the sentence says who ended it, under the key wait_key() gives.
REPORT_WAIT = {"none": "举办机构尚未提交执行情况反馈", "submitted": "执行情况反馈已提交，待委员会审核",
               "returned": "执行情况反馈已退回举办机构修改",
               "cancelled:institution": "本期已取消举办，不会提交执行情况反馈，学分不会生效",
               "cancelled:committee": "本期已被继续医学教育委员会标记为未举办，学分不会生效"}
# the 期's state in a word, where pages and lists show it beside the offering
CANCELLED = {"institution": "本期已取消举办", "committee": "本期已标记未举办"}
BRIEF_REASON = 40  # a list row shows this much of a cancellation's reason (up to 500), the whole on hover


def wait_key(report_state: str | None, cancelled_by: str | None) -> str:
    """The key of REPORT_WAIT for an offering: its cancellation first (final), else its report's state."""
    return f"cancelled:{cancelled_by}" if cancelled_by else (report_state or "")


# a cancellation is its time, who and why together, or nothing (the migration states the same text)
CANCEL_SET_TOGETHER = ("(cancelled_at IS NULL AND cancelled_by IS NULL AND cancel_reason IS NULL) OR "
                       "(cancelled_at IS NOT NULL AND cancelled_by IN ('institution', 'committee') "
                       "AND cancel_reason IS NOT NULL)")


class OfferingCredit(Base):
    """The credit terms of one approved offering (期), copied from the event "offering.approved"."""

    __tablename__ = "offering_credits"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offering_id: Mapped[int] = mapped_column(Integer, unique=True)
    institution_id: Mapped[int] = mapped_column(Integer, index=True)
    institution_name: Mapped[str] = mapped_column(String(200), default="")
    project_number: Mapped[str] = mapped_column(String(64), index=True)
    project_title: Mapped[str] = mapped_column(String(300))
    # the 期 number (第一期 …); null on offerings approved before credits kept it
    seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    credit_class: Mapped[str] = mapped_column(String(20))
    credit_value: Mapped[Decimal] = mapped_column(Numeric(6, 2))
    hours: Mapped[Decimal] = mapped_column(Numeric(6, 2))
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date] = mapped_column(Date)
    approved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # the execution report as projects announced it (report.*): once submitted, the award list is locked
    report_state: Mapped[str] = mapped_column(String(12), default="none")
    report_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    report_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # offering.cancelled: the 期 is not (or was not) held; final, nothing clears it
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cancelled_by: Mapped[str | None] = mapped_column(String(12), nullable=True)  # institution | committee
    cancel_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now, onupdate=clock.now)

    __table_args__ = (
        CheckConstraint("ends_on >= starts_on", name="dates_in_order"),
        CheckConstraint("credit_value >= 0", name="credit_value_not_negative"),
        CheckConstraint("hours >= 0", name="hours_not_negative"),
        CheckConstraint("seq IS NULL OR seq >= 1", name="seq_positive"),
        CheckConstraint("report_state IN ('none', 'submitted', 'returned', 'approved')", name="report_state_known"),
        CheckConstraint(CANCEL_SET_TOGETHER, name="cancellation_complete"),
    )

    @property
    def seq_label(self) -> str:
        return seq_label(self.seq) if self.seq else ""

    @property
    def awards_locked(self) -> bool:
        """The report is submitted or approved: the award list it carries must not change underneath it."""
        return self.report_state in ("submitted", "approved")

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None

    @property
    def cancelled_label(self) -> str:
        """本期已取消举办 / 已标记未举办, or "" for a 期 not cancelled."""
        return CANCELLED.get(self.cancelled_by or "", "")

    def cancelled_text(self, brief: bool = False) -> str:
        """The state with its day and reason, as the award pages and (`brief`: the reason cut) the offering list
        show it; checkin's pages say it the same way."""
        if not self.cancelled:
            return ""
        reason = self.cancel_reason or ""
        if brief and len(reason) > BRIEF_REASON:
            reason = reason[:BRIEF_REASON] + "…"
        day = clock.to_local(self.cancelled_at).date().isoformat()  # type: ignore[arg-type]
        return f"{self.cancelled_label}（{day}，原因：{reason}）"


class CancelledOffering(Base):
    """An offering.cancelled whose offering credits does not hold yet (its offering.approved is retried or delivered
    again after it): the approval, when it comes, creates the offering already cancelled."""

    __tablename__ = "cancelled_offerings"
    offering_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    cancelled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    cancelled_by: Mapped[str] = mapped_column(String(12))
    cancel_reason: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("cancelled_by IN ('institution', 'committee')", name="cancelled_by_known"),
    )
