"""SMS verification codes, one set of rules for every service that sends them (institution login in projects,
忘记密码 of trainees in credits). Each service keeps its own table: `class SmsCode(SmsCodeMixin, Base)`.

Rules: 6-digit code (secrets), valid 5 minutes, at most 5 wrong tries, no resend to the same mobile within
60 s, a daily cap per mobile (CME_SMS_DAILY_CAP, default 10; Asia/Shanghai day). Only a keyed hash of each
code is stored, and the mobile only as its keyed hash. Every time is read from services.common.clock.now().

The code row is written in the caller's transaction; PendingSms.deliver() sends the message only after the
commit (DESIGN: messages after commit). A wrong try is raised as KeptError: the caller commits the count.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import CheckConstraint, Index, Integer, String, func, select
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column

from . import clock, pii, sms
from .config import env, get_settings
from .db import UTCDateTime, xact_lock
from .errors import AppError, KeptError
from .logs import brief

__all__ = ["CODE_TTL", "MAX_ATTEMPTS", "RESEND_AFTER", "PendingSms", "SmsCodeMixin", "code_hash", "daily_cap",
           "refuse_too_soon", "refuse_over_cap", "already_used", "expired", "too_many_attempts", "wrong_code",
           "forget_code", "issue_code", "verify_code"]

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
CODE_TTL = dt.timedelta(minutes=5)
RESEND_AFTER = dt.timedelta(seconds=60)


class SmsCodeMixin:
    """Columns and constraints of a service's sms_codes table. SMS_PURPOSES lists the purposes the table
    accepts (its CHECK constraint); a subclass sets its own."""

    __tablename__ = "sms_codes"
    SMS_PURPOSES: ClassVar[tuple[str, ...]] = ("login",)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str] = mapped_column(String(80))  # "inst:3:admin:7" | "reviewer:1" | "trainee:5"
    purpose: Mapped[str] = mapped_column(String(20), default="login")
    mobile_hash: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:  # noqa: N805 - declared_attr receives the class
        # new objects per table: a constraint belongs to exactly one table
        known = ", ".join(f"'{p}'" for p in cls.SMS_PURPOSES)
        return (
            CheckConstraint(f"attempts >= 0 AND attempts <= {MAX_ATTEMPTS}", name="attempts_range"),
            CheckConstraint("expires_at > created_at", name="expires_after_created"),
            CheckConstraint("length(code_hash) = 64", name="code_hash_len"),
            CheckConstraint(f"purpose IN ({known})", name="purpose_known"),
            # the resend and daily-cap checks read "codes of this mobile since T"; verify reads "latest of subject"
            Index(f"ix_{cls.__tablename__}_mobile_created", "mobile_hash", "created_at"),
            Index(f"ix_{cls.__tablename__}_subject_created", "subject", "created_at"),
        )


def daily_cap() -> int:
    try:
        return max(1, int(env("CME_SMS_DAILY_CAP", "10") or 10))
    except ValueError:
        return 10


def code_hash(subject: str, code: str) -> str:
    # keyed: a 6-digit code has only a million values, a plain hash would be reversed at once
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"sms:{subject}:{code}".encode(), hashlib.sha256).hexdigest()


def _lock_mobile(session: Session, mobile_h: str) -> None:
    """Serialise sends to one mobile so two quick clicks cannot both pass the 60 s and daily checks."""
    xact_lock(session, "sms:" + mobile_h)


@dataclass
class PendingSms:
    """A code row written in this transaction; deliver() only after the commit."""

    code_id: int
    mobile: str
    text: str
    params: tuple[str, ...]
    mobile_masked: str
    expires_at: dt.datetime

    def deliver(self, on_failure: Callable[[int], None]) -> None:
        try:
            sms.send_sms(self.mobile, self.text, self.params)
        except Exception as exc:  # noqa: BLE001 - any provider failure becomes one Chinese refusal
            log.warning("sms delivery failed for code %s: %s", self.code_id, brief(exc))
            on_failure(self.code_id)
            raise AppError(503, "sms_failed", "短信发送失败，请稍后重新获取验证码。") from None


def refuse_too_soon(last: dt.datetime | None, now: dt.datetime) -> None:
    """The 60 s rule: a code asked for again before RESEND_AFTER has passed since `last` is refused, saying how
    long to wait (also for an ID number without an account, which must be answered alike)."""
    if last is not None and now - last < RESEND_AFTER:
        wait = int((RESEND_AFTER - (now - last)).total_seconds()) + 1
        raise AppError(429, "sms_too_soon", f"验证码已发送，请 {wait} 秒后再重新获取。", retry_after=wait)


def refuse_over_cap(sent_today: int) -> None:
    cap = daily_cap()
    if sent_today >= cap:
        # the count starts again at the next local midnight
        midnight = clock.local_midnight_utc(clock.today_local() + dt.timedelta(days=1))
        raise AppError(429, "sms_daily_cap", f"该手机号今日获取验证码已达 {cap} 次上限，请明天再试。",
                       retry_after=math.ceil((midnight - clock.now()).total_seconds()))


def issue_code(session: Session, model: type[Any], subject: str, mobile: str, purpose: str = "login",
               action: str = "登录") -> PendingSms:
    """Write a new code for `subject` to `mobile` after the 60 s and daily-cap checks; `action` names what the
    code is for in the message (登录, 重置密码)."""
    mh = pii.mobile_hash(mobile)
    _lock_mobile(session, mh)
    now = clock.now()
    refuse_too_soon(session.scalar(select(func.max(model.created_at)).where(model.mobile_hash == mh)), now)
    since = clock.local_midnight_utc(clock.today_local())
    sent_today = session.scalar(select(func.count(model.id)).where(model.mobile_hash == mh,
                                                                   model.created_at >= since)) or 0
    refuse_over_cap(sent_today)
    code = f"{secrets.randbelow(10**6):06d}"
    row = model(subject=subject, purpose=purpose, mobile_hash=mh, code_hash=code_hash(subject, code),
                created_at=now, expires_at=now + CODE_TTL, attempts=0)
    session.add(row)
    session.flush()
    minutes = int(CODE_TTL.total_seconds() // 60)
    text_ = f"{sms.SIGN}您的{action}验证码为{code}，{minutes}分钟内有效。如非本人操作，请忽略本短信。"
    log.info("sms code %s issued for %s", row.id, subject)  # subject ids only: never the mobile or the code
    return PendingSms(row.id, mobile, text_, (code, str(minutes)), pii.mask_mobile(mobile), row.expires_at)


def forget_code(session: Session, model: type[Any], code_id: int) -> None:
    """Undo a code whose SMS never left, so the 60 s rule does not block the retry."""
    row = session.get(model, code_id)
    if row is not None:
        session.delete(row)


def not_sent() -> AppError:
    return AppError(400, "sms_not_sent", "请先点击“获取验证码”，再输入收到的验证码。", {"code": "请先获取验证码。"})


def already_used() -> AppError:
    # she did get a code: typing it again after it worked (a second tab, the back button) is not "never asked"
    return AppError(400, "sms_used", "验证码已使用或已过期，请重新获取验证码。", {"code": "验证码已使用或已过期。"})


def too_many_attempts(kept: bool = False) -> AppError:
    cls = KeptError if kept else AppError
    # a new code may be asked for at once, or after the 60 s rule at most: that bound is the wait
    return cls(429, "sms_too_many_attempts", f"验证码已输错 {MAX_ATTEMPTS} 次，已失效，请重新获取验证码。",
               {"code": "验证码已失效。"}, retry_after=int(RESEND_AFTER.total_seconds()))


def expired() -> AppError:
    return AppError(400, "sms_expired", "验证码已过期（5分钟内有效），请重新获取验证码。", {"code": "验证码已过期。"})


def wrong_code(attempts: int) -> AppError:
    """The refusal of a wrong code that was the `attempts`-th (counted: KeptError)."""
    left = MAX_ATTEMPTS - attempts
    if left <= 0:
        return too_many_attempts(kept=True)
    return KeptError(400, "sms_wrong_code", f"验证码不正确，还可以再试 {left} 次。", {"code": "验证码不正确。"})


def verify_code(session: Session, model: type[Any], subject: str, mobile: str, code: str,
                purpose: str = "login", not_before: dt.datetime | None = None) -> Any:
    """Mark the latest code of `subject` used if `code` is right; otherwise a refusal (KeptError when counted).
    A code written before `not_before` counts as never asked for."""
    row = session.scalar(select(model).where(model.subject == subject, model.purpose == purpose)
                         .order_by(model.created_at.desc(), model.id.desc()).limit(1).with_for_update())
    if row is None or row.mobile_hash != pii.mobile_hash(mobile) or (
            not_before is not None and row.created_at < not_before):
        raise not_sent()
    if row.used_at is not None:
        raise already_used()
    if row.attempts >= MAX_ATTEMPTS:
        raise too_many_attempts()
    if clock.now() >= row.expires_at:
        raise expired()
    if not hmac.compare_digest(row.code_hash, code_hash(subject, code)):
        row.attempts += 1
        raise wrong_code(row.attempts)
    row.used_at = clock.now()
    return row
