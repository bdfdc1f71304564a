"""项目目录: .xlsx import (update, never duplicate; bad rows reported, good rows kept), list and search."""

from __future__ import annotations

import io
from decimal import Decimal

from openpyxl import Workbook
from sqlalchemy import func, select

from services.projects.catalogue.models import Project
from tests.conftest import bearer, login_client

HEADERS = ["项目编号", "项目名称", "项目负责人", "主办单位", "学分类别", "学分", "学时", "举办期数", "举办起止时间",
           "举办地点", "举办方式"]


def workbook(rows, headers=HEADERS) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(headers)
    for r in rows:
        ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def row(number, inst_name, title="心血管进展", credit=10, offerings=2, mode="线下"):
    return [number, title, "王建华", inst_name, "Ⅰ类", credit, 20, offerings, "2026年5月", "西安", mode]


class Imported:
    """What the clerk ends with: the request's own refusal (status 4xx, its error), or the job the request accepted
    (202), run by the worker's task function, then asked for by its status URL: `status_code` 200 and the job's
    result (the ImportResultSchema shape) once done; a failed job keeps 202, its state and its error."""

    def __init__(self, client, r, headers) -> None:  # type: ignore[no-untyped-def]
        from services.projects.catalogue.tasks import run_import_job

        self.status_code, self.job, body = r.status_code, None, r.get_json()
        if r.status_code == 202:
            assert body["state"] == "queued" and body["status_url"] == f"/projects/api/catalogue/imports/{body['id']}"
            run_import_job(body["id"])
            status = client.get(body["status_url"], headers=headers)
            assert status.status_code == 200
            self.job = status.get_json()
            body = self.job["result"] if self.job["state"] == "done" else self.job
            self.status_code = 200 if self.job["state"] == "done" else 202
        self.json = body

    def get_json(self):  # type: ignore[no-untyped-def]
        return self.json


def upload(client, data, headers=None, year="2026") -> Imported:
    r = client.post("/projects/api/catalogue/import", headers=headers,
                    data={"file": (io.BytesIO(data), "目录.xlsx"), "year": year}, content_type="multipart/form-data")
    return Imported(client, r, headers)


def follow_import(client, r):  # type: ignore[no-untyped-def]
    """The page's 导入: a 303 to the job's page; the worker's task run; that page as the clerk then sees it."""
    from services.projects.catalogue.tasks import run_import_job

    assert r.status_code == 303, r.get_data(as_text=True)[:500]
    where = r.headers["Location"]
    assert where.startswith("/projects/catalogue/imports/")
    run_import_job(int(where.rsplit("/", 1)[1]))
    return client.get(where)


def count(projects_db) -> int:
    s = projects_db.new_session()
    try:
        return s.scalar(select(func.count(Project.id)))
    finally:
        s.close()


