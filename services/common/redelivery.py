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

Only a worker that died without its warm shutdown can have lost a message: a warm (or cold) shutdown is a flag
the worker's loop reads between two messages, never between the pop and the record. So each worker of a
consumer marks itself running in the Redis hash ``cme:workers:<consumer>`` (its node name, refreshed every
HEARTBEAT seconds) and removes itself when its warm shutdown ends. A worker that starts asks for the resend
only when that record says something may be lost: its own node name still there (its predecessor was killed),
another node not refreshed for STALE seconds (killed and started elsewhere under another name; a running worker
looks for these on each heartbeat too), or no record at all (the first start with it, or Redis lost its data).
A start after a clean stop (``make up`` after an upgrade, a deploy) asks nothing and sends nothing again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterable

from redis import Redis
from sqlalchemy import MetaData, Table, func, select, update
from sqlalchemy.engine import Engine

from . import clock
from .events import CATALOGUE, outbox_tables

log = logging.getLogger(__name__)

RECENT = 20  # processed ids sent per producer: the oldest of them anchors the resend
HEARTBEAT = 30.0  # seconds between two marks of a running worker in cme:workers:<consumer>
STALE = 4 * HEARTBEAT  # a worker not marked for this long died without its warm shutdown
SINCE = "since"  # the record's own field (a node name has an @): the record exists even with no worker running
# why a request was made: the relay warns for the first two (a worker was killed), the last is a normal start
UNCLEAN, LOST, UNKNOWN = "unclean", "lost", "unknown"
# deletes the request only if it is still the one acted on (a newer start may have replaced it meanwhile)
_DELETE_IF_SAME = ("if redis.call('hget', KEYS[1], ARGV[1]) == ARGV[2] then "
                   "return redis.call('hdel', KEYS[1], ARGV[1]) end return 0")


def request_key(consumer: str) -> str:
    return f"cme:redeliver:{consumer}"


def workers_key(consumer: str) -> str:
    return f"cme:workers:{consumer}"


def _stale_nodes(marks: dict[str, float], node: str, now: float) -> list[str]:
    return sorted(n for n, at in marks.items() if n != node and now - at > STALE)


def _marks(client: Redis, consumer: str) -> dict[str, float] | None:
    """The consumer's running workers by node name (last mark, epoch seconds); None when there is no record."""
    raw = client.hgetall(workers_key(consumer))
    if not raw:
        return None
    marks: dict[str, float] = {}
    for field, value in raw.items():
        name = field.decode() if isinstance(field, bytes) else str(field)
        if name == SINCE:
            continue
        try:
            marks[name] = float(value)
        except (TypeError, ValueError):
            marks[name] = 0.0  # unreadable: as if never marked, so taken for dead (a resend is safe)
    return marks


def _forget(client: Redis, consumer: str, nodes: list[str]) -> list[str]:
    """Remove dead workers' marks; those this call removed (of two workers sweeping at once, one asks)."""
    return [n for n in nodes if client.hdel(workers_key(consumer), n)]


def worker_started(client: Redis, consumer: str, node: str) -> tuple[str | None, list[str]]:
    """Mark this worker running; why a resend must be asked (UNCLEAN, LOST, UNKNOWN or None after clean stops)
    and the nodes found dead."""
    now = time.time()
    marks = _marks(client, consumer)
    key = workers_key(consumer)
    client.hset(key, mapping={node: now, **({} if marks is not None else {SINCE: now})})
    if marks is None:
        return UNKNOWN, []
    dead = _forget(client, consumer, _stale_nodes(marks, node, now))
    if node in marks:  # this name's previous worker never removed its mark: killed
        return UNCLEAN, [node, *dead]
    return (LOST, dead) if dead else (None, [])


def worker_alive(client: Redis, consumer: str, node: str) -> list[str]:
    """A running worker's heartbeat: its mark refreshed, and the nodes found dead since (their marks removed)."""
    now = time.time()
    client.hset(workers_key(consumer), node, now)
    return _forget(client, consumer, _stale_nodes(_marks(client, consumer) or {}, node, now))


def owe_redelivery(client: Redis, consumer: str, nodes: list[str]) -> None:
    """A resend found needed could not be asked: marks that are stale at once (a name of their own, so this worker's
    heartbeat does not refresh them) make the next heartbeat or start ask it."""
    client.hset(workers_key(consumer), mapping={f"{n} (not asked yet)": 0.0 for n in nodes})


def worker_stopped(client: Redis, consumer: str, node: str) -> None:
    """The end of a warm shutdown: nothing this worker took can be lost, its successor need not ask."""
    client.hdel(workers_key(consumer), node)


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
                       client: Redis, why: str = UNCLEAN) -> dict[str, int]:
    """Write one request per producer: the ids of the RECENT events last processed from it, and why (the relay's
    log level). Returns how many ids each request carries (0: send everything)."""
    asked: dict[str, int] = {}
    with engine.connect() as conn:
        for producer, names in names_by_producer(handled).items():
            ids = list(conn.execute(select(processed.c.event_id).where(processed.c.name.in_(names))
                                    .order_by(processed.c.processed_at.desc()).limit(RECENT)).scalars())
            body = json.dumps({"at": clock.now().isoformat(), "after": ids, "why": why})
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
        why = UNCLEAN  # a request of an older worker (no reason given) is taken as after a kill
        try:
            body = json.loads(raw)
            after = [str(i) for i in body["after"]]
            why = str(body.get("why") or UNCLEAN)
        except (ValueError, KeyError, TypeError, AttributeError):
            after = []  # unreadable: sending everything again is safe
        done[consumer] = resend_since_processed(engine, consumer, after, margin_seconds)
        client.eval(_DELETE_IF_SAME, 1, key, producer, raw)
        # a warning only when something is sent again because a worker was killed; a start with no record of
        # its predecessors (the first with this version, Redis emptied) is normal and says so at INFO
        if why == UNKNOWN:
            log.info("%s's worker started with no record of its predecessors: %d event(s) for it will be sent "
                     "again", consumer, done[consumer])
        else:
            what = "was found dead" if why == LOST else "started after a worker of it was killed"
            log.log(logging.WARNING if done[consumer] else logging.INFO,
                    "%s's worker %s: %d event(s) for it will be sent again", consumer, what, done[consumer])
    return done
