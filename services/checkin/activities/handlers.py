"""Event handlers of this feature: event name -> handler(session, payload, envelope).

"offering.approved": the committee approved an offering's pre-event filing, so it becomes a
继教活动 of its institution. The consumer (services.common.events.consume) has already recorded
the event id, so a redelivered envelope never reaches this code twice; a *new* approval of the
same offering (a re-approval after a correction) updates the activity instead of adding one.

A new activity gets one sign-in window (刷卡周期) per session of its schedule, each sent to credits as
checkin.window_changed in this transaction (考勤分析 lists it before anyone scanned in); an activity that has
windows already keeps them as they are (see windows.services.ensure_schedule_windows).

"offering.cancelled": the 期 is not (or was not) held. Final: the activity keeps the first cancellation it is
told of, and an offering.approved after it (a correction resent, a redelivery, whatever its envelope's time)
updates the catalogue fields but never clears it. One that arrives before its offering.approved (the relay does
not keep order between events) is kept in cancelled_offerings, and the approval makes the activity cancelled,
without windows: a 期 that is not held has no sessions, and windows could only ever refuse (the institution
cannot add any either). Both handlers take one lock per offering, so a cancellation and an approval handled at
the same moment by two workers cannot each miss the other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common import clock
from services.common.db import insert_for, savepoint, xact_lock
from services.common.events import ScheduleItemSchema, parse_time

from ..windows.services import ensure_schedule_windows
from .models import Activity, CancelledOffering

log = logging.getLogger(__name__)

FIELDS = ("institution_id", "institution_name", "project_id", "project_number", "project_title", "year", "seq",
          "credit_class", "credit_value", "hours", "starts_on", "ends_on", "venue", "mode")


def on_offering_approved(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    if payload["ends_on"] < payload["starts_on"]:
        # a producer bug; retrying would never succeed, so the event is recorded and refused loudly
        log.error("offering.approved %s refused: offering %s ends before it starts", envelope.get("id"),
                  payload["offering_id"])
        return
    approved_at = parse_time(envelope["time"])
    values = {name: payload[name] for name in FIELDS}
    values["schedule"] = ScheduleItemSchema(many=True).dump(payload.get("schedule") or [])
    values["approved_at"] = approved_at

    schedule = payload.get("schedule") or []
    _lock_offering(session, payload["offering_id"])
    activity = session.scalars(
        select(Activity).where(Activity.offering_id == payload["offering_id"]).with_for_update()).first()
    if activity is None:
        note = session.get(CancelledOffering, payload["offering_id"])
        if note is not None:  # its cancellation came first: the activity is born cancelled
            values.update(cancelled_at=note.cancelled_at, cancelled_by=note.cancelled_by,
                          cancel_reason=note.cancel_reason)
        try:
            with savepoint(session):
                activity = Activity(offering_id=payload["offering_id"], created_at=clock.now(), **values)
                session.add(activity)
            if not activity.cancelled:
                ensure_schedule_windows(session, activity, schedule)
            return
        except IntegrityError:  # another approval of the same offering was inserted concurrently
            activity = session.scalars(
                select(Activity).where(Activity.offering_id == payload["offering_id"]).with_for_update()).one()
    if activity.approved_at > approved_at:
        log.info("offering.approved %s is older than the activity's approval; kept the newer", envelope.get("id"))
        return
    for name, value in values.items():  # the catalogue's fields only: a cancellation stays
        setattr(activity, name, value)
    session.flush()
    if activity.cancelled:
        return  # no windows for a 期 not held (one created cancelled has none; a re-approval adds none)
    # windows exist already (perhaps edited, perhaps with scans): a re-approval never adds or moves them
    ensure_schedule_windows(session, activity, schedule)


def on_offering_cancelled(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    offering_id = payload["offering_id"]
    values = {"cancelled_at": payload["cancelled_at"], "cancelled_by": payload["by"],
              "cancel_reason": payload["reason"]}
    _lock_offering(session, offering_id)
    activity = session.scalars(select(Activity).where(Activity.offering_id == offering_id).with_for_update()).first()
    if activity is None:
        # before its offering.approved: kept for it (a second cancellation of the same offering changes nothing)
        session.execute(insert_for(session, CancelledOffering).values(
            offering_id=offering_id, institution_id=payload["institution_id"], **values).on_conflict_do_nothing())
        log.info("offering.cancelled %s: offering %s is not an activity yet; noted for its approval",
                 envelope.get("id"), offering_id)
        return
    if activity.institution_id != payload["institution_id"]:
        # the offering is what is cancelled, whoever the event names: applied, and said for whoever looks into it
        log.warning("offering.cancelled %s: offering %s is institution %s's here, the event says %s",
                    envelope.get("id"), offering_id, activity.institution_id, payload["institution_id"])
    if activity.cancelled:
        log.info("offering.cancelled %s: activity %s is cancelled already; kept as it was", envelope.get("id"),
                 activity.id)
        return
    for name, value in values.items():
        setattr(activity, name, value)
    session.flush()


def _lock_offering(session: Session, offering_id: int) -> None:
    """One offering's approval and cancellation take turns until the first commits (PostgreSQL: a transaction
    lock on the offering; SQLite has one writer at a time anyway). Without it, a cancellation finding no activity
    and an approval finding no note, at the same moment, would leave the activity open."""
    xact_lock(session, f"checkin-offering:{offering_id}")


HANDLERS: dict[str, Callable[[Session, dict[str, Any], dict[str, Any]], None]] = {
    "offering.approved": on_offering_approved,
    "offering.cancelled": on_offering_cancelled,
}
