"""Celery for every service: Redis broker, JSON only, a queue per service, late acks so a killed
worker's message is redelivered, and the generic event-consumer task, whose worker asks its producers on start
to send again what a killed predecessor may have lost (services.common.redelivery)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from celery import Celery
from celery.signals import setup_logging as celery_setup_logging
from celery.signals import worker_ready, worker_shutdown
from sqlalchemy import Table
from sqlalchemy.orm import Session

from . import clock
from .config import env, get_settings, redis_client
from .db import ServiceDB
from .events import Handler, consume_all, describe
from .logs import brief, setup_logging
from .redelivery import (
    HEARTBEAT,
    LOST,
    UNCLEAN,
    owe_redelivery,
    request_redelivery,
    worker_alive,
    worker_started,
    worker_stopped,
)

log = logging.getLogger(__name__)


def transport_options() -> dict[str, Any]:
    """Redis transport: a message taken by a worker that died unacknowledged (SIGKILL, a lost machine) is given
    back after CME_CELERY_VISIBILITY_TIMEOUT seconds (default 600). A shorter timeout (the fault tests) also
    sweeps for such messages that often, instead of kombu's default every 100 s."""
    visibility = int(env("CME_CELERY_VISIBILITY_TIMEOUT", "600"))
    options: dict[str, Any] = {"visibility_timeout": visibility}
    if visibility < 600:
        options.update(unacked_restore_interval=max(1, visibility // 4), unacked_restore_throttle=1)
    return options


def make_celery(service: str) -> Celery:
    settings = get_settings()
    app = Celery(f"cme-{service}", broker=settings.redis_url, backend=None)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],  # never pickle
        result_serializer="json",
        task_default_queue=service,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        broker_transport_options=transport_options(),
        worker_hijack_root_logger=False,
        timezone="Asia/Shanghai",
        enable_utc=True,
    )

    # A receiver of this signal replaces Celery's own logging set-up, in workers and beats alike: their lines
    # then carry the same format and personal-data scrubbing as the web apps' and relays'.
    @celery_setup_logging.connect(weak=False, dispatch_uid=f"cme-logging-{service}")
    def _log_as_the_suite(loglevel: int | str | None = None, **_: Any) -> None:
        role = "beat" if "beat" in sys.argv[1:] else "worker"
        setup_logging(f"{role}-{_queue_of(sys.argv[1:]) or service}", loglevel or logging.INFO)

    return app


def _queue_of(argv: list[str]) -> str | None:
    """The one queue a worker was started on (-Q certs-render): its lines are tagged with the process's name,
    worker-certs-render, not worker-certs, so the two workers of one service are told apart in the logs."""
    for i, arg in enumerate(argv):
        value = argv[i + 1] if arg in ("-Q", "--queues") and i + 1 < len(argv) else (
            arg.split("=", 1)[1] if arg.startswith("--queues=") else None)
        if value and "," not in value:
            return value
    return None


Handlers = dict[str, Handler]


def _retry_in(retries: int) -> int:
    return min(60, 2 ** min(retries, 6))


def _argsrepr(envelopes: list[dict[str, Any]]) -> str:
    """A retry's headers name its events as the relay's message did, not Celery's repr of the envelopes."""
    return describe([(str(e.get("name")), str(e.get("id"))) for e in envelopes])


def _log_outcome(envelope: dict[str, Any], done: bool) -> None:
    log.info("event %s %s %s", envelope.get("name"), envelope.get("id"), "applied" if done else "skipped")


def _apply_together(sdb: ServiceDB, processed: Table, handlers: Handlers,
                    envelopes: list[dict[str, Any]]) -> tuple[list[bool], Exception | None]:
    """These events in one transaction of their own, each logged once committed (a line says what the database
    kept): whether each was applied, or the error when the transaction failed and was rolled back."""
    session = sdb.new_session()
    try:
        outcomes = consume_all(session, processed, envelopes, handlers)
        session.commit()
    except Exception as exc:
        session.rollback()
        return [], exc
    finally:
        session.close()
    for envelope, done in zip(envelopes, outcomes, strict=True):
        _log_outcome(envelope, done)
    return outcomes, None


def _failed(envelope: dict[str, Any], exc: Exception) -> None:
    log.warning("event %s %s failed, will retry: %s", envelope.get("name"), envelope.get("id"), brief(exc))