def test_import_creates_updates_and_reports_bad_rows(projects_app, projects_db, inst_a, inst_b, reviewer):
    c = projects_app.test_client()
    h = bearer(reviewer[1])
    data = workbook([
        row("2026-01-01-001", inst_a[0].name),
        row("2026-01-01-002", inst_b[0].name, mode="线上线下"),
        row("2026-01-01-003", "不存在的医院"),
        row("2026-01-01-004", inst_a[0].name, credit="十分"),
        row("2026-01-01-001", inst_a[0].name),  # duplicate in the same file
        row("2026-01-01-005", inst_a[0].name, mode="混合"),
        [None] * 11,  # blank line: skipped silently
    ])
    r = upload(c, data, h)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["created"], body["updated"]) == (1, 0)
    errors = {e["row"]: e["reason"] for e in body["errors"]}
    assert set(errors) == {2, 4, 5, 6, 7}
    assert "不存在的医院" in errors[4] and "主办单位" in errors[4]
    assert errors[5].startswith("学分：")
    # a number on two rows imports neither: which of them is right is the clerk's call
    assert "在本文件第 2、6 行重复出现" in errors[2] and errors[6] == errors[2]
    assert "举办方式" in errors[7]
    assert count(projects_db) == 1

    # re-import of the same numbers updates, never duplicates, and says what each update changed
    r = upload(c, workbook([row("2026-01-01-001", inst_a[0].name),
                            row("2026-01-01-002", inst_b[0].name, mode="线上线下")]), h)
    body = r.get_json()
    assert (body["created"], body["updated"], body["unchanged"], body["errors"]) == (1, 0, 1, [])
    r = upload(c, workbook([row("2026-01-01-001", inst_a[0].name, title="心血管进展（修订）", credit=12),
                            row("2026-01-01-002", inst_b[0].name, mode="线上线下")]), h)
    body = r.get_json()
    assert (body["created"], body["updated"], body["unchanged"], body["errors"]) == (0, 1, 1, [])
    assert body["updates"] == [{"row": 2, "number": "2026-01-01-001", "changed": "项目名称、学分",
                                "details": "项目名称：心血管进展 → 心血管进展（修订）；学分：10 → 12"}]
    assert count(projects_db) == 2
    s = projects_db.new_session()
    p = s.scalar(select(Project).where(Project.number == "2026-01-01-001"))
    assert p.title == "心血管进展（修订）" and p.credit_value == Decimal("12") and p.year == 2026
    assert p.institution_id == inst_a[0].id
    s.close()
    # a project moved to another host: the update names both hosts, not their ids
    r = upload(c, workbook([row("2026-01-01-001", inst_b[0].name, title="心血管进展（修订）", credit=12)]), h)
    assert r.get_json()["updates"][0]["details"] == f"主办单位：{inst_a[0].name} → {inst_b[0].name}"
    from services.projects.audit.models import AuditLog  # the audit entry keeps what changed, old and new

    s = projects_db.new_session()
    last = s.scalars(select(AuditLog).where(AuditLog.action == "imported").order_by(AuditLog.id.desc())).first()
    s.close()
    assert f"2026-01-01-001（主办单位：{inst_a[0].name} → {inst_b[0].name}）" in last.reason


def test_a_number_typed_otherwise_is_the_same_project(projects_app, projects_db, inst_a, reviewer):
    """Full-width digits, en dashes, spaces or lost leading zeros do not add the project a second
    time (nor hide a repeat in the file); what is not a number at all is refused on its row."""
    c = projects_app.test_client()
    h = bearer(reviewer[1])
    assert upload(c, workbook([row("2026-01-01-001", inst_a[0].name)]), h).get_json()["created"] == 1
    for typed in ("２０２６－０１－０１－００１", "2026–01–01–001", " 2026 - 01-01-001", "2026-1-1-1",
                  "2026-01-1-0001"):
        body = upload(c, workbook([row(typed, inst_a[0].name)]), h).get_json()
        assert (body["created"], body["unchanged"], body["errors"]) == (0, 1, []), typed
    body = upload(c, workbook([row(n, inst_a[0].name) for n in ["２０２６－０１－０１－００１", "2026–01–01–001",
                                                                "abc", "2026"]]), h).get_json()
    errors = {e["row"]: e["reason"] for e in body["errors"]}
    assert (body["created"], body["unchanged"]) == (0, 0) and count(projects_db) == 1
    assert "在本文件第 2、3 行重复出现" in errors[2] and "在本文件第 2、3 行重复出现" in errors[3]
    assert errors[4].startswith("项目编号：") and "2026-01-01-001" in errors[4] and errors[5].startswith("项目编号：")


def test_a_host_typed_with_other_brackets_or_spaces_is_the_same_institution(projects_app, projects_db,
                                                                            make_institution, reviewer):
    """主办单位 typed with half-width brackets, or a space an input method left, finds the institution; a row's
    several errors read as one sentence each, without doubled punctuation."""
    make_institution("空军军医大学第二附属医院（唐都医院）", "tangdu")
    c = projects_app.test_client()
    h = bearer(reviewer[1])
    body = upload(c, workbook([row("2026-04-01-001", "空军军医大学第二附属医院(唐都医院)"),
                               row("2026-04-01-002", "空军军医大学第二附属医院 （唐都医院） ")]), h).get_json()
    assert (body["created"], body["errors"]) == (2, []), body
    s = projects_db.new_session()
    try:
        assert set(s.scalars(select(Project.host_name))) == {"空军军医大学第二附属医院（唐都医院）"}
    finally:
        s.close()
    body = upload(c, workbook([row("2026-04-01-003", "空军军医大学第二附属医院(唐都医院)", credit="十分",
                                   mode="混合")]), h).get_json()
    reason = body["errors"][0]["reason"]
    assert "学分：" in reason and "举办方式：" in reason and "。；" not in reason and reason.endswith("。")


