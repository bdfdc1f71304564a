"""The institution's side of 项目举办前登记: its projects with the next unfiled 期, drafts, uploads, 上报.

Every function takes the session and the acting Principal, checks ownership itself and leaves the
commit to the caller (one commit per request).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, selectinload

from services.common import clock, pii
from services.common.auth import Principal, own_institution
from services.common.errors import AppError
from services.common.events import emit
from services.common.paging import matches, paginate

from .. import uploads as jpg
from ..audit.models import AuditLog, history_of, record
from ..catalogue.models import ONLINE_MODES, Project
from ..db import outbox
from . import states
from .models import Filing, FilingUpload, Offering, seq_label

MIN_DAYS_BEFORE = 7
MAX_SEQ = 99  # offerings.seq's check
# a draft deleted in another tab is the likely reason an office meets this (a page saved after 删除草稿)
FILING_MISSING = "该登记不存在（草稿可能已在其他页面删除）。请回到“项目举办前登记”重新登记。"
FILING_FIELDS = ("starts_on", "ends_on", "venue", "mode", "expected_trainees", "contact_person", "note")


# ---------------------------------------------------------------- the list of own projects


@dataclass
class ProjectRow:
    project: Project
    offerings: list[dict[str, Any]]
    next_seq: int | None
    next_label: str | None
    next_filing_id: int | None
    year_closed: bool = False
    closed_reason: str | None = None


def year_closed_reason(project: Project) -> str | None:
    """Why no new 期 of the project can be filed any more, or None: a project is held within its catalogue year,
    and 上报 needs a start at least 7 days ahead, so from late December (or once the year is over) a new draft
    could never be sent."""
    if earliest_start().year <= project.year:
        return None
    if clock.today_local().year > project.year:
        return f"{project.year} 年度已结束，不能再登记新的期次。"
    return (f"本项目为 {project.year} 年度项目，须在举办前 {MIN_DAYS_BEFORE} 天登记，{project.year} 年内已无可登记的"
            f"举办日期，不能再登记新的期次。")


def _row(project: Project, offerings: list[Offering]) -> ProjectRow:
    by_seq = {o.seq: o for o in offerings}
    shown = []
    for o in sorted(offerings, key=lambda o: o.seq):
        f = o.filing
        if f is not None:
            shown.append({"seq": o.seq, "label": o.label, "filing_id": f.id, "state": f.state,
                          "state_label": states.LABELS[f.state]})
    next_seq = next_id = None
    # the first 期 with no filing yet, or whose filing is still an unsent draft, is "未登记"; a 期 not held
    # (cancelled) leaves its place to one more 期次
    places = min(project.offerings_count + sum(o.filing is not None and o.filing.state == "cancelled"
                                               for o in offerings), MAX_SEQ)
    for seq in range(1, places + 1):
        o = by_seq.get(seq)
        if o is None or o.filing is None or o.filing.state == "draft":
            next_seq = seq
            next_id = o.filing.id if o is not None and o.filing is not None else None
            break
    closed = year_closed_reason(project) if next_seq is not None else None  # all filed: nothing to close
    if closed and next_id is None:  # a draft begun in time still opens (to be deleted); no new one is offered
        next_seq = None
    return ProjectRow(project, shown, next_seq, f"{seq_label(next_seq)}未登记" if next_seq else None, next_id,
                      closed is not None, closed)


def _has_state(state: str) -> Any:
    return exists().where(Offering.project_id == Project.id, Filing.offering_id == Offering.id, Filing.state == state)


def own_projects_page(session: Session, principal: Principal, args: dict[str, Any]) -> dict[str, Any]:
    stmt = select(Project).where(Project.institution_id == principal.institution_id)
    if args.get("year"):
        stmt = stmt.where(Project.year == args["year"])
    if args.get("number"):
        stmt = stmt.where(matches(args["number"], Project.number))
    if args.get("q"):
        stmt = stmt.where(matches(args["q"], Project.title, Project.number))
    status = args.get("status")
    if status == "unfiled":
        filed = (select(func.count(Filing.id)).join(Offering, Filing.offering_id == Offering.id)
                 .where(and_(Offering.project_id == Project.id, Filing.state.not_in(("draft", "cancelled"))))
                 .scalar_subquery())
        stmt = stmt.where(filed < Project.offerings_count)
    elif status:
        stmt = stmt.where(_has_state(status))
    result = paginate(session, stmt, args, Project.year.desc(), Project.number)
    projects = result["items"]
    # the offerings of this page's projects only, loaded after the slice
    offerings: dict[int, list[Offering]] = {p.id: [] for p in projects}
    if projects:
        for o in session.scalars(select(Offering).options(selectinload(Offering.filing))
                                 .where(Offering.project_id.in_(offerings))):
            offerings[o.project_id].append(o)
    result["items"] = [_row(p, offerings[p.id]) for p in projects]
    return result


# ---------------------------------------------------------------- loading with ownership


def returned_counts(session: Session, principal: Principal) -> dict[str, int]:
    """What the committee sent back to this institution and still waits: the landing page says so, since a
    return sent no message and the report's 14 days run on."""
    from ..reports.models import ExecutionReport  # late: reports build on filings

    filings = session.scalar(select(func.count(Filing.id)).where(
        Filing.institution_id == principal.institution_id, Filing.state == "returned")) or 0
    reports = session.scalar(select(func.count(ExecutionReport.id)).where(
        ExecutionReport.institution_id == principal.institution_id, ExecutionReport.state == "returned")) or 0
    return {"filings": filings, "reports": reports}


