"""Event handlers of this feature: event name -> handler(session, payload, envelope).

"offering.approved": record the offering's credit terms. The consumer has recorded the event id
already (a redelivery never reaches here); a later re-approval of the same offering updates the row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common import clock
from services.common.db import savepoint
from services.common.events import parse_time

from .models import OfferingCredit

log = logging.getLogger(__name__)

FIELDS = ("institution_id", "institution_name", "project_number", "project_title", "year", "credit_class",
          "credit_value", "hours", "starts_on", "ends_on")


def on_offering_approved(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    if payload["ends_on"] < payload["starts_on"]:
        log.error("offering.approved %s refused: offering %s ends before it starts", envelope.get("id"),
                  payload["offering_id"])
        return
    approved_at = parse_time(envelope["time"])
    values = {name: payload[name] for name in FIELDS}
    values["seq"] = payload.get("seq")
    values["approved_at"] = approved_at
    query = select(OfferingCredit).where(OfferingCredit.offering_id == payload["offering_id"]).with_for_update()
    row = session.scalars(query).first()
    if row is None:
        try:
            with savepoint(session):
                session.add(OfferingCredit(offering_id=payload["offering_id"], created_at=clock.now(), **values))
            return
        except IntegrityError:  # a concurrent approval of the same offering got there first
            row = session.scalars(query).one()
    if row.approved_at > approved_at:
        log.info("offering.approved %s is older than the recorded approval; kept the newer", envelope.get("id"))
        return
    for name, value in values.items():
        setattr(row, name, value)
    session.flush()


HANDLERS: dict[str, Callable[[Session, dict[str, Any], dict[str, Any]], None]] = {
    "offering.approved": on_offering_approved,
}
