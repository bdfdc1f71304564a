"""项目目录 jobs' files are kept CME_CATALOGUE_FILES_DAYS (30) days after the job ended: the daily sweep of the projects
beat then drops the uploaded workbook of an import and the file of an export; the job's row, its counts, errors and
audit entry stay, its page says when the file was cleared and the export's download answers 410 in Chinese."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import undefer

from services.common import clock
from services.common.auth import Principal
from services.projects.audit.models import AuditLog
from services.projects.catalogue import exports, imports, retention
from services.projects.catalogue.models import CatalogueExport, CatalogueImport
from services.projects.catalogue.tasks import QUEUE, SWEEP_TASK, run_export_job
from tests.conftest import bearer, login_client
from tests.projects.test_catalogue import row, workbook
from tests.projects.test_catalogue_jobs import job_id_of, page_upload

START = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)
OTHER_CLERK = Principal(role="reviewer", subject="reviewer:99", name="审核员乙", reviewer_id=99)


def _files(projects_db) -> tuple[dict[int, bool], dict[int, bool]]:  # type: ignore[no-untyped-def]
    """Which import and export jobs still hold their file."""
    s = projects_db.new_session()
    try:
        held_imports = {j.id: j.data is not None
                        for j in s.scalars(select(CatalogueImport).options(undefer(CatalogueImport.data)))}
        held_exports = {j.id: j.data is not None
                        for j in s.scalars(select(CatalogueExport).options(undefer(CatalogueExport.data)))}
        return held_imports, held_exports
    finally:
        s.close()


def _sweep() -> dict:
    from services.projects import worker

    return worker.clear_catalogue_files.run()


def _export(projects_db, clerk: Principal) -> int:  # type: ignore[no-untyped-def]
    s = projects_db.new_session()
    job = exports.create_export(s, clerk, {"year": 2026}, 2)
    s.commit()
    job_id = job.id
    s.close()
    assert run_export_job(job_id) == "done"
    return job_id


def test_a_job_past_the_retention_loses_its_file_and_its_page_says_so(projects_app, projects_db, make_project, inst_a,
                                                                      reviewer, csrf, catalogue_queue, monkeypatch):
    monkeypatch.delenv("CME_CATALOGUE_FILES_DAYS", raising=False)
    from services.projects.catalogue.tasks import run_import_job

    for _ in range(2):
        make_project(inst_a[0])
    clock.set_now(START)
    c = login_client(projects_app.test_client(), reviewer[1])
    old_import = job_id_of(page_upload(c, csrf(reviewer[1]), workbook([row("2026-05-01-001", inst_a[0].name),
                                                                         row("2026-05-01-002", "无此机构")])))
    assert run_import_job(old_import) == "done"
    failed_import = job_id_of(page_upload(c, csrf(reviewer[1]), workbook([["A"]], headers=["编号", "名称"])))
    assert run_import_job(failed_import) == "failed"
    old_export = _export(projects_db, reviewer[1])
    s = projects_db.new_session()
    never_run = imports.create_import(s, reviewer[1], "c.xlsx", workbook([]), 2026)  # its worker down for a month
    s.commit()
    never_run_id = never_run.id
    s.close()

    clock.set_now(START + dt.timedelta(days=10))  # ten days later: another clerk's export, another import
    young_export = _export(projects_db, OTHER_CLERK)
    young_import = job_id_of(page_upload(c, csrf(reviewer[1]), workbook([row("2026-05-01-003", inst_a[0].name)])))
    run_import_job(young_import)
    kept = c.get(f"/projects/catalogue/imports/{young_import}").get_data(as_text=True)
    assert "（上传的文件在导入结束 30 天后自动清除）" in kept
    assert "最长保留 30 天" in c.get(f"/projects/catalogue/exports/{old_export}").get_data(as_text=True)

    clock.set_now(START + dt.timedelta(days=31, hours=1))
    assert _sweep() == {"days": 30, "imports": 2, "exports": 1}
    held_imports, held_exports = _files(projects_db)
    assert held_imports == {old_import: False, failed_import: False, never_run_id: True, young_import: True}
    assert held_exports == {old_export: False, young_export: True}

    # the import's page and status: the result and the audit entry stay, the page says the file is gone
    page = c.get(f"/projects/catalogue/imports/{old_import}").get_data(as_text=True)
    assert "上传的文件已在导入结束 31 天后按保留期限自动清除" in page and "导入结果仍保留" in page
    assert "导入完成：新增 1 项" in page and "系统中没有名为“无此机构”的申办机构" in page
    assert c.get(f"/projects/catalogue/imports/{old_import}/report.xlsx").status_code == 200
    status = c.get(f"/projects/api/catalogue/imports/{old_import}", headers=bearer(reviewer[1])).get_json()
    assert status["file_cleared_at"] and status["result"]["created"] == 1
    assert "已在导入结束 31 天后" in c.get(f"/projects/catalogue/imports/{failed_import}").get_data(as_text=True)
    s = projects_db.new_session()
    try:
        assert len(s.scalars(select(AuditLog).where(AuditLog.action == "imported")).all()) == 2
    finally:
        s.close()
    young = c.get(f"/projects/catalogue/imports/{young_import}").get_data(as_text=True)
    assert "已在导入结束" not in young and "（上传的文件在导入结束 30 天后自动清除）" in young

    # the export's page offers no broken link; its downloads, page and API, answer 410 in Chinese
    page = c.get(f"/projects/catalogue/exports/{old_export}").get_data(as_text=True)
    assert "该导出的文件已在导出完成 31 天后按保留期限自动清除" in page and 'id="download"' not in page
    assert "导出完成：共 3 项" in page and "返回项目目录重新导出" in page
    listing = c.get("/projects/catalogue").get_data(as_text=True)
    assert "（文件已按保留期限清除）" in listing and f"/projects/catalogue/exports/{old_export}.xlsx" not in listing
    for url in (f"/projects/catalogue/exports/{old_export}.xlsx", f"/projects/api/catalogue/exports/{old_export}.xlsx"):
        gone = c.get(url, headers=bearer(reviewer[1]))
        assert gone.status_code == 410 and "31 天后按保留期限自动清除" in gone.get_json()["error"]["message"]
    status = c.get(f"/projects/api/catalogue/exports/{old_export}", headers=bearer(reviewer[1])).get_json()
    assert status["state"] == "done" and status["download_url"] is None and status["file_cleared_at"]
    assert c.get(f"/projects/catalogue/exports/{young_export}.xlsx").status_code == 200

    # the clerk's next export still replaces the cleared one; a second sweep finds nothing more
    assert _sweep() == {"days": 30, "imports": 0, "exports": 0}
    _export(projects_db, reviewer[1])
    assert "已被新的导出替换" in c.get(f"/projects/catalogue/exports/{old_export}").get_data(as_text=True)


def test_zero_days_keeps_every_file(projects_app, projects_db, make_project, inst_a, reviewer, monkeypatch):
    make_project(inst_a[0])
    clock.set_now(START)
    job_id = _export(projects_db, reviewer[1])
    clock.set_now(START + dt.timedelta(days=400))
    monkeypatch.setenv("CME_CATALOGUE_FILES_DAYS", "0")
    assert _sweep() == {"days": 0, "imports": 0, "exports": 0}
    monkeypatch.setenv("CME_CATALOGUE_FILES_DAYS", "500")
    assert _sweep()["exports"] == 0
    assert _files(projects_db)[1] == {job_id: True}
    monkeypatch.setenv("CME_CATALOGUE_FILES_DAYS", "天")  # malformed: the default
    assert retention.files_days() == 30 and _sweep()["exports"] == 1


def test_the_beat_runs_the_sweep_daily_on_the_jobs_queue():
    from celery.schedules import crontab

    from services.projects import worker

    entry = next(e for e in worker.celery.conf.beat_schedule.values() if e["task"] == SWEEP_TASK)
    assert entry["schedule"] == crontab(hour=3, minute=30) and entry["options"]["queue"] == QUEUE
    assert SWEEP_TASK in worker.celery.tasks
    assert worker.celery.amqp.router.route({}, SWEEP_TASK)["queue"].name == QUEUE