def test_figures_typed_with_their_units_or_full_width_are_read(projects_app, projects_db, inst_a, reviewer):
    """"10分", "20学时", "２期", "２０２６年": what a clerk types in a cell, read as the figure the column means."""
    c = projects_app.test_client()
    typed = [row("2026-05-01-001", inst_a[0].name, credit="10分", offerings="２期")]
    typed[0][6] = "20学时"
    body = upload(c, workbook([typed[0] + ["２０２６年"]], headers=HEADERS + ["年度"]), bearer(reviewer[1]),
                  year="").get_json()
    assert (body["created"], body["errors"]) == (1, []), body
    s = projects_db.new_session()
    try:
        p = s.scalar(select(Project).where(Project.number == "2026-05-01-001"))
        assert (p.credit_value, p.hours, p.offerings_count, p.year) == (Decimal("10"), Decimal("20"), 2, 2026)
    finally:
        s.close()
    body = upload(c, workbook([row("2026-05-01-002", inst_a[0].name, credit="十分")]), bearer(reviewer[1])).get_json()
    assert body["errors"][0]["reason"].startswith("学分：")


def test_a_row_for_a_deactivated_institution_is_refused_on_its_row(projects_app, projects_db, inst_a, inst_b,
                                                                    reviewer):
    """停用 institutions cannot log in to file: a project catalogued for one would wait unseen."""
    from services.projects.institutions.models import Institution
    from services.projects.institutions.services import set_active

    s = projects_db.new_session()
    set_active(s, s.get(Institution, inst_b[0].id), False)
    s.commit()
    s.close()
    body = upload(projects_app.test_client(), workbook([row("2026-06-01-001", inst_a[0].name),
                                                        row("2026-06-01-002", inst_b[0].name)]),
                  bearer(reviewer[1])).get_json()
    assert body["created"] == 1 and [e["row"] for e in body["errors"]] == [3]
    assert "已停用" in body["errors"][0]["reason"] and inst_b[0].name in body["errors"][0]["reason"]


def test_a_number_of_another_year_is_refused_on_its_row(projects_app, projects_db, inst_a, reviewer):
    """December: the clerk imports next year's catalogue and leaves the page's 年度 at this year, or a row's 年度
    disagrees with its number. Stored as typed, a 2027 project became a 2026 one, or an existing 2026 project
    moved to 2027 with its credit changed; each such row is refused, saying which year is which."""
    c = projects_app.test_client()
    h = bearer(reviewer[1])
    assert upload(c, workbook([row("2026-06-02-007", inst_a[0].name, credit=5)]), h).get_json()["created"] == 1
    body = upload(c, workbook([row("2027-12-01-301", inst_a[0].name)]), h, year="2026").get_json()
    assert body["created"] == 0 and body["errors"][0]["reason"] == \
        "年度：项目编号属于 2027 年度，与页面上选择的年度 2026 不一致，请核对。"
    moved = row("2026-06-02-007", inst_a[0].name, credit=6) + [2027]
    body = upload(c, workbook([moved], headers=HEADERS + ["年度"]), h, year="").get_json()
    assert body["updated"] == 0 and "与“年度”列 2027 不一致" in body["errors"][0]["reason"]
    s = projects_db.new_session()
    try:
        kept = s.scalar(select(Project).where(Project.number == "2026-06-02-007"))
        assert (kept.year, kept.credit_value) == (2026, Decimal("5"))
    finally:
        s.close()
    assert upload(c, workbook([row("2027-12-01-301", inst_a[0].name)]), h, year="2027").get_json()["created"] == 1


def test_a_period_naming_a_date_no_calendar_has_is_refused_on_its_row(projects_app, projects_db, inst_a,
                                                                       reviewer):
    """2026年13月 was imported, and no 核对提示 could ever compare a filing's dates with it."""
    c = projects_app.test_client()
    h = bearer(reviewer[1])
    rows = [row("2026-09-09-110", inst_a[0].name), row("2026-09-09-111", inst_a[0].name),
            row("2026-09-09-112", inst_a[0].name)]
    rows[0][8], rows[1][8], rows[2][8] = "2026年13月", "2026-02-30至2026-03-02", "2026年5-10月"
    body = upload(c, workbook(rows), h).get_json()
    assert body["created"] == 1 and [e["reason"] for e in body["errors"]] == [
        "举办起止时间：“2026年13月”不是有效日期，请核对。", "举办起止时间：“2026-02-30”不是有效日期，请核对。"]
    assert count(projects_db) == 1


