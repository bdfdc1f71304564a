"""AttendanceRecord: credits' own copy of one check-in (event "checkin.recorded"), the input of the
attendance analysis (考勤分析) and of 授分 by venue attendance. ID number and mobile stay encrypted
as they travelled; the trainee's key is the keyed hash of the ID number (the same in every service)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Integer, Select, String, UniqueConstraint, case, func, select
from sqlalchemy.orm import Mapped, mapped_column

from services.common import clock
from services.common.db import UTCDateTime

from ..db import Base

__all__ = ["ActivityWindow", "AttendanceRecord", "scans_by_offering"]


class AttendanceRecord(Base):
    """One trainee's check-in in one window (刷卡周期) of an activity (继教活动), as checkin stored it."""

    __tablename__ = "attendance_records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    checkin_id: Mapped[int] = mapped_column(Integer, unique=True)  # checkin's id: a redelivery finds it
    activity_id: Mapped[int] = mapped_column(Integer, index=True)
    offering_id: Mapped[int] = mapped_column(Integer, index=True)
    institution_id: Mapped[int] = mapped_column(Integer, index=True)
    window_id: Mapped[int] = mapped_column(Integer)
    window_kind: Mapped[str] = mapped_column(String(10))
    window_starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    window_ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # the window's 标题 ("第一天上午 签到"); None on copies made from events written before it travelled
    window_title: Mapped[str | None] = mapped_column(String(200), nullable=True)
    trainee_key: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(100))
    id_enc: Mapped[str] = mapped_column(String(400))
    mobile_enc: Mapped[str] = mapped_column(String(400))
    title: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(200))
    scanned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)

    __table_args__ = (
        UniqueConstraint("window_id", "trainee_key"),  # one check-in per trainee per window, as in checkin
        CheckConstraint("window_ends_at > window_starts_at", name="window_in_order"),
        CheckConstraint("window_kind IN ('sign_in', 'sign_out')", name="window_kind_known"),
    )


class ActivityWindow(Base):
    """Credits' copy of one 刷卡周期 of an activity, as the events tell of it (checkin.recorded and
    checkin.window_changed, which checkin sends when a window is made and when it is edited): 考勤分析 lists a window
    nobody scanned in too, so the office sees it exists and 须在全部所选刷卡周期内签到 is read against every window, not
    only those with scans. A window deleted in checkin (checkin.window_deleted) keeps its row with deleted_at: it is
    no longer listed, and an event about it that arrives later (a late creation, an edit sent before the delete)
    never brings it back. Windows made before checkin sent creations were sent once by checkin's migration
    e7a3c9d1f5b2; one deleted before it stays listed (with 0 scans)."""

    __tablename__ = "activity_windows"
    window_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # checkin's id
    activity_id: Mapped[int] = mapped_column(Integer)
    offering_id: Mapped[int] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(10))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    title: Mapped[str | None] = mapped_column(String(200), nullable=True)  # None: known only from older events
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    # set by checkin.window_deleted, never cleared (checkin never uses a window id again)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="window_in_order"),
        CheckConstraint("kind IN ('sign_in', 'sign_out')", name="window_kind_known"),
    )


def scans_by_offering(trainee_key: Any) -> Select[Any]:
    """A trainee's check-ins per offering (`trainee_key`: a value or a bind parameter): offering_id, checkins (代签
    included), forced (代签), sign_outs (scans of 签退 windows: a 签到 and its 签退 are not two 签到), first_scan,
    last_scan; on the trainee_key index. Her 达标情况查询 and the committee's 学员账号 read the same figures."""
    records = AttendanceRecord.__table__
    return (select(records.c.offering_id, func.count().label("checkins"),
                   func.count(case((records.c.forced, 1))).label("forced"),
                   func.count(case((records.c.window_kind == "sign_out", 1))).label("sign_outs"),
                   func.min(records.c.scanned_at).label("first_scan"),
                   func.max(records.c.scanned_at).label("last_scan"))
            .where(records.c.trainee_key == trainee_key).group_by(records.c.offering_id))
