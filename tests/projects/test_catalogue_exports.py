"""项目目录 导出 Excel: a short list is downloaded at once, as always; a long one (above exports.DIRECT_MAX, lowered
here so that the tests stay small) becomes a job of the projects-jobs worker, written with the list's filter as it
was at the click, followed on its page and downloaded there; a clerk keeps the file of their latest export."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from services.common import clock
from services.common.auth import Principal
from services.projects.catalogue import exports, services
from services.projects.catalogue.models import CatalogueExport
from services.projects.catalogue.tasks import EXPORT_TASK, QUEUE, TASK, run_export_job
from tests.conftest import bearer, login_client
from tests.projects.test_catalogue import HEADERS


@pytest.fixture
def small_direct(monkeypatch):
    """Up to 3 rows the file comes at once; 4 and more make a job."""
    monkeypatch.setattr(exports, "DIRECT_MAX", 3)
    return 3


def _catalogue(make_project, inst_a, inst_b) -> None:
    for _ in range(5):
        make_project(inst_a[0])
    for _ in range(2):
        make_project(inst_b[0])
    make_project(inst_a[0], year=2025)


def _start(c, csrf_token: str, **filters):  # type: ignore[no-untyped-def]
    return c.post("/projects/catalogue/exports", data={"csrf_token": csrf_token, **filters})


def _job_id(r) -> int:  # type: ignore[no-untyped-def]
    assert r.status_code == 303, r.get_data(as_text=True)[:300]
    return int(r.headers["Location"].rsplit("/", 1)[1])


def _numbers(data: bytes) -> list[str]:
    rows = list(load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True))
    assert rows[1][:11] == tuple(HEADERS)  # the import's header: the file can be imported back
    return [r[0] for r in rows[2:]]


def _job(projects_db, job_id: int) -> CatalogueExport:
    s = projects_db.new_session()
    try:
        job = s.get(CatalogueExport, job_id)
        s.expunge(job)
        return job
    finally:
        s.close()


def test_a_short_list_downloads_at_once_a_long_one_becomes_a_job(projects_app, projects_db, make_project, inst_a,
                                                                 inst_b, reviewer, csrf, small_direct, export_queue):
    _catalogue(make_project, inst_a, inst_b)
    c = login_client(projects_app.test_client(), reviewer[1])
    # 2026's B: 2 rows, the link as today, the file in the answer
    short = c.get(f"/projects/catalogue?year=2026&institution_id={inst_b[0].id}").get_data(as_text=True)
    assert f'href="/projects/catalogue.xlsx?year=2026&amp;institution_id={inst_b[0].id}"' in short
    assert 'form="catalogue-export"' not in short
    r = c.get(f"/projects/catalogue.xlsx?year=2026&institution_id={inst_b[0].id}")
    assert r.status_code == 200 and len(_numbers(r.data)) == 2 and export_queue == []

    # 2026's A: 5 rows, more than the direct limit: the button sends the list's filter to make a job
    long = c.get(f"/projects/catalogue?year=2026&institution_id={inst_a[0].id}").get_data(as_text=True)
    assert 'form="catalogue-export"' in long and 'action="/projects/catalogue/exports"' in long
    assert 'name="year" value="2026"' in long and f'name="institution_id" value="{inst_a[0].id}"' in long
    assert "共 5 项，超过 3 项：点击“导出 Excel”后在后台生成" in long
    job_id = _job_id(_start(c, csrf(reviewer[1]), year="2026", institution_id=str(inst_a[0].id)))
    assert export_queue == [job_id]  # sent after the commit
    page = c.get(f"/projects/catalogue/exports/{job_id}").get_data(as_text=True)
    assert "排队中" in page and "data-refresh" in page and "0 / 5 项" in page
    assert f"年度 2026，主办单位 {inst_a[0].name}" in page and "审核员甲" in page
    assert c.get(f"/projects/catalogue/exports/{job_id}.xlsx").status_code == 409  # not written yet

    # a project of A added after the click is still in the list so filtered; B's and 2025's are not
    make_project(inst_a[0])
    assert run_export_job(job_id) == "done"
    done = c.get(f"/projects/catalogue/exports/{job_id}").get_data(as_text=True)
    assert "导出完成：共 6 项" in done and "data-refresh" not in done
    assert f'href="/projects/catalogue/exports/{job_id}.xlsx"' in done and "下载" in done
    assert "文件保留到您下一次导出完成为止" in done
    assert f'href="/projects/catalogue?year=2026&amp;institution_id={inst_a[0].id}"' in done  # back to that list
    got = c.get(f"/projects/catalogue/exports/{job_id}.xlsx")
    assert got.status_code == 200 and got.mimetype.endswith("spreadsheetml.sheet")
    assert got.headers["Cache-Control"] == "private, no-store" and "filename*=UTF-8''" in got.headers[
        "Content-Disposition"]
    s = projects_db.new_session()
    try:
        from services.projects.catalogue.models import Project

        wanted = sorted(s.scalars(select(Project.number).where(Project.year == 2026,
                                                               Project.institution_id == inst_a[0].id)))
    finally:
        s.close()
    assert _numbers(got.data) == wanted and len(wanted) == 6
    listing = c.get("/projects/catalogue").get_data(as_text=True)  # found again from the list
    assert "我最近的导出" in listing and f'href="/projects/catalogue/exports/{job_id}.xlsx"' in listing


def test_the_link_of_a_long_list_leads_back_to_the_list_that_says_how(projects_app, make_project, inst_a, inst_b,
                                                                      reviewer, small_direct, export_queue):
    """An old bookmark of 导出 Excel, or a list grown past the limit since the page was drawn: no 20000 rows in the
    request, but the list (its filter kept) saying the export is made in the background."""
    _catalogue(make_project, inst_a, inst_b)
    c = login_client(projects_app.test_client(), reviewer[1])
    r = c.get("/projects/catalogue.xlsx?year=2026")
    assert r.status_code == 303 and r.headers["Location"] == "/projects/catalogue?year=2026"
    page = c.get(r.headers["Location"]).get_data(as_text=True)
    assert "按当前条件共 7 项，超过 3 项的导出在后台生成：请点击“导出 Excel”" in page
    assert 'form="catalogue-export"' in page and export_queue == []


def test_a_double_click_is_one_job_and_bad_or_oversized_filters_are_refused(projects_app, projects_db, make_project,
                                                                           inst_a, inst_b, reviewer, csrf,
                                                                           small_direct, export_queue, monkeypatch):
    _catalogue(make_project, inst_a, inst_b)
    c = login_client(projects_app.test_client(), reviewer[1])
    first = _job_id(_start(c, csrf(reviewer[1]), year="2026"))
    assert _job_id(_start(c, csrf(reviewer[1]), year="2026")) == first and export_queue == [first]
    other = _job_id(_start(c, csrf(reviewer[1])))  # another filter: another job
    assert other != first and export_queue == [first, other]
    bad = _start(c, csrf(reviewer[1]), year="abc")
    assert bad.status_code == 422 and "查询条件有误" in bad.get_data(as_text=True)
    assert c.get("/projects/catalogue/exports").status_code == 303  # the form's address reloaded: the list
    monkeypatch.setattr(services, "MAX_ROWS", 6)
    from services.projects.catalogue import views

    monkeypatch.setattr(views, "MAX_ROWS", 6)
    too_many = _start(c, csrf(reviewer[1]), year="2026")
    assert too_many.status_code == 422 and "一次最多导出 6 项" in too_many.get_data(as_text=True)
    # a short list by the time of the click (rows deleted meanwhile): the file at once, no job
    short = _start(c, csrf(reviewer[1]), year="2025")
    assert short.status_code == 200 and len(_numbers(short.data)) == 1
    assert _start(c, "", year="2026").status_code in (400, 403)  # no CSRF token: refused
    assert export_queue == [first, other]


def test_a_clerk_keeps_the_file_of_the_latest_export(projects_app, projects_db, make_project, inst_a, inst_b,
                                                     reviewer, csrf, small_direct):
    _catalogue(make_project, inst_a, inst_b)
    c = login_client(projects_app.test_client(), reviewer[1])
    first = _job_id(_start(c, csrf(reviewer[1]), year="2026"))
    run_export_job(first)
    other_clerk = Principal(role="reviewer", subject="reviewer:99", name="审核员乙", reviewer_id=99)
    s = projects_db.new_session()
    theirs = exports.create_export(s, other_clerk, {"year": 2026}, 7)
    s.commit()
    theirs_id = theirs.id
    s.close()
    run_export_job(theirs_id)
    assert _job(projects_db, first).state == "done"  # another clerk's export leaves this one's file
    second = _job_id(_start(c, csrf(reviewer[1])))
    assert _job(projects_db, first).state == "done"  # kept while the next one is only queued
    run_export_job(second)
    gone = c.get(f"/projects/catalogue/exports/{first}").get_data(as_text=True)
    assert "已被新的导出替换" in gone and f'href="/projects/catalogue/exports/{second}"' in gone
    r = c.get(f"/projects/catalogue/exports/{first}.xlsx")
    assert r.status_code == 410 and "已被同一审核员之后的导出替换" in r.get_data(as_text=True)
    assert c.get(f"/projects/catalogue/exports/{second}.xlsx").status_code == 200
    assert c.get(f"/projects/catalogue/exports/{theirs_id}.xlsx").status_code == 200
    s = projects_db.new_session()
    try:
        files = s.execute(select(CatalogueExport.id).where(CatalogueExport.data.is_not(None))).scalars().all()
    finally:
        s.close()
    assert sorted(files) == sorted([second, theirs_id])


def test_a_failed_killed_or_lost_export_is_never_left_waiting_in_silence(projects_app, projects_db, make_project,
                                                                         inst_a, inst_b, reviewer, csrf,
                                                                         small_direct, export_queue, monkeypatch):
    _catalogue(make_project, inst_a, inst_b)
    start = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
    clock.set_now(start)
    c = login_client(projects_app.test_client(), reviewer[1])

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk full")

    monkeypatch.setattr(exports, "export_workbook", broken)
    failed = _job_id(_start(c, csrf(reviewer[1]), year="2026"))
    assert run_export_job(failed) == "failed"
    html = c.get(f"/projects/catalogue/exports/{failed}").get_data(as_text=True)
    assert "导出失败" in html and exports.FAILED in html and "data-refresh" not in html
    assert "disk full" not in html

    s = projects_db.new_session()
    stuck = exports.create_export(s, reviewer[1], {"q": "测试"}, 7)
    stuck.state, stuck.started_at = "running", start
    lost = exports.create_export(s, reviewer[1], {}, 8)
    s.commit()
    stuck_id, lost_id = stuck.id, lost.id
    s.close()
    assert "导出中" in c.get(f"/projects/catalogue/exports/{stuck_id}").get_data(as_text=True)
    page = c.get(f"/projects/catalogue/exports/{lost_id}").get_data(as_text=True)  # never sent: its page sends it
    assert "排队中" in page and "已排队" not in page and export_queue == [failed, lost_id]
    clock.set_now(start + dt.timedelta(seconds=exports.TIME_LIMIT + 1))
    killed = c.get(f"/projects/catalogue/exports/{stuck_id}").get_data(as_text=True)
    assert "导出失败" in killed and "导出中途停止" in killed and _job(projects_db, stuck_id).state == "failed"
    late = c.get(f"/projects/catalogue/exports/{lost_id}").get_data(as_text=True)
    assert "已排队 10 分钟仍未开始" in late and export_queue == [failed, lost_id, lost_id]
    assert run_export_job(stuck_id) == "failed"  # a late delivery of a job no longer queued does nothing


def test_only_the_committee_follows_an_export(projects_app, projects_db, make_project, inst_a, inst_b, reviewer,
                                              csrf, small_direct):
    _catalogue(make_project, inst_a, inst_b)
    job_id = _job_id(_start(login_client(projects_app.test_client(), reviewer[1]), csrf(reviewer[1]), year="2026"))
    run_export_job(job_id)
    trainee = Principal(role="trainee", subject="trainee:abc", name="张三", trainee_key="abc")
    for url in (f"/projects/catalogue/exports/{job_id}", f"/projects/catalogue/exports/{job_id}.xlsx"):
        assert login_client(projects_app.test_client(), inst_a[1]).get(url).status_code == 403
        assert login_client(projects_app.test_client(), trainee).get(url).status_code == 403
        anonymous = projects_app.test_client().get(url)
        assert anonymous.status_code == 302 and "/projects/login" in anonymous.headers["Location"]
    refused = login_client(projects_app.test_client(), inst_a[1]).post(
        "/projects/catalogue/exports", data={"csrf_token": csrf(inst_a[1]), "year": "2026"})
    assert refused.status_code == 403
    assert projects_app.test_client().post("/projects/catalogue/exports", data={"year": "2026"}).status_code == 401
    for url in (f"/projects/api/catalogue/exports/{job_id}", f"/projects/api/catalogue/exports/{job_id}.xlsx"):
        assert projects_app.test_client().get(url, headers=bearer(reviewer[1])).status_code == 200
        assert projects_app.test_client().get(url, headers=bearer(inst_a[1])).status_code == 403
        assert projects_app.test_client().get(url, headers=bearer(trainee)).status_code == 403
        assert projects_app.test_client().get(url).status_code == 401
    for who in (inst_a[1], inst_b[1], trainee):
        refused = projects_app.test_client().post("/projects/api/catalogue/export", json={"year": 2026},
                                                  headers=bearer(who))
        assert refused.status_code == 403 and refused.get_json()["error"]["message"] == "您没有权限进行此操作。"
    assert projects_app.test_client().post("/projects/api/catalogue/export", json={}).status_code == 401
    s = projects_db.new_session()
    try:
        assert s.scalars(select(CatalogueExport.id)).all() == [job_id]  # the refused asked nothing of the worker
    finally:
        s.close()
    assert login_client(projects_app.test_client(), reviewer[1]).get(
        "/projects/catalogue/exports/999999").status_code == 404


def test_the_catalogue_jobs_have_a_queue_of_their_own(projects_app, monkeypatch):
    """Imports and exports go to projects-jobs (its own worker, one job at a time): a 20 s import no longer waits in
    front of the decision SMS and award lists on "projects"; /projects/metrics reports both queues."""
    from services.projects.catalogue import tasks
    from services.projects.worker import celery

    assert QUEUE == "projects-jobs"
    for name in (TASK, EXPORT_TASK):
        assert celery.amqp.router.route({}, name)["queue"].name == QUEUE
    sent: list[tuple[str, list[int], str]] = []
    monkeypatch.undo()  # the autouse stubs of enqueue / enqueue_export (this same monkeypatch): the real ones
    monkeypatch.setattr(celery, "send_task", lambda name, args, queue: sent.append((name, args, queue)))
    assert tasks.enqueue(5) and tasks.enqueue_export(6)
    assert sent == [(TASK, [5], QUEUE), (EXPORT_TASK, [6], QUEUE)]
    metrics = projects_app.test_client().get("/projects/metrics").get_data(as_text=True)
    assert re.search(r'cme_queue_length\{service="projects",queue="projects-jobs"\} \d', metrics)
    assert re.search(r'cme_queue_length\{service="projects",queue="projects"\} \d', metrics)


def test_the_api_exports_as_a_job_whatever_the_count_and_downloads_the_file(projects_app, projects_db, make_project,
                                                                           inst_a, inst_b, reviewer, export_queue,
                                                                           monkeypatch):
    """A script posts the list's filter and always gets a job (202) to follow at its status_url, even for a list
    the page would download at once; the file comes from download_url, 409 before, 410 once replaced."""
    _catalogue(make_project, inst_a, inst_b)
    c, h = projects_app.test_client(), bearer(reviewer[1])
    r = c.post("/projects/api/catalogue/export", json={"year": 2026, "institution_id": inst_b[0].id}, headers=h)
    assert r.status_code == 202, r.get_json()
    job = r.get_json()
    assert (job["state"], job["rows_total"], job["download_url"]) == ("queued", 2, None)
    assert job["filters"] == {"year": 2026, "institution_id": inst_b[0].id}
    assert job["status_url"] == f"/projects/api/catalogue/exports/{job['id']}" and export_queue == [job["id"]]
    # the same filter again (a retry) is the same job, not sent twice
    again = c.post("/projects/api/catalogue/export", json={"institution_id": inst_b[0].id, "year": 2026}, headers=h)
    assert again.status_code == 202 and again.get_json()["id"] == job["id"] and export_queue == [job["id"]]
    early = c.get(f"/projects/api/catalogue/exports/{job['id']}.xlsx", headers=h)
    assert early.status_code == 409 and "导出尚未完成" in early.get_json()["error"]["message"]

    assert run_export_job(job["id"]) == "done"
    done = c.get(job["status_url"], headers=h).get_json()
    assert (done["state"], done["rows_done"]) == ("done", 2) and done["finished_at"]
    assert done["download_url"] == f"/projects/api/catalogue/exports/{job['id']}.xlsx"
    got = c.get(done["download_url"], headers=h)
    assert got.status_code == 200 and got.mimetype.endswith("spreadsheetml.sheet") and len(_numbers(got.data)) == 2

    # the clerk's next export, page or API, replaces the file
    later = c.post("/projects/api/catalogue/export", json={}, headers=h).get_json()
    run_export_job(later["id"])
    replaced = c.get(job["status_url"], headers=h).get_json()
    assert replaced["state"] == "replaced" and replaced["download_url"] is None
    gone = c.get(done["download_url"], headers=h)
    assert gone.status_code == 410 and "已被同一审核员之后的导出替换" in gone.get_json()["error"]["message"]
    assert len(_numbers(c.get(f"/projects/api/catalogue/exports/{later['id']}.xlsx", headers=h).data)) == 8

    bad = c.post("/projects/api/catalogue/export", json={"year": "abc", "page": 2}, headers=h)
    assert bad.status_code == 422 and set(bad.get_json()["error"]["fields"]) == {"year", "page"}
    from services.projects.catalogue import views

    monkeypatch.setattr(views, "MAX_ROWS", 6)
    monkeypatch.setattr(services, "MAX_ROWS", 6)
    too_many = c.post("/projects/api/catalogue/export", json={"year": 2026}, headers=h)
    assert too_many.status_code == 422 and "一次最多导出 6 项" in too_many.get_json()["error"]["message"]
    assert c.get("/projects/api/catalogue/exports/999999", headers=h).status_code == 404
    assert export_queue == [job["id"], later["id"]]
    spec = c.get("/projects/api/openapi.json").get_json()["paths"]
    assert "requestBody" in spec["/projects/api/catalogue/export"]["post"]
    assert "202" in spec["/projects/api/catalogue/export"]["post"]["responses"]
