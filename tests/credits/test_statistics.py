"""年度统计: the committee's December figures (offerings, held, reports approved, effective awards and credits,
pending, manual, by institution) and how many trainees met the year's requirement; the page and its Excel file,
the committee's only."""

from __future__ import annotations

import datetime as dt
import io

from openpyxl import load_workbook

from services.common import clock
from services.common.events import make_envelope
from tests.conftest import login_client
from tests.credits.test_compliance import ID_NUMBER, insert_award
from tests.credits.test_offerings import INST_A, REVIEWER, deliver, payload

OTHER_ID = "610102198502024321"
ENDPOINTS = {"GET /credits/statistics": ("reviewer",), "GET /credits/statistics.xlsx": ("reviewer",),
             "GET /credits/statistics/unseen": ("reviewer",), "GET /credits/statistics/unseen.xlsx": ("reviewer",),
             "GET /credits/statistics/cancelled": ("reviewer",)}
TODAY = dt.datetime(2026, 12, 20, 2, 0, tzinfo=dt.UTC)


def _world(databases):
    clock.set_now(TODAY)
    deliver(make_envelope("offering.approved", "projects", payload()))  # 西安市第一医院, 2026-12-10..11
    deliver(make_envelope("offering.approved", "projects", payload(
        offering_id=202, institution_id=2, institution_name="宝鸡市中心医院", project_number="2026-02-01-001",
        starts_on=dt.date(2026, 3, 1), ends_on=dt.date(2026, 3, 2))))
    deliver(make_envelope("offering.approved", "projects", payload(
        offering_id=303, institution_id=2, institution_name="宝鸡市中心医院", project_number="2026-02-01-002",
        starts_on=dt.date(2027, 1, 5), ends_on=dt.date(2027, 1, 6))))  # of 2026's catalogue, not held yet
    day = dt.date(2026, 6, 12)
    # 曾小明: 10 Ⅰ类 + 15 Ⅱ类 in effect: meets 25 / 10
    insert_award(databases, ID_NUMBER, credit_class="Ⅰ类", value="10", ends_on=day, offering_id=101)  # 101 was held
    insert_award(databases, ID_NUMBER, credit_class="Ⅱ类", value="15", ends_on=day)
    insert_award(databases, ID_NUMBER, method="manual", state="pending", value="3", ends_on=day)  # never counts
    insert_award(databases, ID_NUMBER, state="withdrawn", value="9", ends_on=day)  # withdrawn: nowhere
    insert_award(databases, ID_NUMBER, value="30", ends_on=dt.date(2025, 6, 12))  # another year
    # the other trainee, at 宝鸡: 5 in effect (does not meet), 5 pending
    insert_award(databases, OTHER_ID, value="5", ends_on=day, institution_id=2)
    insert_award(databases, OTHER_ID, value="5", state="pending", ends_on=day, institution_id=2)


def test_the_year_s_figures_by_institution_and_who_met_the_requirement(credits_app, databases):
    _world(databases)
    c = login_client(credits_app.test_client(), REVIEWER)
    page = c.get("/credits/statistics")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "2026 年度统计" in html
    assert "有效学分学员 <strong>2</strong> 人，其中达标 <strong id=\"met\">1</strong> 人（50.0%）" in html
    assert "总学分不少于 25 分，其中Ⅰ类学分不少于 10 分" in html
    xian = html.split("<td>西安市第一医院</td>")[1].split("</tr>")[0]
    # 1 offering, ended 12-11 and awarded: held; report not approved; 2 effective, 25 credits, 1 manual
    # (no catalogue counts in this world: 目录项目 and 计划期数 0)
    assert xian == ("<td>0</td><td>0</td><td>1</td><td>1</td><td>0</td><td>0</td><td>0</td><td>2</td><td>25</td>"
                    "<td>0</td><td>1</td>")
    # 202 ended in March with no check-in, award or report: not held, but 未见举办记录; 303 is next January's
    baoji = html.split("<td>宝鸡市中心医院</td>")[1].split("</tr>")[0]
    assert baoji == ("<td>0</td><td>0</td><td>2</td><td>0</td>"
                     '<td><a href="/credits/statistics/unseen?year=2026&amp;institution_id=2">1</a></td>'
                     "<td>0</td><td>0</td><td>1</td><td>5</td><td>1</td><td>0</td>")
    assert ("<th>合计</th><th>0</th><th>0</th><th>3</th><th>1</th>"
            '<th><a href="/credits/statistics/unseen?year=2026">1</a></th>'
            "<th>0</th><th>0</th><th>3</th><th>30</th><th>1</th><th>1</th>") in html
    assert "<th>已举办</th><th>已过举办日期未见举办记录</th><th>已取消举办/未举办</th>" in html
    last_year = c.get("/credits/statistics?year=2025").get_data(as_text=True)
    assert "有效学分学员 <strong>1</strong> 人，其中达标 <strong id=\"met\">1</strong> 人" in last_year
    assert c.get("/credits/statistics?year=abc").status_code == 422
    # the year on screen is the one selected, and next year's can be chosen (its catalogue comes in December)
    future = c.get("/credits/statistics?year=2030").get_data(as_text=True)
    assert '<option value="2030" selected>' in future and '<option value="2027">' in future

    sheet = c.get("/credits/statistics.xlsx?year=2026")
    assert sheet.status_code == 200 and "2026%E5%B9%B4%E5%BA%A6" in sheet.headers["Content-Disposition"]
    ws = load_workbook(io.BytesIO(sheet.data)).active
    rows = list(ws.iter_rows(values_only=True))
    assert "有效学分学员 2 人，达标 1 人" in rows[0][0] and rows[1][0] == "申办机构" and ws.freeze_panes == "A3"
    assert rows[-1] == ("合计", 0, 0, 3, 1, 1, 0, 0, 3, 30, 1, 1)
    assert rows[1][4:7] == ("已举办", "已过举办日期未见举办记录", "已取消举办/未举办")


