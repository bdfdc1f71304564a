"""达标情况: a trainee's credits of each year against the year's requirement, and the printable status of each award.

What counts (DESIGN §1 stages 3b, 4, 5): only awards granted by venue attendance (根据会场考勤授分) that are
effective (the offering's 执行情况反馈 approved by the committee). Pending ones are shown apart; manual entries
(手工录入学分) are shown as invalid and never counted; withdrawn ones are listed as withdrawn and not counted.

One query, on the (trainee_key, year) index: the trainee's award rows (a few a year), summed here; the pages add
the account to it (account_with_awards), so a page is one round trip to the database for the awards, and one more
(checkins_without_award, on the trainee_key index of credits' copy of the check-ins) for the offerings she checked in
to that have no award of hers: she learns there whether the office has still to grant, left her out, or did not
hold the 期, instead of phoning to ask.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, bindparam, exists, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from services.common import clock
from services.common.formats import fmt_credits

from ..accounts.models import TraineeAccount
from ..attendance.models import scans_by_offering
from ..awards.models import PRINTABLE_AFTER, STATES, CreditAward
from ..offerings.models import CANCELLED, REPORT_WAIT, CancelledOffering, OfferingCredit, wait_key
from .requirements import Requirement, requirement_for

CLASS1, CLASS2 = "Ⅰ类", "Ⅱ类"
ZERO = Decimal("0.00")
# what a line shows; the encrypted ID number and mobile of the award are not read
_AWARDS = CreditAward.__table__
_ROW_COLUMNS = tuple(_AWARDS.c[name] for name in (
    "id", "year", "project_number", "project_title", "institution_name", "credit_class", "credit_value",
    "offering_starts_on", "offering_ends_on", "activity_date", "method", "state", "withdraw_reason",
    "offering_id", "effective_at", "restored_from"))
_OFFERINGS = OfferingCredit.__table__
# where the execution report a pending award waits for stands (none, submitted, returned, approved): NULL for an
# award whose offering credits does not hold
_REPORT_STATE = _OFFERINGS.c.report_state.label("report_state")
# who ended the 期 (offering.cancelled): a pending award of it never takes effect; NULL when held (or not known)
_CANCELLED_BY = _OFFERINGS.c.cancelled_by.label("cancelled_by")
_WITH_OFFERING = _AWARDS.outerjoin(_OFFERINGS, _OFFERINGS.c.offering_id == _AWARDS.c.offering_id)
_NEWEST_FIRST = (_AWARDS.c.year.desc(), _AWARDS.c.activity_date.desc(), _AWARDS.c.id.desc())
_ACCOUNTS = TraineeAccount.__table__
# the account of the session and its awards (none: one row of NULL award columns); built once, compiled once
_ACCOUNT_WITH_AWARDS = (
    select(_ACCOUNTS.c.trainee_key.label("account_key"), _ACCOUNTS.c.name.label("account_name"),
           _ACCOUNTS.c.id_enc.label("account_id_enc"), _ACCOUNTS.c.must_change.label("account_must_change"),
           *_ROW_COLUMNS, _REPORT_STATE, _CANCELLED_BY)
    .select_from(_ACCOUNTS.outerjoin(_WITH_OFFERING, _AWARDS.c.trainee_key == _ACCOUNTS.c.trainee_key))
    .where(_ACCOUNTS.c.id == bindparam("account_id"))
    .order_by(*_NEWEST_FIRST))
# her check-ins by offering (forced ones, 代签, are check-ins too), with what credits knows of the offering: whether
# it was cancelled (also when only the cancellation has arrived) and whether its award list exists (a current award
# of anyone: the partial unique index on offering_id, trainee_key answers) or its report went in. Her own awards are
# left out by the caller, who has read them already.
_NOTES = CancelledOffering.__table__
_MINE = scans_by_offering(bindparam("trainee_key")).subquery("mine")
_LISTED = exists().where(_AWARDS.c.offering_id == _MINE.c.offering_id, _AWARDS.c.state != "withdrawn")
_CHECKINS = (
    select(_MINE, _OFFERINGS.c.project_number, _OFFERINGS.c.project_title, _OFFERINGS.c.institution_name,
           _OFFERINGS.c.starts_on, _OFFERINGS.c.ends_on, _OFFERINGS.c.report_state,
           func.coalesce(_OFFERINGS.c.cancelled_by, _NOTES.c.cancelled_by).label("cancelled_by"),
           _LISTED.label("listed"))
    .select_from(_MINE.outerjoin(_OFFERINGS, _OFFERINGS.c.offering_id == _MINE.c.offering_id)
                 .outerjoin(_NOTES, _NOTES.c.offering_id == _MINE.c.offering_id))
    .order_by(_MINE.c.last_scan.desc(), _MINE.c.offering_id.desc()))
# what a check-in without her award means, and what happens next
CHECKIN_STATES = {"awaiting": "已签到，待举办机构授分", "not_awarded": "已签到，未获授分：请联系举办机构",
                  "not_held": "项目未举办"}


@dataclass
class ClassSums:
    class1: Decimal = ZERO
    class2: Decimal = ZERO
    count: int = 0

    @property
    def total(self) -> Decimal:
        return self.class1 + self.class2

    def add(self, credit_class: str, value: Decimal, count: int) -> None:
        if credit_class == CLASS1:
            self.class1 += value
        elif credit_class == CLASS2:
            self.class2 += value
        else:  # the catalogue allows only Ⅰ类 / Ⅱ类; anything else is not counted toward either
            return
        self.count += count


@dataclass
class AwardLine:
    id: int
    project_number: str
    project_title: str
    institution_name: str
    credit_class: str
    credit_value: Decimal
    offering_starts_on: dt.date
    offering_ends_on: dt.date
    activity_date: dt.date
    method: str
    state: str
    state_label: str
    counted: bool  # counts toward compliance now
    status_text: str
    note: str  # the page's line under the badge: status_text without the badge's words (said once)
    printable: bool
    printable_from: dt.date | None
    printable_text: str
    badge: str = ""  # the badge's colour class: a pending award of a 期 not held is not "on its way"


@dataclass
class CheckinLine:
    """An offering she checked in to without an award of hers (withdrawn ones are award lines already)."""

    offering_id: int
    year: int
    project_number: str
    project_title: str
    institution_name: str
    starts_on: dt.date | None  # None: credits does not hold the offering yet (then the scan days are shown)
    ends_on: dt.date | None
    first_scan_on: dt.date
    last_scan_on: dt.date
    checkins: int
    forced: int  # 代签 among them
    sign_outs: int  # scans of 签退 windows among them (a 签到 and its 签退 are not two 签到)
    state: str  # a key of CHECKIN_STATES
    state_label: str
    note: str

    @property
    def dates_text(self) -> str:
        if self.starts_on is not None and self.ends_on is not None:
            return f"举办日期 {_days(self.starts_on, self.ends_on)}"
        return f"签到日期 {_days(self.first_scan_on, self.last_scan_on)}"

    @property
    def checkins_text(self) -> str:
        text = f"签到 {self.checkins - self.sign_outs} 次" + (f"、签退 {self.sign_outs} 次" if self.sign_outs else "")
        return text + (f"（含代签 {self.forced} 次）" if self.forced else "")


def _days(first: dt.date, last: dt.date) -> str:
    return first.isoformat() if first == last else f"{first.isoformat()} 至 {last.isoformat()}"


@dataclass
class YearSummary:
    year: int
    requirement: Requirement
    effective: ClassSums = field(default_factory=ClassSums)
    pending: ClassSums = field(default_factory=ClassSums)
    manual: ClassSums = field(default_factory=ClassSums)
    withdrawn: ClassSums = field(default_factory=ClassSums)
    not_held: ClassSums = field(default_factory=ClassSums)  # pending, of a 期 cancelled: they never take effect
    awards: list[AwardLine] | None = None  # None: not loaded for this year
    checkins: list[CheckinLine] | None = None  # offerings checked in to without her award; None as awards

    @property
    def missing_class1(self) -> Decimal:
        return max(ZERO, self.requirement.class1 - self.effective.class1)

    @property
    def missing_total(self) -> Decimal:
        return max(ZERO, self.requirement.total - self.effective.total)

    @property
    def met(self) -> bool:
        return self.missing_class1 == 0 and self.missing_total == 0

    @property
    def missing_text(self) -> str:
        """"" when met, else e.g. "还差 Ⅰ类 3 分、总学分 5 分"."""
        parts = []
        if self.missing_class1 > 0:
            parts.append(f"Ⅰ类 {fmt_credits(self.missing_class1)} 分")
        if self.missing_total > 0:
            parts.append(f"总学分 {fmt_credits(self.missing_total)} 分")
        return "还差 " + "、".join(parts) if parts else ""

    @property
    def requirement_text(self) -> str:
        return (f"总学分不少于 {fmt_credits(self.requirement.total)} 分，"
                f"其中Ⅰ类学分不少于 {fmt_credits(self.requirement.class1)} 分")

    @property
    def status_text(self) -> str:
        return "已达标" if self.met else f"未达标，{self.missing_text}"


def _not_held(row: Any) -> bool:
    """A pending award by attendance whose 期 was cancelled: it will never take effect."""
    return row.state == "pending" and row.method == "attendance" and bool(getattr(row, "cancelled_by", None))


def _award_line(row: Any, today: dt.date) -> AwardLine:
    due = row.offering_ends_on + PRINTABLE_AFTER  # the same rule as CreditAward.printable_from
    printable_from: dt.date | None = due
    printable = False
    if row.state == "withdrawn":
        # why, in the words of whoever withdrew it: she would otherwise call to ask
        status = f"已撤销（原因：{row.withdraw_reason}），不计入达标" if row.withdraw_reason else "已撤销，不计入达标"
        note = f"原因：{row.withdraw_reason}；不计入达标" if row.withdraw_reason else "不计入达标"
        # withdrawn after it took effect (the committee): a certificate she may hold is void, not "never made"
        printable_text = "已撤销，原学分证书作废" if row.effective_at is not None else "已撤销，不生成学分证书"
        printable_from = None
    elif row.method == "manual":
        status, note = "手工录入学分，非有效学分，不计入达标", "不计入达标"
        printable_text, printable_from = "手工录入学分，不生成学分证书", None
    elif _not_held(row):
        # the 期 was cancelled (取消举办 / 标记未举办): no report will come, so the award never takes effect
        wait = REPORT_WAIT[wait_key(None, row.cancelled_by)]
        status, note = f"不会生效：{wait}，不计入达标", f"{wait}，不计入达标"
        printable_text, printable_from = "不生成学分证书", None
    elif row.state == "pending":
        wait = REPORT_WAIT.get(getattr(row, "report_state", None) or "")
        if wait:
            status, note = f"待生效：{wait}，审核通过后计入", f"{wait}，审核通过后计入"
        else:
            status, note = "待生效：执行情况反馈审核通过后计入", "执行情况反馈审核通过后计入"
        printable_text = ("执行情况反馈审核通过后即可打印" if today >= due
                          else f"执行情况反馈审核通过后，且 {due.isoformat()} 起可打印")
    else:  # attendance, effective
        status, note = "已生效，计入达标", "计入达标"
        if getattr(row, "restored_from", None):  # the committee's 恢复: her old certificate number is void
            note = "计入达标；经继续医学教育委员会恢复，原学分证书作废，请打印新编号的证书"
        printable = today >= due
        printable_text = "可打印学分证书" if printable else f"{due.isoformat()} 起可打印"
    return AwardLine(
        id=row.id, project_number=row.project_number, project_title=row.project_title,
        institution_name=row.institution_name, credit_class=row.credit_class, credit_value=row.credit_value,
        offering_starts_on=row.offering_starts_on, offering_ends_on=row.offering_ends_on,
        activity_date=row.activity_date, method=row.method, state=row.state,
        state_label="手工录入（非有效学分）" if row.method == "manual" and row.state != "withdrawn"
        else f"不会生效（{CANCELLED[row.cancelled_by]}）" if _not_held(row) else STATES.get(row.state, row.state),
        counted=row.method == "attendance" and row.state == "effective", status_text=status, note=note,
        printable=printable, printable_from=printable_from, printable_text=printable_text,
        badge="manual" if row.method == "manual" and row.state != "withdrawn" else "withdrawn" if _not_held(row)
        else row.state)


def account_with_awards(conn: Connection, account_id: int) -> list[Row[Any]]:
    """The account's trainee_key, name, id_enc and must_change (labelled account_*) beside each of its award rows,
    newest first; [] when there is no such account."""
    return list(conn.execute(_ACCOUNT_WITH_AWARDS, {"account_id": account_id}).all())


def checkins_without_award(conn: Connection, trainee_key: str, awarded: Iterable[int]) -> list[CheckinLine]:
    """The offerings the trainee checked in to that have no award of hers (``awarded``: the offering ids of her
    award rows, any state or method), newest first; one query on the trainee_key index."""
    skip = set(awarded)
    return [_checkin_line(row) for row in conn.execute(_CHECKINS, {"trainee_key": trainee_key})
            if row.offering_id not in skip]


def _checkin_line(row: Any) -> CheckinLine:
    first_scan, last_scan = clock.to_local(row.first_scan).date(), clock.to_local(row.last_scan).date()
    institution = row.institution_name or ""
    if row.cancelled_by:  # final: no award list will come
        state = "not_held"
        note = f"{CANCELLED.get(row.cancelled_by, '本期未举办')}，不会授分"
    elif row.listed or row.report_state in ("submitted", "approved"):
        state = "not_awarded"
        note = (f"举办机构的授分名单中没有您（可能未达到考勤要求），如有疑问请联系{institution or '举办机构'}"
                + ("；执行情况反馈已提交，授分名单已锁定" if row.report_state in ("submitted", "approved") else ""))
    else:
        state = "awaiting"
        note = "举办机构完成考勤分析并授分后，学分会显示在学分明细中"
    ends_on = row.ends_on
    return CheckinLine(
        offering_id=row.offering_id, year=(ends_on or last_scan).year,  # an award counts in its activity day's year
        project_number=row.project_number or "", project_title=row.project_title or "项目信息待更新",
        institution_name=institution, starts_on=row.starts_on, ends_on=ends_on, first_scan_on=first_scan,
        last_scan_on=last_scan, checkins=int(row.checkins), forced=int(row.forced or 0),
        sign_outs=int(row.sign_outs or 0), state=state,
        state_label=CHECKIN_STATES[state], note=note)


def yearly_summary(session: Session, trainee_key: str, today: dt.date, *, year: int | None = None
                   ) -> list[YearSummary]:
    """Every year the trainee has awards in, plus today's year (and ``year``), newest first (see summarise)."""
    rows = session.execute(select(*_ROW_COLUMNS, _REPORT_STATE, _CANCELLED_BY).select_from(_WITH_OFFERING)
                           .where(_AWARDS.c.trainee_key == trainee_key).order_by(*_NEWEST_FIRST)).all()
    return summarise(rows, today, year=year)


