"""A consumer's worker that starts asks its producers to send again what a killed predecessor may have taken off
the queue and lost (services/common/redelivery.py); the producer's relay marks those rows pending again."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid

import pytest
import redis
from sqlalchemy import insert, select, update

from services.common import clock, redelivery
from services.common.redelivery import request_key, request_redelivery, serve_requests


@pytest.fixture
def broker():
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    for consumer in ("checkin", "credits"):
        client.delete(request_key(consumer))
    yield client
    for consumer in ("checkin", "credits"):
        client.delete(request_key(consumer))
    client.close()


def _sent(minutes_ago: float | None) -> dt.datetime | None:
    return None if minutes_ago is None else clock.now() - dt.timedelta(minutes=minutes_ago)


def _outbox_rows(rows: dict[str, tuple[str, float | None]]) -> None:
    """projects' outbox: event name -> (consumer, sent minutes ago or None for pending)."""
    from services.projects.db import db as pdb
    from services.projects.db import outbox

    with pdb.engine.begin() as conn:
        for event_id, (consumer, minutes_ago) in rows.items():
            conn.execute(insert(outbox).values(
                event_id=event_id, name="offering.approved", consumer=consumer, envelope="{}",
                created_at=clock.now() - dt.timedelta(hours=1), sent_at=_sent(minutes_ago), attempts=1))


def _processed_by_checkin(event_ids: list[str], minutes_ago: float) -> None:
    from services.checkin.db import db as cdb
    from services.checkin.db import processed_events

    with cdb.engine.begin() as conn:
        for i, event_id in enumerate(event_ids):
            conn.execute(insert(processed_events).values(
                event_id=event_id, name="offering.approved",
                processed_at=clock.now() - dt.timedelta(minutes=minutes_ago, seconds=-i)))


def _pending() -> set[str]:
    from services.projects.db import db as pdb
    from services.projects.db import outbox

    with pdb.engine.connect() as conn:
        return set(conn.execute(select(outbox.c.event_id).where(outbox.c.sent_at.is_(None))).scalars())


def _ask(broker: redis.Redis) -> dict[str, int]:
    from services.checkin.db import db as cdb
    from services.checkin.db import processed_events
    from services.checkin.worker import HANDLERS

    return request_redelivery(cdb.engine, processed_events, "checkin", HANDLERS, broker)


def _serve(broker: redis.Redis) -> dict[str, int]:
    from services.projects.db import db as pdb

    return serve_requests(pdb.engine, broker, "projects", margin_seconds=60)


def test_rows_sent_since_the_last_processed_are_sent_again(databases, broker, monkeypatch):
    monkeypatch.setattr(redelivery, "RECENT", 2)
    _outbox_rows({
        "long-ago": ("checkin", 30),  # processed long before the others
        "recent-1": ("checkin", 10), "recent-2": ("checkin", 9),  # the last two processed
        "lost": ("checkin", 8),  # taken off the queue by the killed worker, never processed
        "queued": ("checkin", 1),  # still on the queue
        "waiting": ("checkin", None),  # never sent yet
        "for-credits": ("credits", 5),  # another consumer's row: its worker did not ask
    })
    _processed_by_checkin(["long-ago"], minutes_ago=29)
    _processed_by_checkin(["recent-1", "recent-2"], minutes_ago=3)

    # checkin asks each producer of what it consumes (credits: credits.name_corrected, none processed here)
    assert _ask(broker) == {"projects": 2, "credits": 0}
    body = json.loads(broker.hget(request_key("checkin"), "projects"))
    assert sorted(body["after"]) == ["recent-1", "recent-2"]

    assert _serve(broker) == {"checkin": 4}
    assert _pending() == {"recent-1", "recent-2", "lost", "queued", "waiting"}
    # the request is served once: the next round of the relay finds none
    assert broker.hget(request_key("checkin"), "projects") is None
    assert _serve(broker) == {}


def test_a_consumer_that_processed_nothing_gets_everything_again(databases, broker):
    _outbox_rows({"a": ("checkin", 60), "b": ("checkin", 2), "c": ("credits", 2)})
    assert _ask(broker) == {"projects": 0, "credits": 0}
    assert _serve(broker) == {"checkin": 2}
    assert _pending() == {"a", "b"}


