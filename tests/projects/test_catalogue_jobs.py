"""项目目录 导入 as a job of the projects-jobs worker: the request stores the file and answers at once, the worker's
task applies it (once, all or nothing), and the clerk follows it on its page."""

from __future__ import annotations

import datetime as dt
import io
import threading

from openpyxl import load_workbook
from sqlalchemy import func, select, text
from sqlalchemy.orm import undefer

from services.common import clock
from services.projects.audit.models import AuditLog
from services.projects.catalogue import imports, services
from services.projects.catalogue.models import CatalogueImport, Project
from services.projects.catalogue.tasks import run_import_job
from tests.conftest import bearer, login_client
from tests.projects.test_catalogue import count, row, upload, workbook


def page_upload(client, csrf, data: bytes, year: str = "2026"):  # type: ignore[no-untyped-def]
    return client.post("/projects/catalogue/import", content_type="multipart/form-data",
                       data={"csrf_token": csrf, "year": year, "file": (io.BytesIO(data), "2026年度目录.xlsx")})


def job_id_of(r) -> int:  # type: ignore[no-untyped-def]
    assert r.status_code == 303, r.get_data(as_text=True)[:300]
    return int(r.headers["Location"].rsplit("/", 1)[1])


def the_job(projects_db, job_id: int) -> CatalogueImport:
    s = projects_db.new_session()
    try:
        job = s.get(CatalogueImport, job_id, options=[undefer(CatalogueImport.result)])
        s.expunge(job)
        return job
    finally:
        s.close()


def test_the_upload_is_queued_then_applied_by_the_worker(projects_app, projects_db, inst_a, reviewer, csrf,
                                                        catalogue_queue):
    """The page answers at once with the job's page (排队中, what that means); nothing is imported until the
    worker runs it; then the page shows the result and the audit names the clerk who uploaded."""
    c = login_client(projects_app.test_client(), reviewer[1])
    data = workbook([row("2026-02-01-001", inst_a[0].name), row("2026-02-01-002", inst_a[0].name),
                     row("2026-02-02-001", "无此机构")])
    r = page_upload(c, csrf(reviewer[1]), data)
    job_id = job_id_of(r)
    assert r.headers["Location"] == f"/projects/catalogue/imports/{job_id}"
    assert catalogue_queue == [job_id]  # sent after the commit
    assert count(projects_db) == 0
    queued = c.get(f"/projects/catalogue/imports/{job_id}").get_data(as_text=True)
    assert "排队中" in queued and "导入将在后台导入服务运行时开始" in queued and "data-refresh" in queued
    assert "2026年度目录.xlsx" in queued and "审核员甲" in queued
    listing = c.get("/projects/catalogue").get_data(as_text=True)  # the clerk finds it again from the list
    assert "最近的导入" in listing and f'href="/projects/catalogue/imports/{job_id}"' in listing
    assert "排队中" in listing.split("最近的导入")[1]

    assert run_import_job(job_id) == "done"
    assert count(projects_db) == 2
    done = c.get(f"/projects/catalogue/imports/{job_id}").get_data(as_text=True)
    assert "导入完成：新增 2 项，更新 0 项，未变化 0 项，1 行有误未导入" in done
    assert "第 4 行" in done and "系统中没有名为“无此机构”的申办机构" in done
    assert "data-refresh" not in done and "3 / 3 行" in done
    assert 'href="/projects/catalogue?year=2026"' in done
    back = c.get("/projects/catalogue?year=2027").get_data(as_text=True)  # next year's, say: the form keeps it
    assert 'name="year" min="2000" max="2100" value="2027"' in back
    status = c.get(f"/projects/api/catalogue/imports/{job_id}", headers=bearer(reviewer[1])).get_json()
    assert (status["state"], status["rows_total"], status["rows_done"]) == ("done", 3, 3)
    assert status["result"]["created"] == 2 and [e["row"] for e in status["result"]["errors"]] == [4]
    s = projects_db.new_session()
    try:
        [entry] = s.scalars(select(AuditLog).where(AuditLog.action == "imported")).all()
    finally:
        s.close()
    assert entry.actor == reviewer[1].describe() and entry.actor_name == "审核员甲"
    assert entry.reason.startswith("导入项目目录：新增 2 项，更新 0 项，未变 0 项，出错 1 行")


