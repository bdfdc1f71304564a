"""The committee's 首页: the figures (filings and reports by state, due soon, overdue, held this month, credits per
month without manual entries), every figure linking to a list that shows it, the SVG chart, the landing redirect
after login, the nav link, and who may call what."""

from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal

import pytest

from services.common import clock, pii
from services.common.auth import Principal
from services.projects.awarded.models import AwardedList, AwardedTrainee
from tests.conftest import bearer, login_client
from tests.projects.test_reminders import add_offering, add_report

TODAY = dt.datetime(2026, 12, 22, 2, 0, tzinfo=dt.UTC)  # 2026-12-22 10:00 in Shanghai
TRAINEE = Principal(role="trainee", subject="trainee:" + "a" * 64, name="学员甲", trainee_key="a" * 64)


def award(projects_db, offering_id, institution_id, rows):
    """rows: (activity_date, credit_value, method, state)."""
    s = projects_db.new_session()
    lst = AwardedList(offering_id=offering_id, institution_id=institution_id, count=len(rows), as_of=clock.now())
    s.add(lst)
    s.flush()
    for i, (day, value, method, state) in enumerate(rows):
        s.add(AwardedTrainee(list_id=lst.id, award_id=offering_id * 100 + i, trainee_key=f"{offering_id}-{i}",
                             name=f"学员{i}", id_enc=pii.encrypt("610102199001011234"), credit_class="Ⅰ类",
                             credit_value=Decimal(value), activity_date=day, method=method, state=state))
    s.commit()
    s.close()


@pytest.fixture
def world(projects_db, inst_a, inst_b, reviewer, make_project):
    clock.set_now(TODAY)
    a, b = inst_a[0], inst_b[0]
    titles = {}

    def offering(inst, key, state, starts, ends):
        titles[key] = f"项目{key}"
        project = make_project(inst, title=titles[key])
        return add_offering(projects_db, project, state, starts, ends)

    due_soon, _ = offering(a, "即将到期", "approved", dt.date(2026, 12, 10), dt.date(2026, 12, 11))  # due 12-25
    overdue, _ = offering(b, "已逾期", "approved", dt.date(2026, 11, 1), dt.date(2026, 11, 2))  # due 11-16
    add_report(projects_db, overdue, b.id, "draft")
    sent, _ = offering(a, "已提交反馈", "approved", dt.date(2026, 11, 20), dt.date(2026, 11, 20))
    add_report(projects_db, sent, a.id, "submitted")
    offering(a, "登记草稿", "draft", dt.date(2027, 1, 15), dt.date(2027, 1, 15))
    offering(b, "登记待审批", "submitted", dt.date(2027, 1, 20), dt.date(2027, 1, 21))
    offering(a, "登记已退回", "returned", dt.date(2027, 2, 1), dt.date(2027, 2, 1))
    spans, _ = offering(b, "跨月举办", "approved", dt.date(2026, 11, 30), dt.date(2026, 12, 1))  # held this month too
    add_report(projects_db, spans, b.id, "submitted")
    award(projects_db, due_soon, a.id, [(dt.date(2026, 12, 11), "10", "attendance", "pending")] * 3
          + [(dt.date(2026, 12, 11), "10", "manual", "pending"),  # manual: not valid credit, not counted
             (dt.date(2026, 12, 11), "10", "attendance", "withdrawn")])
    award(projects_db, sent, a.id, [(dt.date(2026, 11, 20), "2.5", "attendance", "effective")] * 2
          + [(dt.date(2025, 12, 20), "4", "attendance", "effective")])  # 13 months ago: outside the chart
    return {"titles": titles, "reviewer": reviewer[1], "inst_a": inst_a[1], "trainee": TRAINEE}


def figure(items, state):
    return next(f for f in items if f["state"] == state)


