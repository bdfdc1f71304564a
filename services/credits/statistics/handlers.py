"""Event handlers of 年度统计: event name -> handler(session, payload, envelope).

"catalogue.counted": keep the latest count of a (year, host) pair's catalogue projects; a count older than the
one kept (events may arrive out of order) changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common.db import savepoint

from .models import CatalogueCount


def on_catalogue_counted(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    values = {"institution_name": payload["institution_name"], "projects": payload["projects"],
              "planned": max(payload["planned"], payload["projects"]),
              "counted_at": payload["counted_at"]}
    query = (select(CatalogueCount).where(CatalogueCount.year == payload["year"],
                                          CatalogueCount.institution_id == payload["institution_id"])
             .with_for_update())
    row = session.scalars(query).first()
    if row is None:
        try:
            with savepoint(session):
                session.add(CatalogueCount(year=payload["year"], institution_id=payload["institution_id"], **values))
            return
        except IntegrityError:  # the same pair's other count got there first
            row = session.scalars(query).one()
    if row.counted_at > values["counted_at"]:
        return
    for name, value in values.items():
        setattr(row, name, value)
    session.flush()


HANDLERS: dict[str, Callable[[Session, dict[str, Any], dict[str, Any]], None]] = {
    "catalogue.counted": on_catalogue_counted,
}
