"""The audit trail every service keeps in its own database: who, when, what, from, to, why."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column

from . import clock
from .auth import Principal
from .db import UTCDateTime


class AuditMixin:
    """Columns of a service's audit_log table (subclass with the service's Base)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now, index=True)
    actor: Mapped[str] = mapped_column(String(120))
    actor_name: Mapped[str] = mapped_column(String(100), default="")
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str | None] = mapped_column(String(40), nullable=True)
    to_state: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


def record_audit(session: Session, model: type[Any], actor: Principal | None, object_type: str, object_id: int,
                 action: str, from_state: str | None = None, to_state: str | None = None,
                 reason: str | None = None) -> Any:
    entry = model(actor=actor.describe() if actor else "system", actor_name=actor.audit_name() if actor else "系统",
                  object_type=object_type, object_id=object_id, action=action, from_state=from_state,
                  to_state=to_state, reason=reason, at=clock.now())
    session.add(entry)
    return entry
