"""SMS login codes: only a keyed hash of each code is stored, and the mobile only as its keyed hash.
Columns, constraints and rules are services.common.sms_codes'; this is projects' own table."""

from __future__ import annotations

from services.common.sms_codes import MAX_ATTEMPTS, SmsCodeMixin

from ..db import Base


class SmsCode(SmsCodeMixin, Base):
    """One 6-digit code sent to one mobile for one login subject (an admin or a reviewer)."""

    SMS_PURPOSES = ("login",)


__all__ = ["MAX_ATTEMPTS", "SmsCode"]
