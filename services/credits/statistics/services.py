"""The year's figures, from credits' own tables: each institution's offerings of the year (the project's 年度)
and held so far, its awards by the year they count for (the activity date's), effective and pending, and the
trainees whose effective credits of the year meet that year's requirement (the rule of 达标情况查询).

A few aggregate statements, whatever the number of awards: the committee asks for these in December, when a
province's year holds hundreds of thousands of them."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from sqlalchemy import case, exists, func, select
from sqlalchemy.orm import Session

from services.common.formats import fmt_credits
from services.common.inputs import folded
from services.common.sheets import text_row

from ..attendance.models import AttendanceRecord
from ..awards.models import CreditAward
from ..compliance.requirements import Requirement, requirement_for
from ..offerings.models import OfferingCredit
from .models import CatalogueCount

CLASS1 = "Ⅰ类"
ZERO = Decimal("0")


@dataclass
class InstitutionRow:
    institution_id: int
    name: str
    catalogued: int = 0  # its projects in the year's catalogue (项目目录), as projects last counted them
    planned: int = 0  # their 举办期数 together
    offerings: int = 0  # approved 期
    held: int = 0  # over, with a trace of being held: a check-in, an award or an execution report; not cancelled
    unseen: int = 0  # over, with none of these and not cancelled: the host has done nothing yet (the chase list)
    cancelled: int = 0  # offering.cancelled (取消举办 / 标记未举办), whatever its dates: counted apart from both
    reports_approved: int = 0
    effective: int = 0  # awards (人次) in effect, by attendance
    effective_credits: Decimal = ZERO
    pending: int = 0  # granted, waiting for the report's approval
    manual: int = 0  # 手工录入: never valid credit


def _sum(rows: list[InstitutionRow], label: str) -> InstitutionRow:
    total = InstitutionRow(0, label)
    for row in rows:
        for name in ("catalogued", "planned", "offerings", "held", "unseen", "cancelled", "reports_approved",
                     "effective", "pending", "manual"):
            setattr(total, name, getattr(total, name) + getattr(row, name))
        total.effective_credits += row.effective_credits
    return total


def name_matches(search: str, name: str) -> bool:
    """The 申办机构 box: its text inside the name as the row shows it, 全角 or 半角, spaces and case aside."""
    return folded(search).casefold() in folded(name).casefold()


@dataclass
class YearFigures:
    year: int
    requirement: Requirement
    institutions: list[InstitutionRow] = field(default_factory=list)  # every host of the year: 全省合计 sums these
    trainees: int = 0  # with effective credit this year (the province's: a trainee is no host's)
    met: int = 0
    search: str = ""  # the 申办机构 box; blank: every row is shown

    @property
    def rows(self) -> list[InstitutionRow]:
        """The rows shown: those whose present name holds the 申办机构 box's text."""
        if not self.search:
            return self.institutions
        return [r for r in self.institutions if name_matches(self.search, r.name)]

    @property
    def totals(self) -> InstitutionRow:
        """全省合计: every host of the year, whatever the search shows (合计 when nothing is searched)."""
        return _sum(self.institutions, "全省合计" if self.search else "合计")

    @property
    def shown_totals(self) -> InstitutionRow | None:
        """The rows shown, summed, under a search (a clerk must not take them for the province's); else None."""
        if not self.search:
            return None
        return _sum(self.rows, f"检索结果合计（{len(self.rows)} 家）")

    @property
    def requirement_text(self) -> str:
        return (f"总学分不少于 {fmt_credits(self.requirement.total)} 分，"
                f"其中Ⅰ类学分不少于 {fmt_credits(self.requirement.class1)} 分")


def _traced() -> Any:
    """An offering that left a trace of being held: a check-in, an award not withdrawn, or an execution report."""
    oc = OfferingCredit
    return (exists().where(AttendanceRecord.offering_id == oc.offering_id)
            | exists().where(CreditAward.offering_id == oc.offering_id, CreditAward.state != "withdrawn")
            | (oc.report_state != "none"))


