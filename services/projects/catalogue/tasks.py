"""The catalogue's jobs, on the projects worker's queue of their own ("projects-jobs", services/projects/worker.py):
项目目录 导入 (a workbook applied) and 导出 Excel of a long list (an .xlsx written). A 20 s import on the
"projects" queue held up the events there (decision SMS, award lists); a worker of its own, one job at a time,
keeps them apart.

The web sends the job id (JSON, never pickle) after the commit that stored the job; tests replace `enqueue` and call
run_import_job(job_id) / run_export_job(job_id) directly, as the worker would.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.orm import Session

from services.common import clock
from services.common.logs import brief
from services.common.tasks import register_daily_task

from ..db import db
from . import exports, imports, retention
from .models import CatalogueExport, CatalogueImport

log = logging.getLogger(__name__)

TASK = "projects.import_catalogue"
EXPORT_TASK = "projects.export_catalogue"
SWEEP_TASK = "projects.clear_catalogue_files"
QUEUE = "projects-jobs"


def run_import_job(job_id: int) -> str:
    """The task body: apply one import job (idempotent: a job not queued is left alone)."""
    return _run("import", imports, imports.run_import, job_id)


def run_export_job(job_id: int) -> str:
    """The task body: write one export job's .xlsx (idempotent: a job not queued is left alone)."""
    return _run("export", exports, exports.run_export, job_id)


def _run(what: str, module: Any, body: Callable[[Session, int], str], job_id: int) -> str:
    """Run a job in a session of its own; an exception fails it with the module's sentence (a timeout's own)."""
    session = db.new_session()
    try:
        state = body(session, job_id)
        log.info("catalogue %s %s %s", what, job_id, state)
        return state
    except Exception as exc:
        log.exception("catalogue %s %s failed", what, job_id)  # what failed is for the log; the page says what to do
        module.fail(session, job_id, module.FAILED_TIMEOUT if isinstance(exc, SoftTimeLimitExceeded)
                    else module.FAILED)
        return "failed"
    finally:
        session.close()


def _send_task(task: str, job_id: int) -> bool:
    """Send the job to the projects-jobs queue; False when the broker is unreachable (the job's page sends it
    again)."""
    from ..worker import celery

    try:
        celery.send_task(task, args=[job_id], queue=QUEUE)
        return True
    except Exception as exc:  # noqa: BLE001 - the job stays queued and is sent again later
        log.warning("catalogue job %s %s not queued: %s", task, job_id, brief(exc))
        return False


def enqueue(job_id: int) -> bool:
    return _send_task(TASK, job_id)


def enqueue_export(job_id: int) -> bool:
    return _send_task(EXPORT_TASK, job_id)


def send(session: Session, job: CatalogueImport | CatalogueExport) -> None:
    """After the commit that stored (or found unsent) the job: queue it and remember when."""
    if (enqueue_export if isinstance(job, CatalogueExport) else enqueue)(job.id):
        job.enqueued_at = clock.now()
        session.commit()


def register(celery: Celery) -> tuple[Any, Any]:
    """Both tasks, routed to QUEUE (task_routes: a task's own `queue` attribute is deprecated). acks_late
    (make_celery): a worker killed mid-job gives the message back; the claim skips a job already begun, and its
    page fails it past the hard limit."""
    celery.conf.task_routes = {**(celery.conf.task_routes or {}), TASK: {"queue": QUEUE},
                               EXPORT_TASK: {"queue": QUEUE}}

    def task(name: str, limit: int, body: Callable[[int], str]) -> Any:
        return celery.task(name=name, acks_late=True, ignore_result=True, soft_time_limit=limit - 60,
                           time_limit=limit)(body)

    return task(TASK, imports.TIME_LIMIT, run_import_job), task(EXPORT_TASK, exports.TIME_LIMIT, run_export_job)


def register_sweep(celery: Celery) -> Any:
    """The daily retention of the jobs' files (catalogue/retention.py), on QUEUE beside the jobs that write them;
    the beat in services/projects/worker.py starts it. Idempotent: a second run finds nothing more to clear."""
    celery.conf.task_routes = {**(celery.conf.task_routes or {}), SWEEP_TASK: {"queue": QUEUE}}
    return register_daily_task(celery, SWEEP_TASK, db, retention.sweep, "catalogue files sweep")
