"""A consumer's worker that starts asks its producers to send again what a killed predecessor may have taken off
the queue and lost (services/common/redelivery.py); the producer's relay marks those rows pending again."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid

import pytest
import redis
from sqlalchemy import insert, select

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