def unseen_offerings(session: Session, year: int, today: dt.date,
                     institution_id: int | None = None) -> list[OfferingCredit]:
    """The 期 behind 已过举办日期未见举办记录: approved, over, not cancelled, and without any trace of being held;
    the clerk's year-end list of whom to ask (by host, then by date). A cancelled 期 is known not held: no one
    need ask."""
    oc = OfferingCredit
    stmt = select(oc).where(oc.year == year, oc.ends_on < today, oc.cancelled_at.is_(None), ~_traced())
    if institution_id is not None:
        stmt = stmt.where(oc.institution_id == institution_id)
    return list(session.scalars(stmt.order_by(oc.institution_name, oc.institution_id, oc.ends_on, oc.offering_id)))


def cancelled_offerings(session: Session, year: int, institution_id: int | None = None) -> list[OfferingCredit]:
    """The 期 behind 已取消举办/未举办: which were ended, by whom, when and why (by host, then by date)."""
    oc = OfferingCredit
    stmt = select(oc).where(oc.year == year, oc.cancelled_at.is_not(None))
    if institution_id is not None:
        stmt = stmt.where(oc.institution_id == institution_id)
    return list(session.scalars(stmt.order_by(oc.institution_name, oc.institution_id, oc.starts_on, oc.offering_id)))


def year_figures(session: Session, year: int, today: dt.date, search: str = "") -> YearFigures:
    figures = YearFigures(year, requirement_for(year), search=search)
    rows: dict[int, InstitutionRow] = {}

    def row(institution_id: int, name: str) -> InstitutionRow:
        found = rows.get(institution_id)
        if found is None:
            found = rows[institution_id] = InstitutionRow(institution_id, name)
        elif name and not found.name:
            found.name = name
        return found

    # an approved 期 whose days are over is not held for that alone: one never acted on left no check-in, no award
    # and no report, and is counted apart, for the committee to ask after; one cancelled (offering.cancelled) is
    # known not held, and is counted in a column of its own, in neither (nor among those still to come)
    oc = OfferingCredit
    traced = _traced()
    cancelled = oc.cancelled_at.is_not(None)
    over = (oc.ends_on < today) & ~cancelled
    for iid, name, n, held, unseen, gone, approved in session.execute(
            select(oc.institution_id, func.max(oc.institution_name), func.count(),
                   func.sum(case((over & traced, 1), else_=0)), func.sum(case((over & ~traced, 1), else_=0)),
                   func.sum(case((cancelled, 1), else_=0)),
                   func.sum(case((oc.report_state == "approved", 1), else_=0)))
            .where(oc.year == year).group_by(oc.institution_id)):
        r = row(iid, name or "")
        r.offerings, r.held, r.unseen, r.reports_approved = n, int(held or 0), int(unseen or 0), int(approved or 0)
        r.cancelled = int(gone or 0)
    attendance = CreditAward.method == "attendance"
    # a pending award of a cancelled 期 waits for nothing (no report will come): not 待生效
    waiting = ~exists().where(OfferingCredit.offering_id == CreditAward.offering_id,
                              OfferingCredit.cancelled_at.is_not(None))
    for iid, name, effective, credits, pending, manual in session.execute(
            select(CreditAward.institution_id, func.max(CreditAward.institution_name),
                   func.sum(case(((CreditAward.state == "effective") & attendance, 1), else_=0)),
                   func.sum(case(((CreditAward.state == "effective") & attendance, CreditAward.credit_value),
                                 else_=0)),
                   func.sum(case(((CreditAward.state == "pending") & attendance & waiting, 1), else_=0)),
                   func.sum(case(((CreditAward.method == "manual") & (CreditAward.state != "withdrawn"), 1),
                                 else_=0)))
            .where(CreditAward.year == year).group_by(CreditAward.institution_id)):
        r = row(iid, name or "")
        r.effective, r.effective_credits = int(effective or 0), Decimal(credits or 0)
        r.pending, r.manual = int(pending or 0), int(manual or 0)
    # last: a host with catalogue projects and nothing approved is listed too, with zeros (the year-end chase)
    for iid, name, projects, planned in session.execute(
            select(CatalogueCount.institution_id, CatalogueCount.institution_name, CatalogueCount.projects,
                   CatalogueCount.planned).where(CatalogueCount.year == year, CatalogueCount.projects > 0)):
        r = row(iid, name)
        r.catalogued, r.planned = projects, planned
        if name:  # the institution's name now (a rename is counted again): its offerings keep the one approved
            r.name = name
    figures.institutions = sorted(rows.values(), key=lambda r: (-r.effective, -r.offerings, r.name))

    per_trainee = (select(func.sum(CreditAward.credit_value).label("total"),
                          func.sum(case((CreditAward.credit_class == CLASS1, CreditAward.credit_value), else_=0))
                          .label("class1"))
                   .where(CreditAward.year == year, CreditAward.state == "effective", attendance)
                   .group_by(CreditAward.trainee_key).subquery())
    need = figures.requirement
    trainees, met = session.execute(select(
        func.count(), func.sum(case(((per_trainee.c.total >= need.total) & (per_trainee.c.class1 >= need.class1), 1),
                                    else_=0)))).one()
    figures.trainees, figures.met = int(trainees or 0), int(met or 0)
    return figures