def test_year_column_and_aliases(projects_app, projects_db, inst_a, reviewer):
    c = projects_app.test_client()
    old = ["2025-09-09-001", "旧年度项目", "李明", inst_a[0].name, "I类", 5, 10, 1, "", "", "线上+线下", 2025]
    data = workbook([old], headers=HEADERS + ["年度"])
    body = upload(c, data, bearer(reviewer[1]), year="").get_json()
    assert body["created"] == 1, body
    s = projects_db.new_session()
    p = s.scalar(select(Project))
    assert (p.year, p.credit_class, p.mode) == (2025, "Ⅰ类", "线上线下")
    s.close()


def test_missing_year_is_a_row_error(projects_app, inst_a, reviewer):
    body = upload(projects_app.test_client(), workbook([row("2026-01-01-009", inst_a[0].name)]), bearer(reviewer[1]),
                  year="").get_json()
    assert body["created"] == 0 and "年度" in body["errors"][0]["reason"]


def test_bad_files_are_refused_in_chinese(projects_app, reviewer, catalogue_queue):
    """What the request can judge (no file, not an .xlsx) is refused at once and nothing is queued; what takes
    reading the sheet (its header) fails the job, with the same sentence, and nothing is imported."""
    c = projects_app.test_client()
    r = upload(c, b"not a workbook", bearer(reviewer[1]))
    assert r.status_code == 422 and "xlsx" in r.get_json()["error"]["message"]
    r = c.post("/projects/api/catalogue/import", headers=bearer(reviewer[1]), data={})
    assert r.status_code == 422
    assert catalogue_queue == []
    r = upload(c, workbook([["A"]], headers=["项目编号", "项目名称"]), bearer(reviewer[1]))
    assert r.job["state"] == "failed" and r.job["result"] is None
    assert r.job["error"].startswith("表头行缺少以下列：项目负责人、主办单位")
    r = upload(c, workbook([["A", "B"]], headers=["编号", "名称"]), bearer(reviewer[1]))
    assert r.job["state"] == "failed" and "未找到表头行" in r.job["error"]


def test_a_title_row_and_an_instructions_sheet_before_the_header_are_read_past(projects_app, projects_db, inst_a,
                                                                               reviewer):
    """The committee's workbook as clerks make it: an instructions sheet first, a title row and a blank row above
    the header, header cells broken over two lines; row numbers in errors are the sheet's own."""
    wb = Workbook()
    notes = wb.active
    notes.title = "填写说明"
    notes.append(["请按模板填写，项目编号形如 2026-01-01-001"])
    data = wb.create_sheet("项目目录")
    data.append(["2026年度陕西省省级继续医学教育项目目录"])
    data.append([])
    units = {"举办起止时间": "举办起止\n时间", "学分": "学分\n（分）", "学时": "学时(学时)"}
    data.append([units.get(h, h) for h in HEADERS])
    data.append(row("2026-03-01-001", inst_a[0].name))
    data.append(row("2026-03-01-002", "无此机构"))
    data.append(["合 计", None, None, None, None, 20, 40, 4])  # the clerk's totals: no project, no error
    out = io.BytesIO()
    wb.save(out)
    body = upload(projects_app.test_client(), out.getvalue(), bearer(reviewer[1])).get_json()
    assert body["created"] == 1, body
    assert [(e["row"], e["number"]) for e in body["errors"]] == [(5, "2026-03-01-002")]
    assert count(projects_db) == 1