def summarise(rows: Iterable[Any], today: dt.date, *, year: int | None = None,
              also: Iterable[int] = (), checkins: Iterable[CheckinLine] = ()) -> list[YearSummary]:
    """Sums and lines of award rows (newest first; a row whose id is None is skipped): every year with awards or
    ``checkins``, plus today's year (and ``year``, and the years ``also``), newest first. The lines are made for
    ``year`` only when it is given, else for every year."""
    years: dict[int, YearSummary] = {}

    def summary(y: int) -> YearSummary:
        if y not in years:
            loaded = year is None or y == year
            years[y] = YearSummary(year=y, requirement=requirement_for(y), awards=[] if loaded else None,
                                   checkins=[] if loaded else None)
        return years[y]

    summary(today.year)
    for y in (*also, *(() if year is None else (year,))):
        summary(y)
    rows = list(rows)
    # a withdrawal undone by 恢复授分 is a new award of the same offering: the mistaken one is not shown beside it
    standing = {row.offering_id for row in rows if row.id is not None and row.state != "withdrawn"}
    for row in rows:
        if row.id is None or (row.state == "withdrawn" and row.offering_id in standing):
            continue
        s = summary(row.year)
        if row.state == "withdrawn":
            bucket = s.withdrawn
        elif row.method == "manual":
            bucket = s.manual
        elif row.state == "effective":
            bucket = s.effective
        elif _not_held(row):
            bucket = s.not_held
        else:
            bucket = s.pending
        bucket.add(row.credit_class, Decimal(row.credit_value), 1)
        if s.awards is not None:
            s.awards.append(_award_line(row, today))
    for line in checkins:
        s = summary(line.year)
        if s.checkins is not None:
            s.checkins.append(line)
    return [years[y] for y in sorted(years, reverse=True)]