def test_the_api_answers_202_with_the_job_and_its_status_url(projects_app, projects_db, inst_a, reviewer,
                                                             catalogue_queue):
    c = projects_app.test_client()
    h = bearer(reviewer[1])
    r = c.post("/projects/api/catalogue/import", headers=h, content_type="multipart/form-data",
               data={"file": (io.BytesIO(workbook([row("2026-03-01-001", inst_a[0].name)])), "目录.xlsx"),
                     "year": "2026"})
    assert r.status_code == 202
    body = r.get_json()
    assert body["state"] == "queued" and body["result"] is None and catalogue_queue == [body["id"]]
    assert c.get(body["status_url"], headers=h).get_json()["state"] == "queued"
    run_import_job(body["id"])
    done = c.get(body["status_url"], headers=h).get_json()
    assert done["state"] == "done" and done["result"] == {"created": 1, "updated": 0, "unchanged": 0, "errors": [],
                                                          "updates": []}
    assert c.get("/projects/api/catalogue/imports/999999", headers=h).status_code == 404


def test_only_the_committee_sees_an_import(projects_app, projects_db, inst_a, reviewer, csrf):
    """The job's page, its list and its status: an institution is refused as on every committee page, a trainee's
    cookie too, and nobody signed in is sent to log in."""
    from services.common.auth import Principal

    c = login_client(projects_app.test_client(), reviewer[1])
    job_id = job_id_of(page_upload(c, csrf(reviewer[1]), workbook([row("2026-03-01-009", "无此机构")])))
    run_import_job(job_id)
    urls = (f"/projects/catalogue/imports/{job_id}", f"/projects/catalogue/imports/{job_id}/report.xlsx")
    trainee = Principal(role="trainee", subject="trainee:abc", name="张三", trainee_key="abc")
    for url in urls:
        assert c.get(url).status_code == 200
        assert login_client(projects_app.test_client(), inst_a[1]).get(url).status_code == 403
        assert login_client(projects_app.test_client(), trainee).get(url).status_code == 403
        anonymous = projects_app.test_client().get(url)
        assert anonymous.status_code == 302 and "/projects/login" in anonymous.headers["Location"]
    api = f"/projects/api/catalogue/imports/{job_id}"
    assert projects_app.test_client().get(api, headers=bearer(inst_a[1])).status_code == 403
    assert projects_app.test_client().get(api).status_code == 401


def test_a_message_delivered_twice_applies_the_import_once(projects_app, projects_db, inst_a, reviewer):
    """acks_late: a message may come again (a worker restarted); the job is claimed once, so the second delivery
    neither imports again nor audits again, and a job another worker is running is left to it."""
    r = upload(projects_app.test_client(), workbook([row("2026-04-01-001", inst_a[0].name, offerings=2)]),
               bearer(reviewer[1]))
    job_id = r.job["id"]
    assert r.json["created"] == 1
    assert run_import_job(job_id) == "done"
    s = projects_db.new_session()
    try:
        assert s.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "imported")) == 1
        assert s.scalar(select(func.count(Project.id))) == 1
        running = imports.create_import(s, reviewer[1], "b.xlsx", workbook([row("2026-04-01-002", inst_a[0].name)]),
                                        2026)
        running.state, running.started_at = "running", clock.now()
        s.commit()
        other = running.id
    finally:
        s.close()
    assert run_import_job(other) == "running" and count(projects_db) == 1
    assert run_import_job(987654) == "missing"