def test_an_offering_over_counts_held_by_a_check_in_or_a_report_not_by_its_dates(credits_app, databases):
    """An approved 期 that was cancelled left nothing behind and was counted 已举办 once its days were over: the
    committee could not see which hosts to ask. A check-in (or an award, or an execution report) shows it held."""
    from sqlalchemy import update

    from services.credits.offerings.models import OfferingCredit
    from tests.credits.test_attendance import event

    _world(databases)
    c = login_client(credits_app.test_client(), REVIEWER)

    def baoji() -> str:
        html = c.get("/credits/statistics?year=2026").get_data(as_text=True)
        return html.split("<td>宝鸡市中心医院</td>")[1].split("</tr>")[0]

    assert baoji().startswith("<td>0</td><td>0</td><td>2</td><td>0</td><td><a href=")
    assert ">1</a></td>" in baoji()
    deliver(event(checkin_id=9, offering_id=202, institution_id=2, activity_id=8))
    assert baoji().startswith("<td>0</td><td>0</td><td>2</td><td>1</td><td>0</td><td>0</td>")  # no link to nothing
    # a report alone (filed on paper attendance, say) is a trace too
    s = databases["credits"].new_session()
    s.execute(update(OfferingCredit).where(OfferingCredit.offering_id == 303).values(
        ends_on=dt.date(2026, 3, 9), starts_on=dt.date(2026, 3, 8), report_state="submitted"))
    s.commit()
    s.close()
    assert baoji().startswith("<td>0</td><td>0</td><td>2</td><td>2</td><td>0</td>")


def counted(year: int, institution_id: int, name: str, projects: int, planned: int, at: dt.datetime) -> None:
    deliver(make_envelope("catalogue.counted", "projects", {
        "year": year, "institution_id": institution_id, "institution_name": name, "projects": projects,
        "planned": planned, "counted_at": at}))


def test_a_host_with_catalogue_projects_and_nothing_held_is_listed(credits_app, databases):
    """年度统计 listed only hosts with an approved 期 or an award: a host that held nothing of its catalogue, the one
    a clerk chases in December, was missing. Projects' counts (catalogue.counted) list it, with zeros."""
    _world(databases)
    counted(2026, 1, "西安市第一医院", 3, 4, TODAY)
    counted(2026, 9, "延安市人民医院", 2, 2, TODAY - dt.timedelta(days=30))
    counted(2026, 9, "延安市人民医院", 2, 3, TODAY)  # 举办期数 raised on a later import
    counted(2026, 9, "延安市人民医院", 1, 1, TODAY - dt.timedelta(days=1))  # an older count arriving late
    counted(2026, 8, "榆林市第一医院", 0, 0, TODAY)  # its only project deleted: nothing to chase
    counted(2027, 9, "延安市人民医院", 5, 5, TODAY)  # next year's catalogue
    c = login_client(credits_app.test_client(), REVIEWER)
    html = c.get("/credits/statistics?year=2026").get_data(as_text=True)
    xian = html.split("<td>西安市第一医院</td>")[1].split("</tr>")[0]
    assert xian.startswith("<td>3</td><td>4</td><td>1</td><td>1</td>")
    yanan = html.split("<td>延安市人民医院</td>")[1].split("</tr>")[0]
    assert yanan == "<td>2</td><td>3</td>" + "<td>0</td>" * 7 + "<td>0</td><td>0</td>"  # 0 unseen: no link
    assert "榆林市第一医院" not in html
    assert "<th>合计</th><th>5</th><th>7</th><th>3</th>" in html
    # listed after those that held something
    assert html.index("延安市人民医院") > html.index("宝鸡市中心医院") > html.index("西安市第一医院")
    rows = list(load_workbook(io.BytesIO(c.get("/credits/statistics.xlsx?year=2026").data)).active
                .iter_rows(values_only=True))
    assert rows[1][:4] == ("申办机构", "目录项目", "计划期数", "审批通过期次")
    assert ("延安市人民医院", 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0) in rows
    nxt = c.get("/credits/statistics?year=2027").get_data(as_text=True)
    assert "<td>延安市人民医院</td><td>5</td><td>5</td>" in nxt and "西安市第一医院" not in nxt


