"""The committee's lists at December's volume: hundreds of institutions, filings and reports. A page of 20 rows
costs a few queries whatever the rows, not a dozen per row (measured with SQLAlchemy's cursor events)."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from decimal import Decimal

import pytest
from sqlalchemy import event

from services.common import clock, pii
from tests.conftest import bearer, login_client

DECEMBER = dt.datetime(2026, 12, 10, 2, 0, tzinfo=dt.UTC)


@contextmanager
def counted(engine):  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def keep(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", keep)


def seed(projects_db, institutions: int, offerings: int, reports: bool = True, report_state: str = "submitted",
         admins: int = 1) -> list[int]:
    """`offerings` approved 期 of as many projects spread over `institutions` institutions, ended in November,
    each with a submitted 执行情况反馈 (or none); returns the institutions' ids."""
    from services.projects.catalogue.models import Project
    from services.projects.filings.models import Filing, Offering
    from services.projects.institutions.models import Institution, InstitutionAdmin
    from services.projects.reports.models import ExecutionReport

    s = projects_db.new_session()
    phone = pii.encrypt("13912345678")
    insts = []
    for i in range(institutions):
        inst = Institution(account=f"vol{i:04d}", name=f"容量医院{i:04d}", password_hash="x")
        s.add(inst)
        insts.append(inst)
    s.flush()
    for i, inst in enumerate(insts):
        for a in range(admins):
            s.add(InstitutionAdmin(institution_id=inst.id, real_name=f"负责人{i}-{a}",
                                   mobile_enc=pii.encrypt(f"138{i:04d}{a:04d}"),
                                   mobile_hash=pii.mobile_hash(f"138{i:04d}{a:04d}")))
    for k in range(offerings):
        inst = insts[k % institutions]
        p = Project(year=2026, number=f"2026-09-01-{k:04d}", title=f"容量项目{k}", leader="王医生",
                    institution_id=inst.id, host_name=inst.name, credit_class="Ⅰ类", credit_value=Decimal("10"),
                    hours=Decimal("20"), offerings_count=1, period_text="2026年", venue="西安", mode="线下")
        s.add(p)
        s.flush()
        o = Offering(project_id=p.id, seq=1)
        s.add(o)
        s.flush()
        s.add(Filing(offering_id=o.id, institution_id=inst.id, state="approved", starts_on=dt.date(2026, 11, 1),
                     ends_on=dt.date(2026, 11, 2), venue="西安", mode="线下", expected_trainees=100,
                     contact_person="李老师", contact_phone_enc=phone, schedule=[], submitted_at=clock.now(),
                     decided_at=clock.now()))
        if reports:
            s.add(ExecutionReport(offering_id=o.id, institution_id=inst.id, state=report_state,
                                  actual_starts_on=dt.date(2026, 11, 1), actual_ends_on=dt.date(2026, 11, 2),
                                  mode="线下", trainees_count=50, total_hours=Decimal("20"), contact_phone_enc=phone,
                                  attendance_imported_at=clock.now(), submitted_at=clock.now()))
    s.commit()
    ids = [i.id for i in insts]
    s.close()
    return ids


@pytest.fixture
def december():
    clock.set_now(DECEMBER)
    yield DECEMBER
    clock.set_now(None)


def test_report_review_list_costs_the_same_for_a_page_of_many_institutions(projects_app, projects_db, reviewer,
                                                                           december):
    seed(projects_db, institutions=40, offerings=40)
    c = login_client(projects_app.test_client(), reviewer[1])
    with counted(projects_db.engine) as seen:
        r = c.get("/projects/review/reports")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "共 40 条" in page and "容量医院0000" in page and "容量项目19" in page
    assert len(seen) <= 12, f"{len(seen)} queries for one page of 20 reports"


