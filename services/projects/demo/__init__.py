"""Demo data for a trial run: a committee reviewer, two institutions, a catalogue of projects, and two
offerings of xjtu1 already held (filed, approved and finished two and five days ago) so that check-ins, 授分,
执行情况反馈 and a trainee's certificates of two projects in one PDF can be tried.

`load_demo(session)` is idempotent (a second run changes nothing) and returns the logins so the
local runner can print them. The catalogue comes from the sample workbook shipped next to this
file, moved (by the one clock, services.common.clock) to every catalogue year the demo needs: the year of each
held offering, and the years of the first week of dates a filing sent today can take (7 days ahead at least).
From late December that is next year's catalogue too: a 期 is held within its project's year, so this year's
projects offer no new 期 once no date 7 days ahead is left in it.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common import clock
from services.common.auth import Principal

from ..catalogue.models import Project
from ..catalogue.services import announce_all, import_rows, read_workbook
from ..filings.models import Filing, Offering
from ..filings.services import earliest_start, put_upload, save_filing, start_offering, submit_filing
from ..institutions.models import Institution, InstitutionAdmin, Reviewer
from ..institutions.services import add_admin, create_institution, create_reviewer
from ..reviews.services import approve
from .make_sample import SAMPLE_YEAR

SAMPLE = Path(__file__).with_name("sample-catalogue.xlsx")

REVIEWER = {"account": "committee", "name": "省继教委审核员", "password": "Committee@2026", "mobile": "13900000000"}
INSTITUTIONS = [
    # the first has a responsible person; the second has none, so a newcomer sees the first-login step
    {"account": "xjtu1", "name": "西安交通大学第一附属医院", "password": "Xjtu1@2026",
     "admin": ("张主任", "13800000001")},
    {"account": "sxsrmyy", "name": "陕西省人民医院", "password": "Sxsrmyy@2026", "admin": None},
]


NO_ADMIN = "none yet: the first login adds a 机构负责人"


def _admins(session: Session, inst: Institution, demo_admin: tuple[str, str] | None) -> str:
    """Who receives this institution's login codes, as it stands (a second `make up` loads the demo again after
    people used it: the first login of sxsrmyy added a 机构负责人, and the summary said it had none). The demo's
    own 负责人 with the whole number, which the SMS log shows the codes for; one a person added, masked."""
    admins = session.scalars(select(InstitutionAdmin).where(InstitutionAdmin.institution_id == inst.id)
                             .order_by(InstitutionAdmin.id)).all()
    if not admins:
        return NO_ADMIN
    return ", ".join(f"{a.real_name} {a.mobile if (a.real_name, a.mobile) == demo_admin else a.masked_mobile}"
                     for a in admins)


def _shift(rows: list[tuple[int, dict[str, str]]], year: int) -> list[tuple[int, dict[str, str]]]:
    old, new = str(SAMPLE_YEAR), str(year)
    return [(n, {k: v.replace(old, new) for k, v in texts.items()}) for n, texts in rows]


def load_demo(session: Session) -> dict[str, Any]:
    """Create what is missing and commit; returns {"reviewer": {...}, "institutions": [...], "catalogue": {...}}."""
    if session.scalar(select(Reviewer.id).where(Reviewer.account == REVIEWER["account"])) is None:
        create_reviewer(session, REVIEWER["account"], REVIEWER["name"], REVIEWER["password"], REVIEWER["mobile"])
    logins = []
    for spec in INSTITUTIONS:
        inst = session.scalar(select(Institution).where(Institution.account == spec["account"]))
        if inst is None:
            inst = create_institution(session, spec["account"], spec["name"], spec["password"])
            # README prints the demo's passwords for a trial: not the committee's secret, so not asked to change
            inst.password_initial = False
            if spec["admin"]:
                add_admin(session, inst, *spec["admin"])
        logins.append({"account": spec["account"], "name": spec["name"], "password": spec["password"],
                       "admins": _admins(session, inst, spec["admin"])})
    year = filing_year()
    workbook = read_workbook(SAMPLE.read_bytes())
    catalogues = {}
    for each in catalogue_years():
        result = import_rows(session, _shift(workbook, each), each)
        if result.errors:
            raise RuntimeError(f"demo catalogue {each} has bad rows: {result.as_dict()['errors']}")
        catalogues[each] = {"year": each, **result.as_dict()}
    announce_all(session)  # 年度统计's catalogue counts, also for a catalogue a demo before them imported
    session.commit()
    held = [h for h in (_held_offering(session, spec) for spec in HELD) if h is not None]
    session.commit()
    return {"reviewer": {k: REVIEWER[k] for k in ("account", "name", "password", "mobile")},
            "institutions": logins, "catalogue": catalogues[year],
            "catalogue_years": sorted(catalogues),
            "held_offering": held[0] if held else None, "held_offerings": held}


FILING_WEEK = 7  # days from the first date a filing can take whose catalogue years the demo holds


def filing_year() -> int:
    """The catalogue year of the first date a filing sent today can take (not today's year: from late December
    that date lies in the next year)."""
    return earliest_start().year


def catalogue_years() -> list[int]:
    """The demo's catalogue years: those of the held offerings, and those of the first week of dates a filing sent
    today can take, so that a two-day 期 can be filed with a day to spare whatever the day of the year."""
    first = earliest_start()
    years = {(first + dt.timedelta(days=n)).year for n in range(FILING_WEEK + 1)}
    return sorted(years | {held_days(days_ago)[0].year for _suffix, days_ago, _titles in HELD})


def held_days(days_ago: int) -> tuple[dt.date, dt.date]:
    """The two days of a held offering that started `days_ago` days ago: a 期 is held within its catalogue year, so
    one that would run over New Year is held a day earlier (31 December its last day)."""
    starts = clock.today_local() - dt.timedelta(days=days_ago)
    ends = starts + dt.timedelta(days=1)
    if ends.year != starts.year:
        starts, ends = starts - dt.timedelta(days=1), ends - dt.timedelta(days=1)
    return starts, ends


HELD_PROJECT_SUFFIX = "-02-03-003"  # 基层医院超声诊断技术提高班 of xjtu1: three offerings, 线下
# (project number suffix, days from its start to today, the two sessions' titles): each held as 第一期, two days
HELD = [
    (HELD_PROJECT_SUFFIX, 3, ("超声基础与规范", "病例讨论")),
    ("-01-01-002", 6, ("重症患者评估与监测", "机械通气实操")),  # 重症医学规范化诊疗培训班 of xjtu1, 线上线下
]


def _jpeg(color: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (800, 600), color).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def _held_offering(session: Session, spec: tuple[str, int, tuple[str, str]]) -> dict[str, Any] | None:
    """第一期 of a demo project: filed 20 days before it started, approved 15 days before, held over two days
    that ended `days_ago - 1` days ago (a day earlier over New Year; by the one clock, so a moved demo clock moves
    the story with it), of the project of its year's catalogue. The history is written at the times it would have
    happened, so every rule (7 days before, dates within the project's year) holds."""
    suffix, days_ago, (first_title, second_title) = spec
    starts, ends = held_days(days_ago)
    year = starts.year
    project = session.scalar(select(Project).where(Project.number == f"{year}{suffix}"))
    if project is None:
        return None
    existing = session.scalar(select(Filing).join(Offering, Filing.offering_id == Offering.id)
                              .where(Offering.project_id == project.id, Offering.seq == 1))
    if existing is None:
        inst = session.get(Institution, project.institution_id)
        admin = session.scalar(select(InstitutionAdmin).where(InstitutionAdmin.institution_id == inst.id))
        office = Principal(role="institution", subject=f"inst:{inst.id}:admin:{admin.id if admin else 0}",
                           name=inst.name, institution_id=inst.id, admin_id=admin.id if admin else None,
                           person=admin.real_name if admin else None)
        reviewer = session.scalar(select(Reviewer).where(Reviewer.account == REVIEWER["account"]))
        committee = Principal(role="reviewer", subject=f"reviewer:{reviewer.id}", name=reviewer.name,
                              reviewer_id=reviewer.id)
        lead = (clock.today_local() - starts).days  # days_ago, or one more over New Year
        real_now = clock.now()
        with clock.travel(real_now - dt.timedelta(days=lead + 20)):
            filing = start_offering(session, office, project.id)
            save_filing(session, office, filing, {
                "starts_on": starts, "ends_on": ends, "venue": "西安市雁塔路277号", "mode": "线下",
                "expected_trainees": 60, "contact_person": "李老师", "contact_phone": "13700001234",
                "schedule": [
                    {"date": starts, "start": dt.time(8, 30), "end": dt.time(12, 0), "title": first_title},
                    {"date": ends, "start": dt.time(14, 0), "end": dt.time(17, 30), "title": second_title}]})
            put_upload(session, office, filing, "notice", "会议通知.jpg", _jpeg("white"))
            put_upload(session, office, filing, "agenda", "会议日程.jpg", _jpeg("lightyellow"))
            submit_filing(session, office, filing)
        with clock.travel(real_now - dt.timedelta(days=lead + 15)):
            approve(session, committee, filing)
            session.flush()
        existing = filing
    return {"offering_id": existing.offering_id, "project_number": project.number, "project_title": project.title,
            "starts_on": existing.starts_on.isoformat() if existing.starts_on else None,
            "ends_on": existing.ends_on.isoformat() if existing.ends_on else None}


__all__ = ["load_demo", "catalogue_years", "filing_year", "held_days", "REVIEWER", "INSTITUTIONS"]
