"""The trainee as checkin knows them: an identity keyed by the keyed hash of the ID number, and the
WeChat accounts (openids) bound to it. One WeChat account binds to one ID number (unique openid)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.common import clock, pii
from services.common.db import UTCDateTime

from ..db import Base


class Trainee(Base):
    __tablename__ = "trainees"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trainee_key: Mapped[str] = mapped_column(String(64), unique=True)  # pii.id_hash(ID number)
    id_enc: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(50))
    mobile_enc: Mapped[str] = mapped_column(String(255))
    mobile_hash: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(30))
    unit: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now, onupdate=clock.now)
    bindings: Mapped[list[WeChatBinding]] = relationship(back_populates="trainee")

    @property
    def id_number(self) -> str:
        return pii.decrypt(self.id_enc)

    @property
    def masked_id(self) -> str:
        return pii.mask_id(self.id_number)

    @property
    def masked_mobile(self) -> str:
        return pii.mask_mobile(pii.decrypt(self.mobile_enc))


class WeChatBinding(Base):
    __tablename__ = "wechat_bindings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    openid: Mapped[str] = mapped_column(String(128), unique=True)
    trainee_id: Mapped[int] = mapped_column(ForeignKey("trainees.id", ondelete="CASCADE"), index=True)
    bound_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    # bound while another WeChat account was bound to the same ID number (a new phone, or someone scanning for a
    # colleague): every check-in through it is marked id_on_new_wechat, not only the first
    later: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    trainee: Mapped[Trainee] = relationship(back_populates="bindings")
