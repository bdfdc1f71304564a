"""Event handlers of this feature: event name -> handler(session, payload, envelope).

"offering.approved": record the offering's credit terms. The consumer has recorded the event id
already (a redelivery never reaches here); a later re-approval of the same offering updates the row.

"offering.cancelled": the 期 is not (or was not) held. Final: the first cancellation kept stands, and no
offering.approved clears it, whatever its time. One that comes before its offering's approval (that event retried,
or delivered again) is noted in CancelledOffering, and the approval creates the offering already cancelled. Both
handlers take a transaction lock on the offering id first, so the two arriving at once cannot miss each other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common import clock
from services.common.db import insert_for, savepoint, xact_lock
from services.common.events import parse_time

from .models import CancelledOffering, OfferingCredit

log = logging.getLogger(__name__)

FIELDS = ("institution_id", "institution_name", "project_number", "project_title", "year", "credit_class",
          "credit_value", "hours", "starts_on", "ends_on")


def _lock_offering(session: Session, offering_id: int) -> None:
    """An offering's approval and cancellation take turns: each would otherwise not see the other's uncommitted row
    (the approval its note, the cancellation its offering) and the cancellation would be lost. SQLite: the
    SELECT … FOR UPDATE that follows takes the database's write lock (services.common.db)."""
    xact_lock(session, f"credits-offering:{offering_id}")


def _apply_note(session: Session, row: OfferingCredit) -> None:
    """A cancellation that came before the offering: it is the offering's now, and the note goes."""
    note = session.get(CancelledOffering, row.offering_id)
    if note is None:
        return
    if row.cancelled_at is None:
        row.cancelled_at, row.cancelled_by, row.cancel_reason = note.cancelled_at, note.cancelled_by, note.cancel_reason
        log.info("offering %s arrived after its cancellation: recorded cancelled", row.offering_id)
    session.execute(delete(CancelledOffering).where(CancelledOffering.offering_id == row.offering_id))


def on_offering_approved(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    if payload["ends_on"] < payload["starts_on"]:
        log.error("offering.approved %s refused: offering %s ends before it starts", envelope.get("id"),
                  payload["offering_id"])
        return
    approved_at = parse_time(envelope["time"])
    values = {name: payload[name] for name in FIELDS}
    values["seq"] = payload.get("seq")
    values["approved_at"] = approved_at
    _lock_offering(session, payload["offering_id"])
    query = select(OfferingCredit).where(OfferingCredit.offering_id == payload["offering_id"]).with_for_update()
    row = session.scalars(query).first()
    if row is None:
        try:
            with savepoint(session):
                row = OfferingCredit(offering_id=payload["offering_id"], created_at=clock.now(), **values)
                session.add(row)
        except IntegrityError:  # a concurrent approval of the same offering got there first
            row = session.scalars(query).one()
        else:
            _apply_note(session, row)
            session.flush()
            return
    if row.approved_at > approved_at:
        log.info("offering.approved %s is older than the recorded approval; kept the newer", envelope.get("id"))
        return
    # the credit terms only: a cancellation already recorded is not among them and stays
    for name, value in values.items():
        setattr(row, name, value)
    session.flush()


def on_offering_cancelled(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    offering_id = payload["offering_id"]
    values = {"cancelled_at": payload["cancelled_at"], "cancelled_by": payload["by"],
              "cancel_reason": payload["reason"]}
    _lock_offering(session, offering_id)
    row = session.scalars(select(OfferingCredit).where(OfferingCredit.offering_id == offering_id)
                          .with_for_update()).first()
    if row is None:
        session.execute(insert_for(session, CancelledOffering).on_conflict_do_nothing(),
                        [{"offering_id": offering_id, **values}])
        log.info("offering.cancelled %s: offering %s not known yet, noted", envelope.get("id"), offering_id)
        return
    if row.cancelled_at is not None:
        return  # final: the first cancellation recorded stands (a resend under a new id changes nothing)
    for name, value in values.items():
        setattr(row, name, value)
    session.flush()
    log.info("offering.cancelled %s: offering %s cancelled (%s)", envelope.get("id"), offering_id, payload["by"])


HANDLERS: dict[str, Callable[[Session, dict[str, Any], dict[str, Any]], None]] = {
    "offering.approved": on_offering_approved,
    "offering.cancelled": on_offering_cancelled,
}
