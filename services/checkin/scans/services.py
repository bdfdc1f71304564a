"""Recording a check-in: the one place that decides whether a scan (or a forced check-in) is stored.

Used by the trainee's scan pages, the JSON API and the institution's forced check-in alike.
Idempotent twice over: the form's nonce (a repeated submission returns the first result) and the
database's one-check-in-per-trainee-per-window (a second scan in the same window changes nothing).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from services.common import clock, pii
from services.common.auth import Principal
from services.common.config import env, get_settings
from services.common.db import insert_for
from services.common.errors import AppError
from services.common.events import CATALOGUE, emit

from ..db import db, outbox
from ..trainees.models import Trainee, WeChatBinding
from ..windows.models import CheckinWindow
from .models import REASONS, Checkin, RefusedScan
from .sql import BOUND_ELSEWHERE, CALL, CALL_ARGS

IDENTITY_REQUIRED = "请填写签到信息。"


class ScanRefused(AppError):
    """A refusal with a reason code from REASONS."""

    def __init__(self, reason: str, status: int = 403, window_id: int | None = None):
        super().__init__(status, reason, REASONS[reason])
        self.reason = reason
        self.window_id = window_id  # the phone's page says 未能签退 for a sign-out window


@dataclass
class Recorded:
    checkin: Checkin
    created: bool  # False: this trainee already had a check-in in the window (or the nonce was used)


def address_hash(address: str | None) -> str | None:
    """Addresses are compared, never shown: a keyed hash is enough for 'many identities from one address'."""
    if not address:
        return None
    key = get_settings().hash_keys[0].encode()
    return hmac.new(key, f"addr:{address}".encode(), hashlib.sha256).hexdigest()


def refuse(session: Session, reason: str, *, activity_id: int | None = None, window_id: int | None = None,
           openid: str | None = None, trainee_key: str | None = None, address: str | None = None,
           status: int = 403) -> ScanRefused:
    """Keep the refusal (the caller commits) and return the error to raise."""
    session.add(RefusedScan(at=clock.now(), activity_id=activity_id, window_id=window_id, reason=reason,
                            openid=openid, trainee_key=trainee_key, address_hash=address_hash(address)))
    return ScanRefused(reason, status, window_id)


def _trainee_row(identity: dict[str, Any]) -> dict[str, Any]:
    """The trainees row of a validated identity: the ID number's keyed hash is the key, personal data encrypted."""
    now = clock.now()
    return {"trainee_key": pii.id_hash(identity["id_number"]), "id_enc": pii.encrypt(identity["id_number"]),
            "name": identity["name"], "mobile_enc": pii.encrypt(identity["mobile"]),
            "mobile_hash": pii.mobile_hash(identity["mobile"]), "title": identity["title"],
            "unit": identity["unit"], "created_at": now, "updated_at": now}


def upsert_trainee(session: Session, identity: dict[str, Any], openid: str | None = None,
                   **where: Any) -> tuple[Trainee, bool]:
    """The identity typed on the form; the ID number's keyed hash is the trainee's key. One statement.

    Later details win (a new mobile, a new unit) when typed on a WeChat account of the trainee's own, or on the
    first: typed on a new account while another is bound to the ID number (a new phone, or someone scanning for
    a colleague), they change nothing stored. A name that is not the one on record is refused (kept): a scan
    never renames anyone (the committee's 更正姓名 does).
    Also says whether the trainee is new (no earlier WeChat binding can exist)."""
    stmt = insert_for(session, Trainee).values(**_trainee_row(identity))
    mine = select(WeChatBinding.id).where(WeChatBinding.trainee_id == Trainee.id, WeChatBinding.openid == openid,
                                          WeChatBinding.later.is_(False))  # not one bound beside hers
    others = select(WeChatBinding.id).where(WeChatBinding.trainee_id == Trainee.id, WeChatBinding.openid != openid)
    same_name = Trainee.name == stmt.excluded["name"]  # a name is corrected by the committee, never by a scan
    stmt = stmt.on_conflict_do_update(index_elements=[Trainee.trainee_key], set_={
        k: stmt.excluded[k] for k in ("mobile_enc", "mobile_hash", "title", "unit", "updated_at")},
        where=and_(same_name, or_(mine.exists(), ~others.exists())) if openid else same_name)
    trainee = session.scalars(stmt.returning(Trainee), execution_options={"populate_existing": True}).first()
    if trainee is not None:
        return trainee, _just_created(trainee)
    key = pii.id_hash(identity["id_number"])
    trainee = session.scalars(select(Trainee).where(Trainee.trainee_key == key)
                              .execution_options(populate_existing=True)).one()
    if trainee.name != identity["name"]:
        raise refuse(session, "id_name_mismatch", openid=openid, trainee_key=key, **where)
    return trainee, False