def test_page_import_and_search(projects_app, inst_a, inst_b, reviewer, csrf):
    c = login_client(projects_app.test_client(), reviewer[1])
    data = workbook([row(f"2026-02-01-{i:03d}", inst_a[0].name, title=f"项目{i}") for i in range(1, 26)]
                    + [row("2026-02-02-001", "无此机构")])
    r = follow_import(c, c.post("/projects/catalogue/import", data={"csrf_token": csrf(reviewer[1]), "year": "2026",
                                                                  "file": (io.BytesIO(data), "a.xlsx")},
                                content_type="multipart/form-data"))
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "导入完成" in html
    assert "新增 25 项" in html and "第 27 行" in html and "无此机构" in html
    assert 'href="/projects/catalogue?year=2026"' in html  # back to the list, at the year imported
    r = c.get("/projects/catalogue?q=项目2&page=1")
    html = r.get_data(as_text=True)
    assert "项目2" in html and "项目13" not in html
    wide = c.get("/projects/catalogue?q=２０２６-０２-０１-０１３").get_data(as_text=True)  # typed in 全角
    assert "共 1 项" in wide and "项目13" in wide
    r = c.get("/projects/catalogue")
    assert "第 1 / 2 页" in r.get_data(as_text=True)
    assert c.get("/projects/catalogue?year=abc").status_code == 422
    # the result page reloaded after Back, or its address opened: the list, not 不支持此操作方式
    again = c.get("/projects/catalogue/import")
    assert again.status_code == 303 and again.headers["Location"].endswith("/projects/catalogue")
    # without the csrf token the cookie POST is refused
    r = c.post("/projects/catalogue/import", data={"year": "2026", "file": (io.BytesIO(data), "a.xlsx")},
               content_type="multipart/form-data")
    assert r.status_code == 403


def test_api_list_scoping(projects_app, inst_a, inst_b, reviewer, make_project):
    make_project(inst_a[0])
    make_project(inst_b[0])
    c = projects_app.test_client()
    assert c.get("/projects/api/catalogue", headers=bearer(reviewer[1])).get_json()["total"] == 2
    items = c.get("/projects/api/catalogue", headers=bearer(inst_a[1])).get_json()["items"]
    assert [i["institution_id"] for i in items] == [inst_a[0].id]


def test_an_entry_imported_by_mistake_is_deleted_until_a_filing_starts(projects_app, projects_db, inst_a, reviewer,
                                                                      csrf):
    """A mistyped number (2027-01-02-026) stayed in next year's catalogue for offices to file: the committee
    deletes it, audit-logged; once an office began a 期次 of a project it can only be corrected by import."""
    from services.projects.audit.models import AuditLog

    h = bearer(reviewer[1])
    c = login_client(projects_app.test_client(), reviewer[1])
    upload(projects_app.test_client(), workbook([row("2026-05-01-001", inst_a[0].name, title="正确的项目"),
                                                 row("2026-05-01-010", inst_a[0].name, title="误导入的项目")]), h)
    s = projects_db.new_session()
    ids = {p.title: p.id for p in s.scalars(select(Project))}
    s.close()
    office = projects_app.test_client()
    assert office.post(f"/projects/api/projects/{ids['正确的项目']}/offerings", headers=bearer(inst_a[1])
                       ).status_code == 201
    listing = c.get("/projects/catalogue?q=项目").get_data(as_text=True)
    assert f'action="/projects/catalogue/{ids["误导入的项目"]}/delete"' in listing and "确定删除项目" in listing
    assert f'action="/projects/catalogue/{ids["正确的项目"]}/delete"' not in listing  # offered only where allowed
    # its row says why, as the refusal does: an office began a 期 (a draft not yet sent counts)
    started = listing.split("正确的项目")[1].split("</tr>")[0]
    assert "已开始登记，不能删除<br>（已有期次登记，含未上报的草稿）</span>" in started  # said, not a tooltip
    gone = c.post(f"/projects/catalogue/{ids['误导入的项目']}/delete", data={"csrf_token": csrf(reviewer[1])},
                  headers={"Referer": "http://localhost/projects/catalogue?q=项目&page=1"})
    assert gone.status_code == 303 and gone.headers["Location"].startswith("/projects/catalogue?q=")
    assert "已删除项目 2026-05-01-010 误导入的项目" in c.get(gone.headers["Location"]).get_data(as_text=True)
    kept = c.post(f"/projects/catalogue/{ids['正确的项目']}/delete", data={"csrf_token": csrf(reviewer[1])})
    assert kept.status_code == 409 and "已有 1 期开始登记，不能删除" in kept.get_data(as_text=True)
    assert count(projects_db) == 1
    upload(projects_app.test_client(), workbook([row("2026-05-01-011", inst_a[0].name, title="又一个误导入")]), h)
    s = projects_db.new_session()
    again = s.scalar(select(Project.id).where(Project.number == "2026-05-01-011"))
    s.close()
    elsewhere = c.post(f"/projects/catalogue/{again}/delete", data={"csrf_token": csrf(reviewer[1])},
                       headers={"Referer": "https://evil.example/projects/catalogue?x=1"})
    assert elsewhere.status_code == 303 and elsewhere.headers["Location"] == "/projects/catalogue?x=1"  # path kept
    s = projects_db.new_session()
    try:
        logged = [a.reason for a in s.scalars(select(AuditLog).where(AuditLog.action == "deleted"))]
    finally:
        s.close()
    assert logged[0] == "删除项目目录条目：2026-05-01-010 误导入的项目（西安市第一医院）" and len(logged) == 2
    assert c.post("/projects/catalogue/999999/delete", data={"csrf_token": csrf(reviewer[1])}).status_code == 404


