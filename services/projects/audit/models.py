from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.audit import AuditMixin, record_audit
from services.common.auth import Principal

from ..db import Base


class AuditLog(AuditMixin, Base):
    """Every state transition and sensitive action of the projects service."""


def record(session: Session, actor: Principal | None, object_type: str, object_id: int, action: str,
           from_state: str | None = None, to_state: str | None = None, reason: str | None = None) -> AuditLog:
    return record_audit(session, AuditLog, actor, object_type, object_id, action, from_state, to_state, reason)


def history_of(session: Session, object_type: str, object_id: int) -> list[AuditLog]:
    """What was done to one object, oldest first (the 办理记录 of a page)."""
    return histories_of(session, object_type, [object_id])[object_id]


def histories_of(session: Session, object_type: str, object_ids: list[int]) -> dict[int, list[AuditLog]]:
    """history_of for many objects in one query (a JSON list of whole reports). A deleted draft's entries are not
    its: the embedded SQLite gives a deleted row's id to the next new one."""
    found: dict[int, list[AuditLog]] = {i: [] for i in object_ids}
    if object_ids:
        for row in session.scalars(select(AuditLog).where(AuditLog.object_type == object_type,
                                                          AuditLog.object_id.in_(object_ids)).order_by(AuditLog.id)):
            found[row.object_id].append(row)
    for object_id, rows in found.items():
        deleted = [i for i, r in enumerate(rows) if r.action == "delete"]
        if deleted:
            found[object_id] = rows[deleted[-1] + 1:]
    return found
