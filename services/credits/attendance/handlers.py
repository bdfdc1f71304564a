"""Event handlers of this feature: event name -> handler(session, payload, envelope).

"checkin.recorded": keep credits' own copy of the check-in. The consumer has recorded the event id
already (a redelivery of the same envelope never reaches here); the same check-in arriving again
under another event id (a producer that re-emitted it) finds its row by checkin_id and changes
nothing. A second check-in of the same trainee in the same window cannot exist in checkin (unique
there too); should one arrive, the first is kept and the second is logged.

The first check-in of a trainee credits hears of also opens the trainee's account (学员账号: username = the ID
number, initial password = the pinyin of the name). Only the first: a later check-in typed with another name
or mobile does not change the login of an existing account.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common import clock, pii
from services.common.db import insert_or_skip

from ..accounts.services import open_account
from .models import AttendanceRecord

log = logging.getLogger(__name__)

FIELDS = ("checkin_id", "activity_id", "offering_id", "institution_id", "window_id", "window_kind",
          "window_starts_at", "window_ends_at", "trainee_key", "name", "id_enc", "mobile_enc", "title", "unit",
          "scanned_at", "forced")


def _existing(session: Session, payload: dict[str, Any]) -> AttendanceRecord | None:
    return session.scalars(select(AttendanceRecord).where(
        (AttendanceRecord.checkin_id == payload["checkin_id"])
        | ((AttendanceRecord.window_id == payload["window_id"])
           & (AttendanceRecord.trainee_key == payload["trainee_key"])))).first()


def _first_sight(session: Session, payload: dict[str, Any]) -> None:
    """The trainee's account, opened by the first check-in credits hears of (a known trainee's is left alone)."""
    mobile_enc: str | None = payload.get("mobile_enc") or None
    try:
        mobile_hash = pii.mobile_hash(pii.decrypt(mobile_enc)) if mobile_enc else None
        unreadable = False
    except ValueError:  # a key was dropped before re-encryption: the account opens without a mobile
        mobile_enc, mobile_hash, unreadable = None, None, True
    opened = open_account(session, payload["trainee_key"], payload["id_enc"], payload["name"], mobile_enc,
                          mobile_hash)
    if opened is None:
        return
    if unreadable:
        log.error("checkin.recorded: the mobile of check-in %s cannot be decrypted", payload["checkin_id"])
    log.info("trainee account %s opened from check-in %s", opened, payload["checkin_id"])


def on_checkin_recorded(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    if payload["window_ends_at"] <= payload["window_starts_at"]:
        log.error("checkin.recorded %s refused: window %s ends before it starts", envelope.get("id"),
                  payload["window_id"])
        return
    _first_sight(session, payload)
    # the copy in one statement; nothing comes back when this check-in (or this trainee's in this window) is kept
    row_values = {name: payload[name] for name in FIELDS}
    row_values.update(flags=list(payload.get("flags") or []), received_at=clock.now())
    stored = session.execute(insert_or_skip(session, AttendanceRecord.__table__), row_values).first()
    if stored is not None:
        return
    row = _existing(session, payload)
    if row is None:  # cannot be: the insert met one of the keys _existing looks for
        raise RuntimeError(f"check-in {payload['checkin_id']} neither stored nor found")
    if row.checkin_id != payload["checkin_id"]:
        log.warning("checkin.recorded %s: check-in %s is a second one of a trainee in window %s (kept check-in %s)",
                    envelope.get("id"), payload["checkin_id"], payload["window_id"], row.checkin_id)
    else:
        log.info("checkin.recorded %s: check-in %s is already recorded", envelope.get("id"), payload["checkin_id"])


HANDLERS: dict[str, Callable[[Session, dict[str, Any], dict[str, Any]], None]] = {
    "checkin.recorded": on_checkin_recorded,
}
