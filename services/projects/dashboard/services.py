"""The committee's home page (首页): what waits for it and how the year goes, every figure with the list behind it.

Figures: filings by state, execution reports by state, reports due within 3 days and overdue, offerings held this
month, and credits granted per month (last 12 months, by activity date, from the award lists credits sends us;
manual entries (手工录入) and withdrawn awards excluded: they are not valid credit).

Figures whose list already exists link there (/projects/review/filings?state=…, /projects/review/reports?state=…);
the others (drafts, due soon, overdue, held in a month, credited in a month) link to this package's own list,
/projects/review/dashboard/list?what=…, which shows offerings only (project, 期, institution, dates, state).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import case, exists, func, select
from sqlalchemy.orm import Session

from ..awarded.models import AwardedList, AwardedTrainee
from ..catalogue.models import Project
from ..filings import states as filing_states
from ..filings.models import Filing, Offering, seq_label
from ..filings.services import MIN_DAYS_BEFORE
from ..institutions.models import Institution
from ..reports import states as report_states
from ..reports.models import ExecutionReport
from ..reports.services import due_on, due_reports

DUE_SOON_DAYS = 3
MONTHS = 12
LIST_URL = "/projects/review/dashboard/list"
LISTS = {
    "filing_draft": "举办前登记 · 草稿（申办机构尚未上报）",
    "report_draft": "执行情况反馈 · 草稿（申办机构尚未提交）",
    "report_due_soon": f"执行情况反馈 · {DUE_SOON_DAYS} 天内到期未提交",
    "report_overdue": "执行情况反馈 · 已逾期未提交",
    "held": "当月举办的期次",
    "credited": "当月授予学分的期次（按活动日期，不含手工录入；含待生效）",
}
WITH_MONTH = frozenset({"held", "credited"})


# ---------------------------------------------------------------- months


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(first: dt.date, n: int) -> dt.date:
    y, m = divmod(first.year * 12 + first.month - 1 + n, 12)
    return dt.date(y, m + 1, 1)


def month_end(first: dt.date) -> dt.date:
    return add_months(first, 1) - dt.timedelta(days=1)


def month_key(first: dt.date) -> str:
    return f"{first.year:04d}-{first.month:02d}"


def parse_month(value: str) -> dt.date:
    """'2026-05' -> 2026-05-01; ValueError otherwise."""
    year, month = value.split("-")
    if len(year) != 4 or len(month) != 2:
        raise ValueError(value)
    return dt.date(int(year), int(month), 1)


# 已逾期未提交 has a page of its own under 执行情况反馈审批 (days overdue, the 期's filing, filters, Excel)
OVERDUE_URL = "/projects/review/reports/overdue"


def list_url(what: str, month: dt.date | None = None) -> str:
    args = {"what": what}
    if month is not None:
        args["month"] = month_key(month)
    return f"{LIST_URL}?{urlencode(args)}"


# ---------------------------------------------------------------- the figures


def _counts(session: Session, column: Any) -> dict[str, int]:
    return {state: n for state, n in session.execute(select(column, func.count()).group_by(column)).all()}


def _by_state(session: Session, column: Any, states: Any, draft_list: str, path: str, total_label: str
              ) -> list[dict[str, Any]]:
    """A count per state (linking to its list; drafts to their own) and the total of all but drafts."""
    counts = _counts(session, column)
    out = []
    for state in states.STATES:
        url = list_url(draft_list) if state == "draft" else f"{path}?state={state}"
        out.append({"state": state, "label": states.LABELS[state], "count": counts.get(state, 0), "url": url})
    out.append({"state": "all", "label": total_label, "url": f"{path}?state=all",
                "count": sum(n for s, n in counts.items() if s != "draft")})
    return out


def filings_by_state(session: Session) -> list[dict[str, Any]]:
    return _by_state(session, Filing.state, filing_states, "filing_draft", "/projects/review/filings", "已上报合计")


def reports_by_state(session: Session) -> list[dict[str, Any]]:
    return _by_state(session, ExecutionReport.state, report_states, "report_draft", "/projects/review/reports",
                     "已提交合计")


def due_soon(rows: list[dict[str, Any]], today: dt.date) -> list[dict[str, Any]]:
    return [d for d in rows if d["due_on"] is not None and 0 <= (d["due_on"] - today).days <= DUE_SOON_DAYS]


def _held_stmt(first: dt.date) -> Any:
    return (select(Filing, Offering, Project).join(Offering, Filing.offering_id == Offering.id)
            .join(Project, Offering.project_id == Project.id)
            .where(Filing.state == "approved", Filing.starts_on <= month_end(first), Filing.ends_on >= first))


def _held_list() -> Any:
    """An award list whose 期 was held: those of a 期 ended as 未举办 never take effect (年度统计 leaves them out)."""
    return ~exists().where(Filing.offering_id == AwardedList.offering_id, Filing.state == "cancelled")


def credits_by_month(session: Session, today: dt.date) -> list[dict[str, Any]]:
    """The last 12 months (this one included): awards (人次) and credit sums by the month of 活动日期."""
    first = add_months(month_start(today), -(MONTHS - 1))
    stmt = (select(AwardedTrainee.activity_date, func.count(), func.sum(AwardedTrainee.credit_value))
            .join(AwardedList, AwardedTrainee.list_id == AwardedList.id)
            .where(AwardedTrainee.activity_date >= first, AwardedTrainee.activity_date <= month_end(month_start(today)),
                   AwardedTrainee.method != "manual", AwardedTrainee.state != "withdrawn", _held_list())
            .group_by(AwardedTrainee.activity_date))
    buckets: dict[dt.date, list[Any]] = {add_months(first, i): [0, Decimal(0)] for i in range(MONTHS)}
    for day, n, total in session.execute(stmt).all():
        bucket = buckets[month_start(day)]
        bucket[0] += n
        bucket[1] += Decimal(total or 0)
    return [{"month": month_key(m), "label": f"{m.year}年{m.month}月", "short": f"{m.month}月", "awards": n,
             "credits": total, "url": list_url("credited", m)} for m, (n, total) in buckets.items()]


def first_steps(session: Session) -> list[tuple[str, str, str]]:
    """A new installation's committee: what to do first, while it is not done (the first-day walk found an empty
    home page that said nothing). (label, link, why) of each step left."""
    from ..catalogue.models import Project
    from ..institutions.models import Institution

    steps = []
    if not session.scalar(select(func.count(Institution.id))):
        steps.append(("申办机构", "/projects/institutions", "新建或用 Excel 导入各申办机构的账号和初始密码，交给各机构"
                      "（各机构首次登录时添加机构负责人，并设置自己的密码）"))
    if not session.scalar(select(func.count(Project.id))):
        steps.append(("项目目录", "/projects/catalogue",
                      "导入本年度省级继续医学教育项目目录（主办单位须先在申办机构中）"))
    return steps


def dashboard(session: Session, today: dt.date) -> dict[str, Any]:
    rows = due_reports(session, today)
    this_month = month_start(today)
    held = session.scalar(select(func.count()).select_from(_held_stmt(this_month).subquery())) or 0
    return {
        "today": today,
        "filings": filings_by_state(session),
        "reports": reports_by_state(session),
        "reports_due_soon": {"count": len(due_soon(rows, today)), "days": DUE_SOON_DAYS,
                             "url": list_url("report_due_soon")},
        "reports_overdue": {"count": sum(1 for d in rows if d["overdue"]), "url": OVERDUE_URL},
        "held_this_month": {"month": month_key(this_month), "count": held, "url": list_url("held", this_month)},
        "credits_by_month": credits_by_month(session, today),
    }


# ---------------------------------------------------------------- the chart


def bar_chart(points: list[dict[str, Any]], width: int = 720, height: int = 240) -> dict[str, Any]:
    """Geometry of a server-rendered SVG bar chart of credits per month (the template draws it)."""
    top, bottom, left, right = 24, 36, 8, 8
    plot_h = height - top - bottom
    slot = (width - left - right) / max(1, len(points))
    peak = max((p["credits"] for p in points), default=Decimal(0)) or Decimal(1)
    bars = []
    for i, p in enumerate(points):
        h = float(p["credits"] / peak) * plot_h if p["credits"] else 0.0
        x = left + i * slot + slot * 0.15
        bars.append({**p, "x": round(x, 1), "w": round(slot * 0.7, 1), "y": round(top + plot_h - h, 1),
                     "h": round(h, 1), "cx": round(left + i * slot + slot / 2, 1)})
    return {"width": width, "height": height, "base": top + plot_h, "label_y": height - bottom + 18, "bars": bars}


# ---------------------------------------------------------------- the lists behind the figures


def _row(offering: Offering, filing: Filing | None, project: Project, institution_name: str, **extra: Any
         ) -> dict[str, Any]:
    row = {"offering_id": offering.id, "project_number": project.number, "project_title": project.title,
           "seq_label": seq_label(offering.seq), "institution_name": institution_name,
           "starts_on": filing.starts_on if filing else None, "ends_on": filing.ends_on if filing else None,
           "deadline": None, "state_label": "", "url": None, "awards": None, "credits": None}
    row.update(extra)
    return row


def _names(session: Session) -> dict[int, str]:
    return dict(session.execute(select(Institution.id, Institution.name)).all())


def list_rows(session: Session, what: str, today: dt.date, month: dt.date | None) -> list[dict[str, Any]]:
    names = _names(session)
    base = (select(Filing, Offering, Project).join(Offering, Filing.offering_id == Offering.id)
            .join(Project, Offering.project_id == Project.id))
    if what == "filing_draft":
        out = []
        for f, o, p in session.execute(base.where(Filing.state == "draft")
                                       .order_by(Filing.starts_on.asc().nulls_last(), Filing.id)).all():
            deadline = f.starts_on - dt.timedelta(days=MIN_DAYS_BEFORE) if f.starts_on else None
            out.append(_row(o, f, p, names.get(f.institution_id, ""), deadline=deadline,
                            state_label=filing_states.LABELS[f.state]))
        return out
    if what == "report_draft":
        stmt = (base.add_columns(ExecutionReport).join(ExecutionReport, ExecutionReport.offering_id == Offering.id)
                .where(ExecutionReport.state == "draft").order_by(Filing.ends_on, Offering.id))
        return [_row(o, f, p, names.get(r.institution_id, ""), deadline=due_on(f),
                     state_label=report_states.LABELS[r.state]) for f, o, p, r in session.execute(stmt).all()]
    if what in ("report_due_soon", "report_overdue"):
        rows = due_reports(session, today)
        picked = due_soon(rows, today) if what == "report_due_soon" else [d for d in rows if d["overdue"]]
        return [{"offering_id": d["offering_id"], "project_number": d["project_number"],
                 "project_title": d["project_title"], "seq_label": d["seq_label"],
                 "institution_name": d["institution_name"], "starts_on": d["starts_on"], "ends_on": d["ends_on"],
                 "deadline": d["due_on"],
                 "state_label": report_states.LABELS[d["report_state"]] if d["report_state"] else "未新建",
                 "url": None, "awards": None, "credits": None} for d in picked]
    assert month is not None
    if what == "held":
        stmt = _held_stmt(month).order_by(Filing.starts_on, Offering.id)
        return [_row(o, f, p, names.get(f.institution_id, ""), state_label=filing_states.LABELS[f.state],
                     url=f"/projects/review/filings/{f.id}") for f, o, p in session.execute(stmt).all()]
    if what == "credited":
        sums = (select(AwardedList.offering_id, func.count().label("n"),
                       func.sum(case((AwardedTrainee.state == "effective", 1), else_=0)).label("effective"),
                       func.sum(AwardedTrainee.credit_value).label("total"))
                .join(AwardedTrainee, AwardedTrainee.list_id == AwardedList.id)
                .where(AwardedTrainee.activity_date.between(month, month_end(month)),
                       AwardedTrainee.method != "manual", AwardedTrainee.state != "withdrawn", _held_list())
                .group_by(AwardedList.offering_id).subquery())
        # the state shown is the execution report's (what decides whether the credits take effect), not the
        # filing's, which is 审批通过 for every held offering
        stmt = (select(Offering, Project, Filing, ExecutionReport.state, sums.c.n, sums.c.effective, sums.c.total)
                .join(sums, sums.c.offering_id == Offering.id)
                .join(Project, Offering.project_id == Project.id)
                .outerjoin(Filing, Filing.offering_id == Offering.id)
                .outerjoin(ExecutionReport, ExecutionReport.offering_id == Offering.id)
                .order_by(Project.number, Offering.seq))
        return [_row(o, f, p, names.get(p.institution_id, ""), awards=n, effective=int(effective or 0),
                     credits=Decimal(total or 0),
                     state_label="执行情况反馈" + (report_states.LABELS[rs] if rs else "未新建"),
                     url=f"/projects/review/filings/{f.id}" if f is not None and f.state != "draft" else None)
                for o, p, f, rs, n, effective, total in session.execute(stmt).all()]
    raise ValueError(what)