def get_filing(session: Session, principal: Principal, filing_id: int, lock: bool = False) -> Filing:
    stmt = select(Filing).where(Filing.id == filing_id)
    if lock:
        stmt = stmt.with_for_update()
    filing = session.scalar(stmt)
    if filing is None:
        raise AppError(404, "not_found", FILING_MISSING)
    own_institution(principal, filing.institution_id, FILING_MISSING)  # another's: as if missing
    return filing


def _own_project(session: Session, principal: Principal, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise AppError(404, "not_found", "该项目不存在。")
    own_institution(principal, project.institution_id, "该项目不存在。")
    return project


# ---------------------------------------------------------------- actions


def start_offering(session: Session, principal: Principal, project_id: int) -> Filing:
    """The row button: open the draft of the first unfiled 期, creating the 期 and its draft if needed."""
    project = session.scalar(select(Project).where(Project.id == project_id).with_for_update())
    if project is None:
        raise AppError(404, "not_found", "该项目不存在。")
    own_institution(principal, project.institution_id, "该项目不存在。")
    offerings = session.scalars(select(Offering).where(Offering.project_id == project.id)).all()
    row = _row(project, list(offerings))
    if row.next_seq is None and row.closed_reason:
        raise AppError(409, "year_closed", row.closed_reason)
    if row.next_seq is None:
        raise AppError(409, "all_filed", f"该项目共 {project.offerings_count} 期，均已登记。")
    if row.next_filing_id is not None:
        return get_filing(session, principal, row.next_filing_id)
    offering = next((o for o in offerings if o.seq == row.next_seq), None)
    if offering is None:
        offering = Offering(project_id=project.id, seq=row.next_seq, created_at=clock.now())
        session.add(offering)
        session.flush()
    filing = Filing(offering_id=offering.id, institution_id=project.institution_id, state="draft",
                    venue=project.venue, mode=project.mode, schedule=[], created_at=clock.now())
    session.add(filing)
    session.flush()
    record(session, principal, "filing", filing.id, "create", None, "draft")
    return filing


def delete_draft(session: Session, principal: Principal, filing: Filing, version: int | None = None) -> Offering:
    """删除草稿: a 期 opened by mistake (or to be filed another time) goes with its draft and JPGs, so the
    project's row says 未登记 again. The 期 was never approved, so no other service knows its id."""
    states.ensure_deletable(filing)
    _check_version(filing, version)
    offering = filing.offering
    record(session, principal, "filing", filing.id, "delete", filing.state, None)
    session.delete(filing)
    session.delete(offering)
    session.flush()
    return offering


def cancel_refused(filing: Filing) -> str | None:
    """Why the office cannot 取消举办 this 期 itself, or None: only an approved one, before its first day (from then
    on scans and awards may exist, and the committee, who sees them, marks it 未举办)."""
    if filing.state != "approved":
        return f"该登记当前状态为“{states.LABELS[filing.state]}”，只有审批通过的期次可以取消举办。"
    if filing.starts_on is not None and filing.starts_on <= clock.today_local():
        return (f"本期已于 {filing.starts_on} 开始举办，不能再由举办机构取消；如确未举办，请联系省继续医学教育委员会"
                "标记未举办。")
    return None


def emit_cancelled(session: Session, filing: Filing) -> None:
    """offering.cancelled, in the transaction of the state change: checkin closes the activity, credits stops 授分."""
    emit(session, outbox, "projects", "offering.cancelled",
         {"offering_id": filing.offering_id, "institution_id": filing.institution_id,
          "cancelled_at": filing.cancelled_at, "by": filing.cancelled_by, "reason": filing.cancel_reason})


def unheld_refused(session: Session, filing: Filing) -> str | None:
    """Why the committee cannot mark this 期 未举办, or None: only an approved one, and only while it has no
    execution report (a report, even a draft, is the office saying it was held; a draft can be deleted first)."""
    from ..reports.models import ExecutionReport  # late: reports build on filings
    from ..reports.states import LABELS as REPORT_LABELS

    if filing.state != "approved":
        return f"该登记当前状态为“{states.LABELS[filing.state]}”，只有审批通过的期次可以标记未举办。"
    report = session.scalar(select(ExecutionReport.state).where(ExecutionReport.offering_id == filing.offering_id))
    if report == "draft":
        return "举办机构已新建本期的执行情况反馈（草稿）；如确未举办，请举办机构先删除该草稿。"
    if report is not None:
        return f"本期执行情况反馈{REPORT_LABELS[report]}，说明已举办，不能标记未举办。"
    return None


def unheld_warning(session: Session, filing: Filing, today: dt.date) -> str:
    """What marking this approved 期 未举办 undoes, as far as projects knows (check-ins are checkin's): once its
    first day has come doctors may have scanned, and an award list credits sent means credits that will never take
    effect. "" before the first day with no list. The clerk reads it beside the button and in the confirmation."""
    from ..awarded.models import AwardedList  # late: the award lists build on offerings

    parts = []
    if filing.starts_on is not None and today >= filing.starts_on:
        parts.append(f"本期已于 {filing.starts_on.isoformat()} 开始，可能已有学员扫码签到")
    listed = session.scalar(select(AwardedList.count).where(AwardedList.offering_id == filing.offering_id))
    if listed:
        parts.append(f"举办机构已为 {listed} 人授分")
    if not parts:
        return ""
    return "，".join(parts) + "：标记后这些签到和授分都不会计入学分，学员的达标情况查询将显示“项目未举办”。"


# why an approved 期 cannot be ended by each action now: (the refusal, its code when the state is right)
_END_REFUSED = {"cancel": (lambda session, filing: cancel_refused(filing), "started"),
                "mark_unheld": (unheld_refused, "has_report")}


def end_filing(session: Session, principal: Principal, filing: Filing, action: str, reason: str,
               version: int | None = None) -> Filing:
    """取消举办 (the office's, action "cancel": its approved 期 will not be held) or 标记未举办 (the committee's,
    "mark_unheld": the chase list of 年度统计 finds them): no report is due any more, checkin and credits are told,
    and the project may file one more 期 in its place."""
    if filing.state == "cancelled":  # a second click, or the other side first: said as done, by whom
        raise AppError(409, "bad_state", f"{states.ENDED[filing.cancelled_by or states.CANCELLED_BY[action]]}。")
    refusal, code = _END_REFUSED[action]
    refused = refusal(session, filing)
    if refused:
        raise AppError(409, "bad_state" if filing.state != "approved" else code, refused)
    _check_version(filing, version)
    states.transition(session, principal, filing, action, reason)
    emit_cancelled(session, filing)
    return filing


def _check_version(filing: Filing, version: int | None) -> None:
    if version is not None and version != filing.version:
        raise AppError(409, "conflict", "该登记已被修改，请刷新页面后重试。")


def _schedule_json(items: list[dict[str, Any]]) -> list[dict[str, str]]:
    items = sorted(items, key=lambda i: (i["date"], i["start"]))
    return [{"date": i["date"].isoformat(), "start": i["start"].strftime("%H:%M"),
             "end": i["end"].strftime("%H:%M"), "title": i["title"]} for i in items]


def save_filing(session: Session, principal: Principal, filing: Filing, data: dict[str, Any]) -> Filing:
    """保存: set the fields given (already loaded through FilingInSchema/FilingFormSchema)."""
    states.ensure_editable(filing)
    _check_version(filing, data.get("version"))
    for name in FILING_FIELDS:
        if name in data:
            value = data[name]
            setattr(filing, name, "" if value is None and name in ("venue", "contact_person", "note") else value)
    if "contact_phone" in data:
        phone = data["contact_phone"]
        filing.contact_phone_enc = pii.encrypt(phone) if phone else None
    if filing.starts_on and filing.ends_on and filing.ends_on < filing.starts_on:
        raise AppError(422, "invalid_input", "结束日期不能早于开始日期。", {"ends_on": "结束日期不能早于开始日期。"})
    _check_project_year(filing)
    if "schedule" in data:
        # checked in the order the rows were typed, so that 第 N 行 is the row on the screen; then kept by date
        _check_schedule_dates(filing, [{"date": i["date"].isoformat()} for i in data["schedule"] or []])
        filing.schedule = _schedule_json(data["schedule"] or [])
    else:
        _check_schedule_dates(filing)
    session.flush()
    return filing


def _check_project_year(filing: Filing) -> None:
    """A project of the 2027 catalogue is held in 2027: filed for December 2026 it was approved, and its credits
    went to the trainees' 2026 requirement while the committee's lists showed it under 2027."""
    year = filing.project.year
    for name in ("starts_on", "ends_on"):
        day = getattr(filing, name)
        if day is not None and day.year != year:
            msg = f"本项目为 {year} 年度项目（项目目录），举办日期须在 {year} 年内。"
            raise AppError(422, "invalid_input", msg, {name: msg})


def schedule_outside(starts_on: dt.date | None, ends_on: dt.date | None, rows: list[dict[str, Any]]) -> str | None:
    """The message naming the schedule rows dated outside the offering's days (rows whose date cannot be read
    are another message's business), or None."""
    if not (starts_on and ends_on):
        return None
    outside = []
    for n, row in enumerate(rows, 1):
        try:
            day = dt.date.fromisoformat(str(row.get("date", "")))
        except ValueError:
            continue
        if not starts_on <= day <= ends_on:
            outside.append(n)
    if not outside:
        return None
    named = "、".join(f"第 {n} 行" for n in outside)
    return f"日程安排{named}的日期不在举办起止日期（{starts_on} 至 {ends_on}）之内。"


def _check_schedule_dates(filing: Filing, rows: list[dict[str, str]] | None = None) -> None:
    msg = schedule_outside(filing.starts_on, filing.ends_on, filing.schedule or [] if rows is None else rows)
    if msg:
        raise AppError(422, "invalid_input", msg, {"schedule": msg})


def put_upload(session: Session, principal: Principal, filing: Filing, kind: str, filename: str | None,
               raw: bytes) -> FilingUpload:
    if kind not in jpg.KINDS:
        raise AppError(404, "not_found", "不支持的上传类型。")
    states.ensure_editable(filing)
    clean = jpg.clean_jpeg(raw, kind)
    existing = filing.upload(kind)
    if existing is not None:  # a new upload of a kind replaces the old one
        filing.uploads.remove(existing)
        session.flush()
    up = FilingUpload(kind=kind, filename=jpg.safe_filename(filename), size=len(clean.data), width=clean.width,
                      height=clean.height, sha256=clean.sha256, data=clean.data, uploaded_at=clock.now())
    filing.uploads.append(up)
    filing.updated_at = clock.now()  # bumps the version: an upload is a change of the filing
    session.flush()
    return up


def required_uploads(filing: Filing, mode: str | None = None) -> list[str]:
    """The JPGs 保存并上报 needs; `mode` (as just typed) decides whether the 线上 one is, else the saved mode."""
    kinds = ["notice", "agenda"]
    if (mode or filing.mode) in ONLINE_MODES:
        kinds.append("online_supervision")
    return kinds


# what 保存并上报 needs besides the JPGs, in the order of the form: (field, label)
REQUIRED_FIELDS = (("starts_on", "举办开始日期"), ("ends_on", "举办结束日期"), ("venue", "举办地点"),
                    ("expected_trainees", "预计培训人数"), ("contact_person", "联系人"), ("contact_phone", "联系电话"),
                    ("schedule", "日程安排"))


def missing_message(field: str) -> str:
    """Said next to a field that 保存并上报 finds empty (the list 上报前尚缺 names it too)."""
    if field == "online_supervision":
        return "线上或线上线下举办时，上报前须上传线上学员授予学分监管说明（JPG）。"
    if field in jpg.KINDS:
        return f"上报前须上传{jpg.KINDS[field]}（JPG）。"
    if field == "schedule":
        return "上报前须填写日程安排（至少一个时段）。"
    return f"上报前须填写{dict(REQUIRED_FIELDS)[field]}。"


def missing_fields(filing: Filing) -> dict[str, str]:
    """{field: label} of what 保存并上报 still needs, in the order of the form."""
    have = {"starts_on": filing.starts_on, "ends_on": filing.ends_on, "venue": filing.venue,
            "expected_trainees": filing.expected_trainees, "contact_person": filing.contact_person,
            "contact_phone": filing.contact_phone_enc, "schedule": filing.schedule}
    missing = {field: label for field, label in REQUIRED_FIELDS if not have[field]}
    missing.update({k: jpg.KINDS[k] for k in required_uploads(filing) if filing.upload(k) is None})
    return missing


def missing_items(filing: Filing) -> list[str]:
    """What 保存并上报 still needs, in Chinese, in the order of the form."""
    return list(missing_fields(filing).values())


def earliest_start() -> dt.date:
    return clock.today_local() + dt.timedelta(days=MIN_DAYS_BEFORE)


DOUBLE_CLICK_SECONDS = 30


def just_submitted(session: Session, principal: Principal, filing: Filing) -> bool:
    """The filing was 上报 by this person a moment ago: a second 保存并上报 is the same click arriving twice."""
    if filing.state != "submitted":
        return False
    last = session.scalars(select(AuditLog).where(AuditLog.object_type == "filing", AuditLog.object_id == filing.id)
                           .order_by(AuditLog.id.desc()).limit(1)).first()
    return (last is not None and last.action == "submit" and last.actor == principal.describe()
            and clock.now() - last.at <= dt.timedelta(seconds=DOUBLE_CLICK_SECONDS))


def submit_filing(session: Session, principal: Principal, filing: Filing, version: int | None = None) -> Filing:
    """保存并上报: complete, dates consistent, and at least 7 days before the offering starts."""
    # the state before the version: a double click's second 上报 hears "已上报", not "modified by someone else"
    if not states.can(filing, "submit"):
        states.transition(session, principal, filing, "submit")  # raises the state's own refusal
    _check_version(filing, version)
    missing = missing_fields(filing)
    if missing:
        # each one said next to its own field as well (the form; the API's fields), not only in the list
        raise AppError(422, "incomplete", "尚有必填内容未完成：" + "、".join(missing.values()) + "。",
                       {"missing": "、".join(missing.values()), **{k: missing_message(k) for k in missing}})
    _check_schedule_dates(filing)
    earliest = earliest_start()
    assert filing.starts_on is not None
    if filing.starts_on < earliest:
        raise AppError(422, "too_late",
                       f"项目举办前登记须在举办前 {MIN_DAYS_BEFORE} 天完成：本期开始日期为 {filing.starts_on}，"
                       f"今天上报的最早举办日期为 {earliest}。请调整举办日期。",
                       {"starts_on": f"最早可选 {earliest}。"})
    states.transition(session, principal, filing, "submit")
    return filing


# ---------------------------------------------------------------- presenting


# 2026年5月, 5月, 2026年5月1日, and the 5 of "2026年5-10月" (a month named by the 月 after the range)
_MONTH = re.compile(r"(?:(\d{4})\s*年)?\s*(\d{1,2})\s*(?:月(?:\s*(\d{1,2})\s*[日号])?"
                    r"|(?=\s*[-—–~至到]\s*\d{1,2}\s*月))")
# 2027.3.1, 2027/10/1, 2027-03-01 (an Excel date cell as imported), 2027.03
_NUMERIC = re.compile(r"(?<!\d)(\d{4})\s*[./-]\s*(\d{1,2})(?:\s*[./-]\s*(\d{1,2}))?(?!\d)")


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)


