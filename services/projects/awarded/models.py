"""AwardedList / AwardedTrainee: the latest award list credits announced for an offering (credits.granted).

A newer event replaces the whole list (never merged), so 导入 in the execution report always shows what
credits holds now; an older event arriving late is ignored (``as_of`` is the event's time)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.common.db import UTCDateTime

from ..db import Base

__all__ = ["AwardedList", "AwardedTrainee"]


class AwardedList(Base):
    __tablename__ = "awarded_lists"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offering_id: Mapped[int] = mapped_column(Integer, unique=True)
    institution_id: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer, default=0)
    as_of: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AwardedTrainee(Base):
    __tablename__ = "awarded_trainees"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("awarded_lists.id", ondelete="CASCADE"), index=True)
    award_id: Mapped[int] = mapped_column(Integer)
    trainee_key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    id_enc: Mapped[str] = mapped_column(String(400))
    title: Mapped[str] = mapped_column(String(100), default="")
    unit: Mapped[str] = mapped_column(String(200), default="")
    credit_class: Mapped[str] = mapped_column(String(20))
    credit_value: Mapped[Decimal] = mapped_column(Numeric(6, 2))
    activity_date: Mapped[dt.date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(12))
    state: Mapped[str] = mapped_column(String(12))
    forced: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # her 代签 in the offering

    __table_args__ = (UniqueConstraint("list_id", "trainee_key"),)
