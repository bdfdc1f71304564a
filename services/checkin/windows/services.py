"""刷卡周期 (check-in windows), forced check-ins and the check-in list: the rules the pages and the JSON API share.

- Default windows come from the filing's schedule (one sign-in window per session) when the activity
  is created from ``offering.approved``; once an activity has windows, a re-approval leaves them alone
  (the institution may have edited them, and windows with scans must never move silently).
- A window with check-ins can be edited only with a reason, and the edit is audit-logged
  (who, when, before -> after, why); it cannot be deleted.
- Credits keeps its own copy of the windows (考勤分析 lists one nobody scanned in): every window made (from the
  schedule or by the office) and every edit sends checkin.window_changed with the whole window, every delete
  checkin.window_deleted, through the outbox in the same transaction as the change.
- A forced check-in (代签) goes through ``scans.services.record_checkin`` with ``forced=True`` and is
  audit-logged; it is marked 代签 everywhere it is shown.
- A cancelled activity (取消举办 / 标记未举办) refuses window changes and 代签 (Activity.refuse_if_cancelled); its
  windows and check-ins are still listed and exported.
- ID numbers and mobiles leave this module masked only; an ID number typed in full is searched by its
  keyed hash.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import false, func, or_, select
from sqlalchemy.orm import Session, contains_eager, joinedload

from services.common import clock, pii
from services.common.audit import record_audit
from services.common.auth import Principal, own_institution
from services.common.errors import AppError
from services.common.events import emit
from services.common.identity import normalise_mobile
from services.common.inputs import half_width
from services.common.paging import paginate
from services.common.sheets import text_row

from ..activities.models import Activity
from ..db import outbox
from ..scans.models import REASONS, Checkin, RefusedScan
from ..scans.services import record_checkin
from ..trainees.models import Trainee
from .models import KINDS, AuditLog, CheckinWindow

log = logging.getLogger(__name__)

MAX_WINDOW = dt.timedelta(hours=24)
# forced check-ins carry their own nonce space, so a client-chosen nonce never names a trainee's scan
FORCED_NONCE_PREFIX = "forced:"
_ID_SHAPE = re.compile(r"^\d{17}[\dX]$")
_MOBILE_SHAPE = re.compile(r"^1[3-9]\d{9}$")


# ---------------------------------------------------------------- loading with scope

def get_activity(session: Session, principal: Principal, activity_id: int, *, lock: bool = False) -> Activity:
    """The activity, if the principal may see it: its own institution, or a reviewer (404 otherwise)."""
    stmt = select(Activity).where(Activity.id == activity_id)
    if lock:
        stmt = stmt.with_for_update()
    activity = session.scalars(stmt).first()
    if activity is None or principal.role not in ("institution", "reviewer"):
        raise AppError(404, "not_found", "该继教活动不存在。")
    own_institution(principal, activity.institution_id, "该继教活动不存在。")
    return activity


def get_window(session: Session, principal: Principal, activity_id: int, window_id: int,
               *, lock: bool = False) -> CheckinWindow:
    activity = get_activity(session, principal, activity_id)
    stmt = select(CheckinWindow).where(CheckinWindow.id == window_id, CheckinWindow.activity_id == activity.id)
    if lock:
        stmt = stmt.with_for_update()
    window = session.scalars(stmt).first()
    if window is None:
        raise AppError(404, "not_found", "该刷卡周期不存在。")
    return window


# ---------------------------------------------------------------- windows from the schedule

def local_to_utc(day: dt.date, at: dt.time) -> dt.datetime:
    """A Shanghai wall-clock time of the schedule -> aware UTC."""
    return dt.datetime.combine(day, at.replace(tzinfo=None), clock.SHANGHAI).astimezone(clock.UTC)


def ensure_schedule_windows(session: Session, activity: Activity, schedule: Iterable[dict[str, Any]]) -> int:
    """One sign-in window per schedule session, only while the activity has no windows at all.

    ``schedule``: loaded ScheduleItemSchema items (date, start, end as date/time objects, title).
    Returns how many windows were made. Called by the offering.approved consumer in its transaction.
    """
    session.flush()
    if session.scalar(select(func.count()).select_from(CheckinWindow)
                      .where(CheckinWindow.activity_id == activity.id)):
        return 0
    made = 0
    for item in schedule:
        starts, ends = local_to_utc(item["date"], item["start"]), local_to_utc(item["date"], item["end"])
        if ends <= starts:
            log.warning("activity %s: schedule session on %s ends before it starts; no window made",
                        activity.id, item["date"])
            continue
        title = (item.get("title") or "").strip() or (
            f"{item['date']:%m月%d日} {item['start']:%H:%M}–{item['end']:%H:%M}")
        window = CheckinWindow(activity_id=activity.id, title=title[:200], kind="sign_in", starts_at=starts,
                               ends_at=ends, from_schedule=True, created_at=clock.now())
        session.add(window)
        session.flush()  # its id, for the event
        announce_window(session, window)
        made += 1
    return made


def window_payload(window: CheckinWindow) -> dict[str, Any]:
    """The whole window as checkin.window_changed / checkin.window_deleted carry it."""
    return {"activity_id": window.activity_id, "offering_id": window.activity.offering_id, "window_id": window.id,
            "window_kind": window.kind, "window_starts_at": window.starts_at, "window_ends_at": window.ends_at,
            "window_title": window.title}


def announce_window(session: Session, window: CheckinWindow) -> None:
    """Tell credits of the window as it now is (made or edited): its copy of the window (考勤分析 lists one nobody
    scanned in) and of its check-ins follow it."""
    emit(session, outbox, "checkin", "checkin.window_changed", window_payload(window))


# ---------------------------------------------------------------- windows: list, create, edit, delete

def checkin_counts(session: Session, activity_id: int) -> dict[int, tuple[int, int]]:
    """window id -> (check-ins, of which forced)."""
    rows = session.execute(
        select(Checkin.window_id, func.count(), func.count().filter(Checkin.forced.is_(True)))
        .where(Checkin.activity_id == activity_id).group_by(Checkin.window_id)).all()
    return {wid: (n, forced) for wid, n, forced in rows}


def window_count(session: Session, window_id: int) -> tuple[int, int]:
    row = session.execute(select(func.count(), func.count().filter(Checkin.forced.is_(True)))
                          .where(Checkin.window_id == window_id)).one()
    return int(row[0]), int(row[1])


def list_windows(session: Session, activity: Activity) -> list[CheckinWindow]:
    return list(session.scalars(select(CheckinWindow).where(CheckinWindow.activity_id == activity.id)
                                .order_by(CheckinWindow.starts_at, CheckinWindow.id)))


def window_state(window: CheckinWindow, at: dt.datetime | None = None) -> str:
    at = at or clock.now()
    cancelled_at = window.activity.cancelled_at
    if cancelled_at is not None and window.ends_at >= cancelled_at:
        # still open or to come when the 期 was cancelled: it takes nothing, whatever its times say. One that had
        # ended before was held as planned: 已结束, with its check-ins
        return "cancelled"
    if at < window.starts_at:
        return "before"
    return "open" if at <= window.ends_at else "closed"


STATE_LABELS = {"before": "未开始", "open": "进行中", "closed": "已结束", "cancelled": "活动已取消"}


def window_summary(starts_at: dt.datetime, ends_at: dt.datetime, kind: str) -> str:
    """A short text of a window's times for the audit trail (fits its 40-character columns)."""
    start, end = clock.to_local(starts_at), clock.to_local(ends_at)
    assert start is not None and end is not None
    end_text = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%m-%d %H:%M}"
    return f"{KINDS[kind]} {start:%Y-%m-%d %H:%M}~{end_text}"[:40]