def test_only_the_committee_sees_the_statistics(credits_app, databases):
    _world(databases)
    assert credits_app.test_client().get("/credits/statistics").status_code == 302  # to a login page
    office = login_client(credits_app.test_client(), INST_A)
    assert office.get("/credits/statistics").status_code == 403
    assert office.get("/credits/statistics.xlsx").status_code == 403


def test_endpoints_declare_committee_access(credits_app):
    from services.common.web import endpoint_access

    table = endpoint_access(credits_app)
    assert {rule: table[rule] for rule in ENDPOINTS} == ENDPOINTS


def test_a_renamed_host_is_listed_under_its_name_now(credits_app, databases):
    """An offering keeps the host's name it was approved under; the row of 年度统计 showed that old name (or the
    larger of old and new), so a clerk looking for the hospital by its present name did not find it."""
    _world(databases)
    deliver(make_envelope("offering.approved", "projects", payload(
        offering_id=404, institution_id=2, institution_name="宝鸡市中心医院", project_number="2026-02-01-003",
        starts_on=dt.date(2026, 4, 1), ends_on=dt.date(2026, 4, 2))))
    counted(2026, 2, "宝鸡市人民医院", 3, 3, TODAY)  # renamed: projects count it again under the new name
    html = login_client(credits_app.test_client(), REVIEWER).get("/credits/statistics?year=2026").get_data(
        as_text=True)
    assert "<td>宝鸡市人民医院</td><td>3</td><td>3</td><td>3</td>" in html
    assert "宝鸡市中心医院" not in html


def test_the_unseen_figure_opens_the_offerings_to_chase(credits_app, databases):
    """已过举办日期未见举办记录 said how many 期 per host, never which: in December the clerk phones the host about
    each one and had to find them elsewhere. The figure opens them, one 期 a row, for that host or for all."""
    _world(databases)
    deliver(make_envelope("offering.approved", "projects", payload(
        offering_id=505, institution_id=3, institution_name="延安市人民医院", project_number="2026-03-01-001",
        project_title="基层急救技能培训班", starts_on=dt.date(2026, 5, 6), ends_on=dt.date(2026, 5, 6))))
    c = login_client(credits_app.test_client(), REVIEWER)
    baoji = c.get("/credits/statistics/unseen?year=2026&institution_id=2")
    html = baoji.get_data(as_text=True)
    assert baoji.status_code == 200 and "已过举办日期未见举办记录：宝鸡市中心医院" in html and "共 1 期" in html
    assert "2026-02-01-001" in html and "2026-03-01 至 2026-03-02" in html
    assert "2026-02-01-002" not in html  # next January's: not over
    assert "2026-03-01-001" not in html and "第一期" in html
    every = c.get("/credits/statistics/unseen?year=2026").get_data(as_text=True)
    assert "共 2 期" in every and "基层急救技能培训班" in every and "2026-05-06</td>" in every
    assert "西安市第一医院" not in every  # held: awarded
    assert c.get("/credits/statistics/unseen?year=2026&institution_id=abc").status_code == 422
    assert login_client(credits_app.test_client(), INST_A).get("/credits/statistics/unseen").status_code == 403


def test_the_offerings_to_chase_export_to_excel(credits_app, databases):
    """The chase list goes out to the hosts (or to a city's office) and is ticked off: the page had no Excel, as
    年度统计 itself has."""
    _world(databases)
    c = login_client(credits_app.test_client(), REVIEWER)
    assert 'href="/credits/statistics/unseen.xlsx?year=2026&amp;institution_id=2"' in c.get(
        "/credits/statistics/unseen?year=2026&institution_id=2").get_data(as_text=True)
    sheet = c.get("/credits/statistics/unseen.xlsx?year=2026&institution_id=2")
    assert sheet.status_code == 200 and "attachment" in sheet.headers["Content-Disposition"]
    rows = list(load_workbook(io.BytesIO(sheet.data)).active.iter_rows(values_only=True))
    assert "共 1 期" in rows[0][0] and rows[1][:4] == ("申办机构", "项目编号", "项目名称", "期次")
    assert rows[2][:6] == ("宝鸡市中心医院", "2026-02-01-001", "心血管急危重症诊治进展", "第一期", "2026-03-01",
                           "2026-03-02")
    assert len(rows) == 3
    assert login_client(credits_app.test_client(), INST_A).get(
        "/credits/statistics/unseen.xlsx").status_code == 403