def test_overdue_reports_name_their_institutions_in_a_few_queries(projects_app, projects_db, reviewer, december):
    seed(projects_db, institutions=40, offerings=40, reports=False)  # ended 2 November: all overdue on 10 December
    c = login_client(projects_app.test_client(), reviewer[1])
    with counted(projects_db.engine) as seen:
        r = c.get("/projects/api/review/reports/overdue", headers=bearer(reviewer[1]))
    assert r.status_code == 200
    assert {d["institution_name"] for d in r.get_json()["items"]} == {f"容量医院{i:04d}" for i in range(20)}
    assert r.get_json()["total"] == 40
    assert len(seen) <= 6, f"{len(seen)} queries for the overdue list of 40 institutions"


def test_filing_review_list_costs_the_same_for_a_page_of_many_institutions(projects_app, projects_db, reviewer,
                                                                           december):
    seed(projects_db, institutions=40, offerings=40, reports=False)
    c = login_client(projects_app.test_client(), reviewer[1])
    with counted(projects_db.engine) as seen:
        r = c.get("/projects/review/filings?state=approved")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "容量项目19" in page and "容量医院0019" in page
    assert len(seen) <= 8, f"{len(seen)} queries for one page of 20 filings"
    with counted(projects_db.engine) as seen:
        r = c.get("/projects/api/review/filings?state=approved", headers=bearer(reviewer[1]))
    assert r.status_code == 200 and len(r.get_json()["items"]) == 20
    assert not any("filing_uploads.data" in q for q in seen), "the list read every JPG's bytes"
    assert len(seen) <= 30, f"{len(seen)} queries for one page of 20 filings in the API"


def test_institutions_api_counts_every_institutions_admins_in_a_few_queries(projects_app, projects_db, reviewer):
    seed(projects_db, institutions=60, offerings=0, admins=2)
    c = projects_app.test_client()
    with counted(projects_db.engine) as seen:
        r = c.get("/projects/api/institutions", headers=bearer(reviewer[1]))
    assert r.status_code == 200
    assert len(r.get_json()) == 60 and {i["admins"] for i in r.get_json()} == {2}
    assert len(seen) <= 5, f"{len(seen)} queries for 60 institutions"


def test_the_overdue_list_follows_the_filters_above_it(projects_app, projects_db, reviewer, december):
    """In December hundreds of 期 are overdue: the 已逾期未提交 table listed all of them whatever the clerk chose
    above (申办机构, 检索), so the one host she had on the phone was a search through the whole province."""
    ids = seed(projects_db, institutions=40, offerings=80, reports=False)
    c = login_client(projects_app.test_client(), reviewer[1])
    overdue = c.get("/projects/review/reports").get_data(as_text=True).split("已逾期未提交")[1]
    assert overdue.count("<tr>") == 11 and "共 80 期" in overdue  # the head and the first 10 期: the rest paged
    one = c.get(f"/projects/review/reports?institution_id={ids[7]}").get_data(as_text=True).split("已逾期未提交")[1]
    assert one.count("<tr>") == 3 and "容量医院0007" in one and "容量医院0008" not in one and "共 2 期" in one
    typed = c.get("/projects/review/reports?q=容量项目47").get_data(as_text=True).split("已逾期未提交")[1]
    assert typed.count("<tr>") == 2 and "2026-09-01-0047" in typed


def test_a_catalogue_exported_and_imported_back_is_read_in_a_few_queries(projects_app, projects_db, reviewer,
                                                                          december, csrf):
    """导出 Excel, correct a column, import it back: the import asked two questions of every catalogued row (its
    project, its 期 so far), thousands for a year's catalogue. Now the same few whatever the rows."""
    import io

    seed(projects_db, institutions=30, offerings=300, reports=False)
    c = login_client(projects_app.test_client(), reviewer[1])
    sheet = c.get("/projects/catalogue.xlsx?year=2026")
    assert sheet.status_code == 200
    from services.projects.catalogue.tasks import run_import_job

    r = c.post("/projects/catalogue/import", data={"csrf_token": csrf(reviewer[1]), "year": "2026",
                                                   "file": (io.BytesIO(sheet.data), "catalogue.xlsx")},
               content_type="multipart/form-data")
    assert r.status_code == 303
    with counted(projects_db.engine) as seen:  # the worker's run of the job
        assert run_import_job(int(r.headers["Location"].rsplit("/", 1)[1])) == "done"
    assert "未变化 300 项" in c.get(r.headers["Location"]).get_data(as_text=True)
    assert len(seen) <= 20, f"{len(seen)} queries to import 300 catalogued rows back"