def test_a_newer_request_written_while_serving_is_kept(databases, broker, monkeypatch):
    """The request is removed only if it is still the one acted on: a worker starting meanwhile is served too."""
    _outbox_rows({str(uuid.uuid4()): ("checkin", 1)})
    _ask(broker)
    original = redelivery.resend_since_processed

    def slow_resend(*args, **kwargs):  # another worker of checkin starts while the relay acts
        done = original(*args, **kwargs)
        broker.hset(request_key("checkin"), "projects", json.dumps({"at": "later", "after": []}))
        return done

    monkeypatch.setattr(redelivery, "resend_since_processed", slow_resend)
    _serve(broker)
    assert json.loads(broker.hget(request_key("checkin"), "projects"))["at"] == "later"


def test_an_unreadable_request_sends_everything_again(databases, broker):
    _outbox_rows({"a": ("checkin", 60), "b": ("checkin", 2)})
    broker.hset(request_key("checkin"), "projects", "not json")
    assert _serve(broker) == {"checkin": 2}
    assert broker.hget(request_key("checkin"), "projects") is None


# ---- when a worker starts: a resend only after a worker was killed ---------------------------------------------

@pytest.fixture
def own_keys(monkeypatch, broker):
    """This test's request and worker records under keys of its own (another run may share this Redis)."""
    tag = uuid.uuid4().hex[:8]
    monkeypatch.setattr(redelivery, "request_key", lambda consumer: f"cme:redeliver:test-{tag}:{consumer}")
    monkeypatch.setattr(redelivery, "workers_key", lambda consumer: f"cme:workers:test-{tag}:{consumer}")
    yield broker
    for consumer in ("checkin", "credits"):
        broker.delete(redelivery.request_key(consumer), redelivery.workers_key(consumer))


class _Timer:
    def __init__(self):
        self.calls = []

    def call_repeatedly(self, seconds, fun, args=()):
        self.calls.append((seconds, fun, args))


class _Consumer:
    """What Celery's worker_ready hands its receivers: the consumer, its app, node name and timer."""

    def __init__(self, node="checkin@host"):
        from services.checkin.worker import celery

        self.app, self.hostname, self.timer = celery, node, _Timer()


class _Controller:
    """What worker_shutdown hands its receivers: the worker, its exit code."""

    def __init__(self, node="checkin@host", exitcode=0):
        from services.checkin.worker import celery

        self.app, self.hostname, self.exitcode = celery, node, exitcode


def _start(node="checkin@host") -> _Consumer:
    from celery.signals import worker_ready

    consumer = _Consumer(node)
    worker_ready.send(sender=consumer)
    return consumer


def _stop(node="checkin@host", exitcode=0) -> None:
    from celery.signals import worker_shutdown

    worker_shutdown.send(sender=_Controller(node, exitcode))


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def test_a_start_after_a_warm_shutdown_sends_nothing_again(databases, own_keys, caplog):
    """`make up` after an upgrade stops each worker warmly and starts it again: nothing is lost that way, so no
    producer sends anything again and nothing warns (it used to: every start resent its last 20 events)."""
    _outbox_rows({"old": ("checkin", 30), "recent": ("checkin", 2)})
    _processed_by_checkin(["old", "recent"], minutes_ago=1)
    caplog.set_level("INFO")
    # the first start with no record of earlier workers asks, as before, and says so at INFO
    _start()
    assert own_keys.hget(redelivery.request_key("checkin"), "projects") is not None
    assert _serve(own_keys) == {"checkin": 2}
    assert _warnings(caplog) == []
    assert "checkin's worker started with no record of its predecessors: 2 event(s)" in caplog.text
    _relay_marks_sent()
    own_keys.delete(redelivery.request_key("checkin"))  # credits' relay serves its part

    _stop()
    caplog.clear()
    _start()
    assert own_keys.hgetall(redelivery.request_key("checkin")) == {}
    assert _serve(own_keys) == {}
    assert _pending() == set()
    assert _warnings(caplog) == []
    assert "checkin's earlier workers stopped cleanly: nothing to send again" in caplog.text


def test_a_start_after_a_kill_asks_and_warns(databases, own_keys, caplog):
    """SIGKILL, the OOM killer: no warm shutdown, the mark stays; the next worker of that name asks, the relay
    sends again what was sent since its last processed events, and both say so at WARNING."""
    _outbox_rows({"done": ("checkin", 5), "lost": ("checkin", 3)})
    _processed_by_checkin(["done"], minutes_ago=4)
    _start()
    _serve(own_keys)
    _relay_marks_sent()
    caplog.clear()
    caplog.set_level("INFO")
    # killed: no worker_shutdown
    consumer = _start()
    assert _serve(own_keys) == {"checkin": 2}
    assert _pending() == {"done", "lost"}
    warned = _warnings(caplog)
    assert any("checkin@host stopped without a warm shutdown: asked credits, projects to send again" in w
               for w in warned), warned
    assert "checkin's worker started after a worker of it was killed: 2 event(s) for it will be sent again" in warned
    # and it keeps its mark fresh while it runs
    assert [(s, a[0]) for s, _f, a in consumer.timer.calls] == [(redelivery.HEARTBEAT, "checkin@host")]