NAME_MISMATCH = "该身份证号码已登记的姓名与填写的姓名不一致，请核对姓名和身份证号码。"


def known_or_new_trainee(session: Session, identity: dict[str, Any]) -> Trainee:
    """The trainee of this ID number as the trainee last gave it, or a new one from `identity`: a forced
    check-in types someone else's details, which must never replace what the trainee gave (the list, the
    events to credits and the 执行情况反馈 would all show them). A name that is not the one on record is refused:
    a wrong ID number with a right check digit, or the wrong person."""
    row = _trainee_row(identity)
    key = row["trainee_key"]
    session.execute(insert_for(session, Trainee).values(**row)
                    .on_conflict_do_nothing(index_elements=[Trainee.trainee_key]))
    trainee = session.scalars(select(Trainee).where(Trainee.trainee_key == key)
                              .execution_options(populate_existing=True)).one()
    if trainee.name != identity["name"]:
        raise AppError(422, "name_mismatch", NAME_MISMATCH, {"name": NAME_MISMATCH, "id_number": NAME_MISMATCH})
    return trainee


def binding_of(session: Session, openid: str) -> WeChatBinding | None:
    return session.scalars(select(WeChatBinding).where(WeChatBinding.openid == openid)).first()


def bound_trainee(session: Session, openid: str) -> Trainee | None:
    binding = binding_of(session, openid)
    return binding.trainee if binding else None


def _just_created(trainee: Trainee) -> bool:
    """The upsert sets both times on insert and only updated_at on conflict: equal means new, so no
    earlier WeChat binding can exist and the look-up is skipped."""
    return trainee.created_at == trainee.updated_at


def _bind(session: Session, openid: str, trainee: Trainee, new: bool, flags: list[str], **where: Any) -> None:
    """One WeChat account binds to one ID number; a double tap racing itself is judged by the winner's row. An
    account bound while another is bound to the ID number (binding.later) marks every check-in made through it."""
    later = not new and bool(session.scalar(select(func.count()).select_from(WeChatBinding).where(
        WeChatBinding.trainee_id == trainee.id, WeChatBinding.openid != openid)))
    stmt = (insert_for(session, WeChatBinding)
            .values(openid=openid, trainee_id=trainee.id, bound_at=clock.now(), later=later)
            .on_conflict_do_nothing(index_elements=[WeChatBinding.openid]).returning(WeChatBinding.id))
    if session.execute(stmt).first() is None:
        bound_to, bound_later = session.execute(select(WeChatBinding.trainee_id, WeChatBinding.later)
                                                .where(WeChatBinding.openid == openid)).one()
        if bound_to != trainee.id:
            # keep the refusal, not the identity typed for someone else's WeChat account
            key = trainee.trainee_key
            session.rollback()
            raise refuse(session, "wechat_bound_to_other", openid=openid, trainee_key=key, **where)
        later = bound_later
    if later:
        flags.append("id_on_new_wechat")


def _address_rule(now: dt.datetime) -> tuple[dt.datetime, int]:
    """Since when, and how many identities from one address are fine (more are flagged)."""
    minutes = int(env("CME_CHECKIN_ADDRESS_WINDOW_MINUTES", "10"))
    return now - dt.timedelta(minutes=minutes), int(env("CME_CHECKIN_ADDRESS_MAX_IDENTITIES", "3"))


