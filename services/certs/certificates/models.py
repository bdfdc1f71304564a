"""Certificate: one per effective award, numbered when first exported, its rendered page kept for ever.
ExportJob: one export (a trainee's ticked certificates, or every printable certificate of an institution's offering),
rendered by the worker of queue "certs-render"; its PDF is the stored pages merged in the order asked for."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, deferred, mapped_column

from services.common import clock
from services.common.db import UTCDateTime

from ..db import Base

__all__ = ["Certificate", "ExportJob", "JOB_STATES", "JOB_KINDS"]

JOB_STATES = {"queued": "排队中", "running": "正在生成", "done": "已生成", "failed": "生成失败"}
JOB_KINDS = ("trainee", "institution")


class Certificate(Base):
    __tablename__ = "certificates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # the credit's year + 12 random base32 characters (60 bits): printed on the certificate, not guessable
    number: Mapped[str] = mapped_column(String(16), unique=True)
    award_id: Mapped[int] = mapped_column(ForeignKey("effective_awards.award_id", ondelete="RESTRICT"), unique=True)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    # the certificate's single page, rendered once and never replaced (written only WHERE pdf IS NULL)
    pdf: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))
    pdf_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rendered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        CheckConstraint("length(number) = 16", name="number_length"),
        CheckConstraint("(pdf IS NULL) = (rendered_at IS NULL) AND (pdf IS NULL) = (pdf_sha256 IS NULL)",
                        name="render_complete"),
    )


class ExportJob(Base):
    __tablename__ = "export_jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    trainee_key: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    institution_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    offering_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(120))
    award_ids: Mapped[list[int]] = mapped_column(JSON)  # in the order the PDF shows them (once done: those in it)
    # the selection asked for, in its order, kept as asked: one left out of the PDF (withdrawn meanwhile, too long
    # for a page) is no longer in award_ids, and the same selection asked again must still find this export
    asked_ids: Mapped[list[int]] = mapped_column(JSON)
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(20), default="queued")
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    enqueued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    pdf: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))
    pdf_size: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (
        CheckConstraint("kind IN ('trainee', 'institution')", name="kind_known"),
        CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name="state_known"),
        CheckConstraint("(kind = 'trainee' AND trainee_key IS NOT NULL) OR (kind = 'institution' AND "
                        "institution_id IS NOT NULL AND offering_id IS NOT NULL)", name="owner_given"),
        CheckConstraint("total > 0 AND done >= 0 AND done <= total", name="progress_in_range"),
        CheckConstraint("(state = 'done') = (pdf IS NOT NULL)", name="done_has_pdf"),
    )

    @property
    def state_label(self) -> str:
        return JOB_STATES[self.state]