def test_the_report_s_page_lists_its_photos_without_reading_them(projects_app, projects_db, reviewer, december):
    """A report carries its schedule, notice and a dozen photos, megabytes each: the committee's page of the report
    (and the JSON list of reports) read every file's bytes to show its name and size. They are read when the file
    itself is opened."""
    import hashlib

    from services.projects.reports.models import ExecutionReport, ReportUpload
    from tests.projects.conftest import jpeg_bytes

    seed(projects_db, institutions=1, offerings=1)
    s = projects_db.new_session()
    report = s.query(ExecutionReport).one()
    photo = jpeg_bytes((400, 300))
    for n in range(12):
        s.add(ReportUpload(report_id=report.id, kind="photo", filename=f"现场{n}.jpg", content_type="image/jpeg",
                           size=len(photo), width=400, height=300, sha256=hashlib.sha256(photo).hexdigest(),
                           data=photo))
    s.commit()
    rid = report.id
    s.close()
    c = login_client(projects_app.test_client(), reviewer[1])
    with counted(projects_db.engine) as seen:
        page = c.get(f"/projects/review/reports/{rid}")
        listed = c.get("/projects/api/review/reports", headers=bearer(reviewer[1]))
    assert page.status_code == 200 and "现场11.jpg" in page.get_data(as_text=True)
    assert listed.status_code == 200 and len(listed.get_json()["items"][0]["uploads"]) == 12
    assert not any("report_uploads.data" in q for q in seen), "the files' bytes were read to list them"
    [upload_url] = [u["url"] for u in listed.get_json()["items"][0]["uploads"] if u["filename"] == "现场3.jpg"]
    opened = c.get(upload_url)
    assert opened.status_code == 200 and opened.data == photo


def test_the_json_list_of_reports_reads_a_page_in_few_queries_per_report(projects_app, projects_db, reviewer,
                                                                         december):
    seed(projects_db, institutions=40, offerings=40)
    with counted(projects_db.engine) as seen:
        r = projects_app.test_client().get("/projects/api/review/reports", headers=bearer(reviewer[1]))
    assert r.status_code == 200 and len(r.get_json()["items"]) == 20
    # its award list and 办理记录 read for the page, not for each report (~45 before)
    assert len(seen) <= 14, f"{len(seen)} queries for 20 reports in full"


