"""省级继续医学教育项目: the committee's approved annual catalogue, one row per project number."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.common import clock
from services.common.db import UTCDateTime

from ..db import Base
from ..institutions.models import Institution

MODES = ("线下", "线上", "线上线下")
ONLINE_MODES = ("线上", "线上线下")
CREDIT_CLASSES = ("Ⅰ类", "Ⅱ类")


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)  # 项目编号: re-imports update by it
    title: Mapped[str] = mapped_column(String(200))
    leader: Mapped[str] = mapped_column(String(50))  # 项目负责人
    # 主办单位 as written in the workbook; it must name a known institution (the tenant of the project)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id", ondelete="RESTRICT"), index=True)
    host_name: Mapped[str] = mapped_column(String(200))
    credit_class: Mapped[str] = mapped_column(String(10))
    credit_value: Mapped[Decimal] = mapped_column(Numeric(5, 1))
    hours: Mapped[Decimal] = mapped_column(Numeric(6, 1))
    offerings_count: Mapped[int] = mapped_column(Integer)  # 举办期数
    period_text: Mapped[str] = mapped_column(String(100), default="")  # 举办起止时间 (planned, free text)
    venue: Mapped[str] = mapped_column(String(200), default="")
    mode: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now, onupdate=clock.now)
    institution: Mapped[Institution] = relationship()

    __table_args__ = (
        CheckConstraint("year BETWEEN 2000 AND 2100", name="year_range"),
        CheckConstraint("length(number) >= 1", name="number_present"),
        CheckConstraint("credit_value > 0", name="credit_positive"),
        CheckConstraint("hours > 0", name="hours_positive"),
        CheckConstraint("offerings_count BETWEEN 1 AND 99", name="offerings_range"),
        CheckConstraint("mode IN ('线下', '线上', '线上线下')", name="mode_known"),
        CheckConstraint("credit_class IN ('Ⅰ类', 'Ⅱ类')", name="credit_class_known"),
    )


__all__ = ["Project", "MODES", "ONLINE_MODES", "CREDIT_CLASSES"]
