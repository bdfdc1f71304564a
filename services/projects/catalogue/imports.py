"""项目目录 导入 as a job: the web request checks what is cheap (a file given, its size, that it is an .xlsx zip),
stores the workbook and answers at once; the projects-jobs worker (catalogue/tasks.py) reads and applies it in one
transaction, all or nothing, and the clerk follows it on the job's page (排队中 → 导入中 → 导入完成 / 导入失败).

A job is claimed by one UPDATE … WHERE state = 'queued', so a message delivered twice applies it once; a job is
never left 排队中 or 导入中 for good: a failure is written with a sentence the clerk can act on, a job still
running past the task's hard time limit (its worker killed) is failed by its page, and a queued job whose message
was lost is sent again by its page.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from services.common import clock, jobs
from services.common.auth import Principal
from services.common.db import xact_lock
from services.common.errors import AppError

from ..audit.models import AuditLog
from .models import CatalogueImport
from .services import ImportResult, import_rows, read_workbook

# a year's province is 20000 rows of about 80 bytes each once zipped: a file many times that is no catalogue
MAX_FILE_BYTES = 10 * 1024 * 1024
# errors (and updates) listed on the result page; the rest are in the job's .xlsx
SHOWN_ROWS = 200
# the import task's hard time limit (seconds; the soft one, 60 s before, fails the job in Chinese): 20000 rows took
# 15-21 s in the web request on a loaded 2-core machine
TIME_LIMIT = 900
# one import at a time, whatever its year: a workbook's 年度 column may name any year, and two imports of the same
# numbers must not each miss what the other has not committed yet
LOCK = "projects:catalogue-import"
NOT_FOUND = "该导入记录不存在。"
NOT_XLSX = "无法读取该文件，请上传 .xlsx 格式的 Excel 工作簿。"
FAILED = "导入失败，项目目录未作任何修改。请重新导入；如仍失败，请联系系统管理员。"
FAILED_TIMEOUT = "导入超时（文件较大或系统繁忙），项目目录未作任何修改。请稍后重新导入，或将文件分成几份分别导入。"
KILLED = ("导入中途停止（导入服务重启或超时），项目目录未作任何修改。请重新导入；如多次出现，请联系系统管理员。")


def check_upload(filename: str, data: bytes) -> None:
    """What the request can judge without reading the sheet: a file, not too large, an .xlsx (a zip with a
    workbook in it). A damaged sheet inside a sound zip is found by the worker and fails the job."""
    if not data:
        raise AppError(422, "invalid_input", "上传的文件是空的，请重新选择文件。", {"file": "上传的文件是空的。"})
    if len(data) > MAX_FILE_BYTES:
        limit = MAX_FILE_BYTES // (1024 * 1024)
        raise AppError(422, "file_too_large", f"文件超过 {limit} MB，不像是项目目录；请核对文件，或分成几份分别导入。",
                       {"file": f"文件超过 {limit} MB。"})
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, ValueError, OSError):
        names = set()
    if "xl/workbook.xml" not in names:
        raise AppError(422, "bad_workbook", NOT_XLSX, {"file": "文件不是有效的 .xlsx 工作簿。"})


def create_import(session: Session, principal: Principal, filename: str, data: bytes,
                  year: int | None) -> CatalogueImport:
    check_upload(filename, data)
    job = CatalogueImport(year=year, actor=principal.describe(), actor_name=principal.audit_name(),
                          filename=(filename or "项目目录.xlsx")[-200:], size=len(data), data=data, state="queued",
                          rows_done=0, created_at=clock.now())
    session.add(job)
    session.flush()
    return job


def get_import(session: Session, job_id: int) -> CatalogueImport:
    job = session.get(CatalogueImport, job_id)
    if job is None:
        raise AppError(404, "not_found", NOT_FOUND)
    return job


def recent_imports(session: Session, limit: int = 5) -> list[CatalogueImport]:
    """The latest imports, for the list page: the clerk who closed a job's page finds it again."""
    return list(session.scalars(select(CatalogueImport).order_by(CatalogueImport.id.desc()).limit(limit)))