def test_figures(projects_app, world):
    c = projects_app.test_client()
    assert 'id="first-steps"' not in _get(login_client(projects_app.test_client(), world["reviewer"]),
                                          "/projects/review")  # institutions and a catalogue: nothing to start
    d = c.get("/projects/api/review/dashboard", headers=bearer(world["reviewer"])).get_json()
    assert d["today"] == "2026-12-22"
    assert {f["state"]: f["count"] for f in d["filings"]} == {"draft": 1, "submitted": 1, "returned": 1,
                                                               "approved": 4, "cancelled": 0, "all": 6}
    assert {f["state"]: f["count"] for f in d["reports"]} == {"draft": 1, "submitted": 2, "returned": 0,
                                                               "approved": 0, "all": 2}
    assert figure(d["filings"], "submitted")["url"] == "/projects/review/filings?state=submitted"
    assert figure(d["reports"], "approved")["url"] == "/projects/review/reports?state=approved"
    assert d["reports_due_soon"]["count"] == 1 and d["reports_overdue"]["count"] == 1
    assert d["held_this_month"] == {"month": "2026-12", "count": 2,
                                    "url": "/projects/review/dashboard/list?what=held&month=2026-12"}
    months = d["credits_by_month"]
    assert [m["month"] for m in months] == [f"2026-{m:02d}" for m in range(1, 13)]
    by = {m["month"]: m for m in months}
    assert by["2026-12"]["awards"] == 3 and Decimal(by["2026-12"]["credits"]) == Decimal("30")
    assert by["2026-11"]["awards"] == 2 and Decimal(by["2026-11"]["credits"]) == Decimal("5")
    assert sum(m["awards"] for m in months) == 5


def _get(c, url):
    r = c.get(url)
    assert r.status_code == 200, (url, r.status_code)
    return r.get_data(as_text=True)


def test_every_figure_links_to_a_list_that_shows_it(projects_app, world):
    c = login_client(projects_app.test_client(), world["reviewer"])
    page = _get(c, "/projects/review")
    content = page.split("<main>")[1].split("</main>")[0]  # the layout's one script guards double submits
    assert "<svg" in content and "近 12 个月授予学分" in content and "<script" not in content  # a chart without JS
    links = {html.unescape(u) for u in re.findall(r'href="(/projects/[^"]+)"', page)}
    for url in links:
        _get(c, url)
    d = c.get("/projects/api/review/dashboard").get_json()
    t = world["titles"]
    shown = {
        d["reports_due_soon"]["url"]: [t["即将到期"]],
        d["reports_overdue"]["url"]: [t["已逾期"]],
        d["held_this_month"]["url"]: [t["即将到期"], t["跨月举办"]],
        figure(d["filings"], "draft")["url"]: [t["登记草稿"]],
        figure(d["reports"], "draft")["url"]: [t["已逾期"]],
        figure(d["filings"], "submitted")["url"]: [t["登记待审批"]],
        figure(d["reports"], "submitted")["url"]: [t["已提交反馈"], t["跨月举办"]],
        next(m for m in d["credits_by_month"] if m["month"] == "2026-12")["url"]: [t["即将到期"]],
    }
    for url, titles in shown.items():
        assert url in links, url
        body = _get(c, url)
        for title in titles:
            assert title in body, (url, title)
    # the lists show only what they say
    assert t["已逾期"] not in _get(c, d["reports_due_soon"]["url"])
    assert t["已提交反馈"] not in _get(c, d["reports_overdue"]["url"])
    assert t["已提交反馈"] not in _get(c, d["held_this_month"]["url"])


def test_the_overdue_figure_opens_the_overdue_page_and_the_old_list_moved_there(projects_app, world):
    """QA: 执行情况反馈已逾期未提交 opened the old list (no days, no link to the 期, no filters, no Excel)."""
    c = login_client(projects_app.test_client(), world["reviewer"])
    d = c.get("/projects/api/review/dashboard").get_json()
    assert d["reports_overdue"]["url"] == "/projects/review/reports/overdue"
    assert 'href="/projects/review/reports/overdue"' in _get(c, "/projects/review")
    body = _get(c, d["reports_overdue"]["url"])
    assert world["titles"]["已逾期"] in body and "已逾期 36 天" in body and "导出 Excel" in body  # due 11-16
    # an old link or bookmark lands there, with its paging
    old = c.get("/projects/review/dashboard/list?what=report_overdue")
    assert old.status_code == 302 and old.headers["Location"] == "/projects/review/reports/overdue"
    old = c.get("/projects/review/dashboard/list?what=report_overdue&per_page=5&page=2")
    assert old.status_code == 302
    assert old.headers["Location"] == "/projects/review/reports/overdue?page=2&per_page=5"
    assert c.get("/projects/review/dashboard/list?what=report_overdue&per_page=0").status_code == 422