def test_overdue_reports_are_paged_linked_and_exported(projects_app, projects_db, reviewer, december):
    """The walk's 执行情况反馈审批 repeated all 362 overdue 期 under every page of its list, linked to nothing,
    with no Excel: now its first rows, a paged page of their own, each 期 opening its filing, and an Excel."""
    import io
    import re

    from openpyxl import load_workbook

    ids = seed(projects_db, institutions=5, offerings=25, reports=False)  # ended 2 November: all overdue
    c = login_client(projects_app.test_client(), reviewer[1])
    row_link = re.compile(r'<a href="/projects/review/offerings/(\d+)">查看登记</a>')
    html = c.get("/projects/review/reports?page=2").get_data(as_text=True)
    overdue = html[html.index('id="overdue"'):]
    assert "共 25 期" in overdue and len(row_link.findall(overdue)) == 10
    assert '<a class="button" href="/projects/review/reports/overdue">查看全部 25 期</a>' in overdue
    assert 'href="/projects/review/reports/overdue.xlsx"' in overdue
    # filtered above, the preview, its 查看全部 and its Excel keep the filter
    narrowed = c.get(f"/projects/review/reports?institution_id={ids[0]}").get_data(as_text=True)
    narrowed = narrowed[narrowed.index('id="overdue"'):]
    assert "共 5 期" in narrowed and "查看全部" not in narrowed
    assert f'href="/projects/review/reports/overdue.xlsx?institution_id={ids[0]}"' in narrowed

    first = c.get("/projects/review/reports/overdue").get_data(as_text=True)
    second = c.get("/projects/review/reports/overdue?page=2").get_data(as_text=True)
    on_first, on_second = row_link.findall(first), row_link.findall(second)
    assert len(on_first) == 20 and len(on_second) == 5 and not set(on_first) & set(on_second)
    assert "第 1 / 2 页" in first and "下一页" in first and "已逾期 24 天" in first  # due 16 November
    # a row opens its 期's filing
    r = c.get(f"/projects/review/offerings/{on_first[0]}")
    assert r.status_code == 302 and re.search(r"/projects/review/filings/\d+$", r.headers["Location"])

    r = c.get("/projects/review/reports/overdue.xlsx?q=容量项目1")  # 容量项目1, 10-19
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    assert "attachment" in r.headers["Content-Disposition"]
    ws = load_workbook(io.BytesIO(r.data)).active
    rows = list(ws.iter_rows(values_only=True))
    assert "共 11 期" in rows[0][0] and "检索“容量项目1”" in rows[0][0]
    assert rows[1] == ("申办机构", "项目编号", "项目名称", "期次", "开始日期", "结束日期", "应提交日期", "逾期天数",
                       "反馈状态")
    assert len(rows) == 13 and rows[2][2] == "容量项目1" and rows[2][6:] == ("2026-11-16", 24, "未新建")
    assert {row[2] for row in rows[2:]} == {"容量项目1", *(f"容量项目{k}" for k in range(10, 20))}

    h = bearer(reviewer[1])
    body = c.get("/projects/api/review/reports/overdue?per_page=10&page=3", headers=h).get_json()
    assert (body["total"], body["page"], body["pages"], body["per_page"], len(body["items"])) == (25, 3, 3, 10, 5)
    assert c.get(f"/projects/api/review/reports/overdue?institution_id={ids[1]}", headers=h).get_json()["total"] == 5
    r = c.get("/projects/api/review/reports/overdue?per_page=1000", headers=h)
    assert r.status_code == 422 and r.get_json()["error"]["fields"] == {"per_page": "应在 1 到 100 之间。"}


