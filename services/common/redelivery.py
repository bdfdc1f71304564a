"""A consumer's worker, when it starts, asks its producers to send again what may have been lost on its queue.

kombu's Redis transport takes a message off the queue (BRPOP) and only then records it as unacknowledged; a
worker killed between the two (SIGKILL, the OOM killer, a lost machine) loses that message for good, and the
visibility timeout cannot bring back what was never recorded. Every killed worker is started again, so the
start is where this is mended: the worker tells each producer the last events it processed from it (a field
of the Redis hash ``cme:redeliver:<consumer>``), and that producer's relay marks as pending again every row
for this consumer sent since then, less a margin for concurrent workers (CME_RELAY_RESEND_SECONDS). The queue
is first in, first out, so what was sent after the last processed event is either still queued (its new copy
is skipped: consumers keep the ids they processed) or lost (its new copy is the one that counts).

A consumer that has processed nothing from a producer asks for everything that producer sent it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable

from redis import Redis
from sqlalchemy import MetaData, Table, func, select, update
from sqlalchemy.engine import Engine

from . import clock
from .events import CATALOGUE, outbox_tables

log = logging.getLogger(__name__)

RECENT = 20  # processed ids sent per producer: the oldest of them anchors the resend
# deletes the request only if it is still the one acted on (a newer start may have replaced it meanwhile)
_DELETE_IF_SAME = ("if redis.call('hget', KEYS[1], ARGV[1]) == ARGV[2] then "
                   "return redis.call('hdel', KEYS[1], ARGV[1]) end return 0")


def request_key(consumer: str) -> str:
    return f"cme:redeliver:{consumer}"


def names_by_producer(handled: Iterable[str]) -> dict[str, list[str]]:
    """The events a consumer handles, grouped by the service producing them."""
    grouped: dict[str, list[str]] = {}
    for name in sorted(handled):
        spec = CATALOGUE.get(name)
        if spec is not None:
            grouped.setdefault(spec.producer, []).append(name)
    return grouped


def consumers_of(producer: str) -> list[str]:
    return sorted({c for spec in CATALOGUE.values() if spec.producer == producer for c in spec.consumers})


def request_redelivery(engine: Engine, processed: Table, consumer: str, handled: Iterable[str],
                       client: Redis) -> dict[str, int]:
    """Write one request per producer: the ids of the RECENT events last processed from it. Returns how many
    ids each request carries (0: send everything)."""
    asked: dict[str, int] = {}
    with engine.connect() as conn:
        for producer, names in names_by_producer(handled).items():
            ids = list(conn.execute(select(processed.c.event_id).where(processed.c.name.in_(names))
                                    .order_by(processed.c.processed_at.desc()).limit(RECENT)).scalars())
            body = json.dumps({"at": clock.now().isoformat(), "after": ids})
            client.hset(request_key(consumer), producer, body)
            asked[producer] = len(ids)
    return asked


def resend_since_processed(engine: Engine, consumer: str, after: list[str], margin_seconds: float) -> int:
    """Mark pending again this consumer's rows sent since the oldest of `after` was (less the margin); every
    sent row of it when `after` is empty or unknown here. Returns how many rows."""
    outbox, _ = outbox_tables(MetaData())
    mine = outbox.c.consumer == consumer
    with engine.begin() as conn:
        anchor = None
        if after:
            anchor = conn.execute(select(func.min(outbox.c.sent_at)).where(
                mine, outbox.c.event_id.in_(after), outbox.c.sent_at.is_not(None))).scalar()
        since = outbox.c.sent_at.is_not(None) if anchor is None else (
            outbox.c.sent_at >= anchor - dt.timedelta(seconds=margin_seconds))
        result = conn.execute(update(outbox).where(mine, since).values(sent_at=None))
    return result.rowcount or 0


def serve_requests(engine: Engine, client: Redis, producer: str, margin_seconds: float) -> dict[str, int]:
    """The relay's part: act on each consumer's pending request to this producer, then remove it."""
    done: dict[str, int] = {}
    for consumer in consumers_of(producer):
        key = request_key(consumer)
        raw = client.hget(key, producer)
        if raw is None:
            continue
        try:
            after = [str(i) for i in json.loads(raw)["after"]]
        except (ValueError, KeyError, TypeError):
            after = []  # unreadable: sending everything again is safe
        done[consumer] = resend_since_processed(engine, consumer, after, margin_seconds)
        client.eval(_DELETE_IF_SAME, 1, key, producer, raw)
        # a warning when something is sent again (a worker was lost, or restarted with work queued)
        log.log(logging.WARNING if done[consumer] else logging.INFO,
                "%s's worker started: %d event(s) for it will be sent again", consumer, done[consumer])
    return done
