"""Event handlers of this feature: event name -> handler(session, payload, envelope).

"checkin.recorded": keep credits' own copy of the check-in. The consumer has recorded the event id
already (a redelivery of the same envelope never reaches here); the same check-in arriving again
under another event id (a producer that re-emitted it) finds its row by checkin_id and changes
nothing. A second check-in of the same trainee in the same window cannot exist in checkin (unique
there too); should one arrive, the first is kept and the second is logged.

The first check-in of a trainee credits hears of also opens the trainee's account (学员账号: username = the ID
number, initial password = the pinyin of the name). Only the first: a later check-in typed with another name
or mobile does not change the login of an existing account.

The handler takes a message's check-ins together (events.batched): a hall's hundreds arrive in messages of 50,
and two statements for each were most of the worker's time while the hall was still scanning.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from services.common import clock, pii
from services.common.db import insert_for, insert_rows_or_skip
from services.common.events import Handler, Item, batched

from ..accounts.services import known_trainees, open_accounts
from .models import ActivityWindow, AttendanceRecord

log = logging.getLogger(__name__)

FIELDS = ("checkin_id", "activity_id", "offering_id", "institution_id", "window_id", "window_kind",
          "window_starts_at", "window_ends_at", "trainee_key", "name", "id_enc", "mobile_enc", "title", "unit",
          "scanned_at", "forced")


def _existing(session: Session, payload: dict[str, Any]) -> AttendanceRecord | None:
    return session.scalars(select(AttendanceRecord).where(
        (AttendanceRecord.checkin_id == payload["checkin_id"])
        | ((AttendanceRecord.window_id == payload["window_id"])
           & (AttendanceRecord.trainee_key == payload["trainee_key"])))).first()


def _account_row(payload: dict[str, Any]) -> dict[str, Any]:
    """The account a check-in opens; a mobile that cannot be decrypted (a key dropped before re-encryption) opens
    it without one."""
    mobile_enc: str | None = payload.get("mobile_enc") or None
    try:
        mobile_hash = pii.mobile_hash(pii.decrypt(mobile_enc)) if mobile_enc else None
    except ValueError:
        log.error("checkin.recorded: the mobile of check-in %s cannot be decrypted", payload["checkin_id"])
        mobile_enc = mobile_hash = None
    return {"trainee_key": payload["trainee_key"], "id_enc": payload["id_enc"], "name": payload["name"],
            "mobile_enc": mobile_enc, "mobile_hash": mobile_hash}


def _first_sights(session: Session, payloads: list[dict[str, Any]]) -> None:
    """The accounts of trainees these check-ins are the first credits hears of; a known trainee's is left alone
    (and its mobile not decrypted: most check-ins of a day are of trainees seen at an earlier session)."""
    known = known_trainees(session, {p["trainee_key"] for p in payloads})
    first: dict[str, dict[str, Any]] = {}
    for payload in payloads:
        if payload["trainee_key"] not in known:
            first.setdefault(payload["trainee_key"], payload)
    opened = open_accounts(session, [_account_row(p) for p in first.values()])
    if opened:  # one line for the message, not one each: in a hall's burst the lines were a tenth of the worker's time
        pairs = sorted((account_id, first[key]["checkin_id"]) for key, account_id in opened.items())
        log.info("trainee accounts opened (account from check-in): %s",
                 ", ".join(f"{account_id} from {checkin_id}" for account_id, checkin_id in pairs))


@batched
def on_checkin_recorded(session: Session, items: list[Item]) -> None:
    """The copies of a message's check-ins: their trainees' accounts in one statement, the copies in another."""
    valid = []
    for payload, envelope in items:
        if payload["window_ends_at"] <= payload["window_starts_at"]:
            log.error("checkin.recorded %s refused: window %s ends before it starts", envelope.get("id"),
                      payload["window_id"])
        else:
            valid.append((payload, envelope))
    if not valid:
        return
    _first_sights(session, [p for p, _ in valid])
    now = clock.now()
    # an event written before the window's title travelled has none: the copy names the window by its times
    rows = [{**{name: p[name] for name in FIELDS}, "window_title": p.get("window_title") or None,
             "flags": list(p.get("flags") or []), "received_at": now} for p, _ in valid]
    _know_windows(session, [p for p, _ in valid], now)
    # nothing comes back for a check-in (or this trainee's in this window) already kept
    stored = set(insert_rows_or_skip(session, AttendanceRecord.__table__, rows, returning=("checkin_id",)).scalars())
    for payload, envelope in valid:
        if payload["checkin_id"] in stored:
            # stored by this message, for its first appearance only: a second one of it is found as already kept
            stored.discard(payload["checkin_id"])
            continue
        _kept_already(session, payload, envelope)


def _window_values(p: dict[str, Any]) -> dict[str, Any]:
    """An event's window (checkin.recorded, window_changed, window_deleted) as credits' copy of it holds it."""
    return {"window_id": p["window_id"], "activity_id": p["activity_id"], "offering_id": p["offering_id"],
            "kind": p["window_kind"], "starts_at": p["window_starts_at"], "ends_at": p["window_ends_at"],
            "title": p.get("window_title") or None}


def _know_windows(session: Session, payloads: list[dict[str, Any]], now: Any) -> None:
    """Credits' copy of the windows these check-ins were made in (activity_windows): a window new to it is written,
    one known keeps what it has (window_changed edits it) but takes a 标题 it lacked."""
    windows: dict[int, dict[str, Any]] = {}
    for p in payloads:  # a message's 50 check-ins are mostly of one window
        windows.setdefault(p["window_id"], {**_window_values(p), "updated_at": now})
    insert_rows_or_skip(session, ActivityWindow.__table__, list(windows.values()), key=("window_id",))
    t = ActivityWindow.__table__
    for w in windows.values():
        if w["title"]:
            session.execute(update(t).where(t.c.window_id == w["window_id"], t.c.title.is_(None))
                            .values(title=w["title"]))


def _kept_already(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    row = _existing(session, payload)
    if row is None:  # cannot be: the insert met one of the keys _existing looks for
        raise RuntimeError(f"check-in {payload['checkin_id']} neither stored nor found")
    if row.checkin_id != payload["checkin_id"]:
        log.warning("checkin.recorded %s: check-in %s is a second one of a trainee in window %s (kept check-in %s)",
                    envelope.get("id"), payload["checkin_id"], payload["window_id"], row.checkin_id)
    elif (row.window_id, row.trainee_key) != (payload["window_id"], payload["trainee_key"]):
        # checkin gave a used id to another check-in: its database went back (restored from an older dump than
        # credits'), so its ids run again; this one is not copied, and the person on call must hear of it
        log.error("checkin.recorded %s: check-in id %s is already kept for another trainee or window (window %s), "
                  "not copied: was checkin's database restored from an older backup than credits'? (README, back up)",
                  envelope.get("id"), payload["checkin_id"], row.window_id)
    else:
        log.info("checkin.recorded %s: check-in %s is already recorded", envelope.get("id"), payload["checkin_id"])


def _deleted_at(session: Session, window_id: int) -> Any:
    return session.scalar(select(ActivityWindow.deleted_at).where(ActivityWindow.window_id == window_id))


def on_window_changed(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    """A 刷卡周期 was made or edited in checkin: credits' copy of the window (activity_windows, written if new: the
    event carries the whole window) and the copies of its check-ins take its new kind, times and 标题, so 考勤分析
    lists it (0 人签到 while nobody scanned in), offers the new range, pairs 签到/签退 by the new kind and names the
    window as checkin does. An event written before the title travelled leaves the copies' title alone. (Events of
    one producer mostly arrive in outbox order: a check-in stored before the edit was sent, and is kept, before
    this.) A window credits was told is deleted stays deleted: this event was written before the delete."""
    if payload["window_ends_at"] <= payload["window_starts_at"]:
        log.error("checkin.window_changed %s refused: window %s ends before it starts", envelope.get("id"),
                  payload["window_id"])
        return
    if _deleted_at(session, payload["window_id"]) is not None:
        log.info("checkin.window_changed %s: window %s was deleted in checkin already; not listed again",
                 envelope.get("id"), payload["window_id"])
        return
    # credits' own copy of the window: a window nobody scanned in is known from its first edit on; an event without
    # a 标题 leaves the one kept
    row = {**_window_values(payload), "updated_at": clock.now()}
    changed = {k: row[k] for k in ("kind", "starts_at", "ends_at", "updated_at")}
    if row["title"]:
        changed["title"] = row["title"]
    session.execute(insert_for(session, ActivityWindow).values(**row)
                    .on_conflict_do_update(index_elements=["window_id"], set_=changed))
    r = AttendanceRecord.__table__
    values = {"window_kind": payload["window_kind"], "window_starts_at": payload["window_starts_at"],
              "window_ends_at": payload["window_ends_at"]}
    if payload.get("window_title"):
        values["window_title"] = payload["window_title"]
    n = session.execute(update(r).where(r.c.window_id == payload["window_id"],
                                        r.c.activity_id == payload["activity_id"]).values(**values)).rowcount
    # the title is the office's own text, never personal data: the log may name it
    log.info("checkin.window_changed %s: window %s now %s–%s (%s, %s), %s check-in copies updated",
             envelope.get("id"), payload["window_id"], payload["window_starts_at"].isoformat(),
             payload["window_ends_at"].isoformat(), payload["window_kind"], payload.get("window_title") or "标题未知",
             n)


def on_window_deleted(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    """A 刷卡周期 was deleted in checkin: credits' copy of it is marked deleted (written so if credits had not heard
    of it yet, so its creation arriving late does not list it), and 考勤分析 no longer lists it. The copies of
    check-ins are never dropped: checkin deletes only a window without any, so credits should hold none; if it does
    (a backup restored in checkin), they stay, and 考勤分析 still lists the window through them."""
    if payload["window_ends_at"] <= payload["window_starts_at"]:
        log.error("checkin.window_deleted %s refused: window %s ends before it starts", envelope.get("id"),
                  payload["window_id"])
        return
    now = clock.now()
    mark = {"deleted_at": payload["deleted_at"], "updated_at": now}
    t = ActivityWindow.__table__
    session.execute(insert_for(session, ActivityWindow).values(**_window_values(payload), **mark)
                    .on_conflict_do_update(index_elements=["window_id"], set_=mark, where=t.c.deleted_at.is_(None)))
    r = AttendanceRecord.__table__
    kept = session.scalar(select(func.count()).select_from(r).where(r.c.window_id == payload["window_id"])) or 0
    if kept:
        log.error("checkin.window_deleted %s: window %s is deleted in checkin, but credits keeps %s check-in copies of "
                  "it; they are kept and the window stays listed (was checkin's database restored from an older "
                  "backup than credits'?)", envelope.get("id"), payload["window_id"], kept)
    else:
        log.info("checkin.window_deleted %s: window %s (%s) is no longer listed", envelope.get("id"),
                 payload["window_id"], payload.get("window_title") or "标题未知")


HANDLERS: dict[str, Handler] = {
    "checkin.recorded": on_checkin_recorded,
    "checkin.window_changed": on_window_changed,
    "checkin.window_deleted": on_window_deleted,
}
