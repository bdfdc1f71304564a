"""EffectiveAward: certs' own copy of an effective award, with everything its certificate shows, so
certs renders and verifies certificates without asking any other service (DESIGN §3)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.common import clock
from services.common.db import UTCDateTime

from ..db import Base

__all__ = ["CorrectedName", "EffectiveAward", "WithdrawnAward"]


class EffectiveAward(Base):
    __tablename__ = "effective_awards"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    award_id: Mapped[int] = mapped_column(Integer, unique=True)  # credits' award id: a repeat finds it
    offering_id: Mapped[int] = mapped_column(Integer, index=True)
    institution_id: Mapped[int] = mapped_column(Integer, index=True)
    trainee_key: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(100))
    id_enc: Mapped[str] = mapped_column(String(400))
    project_number: Mapped[str] = mapped_column(String(64))
    project_title: Mapped[str] = mapped_column(String(300))
    institution_name: Mapped[str] = mapped_column(String(200))
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date] = mapped_column(Date)
    credit_class: Mapped[str] = mapped_column(String(20))
    credit_value: Mapped[Decimal] = mapped_column(Numeric(6, 2))
    activity_date: Mapped[dt.date] = mapped_column(Date)
    effective_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    # credits.withdrawn: the award (and the certificate made of it) is revoked from this time on
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoke_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        CheckConstraint("ends_on >= starts_on", name="dates_in_order"),
        CheckConstraint("credit_value >= 0", name="credit_value_not_negative"),
        CheckConstraint("(revoked_at IS NULL) = (revoke_reason IS NULL)", name="revocation_has_reason"),
    )


class WithdrawnAward(Base):
    """A credits.withdrawn of an award certs does not hold: a pending award's (nothing to do), or an effective one's
    whose credits.effective comes after it (that event failed and is retried, or was lost and is delivered again).
    Such an award arrives revoked, from the time of withdrawal: its certificate never reads as valid."""

    __tablename__ = "withdrawn_awards"
    award_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # credits' award id
    withdrawn_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text)


class CorrectedName(Base):
    """The latest credits.name_corrected of a trainee, with when credits made it: a credits.effective sent before
    it but applied after it (retried, delivered again) brings the name as it was, and the correction must win."""

    __tablename__ = "corrected_names"
    trainee_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    corrected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