def years_known(session: Session, this_year: int, asked: int) -> list[int]:
    """The 年度 choices, newest first: any year with a catalogue, offerings or awards, the one asked for, this one
    and the next (its catalogue comes in December)."""
    years = set(session.scalars(select(OfferingCredit.year).distinct())) | set(
        session.scalars(select(CreditAward.year).distinct())) | set(
        session.scalars(select(CatalogueCount.year).distinct())) | {asked, this_year, this_year + 1}
    return sorted(years, reverse=True)


UNSEEN = "已过举办日期未见举办记录"
CANCELLED = "已取消举办/未举办"


def export_xlsx(figures: YearFigures) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(f"{figures.year}年度统计")
    for column, width in zip("ABCDEFGHIJKL", (36, 10, 10, 12, 10, 14, 14, 14, 14, 14, 14, 16), strict=True):
        ws.column_dimensions[column].width = width
    ws.freeze_panes = "A3"
    searched = (f"；申办机构含“{figures.search}”：{len(figures.rows)} 家（末两行为检索结果合计与全省合计）"
                if figures.search else "")
    ws.append([f"{figures.year} 年度继续医学教育统计（全省有效学分学员 {figures.trainees} 人，达标 {figures.met} 人；"
               f"达标要求：{figures.requirement_text}{searched}）"])
    ws.append(["申办机构", "目录项目", "计划期数", "审批通过期次", "已举办", UNSEEN, CANCELLED, "执行情况反馈已审批",
               "有效授分人次", "有效学分合计", "待生效人次", "手工录入（非有效学分）"])
    for r in [*figures.rows, *filter(None, [figures.shown_totals]), figures.totals]:
        ws.append(text_row(ws, [r.name, r.catalogued, r.planned, r.offerings, r.held, r.unseen, r.cancelled,
                                r.reports_approved, r.effective, float(r.effective_credits), r.pending, r.manual]))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def names_now(session: Session, year: int, rows: list[OfferingCredit]) -> dict[int, str]:
    """Each host's name now, as 年度统计's rows give it (the year's catalogue count, sent again on a rename), else
    the name its 期 was approved under."""
    ids = {o.institution_id for o in rows}
    names = {o.institution_id: o.institution_name for o in rows}
    if ids:
        names.update({iid: name for iid, name in session.execute(
            select(CatalogueCount.institution_id, CatalogueCount.institution_name)
            .where(CatalogueCount.year == year, CatalogueCount.institution_id.in_(ids))) if name})
    return names


def export_unseen_xlsx(year: int, rows: list[OfferingCredit], names: dict[int, str]) -> bytes:
    """The 期 of 已过举办日期未见举办记录 as the page lists them, for the chase (sent to the hosts, ticked off)."""
    from services.common import clock  # the approval time as the page shows it

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(f"{year}年度{UNSEEN}"[:31])
    for column, width in zip("ABCDEFG", (36, 18, 40, 8, 12, 12, 18), strict=True):
        ws.column_dimensions[column].width = width
    ws.freeze_panes = "A3"
    ws.append([f"{year} 年度{UNSEEN}（共 {len(rows)} 期）：审批通过、结束日期已过，没有任何签到、授分和执行情况反馈"])
    ws.append(["申办机构", "项目编号", "项目名称", "期次", "开始日期", "结束日期", "审批通过时间"])
    for o in rows:
        ws.append(text_row(ws, [names.get(o.institution_id, o.institution_name), o.project_number, o.project_title,
                                o.seq_label, o.starts_on.isoformat(), o.ends_on.isoformat(),
                                clock.fmt(o.approved_at)]))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
