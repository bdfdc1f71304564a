"""Demo data: logins as promised, catalogue for the current year, and a second run changes nothing."""

from __future__ import annotations

import datetime as dt
import json

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
    assert accounts["xjtu1"]["admins"] == "张主任 13800000001"
    assert accounts["sxsrmyy"]["admins"] == "none yet: the first login adds a 机构负责人"
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
    # 年度统计 gets each host's catalogue count at every load, also of a catalogue loaded before counts were sent
    from services.projects.db import outbox

    s = projects_db.new_session()
    try:
        told = [json.loads(e)["payload"] for e in s.scalars(select(outbox.c.envelope).where(
            outbox.c.name == "catalogue.counted").order_by(outbox.c.id))]
        per_host = {iid: n for iid, n in s.execute(select(Project.institution_id, func.count(Project.id))
                                                    .group_by(Project.institution_id))}
    finally:
        s.close()
    # the first import's own, then one more at each load (counts are absolute: a repeat changes nothing)
    assert len(told) == 3 * len(per_host) and {t["year"] for t in told} == {2031}
    assert {t["institution_id"]: t["projects"] for t in told} == per_host and sum(per_host.values()) == 8


def test_sample_workbook_ships():
    from services.projects.demo import SAMPLE

    assert SAMPLE.is_file() and SAMPLE.stat().st_size > 1000


def test_demo_over_new_year_files_into_next_years_catalogue(projects_db):
    """3 January, Beijing time: the held offering that would run 31 December – 1 January is held 30–31 December
    (a 期 lies in its project's year), both held offerings are of the 2026 catalogue, and 2027's is there too,
    whose projects are the ones a new 期 can be filed for."""
    from services.common.auth import Principal
    from services.projects.filings.services import own_projects_page

    clock.set_now(dt.datetime(2027, 1, 3, 2, 0, tzinfo=clock.SHANGHAI))  # still 2 January in UTC
    s = projects_db.new_session()
    out = load_demo(s)
    assert out["catalogue_years"] == [2026, 2027] and out["catalogue"]["year"] == 2027
    one, second = out["held_offerings"]
    assert (one["starts_on"], one["ends_on"]) == ("2026-12-30", "2026-12-31")
    assert (second["starts_on"], second["ends_on"]) == ("2026-12-28", "2026-12-29")
    assert one["project_number"].startswith("2026-") and second["project_number"].startswith("2026-")
    xjtu = s.scalar(select(Institution).where(Institution.account == "xjtu1"))
    office = Principal(role="institution", subject=f"inst:{xjtu.id}:admin:0", name=xjtu.name, institution_id=xjtu.id)
    rows = own_projects_page(s, office, {"page": 1, "per_page": 50})["items"]
    open_years = {r.project.year for r in rows if r.next_label}
    assert open_years == {2027}  # 2026 has no date left: its rows offer no new 期
    s.close()


def test_demo_in_late_december_holds_next_years_catalogue(projects_db):
    """27 December: the first date a filing can take is in 2027, so the demo holds 2027's catalogue beside 2026's
    (whose held offerings stay where they were)."""
    clock.set_now(dt.datetime(2026, 12, 27, 10, 0, tzinfo=clock.SHANGHAI))
    s = projects_db.new_session()
    out = load_demo(s)
    assert out["catalogue_years"] == [2026, 2027] and out["catalogue"]["year"] == 2027
    assert all(h["project_number"].startswith("2026-") for h in out["held_offerings"])
    assert [h["ends_on"] for h in out["held_offerings"]] == ["2026-12-25", "2026-12-22"]
    s.close()


def test_demo_loaded_again_names_the_admin_a_first_login_added(projects_db, capsys):
    """`make down`, `make up` loads the demo again: sxsrmyy's first login had added a 机构负责人, and the summary
    said `admin_mobile: None`. It names who receives the codes now, a mobile a person typed masked."""
    from deploy.local import _print_demo
    from services.projects.institutions.services import add_admin

    s = projects_db.new_session()
    load_demo(s)
    sx = s.scalar(select(Institution).where(Institution.account == "sxsrmyy"))
    add_admin(s, sx, "王主任", "13912345678")
    s.commit()
    s.close()
    s = projects_db.new_session()
    out = load_demo(s)
    s.close()
    accounts = {i["account"]: i for i in out["institutions"]}
    assert accounts["sxsrmyy"]["admins"] == "王主任 139****5678"
    assert accounts["xjtu1"]["admins"] == "张主任 13800000001"  # the demo's own: its codes are in the SMS log
    _print_demo(out)
    printed = capsys.readouterr().out
    assert "admins: 王主任 139****5678" in printed and "13912345678" not in printed and "None" not in printed
