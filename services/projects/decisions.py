"""projects.decided, written beside a committee decision by both state machines (filings and reports): the
institution is told by SMS once the decision commits (reminders.handlers)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.common.events import emit

from .db import outbox

DECISIONS = {"approve": "approved", "return": "returned", "mark_unheld": "unheld"}


def emit_decided(session: Session, kind: str, action: str, object_id: int, offering_id: int,
                 institution_id: int) -> None:
    """For an action of the committee (审批通过, 退回, 标记未举办); other actions tell nobody."""
    if action in DECISIONS:
        emit(session, outbox, "projects", "projects.decided",
             {"kind": kind, "decision": DECISIONS[action], "object_id": object_id, "offering_id": offering_id,
              "institution_id": institution_id})
