"""Event handlers of this feature: event name -> handler(session, payload, envelope).

"offering.approved": the committee approved an offering's pre-event filing, so it becomes a
继教活动 of its institution. The consumer (services.common.events.consume) has already recorded
the event id, so a redelivered envelope never reaches this code twice; a *new* approval of the
same offering (a re-approval after a correction) updates the activity instead of adding one.

A new activity gets one sign-in window (刷卡周期) per session of its schedule; an activity that has
windows already keeps them as they are (see windows.services.ensure_schedule_windows).
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
from services.common.events import ScheduleItemSchema, parse_time

from ..windows.services import ensure_schedule_windows
from .models import Activity

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
    activity = session.scalars(
        select(Activity).where(Activity.offering_id == payload["offering_id"]).with_for_update()).first()
    if activity is None:
        try:
            with savepoint(session):
                activity = Activity(offering_id=payload["offering_id"], created_at=clock.now(), **values)
                session.add(activity)
            ensure_schedule_windows(session, activity, schedule)
            return
        except IntegrityError:  # another approval of the same offering was inserted concurrently
            activity = session.scalars(
                select(Activity).where(Activity.offering_id == payload["offering_id"]).with_for_update()).one()
    if activity.approved_at > approved_at:
        log.info("offering.approved %s is older than the activity's approval; kept the newer", envelope.get("id"))
        return
    for name, value in values.items():
        setattr(activity, name, value)
    session.flush()
    # windows exist already (perhaps edited, perhaps with scans): a re-approval never adds or moves them
    ensure_schedule_windows(session, activity, schedule)


HANDLERS: dict[str, Callable[[Session, dict[str, Any], dict[str, Any]], None]] = {
    "offering.approved": on_offering_approved,
}