_SIDE_FORMS = (  # one end of a range, as written: (year, month, day) where given
    re.compile(r"(?:(?P<y>\d{4})\s*[年./-]\s*)?(?P<m>\d{1,2})\s*月\s*(?:(?P<d>\d{1,2})\s*[日号])?"),
    re.compile(r"(?P<d>\d{1,2})\s*[日号]"),
    re.compile(r"(?P<y>\d{4})\s*[./-]\s*(?P<m>\d{1,2})(?:\s*[./-]\s*(?P<d>\d{1,2}))?"),
    re.compile(r"(?P<m>\d{1,2})\s*[./-]\s*(?P<d>\d{1,2})"),
    re.compile(r"(?P<bare>\d{1,2})"),
)
_RANGE_WORDS = re.compile(r"—+|–|~|至|到")


def _side(text: str) -> dict[str, int] | None:
    for form in _SIDE_FORMS:
        found = form.fullmatch(text.strip())
        if found:
            return {k: int(v) for k, v in found.groupdict().items() if v}
    return None


def _as_range(left: str, right: str | None, year: int) -> tuple[dt.date, dt.date] | None:
    """Two ends (the second inheriting the year and month it leaves out: 2027年3月10日—12日, 2027/3/1-6/30,
    2027.3-6), or one end alone (that day, or that month); None when they are no dates or the second comes first."""
    start = _side(left)
    end = _side(right) if right is not None else {k: v for k, v in (start or {}).items() if k in ("m", "d")}
    if not start or "m" not in start or end is None:  # a start names its month
        return None
    if "bare" in end:  # a number alone: a day after a day (3月1日-6), a month after a month (2027.3-6)
        end = {"d" if "d" in start else "m": end["bare"]}
    y1 = start.get("y", year)
    y2, m2 = end.get("y", y1), end.get("m", start["m"] if "d" in end else None)
    if m2 is None:  # an end that is a year alone
        return None
    try:
        first = dt.date(y1, start["m"], start.get("d", 1))
        last = dt.date(y2, m2, end["d"]) if "d" in end else _month_end(y2, m2)
    except ValueError:
        return None
    return (first, last) if first <= last and 2000 <= y1 <= y2 <= 2099 else None


