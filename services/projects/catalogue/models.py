"""省级继续医学教育项目: the committee's approved annual catalogue, one row per project number."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, LargeBinary, Numeric, String, Text
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

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


class _KeptFile:
    """What the two catalogue jobs (import, export) say of their stored file once the retention
    (catalogue/retention.py) cleared it."""

    cleared_at: dt.datetime | None
    finished_at: dt.datetime | None
    created_at: dt.datetime

    @property
    def kept_days(self) -> int | None:
        """Days the file was kept after the job ended, once the retention cleared it (what its page says)."""
        if self.cleared_at is None:
            return None
        return (self.cleared_at - (self.finished_at or self.created_at)).days


IMPORT_STATES = {"queued": "排队中", "running": "导入中", "done": "导入完成", "failed": "导入失败"}


class CatalogueImport(_KeptFile, Base):
    """One 导入 of a catalogue workbook: the web request stores the file and the projects-jobs worker applies it
    (catalogue/tasks.py), so 20000 rows never hold a web request; the clerk follows it on its own page."""

    __tablename__ = "catalogue_imports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    year: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the page's 年度 (rows may carry their own)
    actor: Mapped[str] = mapped_column(String(120))  # Principal.describe() of the clerk who uploaded
    actor_name: Mapped[str] = mapped_column(String(100))  # as 办理记录 names them
    filename: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(Integer)
    # the uploaded workbook, read by the worker only; dropped CME_CATALOGUE_FILES_DAYS after the job ended
    data: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))
    state: Mapped[str] = mapped_column(String(20), default="queued")
    rows_total: Mapped[int | None] = mapped_column(Integer, nullable=True)  # known once the workbook is read
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    # ImportResult.as_dict(): up to 20000 row errors, so read only by the pages that show it
    result: Mapped[dict[str, Any] | None] = deferred(mapped_column(JSON, nullable=True))
    # the whole error list (and the updates) as .xlsx, made by the worker: the page lists only the first rows
    report_xlsx: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # why it failed, in words the clerk can act on
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now, index=True)
    enqueued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # when the retention (catalogue/retention.py) dropped the uploaded file; the row, its result and audit stay
    cleared_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name="state_known"),
        CheckConstraint("(data IS NULL) = (cleared_at IS NOT NULL)", name="file_or_cleared"),
        CheckConstraint("cleared_at IS NULL OR state IN ('done', 'failed')", name="cleared_when_ended"),
        CheckConstraint("year IS NULL OR year BETWEEN 2000 AND 2100", name="year_range"),
        CheckConstraint("size >= 0 AND rows_done >= 0 AND (rows_total IS NULL OR rows_done <= rows_total)",
                        name="progress_in_range"),
        CheckConstraint("(state = 'done') = (result IS NOT NULL)", name="done_has_result"),
        CheckConstraint("(state = 'failed') = (error IS NOT NULL)", name="failed_has_error"),
        CheckConstraint("state = 'queued' OR started_at IS NOT NULL", name="started_when_claimed"),
    )

    @property
    def state_label(self) -> str:
        return IMPORT_STATES[self.state]


EXPORT_STATES = {"queued": "排队中", "running": "导出中", "done": "导出完成", "failed": "导出失败",
                 "replaced": "已被新的导出替换"}


class CatalogueExport(_KeptFile, Base):
    """One 导出 Excel of a long filtered list (above exports.DIRECT_MAX rows): the web request stores the filter as
    the clerk had it, the projects-jobs worker writes the .xlsx (catalogue/tasks.py) and the clerk downloads it from
    the job's page. A clerk keeps one file: when a later export of theirs is done, this one's is removed; a file kept
CME_CATALOGUE_FILES_DAYS after its export ended is removed too (cleared_at)."""

    __tablename__ = "catalogue_exports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor: Mapped[str] = mapped_column(String(120), index=True)  # Principal.describe(): whose file it is
    actor_name: Mapped[str] = mapped_column(String(100))
    # the list's filter at the click (q, year, institution_id, status): the rows are the list so filtered
    filters: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20), default="queued")
    rows_total: Mapped[int] = mapped_column(Integer)  # counted at the click; the worker writes what it finds
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    data: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))  # the .xlsx, once done
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now, index=True)
    enqueued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # when the retention (catalogue/retention.py) dropped the file of a done export; the row stays
    cleared_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        CheckConstraint("state IN ('queued', 'running', 'done', 'failed', 'replaced')", name="state_known"),
        CheckConstraint("rows_total >= 0 AND rows_done >= 0 AND rows_done <= rows_total", name="progress_in_range"),
        CheckConstraint("(state = 'done' AND cleared_at IS NULL) = (data IS NOT NULL)", name="done_has_file"),
        CheckConstraint("cleared_at IS NULL OR state IN ('done', 'replaced')", name="cleared_when_written"),
        CheckConstraint("(state IN ('done', 'replaced')) = (size IS NOT NULL)", name="written_has_size"),
        CheckConstraint("(state = 'failed') = (error IS NOT NULL)", name="failed_has_error"),
        CheckConstraint("state = 'queued' OR started_at IS NOT NULL", name="started_when_claimed"),
    )

    @property
    def state_label(self) -> str:
        return EXPORT_STATES[self.state]


__all__ = ["Project", "CatalogueImport", "IMPORT_STATES", "CatalogueExport", "EXPORT_STATES", "MODES", "ONLINE_MODES",
           "CREDIT_CLASSES"]
