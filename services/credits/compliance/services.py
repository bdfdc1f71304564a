"""达标情况: a trainee's credits of each year against the year's requirement, and the printable status of each award.

What counts (DESIGN §1 stages 3b, 4, 5): only awards granted by venue attendance (根据会场考勤授分) that are
effective (the offering's 执行情况反馈 approved by the committee). Pending ones are shown apart; manual entries
(手工录入学分) are shown as invalid and never counted; withdrawn ones are listed as withdrawn and not counted.

One query, on the (trainee_key, year) index: the trainee's award rows (a few a year), summed here; the pages add
the account to it (account_with_awards), so a page is one round trip to the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from services.common.formats import fmt_credits

from ..accounts.models import TraineeAccount
from ..awards.models import PRINTABLE_AFTER, STATES, CreditAward
from ..offerings.models import CANCELLED, REPORT_WAIT, OfferingCredit, wait_key
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
# what a pending award waits for, by the state of its offering's execution report (the trainee knows whom to ask)


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
class YearSummary:
    year: int
    requirement: Requirement
    effective: ClassSums = field(default_factory=ClassSums)
    pending: ClassSums = field(default_factory=ClassSums)
    manual: ClassSums = field(default_factory=ClassSums)
    withdrawn: ClassSums = field(default_factory=ClassSums)
    not_held: ClassSums = field(default_factory=ClassSums)  # pending, of a 期 cancelled: they never take effect
    awards: list[AwardLine] | None = None  # None: not loaded for this year

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


def yearly_summary(session: Session, trainee_key: str, today: dt.date, *, year: int | None = None
                   ) -> list[YearSummary]:
    """Every year the trainee has awards in, plus today's year (and ``year``), newest first (see summarise)."""
    rows = session.execute(select(*_ROW_COLUMNS, _REPORT_STATE, _CANCELLED_BY).select_from(_WITH_OFFERING)
                           .where(_AWARDS.c.trainee_key == trainee_key).order_by(*_NEWEST_FIRST)).all()
    return summarise(rows, today, year=year)


def summarise(rows: Iterable[Any], today: dt.date, *, year: int | None = None,
              also: Iterable[int] = ()) -> list[YearSummary]:
    """Sums and lines of award rows (newest first; a row whose id is None is skipped): every year with awards,
    plus today's year (and ``year``, and the years ``also``), newest first. The lines are made for ``year`` only
    when it is given, else for every year."""
    years: dict[int, YearSummary] = {}

    def summary(y: int) -> YearSummary:
        if y not in years:
            years[y] = YearSummary(year=y, requirement=requirement_for(y),
                                   awards=[] if year is None or y == year else None)
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
    return [years[y] for y in sorted(years, reverse=True)]