def window_dict(window: CheckinWindow, counts: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    return {"id": window.id, "activity_id": window.activity_id, "title": window.title, "kind": window.kind,
            "kind_label": window.kind_label, "starts_at": window.starts_at, "ends_at": window.ends_at,
            "from_schedule": window.from_schedule, "version": window.version, "checkins": counts[0],
            "forced_checkins": counts[1], "state": window_state(window)}


def _check_times(activity: Activity, starts_at: dt.datetime, ends_at: dt.datetime) -> None:
    errors = {}
    if ends_at <= starts_at:
        errors["ends_at"] = "结束时间应晚于开始时间。"
    elif ends_at - starts_at > MAX_WINDOW:
        errors["ends_at"] = "一个刷卡周期不能超过 24 小时。"
    first, last = activity.starts_on, activity.ends_on
    start_day = clock.to_local(starts_at).date()  # type: ignore[union-attr]
    end_day = clock.to_local(ends_at).date()  # type: ignore[union-attr]
    if not first <= start_day <= last:
        errors["starts_at"] = f"开始时间应在活动举办期间（{activity.period_label}）。"
    if "ends_at" not in errors and not first <= end_day <= last:
        errors["ends_at"] = f"结束时间应在活动举办期间（{activity.period_label}）。"
    if errors:
        raise AppError(422, "invalid_input", "刷卡周期的时间不正确，请按提示修改。", errors)


def _require_institution(principal: Principal) -> None:
    if principal.role != "institution":
        raise AppError(403, "forbidden", "只有举办机构可以进行此操作。")


def create_window(session: Session, principal: Principal, activity: Activity, data: dict[str, Any]) -> CheckinWindow:
    _require_institution(principal)
    activity.refuse_if_cancelled("不能新建刷卡周期")
    _check_times(activity, data["starts_at"], data["ends_at"])
    same = session.scalars(select(CheckinWindow).where(
        CheckinWindow.activity_id == activity.id, CheckinWindow.title == data["title"],
        CheckinWindow.kind == data["kind"], CheckinWindow.starts_at == data["starts_at"],
        CheckinWindow.ends_at == data["ends_at"])).first()
    if same is not None:
        # the form sent twice (Back, then 保存 again): two windows alike could not be told apart in 考勤分析
        raise AppError(409, "window_exists", f"本活动已有同名、同类型、同时间的刷卡周期“{same.title}”，未重复新建。")
    window = CheckinWindow(activity_id=activity.id, title=data["title"], kind=data["kind"],
                           starts_at=data["starts_at"], ends_at=data["ends_at"], from_schedule=False,
                           created_at=clock.now())
    session.add(window)
    session.flush()
    record_audit(session, AuditLog, principal, "checkin_window", window.id, "window_created",
                 to_state=window_summary(window.starts_at, window.ends_at, window.kind))
    announce_window(session, window)
    return window


def update_window(session: Session, principal: Principal, window: CheckinWindow, data: dict[str, Any]) -> bool:
    """Apply an edit; a window with check-ins needs data["reason"]. Returns False when nothing changed."""
    _require_institution(principal)
    window.activity.refuse_if_cancelled("不能修改刷卡周期")
    version = data.get("version")
    if version is not None and version != window.version:
        raise AppError(409, "conflict", "该刷卡周期已被他人修改，请刷新页面后重试。")
    new = {k: data.get(k, getattr(window, k)) for k in ("title", "kind", "starts_at", "ends_at")}
    changed = {k for k, v in new.items() if v != getattr(window, k)}
    if not changed:
        return False
    _check_times(window.activity, new["starts_at"], new["ends_at"])
    if {"starts_at", "ends_at"} & changed:
        _keep_checkins_inside(session, window, new["starts_at"], new["ends_at"])
    scans, _ = window_count(session, window.id)
    reason = (data.get("reason") or "").strip() or None
    if scans and not reason:
        raise AppError(422, "reason_required", f"该刷卡周期已有 {scans} 条签到记录，修改须填写原因。",
                       {"reason": "请填写修改原因（将记入操作日志）。"})
    before = window_summary(window.starts_at, window.ends_at, window.kind)
    old_title = window.title
    for k in changed:
        setattr(window, k, new[k])
    session.flush()  # the version check of the row happens here
    after = window_summary(window.starts_at, window.ends_at, window.kind)
    if before != after:
        record_audit(session, AuditLog, principal, "checkin_window", window.id, "window_edited",
                     from_state=before, to_state=after, reason=reason)
    if "title" in changed:
        record_audit(session, AuditLog, principal, "checkin_window", window.id, "window_renamed",
                     from_state=old_title[:40], to_state=window.title[:40], reason=reason)
    # credits' copies of this window's check-ins carry its kind, times and 标题 (考勤分析 names the window by it):
    # they follow every edit, a rename alone too (each field an edit changes is one of these)
    announce_window(session, window)
    return True


CHECKINS_OUTSIDE = "checkins_outside"


def _keep_checkins_inside(session: Session, window: CheckinWindow, starts_at: dt.datetime,
                          ends_at: dt.datetime) -> None:
    """Refuse times that would leave check-ins of the window outside it. 考勤分析 only takes ranges inside a window's
    times, so such check-ins would still be listed and counted on the projector but could never earn credit; to
    count only part of a window, the analysis narrows its own range."""
    at = Checkin.scanned_at
    outside = (at < starts_at) | (at > ends_at)
    # one pass over the window's check-ins: those left outside (how many, first, last) and all of them (lo, hi)
    n, first, last, lo, hi = session.execute(
        select(func.count().filter(outside), func.min(at).filter(outside), func.max(at).filter(outside),
               func.min(at), func.max(at)).where(Checkin.window_id == window.id)).one()
    if not n:
        return
    # the form's times are whole minutes: the latest a start may be, the earliest an end may be
    start_by = clock.fmt(lo, "%Y-%m-%d %H:%M")
    end_from = clock.fmt(hi + dt.timedelta(seconds=59) if hi.second or hi.microsecond else hi, "%Y-%m-%d %H:%M")
    errors = {}
    if lo < starts_at:
        errors["starts_at"] = f"已有签到记录早于此时间：开始时间不能晚于 {start_by}。"
    if hi > ends_at:
        errors["ends_at"] = f"已有签到记录晚于此时间：结束时间不能早于 {end_from}。"
    raise AppError(422, CHECKINS_OUTSIDE,
                   f"该刷卡周期有 {n} 条签到记录（{clock.fmt(first, '%H:%M:%S')}–{clock.fmt(last, '%H:%M:%S')}）不在"
                   "修改后的时间内，修改后它们仍列在签到名单中，却无法计入考勤分析，因此未修改。"
                   "如只需按部分时间认定考勤，请在考勤分析中缩小该时段的时间范围。", errors)


def delete_window(session: Session, principal: Principal, window: CheckinWindow) -> None:
    _require_institution(principal)
    window.activity.refuse_if_cancelled("不能删除刷卡周期")
    scans, _ = window_count(session, window.id)
    if scans:
        raise AppError(409, "window_has_checkins",
                       f"该刷卡周期已有 {scans} 条签到记录，不能删除；如时间有误，请修改并填写原因。")
    record_audit(session, AuditLog, principal, "checkin_window", window.id, "window_deleted",
                 from_state=window_summary(window.starts_at, window.ends_at, window.kind))
    # credits stops listing it in 考勤分析 (it has no check-in copies of it: a window with scans is refused above)
    emit(session, outbox, "checkin", "checkin.window_deleted", {**window_payload(window), "deleted_at": clock.now()})
    session.delete(window)
    session.flush()


# ---------------------------------------------------------------- forced check-in (代签)

def new_forced_nonce() -> str:
    return uuid.uuid4().hex


def forced_checkin(session: Session, principal: Principal, window: CheckinWindow, identity: dict[str, Any],
                   reason: str, nonce: str | None = None,
                   present_at: dt.datetime | None = None) -> tuple[Checkin, bool]:
    """Check a trainee in on the institution's word. Returns (check-in, created).

    Refused before the window starts (a forced check-in attests presence, which cannot precede the
    session); one made after the window closes is stamped at its end, unless the office gives the time she
    was there (`present_at`, inside the window and not after now). The trainee's identity on record is
    kept (the institution's typing never replaces it) and a different name is refused. A repeated submission
    (same nonce) or a trainee already checked in returns the existing check-in with created=False.
    """
    _require_institution(principal)
    window.activity.refuse_if_cancelled("不能代签")
    reason = (reason or "").strip()
    if not reason:
        raise AppError(422, "reason_required", "代签须填写原因。", {"reason": "请填写代签原因。"})
    now = clock.now()
    if now < window.starts_at:
        raise AppError(409, "window_not_started", "该刷卡周期尚未开始，不能代签。")
    full_nonce = FORCED_NONCE_PREFIX + (nonce or new_forced_nonce())
    # made after the session (the list is checked the next morning): it attests presence in the window, so it
    # is stamped at the window's end, where 考勤分析's ranges find it; recorded_at and the audit keep the real time.
    # A range narrowed to the first half hour (arrived on time) leaves that stamp out: the office may say when
    # she came instead, never outside the window nor later than now.
    scanned_at = min(now, window.ends_at)
    if present_at is not None:
        if not window.starts_at <= present_at <= scanned_at:
            start, end = clock.fmt(window.starts_at, "%m-%d %H:%M"), clock.fmt(scanned_at, "%H:%M")
            message = f"到场时间须在本时段内（{start} 至 {end}），且不晚于现在。"
            raise AppError(422, "present_at_outside", message, {"present_at": message})
        scanned_at = present_at
    result = record_checkin(session, window, nonce=full_nonce, scanned_at=scanned_at, identity=identity,
                            forced=True, forced_reason=reason, actor=principal)
    if result.checkin.window_id != window.id:  # cannot happen with our nonces; never hand out another's row
        raise AppError(409, "conflict", "提交重复，请刷新页面后重试。")
    if result.created:
        said = f"（到场时间 {clock.fmt(present_at, '%m-%d %H:%M')}）" if present_at is not None else ""
        record_audit(session, AuditLog, principal, "checkin", result.checkin.id, "forced_checkin",
                     to_state=window_summary(window.starts_at, window.ends_at, window.kind), reason=reason + said)
    return result.checkin, result.created


def kept_details(trainee: Any, typed: dict[str, Any]) -> list[str]:
    """The labels of what a 代签 typed differently from the trainee's own details, which were kept (the clerk is
    told, rather than finding the list showing something else)."""
    labels = {"mobile": "手机号码", "title": "职称", "unit": "单位"}
    try:
        mobile = pii.decrypt(trainee.mobile_enc) if trainee.mobile_enc else ""
    except ValueError:  # a key dropped before re-encryption: nothing to compare with
        mobile = typed.get("mobile", "")
    on_record = {"mobile": mobile, "title": trainee.title, "unit": trainee.unit}
    return [label for field, label in labels.items() if typed.get(field) and typed[field] != on_record[field]]


# ---------------------------------------------------------------- the check-in list

def search_kind(q: str | None) -> str | None:
    """'id' for a full ID number, 'mobile' for a full mobile (+86 and groups as the scan form reads it),
    'digits' for anything else mostly made of digits (a part of a number: found by nothing, and kept out of URLs
    all the same), 'name' otherwise (None when blank)."""
    if not q or not q.strip():
        return None
    text = re.sub(r"[\s\-]", "", half_width(q)).upper()
    if _ID_SHAPE.match(text):
        return "id"
    if _MOBILE_SHAPE.match(normalise_mobile(text)):
        return "mobile"
    if sum(ch.isdigit() for ch in text) >= 6:
        return "digits"
    return "name"


def checkin_query(activity: Activity, q: str | None = None, window_id: int | None = None) -> Any:
    q = half_width(q) if q else q  # an ID number pasted in 全角 digits is the same number
    # the trainee from the join the search needs anyway (joinedload added a second join of trainees)
    stmt = (select(Checkin).join(Trainee, Checkin.trainee_id == Trainee.id)
            .where(Checkin.activity_id == activity.id)
            .options(contains_eager(Checkin.trainee), joinedload(Checkin.window)))
    if window_id is not None:
        stmt = stmt.where(Checkin.window_id == window_id)
    kind = search_kind(q)
    if kind == "id":
        stmt = stmt.where(Trainee.trainee_key == pii.id_hash(re.sub(r"[\s\-]", "", q or "")))
    elif kind == "mobile":
        stmt = stmt.where(Trainee.mobile_hash == pii.mobile_hash(normalise_mobile(q or "")))
    elif kind == "digits":
        stmt = stmt.where(false())  # only whole numbers are looked up (by their keyed hash)
    elif kind == "name":
        stmt = stmt.where(or_(Trainee.name.icontains(q.strip(), autoescape=True),  # type: ignore[union-attr]
                              Trainee.unit.icontains(q.strip(), autoescape=True)))  # type: ignore[union-attr]
    return stmt


def flag_labels(checkin: Checkin) -> list[str]:
    return [REASONS.get(f, f).rstrip("。") for f in (checkin.flags or [])]


def _time_note(checkin: Checkin, window: CheckinWindow) -> str:
    """Where a 代签's time is not the moment it was made, the list says so: made after the window closed (stamped
    at its end, or at the 到场时间 the office gave), or during it with an earlier 到场时间. A scan, or a 代签 at its
    own moment (milliseconds before its row's recorded_at), has none."""
    if not checkin.forced:
        return ""
    if checkin.recorded_at > window.ends_at:
        return f"时段结束后补录，补录时间 {clock.fmt(checkin.recorded_at)}"
    if checkin.recorded_at - checkin.scanned_at > dt.timedelta(minutes=1):
        return f"到场时间由举办机构填写，代签时间 {clock.fmt(checkin.recorded_at)}"
    return ""


def checkin_row(checkin: Checkin, masks: dict[int, tuple[str, str]] | None = None) -> dict[str, Any]:
    """One row as the institution sees it: ID number and mobile masked. `masks` (trainee id -> masked ID number
    and mobile) keeps each trainee's decrypted once over a list where she has a row per window."""
    t, w = checkin.trainee, checkin.window
    masked = masks.get(t.id) if masks is not None else None
    if masked is None:
        masked = (t.masked_id, t.masked_mobile)
        if masks is not None:
            masks[t.id] = masked
    return {"id": checkin.id, "window_id": w.id, "window_title": w.title, "window_kind": w.kind,
            "window_kind_label": w.kind_label, "name": t.name, "id_number_masked": masked[0],
            "mobile_masked": masked[1], "title": t.title, "unit": t.unit, "scanned_at": checkin.scanned_at,
            "recorded_at": checkin.recorded_at, "forced": checkin.forced,
            "time_note": _time_note(checkin, w),
            "method": "代签" if checkin.forced else "扫码", "forced_reason": checkin.forced_reason,
            "flags": list(checkin.flags or []), "flag_labels": flag_labels(checkin)}


def window_of(session: Session, activity: Activity, window_id: int | None) -> CheckinWindow | None:
    """A 时段 filter naming another activity's window (a link edited, a page of another activity) is refused, not
    answered with an empty list that reads as "nobody checked in"."""
    if window_id is None:
        return None
    window = session.get(CheckinWindow, window_id)
    if window is None or window.activity_id != activity.id:
        raise AppError(404, "not_found", "该刷卡周期不存在，或不属于本活动。")
    return window


def checkin_page(session: Session, activity: Activity, args: dict[str, Any]) -> dict[str, Any]:
    window_of(session, activity, args.get("window_id"))
    stmt = checkin_query(activity, args.get("q"), args.get("window_id"))
    page = paginate(session, stmt, args, Checkin.scanned_at.desc(), Checkin.id.desc())
    page["items"] = [checkin_row(c) for c in page["items"]]
    return page


def refused_scans(session: Session, activity: Activity, window_id: int | None = None,
                  limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
    """The latest refused scans of the activity with their reasons. The ID number typed is shown masked where it
    is one on record (the doctor who comes to the desk is found by its last digits); nobody is named: a refusal
    may come from anyone, typing anyone's number."""
    window_of(session, activity, window_id)
    stmt = select(RefusedScan).where(RefusedScan.activity_id == activity.id)
    if window_id is not None:
        stmt = stmt.where(RefusedScan.window_id == window_id)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    titles = dict(session.execute(select(CheckinWindow.id, CheckinWindow.title)
                                  .where(CheckinWindow.activity_id == activity.id)).all())
    rows = session.scalars(stmt.order_by(RefusedScan.at.desc(), RefusedScan.id.desc()).limit(limit)).all()
    # on the activity's own list its refusals say which of the two ended it (the generic label names both)
    reasons = {**REASONS, "activity_cancelled": f"本期{activity.cancel_label}，不能签到。"} if activity.cancelled \
        else REASONS
    keys = {r.trainee_key for r in rows if r.trainee_key}
    known = {t.trainee_key: t for t in session.scalars(select(Trainee).where(Trainee.trainee_key.in_(keys)))} \
        if keys else {}
    return total, [{"id": r.id, "at": r.at, "window_id": r.window_id,
                    "window_title": titles.get(r.window_id or 0, ""), "reason": r.reason,
                    "reason_label": reasons.get(r.reason, r.reason),
                    "id_number_masked": known[r.trainee_key].masked_id if r.trainee_key in known else ""}
                   for r in rows]


EXPORT_HEADERS = ("序号", "姓名", "身份证号码", "手机号码", "职称", "单位", "时段", "类型", "签到/签退时间", "方式",
                  "代签原因", "标记")
EXPORT_MAX_ROWS = 20000


def export_checkins(session: Session, principal: Principal, activity: Activity, q: str | None = None,
                    window_id: int | None = None) -> tuple[bytes, int]:
    """The check-in list as an .xlsx (masked ID numbers and mobiles only); the export is audit-logged."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    window = window_of(session, activity, window_id)
    stmt = checkin_query(activity, q, window_id).order_by(Checkin.scanned_at, Checkin.id)
    rows = session.scalars(stmt.limit(EXPORT_MAX_ROWS + 1)).unique().all()
    if len(rows) > EXPORT_MAX_ROWS:
        raise AppError(422, "too_many_rows", f"一次最多导出 {EXPORT_MAX_ROWS} 条，请按时段筛选后分别导出。")
    # write-only: each row goes to the file as it is appended (a 期 of 2,000 trainees over four windows is
    # ~8,000 rows; the ordinary workbook kept every cell and took ~25 % longer); widths and panes come first
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("签到名单")
    for col, width in zip("ABCDEFGHIJKL", (6, 10, 22, 15, 12, 28, 20, 6, 20, 6, 24, 30), strict=True):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "A4"
    ws.append(text_row(ws, [f"{activity.project_title}（{activity.seq_label}） 签到名单"]))
    # a cancelled 期's list is kept as history: the sheet says so, as its pages do (the cell starts with 项目编号)
    ended = f" · {activity.cancel_sentence}，原因：{activity.cancel_reason}" if activity.cancelled else ""
    ws.append([f"项目编号 {activity.project_number}{ended} · 导出时间 {clock.fmt(clock.now())} · 共 {len(rows)} 条"])
    headers = [WriteOnlyCell(ws, value=header) for header in EXPORT_HEADERS]
    for cell in headers:
        cell.font = Font(bold=True)
    ws.append(headers)
    masks: dict[int, tuple[str, str]] = {}
    for n, c in enumerate(rows, 1):
        r = checkin_row(c, masks)
        # None, not "", for an empty cell: it is left out of the file rather than written as an empty string
        ws.append(text_row(ws, [n, r["name"], r["id_number_masked"], r["mobile_masked"], r["title"], r["unit"],
                                r["window_title"], r["window_kind_label"],
                                clock.fmt(r["scanned_at"], "%Y-%m-%d %H:%M:%S")
                                + (f"（{r['time_note']}）" if r["time_note"] else ""),
                                r["method"], r["forced_reason"] or None,
                                "；".join(r["flag_labels"]) or None]))
    out = io.BytesIO()
    wb.save(out)
    detail = []
    if window is not None:  # named as the office knows it (its id meant nothing in 办理记录), with its times
        detail.append(f"时段“{window.title}” {window_summary(window.starts_at, window.ends_at, window.kind)}")
    if q:
        detail.append("按检索条件筛选")
    record_audit(session, AuditLog, principal, "activity", activity.id, "checkins_exported",
                 reason=f"导出签到名单 {len(rows)} 条" + (f"（{'，'.join(detail)}）" if detail else ""))
    return out.getvalue(), len(rows)