def _period_range(text: str, year: int) -> tuple[dt.date, dt.date] | None:
    """The text as one date or one range of dates (split at 至, —, ~, or a "-" between two dates)."""
    words = list(_RANGE_WORDS.finditer(text))
    if len(words) == 1:
        return _as_range(text[:words[0].start()], text[words[0].end():], year)
    if words:
        return None
    for dash in (i for i, c in enumerate(text) if c == "-"):
        found = _as_range(text[:dash], text[dash + 1:], year)
        if found:
            return found
    return _as_range(text, None, year)


def impossible_date(text: str) -> str | None:
    """The first date the text writes that no calendar has (2026年13月, 2026-02-30), as written; else None.
    catalogue_period skips such a date, so a catalogue row holding one would never be checked against."""
    text = unicodedata.normalize("NFKC", text or "")

    def exists(y: str, m: str, d: str) -> bool:
        try:
            dt.date(int(y) if y else 2000, int(m), int(d) if d else 1)  # no year: 2000 has a 29 February
        except ValueError:
            return False
        return True

    for found in _NUMERIC.finditer(text):
        if not exists(*found.groups()):
            return found.group(0).strip()
    for found in _MONTH.finditer(_NUMERIC.sub(" ", text)):
        if not exists(*found.groups()):
            return found.group(0).strip()
    return None


