"""SMS login codes: only a keyed hash of each code is stored, and the mobile only as its keyed hash."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.common import clock
from services.common.db import UTCDateTime

from ..db import Base

MAX_ATTEMPTS = 5


class SmsCode(Base):
    """One 6-digit code sent to one mobile for one login subject (an admin or a reviewer)."""

    __tablename__ = "sms_codes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(String(80))  # "inst:3:admin:7" | "reviewer:1"
    purpose: Mapped[str] = mapped_column(String(20), default="login")
    mobile_hash: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        CheckConstraint(f"attempts >= 0 AND attempts <= {MAX_ATTEMPTS}", name="attempts_range"),
        CheckConstraint("expires_at > created_at", name="expires_after_created"),
        CheckConstraint("length(code_hash) = 64", name="code_hash_len"),
        CheckConstraint("purpose IN ('login')", name="purpose_known"),
        # the resend and daily-cap checks read "codes of this mobile since T"; verify reads "latest of subject"
        Index("ix_sms_codes_mobile_created", "mobile_hash", "created_at"),
        Index("ix_sms_codes_subject_created", "subject", "created_at"),
    )


__all__ = ["SmsCode"]
