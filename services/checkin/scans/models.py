"""考勤 / 签到 (Checkin) and refused scan attempts, with pretix-style reason codes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.common import clock
from services.common.db import UTCDateTime
from services.common.events import CHECKIN_FLAGS

from ..db import Base
from ..trainees.models import Trainee
from ..windows.models import CheckinWindow
from .sql import install

# Why a scan was refused, or why a stored check-in is flagged for the institution.
REASONS = {
    "token_malformed": "二维码无效，请扫描现场大屏上的二维码。",
    "token_forged": "二维码无效，请扫描现场大屏上的二维码。",
    "token_wrong_activity": "该二维码不属于本次活动。",
    "token_wrong_window": "该二维码不属于当前签到时段。",
    "token_expired": "二维码已过期，请扫描大屏上最新的二维码。",
    "token_future": "二维码时间异常，请扫描大屏上最新的二维码。",
    "ticket_expired": "扫码后超过有效时间未完成签到，请重新扫描大屏上的二维码。",
    "not_in_window": "当前不在签到时段内。",
    "snapshot_user": "当前为微信快照页，无法签到（未使用微信完整服务）。",
    "wechat_bound_to_other": "该微信号已绑定其他身份证号码，不能为他人签到。",
    "id_name_mismatch": "填写的姓名与该身份证号码已登记的姓名不一致。",
    # the phone page and API say which (本期已取消举办 / 已标记未举办, with the date): phone.views.refusal_words
    "activity_cancelled": "本期已取消举办或已标记未举办，不能签到。",
    **CHECKIN_FLAGS,
}


class Checkin(Base):
    __tablename__ = "checkins"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    activity_id: Mapped[int] = mapped_column(Integer, index=True)
    window_id: Mapped[int] = mapped_column(Integer)
    trainee_id: Mapped[int] = mapped_column(ForeignKey("trainees.id"), index=True)
    scanned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # when the QR was first opened
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    nonce: Mapped[str] = mapped_column(String(64), unique=True)  # the form's idempotency key
    openid: Mapped[str | None] = mapped_column(String(128), nullable=True)
    address_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    forced_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    forced_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    trainee: Mapped[Trainee] = relationship()
    window: Mapped[CheckinWindow] = relationship()

    __table_args__ = (
        # the window, and the activity as that window's own (it could differ before): one key to the window's row
        # instead of one to it and one to the activity's. Every scan of a hall locks the same parent rows (FOR KEY
        # SHARE), each lock shared with the scans in flight a new multixact: with one such key, not two, the scan
        # function made ~5 % more calls/s in pgbench. The activity exists: the window's own key says so.
        ForeignKeyConstraint(["window_id", "activity_id"], ["checkin_windows.id", "checkin_windows.activity_id"],
                             ondelete="CASCADE"),
        UniqueConstraint("window_id", "trainee_id"),  # one check-in per trainee per window
        # "many identities from one address": the newest check-ins of an address first, read a few at a time (a
        # hall behind one NAT has thousands; an index on the address alone made every scan read all of them)
        Index("ix_checkins_address_hash_recorded_at", "address_hash", "recorded_at"),
        CheckConstraint("(forced AND forced_reason IS NOT NULL) OR (NOT forced)", name="forced_has_reason"),
    )


class RefusedScan(Base):
    """A scan that was refused, kept so the institution can see why people could not check in."""

    __tablename__ = "refused_scans"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now, index=True)
    activity_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    window_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(String(40))
    openid: Mapped[str | None] = mapped_column(String(128), nullable=True)
    trainee_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    address_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


def _install_functions(target: Any, connection: Any, **_kw: Any) -> None:
    """create_all (tests, a fresh demo) makes the scan function as the migration does."""
    install(connection)


event.listen(Base.metadata, "after_create", _install_functions)