def catalogue_period(text: str, year: int) -> tuple[dt.date, dt.date] | None:
    """The first and last day the catalogue's 举办起止时间 names: a range as clerks write it ("2027年3月10日—12日",
    "2027.3.1-2027.6.30", "2027/3/1-6/30", "2027.3-6", "2027年10月1日至3日", an Excel date cell), else the months
    it names ("2026年5-10月", "2026年5月、9月", a month without a year taking the one before it, or the project's).
    A named day is that day, a month all of it. None when it names neither (free text such as "全年" or "待定")."""
    text = unicodedata.normalize("NFKC", text or "").strip()
    found = _period_range(text, year)
    if found:
        return found
    spans: list[tuple[dt.date, dt.date]] = []

    def add(y: int, m: int, d: str | None) -> None:
        if not (1 <= m <= 12 and 2000 <= y <= 2099):
            return
        if not d:
            spans.append((dt.date(y, m, 1), _month_end(y, m)))
            return
        try:
            day = dt.date(y, m, int(d))
        except ValueError:
            return
        spans.append((day, day))

    for y, m, d in _NUMERIC.findall(text):
        add(int(y), int(m), d)
    for y, m, d in _MONTH.findall(_NUMERIC.sub(" ", text)):
        year = int(y) if y else year
        add(year, int(m), d)
    if not spans:
        return None
    return min(start for start, _ in spans), max(end for _, end in spans)


