"""The life of a background job's row as its page sees it (a certificate export, a catalogue import or export):
each service keeps its own job table with `state` (queued, running, done, failed), `created_at`, `enqueued_at`,
`started_at`, `finished_at` and `error`; these rules read and mend such a row the same way everywhere."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from . import clock

# queued longer than this: the worker is down or busy, the page says so and sends the job's message again
SLOW_QUEUE = dt.timedelta(minutes=2)


def waited_minutes(job: Any, slow: dt.timedelta = SLOW_QUEUE) -> int | None:
    """Minutes a job has been 排队中, once that is long; None otherwise."""
    if job.state != "queued" or job.created_at >= clock.now() - slow:
        return None
    return int((clock.now() - job.created_at).total_seconds() // 60)


def needs_resend(job: Any, after: dt.timedelta = SLOW_QUEUE) -> bool:
    """A queued job whose message got lost (Redis down at the time) is sent again by its page."""
    return job.state == "queued" and (job.enqueued_at is None or job.enqueued_at < clock.now() - after)


def fail_if_killed(job: Any, time_limit: int, message: str) -> bool:
    """A job still running past its task's hard time limit was killed with its worker (the limit itself, an OOM
    kill, a restart) and will never end: it is failed with `message`, so its page offers to try again instead of
    showing progress for good. True when it changed (the caller commits)."""
    if job.state != "running" or (job.started_at or job.created_at) > clock.now() - dt.timedelta(seconds=time_limit):
        return False
    job.state, job.error, job.finished_at = "failed", message, clock.now()
    return True


def mend(session: Session, job: Any, time_limit: int, killed: str, send: Callable[[Session, Any], None]) -> Any:
    """What a job's page (and its status API) does, each time it is read, for a job that would otherwise never end:
    a run killed past `time_limit` is failed with `killed` (committed), a queued job whose message was lost is sent
    again with `send(session, job)`. Returns the job."""
    if fail_if_killed(job, time_limit, killed):
        session.commit()
    if needs_resend(job):
        send(session, job)
    return job


def claim(session: Session, model: Any, job_id: int) -> tuple[bool, Any]:
    """(claimed, the job or None): queued → running, once (UPDATE … WHERE state = 'queued', committed), so a message
    delivered twice runs the job once; a job not queued is left as it is."""
    claimed = session.execute(update(model).where(model.id == job_id, model.state == "queued")
                              .values(state="running", started_at=clock.now())).rowcount
    session.commit()
    return bool(claimed), session.get(model, job_id)


def fail(session: Session, model: Any, job_id: int, message: str) -> None:
    """The job failed with `message` (what its user does next); whatever its transaction wrote is rolled back. A job
    already ended is left as it is."""
    session.rollback()
    now = clock.now()
    job = session.get(model, job_id)
    if job is not None and job.state in ("queued", "running"):
        job.state, job.error, job.finished_at = "failed", message, now
        job.started_at = job.started_at or now
        session.commit()
