"""Event handlers of this feature: "credits.effective" upserts each effective award by credits' award id,
so a redelivery or a repeated list changes nothing and a corrected value replaces the old one (a revocation stays);
"credits.withdrawn" revokes the award, and so its certificate, from the time of withdrawal (an award certs never
had changes nothing)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common import clock
from services.common.audit import record_audit
from services.common.db import insert_for

from ..audit import AuditLog
from .models import EffectiveAward

log = logging.getLogger(__name__)

FIELDS = ("award_id", "trainee_key", "name", "id_enc", "project_number", "project_title", "institution_name",
          "starts_on", "ends_on", "credit_class", "credit_value", "activity_date", "effective_at")


def on_credits_effective(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    rows = [{"offering_id": payload["offering_id"], "institution_id": payload["institution_id"],
             "received_at": clock.now(), **{k: a[k] for k in FIELDS}} for a in payload["awards"]]
    if not rows:
        return
    stmt = insert_for(session, EffectiveAward)
    keep = {k: getattr(stmt.excluded, k) for k in FIELDS if k != "award_id"}
    for start in range(0, len(rows), 1000):
        session.execute(stmt.on_conflict_do_update(index_elements=["award_id"], set_=keep), rows[start:start + 1000])
    log.info("credits.effective %s: %s awards of offering %s kept", envelope.get("id"), len(rows),
             payload["offering_id"])


def on_credits_withdrawn(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    award = session.scalars(select(EffectiveAward).where(EffectiveAward.award_id == payload["award_id"])
                            .with_for_update()).first()
    if award is None:
        log.info("credits.withdrawn %s: award %s unknown here, nothing to revoke", envelope.get("id"),
                 payload["award_id"])
        return
    if award.revoked_at is not None:
        return  # revoked already: the first withdrawal time stands
    award.revoked_at, award.revoke_reason = payload["withdrawn_at"], payload["reason"] or "撤销"
    record_audit(session, AuditLog, None, "award", award.award_id, "revoke", "effective", "revoked",
                 payload["reason"] or None)
    log.info("credits.withdrawn %s: award %s revoked", envelope.get("id"), award.award_id)


HANDLERS: dict[str, Callable[[Session, dict[str, Any], dict[str, Any]], None]] = {
    "credits.effective": on_credits_effective,
    "credits.withdrawn": on_credits_withdrawn,
}