def test_overdue_pager_keeps_rows_per_page_and_a_page_past_the_end_says_so(projects_app, projects_db, reviewer,
                                                                           december):
    """QA: ?per_page=5&institution_id=… page 2 showed every row as 第 1 / 1 页 (the pager dropped per_page), and a
    page past the end showed page 1 without a word."""
    import re

    ids = seed(projects_db, institutions=2, offerings=16, reports=False)  # 8 per institution, all overdue
    c = login_client(projects_app.test_client(), reviewer[1])
    row_link = re.compile(r'<a href="/projects/review/offerings/(\d+)">查看登记</a>')
    first = c.get(f"/projects/review/reports/overdue?per_page=5&institution_id={ids[0]}").get_data(as_text=True)
    assert len(row_link.findall(first)) == 5 and "第 1 / 2 页" in first
    nxt = re.search(r'<a href="\?([^"]+)">下一页</a>', first)
    assert nxt and "per_page=5" in nxt.group(1) and f"institution_id={ids[0]}" in nxt.group(1)
    second = c.get("/projects/review/reports/overdue?" + nxt.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert len(row_link.findall(second)) == 3 and "第 2 / 2 页" in second and 'id="past-last"' not in second
    assert 'name="per_page" value="5"' in first  # 查询 with new filters keeps the rows per page too
    past = c.get(f"/projects/review/reports/overdue?per_page=5&institution_id={ids[0]}&page=3").get_data(as_text=True)
    assert "第 2 / 2 页" in past and len(row_link.findall(past)) == 3
    assert "没有第 3 页：共 2 页，以下是最后一页（第 2 页）。" in past
    body = c.get(f"/projects/api/review/reports/overdue?per_page=5&institution_id={ids[0]}&page=3",
                 headers=bearer(reviewer[1])).get_json()
    assert (body["total"], body["page"], body["pages"], len(body["items"])) == (8, 2, 2, 3)


def test_review_list_and_figure_lists_keep_rows_per_page_and_a_page_past_the_end_says_so(projects_app, projects_db,
                                                                                          reviewer, december):
    """QA: 执行情况反馈审批 (?per_page=5&institution_id=…) and the 首页 figure lists dropped per_page from their pager
    links, so 下一页 showed page 2 of 20 rows (the 5 asked for gone); a page past the end showed the last page
    without a word. Both now page as 已逾期未提交 does."""
    import re

    ids = seed(projects_db, institutions=2, offerings=16)  # 8 submitted reports per institution, held in November
    c = login_client(projects_app.test_client(), reviewer[1])
    row = re.compile(r'<a href="/projects/review/reports/(\d+)">审批</a>')
    first = c.get(f"/projects/review/reports?per_page=5&institution_id={ids[0]}").get_data(as_text=True)
    assert len(row.findall(first)) == 5 and "第 1 / 2 页" in first
    nxt = re.search(r'<a href="\?([^"]+)">下一页</a>', first)
    assert nxt and "per_page=5" in nxt.group(1) and f"institution_id={ids[0]}" in nxt.group(1)
    assert "state=submitted" in nxt.group(1)
    second = c.get("/projects/review/reports?" + nxt.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert len(row.findall(second)) == 3 and "第 2 / 2 页" in second and 'id="past-last"' not in second
    assert not set(row.findall(first)) & set(row.findall(second))
    assert 'name="per_page" value="5"' in first  # 查询 with new filters keeps the rows per page too
    past = c.get(f"/projects/review/reports?per_page=5&institution_id={ids[0]}&page=3").get_data(as_text=True)
    assert "第 2 / 2 页" in past and len(row.findall(past)) == 3
    assert "没有第 3 页：共 2 页，以下是最后一页（第 2 页）。" in past
    plain = c.get("/projects/review/reports?page=9").get_data(as_text=True)  # 16 rows: one page of 20
    assert 'name="per_page"' not in plain and "没有第 9 页：共 1 页" in plain

    number = re.compile(r"<td>(2026-09-01-\d{4})</td>")
    held = c.get("/projects/review/dashboard/list?what=held&month=2026-11&per_page=6").get_data(as_text=True)
    assert len(number.findall(held)) == 6 and "第 1 / 3 页" in held
    nxt = re.search(r'<a href="\?([^"]+)">下一页</a>', held)
    assert nxt and "per_page=6" in nxt.group(1) and "month=2026-11" in nxt.group(1) and "what=held" in nxt.group(1)
    second = c.get("/projects/review/dashboard/list?" + nxt.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert len(number.findall(second)) == 6 and "第 2 / 3 页" in second
    assert not set(number.findall(held)) & set(number.findall(second))
    past = c.get("/projects/review/dashboard/list?what=held&month=2026-11&per_page=6&page=9").get_data(as_text=True)
    assert "第 3 / 3 页" in past and len(number.findall(past)) == 4
    assert "没有第 9 页：共 3 页，以下是最后一页（第 3 页）。" in past
    last = c.get("/projects/review/dashboard/list?what=held&month=2026-11&per_page=6&page=3").get_data(as_text=True)
    assert 'id="past-last"' not in last and "上一页" in last