def test_a_failure_fails_the_job_with_a_sentence_and_imports_nothing(projects_app, projects_db, inst_a, reviewer,
                                                                     monkeypatch):
    """A workbook damaged inside a sound zip, or anything going wrong while applying: the job says 导入失败 and
    what to do, nothing of the file is kept, and it never stays 排队中 or 导入中."""
    from tests.projects.test_review_session_fixes import damaged

    h = bearer(reviewer[1])
    bad = upload(projects_app.test_client(), damaged(workbook([row("2026-05-01-001", inst_a[0].name)] * 50)), h)
    assert bad.job["state"] == "failed" and "xlsx" in bad.job["error"] and bad.job["finished_at"]

    def broken(session, rows, year, progress=None):  # type: ignore[no-untyped-def]
        session.add(Project(year=2026, number="2026-05-01-099", title="半途", leader="王", institution_id=inst_a[0].id,
                            host_name=inst_a[0].name, credit_class="Ⅰ类", credit_value=1, hours=1, offerings_count=1,
                            mode="线下"))
        session.flush()
        raise RuntimeError("disk full")

    monkeypatch.setattr(imports, "import_rows", broken)
    r = upload(projects_app.test_client(), workbook([row("2026-05-01-002", inst_a[0].name)]), h)
    assert r.job["state"] == "failed" and r.job["error"] == imports.FAILED and "项目目录未作任何修改" in r.job["error"]
    assert count(projects_db) == 0
    page = login_client(projects_app.test_client(), reviewer[1]).get(f"/projects/catalogue/imports/{r.job['id']}")
    html = page.get_data(as_text=True)
    assert "导入失败" in html and imports.FAILED in html and "data-refresh" not in html


def test_a_job_killed_mid_run_or_never_started_is_not_left_waiting_in_silence(projects_app, projects_db, reviewer,
                                                                              catalogue_queue):
    """A worker killed mid-import leaves its job 导入中: past the task's hard limit its page fails it. A job queued
    while the worker is down says so after a while, and its page sends it again."""
    start = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
    clock.set_now(start)
    c = login_client(projects_app.test_client(), reviewer[1])
    s = projects_db.new_session()
    stuck = imports.create_import(s, reviewer[1], "a.xlsx", workbook([]), 2026)
    stuck.state, stuck.started_at = "running", start
    waiting = imports.create_import(s, reviewer[1], "b.xlsx", workbook([]), 2026)
    s.commit()
    stuck_id, waiting_id = stuck.id, waiting.id
    s.close()
    assert "导入中" in c.get(f"/projects/catalogue/imports/{stuck_id}").get_data(as_text=True)
    assert catalogue_queue == []  # never sent (Redis was down): its page sends it
    page = c.get(f"/projects/catalogue/imports/{waiting_id}").get_data(as_text=True)
    assert "排队中" in page and "已排队" not in page and catalogue_queue == [waiting_id]
    clock.set_now(start + dt.timedelta(seconds=imports.TIME_LIMIT + 1))
    html = c.get(f"/projects/catalogue/imports/{stuck_id}").get_data(as_text=True)
    assert "导入失败" in html and "导入中途停止" in html and the_job(projects_db, stuck_id).state == "failed"
    late = c.get(f"/projects/catalogue/imports/{waiting_id}").get_data(as_text=True)
    assert "已排队 15 分钟仍未开始" in late and "服务恢复后会自动导入" in late
    assert catalogue_queue == [waiting_id, waiting_id]  # sent again, enqueued_at noted
    assert the_job(projects_db, waiting_id).enqueued_at == start + dt.timedelta(seconds=imports.TIME_LIMIT + 1)


def test_the_result_page_lists_200_errors_and_the_rest_are_downloaded(projects_app, projects_db, inst_a, reviewer,
                                                                     csrf):
    c = login_client(projects_app.test_client(), reviewer[1])
    rows = [row(f"2026-06-01-{i:03d}", "无此机构") for i in range(1, 251)] + [row("2026-06-02-001", inst_a[0].name)]
    job_id = job_id_of(page_upload(c, csrf(reviewer[1]), workbook(rows)))
    run_import_job(job_id)
    html = c.get(f"/projects/catalogue/imports/{job_id}").get_data(as_text=True)
    assert "新增 1 项" in html and "250 行有误未导入" in html
    assert "第 201 行" in html and "第 202 行" not in html  # the first 200 errors: sheet rows 2-201
    assert "仅列出前 200 行，另有 50 行有误未列出" in html
    assert f'href="/projects/catalogue/imports/{job_id}/report.xlsx"' in html
    r = c.get(f"/projects/catalogue/imports/{job_id}/report.xlsx")
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(r.data))["出错的行"]
    listed = list(sheet.iter_rows(values_only=True))
    assert listed[0] == ("行号", "项目编号", "错误") and len(listed) == 251
    assert listed[250][:2] == (251, "2026-06-01-250") and "无此机构" in listed[250][2]


