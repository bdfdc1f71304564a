"""The relay, finding the broker gone, marks what it sent just before as pending again (services/common/relay.py:
a worker may have popped such a message without recording it when Redis stopped); older rows stay sent."""

from __future__ import annotations

import datetime as dt
import os
import socket

import pytest
from sqlalchemy import insert, select

from services.common import clock
from services.common.relay import resend_recent


def test_rows_sent_just_before_the_outage_are_pending_again(databases):
    from services.projects.db import db as pdb
    from services.projects.db import outbox

    now = clock.now()
    rows = {"recent": now - dt.timedelta(seconds=10), "old": now - dt.timedelta(minutes=5), "pending": None}
    with pdb.engine.begin() as conn:
        for name, sent_at in rows.items():
            conn.execute(insert(outbox).values(event_id=f"ev-{name}", name="offering.approved", consumer="checkin",
                                               envelope="{}", created_at=now - dt.timedelta(minutes=6),
                                               sent_at=sent_at, attempts=1))
    assert resend_recent(pdb.engine, 60) == 1
    with pdb.engine.connect() as conn:
        sent = dict(conn.execute(select(outbox.c.event_id, outbox.c.sent_at)).all())
    assert sent["ev-recent"] is None and sent["ev-pending"] is None
    assert sent["ev-old"] is not None


def test_the_relay_prunes_what_was_sent_long_ago_and_keeps_what_is_waiting(databases):
    """A month after it went out an event is deleted (a check-in's carries her encrypted ID number and mobile);
    what still waits for Redis is never deleted, however old, and the processed ids stay twice as long, so a
    redelivery of anything still in an outbox is skipped."""
    from services.common.relay import prune
    from services.projects.db import db as pdb
    from services.projects.db import outbox, processed_events

    now = clock.now()
    sent = {"fresh": now - dt.timedelta(days=29), "stale": now - dt.timedelta(days=31), "waiting": None}
    with pdb.engine.begin() as conn:
        for name, sent_at in sent.items():
            conn.execute(insert(outbox).values(event_id=f"ev-{name}", name="offering.approved", consumer="checkin",
                                               envelope="{}", created_at=now - dt.timedelta(days=40),
                                               sent_at=sent_at, attempts=1))
        for name, days in {"p-40": 40, "p-61": 61}.items():
            conn.execute(insert(processed_events).values(event_id=name, name="credits.granted",
                                                         processed_at=now - dt.timedelta(days=days)))
    assert prune(pdb.engine, 0) == (0, 0)  # 0: keep everything
    assert prune(pdb.engine, 30) == (1, 1)
    with pdb.engine.connect() as conn:
        assert sorted(conn.execute(select(outbox.c.event_id)).scalars()) == ["ev-fresh", "ev-waiting"]
        assert list(conn.execute(select(processed_events.c.event_id)).scalars()) == ["p-40"]
    assert prune(pdb.engine, 30) == (0, 0)


def _pending(n: int) -> None:
    import json

    from services.checkin.db import db as cdb
    from services.checkin.db import outbox

    now = clock.now()
    with cdb.engine.begin() as conn:
        for i in range(n):
            envelope = {"id": f"ev-{i}", "name": "checkin.recorded", "time": now.isoformat(), "producer": "checkin",
                        "version": 1, "payload": {"name": "王小明", "id_enc": "gAAAA-secret", "serial": i}}
            conn.execute(insert(outbox).values(event_id=f"ev-{i}", name="checkin.recorded", consumer="credits",
                                               envelope=json.dumps(envelope, ensure_ascii=False), created_at=now,
                                               attempts=0))


def _queued(broker) -> list[dict]:  # type: ignore[no-untyped-def]
    import json

    return [json.loads(m) for m in reversed(broker.lrange("credits", 0, -1))]  # LPUSH: oldest last


def _events_of(message: dict) -> list[dict]:
    import base64
    import json

    return json.loads(base64.b64decode(message["body"]))[0][0]  # (args, kwargs, embed): args[0], the list


def test_relay_sends_a_batch_in_order_without_the_envelope_in_the_headers(databases):
    import json

    from services.checkin.db import db as cdb
    from services.checkin.db import outbox
    from services.common.config import redis_client
    from services.common.relay import relay_once
    from services.common.tasks import make_celery

    broker = redis_client()
    broker.delete("credits")
    _pending(5)
    try:
        assert relay_once(cdb.engine, make_celery("relay")) == 5
        messages = _queued(broker)
    finally:
        broker.delete("credits")
    assert len(messages) == 1  # one message carries the consumer's events of the round
    events = _events_of(messages[0])
    assert [e["id"] for e in events] == [f"ev-{i}" for i in range(5)] and events[0]["payload"]["name"] == "王小明"
    headers = messages[0]["headers"]
    assert headers["task"] == "credits.handle_events"
    assert headers["argsrepr"] == "(5 events checkin.recorded ev-0 .. ev-4)"
    # its own task id, which a worker's log shows: the first event, the consumer and the attempt
    assert headers["id"] == "ev-0.credits.1"
    assert headers["origin"] == f"gen{os.getpid()}@{socket.gethostname()}"
    assert "王小明" not in json.dumps(headers, ensure_ascii=False) and "secret" not in json.dumps(headers)
    with cdb.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.sent_at, outbox.c.attempts)).all()
    assert all(sent is not None and attempts == 1 for sent, attempts in rows)
    assert relay_once(cdb.engine, make_celery("relay")) == 0  # nothing sent twice