def job_dict(job: CatalogueImport) -> dict[str, Any]:
    """The JSON status: state, progress and, once done, the result in ImportResultSchema's shape."""
    return {"id": job.id, "state": job.state, "state_label": job.state_label, "year": job.year,
            "filename": job.filename, "rows_total": job.rows_total, "rows_done": job.rows_done, "error": job.error,
            "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at,
            "status_url": f"/projects/api/catalogue/imports/{job.id}",
            "page_url": f"/projects/catalogue/imports/{job.id}", "file_cleared_at": job.cleared_at,
            "result": job.result if job.state == "done" else None}


# ---------------------------------------------------------------- the run (projects-jobs worker)

def _progress(engine: Engine, job_id: int, done: int, total: int) -> None:
    """Written on a connection of its own and committed at once: the import's transaction is not committed until
    its end, and the page must see how far it got meanwhile."""
    with engine.begin() as conn:
        conn.execute(update(CatalogueImport).where(CatalogueImport.id == job_id, CatalogueImport.state == "running")
                     .values(rows_done=done, rows_total=total))


def run_import(session: Session, job_id: int) -> str:
    """Claim the job, read its workbook, apply every row in one transaction with the audit entry, and keep the
    result. Returns the job's state ('missing' for no such job); a job not queued is left as it is."""
    claimed, job = jobs.claim(session, CatalogueImport, job_id)
    if not claimed or job is None:
        return job.state if job is not None else "missing"
    try:
        rows = read_workbook(job.data or b"")  # a queued job's file is kept (the retention takes ended jobs only)
    except AppError as exc:  # not a workbook, no header, too many rows: the clerk corrects the file
        fail(session, job_id, exc.message)
        return "failed"
    session.commit()  # the file's read: no transaction is held while waiting for the lock below
    engine = session.get_bind().engine  # type: ignore[union-attr]
    total = len(rows)
    _progress(engine, job_id, 0, total)
    xact_lock(session, LOCK)
    # SQLite has one writer at a time: a second connection would wait on this transaction's own lock
    live = engine.dialect.name != "sqlite"
    result = import_rows(session, rows, job.year,
                         progress=(lambda done: _progress(engine, job_id, done, total)) if live else None)
    _audit(session, job, result)
    job.state, job.finished_at = "done", clock.now()
    job.rows_total = job.rows_done = total
    job.result = result.as_dict()
    job.report_xlsx = report_workbook(result) if result.errors or result.updates else None
    session.commit()
    return job.state


def _audit(session: Session, job: CatalogueImport, result: ImportResult) -> None:
    """An import changes what every filing is judged by: who uploaded it, when and what it changed is kept, in the
    transaction that applies it."""
    session.add(AuditLog(actor=job.actor, actor_name=job.actor_name, object_type="catalogue",
                         object_id=job.year or 0, action="imported", at=clock.now(),
                         reason=f"导入项目目录：新增 {result.created} 项，更新 {result.updated} 项，"
                                f"未变 {result.unchanged} 项，出错 {len(result.errors)} 行" + _updated_text(result)))


def _updated_text(result: ImportResult, most: int = 30) -> str:
    """Which projects an import changed, and what: the audit log must tell a mistaken import from another."""
    if not result.updates:
        return ""
    shown = "；".join(f"{u.number}（{u.details or u.changed}）" for u in result.updates[:most])
    more = f" 等 {len(result.updates)} 项" if len(result.updates) > most else ""
    return f"。更新：{shown}{more}"


def fail(session: Session, job_id: int, message: str) -> None:
    jobs.fail(session, CatalogueImport, job_id, message)


def report_workbook(result: ImportResult) -> bytes:
    """出错的行 (行号, 项目编号, 错误) and 已更新的项目, whole: the page shows the first SHOWN_ROWS of each."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    from services.common.sheets import text_row

    wb = Workbook()
    ws = wb.active
    ws.title = "出错的行"
    ws.append(["行号", "项目编号", "错误"])
    for e in result.errors:
        ws.append(text_row(ws, [e.row, e.number, e.reason]))
    updated = wb.create_sheet("已更新的项目")
    updated.append(["行号", "项目编号", "更新的列", "更新内容（原 → 新）"])
    for u in result.updates:
        updated.append(text_row(updated, [u.row, u.number, u.changed, u.details]))
    for sheet, widths in ((ws, (8, 20, 80)), (updated, (8, 20, 30, 80))):
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for col, width in zip("ABCD", widths, strict=False):
            sheet.column_dimensions[col].width = width
        sheet.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
