"""Demo data: logins as promised, catalogue for the current year, and a second run changes nothing."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from services.common import clock
from services.projects.catalogue.models import Project
from services.projects.demo import load_demo
from services.projects.institutions.models import Institution, Reviewer


def counts(s):
    return tuple(s.scalar(select(func.count(m.id))) for m in (Reviewer, Institution, Project))


def test_demo_is_idempotent_and_follows_the_year(projects_db):
    clock.set_now(dt.datetime(2031, 6, 1, tzinfo=dt.UTC))
    s = projects_db.new_session()
    out = load_demo(s)
    assert out["reviewer"]["account"] == "committee"
    accounts = {i["account"]: i for i in out["institutions"]}
    assert accounts["xjtu1"]["admin_mobile"] == "13800000001" and accounts["sxsrmyy"]["admin_mobile"] is None
    assert out["catalogue"]["created"] == 8 and out["catalogue"]["errors"] == []
    first = counts(s)
    projects = s.scalars(select(Project)).all()
    assert {p.year for p in projects} == {2031} and all(p.number.startswith("2031-") for p in projects)
    xjtu = s.scalar(select(Institution).where(Institution.account == "xjtu1"))
    sx = s.scalar(select(Institution).where(Institution.account == "sxsrmyy"))
    assert len(xjtu.admins) == 1 and sx.admins == []
    # one offering already held: filed 20 days before it started, approved, finished two days ago
    held = out["held_offering"]
    assert (held["starts_on"], held["ends_on"]) == ("2031-05-29", "2031-05-30")
    assert clock.now() == dt.datetime(2031, 6, 1, tzinfo=dt.UTC)  # the demo's time travel put the clock back
    from services.projects.filings.models import Filing
    filing = s.scalar(select(Filing).where(Filing.offering_id == held["offering_id"]))
    assert filing.state == "approved" and len(filing.uploads) == 2
    # a second one, of another project, held three days earlier: a trainee of both gets two certificates
    [one, second] = out["held_offerings"]
    assert one == held and second["project_title"] == "重症医学规范化诊疗培训班"
    assert (second["starts_on"], second["ends_on"]) == ("2031-05-26", "2031-05-27")
    assert s.scalar(select(Filing).where(Filing.offering_id == second["offering_id"])).state == "approved"
    s.close()
    s = projects_db.new_session()
    again = load_demo(s)
    assert counts(s) == first
    assert again["catalogue"]["created"] == 0 and again["catalogue"]["updated"] == 0
    assert again["held_offering"] == held and again["held_offerings"] == out["held_offerings"]
    s.close()


def test_sample_workbook_ships():
    from services.projects.demo import SAMPLE

    assert SAMPLE.is_file() and SAMPLE.stat().st_size > 1000