def _many_identities(session: Session, addr: str | None, trainee_id: int) -> bool:
    if not addr:
        return False
    since, limit = _address_rule(clock.now())
    others = session.scalar(select(func.count(func.distinct(Checkin.trainee_id))).where(
        Checkin.address_hash == addr, Checkin.recorded_at >= since, Checkin.trainee_id != trainee_id)) or 0
    return others + 1 > limit


def payload_of(checkin: Checkin) -> dict[str, Any]:
    w, t, a = checkin.window, checkin.trainee, checkin.window.activity
    return {"checkin_id": checkin.id, "activity_id": a.id, "offering_id": a.offering_id,
            "institution_id": a.institution_id, "window_id": w.id, "window_kind": w.kind,
            "window_starts_at": w.starts_at, "window_ends_at": w.ends_at, "window_title": w.title,
            "trainee_key": t.trainee_key,
            "name": t.name, "id_enc": t.id_enc, "mobile_enc": t.mobile_enc, "title": t.title, "unit": t.unit,
            "scanned_at": checkin.scanned_at, "forced": checkin.forced, "flags": list(checkin.flags or [])}


def record_checkin(session: Session, window: CheckinWindow, *, nonce: str, scanned_at: dt.datetime,
                   identity: dict[str, Any] | None = None, openid: str | None = None, address: str | None = None,
                   forced: bool = False, forced_reason: str | None = None,
                   actor: Principal | None = None) -> Recorded:
    """Store one check-in (or return the one that already answers this nonce / trainee / window).

    identity: the validated form (name, id_number, mobile, title, unit); None for a one-tap scan by a
    WeChat account already bound to a trainee. The caller commits; checkin.recorded goes out with it.
    """
    where = {"activity_id": window.activity_id, "window_id": window.id, "address": address}
    previous = session.scalars(select(Checkin).where(Checkin.nonce == nonce)).first()
    if previous is not None:
        return Recorded(previous, False)
    if window.activity.cancelled:  # Activity.refuse_if_cancelled's rule; a scan's refusal is kept as any other
        if forced:
            window.activity.refuse_if_cancelled("不能代签")
        raise refuse(session, "activity_cancelled", openid=openid, **where)
    if not forced and not window.is_open(scanned_at):
        raise refuse(session, "not_in_window", openid=openid, **where)

    flags: list[str] = []
    if identity is not None:
        if forced:
            trainee = known_or_new_trainee(session, identity)
            new = _just_created(trainee)
        else:
            trainee, new = upsert_trainee(session, identity, openid, **where)
    else:
        trainee, new = bound_trainee(session, openid) if openid else None, False
        if trainee is None:
            raise AppError(422, "identity_required", IDENTITY_REQUIRED)
    if openid:
        _bind(session, openid, trainee, new, flags, **where)

    addr = address_hash(address)
    if not forced and _many_identities(session, addr, trainee.id):
        flags.append("many_identities_same_address")
    if forced:
        flags.append("forced")
    # ON CONFLICT DO NOTHING covers both keys: a repeated nonce and a second scan in the same window
    stmt = insert_for(session, Checkin).values(
        activity_id=window.activity_id, window_id=window.id, trainee_id=trainee.id, scanned_at=scanned_at,
        recorded_at=clock.now(), nonce=nonce, openid=openid, address_hash=addr, forced=forced,
        forced_reason=forced_reason, forced_by=actor.describe() if forced and actor else None, flags=flags,
    ).on_conflict_do_nothing().returning(Checkin)
    checkin = session.scalars(stmt).first()
    if checkin is None:
        winner = session.scalars(select(Checkin).where(Checkin.window_id == window.id,
                                                       Checkin.trainee_id == trainee.id)).first()
        winner = winner or session.scalars(select(Checkin).where(Checkin.nonce == nonce)).one()
        return Recorded(winner, False)
    emit(session, outbox, "checkin", "checkin.recorded", payload_of(checkin))
    return Recorded(checkin, True)


# ---- a trainee's own scan, in one call ---------------------------------------------------------------

WINDOW_GONE = "该签到时段已不存在，请联系会场工作人员。"


@dataclass(frozen=True)
class ScanResult:
    """What the phone is told: the check-in that answers the scan, and whether this scan stored it."""

    checkin_id: int
    window_id: int
    scanned_at: dt.datetime
    created: bool
    forced: bool  # the check-in that answers may be one the institution made for this trainee
    name: str  # the trainee's, for 已签到
    kind: str  # the window's (sign_in / sign_out): the answer says 已签到 or 已签退