def test_the_chase_list_names_a_renamed_host_as_it_is_called_now(credits_app, databases):
    """The clerk phones the host: its 期 approved before a rename carry the old name, so the list (and its file)
    named a hospital that no longer goes by it. It names the host as 年度统计 does, the old name beside."""
    _world(databases)
    counted(2026, 2, "宝鸡市人民医院", 2, 2, TODAY)  # renamed: projects count it again under the new name
    c = login_client(credits_app.test_client(), REVIEWER)
    html = c.get("/credits/statistics/unseen?year=2026&institution_id=2").get_data(as_text=True)
    assert "已过举办日期未见举办记录：宝鸡市人民医院" in html and "审批时名称：宝鸡市中心医院" in html
    rows = list(load_workbook(io.BytesIO(c.get("/credits/statistics/unseen.xlsx?year=2026").data)).active
                .iter_rows(values_only=True))
    assert rows[2][0] == "宝鸡市人民医院"


def test_the_host_search_narrows_the_rows_and_says_which_total_is_which(credits_app, databases):
    """~300 hosts a year and no search: the clerk with one hospital on the phone scrolled for it. 申办机构 narrows
    the rows by the name they show (its present one); 检索结果合计 sums the rows shown, 全省合计 stays the
    province's, both labelled, on the page and in its Excel file."""
    _world(databases)
    counted(2026, 2, "宝鸡市人民医院", 2, 2, TODAY)  # renamed: found by the name it goes by now
    counted(2026, 9, "延安市人民医院", 2, 3, TODAY)
    c = login_client(credits_app.test_client(), REVIEWER)
    html = c.get("/credits/statistics?year=2026&q=人民").get_data(as_text=True)
    assert "<td>宝鸡市人民医院</td>" in html and "<td>延安市人民医院</td>" in html
    assert "<td>西安市第一医院</td>" not in html
    assert "申办机构含“人民”：共 2 家（全省 3 家）" in html and 'name="q" value="人民"' in html
    # the two shown: 宝鸡 2+0 目录/计划 … ; 延安 2/3, nothing held
    assert ("<th>检索结果合计（2 家）</th><th>4</th><th>5</th><th>2</th><th>0</th><th>1</th>"
            "<th>0</th><th>0</th><th>1</th><th>5</th><th>1</th><th>0</th>") in html
    assert "<th>全省合计</th><th>4</th><th>5</th><th>3</th><th>1</th>" in html
    assert "全省有效学分学员 <strong>2</strong> 人" in html  # a trainee is no host's: not narrowed
    # the old name finds nothing; 全角 and spaces typed are the same text
    old = c.get("/credits/statistics?year=2026&q=中心医院").get_data(as_text=True)
    assert "没有名称含“中心医院”的申办机构" in old and "<th>全省合计</th>" in old
    spaced = c.get("/credits/statistics?year=2026&q=宝鸡市　人民医院 ").get_data(as_text=True)
    assert "<td>宝鸡市人民医院</td>" in spaced and "<td>延安市人民医院</td>" not in spaced
    # without a search the page is as before: one 合计, the province's
    plain = c.get("/credits/statistics?year=2026").get_data(as_text=True)
    assert "<th>合计</th>" in plain and "检索结果合计" not in plain and "<td>西安市第一医院</td>" in plain
    assert 'href="/credits/statistics.xlsx?year=2026&amp;q=%E4%BA%BA%E6%B0%91"' in html
    assert c.get("/credits/statistics?year=2026&q=" + "院" * 101).status_code == 422

    sheet = c.get("/credits/statistics.xlsx?year=2026&q=人民")
    assert sheet.status_code == 200
    rows = list(load_workbook(io.BytesIO(sheet.data)).active.iter_rows(values_only=True))
    assert "申办机构含“人民”：2 家" in rows[0][0] and "全省有效学分学员 2 人" in rows[0][0]
    assert [r[0] for r in rows[2:]] == ["宝鸡市人民医院", "延安市人民医院", "检索结果合计（2 家）", "全省合计"]
    assert rows[-2][1:4] == (4, 5, 2) and rows[-1][1:4] == (4, 5, 3)
