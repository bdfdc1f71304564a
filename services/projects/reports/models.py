"""执行情况反馈 (ExecutionReport) of one offering: five pages, checked uploads, a copy of the award list.

One report per offering (UNIQUE offering_id): 新建 works only when there is none, and 删除 (allowed before
提交) removes the row, its rows and its files; the audit log keeps what happened to it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.common import clock, pii
from services.common.db import UTCDateTime

from ..db import Base
from ..filings.models import Offering

__all__ = ["ExecutionReport", "ReportLecturer", "ReportUpload", "ReportTrainee", "ReportMaterial"]


class ExecutionReport(Base):
    __tablename__ = "execution_reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offering_id: Mapped[int] = mapped_column(ForeignKey("offerings.id", ondelete="RESTRICT"), unique=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id", ondelete="RESTRICT"), index=True)
    state: Mapped[str] = mapped_column(String(12), default="draft", index=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    # 第1页 执行情况
    actual_starts_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    actual_ends_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    venue: Mapped[str] = mapped_column(String(200), default="")
    mode: Mapped[str | None] = mapped_column(String(10), nullable=True)
    trainees_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    total_hours: Mapped[Decimal | None] = mapped_column(Numeric(6, 1), nullable=True)
    organiser: Mapped[str] = mapped_column(String(200), default="")
    contact_person: Mapped[str] = mapped_column(String(50), default="")
    contact_phone_enc: Mapped[str | None] = mapped_column(String(255), nullable=True)  # pii.encrypt
    # 第4页 考勤导入: which award list was copied
    attendance_imported_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attendance_as_of: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # 第5页 总结
    summary: Mapped[str] = mapped_column(Text, default="")
    return_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now, onupdate=clock.now)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    offering: Mapped[Offering] = relationship()
    lecturers: Mapped[list[ReportLecturer]] = relationship(order_by="ReportLecturer.position",
                                                           cascade="all, delete-orphan", passive_deletes=True)
    uploads: Mapped[list[ReportUpload]] = relationship(order_by="ReportUpload.id", cascade="all, delete-orphan",
                                                       passive_deletes=True)
    trainees: Mapped[list[ReportTrainee]] = relationship(order_by="ReportTrainee.id", cascade="all, delete-orphan",
                                                         passive_deletes=True)
    materials: Mapped[list[ReportMaterial]] = relationship(order_by="ReportMaterial.position",
                                                           cascade="all, delete-orphan", passive_deletes=True)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("state IN ('draft', 'submitted', 'returned', 'approved')", name="state_known"),
        CheckConstraint("mode IS NULL OR mode IN ('线下', '线上', '线上线下')", name="mode_known"),
        CheckConstraint("actual_ends_on IS NULL OR actual_starts_on IS NULL OR actual_ends_on >= actual_starts_on",
                        name="dates_ordered"),
        CheckConstraint("trainees_count IS NULL OR trainees_count > 0", name="trainees_positive"),
        CheckConstraint("total_hours IS NULL OR total_hours > 0", name="hours_positive"),
        CheckConstraint("state IN ('draft', 'returned') OR (actual_starts_on IS NOT NULL AND actual_ends_on IS NOT "
                        "NULL AND mode IS NOT NULL AND trainees_count IS NOT NULL AND total_hours IS NOT NULL "
                        "AND contact_phone_enc IS NOT NULL AND attendance_imported_at IS NOT NULL)",
                        name="submitted_complete"),
    )

    @property
    def contact_phone(self) -> str:
        return pii.decrypt(self.contact_phone_enc) if self.contact_phone_enc else ""

    @property
    def contact_phone_masked(self) -> str:
        return pii.mask_mobile(self.contact_phone) if self.contact_phone_enc else ""

    def uploads_of(self, kind: str) -> list[ReportUpload]:
        return [u for u in self.uploads if u.kind == kind]


class ReportLecturer(Base):
    """第2页 授课情况: one lecturer and session."""

    __tablename__ = "report_lecturers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("execution_reports.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(String(50))
    unit: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(String(200))
    hours: Mapped[Decimal] = mapped_column(Numeric(5, 1))

    __table_args__ = (CheckConstraint("hours > 0", name="hours_positive"),)


class ReportUpload(Base):
    """第3页 资料上传: a checked file (JPGs re-encoded) kept in the projects database."""

    __tablename__ = "report_uploads"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("execution_reports.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sha256: Mapped[str] = mapped_column(String(64))
    # read only when the file itself is sent: a page listing the files (and their sizes) never loads megabytes
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)

    __table_args__ = (
        CheckConstraint("kind IN ('schedule', 'notice', 'photo', 'exam')", name="kind_known"),
        CheckConstraint("kind = 'exam' OR content_type = 'image/jpeg'", name="images_are_jpeg"),
        CheckConstraint("size > 0", name="size_positive"),
        CheckConstraint("length(sha256) = 64", name="sha_len"),
        # one 日程 and one 会议通知 per report (a new one replaces the old); photos and 试题 may be several
        Index("uq_report_uploads_single_kind", "report_id", "kind", unique=True,
              postgresql_where=text("kind IN ('schedule', 'notice')"),
              sqlite_where=text("kind IN ('schedule', 'notice')")),
    )

    @property
    def is_image(self) -> bool:
        return self.content_type == "image/jpeg"


class ReportTrainee(Base):
    """第4页 考勤导入: one awarded trainee copied from AwardedTrainee at 导入 (replaced by the next 导入)."""

    __tablename__ = "report_trainees"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("execution_reports.id", ondelete="CASCADE"), index=True)
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

    __table_args__ = (UniqueConstraint("report_id", "trainee_key"),)

    @property
    def manual(self) -> bool:
        return self.method == "manual"

    @property
    def id_masked(self) -> str:
        return pii.mask_id(pii.decrypt(self.id_enc))


class ReportMaterial(Base):
    """第5页 教材."""

    __tablename__ = "report_materials"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("execution_reports.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    editor: Mapped[str] = mapped_column(String(100))
    publisher: Mapped[str] = mapped_column(String(200))
    year: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (CheckConstraint("year IS NULL OR year BETWEEN 1900 AND 2100", name="year_range"),)
