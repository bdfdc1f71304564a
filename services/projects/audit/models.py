from __future__ import annotations

from sqlalchemy.orm import Session

from services.common.audit import AuditMixin, record_audit
from services.common.auth import Principal

from ..db import Base


class AuditLog(AuditMixin, Base):
    """Every state transition and sensitive action of the projects service."""


def record(session: Session, actor: Principal | None, object_type: str, object_id: int, action: str,
           from_state: str | None = None, to_state: str | None = None, reason: str | None = None) -> AuditLog:
    return record_audit(session, AuditLog, actor, object_type, object_id, action, from_state, to_state, reason)