def apply_events(sdb: ServiceDB, processed: Table, handlers: Handlers,
                 envelopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Apply a message's events; returns those that failed (to be retried), each of the others applied once.

    All of them in one transaction first, their ids claimed by one statement (events.consume_all): a hall's
    check-ins reach credits by the hundred, and a commit, a session and a task per event were most of the
    worker's time. When one of them fails, that transaction is rolled back and each event is applied in its
    own, so one that cannot be applied yet holds back no other."""
    if len(envelopes) > 1:
        _outcomes, exc = _apply_together(sdb, processed, handlers, envelopes)
        if exc is None:
            return []
        log.info("%d events together failed (%s): one at a time", len(envelopes), brief(exc))
    failed = []
    for envelope in envelopes:
        _outcomes, exc = _apply_together(sdb, processed, handlers, [envelope])
        if exc is not None:
            _failed(envelope, exc)
            failed.append(envelope)
    return failed


def register_event_consumer(celery: Celery, service: str, sdb: ServiceDB, processed: Table,
                            handlers: Handlers) -> Any:
    """The service's event tasks: ``<service>.handle_events`` (a list of envelopes, what the relay sends) and
    ``<service>.handle_event`` (one envelope: a message queued by an older relay is still applied)."""

    @celery.task(name=f"{service}.handle_events", bind=True, max_retries=None, acks_late=True)
    def handle_events(task: Any, envelopes: list[dict[str, Any]]) -> int:
        failed = apply_events(sdb, processed, handlers, envelopes)
        if failed:
            # only what failed comes back later; the others are kept (and skipped if this message comes again)
            raise task.retry(args=[failed], countdown=_retry_in(task.request.retries),
                             exc=RuntimeError(f"{len(failed)} of {len(envelopes)} event(s) failed"),
                             argsrepr=_argsrepr(failed), kwargsrepr="{}")
        return len(envelopes)

    @celery.task(name=f"{service}.handle_event", bind=True, max_retries=None, acks_late=True)
    def handle_event(task: Any, envelope: dict[str, Any]) -> bool:
        outcomes, exc = _apply_together(sdb, processed, handlers, [envelope])
        if exc is not None:
            _failed(envelope, exc)
            raise task.retry(exc=exc, countdown=_retry_in(task.request.retries), argsrepr=_argsrepr([envelope]),
                             kwargsrepr="{}") from exc
        return outcomes[0]

    def ask(why: str, dead: list[str]) -> None:
        asked = ", ".join(sorted(request_redelivery(sdb.engine, processed, service, handlers, redis_client(), why)))
        if why in (UNCLEAN, LOST):
            log.warning("%s stopped without a warm shutdown: asked %s to send again what may have been lost",
                        ", ".join(dead), asked or "no producer")
        else:
            log.info("no record of %s's earlier workers: asked %s to send again what may have been lost", service,
                     asked or "no producer")

    def look(node: str, started: list[bool]) -> None:
        """On start, then on each heartbeat: the start recorded (again, until Redis took it), or the mark refreshed;
        a resend asked for what the record says may be lost. A request that could not be written (the database or
        Redis gone meanwhile) stays owed in the record, and the next heartbeat asks it."""
        client = redis_client()
        if not started:
            why, dead = worker_started(client, service, node)
            started.append(True)
            if why is None:
                log.info("%s's earlier workers stopped cleanly: nothing to send again", service)
                return
        else:
            why, dead = LOST, worker_alive(client, service, node)
            if not dead:
                return
        try:
            ask(why, dead)
        except Exception:
            owe_redelivery(client, service, dead or [node])
            raise

    def heartbeat(node: str, started: list[bool]) -> None:
        try:
            look(node, started)
        except Exception as exc:  # broker or database gone meanwhile: the next heartbeat looks again
            log.warning("could not ask for redelivery: %s", brief(exc))

    @worker_ready.connect(weak=False)
    def ask_for_redelivery(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is not celery:  # another service's app in this process
            return
        node, started = str(sender.hostname), []  # started: [True] once this start is in the record
        heartbeat(node, started)
        sender.timer.call_repeatedly(HEARTBEAT, heartbeat, (node, started))

    @worker_shutdown.connect(weak=False)
    def stopped_cleanly(sender: Any = None, **_: Any) -> None:
        # a warm shutdown, the only one that sends this signal with exit code 0: a failure (an unrecoverable
        # error) leaves the mark, and the next start asks
        if getattr(sender, "app", None) is not celery or getattr(sender, "exitcode", None) not in (0, None):
            return
        try:
            worker_stopped(redis_client(), service, str(sender.hostname))
        except Exception as exc:  # broker gone: the next start asks, which is safe
            log.warning("could not record the clean stop: %s", brief(exc))

    return handle_event


def register_daily_task(celery: Celery, name: str, sdb: ServiceDB, run: Callable[[Session, Any], dict[str, Any]],
                        what: str) -> Any:
    """A task a beat starts once a day: `run(session, today)` on a session of its own, for Shanghai's today by
    the suite's clock. `run` must be idempotent (claim each message before sending), since a redelivery
    (acks_late) or a second beat runs it again."""
    @celery.task(name=name, acks_late=True, ignore_result=True)
    def daily() -> dict[str, Any]:
        session = sdb.new_session()
        try:
            return run(session, clock.today_local())
        except Exception:
            session.rollback()
            log.exception("%s failed", what)
            raise
        finally:
            session.close()

    return daily