def test_two_imports_at_once_take_turns(projects_app, projects_db, inst_a, reviewer, monkeypatch):
    """The second waits for the first's transaction (the advisory lock) and then sees what it wrote: the same
    number, sent twice at once, is one project, created then found unchanged."""
    s = projects_db.new_session()
    ids = [imports.create_import(s, reviewer[1], f"{n}.xlsx", workbook([row("2026-07-01-001", inst_a[0].name)]),
                                 2026).id for n in (1, 2)]
    s.commit()
    s.close()
    inside, let_go = threading.Event(), threading.Event()
    real = services.import_rows
    order: list[int] = []

    def slow(session, rows, year, progress=None):  # type: ignore[no-untyped-def]
        order.append(threading.get_ident())
        if len(order) == 1:
            inside.set()
            let_go.wait(10)
        return real(session, rows, year, progress)

    monkeypatch.setattr(imports, "import_rows", slow)
    first = threading.Thread(target=run_import_job, args=(ids[0],))
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=run_import_job, args=(ids[1],))
    second.start()
    probe = projects_db.engine.connect()
    try:
        waiting = threading.Event()
        for _ in range(200):  # until the second is seen waiting on the lock (no sleep: a bounded poll)
            if probe.scalar(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                                          "AND database = (SELECT oid FROM pg_database "
                                          "WHERE datname = current_database())")):
                break
            waiting.wait(0.05)
        else:
            raise AssertionError("the second import did not wait for the first")
    finally:
        probe.close()
    assert len(order) == 1
    # meanwhile the first's page shows how far it got (its progress committed apart from its transaction)
    page = login_client(projects_app.test_client(), reviewer[1]).get(f"/projects/catalogue/imports/{ids[0]}")
    assert "写入中" in page.get_data(as_text=True) and "0 / 1 行" in page.get_data(as_text=True)
    let_go.set()
    first.join(20)
    second.join(20)
    assert [the_job(projects_db, i).result["created"] for i in ids] == [1, 0]
    assert the_job(projects_db, ids[1]).result["unchanged"] == 1 and count(projects_db) == 1


def _renamed_docx() -> bytes:
    """A Word document saved as .xlsx: a sound zip (what a zip check alone accepts) with no workbook in it."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        z.writestr("word/document.xml", '<?xml version="1.0"?><w:document/>')
    return out.getvalue()


def test_a_zip_that_is_no_workbook_is_refused_at_once_page_and_api(projects_app, projects_db, reviewer, csrf,
                                                                   catalogue_queue):
    """A .docx renamed .xlsx is refused in the request (its zip lists no xl/workbook.xml): 422 in Chinese, next to
    the file field on the page, and no job is stored or sent."""
    c = login_client(projects_app.test_client(), reviewer[1])
    page = page_upload(c, csrf(reviewer[1]), _renamed_docx())
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert "文件不是有效的 .xlsx 工作簿。" in html and 'name="year" min="2000" max="2100" value="2026"' in html
    api = c.post("/projects/api/catalogue/import", headers=bearer(reviewer[1]), content_type="multipart/form-data",
                 data={"file": (io.BytesIO(_renamed_docx()), "目录.xlsx"), "year": "2026"})
    assert api.status_code == 422, api.get_json()
    error = api.get_json()["error"]
    assert error["code"] == "bad_workbook" and error["message"] == imports.NOT_XLSX
    assert error["fields"] == {"file": "文件不是有效的 .xlsx 工作簿。"}
    s = projects_db.new_session()
    try:
        assert s.scalar(select(func.count()).select_from(CatalogueImport)) == 0
    finally:
        s.close()
    assert catalogue_queue == []
