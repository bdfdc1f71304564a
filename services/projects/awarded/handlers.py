"""Event handlers of this feature: "credits.granted" replaces the offering's award list when newer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from services.common.db import insert_for
from services.common.events import parse_time

from .models import AwardedList, AwardedTrainee

log = logging.getLogger(__name__)

FIELDS = ("award_id", "trainee_key", "name", "id_enc", "title", "unit", "credit_class", "credit_value",
          "activity_date", "method", "state", "forced")


def on_credits_granted(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    as_of = parse_time(envelope["time"])
    offering_id = payload["offering_id"]
    # one row per offering, created once whatever the concurrency, then locked while its list is replaced
    session.execute(insert_for(session, AwardedList).values(
        offering_id=offering_id, institution_id=payload["institution_id"], count=0, as_of=as_of,
    ).on_conflict_do_nothing(index_elements=["offering_id"]))
    row = session.scalars(select(AwardedList).where(AwardedList.offering_id == offering_id)
                          .with_for_update().execution_options(populate_existing=True)).one()
    if row.as_of > as_of:
        log.info("credits.granted %s is older than the list kept for offering %s; ignored", envelope.get("id"),
                 offering_id)
        return
    session.execute(delete(AwardedTrainee).where(AwardedTrainee.list_id == row.id))
    awards = payload["awards"]
    if awards:
        session.execute(insert(AwardedTrainee), [{"list_id": row.id, **{k: a[k] for k in FIELDS}} for a in awards])
    row.count, row.as_of = len(awards), as_of
    session.flush()


HANDLERS: dict[str, Callable[[Session, dict[str, Any], dict[str, Any]], None]] = {
    "credits.granted": on_credits_granted,
}
