"""Event handlers of this feature: "credits.effective" upserts each effective award by credits' award id,
so a redelivery or a repeated list changes nothing and a corrected value replaces the old one (a revocation stays);
"credits.withdrawn" revokes the award, and so its certificate, from the time of withdrawal (of an award certs does not
hold it keeps a note, WithdrawnAward: a credits.effective that comes later, retried or delivered again, brings that
award revoked); "credits.name_corrected" puts the trainee's corrected name on her awards, and is kept (CorrectedName)
so that an award sent before the correction but applied after it takes the corrected name too. Where what a
certificate shows changed, its stored page is dropped: the next export renders it again, same number."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.common import clock
from services.common.audit import record_audit
from services.common.db import insert_for
from services.common.events import parse_time

from ..audit import AuditLog
from ..certificates.models import Certificate
from .models import CorrectedName, EffectiveAward, WithdrawnAward

log = logging.getLogger(__name__)

FIELDS = ("award_id", "trainee_key", "name", "id_enc", "project_number", "project_title", "institution_name",
          "starts_on", "ends_on", "credit_class", "credit_value", "activity_date", "effective_at")


def _forget_pages(session: Session, award_ids: list[int]) -> int:
    """The stored pages of these awards' certificates show what is no longer true."""
    if not award_ids:
        return 0
    return session.execute(update(Certificate).where(Certificate.award_id.in_(award_ids), Certificate.pdf.is_not(None))
                           .values(pdf=None, pdf_sha256=None, rendered_at=None)
                           .execution_options(synchronize_session=False)).rowcount


def on_credits_effective(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    rows = [{"offering_id": payload["offering_id"], "institution_id": payload["institution_id"],
             "received_at": clock.now(), **{k: a[k] for k in FIELDS}} for a in payload["awards"]]
    if not rows:
        return
    # a name corrected after this list was sent (its correction applied before it) is the name
    sent_at = parse_time(envelope["time"])
    corrected = {c.trainee_key: c.name for c in session.scalars(select(CorrectedName).where(
        CorrectedName.trainee_key.in_({r["trainee_key"] for r in rows}), CorrectedName.corrected_at > sent_at))}
    for r in rows:
        r["name"] = corrected.get(r["trainee_key"], r["name"])
    shown = FIELDS[1:-1]  # what a page shows (effective_at is not on it)
    before = {a.award_id: tuple(getattr(a, k) for k in shown) for a in session.scalars(
        select(EffectiveAward).where(EffectiveAward.award_id.in_([r["award_id"] for r in rows])))}
    changed = [r["award_id"] for r in rows
               if r["award_id"] in before and before[r["award_id"]] != tuple(r[k] for k in shown)]
    stmt = insert_for(session, EffectiveAward)
    keep = {k: getattr(stmt.excluded, k) for k in FIELDS if k != "award_id"}
    for start in range(0, len(rows), 1000):
        session.execute(stmt.on_conflict_do_update(index_elements=["award_id"], set_=keep), rows[start:start + 1000])
    if changed:
        log.info("credits.effective %s: %s certificates to render again", envelope.get("id"),
                 _forget_pages(session, changed))
    _revoke_withdrawn_before(session, [r["award_id"] for r in rows], envelope)
    log.info("credits.effective %s: %s awards of offering %s kept", envelope.get("id"), len(rows),
             payload["offering_id"])


def _revoke(session: Session, award: EffectiveAward, withdrawn_at: Any, reason: str | None) -> None:
    award.revoked_at, award.revoke_reason = withdrawn_at, reason or "撤销"
    record_audit(session, AuditLog, None, "award", award.award_id, "revoke", "effective", "revoked", reason or None)


def _revoke_withdrawn_before(session: Session, award_ids: list[int], envelope: dict[str, Any]) -> None:
    """The awards of a credits.effective whose withdrawal came first are revoked as it said."""
    notes = {w.award_id: w for w in session.scalars(select(WithdrawnAward)
                                                     .where(WithdrawnAward.award_id.in_(award_ids)))}
    if not notes:
        return
    for award in session.scalars(select(EffectiveAward).where(EffectiveAward.award_id.in_(list(notes)),
                                                              EffectiveAward.revoked_at.is_(None)).with_for_update()):
        _revoke(session, award, notes[award.award_id].withdrawn_at, notes[award.award_id].reason)
        log.info("credits.effective %s: award %s was withdrawn before, kept revoked", envelope.get("id"),
                 award.award_id)


def on_credits_withdrawn(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    award = session.scalars(select(EffectiveAward).where(EffectiveAward.award_id == payload["award_id"])
                            .with_for_update()).first()
    if award is None:
        # a pending award's withdrawal, or an effective one's that overtook its credits.effective: noted for the latter
        session.execute(insert_for(session, WithdrawnAward).on_conflict_do_nothing(), [{
            "award_id": payload["award_id"], "withdrawn_at": payload["withdrawn_at"],
            "reason": payload["reason"] or "撤销"}])
        log.info("credits.withdrawn %s: award %s not held here, noted", envelope.get("id"), payload["award_id"])
        return
    if award.revoked_at is not None:
        return  # revoked already: the first withdrawal time stands
    _revoke(session, award, payload["withdrawn_at"], payload["reason"])
    log.info("credits.withdrawn %s: award %s revoked", envelope.get("id"), award.award_id)


def on_name_corrected(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    at = parse_time(envelope["time"])
    note = session.scalars(select(CorrectedName).where(CorrectedName.trainee_key == payload["trainee_key"])
                           .with_for_update()).first()
    if note is not None and note.corrected_at > at:
        log.info("credits.name_corrected %s is older than the correction kept; ignored", envelope.get("id"))
        return
    session.execute(insert_for(session, CorrectedName).values(
        trainee_key=payload["trainee_key"], name=payload["name"], corrected_at=at).on_conflict_do_update(
        index_elements=["trainee_key"], set_={"name": payload["name"], "corrected_at": at}))
    ids = session.execute(update(EffectiveAward).where(EffectiveAward.trainee_key == payload["trainee_key"],
                                                       EffectiveAward.name != payload["name"])
                          .values(name=payload["name"]).returning(EffectiveAward.award_id)
                          .execution_options(synchronize_session=False)).scalars().all()
    log.info("credits.name_corrected %s: %s awards renamed, %s certificates to render again", envelope.get("id"),
             len(ids), _forget_pages(session, list(ids)))


HANDLERS: dict[str, Callable[[Session, dict[str, Any], dict[str, Any]], None]] = {
    "credits.effective": on_credits_effective,
    "credits.withdrawn": on_credits_withdrawn,
    "credits.name_corrected": on_name_corrected,
}
