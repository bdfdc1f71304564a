"""How long the catalogue jobs keep their files: an uploaded import workbook (up to 10 MB) and an export's .xlsx are
dropped CME_CATALOGUE_FILES_DAYS (30) days after their job ended; the job's row stays with its counts, errors and
(for an import) its audit entry, and its page says when the file was cleared. Run once a day by the projects beat
(services/projects/worker.py) on the projects-jobs queue; `0` keeps every file.

The import's error list (report_xlsx) stays: it is the job's result, which is kept, written as a sheet.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.orm import Session

from services.common import clock
from services.common.config import env

from .models import CatalogueExport, CatalogueImport

log = logging.getLogger(__name__)

DEFAULT_DAYS = 30


def files_days() -> int:
    """Days a finished job keeps its file; 0 keeps every file (a malformed or negative value: the default)."""
    try:
        days = int(env("CME_CATALOGUE_FILES_DAYS", str(DEFAULT_DAYS)) or DEFAULT_DAYS)
    except ValueError:
        return DEFAULT_DAYS
    return days if days >= 0 else DEFAULT_DAYS


def sweep(session: Session, today: dt.date | None = None) -> dict[str, Any]:
    """Drop the files of the jobs that ended more than files_days() ago (one UPDATE a table, committed); a job
    still queued or running is never touched. Idempotent: a file already dropped is not counted again."""
    days = files_days()
    if days == 0:
        return {"days": 0, "imports": 0, "exports": 0}
    now = clock.now()
    cutoff = now - dt.timedelta(days=days)
    imports = session.execute(
        update(CatalogueImport)
        .where(CatalogueImport.state.in_(("done", "failed")), CatalogueImport.cleared_at.is_(None),
               func.coalesce(CatalogueImport.finished_at, CatalogueImport.created_at) < cutoff)
        .values(data=None, cleared_at=now)).rowcount
    exports = session.execute(
        update(CatalogueExport)
        .where(CatalogueExport.state == "done", CatalogueExport.cleared_at.is_(None),
               func.coalesce(CatalogueExport.finished_at, CatalogueExport.created_at) < cutoff)
        .values(data=None, cleared_at=now)).rowcount
    session.commit()
    if imports or exports:
        log.info("catalogue files older than %d days cleared: %d import(s), %d export(s)", days, imports, exports)
    return {"days": days, "imports": imports, "exports": exports}