def test_list_arguments_are_checked(projects_app, world):
    c = login_client(projects_app.test_client(), world["reviewer"])
    wrong = c.get("/projects/review/dashboard/list?what=everything")
    said = wrong.get_data(as_text=True)  # the lists by their names, not their codes
    assert wrong.status_code == 422 and "当月举办的期次" in said and "filing_draft" not in said
    assert c.get("/projects/review/dashboard/list?what=held").status_code == 422  # needs a month
    assert c.get("/projects/review/dashboard/list?what=held&month=2026-13").status_code == 422
    body = _get(c, "/projects/review/dashboard/list?what=credited&month=2026-11")
    assert "2026年11月" in body and world["titles"]["已提交反馈"] in body
    # the state is the report's (whether the credits take effect), and pending awards are told apart
    row = body.split(world["titles"]["已提交反馈"])[1].split("</tr>")[0]
    assert "执行情况反馈待审批" in row, row
    december = _get(c, "/projects/review/dashboard/list?what=credited&month=2026-12")
    row = december.split(world["titles"]["即将到期"])[1].split("</tr>")[0]
    assert "<td>3 <span" in row and "已生效 0" in row and "执行情况反馈未新建" in row, row


def test_reviewer_lands_on_the_home_page_with_its_nav_link(projects_app, world):
    c = login_client(projects_app.test_client(), world["reviewer"])
    assert c.get("/projects/").headers["Location"].endswith("/projects/review")
    # the menu marks the page's own section, never 首页 (whose path starts every other review path)
    filings = _get(c, "/projects/review/filings")
    assert '<a href="/projects/review">首页</a>' in filings
    assert '<a href="/projects/review/filings" aria-current="page">举办前登记审批</a>' in filings
    assert filings.count('aria-current="page"') == 1
    assert '<a href="/checkin/activities">继教活动</a>' in filings  # where a trainee's check-ins are looked up
    assert '<a href="/projects/review" aria-current="page">首页</a>' in _get(c, "/projects/review")
    inst = login_client(projects_app.test_client(), world["inst_a"])
    assert inst.get("/projects/").headers["Location"].endswith("/projects/filings")
    own = _get(inst, "/projects/filings")
    assert '<a href="/projects/review">首页</a>' not in own
    assert 'aria-current="page">省级项目申报 · 项目举办前登记</a>' in own
    assert 'aria-label="主菜单"' not in _get(projects_app.test_client(), "/projects/login")  # no menu signed out


def test_empty_dashboard(projects_app, reviewer):
    clock.set_now(TODAY)
    c = login_client(projects_app.test_client(), reviewer[1])
    page = _get(c, "/projects/review")
    assert "<svg" in page
    # a new installation's first day: what to do first (the walk found a page that said nothing)
    assert 'id="first-steps"' in page and 'href="/projects/institutions">申办机构</a>' in page
    assert 'href="/projects/catalogue">项目目录</a>' in page
    d = c.get("/projects/api/review/dashboard").get_json()
    assert all(m["awards"] == 0 for m in d["credits_by_month"])


ROLES = ("anonymous", "trainee", "inst_a", "reviewer")
ENDPOINTS = [
    ("/projects/review", (302, 403, 403, 200)),
    ("/projects/review/dashboard/list?what=held&month=2026-12", (302, 403, 403, 200)),
    ("/projects/api/review/dashboard", (401, 403, 403, 200)),
]


@pytest.mark.parametrize("role", ROLES)
def test_permissions(projects_app, world, role):
    principal = world.get(role)
    for url, expected in ENDPOINTS:
        c = projects_app.test_client()
        kwargs: dict = {}
        if "/api/" in url:
            if principal:
                kwargs["headers"] = bearer(principal)
        elif principal:
            login_client(c, principal)
        r = c.get(url, **kwargs)
        assert r.status_code == expected[ROLES.index(role)], (role, url, r.status_code)


def test_all_dashboard_endpoints_are_in_the_permission_table(projects_app):
    from services.common.web import endpoint_access

    mine = {k: v for k, v in endpoint_access(projects_app).items()
            if k.endswith(("/projects/review", "/review/dashboard", "/review/dashboard/list"))}
    assert set(mine) == {"GET /projects/review", "GET /projects/review/dashboard/list",
                         "GET /projects/api/review/dashboard"}
    assert all(v == ("reviewer",) for v in mine.values())



def test_the_home_page_says_its_credits_include_those_not_yet_effective(projects_app, world):
    """December's 30 credits are all 待生效 (their report is not approved): the home page called them 授予学分
    without a word, and the clerk found 0 for the same month in 年度统计, which counts effective credits."""
    page = login_client(projects_app.test_client(), world["reviewer"]).get("/projects/review").get_data(as_text=True)
    assert "含待生效的学分（执行情况反馈尚未审批通过）" in page and "年度统计的学分合计只计已生效的" in page
