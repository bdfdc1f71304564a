from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.common import clock, pii
from services.common.db import UTCDateTime
from services.common.inputs import folded

from ..db import Base


def name_key(name: str) -> str:
    """An institution's name as names are compared: 西安市第一医院（西院区） with half-width brackets or a stray space
    is the same institution (creating, importing, renaming and the catalogue's 主办单位 alike)."""
    return folded(name)


class Institution(Base):
    """申办机构: a host institution; the tenant every institution-owned row belongs to."""

    __tablename__ = "institutions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # the password is the one the committee typed (新建, 重置密码) until the office sets its own (修改密码)
    password_initial: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    # names before a 更正名称: the committee's catalogue spreadsheets may still say them
    former_names: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    admins: Mapped[list[InstitutionAdmin]] = relationship(back_populates="institution", order_by="InstitutionAdmin.id")

    __table_args__ = (CheckConstraint("length(account) >= 3", name="account_len"),)


class InstitutionAdmin(Base):
    """机构负责人: a responsible person who receives the SMS codes of a login."""

    __tablename__ = "institution_admins"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id", ondelete="CASCADE"), index=True)
    real_name: Mapped[str] = mapped_column(String(50))
    mobile_enc: Mapped[str] = mapped_column(String(255))
    mobile_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    institution: Mapped[Institution] = relationship(back_populates="admins")

    __table_args__ = (UniqueConstraint("institution_id", "mobile_hash"),)

    @property
    def subject(self) -> str:
        """The session subject of this person's logins (services.common.auth ends sessions by it)."""
        return f"inst:{self.institution_id}:admin:{self.id}"

    @property
    def mobile(self) -> str:
        return pii.decrypt(self.mobile_enc)

    @property
    def masked_mobile(self) -> str:
        return pii.mask_mobile(self.mobile)


class Reviewer(Base):
    """A member of the committee's office (陕西省继续医学教育委员会) who reviews filings and reports."""

    __tablename__ = "reviewers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(50))
    password_hash: Mapped[str] = mapped_column(String(255))
    mobile_enc: Mapped[str] = mapped_column(String(255))
    mobile_hash: Mapped[str] = mapped_column(String(64), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)

    @property
    def mobile(self) -> str:
        return pii.decrypt(self.mobile_enc)


# Accounts are typed in any case (XJTU1 or xjtu1) and must name one login: the database refuses a second account
# differing only in case, also when two clerks save them at the same moment.
Index("uq_institutions_account_ci", func.lower(Institution.account), unique=True)
Index("uq_reviewers_account_ci", func.lower(Reviewer.account), unique=True)