def test_the_committee_finds_the_catalogue_s_projects_with_no_offering_approved(
        projects_app, inst_a, inst_b, reviewer, make_project, ready_filing, frozen, csrf):
    """Year-end: the clerk chases the hosts whose projects of the year were never held. 年度统计 lists only
    offerings that were approved, and the catalogue said 已登记 alike for a draft and an approved 期: nothing
    showed which projects had no 期 approved at all."""
    held, fid = ready_filing(*inst_a, offerings_count=2, submit=True)
    c = projects_app.test_client()
    r = c.post(f"/projects/api/review/filings/{fid}/approve", headers=bearer(reviewer[1]), json={})
    assert r.status_code == 200
    drafted, _ = ready_filing(*inst_a)  # a draft never sent
    waiting, _ = ready_filing(*inst_b, submit=True)  # sent, not yet approved
    untouched = make_project(inst_b[0])
    make_project(inst_b[0], year=2025)  # another year's
    page = login_client(projects_app.test_client(), reviewer[1])
    html = page.get("/projects/catalogue?year=2026").get_data(as_text=True)
    assert "尚无审批通过的期次" in html  # the filter is offered
    row = html[html.index(held.number):]
    assert "审批通过 1 / 2 期" in row[:row.index("</tr>")]
    html = page.get("/projects/catalogue", query_string={"year": "2026", "status": "none_approved"}
                    ).get_data(as_text=True)
    assert "共 3 项" in html and held.number not in html
    for p in (drafted, waiting, untouched):
        row = html[html.index(p.number):]
        assert "审批通过 0 / 1 期" in row[:row.index("</tr>")], p.number
    api = c.get("/projects/api/catalogue", headers=bearer(reviewer[1]),
                query_string={"year": "2026", "status": "none_approved"}).get_json()
    assert sorted(i["number"] for i in api["items"]) == sorted(p.number for p in (drafted, waiting, untouched))
    r = page.get("/projects/catalogue", query_string={"status": "held"})
    assert r.status_code == 422 and "状态" in r.get_data(as_text=True)


def test_the_list_exports_as_filtered_and_imports_back_unchanged(projects_app, projects_db, inst_a, inst_b,
                                                                 reviewer, csrf):
    """导出 Excel: the clerk keeps the year's catalogue, or corrects a column in the file and imports it back; the
    export has the import's header, so an untouched file changes nothing and a corrected cell updates one project."""
    from openpyxl import load_workbook

    c = login_client(projects_app.test_client(), reviewer[1])
    data = workbook([row("2026-03-01-001", inst_a[0].name, title="急诊医学进展", credit="2.5"),
                     row("2026-03-01-002", inst_a[0].name, title="心血管进展", offerings=3),
                     row("2026-03-02-001", inst_b[0].name, title="糖尿病管理", mode="线上")])
    r = follow_import(c, c.post("/projects/catalogue/import", data={"csrf_token": csrf(reviewer[1]), "year": "2026",
                                                                  "file": (io.BytesIO(data), "a.xlsx")},
                                content_type="multipart/form-data"))
    assert "新增 3 项" in r.get_data(as_text=True)
    assert 'href="/projects/catalogue.xlsx?year=2026&amp;institution_id=' in c.get(
        f"/projects/catalogue?year=2026&institution_id={inst_a[0].id}").get_data(as_text=True)
    r = c.get("/projects/catalogue.xlsx", query_string={"year": "2026", "institution_id": inst_a[0].id})
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    assert r.headers["Cache-Control"] == "private, no-store" and "filename*=UTF-8''" in r.headers["Content-Disposition"]
    ws = load_workbook(io.BytesIO(r.data)).active
    rows = list(ws.iter_rows(values_only=True))
    assert "共 2 项" in rows[0][0] and rows[1][:11] == tuple(HEADERS) and rows[1][11:] == ("年度", "审批通过期次")
    first = dict(zip(rows[1], rows[2], strict=True))
    assert first["项目编号"] == "2026-03-01-001" and first["学分"] == "2.5" and first["审批通过期次"] == "0 / 2"
    assert first["项目名称"] == "急诊医学进展" and first["年度"] == 2026 and first["举办方式"] == "线下"
    assert [r[0] for r in rows[2:]] == ["2026-03-01-001", "2026-03-01-002"]  # B's project is filtered out
    # imported back as it is: nothing changes; with one cell corrected, that project alone is updated
    again = upload(c, r.data, bearer(reviewer[1])).get_json()
    assert (again["created"], again["updated"], again["unchanged"], again["errors"]) == (0, 0, 2, [])
    ws.cell(4, 10).value = "宝鸡"
    out = io.BytesIO()
    ws.parent.save(out)
    again = upload(c, out.getvalue(), bearer(reviewer[1])).get_json()
    assert (again["updated"], again["unchanged"]) == (1, 1) and "举办地点" in again["updates"][0]["changed"]
    assert c.get("/projects/catalogue.xlsx?year=abc").status_code == 422


