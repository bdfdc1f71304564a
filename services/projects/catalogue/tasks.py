"""The catalogue import task, on the projects queue (services/projects/worker.py registers it).

The web sends the job id (JSON, never pickle) after the commit that stored the job; tests replace `enqueue` and call
run_import_job(job_id) directly, as the worker would.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.orm import Session

from services.common import clock
from services.common.logs import brief

from ..db import SERVICE, db
from . import imports
from .models import CatalogueImport

log = logging.getLogger(__name__)

TASK = "projects.import_catalogue"
QUEUE = SERVICE


def run_import_job(job_id: int) -> str:
    """The task body: apply one import job (idempotent: a job not queued is left alone)."""
    session = db.new_session()
    try:
        state = imports.run_import(session, job_id)
        log.info("catalogue import %s %s", job_id, state)
        return state
    except Exception as exc:
        log.exception("catalogue import %s failed", job_id)  # what failed is for the log; the page says what to do
        imports.fail(session, job_id, imports.FAILED_TIMEOUT if isinstance(exc, SoftTimeLimitExceeded)
                     else imports.FAILED)
        return "failed"
    finally:
        session.close()


def enqueue(job_id: int) -> bool:
    """Send the job to the projects queue; False when the broker is unreachable (the job's page sends it again)."""
    from ..worker import celery

    try:
        celery.send_task(TASK, args=[job_id], queue=QUEUE)
        return True
    except Exception as exc:  # noqa: BLE001 - the job stays queued and is sent again later
        log.warning("catalogue import %s not queued: %s", job_id, brief(exc))
        return False


def send(session: Session, job: CatalogueImport) -> None:
    """After the commit that stored (or found unsent) the job: queue it and remember when."""
    if enqueue(job.id):
        job.enqueued_at = clock.now()
        session.commit()


def register(celery: Celery) -> Any:
    # acks_late (make_celery): a worker killed mid-import gives the message back; the claim skips a job already
    # begun, and its page fails it past the hard limit
    return celery.task(name=TASK, acks_late=True, ignore_result=True, soft_time_limit=imports.TIME_LIMIT - 60,
                       time_limit=imports.TIME_LIMIT)(run_import_job)
