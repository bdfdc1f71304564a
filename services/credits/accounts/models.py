"""TraineeAccount: a trainee's login to credits (学员账号). The username is the ID number, found by its keyed
hash (the trainee's key in every service); ID number and mobile are kept encrypted, never in clear.

password_hash stays NULL while the initial password (the pinyin of the name) is in force; must_change
forces a new password at the next login. failed_attempts and locked_until implement the lock-out.

SmsCode: the codes of 忘记密码 (purpose "reset"), with the same columns and rules as the institution login codes
(services.common.sms_codes): a keyed hash of each code, the mobile only as its keyed hash."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.common import clock
from services.common.db import UTCDateTime
from services.common.sms_codes import SmsCodeMixin

from ..db import Base

__all__ = ["SmsCode", "TraineeAccount"]


class TraineeAccount(Base):
    """One trainee's account, created the first time credits learns of the trainee."""

    __tablename__ = "trainee_accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trainee_key: Mapped[str] = mapped_column(String(64), unique=True)  # pii.id_hash(ID number)
    id_enc: Mapped[str] = mapped_column(String(400))
    name: Mapped[str] = mapped_column(String(100))
    mobile_enc: Mapped[str | None] = mapped_column(String(400), nullable=True)
    mobile_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)  # NULL: initial password
    must_change: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now, onupdate=clock.now)

    @property
    def initial_password_in_force(self) -> bool:
        return self.password_hash is None


class SmsCode(SmsCodeMixin, Base):
    """One 6-digit 忘记密码 code sent to the mobile on record of one trainee account (subject "trainee:<id>")."""

    SMS_PURPOSES = ("reset",)