def catalogue_counts(projects_db) -> list[tuple[int, str, int, int]]:
    """The catalogue.counted events in the outbox, in order: (year, host, projects, planned)."""
    import json

    from services.projects.db import outbox

    s = projects_db.new_session()
    try:
        rows = s.execute(select(outbox.c.envelope, outbox.c.consumer).where(outbox.c.name == "catalogue.counted")
                         .order_by(outbox.c.id)).all()
    finally:
        s.close()
    assert {consumer for _, consumer in rows} <= {"credits"}
    return [(p["year"], p["institution_name"], p["projects"], p["planned"])
            for p in (json.loads(envelope)["payload"] for envelope, _ in rows)]


def test_credits_is_told_each_host_s_catalogue_count(projects_app, projects_db, inst_a, inst_b, reviewer, csrf):
    """年度统计 (credits) lists a host that held nothing of its catalogue from these counts: each import, 删除 and
    更正机构名称 sends the (year, host) pairs it changed, with absolute figures, in the change's transaction."""
    from services.projects.catalogue.announce import main as announce

    h = bearer(reviewer[1])
    c = login_client(projects_app.test_client(), reviewer[1])
    a, b = inst_a[0].name, inst_b[0].name
    upload(c, workbook([row("2026-01-01-001", a, offerings=2), row("2026-01-01-002", a, offerings=3),
                        row("2026-01-01-003", b, offerings=1), row("2026-01-01-004", "不存在的医院")]), h)
    assert catalogue_counts(projects_db) == [(2026, a, 2, 5), (2026, b, 1, 1)]
    upload(c, workbook([row("2026-01-01-001", a, offerings=2)]), h)  # unchanged: nothing to tell
    assert len(catalogue_counts(projects_db)) == 2
    upload(c, workbook([row("2026-01-01-003", a, offerings=4)]), h)  # moved to another host: both told
    assert catalogue_counts(projects_db)[2:] == [(2026, a, 3, 9), (2026, b, 0, 0)]
    s = projects_db.new_session()
    pid = s.scalar(select(Project.id).where(Project.number == "2026-01-01-002"))
    s.close()
    assert c.post(f"/projects/catalogue/{pid}/delete", data={"csrf_token": csrf(reviewer[1])}).status_code == 303
    assert catalogue_counts(projects_db)[4:] == [(2026, a, 2, 6)]
    renamed = c.post(f"/projects/institutions/{inst_a[0].id}/name",
                     data={"csrf_token": csrf(reviewer[1]), "name": "西安市第一人民医院", "reason": "医院更名"})
    assert renamed.status_code in (302, 303), renamed.get_data(as_text=True)[:300]
    assert catalogue_counts(projects_db)[5:] == [(2026, "西安市第一人民医院", 2, 6)]
    # a refused import changes nothing and tells nothing
    upload(c, workbook([row("2026-01-01-009", "不存在的医院")]), h)
    assert len(catalogue_counts(projects_db)) == 6
    # for a catalogue imported before credits kept the counts: every pair once more
    announce()
    assert catalogue_counts(projects_db)[6:] == [(2026, "西安市第一人民医院", 2, 6)]
