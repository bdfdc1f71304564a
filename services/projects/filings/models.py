"""期 (Offering) and 项目举办前登记 (Filing) with its JPG uploads."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.common import clock, pii
from services.common.db import UTCDateTime
from services.common.formats import seq_label

from ..catalogue.models import Project
from ..db import Base


class Offering(Base):
    __tablename__ = "offerings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="RESTRICT"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    project: Mapped[Project] = relationship()
    filing: Mapped[Filing | None] = relationship(back_populates="offering", uselist=False)

    __table_args__ = (UniqueConstraint("project_id", "seq"), CheckConstraint("seq BETWEEN 1 AND 99", name="seq_range"))

    @property
    def label(self) -> str:
        return seq_label(self.seq)


class Filing(Base):
    __tablename__ = "filings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offering_id: Mapped[int] = mapped_column(ForeignKey("offerings.id", ondelete="CASCADE"), unique=True)
    # denormalised tenant so every scoped query is one WHERE, and a check that nothing drifts is cheap
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id", ondelete="RESTRICT"), index=True)
    state: Mapped[str] = mapped_column(String(12), default="draft", index=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    starts_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    ends_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    venue: Mapped[str] = mapped_column(String(200), default="")
    mode: Mapped[str] = mapped_column(String(10))
    expected_trainees: Mapped[int | None] = mapped_column(Integer, nullable=True)
    contact_person: Mapped[str] = mapped_column(String(50), default="")
    contact_phone_enc: Mapped[str | None] = mapped_column(String(255), nullable=True)  # pii.encrypt
    schedule: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{date,start,end,title}] ISO strings
    return_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # 说明: the office's word to the committee (a date outside the catalogue's period, an answer to a return)
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    # what the last 上报 sent (filings.states.sent_as): the next one names in 办理记录 what the office changed
    submitted_as: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now, onupdate=clock.now)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # an approved 期 not held: the office's 取消举办 before it starts or the committee's 标记未举办 (offering.cancelled)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cancelled_by: Mapped[str | None] = mapped_column(String(12), nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    offering: Mapped[Offering] = relationship(back_populates="filing")
    uploads: Mapped[list[FilingUpload]] = relationship(back_populates="filing", order_by="FilingUpload.id",
                                                       cascade="all, delete-orphan")

    # optimistic locking: two reviewers (or a reviewer and a late edit) cannot both win
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("state IN ('draft', 'submitted', 'returned', 'approved', 'cancelled')", name="state_known"),
        # a cancelled 期 says when, by whom and why; no other state carries any of it
        CheckConstraint("(state = 'cancelled') = (cancelled_at IS NOT NULL AND cancel_reason IS NOT NULL "
                        "AND cancelled_by IN ('institution', 'committee'))", name="cancelled_complete"),
        CheckConstraint("mode IN ('线下', '线上', '线上线下')", name="mode_known"),
        CheckConstraint("ends_on IS NULL OR starts_on IS NULL OR ends_on >= starts_on", name="dates_ordered"),
        CheckConstraint("expected_trainees IS NULL OR expected_trainees > 0", name="trainees_positive"),
        CheckConstraint("state = 'draft' OR state = 'returned' OR (starts_on IS NOT NULL AND ends_on IS NOT NULL "
                        "AND contact_phone_enc IS NOT NULL AND expected_trainees IS NOT NULL)",
                        name="filed_complete"),
    )

    @property
    def project(self) -> Project:
        return self.offering.project

    @property
    def contact_phone(self) -> str:
        return pii.decrypt(self.contact_phone_enc) if self.contact_phone_enc else ""

    @property
    def contact_phone_masked(self) -> str:
        return pii.mask_mobile(self.contact_phone) if self.contact_phone_enc else ""

    def upload(self, kind: str) -> FilingUpload | None:
        return next((u for u in self.uploads if u.kind == kind), None)


class FilingUpload(Base):
    """One checked, re-encoded JPG; kept in the projects database so backups and access rules are one."""

    __tablename__ = "filing_uploads"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filing_id: Mapped[int] = mapped_column(ForeignKey("filings.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    filename: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    # read only when the file itself is sent: a page listing the files (and their sizes) never loads megabytes
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    filing: Mapped[Filing] = relationship(back_populates="uploads")

    __table_args__ = (
        UniqueConstraint("filing_id", "kind"),  # a new upload of a kind replaces the old one
        CheckConstraint("kind IN ('notice', 'agenda', 'online_supervision')", name="kind_known"),
        CheckConstraint("size > 0", name="size_positive"),
        CheckConstraint("length(sha256) = 64", name="sha_len"),
    )


__all__ = ["Offering", "Filing", "FilingUpload", "seq_label"]