def test_a_failed_stop_leaves_the_mark(databases, own_keys):
    """A worker ending on an unrecoverable error (exit code 1) may have lost a message: its successor asks."""
    _start()
    own_keys.delete(redelivery.request_key("checkin"))
    _stop(exitcode=1)
    _start()
    assert own_keys.hget(redelivery.request_key("checkin"), "projects") is not None


def test_a_worker_killed_and_started_under_another_name_is_found(databases, own_keys, caplog, monkeypatch):
    """In containers the node name carries the host's, new for each container: the dead one's mark goes stale,
    and the next start (or a running worker's heartbeat) asks for it; a worker running beside it is left alone."""
    _start("checkin@a")
    _start("checkin@b")
    own_keys.delete(redelivery.request_key("checkin"))
    # b is killed; a's heartbeat goes on
    later = redelivery.time.time() + redelivery.STALE + 1
    monkeypatch.setattr(redelivery.time, "time", lambda: later)
    assert redelivery.worker_alive(own_keys, "checkin", "checkin@a") == ["checkin@b"]
    assert redelivery.worker_alive(own_keys, "checkin", "checkin@a") == []  # found once
    # a container starting now finds a running (a just marked itself), asks nothing
    assert redelivery.worker_started(own_keys, "checkin", "checkin@c") == (None, [])
    # a stops warmly, c is killed and replaced by d: d finds c's mark stale
    redelivery.worker_stopped(own_keys, "checkin", "checkin@a")
    monkeypatch.setattr(redelivery.time, "time", lambda: later + redelivery.STALE + 1)
    assert redelivery.worker_started(own_keys, "checkin", "checkin@d") == (redelivery.LOST, ["checkin@c"])


def test_the_heartbeat_asks_for_a_dead_worker(databases, own_keys, caplog, monkeypatch):
    consumer = _start("checkin@a")
    _start("checkin@b")
    own_keys.delete(redelivery.request_key("checkin"))
    later = redelivery.time.time() + redelivery.STALE + 1
    monkeypatch.setattr(redelivery.time, "time", lambda: later)
    caplog.set_level("INFO")
    [(_seconds, heartbeat, args)] = consumer.timer.calls
    heartbeat(*args)
    body = json.loads(own_keys.hget(redelivery.request_key("checkin"), "projects"))
    assert body["why"] == redelivery.LOST
    assert any("checkin@b stopped without a warm shutdown" in w for w in _warnings(caplog))


def _relay_marks_sent() -> None:
    """What the relay's next round does with the rows marked pending: sends them."""
    from services.projects.db import db as pdb
    from services.projects.db import outbox

    with pdb.engine.begin() as conn:
        conn.execute(update(outbox).where(outbox.c.sent_at.is_(None)).values(sent_at=clock.now()))


def test_a_resend_that_could_not_be_asked_is_asked_by_the_next_heartbeat(databases, own_keys, caplog, monkeypatch):
    """The worker starts after a kill while its database is still coming back: the request cannot be written. The
    need stays in the record (its own mark refreshed would otherwise hide it) and the next heartbeat asks."""
    from services.common import tasks

    _start()
    own_keys.delete(redelivery.request_key("checkin"))
    original = tasks.request_redelivery

    def database_down(*args, **kwargs):
        raise ConnectionError("connection refused")

    monkeypatch.setattr(tasks, "request_redelivery", database_down)
    caplog.set_level("INFO")
    consumer = _start()  # killed before: its mark is there
    assert "could not ask for redelivery: ConnectionError: connection refused" in caplog.text
    assert own_keys.hget(redelivery.request_key("checkin"), "projects") is None
    monkeypatch.setattr(tasks, "request_redelivery", original)
    [(_seconds, heartbeat, args)] = consumer.timer.calls
    heartbeat(*args)
    assert json.loads(own_keys.hget(redelivery.request_key("checkin"), "projects"))["why"] == redelivery.LOST
    assert any("checkin@host (not asked yet) stopped without a warm shutdown" in w for w in _warnings(caplog))
    own_keys.delete(redelivery.request_key("checkin"))
    heartbeat(*args)  # asked once
    assert own_keys.hget(redelivery.request_key("checkin"), "projects") is None