def filing_checks(filing: Filing) -> list[str]:
    """Notes for the office before 上报 and for the committee's clerk, never refusals: the catalogue's period
    is the committee's own text and a 期 outside it may be agreed (the office's walk filed one unremarked)."""
    project = filing.project
    period = catalogue_period(project.period_text, project.year)
    if period is None or filing.starts_on is None or filing.ends_on is None:
        return []
    if filing.starts_on < period[0] or filing.ends_on > period[1]:
        return [f"举办日期 {filing.starts_on} 至 {filing.ends_on} 不在项目目录的举办时间（{project.period_text}）内。"]
    return []


def filing_dict(session: Session, principal: Principal, filing: Filing) -> dict[str, Any]:
    project = filing.project
    owner = principal.role == "institution" and principal.institution_id == filing.institution_id
    return {
        "id": filing.id, "offering_id": filing.offering_id, "seq": filing.offering.seq,
        "seq_label": filing.offering.label, "institution_id": filing.institution_id,
        "institution_name": project.institution.name, "project": project, "state": filing.state,
        "state_label": states.LABELS[filing.state], "version": filing.version, "starts_on": filing.starts_on,
        "ends_on": filing.ends_on, "venue": filing.venue, "mode": filing.mode,
        "expected_trainees": filing.expected_trainees, "contact_person": filing.contact_person,
        "contact_phone": filing.contact_phone if owner else filing.contact_phone_masked,
        "schedule": filing.schedule or [],
        "uploads": [{"kind": u.kind, "label": jpg.KINDS[u.kind], "filename": u.filename, "size": u.size,
                     "width": u.width, "height": u.height, "sha256": u.sha256,
                     "url": f"/projects/filings/{filing.id}/uploads/{u.kind}"} for u in filing.uploads],
        "missing": missing_items(filing), "return_reason": filing.return_reason, "note": filing.note or "",
        "checks": filing_checks(filing),
        "submitted_at": filing.submitted_at, "decided_at": filing.decided_at,
        "cancelled_at": filing.cancelled_at, "cancelled_by": filing.cancelled_by, "cancel_reason": filing.cancel_reason,
        "can_cancel": cancel_refused(filing) is None if owner else False,
        "history": history_of(session, "filing", filing.id),
        # how far the start is, for a clerk deciding on a filing (approving after it began is rarely meant)
        "days_to_start": (filing.starts_on - clock.today_local()).days if filing.starts_on else None,
    }


def not_held_labels(session: Session, filing: Filing) -> list[str]:
    """The 期 of the filing's project not held, for its page: one filed beyond 共 N 期 stands in for one of them
    (the pages only: a JSON list of filings would ask once a row)."""
    return [seq_label(n) for n in session.scalars(
        select(Offering.seq).join(Filing, Filing.offering_id == Offering.id)
        .where(Offering.project_id == filing.offering.project_id, Filing.state == "cancelled").order_by(Offering.seq))]


def committee_filters(stmt: Any, args: dict[str, Any], institution: Any) -> Any:
    """The committee's lists' 年度, 申办机构 and 检索 (project number, title or host), on a statement that joins
    Project; `institution` is the listed rows' institution column."""
    if args.get("year"):
        stmt = stmt.where(Project.year == args["year"])
    if args.get("institution_id"):
        stmt = stmt.where(institution == args["institution_id"])
    if args.get("q"):
        stmt = stmt.where(matches(args["q"], Project.number, Project.title, Project.host_name))
    return stmt
