"""The outbox relay: moves committed events from a producer's outbox to each consumer's Celery queue.

Run one per producing service: python -m services.common.relay projects
A row is marked sent only after the broker accepted it, so Redis being down delays but never loses.
Several relays may run at once on PostgreSQL (rows are claimed with SKIP LOCKED).

When the relay finds the broker gone, the rows it sent in the CME_RELAY_RESEND_SECONDS (60) before are sent
again once it is back: a worker that took a message off its queue just as Redis stopped may not have recorded
it as unacknowledged yet (kombu's Redis transport pops first, records after), and that message would be lost.
Consumers skip an event id they have processed, so the copies that did arrive change nothing.

A consumer's worker that starts asks for the same after a crash (services.common.redelivery): the relay acts on
that request on its next round.

Once an hour the relay deletes the outbox rows sent more than CME_OUTBOX_KEEP_DAYS (30) days ago, and the
processed event ids older than twice that: a check-in's event carries its encrypted ID number and mobile, and
every scan of the year would otherwise stay in two tables for ever. A redelivery asks only for what was sent
since recent events, and every id it could bring again is still among the processed ones. 0 keeps everything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import signal
import time
from collections.abc import Iterator, Sequence
from typing import Any

from celery import Celery
from celery.utils.nodenames import anon_nodename
from sqlalchemy import MetaData, delete, select, update
from sqlalchemy.engine import Connection, Engine

from . import clock
from .config import env, get_settings, redis_client
from .db import build_engine, ensure_database
from .events import describe, outbox_tables
from .logs import brief, setup_logging
from .redelivery import serve_requests
from .tasks import make_celery

log = logging.getLogger("relay")


BATCH = 200
# events in one message: a worker applies a message's events in one transaction, and a message per consumer of
# a whole batch would keep one busy while another of the same queue waits
PER_MESSAGE = 50
# one Table for the process: a new one each round missed SQLAlchemy's statement cache (each round compiled its
# statements again, ~3 ms)
OUTBOX, PROCESSED = outbox_tables(MetaData())
PRUNE_EVERY = 3600.0  # seconds between two prunes of a relay
ORIGIN = anon_nodename()  # what Celery would name the sender on every message


class BrokerLink:
    """The relay's connection to the broker, kept from round to round and dropped after any failure.

    With a new kombu connection each round (redis-py's connection set-up, kombu's channel, the queue declared
    again) a round of 5 events cost 17-22 ms of CPU, now 6-7 ms: while a hall checks in, the relay goes round
    every --gather seconds. Kept, each consumer's queue is declared once (kombu remembers it per connection).
    After a failure the next round connects afresh, so a restarted Redis (which keeps nothing here) gets its
    queues declared again; a connection that died while idle fails one round, like a broker outage.
    """

    def __init__(self, celery: Celery):
        self.celery = celery
        self.connection: Any = None

    def get(self) -> Any:
        if self.connection is None:
            connection = self.celery.connection_for_write()
            try:
                # fail fast instead of kombu's endless reconnect loop, so SIGTERM and backoff keep working
                connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
            except Exception:
                connection.release()
                raise
            self.connection = connection
        return self.connection

    def drop(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.release()
            except Exception:  # already broken: nothing to give back
                pass


def relay_once(engine: Engine, celery: Celery, batch: int = BATCH, link: BrokerLink | None = None,
               per_message: int = PER_MESSAGE) -> int:
    """Send pending outbox rows; -1 when the broker is unreachable (rows stay pending).
    link: the connection kept between rounds (main); without one, a connection for this round only."""
    own = link is None
    link = link or BrokerLink(celery)
    try:
        return _relay_once(engine, celery, batch, link, per_message)
    finally:
        if own:
            link.drop()


def _relay_once(engine: Engine, celery: Celery, batch: int, link: BrokerLink, per_message: int) -> int:
    outbox = OUTBOX
    with engine.connect() as conn:
        query = select(outbox).where(outbox.c.sent_at.is_(None)).order_by(outbox.c.id).limit(batch)
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = conn.execute(query).fetchall()
        if not rows:
            conn.commit()
            return 0
        try:
            broker = link.get()
        except Exception as exc:  # broker down: keep every row, try again later
            _keep_pending(conn, rows, exc)
            log.warning("broker unavailable, %d event(s) waiting: %s", len(rows), brief(exc))
            return -1
        # One Redis pipeline for the whole batch (kombu's publish batch, flushed when the block ends): a round trip
        # and a Redis client object per event were most of the relay's CPU during a burst of check-ins. The
        # argument's repr that Celery writes into every message's headers (the envelopes: names, encrypted ID
        # numbers) is replaced by the events' names and ids (events.describe).
        # Rows are marked sent only once the pipeline went out; a failed flush leaves all of them pending (a copy
        # that did arrive is sent again and skipped by the consumer's processed ids).
        try:
            producer = celery.amqp.Producer(broker)
            # each consumer's queue declared here, once per connection (kombu remembers it), not for every
            # message: Celery's own declaration copies and binds the queue each time, a fifth of the relay's CPU
            for consumer in sorted({row.consumer for row in rows}):
                producer.maybe_declare(celery.amqp.queues[consumer])
            # One message carries up to per_message events for one consumer, in the outbox's order: a message
            # per event cost the relay Celery's building of each and the consumer's worker a task (the pipe to
            # its child, a session, a commit) for each. Its task id is the send of its first row (event,
            # consumer, attempt: unique, and a worker's log line leads back to the outbox) and its origin this
            # process, named once: Celery's defaults, a uuid4 and the host's name looked up for every message.
            with producer.batch():
                for consumer, group in _messages(rows, per_message):
                    first = group[0]
                    celery.send_task(f"{consumer}.handle_events", args=[[json.loads(r.envelope) for r in group]],
                                     task_id=f"{first.event_id}.{consumer}.{first.attempts + 1}",
                                     origin=ORIGIN, queue=consumer, retry=False, producer=producer,
                                     declare=[], argsrepr=describe([(r.name, r.event_id) for r in group]),
                                     kwargsrepr="{}")
        except Exception as exc:
            link.drop()
            _keep_pending(conn, rows, exc)
            log.warning("broker refused a batch, %d event(s) waiting: %s", len(rows), brief(exc))
            return -1
        conn.execute(update(outbox).where(outbox.c.id.in_([r.id for r in rows])).values(
            sent_at=clock.now(), attempts=outbox.c.attempts + 1))
        conn.commit()
    return len(rows)


def _messages(rows: Sequence[Any], per_message: int = PER_MESSAGE) -> Iterator[tuple[str, list[Any]]]:
    """The rows grouped by consumer, in order, at most per_message to a message."""
    by_consumer: dict[str, list[Any]] = {}
    for row in rows:
        by_consumer.setdefault(row.consumer, []).append(row)
    for consumer, group in by_consumer.items():
        for start in range(0, len(group), per_message):
            yield consumer, group[start:start + per_message]


def _keep_pending(conn: Connection, rows: Sequence[Any], exc: Exception) -> None:
    """The whole batch stays pending for a later round, this attempt and its error counted on each row."""
    conn.execute(update(OUTBOX).where(OUTBOX.c.id.in_([r.id for r in rows])).values(
        attempts=OUTBOX.c.attempts + 1, last_error=brief(exc)))
    conn.commit()


def resend_recent(engine: Engine, seconds: float) -> int:
    """Mark the rows sent in the last `seconds` as pending again (see the module's docstring); how many."""
    outbox = OUTBOX
    with engine.begin() as conn:
        result = conn.execute(update(outbox).where(
            outbox.c.sent_at >= clock.now() - dt.timedelta(seconds=seconds)).values(sent_at=None))
    return result.rowcount or 0


def prune(engine: Engine, keep_days: float) -> tuple[int, int]:
    """Delete the outbox rows sent before `keep_days` ago and the processed ids older than twice that; how many of
    each. One statement each: the outbox's by its sent_at index, the processed ids by one scan an hour."""
    if keep_days <= 0:
        return 0, 0
    now = clock.now()
    with engine.begin() as conn:
        sent = conn.execute(delete(OUTBOX).where(OUTBOX.c.sent_at < now - dt.timedelta(days=keep_days))).rowcount
        seen = conn.execute(delete(PROCESSED).where(
            PROCESSED.c.processed_at < now - dt.timedelta(days=2 * keep_days))).rowcount
    return sent or 0, seen or 0


def pause_after(sent: int, backoff: float, gather: float) -> float:
    """Seconds to wait before the next round: none after a full batch (more are waiting), `gather` after a
    partial one (events arriving one by one, as in a hall checking in: a few gather, so a round's claim, update
    and commit are shared by tens of events, not paid by each), `backoff` when nothing was sent or it failed."""
    if sent >= BATCH:
        return 0.0
    return gather if sent > 0 else backoff


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("service")
    parser.add_argument("--interval", type=float, default=0.3)
    parser.add_argument("--gather", type=float, default=float(env("CME_RELAY_GATHER_SECONDS", "0.1")))
    # a string default goes through type=int too: a misspelt setting is argparse's message, not a traceback
    parser.add_argument("--per-message", type=int, default=env("CME_RELAY_EVENTS_PER_MESSAGE", str(PER_MESSAGE)))
    args = parser.parse_args(argv)
    if not 1 <= args.per_message <= BATCH:
        parser.error(f"CME_RELAY_EVENTS_PER_MESSAGE must be between 1 and {BATCH}")
    setup_logging(f"relay-{args.service}")
    url = get_settings().service_database_url(args.service)
    ensure_database(url)
    engine = build_engine(url)
    celery = make_celery("relay")
    link = BrokerLink(celery)
    asks = redis_client()
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        # the log's last line says why the relay ended (the person on call reads it first)
        log.info("relay for %s stopping on %s", args.service, signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("relay for %s started", args.service)
    backoff = args.interval
    resend_seconds = float(env("CME_RELAY_RESEND_SECONDS", "60"))
    keep_days = float(env("CME_OUTBOX_KEEP_DAYS", "30"))
    pruned_at = 0.0
    broker_up = True
    while not stopping:
        if time.monotonic() - pruned_at >= PRUNE_EVERY:
            pruned_at = time.monotonic()
            try:
                sent, seen = prune(engine, keep_days)
                if sent or seen:
                    log.info("pruned %d sent event(s) and %d processed id(s) older than %g days", sent, seen,
                             keep_days)
            except Exception as exc:  # database restarting: an hour later again
                log.warning("relay prune error: %s", brief(exc))
        try:
            n = relay_once(engine, celery, link=link, per_message=args.per_message)
        except Exception as exc:  # database restarting: wait and go on
            log.warning("relay error: %s", brief(exc))
            n = -2
        if n == -1 and broker_up and resend_seconds > 0:  # the broker just went away
            try:
                again = resend_recent(engine, resend_seconds)
                broker_up = False
                log.warning("broker lost: %d event(s) sent in the last %.0f s will be sent again", again,
                            resend_seconds)
            except Exception as exc:  # the database too: try again on the next round
                log.warning("relay error: %s", brief(exc))
        elif n >= 0:
            broker_up = True
            try:
                serve_requests(engine, asks, args.service, resend_seconds)
            except Exception as exc:  # broker or database gone meanwhile: the request waits for the next round
                log.warning("relay error: %s", brief(exc))
        if n < 0:
            backoff = min(5.0, backoff * 2)
        else:
            backoff = args.interval
        time.sleep(pause_after(n, backoff, args.gather))
    link.drop()
    log.info("relay for %s stopped", args.service)


if __name__ == "__main__":
    main()