def test_relay_splits_a_batch_into_messages_of_at_most_per_message_events(databases, monkeypatch):
    from services.checkin.db import db as cdb
    from services.common import relay
    from services.common.config import redis_client
    from services.common.tasks import make_celery

    broker = redis_client()
    broker.delete("credits")
    _pending(5)
    try:  # CME_RELAY_EVENTS_PER_MESSAGE=2
        assert relay.relay_once(cdb.engine, make_celery("relay"), per_message=2) == 5
        messages = _queued(broker)
    finally:
        broker.delete("credits")
    assert [[e["id"] for e in _events_of(m)] for m in messages] == [["ev-0", "ev-1"], ["ev-2", "ev-3"], ["ev-4"]]
    assert [m["headers"]["id"] for m in messages] == ["ev-0.credits.1", "ev-2.credits.1", "ev-4.credits.1"]
    assert messages[2]["headers"]["argsrepr"] == "(checkin.recorded ev-4)"


@pytest.mark.parametrize("value", ["0", "201", "x"])
def test_relay_refuses_to_start_with_a_senseless_events_per_message(monkeypatch, capsys, value):
    from services.common import relay

    monkeypatch.setenv("CME_RELAY_EVENTS_PER_MESSAGE", value)
    with pytest.raises(SystemExit):
        relay.main(["checkin"])
    assert "CME_RELAY_EVENTS_PER_MESSAGE" in capsys.readouterr().err or value == "x"


def test_relay_keeps_the_whole_batch_pending_when_the_broker_is_gone(databases, monkeypatch):
    import socket

    from services.checkin.db import db as cdb
    from services.checkin.db import outbox
    from services.common.config import get_settings
    from services.common.relay import relay_once
    from services.common.tasks import make_celery

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _pending(3)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
    get_settings.cache_clear()
    try:
        assert relay_once(cdb.engine, make_celery("relay")) == -1
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    with cdb.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.sent_at, outbox.c.attempts, outbox.c.last_error)).all()
    assert all(sent is None and attempts == 1 and error for sent, attempts, error in rows)


def test_relay_marks_nothing_sent_when_the_batch_fails_to_go_out(databases, monkeypatch, caplog):
    """Redis going away after the connection check: the pipeline's flush fails, every row of it stays pending."""
    from kombu.transport import redis as kombu_redis

    from services.checkin.db import db as cdb
    from services.checkin.db import outbox
    from services.common.config import redis_client
    from services.common.relay import relay_once
    from services.common.tasks import make_celery

    def lost(self):  # type: ignore[no-untyped-def]
        raise ConnectionError("Redis went away")

    monkeypatch.setattr(kombu_redis.PublishBatch, "flush", lost)
    _pending(4)
    try:
        assert relay_once(cdb.engine, make_celery("relay")) == -1
    finally:
        redis_client().delete("credits")
    with cdb.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.sent_at, outbox.c.attempts, outbox.c.last_error)).all()
    assert len(rows) == 4 and all(s is None and a == 1 and e == "ConnectionError: Redis went away"
                                  for s, a, e in rows)
    assert "broker refused a batch, 4 event(s) waiting: ConnectionError: Redis went away" in caplog.text


def test_relay_keeps_its_broker_connection_and_declares_each_queue_once(databases, monkeypatch):
    """Round after round on one connection, the consumer's queue declared once (not with every message), every
    event delivered; after a failed round the link is dropped, and the next round connects and declares afresh."""

    from kombu import Producer
    from kombu.transport import redis as kombu_redis

    from services.checkin.db import db as cdb
    from services.common.config import redis_client
    from services.common.relay import BrokerLink, relay_once
    from services.common.tasks import make_celery

    declared: list[str] = []
    real_declare = Producer.maybe_declare

    def counting(self, entity, retry=False, **policy):  # type: ignore[no-untyped-def]
        declared.append(entity.name)
        return real_declare(self, entity, retry, **policy)

    monkeypatch.setattr(Producer, "maybe_declare", counting)
    broker = redis_client()
    broker.delete("credits", "_kombu.binding.credits")
    celery = make_celery("relay")
    link = BrokerLink(celery)
    try:
        _pending(3)
        assert relay_once(cdb.engine, celery, link=link) == 3
        assert declared == ["credits"]  # once for the batch, not once for each message
        first = link.connection
        with cdb.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM outbox")
        _pending(2)
        assert relay_once(cdb.engine, celery, link=link) == 2
        assert link.connection is first  # kept from round to round
        assert broker.exists("_kombu.binding.credits") and broker.llen("credits") == 2  # a message a round

        def lost(self):  # type: ignore[no-untyped-def]
            raise ConnectionError("Redis went away")

        with cdb.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM outbox")
        _pending(2)
        with monkeypatch.context() as m:
            m.setattr(kombu_redis.PublishBatch, "flush", lost)
            assert relay_once(cdb.engine, celery, link=link) == -1
        assert link.connection is None  # dropped: the next round starts afresh
        broker.delete("_kombu.binding.credits")  # as after a restart of Redis, which keeps nothing here
        assert relay_once(cdb.engine, celery, link=link) == 2
        assert link.connection is not None and link.connection is not first
        assert broker.exists("_kombu.binding.credits")  # declared again on the new connection
        assert broker.llen("credits") == 3
    finally:
        link.drop()
        broker.delete("credits")


def test_relay_waits_for_events_to_gather_only_after_a_partial_batch():
    from services.common.relay import BATCH, pause_after

    assert pause_after(BATCH, backoff=0.3, gather=0.1) == 0.0  # a full batch: more are waiting, go on at once
    assert pause_after(7, backoff=0.3, gather=0.1) == 0.1  # a trickle: let some gather
    assert pause_after(0, backoff=0.3, gather=0.1) == 0.3  # nothing: the poll interval
    assert pause_after(-1, backoff=2.4, gather=0.1) == 2.4  # broker or database gone: the backoff
