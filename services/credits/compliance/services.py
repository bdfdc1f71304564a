"""达标情况: a trainee's credits of each year against the year's requirement, and the printable status of each award.

What counts (DESIGN §1 stages 3b, 4, 5): only awards granted by venue attendance (根据会场考勤授分) that are
effective (the offering's 执行情况反馈 approved by the committee). Pending ones are shown apart; manual entries
(手工录入学分) are shown as invalid and never counted; withdrawn ones are listed as withdrawn and not counted.

Two queries per call, both on the (trainee_key, year) index: one aggregate of the sums per year, class, method
and state, and one for the award rows; never a query per row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, load_only

from services.common.formats import fmt_credits

from ..awards.models import PRINTABLE_AFTER, STATES, CreditAward
from .requirements import Requirement, requirement_for

CLASS1, CLASS2 = "Ⅰ类", "Ⅱ类"
ZERO = Decimal("0.00")
# what a line shows; the encrypted ID number and mobile of the award are not read
_ROW_COLUMNS = ("id", "year", "project_number", "project_title", "institution_name", "credit_class", "credit_value",
                "offering_starts_on", "offering_ends_on", "activity_date", "method", "state", "version")


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
    printable: bool
    printable_from: dt.date | None
    printable_text: str


@dataclass
class YearSummary:
    year: int
    requirement: Requirement
    effective: ClassSums = field(default_factory=ClassSums)
    pending: ClassSums = field(default_factory=ClassSums)
    manual: ClassSums = field(default_factory=ClassSums)
    withdrawn: ClassSums = field(default_factory=ClassSums)
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


def _award_line(row: CreditAward, today: dt.date) -> AwardLine:
    due = row.offering_ends_on + PRINTABLE_AFTER  # the same rule as CreditAward.printable_from
    printable_from: dt.date | None = due
    printable = False
    if row.state == "withdrawn":
        status = "已撤销，不计入达标"
        printable_text, printable_from = "已撤销，不生成学分证书", None
    elif row.method == "manual":
        status = "手工录入学分，无效，不计入达标"
        printable_text, printable_from = "手工录入学分，不生成学分证书", None
    elif row.state == "pending":
        status = "待生效：执行情况反馈审核通过后计入"
        printable_text = ("执行情况反馈审核通过后即可打印" if today >= due
                          else f"执行情况反馈审核通过后，且 {due.isoformat()} 起可打印")
    else:  # attendance, effective
        status = "已生效，计入达标"
        printable = today >= due
        printable_text = "可打印学分证书" if printable else f"{due.isoformat()} 起可打印"
    return AwardLine(
        id=row.id, project_number=row.project_number, project_title=row.project_title,
        institution_name=row.institution_name, credit_class=row.credit_class, credit_value=row.credit_value,
        offering_starts_on=row.offering_starts_on, offering_ends_on=row.offering_ends_on,
        activity_date=row.activity_date, method=row.method, state=row.state,
        state_label="手工录入（无效）" if row.method == "manual" and row.state != "withdrawn"
        else STATES.get(row.state, row.state),
        counted=row.method == "attendance" and row.state == "effective", status_text=status,
        printable=printable, printable_from=printable_from, printable_text=printable_text)


def yearly_summary(session: Session, trainee_key: str, today: dt.date, *, year: int | None = None
                   ) -> list[YearSummary]:
    """Every year the trainee has awards in, plus today's year (and ``year``), newest first.

    The award rows are loaded for ``year`` only when it is given, else for every year.
    """
    c = CreditAward
    sums = session.execute(
        select(c.year, c.credit_class, c.method, c.state, func.sum(c.credit_value), func.count())
        .where(c.trainee_key == trainee_key)
        .group_by(c.year, c.credit_class, c.method, c.state)).all()
    years: dict[int, YearSummary] = {}

    def summary(y: int) -> YearSummary:
        if y not in years:
            years[y] = YearSummary(year=y, requirement=requirement_for(y))
        return years[y]

    summary(today.year)
    if year is not None:
        summary(year)
    for y, credit_class, method, state, total, count in sums:
        s = summary(y)
        if state == "withdrawn":
            bucket = s.withdrawn
        elif method == "manual":
            bucket = s.manual
        elif state == "effective":
            bucket = s.effective
        else:
            bucket = s.pending
        bucket.add(credit_class, Decimal(total or 0), count)

    rows_query = select(c).options(load_only(*(getattr(c, name) for name in _ROW_COLUMNS))).where(
        c.trainee_key == trainee_key)
    if year is not None:
        rows_query = rows_query.where(c.year == year)
    for s in ([years[year]] if year is not None else years.values()):
        s.awards = []
    for row in session.scalars(rows_query.order_by(c.year.desc(), c.activity_date.desc(), c.id.desc())):
        line = _award_line(row, today)
        years[row.year].awards.append(line)  # type: ignore[union-attr]
    return [years[y] for y in sorted(years, reverse=True)]
