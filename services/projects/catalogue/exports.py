"""项目目录 导出 Excel of a long list as a job: the request counts the filtered list; up to DIRECT_MAX rows it answers
with the file at once (the everyday export, one click), above that it stores the filter as a job and the
projects-jobs worker (catalogue/tasks.py) writes the .xlsx while the clerk follows it on the job's page
(排队中 → 导出中 → 导出完成, 下载 / 导出失败).

The rows are the list as filtered at the click: the filter (检索, 年度, 主办单位, 状态) is stored with the job and the
worker reads the catalogue through it when it runs, seconds later. A clerk keeps one file: when an export of theirs
is done, the files of their earlier exports are removed (those jobs read 已被新的导出替换 and link to the latest),
so the table holds at most one file of about 1 MB a committee clerk.

Like the import (catalogue/imports.py): claimed once by UPDATE … WHERE state = 'queued'; failed with a sentence;
a run killed past the hard time limit is failed by its page; a queued job whose message was lost is sent again by
its page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.common import clock, jobs
from services.common.auth import Principal
from services.common.errors import AppError
from services.common.inputs import keep_args

from .models import CatalogueExport
from .services import export_workbook

# Up to this many rows 导出 Excel stays in the web request; above it the export is a job. export_workbook on
# PostgreSQL here (2 cores, load 4, 29 November 2026): 1,000 rows 0.22 s, 2,000 rows 0.42-0.43 s, 5,000 rows
# 1.1-1.2 s, 20,000 rows (MAX_ROWS) 4.0-4.4 s. At 2,000 the request stays well under a second.
DIRECT_MAX = 2000
# the task's hard time limit (seconds; the soft one, 60 s before, fails the job in Chinese): 20000 rows take ~4 s
TIME_LIMIT = 600
FILTER_KEYS = ("q", "year", "institution_id", "status")
NOT_FOUND = "该导出记录不存在。"
FAILED = "导出失败。请返回项目目录重新导出；如仍失败，请联系系统管理员。"
FAILED_TIMEOUT = "导出超时（系统繁忙），请稍后重新导出，或按年度或主办单位筛选后分别导出。"
KILLED = "导出中途停止（导出服务重启或超时），请返回项目目录重新导出；如多次出现，请联系系统管理员。"


def list_url(args: dict[str, Any]) -> str:
    """项目目录 under the filter of `args` (a loaded query or an export's stored filters), as its links keep it."""
    keep = keep_args(args, FILTER_KEYS)
    return "/projects/catalogue" + (f"?{urlencode(keep)}" if keep else "")


def filters_of(args: dict[str, Any]) -> dict[str, Any]:
    """The list's filter out of its loaded query (page and per_page are no part of an export)."""
    return {k: args.get(k) for k in FILTER_KEYS if args.get(k) not in (None, "")}


def create_export(session: Session, principal: Principal, args: dict[str, Any], rows: int) -> CatalogueExport:
    """A job for this clerk and filter; the same export already queued or running is the answer (a double click)."""
    filters = filters_of(args)
    for job in session.scalars(select(CatalogueExport).where(CatalogueExport.actor == principal.describe(),
                                                             CatalogueExport.state.in_(("queued", "running")))):
        if job.filters == filters:
            return job
    job = CatalogueExport(actor=principal.describe(), actor_name=principal.audit_name(), filters=filters,
                          state="queued", rows_total=rows, rows_done=0, created_at=clock.now())
    session.add(job)
    session.flush()
    return job


def get_export(session: Session, job_id: int) -> CatalogueExport:
    job = session.get(CatalogueExport, job_id)
    if job is None:
        raise AppError(404, "not_found", NOT_FOUND)
    return job


def latest_export(session: Session, principal: Principal) -> CatalogueExport | None:
    """This clerk's latest export, for the list page: the clerk who closed a job's page finds it again."""
    return session.scalars(select(CatalogueExport).where(CatalogueExport.actor == principal.describe())
                           .order_by(CatalogueExport.id.desc()).limit(1)).first()


def latest_done(session: Session, job: CatalogueExport) -> CatalogueExport | None:
    """The export of the same clerk whose file replaced this one's."""
    return session.scalars(select(CatalogueExport).where(CatalogueExport.actor == job.actor,
                                                         CatalogueExport.state == "done")
                           .order_by(CatalogueExport.id.desc()).limit(1)).first()


def filter_text(filters: dict[str, Any], institution_name: str | None) -> str:
    """The filter in the list's words, for the job's page."""
    from .schemas import CATALOGUE_STATUS_LABELS

    parts = []
    if filters.get("year"):
        parts.append(f"年度 {filters['year']}")
    if filters.get("institution_id"):
        parts.append(f"主办单位 {institution_name or filters['institution_id']}")
    if filters.get("q"):
        parts.append(f"检索“{filters['q']}”")
    if filters.get("status"):
        parts.append(f"状态 {CATALOGUE_STATUS_LABELS.get(filters['status'], filters['status'])}")
    return "，".join(parts) or "全部项目"


def job_dict(job: CatalogueExport) -> dict[str, Any]:
    """The JSON status (ExportJobSchema): state, progress and, while its file is kept, where to download it."""
    return {"id": job.id, "state": job.state, "state_label": job.state_label, "filters": job.filters,
            "rows_total": job.rows_total, "rows_done": job.rows_done, "error": job.error,
            "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at,
            "status_url": f"/projects/api/catalogue/exports/{job.id}",
            "page_url": f"/projects/catalogue/exports/{job.id}",
            "file_cleared_at": job.cleared_at,
            "download_url": f"/projects/api/catalogue/exports/{job.id}.xlsx" if has_file(job) else None}


def has_file(job: CatalogueExport) -> bool:
    """A done export whose file the retention has not cleared (a replaced one's is gone too)."""
    return job.state == "done" and job.cleared_at is None


def cleared_text(job: CatalogueExport) -> str:
    return (f"该导出的文件已在导出完成 {job.kept_days} 天后按保留期限自动清除（导出记录仍保留），"
            "如仍需要，请返回项目目录重新导出。")


def file_name(job: CatalogueExport) -> str:
    year = f"{job.filters['year']}年度" if job.filters.get("year") else ""
    return f"项目目录{year}-{clock.fmt(job.created_at, '%Y%m%d%H%M')}.xlsx"


# ---------------------------------------------------------------- the run (projects-jobs worker)

def run_export(session: Session, job_id: int) -> str:
    """Claim the job, write the list as filtered into an .xlsx, keep it and remove the clerk's earlier files.
    Returns the job's state ('missing' for no such job); a job not queued is left as it is."""
    claimed, job = jobs.claim(session, CatalogueExport, job_id)
    if not claimed or job is None:
        return job.state if job is not None else "missing"

    def progress(done: int, total: int) -> None:
        # the rows are read: the read's transaction ends here, and each figure is committed for the page to show
        job.rows_total, job.rows_done = total, done
        session.commit()

    try:
        data, total = export_workbook(session, None, job.filters, progress=progress)
    except AppError as exc:  # more than MAX_ROWS by now: the clerk filters further
        fail(session, job_id, exc.message)
        return "failed"
    job.state, job.data, job.size, job.finished_at = "done", data, len(data), clock.now()
    job.rows_total = job.rows_done = total
    session.execute(update(CatalogueExport)
                    .where(CatalogueExport.actor == job.actor, CatalogueExport.id != job.id,
                           CatalogueExport.state == "done")
                    .values(state="replaced", data=None))
    session.commit()
    return job.state


def fail(session: Session, job_id: int, message: str) -> None:
    jobs.fail(session, CatalogueExport, job_id, message)
