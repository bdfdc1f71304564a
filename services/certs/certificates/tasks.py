"""The render task on its own queue ("certs-render"), so a big institution export never delays the event consumer.

The web sends the job id (JSON, never pickle) after its commit; the worker (services.certs.worker) registers
render_export below. Tests call run_render(job_id) directly.
"""

from __future__ import annotations

import logging

from celery.exceptions import SoftTimeLimitExceeded

from services.common import clock
from services.common.logs import brief

from ..db import db

log = logging.getLogger(__name__)

RENDER_QUEUE = "certs-render"
# what the export's page tells the doctor or the office (an exception's class name, SoftTimeLimitExceeded, told
# neither anything)
FAILED = "学分证书生成失败，请重新导出；如仍失败，请联系陕西省继续医学教育委员会。"
FAILED_TIMEOUT = ("学分证书生成超时（一次导出的证书较多或系统繁忙），请稍后重新导出；"
                  "如仍失败，请联系陕西省继续医学教育委员会。")
TASK_NAME = "certs.render_export"
# the render task's hard time limit (seconds; the soft one, 300 s before, fails the job in Chinese): a job still
# "running" after it was killed with its worker process, and never ends
RENDER_TIME_LIMIT = 1800


def run_render(job_id: int) -> str:
    """The task body: render one export job (idempotent: a finished job is left alone)."""
    from .services import fail_job, run_export

    session = db.new_session()
    try:
        state = run_export(session, job_id)
        log.info("export %s %s", job_id, state)
        return state
    except Exception as exc:
        log.exception("export %s failed", job_id)  # what failed is for the log; the page says what to do
        fail_job(session, job_id, FAILED_TIMEOUT if isinstance(exc, SoftTimeLimitExceeded) else FAILED)
        return "failed"
    finally:
        session.close()


def enqueue(job_id: int) -> bool:
    """Send the job to the render queue; False when the broker is unreachable (the progress page retries)."""
    from ..worker import celery

    try:
        celery.send_task(TASK_NAME, args=[job_id], queue=RENDER_QUEUE)
        return True
    except Exception as exc:  # noqa: BLE001 - the job stays queued and is sent again later
        log.warning("export %s not queued: %s", job_id, brief(exc))
        return False


def send(session, job) -> None:  # type: ignore[no-untyped-def]
    """After the commit that created (or found stale) the job: queue it and remember when."""
    if enqueue(job.id):
        job.enqueued_at = clock.now()
        session.commit()
