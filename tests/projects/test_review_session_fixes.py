"""What the committee's clerk met trying things out (27 November): a damaged workbook, a month past 2099, two
clerks creating one institution at once, a garbled hidden version, a catalogue re-import changing an approved
project's credit, a credit value with two decimals, and filter refusals in codes instead of words."""

from __future__ import annotations

import io
import threading
import zipfile
from decimal import Decimal

from sqlalchemy import select

from services.projects.catalogue.models import Project
from services.projects.filings.services import FILING_MISSING
from services.projects.institutions import services as inst_services
from tests.conftest import bearer, login_client
from tests.projects.test_catalogue import HEADERS, follow_import, row, upload, workbook


def damaged(data: bytes) -> bytes:
    """The same workbook with its sheet cut off mid-XML, as a broken download leaves it: the zip itself is fine."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            body = src.read(item)
            dst.writestr(item, body[: len(body) // 2] if item.filename.endswith("sheet1.xml") else body)
    return out.getvalue()


def test_a_damaged_workbook_is_refused_in_chinese_by_both_imports(projects_app, inst_a, reviewer, csrf):
    c = projects_app.test_client()
    bad = damaged(workbook([row("2026-01-01-001", inst_a[0].name)] * 50))
    r = upload(c, bad, bearer(reviewer[1]))  # a sound zip: the worker finds the sheet damaged and fails the job
    assert r.job["state"] == "failed" and "xlsx" in r.job["error"], r.json
    bad_inst = damaged(workbook([["wn_x", "渭南某医院", "Weinan2026!"]] * 50, headers=["账号", "机构名称", "初始密码"]))
    r = c.post("/projects/api/institutions/import", headers=bearer(reviewer[1]),
               data={"file": (io.BytesIO(bad_inst), "机构.xlsx")}, content_type="multipart/form-data")
    assert r.status_code == 400 and "Excel" in r.json["error"]["message"], r.json
    clerk = login_client(projects_app.test_client(), reviewer[1])
    page = follow_import(clerk, clerk.post(
        "/projects/catalogue/import", data={"file": (io.BytesIO(bad), "目录.xlsx"), "year": "2026",
                                            "csrf_token": csrf(reviewer[1])}, content_type="multipart/form-data"))
    assert page.status_code == 200 and "导入失败" in page.get_data(as_text=True)
    assert "请上传 .xlsx 格式的 Excel 工作簿" in page.get_data(as_text=True)


def test_a_month_past_2099_is_a_422(projects_app, reviewer):
    c = login_client(projects_app.test_client(), reviewer[1])
    for month in ("9999-12", "0000-01"):
        r = c.get(f"/projects/review/dashboard/list?what=credited&month={month}")
        assert r.status_code == 422 and "月份格式应为" in r.get_data(as_text=True), month


def test_two_clerks_creating_one_institution_at_once_get_one_and_a_409(projects_app, reviewer, monkeypatch):
    """The second save passes the look-up before the first commits; the database refuses it and the clerk is
    told which of the two is taken instead of a 500."""
    first_checked, first_saved = threading.Event(), threading.Event()
    real = inst_services.refuse_taken

    def racing(session, account, name):  # type: ignore[no-untyped-def]
        real(session, account, name)
        if threading.current_thread().name == "second":
            first_checked.set()
            first_saved.wait(10)

    monkeypatch.setattr(inst_services, "refuse_taken", racing)
    body = {"account": "race_one", "name": "铜川市矿务局中心医院", "password": "Abcdefg123"}
    answers: dict[str, int] = {}

    def post(name: str) -> None:
        r = projects_app.test_client().post("/projects/api/institutions", headers=bearer(reviewer[1]), json=body)
        answers[name] = r.status_code
        if name == "second":
            answers["message"] = r.json["error"]["message"]  # type: ignore[assignment]

    second = threading.Thread(target=post, args=("second",), name="second")
    second.start()
    assert first_checked.wait(10)
    post("first")
    first_saved.set()
    second.join(20)
    assert answers["first"] == 201 and answers["second"] == 409, answers
    assert "已存在" in answers["message"]  # type: ignore[operator]


def test_a_garbled_version_is_a_stale_page_not_a_skipped_check(projects_app, inst_a, reviewer, ready_filing, csrf,
                                                               frozen):
    _, fid = ready_filing(*inst_a, submit=True)
    c = login_client(projects_app.test_client(), reviewer[1])
    r = c.post(f"/projects/review/filings/{fid}/approve", data={"csrf_token": csrf(reviewer[1]), "version": "abc"})
    assert r.status_code == 409 and "页面已过期" in r.get_data(as_text=True)
    r = c.post(f"/projects/review/filings/{fid}/return",
               data={"csrf_token": csrf(reviewer[1]), "version": "abc", "reason": "地点不详"})
    assert r.status_code == 409 and "页面已过期" in r.get_data(as_text=True)
    r = c.post(f"/projects/review/filings/{fid}/return",
               data={"csrf_token": csrf(reviewer[1]), "reason": "长" * 1001, "version": "1"})
    assert r.status_code == 422 and "2 到 1000 个字符之间" in r.get_data(as_text=True)
    detail = c.get(f"/projects/api/review/filings/{fid}", headers=bearer(reviewer[1])).json
    assert detail["state"] == "submitted"  # nothing was decided


def test_filters_refused_in_words(projects_app, reviewer):
    c = login_client(projects_app.test_client(), reviewer[1])
    html = c.get("/projects/review/filings?state=bogus").get_data(as_text=True)
    assert "待审批、已退回、审批通过" in html and "submitted" not in html
    html = c.get("/projects/review/filings?page=0").get_data(as_text=True)
    assert "页码" in html and "（page）" not in html


def test_an_approved_project_s_credit_cannot_be_changed_by_a_re_import(projects_app, projects_db, inst_a, reviewer,
                                                                        ready_filing, frozen):
    project, fid = ready_filing(*inst_a, submit=True)
    h = bearer(reviewer[1])
    c = projects_app.test_client()
    assert c.post(f"/projects/api/review/filings/{fid}/approve", headers=h, json={}).status_code == 200
    base = [project.number, project.title, "王医生", inst_a[0].name, "Ⅰ类", 10, 20, 1, "2026年5月", "西安市会议中心",
            "线下"]
    changed = list(base)
    changed[4], changed[5] = "Ⅱ类", 5
    body = upload(c, workbook([changed]), h).json
    assert body["updated"] == 0 and len(body["errors"]) == 1, body
    reason = body["errors"][0]["reason"]
    assert reason.startswith("学分类别、学分：") and "审批通过" in reason
    moved = list(base)
    moved[9] = "西安国际会议中心"  # the venue is not what credit was granted on: it may be corrected
    assert upload(c, workbook([moved]), h).json["updated"] == 1
    s = projects_db.new_session()
    p = s.scalar(select(Project).where(Project.id == project.id))
    assert (p.credit_class, p.credit_value, p.venue) == ("Ⅰ类", Decimal("10"), "西安国际会议中心")
    s.close()


def test_a_credit_with_two_decimals_is_refused_not_rounded(projects_app, projects_db, inst_a, reviewer):
    c = projects_app.test_client()
    body = upload(c, workbook([row("2026-09-09-001", inst_a[0].name, credit=2.25),
                               row("2026-09-09-002", inst_a[0].name, credit=2.5)], headers=HEADERS),
                  bearer(reviewer[1])).json
    assert body["created"] == 1 and body["errors"][0]["row"] == 2, body
    assert body["errors"][0]["reason"] == "学分：最多保留一位小数（如 2.5）。"
    s = projects_db.new_session()
    assert s.scalar(select(Project.credit_value).where(Project.number == "2026-09-09-002")) == Decimal("2.5")
    s.close()


def test_search_takes_percent_and_underscore_as_typed(projects_app, inst_a, reviewer, make_project):
    make_project(inst_a[0], title="心血管 100% 达标培训")
    make_project(inst_a[0])
    h = bearer(reviewer[1])
    c = projects_app.test_client()

    def numbers(q: str) -> int:
        return c.get("/projects/api/catalogue", query_string={"q": q}, headers=h).json["total"]

    assert numbers("2026-01") == 2
    assert numbers("2026_01") == 0  # "_" is not "any character"
    assert numbers("%") == 1  # only the title that has a percent sign
    assert numbers("100%") == 1


def test_another_institution_s_filing_reads_exactly_like_a_missing_one(projects_app, inst_a, inst_b, ready_filing,
                                                                       frozen):
    _, fid = ready_filing(*inst_a)
    c = projects_app.test_client()
    other = c.get(f"/projects/api/filings/{fid}", headers=bearer(inst_b[1]))
    missing = c.get(f"/projects/api/filings/{fid + 1000}", headers=bearer(inst_b[1]))
    assert other.status_code == missing.status_code == 404
    assert other.json["error"]["message"] == missing.json["error"]["message"] == FILING_MISSING


def test_imports_and_new_institutions_are_in_the_audit_trail(projects_app, projects_db, inst_a, reviewer):
    from services.projects.audit.models import AuditLog

    c = projects_app.test_client()
    h = bearer(reviewer[1])
    upload(c, workbook([row("2026-08-08-001", inst_a[0].name), row("2026-08-08-002", "不存在的医院")]), h)
    c.post("/projects/api/institutions", headers=h, json={"account": "aud_new", "name": "审计医院",
                                                           "password": "Abcdefg123"})
    s = projects_db.new_session()
    entries = {(e.object_type, e.action): e for e in s.scalars(select(AuditLog))}
    s.close()
    imported = entries[("catalogue", "imported")]
    assert imported.actor == reviewer[1].describe() and imported.object_id == 2026
    assert "新增 1 项" in imported.reason and "出错 1 行" in imported.reason
    assert "审计医院（账号 aud_new）" == entries[("institution", "created")].reason


def test_a_return_reason_keeps_its_lines(projects_app, inst_a, reviewer, ready_filing, frozen):
    _, fid = ready_filing(*inst_a, submit=True)
    reason = "1. 会议日程缺少下午的安排\n2. 联系电话请填写座机"
    r = projects_app.test_client().post(f"/projects/api/review/filings/{fid}/return", headers=bearer(reviewer[1]),
                                        json={"reason": reason})
    assert r.status_code == 200
    html = login_client(projects_app.test_client(), inst_a[1]).get(f"/projects/filings/{fid}").get_data(as_text=True)
    assert f'<span class="lines">{reason}</span>' in html  # shown with white-space: pre-line, each point its line