def record_scan(*, activity_id: int, window_id: int, nonce: str, scanned_at: dt.datetime,
                identity: dict[str, Any] | None, openid: str, address: str | None) -> ScanResult:
    """Store a trainee's scan (the rules of record_checkin) and commit it, with its checkin.recorded.

    Raises ScanRefused (the refusal is already kept) or AppError (404 window gone, 422 identity_required).
    On PostgreSQL one round trip (scans/sql.py); elsewhere record_checkin in the request's session.
    """
    if db.engine.dialect.name == "postgresql":
        return _record_scan_sql(activity_id, window_id, nonce, scanned_at, identity, openid, address)
    return _record_scan_orm(activity_id, window_id, nonce, scanned_at, identity, openid, address)


def _record_scan_sql(activity_id: int, window_id: int, nonce: str, scanned_at: dt.datetime,
                     identity: dict[str, Any] | None, openid: str, address: str | None) -> ScanResult:
    now = clock.now()
    since, limit = _address_rule(now)
    addr = address_hash(address)
    params: dict[str, Any] = {
        "activity_id": activity_id, "window_id": window_id, "nonce": nonce, "scanned_at": scanned_at, "now": now,
        "openid": openid, "address_hash": addr, "since": since, "max_identities": limit,
        "trainee_key": None, "id_enc": None, "name": None, "mobile_enc": None, "mobile_hash": None, "title": None,
        "unit": None, "event_id": None, "event_time": now.isoformat(),  # None: gen_random_uuid() in the call
        "consumers": list(CATALOGUE["checkin.recorded"].consumers)}
    if identity is not None:
        params.update(trainee_key=pii.id_hash(identity["id_number"]), id_enc=pii.encrypt(identity["id_number"]),
                      name=identity["name"], mobile_enc=pii.encrypt(identity["mobile"]),
                      mobile_hash=pii.mobile_hash(identity["mobile"]), title=identity["title"], unit=identity["unit"])
    try:
        row = _call(params)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != BOUND_ELSEWHERE:
            raise
        # a concurrent scan bound this WeChat account to another ID number first: nothing was kept but this
        session = db.session()
        refusal = refuse(session, "wechat_bound_to_other", activity_id=activity_id, window_id=window_id,
                         openid=openid, trainee_key=params["trainee_key"], address=address)
        session.commit()
        raise refusal from None
    outcome, checkin_id, at, created, forced, name, kind = row
    if outcome == "ok":
        return ScanResult(checkin_id, window_id, at.astimezone(dt.UTC), created, forced, name, kind)
    if outcome == "not_found":
        raise AppError(404, "not_found", WINDOW_GONE)
    if outcome == "identity_required":
        raise AppError(422, "identity_required", IDENTITY_REQUIRED)
    raise ScanRefused(outcome, window_id=window_id)  # kept by the function


def _call(params: dict[str, Any]) -> Any:
    """One round trip (ServiceDB.call_row): the function is its own transaction, and repeating it after a
    dropped connection is safe, since the nonce makes it idempotent."""
    return db.call_row(CALL, tuple(params[name] for name in CALL_ARGS))


def _record_scan_orm(activity_id: int, window_id: int, nonce: str, scanned_at: dt.datetime,
                     identity: dict[str, Any] | None, openid: str, address: str | None) -> ScanResult:
    session = db.session()
    window = session.get(CheckinWindow, window_id)
    if window is None or window.activity_id != activity_id:
        raise AppError(404, "not_found", WINDOW_GONE)
    try:
        recorded = record_checkin(session, window, nonce=nonce, scanned_at=scanned_at, identity=identity,
                                  openid=openid, address=address)
    except ScanRefused:
        session.commit()  # the refusal is kept
        raise
    except AppError:
        session.rollback()
        raise
    session.commit()
    c = recorded.checkin
    return ScanResult(c.id, c.window_id, c.scanned_at, recorded.created, c.forced, c.trainee.name, window.kind)
