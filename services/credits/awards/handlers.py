"""Event handlers of this feature: the execution report's life as projects announces it.

"report.submitted" locks the offering's award list (no grant, manual entry, exclusion or withdrawal while
the committee reviews); "report.returned" unlocks it; "report.approved" turns the offering's pending awards
by venue attendance effective (never manual ones) and emits "credits.effective" with everything a
certificate needs. The consumer has recorded the event id (a redelivery never reaches here); a re-sent
approval under a new id finds nothing pending and emits the same list again, which certs upserts.
An event older than the state already recorded changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.common import clock
from services.common.events import emit, parse_time

from ..db import outbox
from ..offerings.models import OfferingCredit
from .models import CreditAward

log = logging.getLogger(__name__)


class OfferingNotYetKnown(RuntimeError):
    """The report's offering has not reached credits yet (offering.approved still on its way): retry later."""


def _offering(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> OfferingCredit | None:
    row = session.scalars(select(OfferingCredit).where(OfferingCredit.offering_id == payload["offering_id"])
                          .with_for_update()).first()
    if row is None:
        raise OfferingNotYetKnown(f"offering {payload['offering_id']} of {envelope['name']} is not known yet")
    at = parse_time(envelope["time"])
    if row.report_changed_at is not None and row.report_changed_at > at:
        log.info("%s %s is older than the report state kept for offering %s; ignored", envelope["name"],
                 envelope.get("id"), row.offering_id)
        return None
    row.report_id, row.report_changed_at = payload["report_id"], at
    return row


def on_report_submitted(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    row = _offering(session, payload, envelope)
    if row is not None and row.report_state != "approved":
        row.report_state = "submitted"
        session.flush()


def on_report_returned(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    row = _offering(session, payload, envelope)
    if row is not None and row.report_state != "approved":
        row.report_state = "returned"
        session.flush()


def effective_payload(session: Session, offering: OfferingCredit) -> dict[str, Any]:
    awards = session.scalars(select(CreditAward).where(CreditAward.offering_id == offering.offering_id,
                                                       CreditAward.state == "effective")
                             .order_by(CreditAward.id)).all()
    return {"offering_id": offering.offering_id, "institution_id": offering.institution_id, "awards": [{
        "award_id": a.id, "trainee_key": a.trainee_key, "name": a.name, "id_enc": a.id_enc,
        "project_number": a.project_number, "project_title": a.project_title,
        "institution_name": a.institution_name or offering.institution_name, "starts_on": a.offering_starts_on,
        "ends_on": a.offering_ends_on, "credit_class": a.credit_class, "credit_value": a.credit_value,
        "activity_date": a.activity_date, "effective_at": a.effective_at,
    } for a in awards]}


def on_report_approved(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    row = _offering(session, payload, envelope)
    if row is None:
        return
    if row.cancelled:
        # projects refuses 标记未举办 once a report exists and cancels only before the start, so this is a bug
        # upstream: a 期 not held makes nothing effective (its awards say they never will)
        log.error("report.approved %s refused: offering %s is %s", envelope.get("id"), row.offering_id,
                  row.cancelled_label)
        return
    row.report_state = "approved"
    now = clock.now()
    made = session.execute(
        update(CreditAward)
        .where(CreditAward.offering_id == row.offering_id, CreditAward.state == "pending",
               CreditAward.method == "attendance")
        .values(state="effective", effective_at=now, version=CreditAward.version + 1)
        .execution_options(synchronize_session=False)).rowcount
    session.flush()
    log.info("report.approved %s: %s awards of offering %s are effective", envelope.get("id"), made, row.offering_id)
    emit(session, outbox, "credits", "credits.effective", effective_payload(session, row))


HANDLERS: dict[str, Callable[[Session, dict[str, Any], dict[str, Any]], None]] = {
    "report.submitted": on_report_submitted,
    "report.returned": on_report_returned,
    "report.approved": on_report_approved,
}
