import datetime as dt
import json
import threading

import pytest
from marshmallow import ValidationError
from sqlalchemy import func, select

from services.common.events import CATALOGUE, consume, emit, make_envelope

PAYLOAD = {
    "offering_id": 7, "institution_id": 3, "institution_name": "西安市第一医院", "project_id": 11,
    "project_number": "2026-01-01-001", "project_title": "心血管急危重症诊治进展", "year": 2026, "seq": 1,
    "credit_class": "Ⅰ类", "credit_value": "10", "hours": "20", "starts_on": dt.date(2026, 12, 10),
    "ends_on": dt.date(2026, 12, 11), "venue": "西安", "mode": "线下",
    "schedule": [{"date": dt.date(2026, 12, 10), "start": dt.time(8, 30), "end": dt.time(12, 0), "title": "开幕"}],
}


def test_envelope_is_documented_json():
    env = make_envelope("offering.approved", "projects", PAYLOAD)
    assert set(env) == {"id", "name", "time", "producer", "version", "payload"}
    assert json.loads(json.dumps(env)) == env
    assert env["payload"]["schedule"][0]["start"] == "08:30:00"
    assert CATALOGUE["offering.approved"].consumers == ("checkin", "credits")


def test_bad_payload_and_wrong_producer_are_refused():
    with pytest.raises(ValidationError):
        make_envelope("offering.approved", "projects", {**PAYLOAD, "mode": "函授"})
    with pytest.raises(ValueError):
        make_envelope("offering.approved", "checkin", PAYLOAD)


def test_outbox_row_per_consumer_and_idempotent_consume(databases):
    from services.projects.db import db as pdb
    from services.projects.db import outbox

    s = pdb.new_session()
    env = emit(s, outbox, "projects", "offering.approved", PAYLOAD)
    s.commit()
    rows = s.execute(select(outbox.c.consumer).where(outbox.c.event_id == env["id"])).scalars().all()
    assert sorted(rows) == ["checkin", "credits"]
    s.close()

    from services.certs.db import db as cdb
    from services.certs.db import processed_events

    seen = []
    handlers = {"offering.approved": lambda session, payload, envelope: seen.append(payload["offering_id"])}
    s = cdb.new_session()
    assert consume(s, processed_events, env, handlers) is True
    s.commit()
    assert consume(s, processed_events, env, handlers) is False
    s.commit()
    assert seen == [7]
    assert s.scalar(select(func.count()).select_from(processed_events)) == 1
    s.close()


def test_a_concurrent_delivery_waits_for_the_first_and_skips(databases):
    """Two workers holding the same event (a redelivery while the first is still at it): the second's claim waits
    for the first's transaction and then applies nothing, without an error to retry."""
    from services.certs.db import db as cdb
    from services.certs.db import processed_events

    env = make_envelope("offering.approved", "projects", PAYLOAD)
    seen = []
    handlers = {"offering.approved": lambda session, payload, envelope: seen.append(payload["offering_id"])}
    first = cdb.new_session()
    assert consume(first, processed_events, env, handlers) is True  # applied, not yet committed
    outcome = {}

    def second() -> None:
        s = cdb.new_session()
        try:
            outcome["applied"] = consume(s, processed_events, env, handlers)
            s.commit()
        finally:
            s.close()

    worker = threading.Thread(target=second)
    worker.start()
    worker.join(0.5)
    assert worker.is_alive(), "the second delivery waits for the first one's transaction"
    first.commit()
    first.close()
    worker.join(10)
    assert outcome == {"applied": False}
    assert seen == [7]


def test_request_session_is_bound_on_first_use_in_a_fresh_process(tmp_path, monkeypatch):
    """A gunicorn worker's first request may use db.session before anything touched the engine."""
    from sqlalchemy import MetaData, text

    from services.common.config import get_settings
    from services.common.db import ServiceDB

    monkeypatch.setenv("CME_CERTS_DATABASE_URL", f"sqlite:///{tmp_path}/fresh.db")
    get_settings.cache_clear()
    try:
        fresh = ServiceDB("certs", MetaData(), tmp_path)
        assert fresh.session().execute(text("SELECT 1")).scalar() == 1
        fresh.reset()
    finally:
        monkeypatch.delenv("CME_CERTS_DATABASE_URL")
        get_settings.cache_clear()



def _envelopes(n: int) -> list[dict]:
    return [make_envelope("offering.approved", "projects", {**PAYLOAD, "offering_id": 100 + i}) for i in range(n)]


def _kept(cdb, processed_events) -> list[str]:  # type: ignore[no-untyped-def]
    with cdb.engine.connect() as conn:
        return sorted(conn.execute(select(processed_events.c.event_id)).scalars())


def test_a_message_of_events_is_applied_together_and_once(databases):
    from services.certs.db import db as cdb
    from services.certs.db import processed_events
    from services.common.tasks import apply_events

    envs, later = _envelopes(3), _envelopes(1)
    seen = []
    handlers = {"offering.approved": lambda session, payload, envelope: seen.append(payload["offering_id"])}
    assert apply_events(cdb, processed_events, handlers, envs) == []
    assert apply_events(cdb, processed_events, handlers, envs[1:] + later) == []  # two copies and a new one
    assert seen == [100, 101, 102, 100]
    more = _envelopes(1)
    unknown = {**more[0], "id": "not-ours", "name": "certificate.printed"}
    assert apply_events(cdb, processed_events, handlers, [more[0], unknown, more[0]]) == []  # one id twice
    assert seen == [100, 101, 102, 100, 100]
    assert _kept(cdb, processed_events) == sorted(e["id"] for e in envs + later + more)


def test_a_failed_event_is_logged_with_its_name_id_and_reason(databases, caplog):
    """What the person on call needs to find the event and the cause, with the ID number in the error masked."""
    from services.certs.db import db as cdb
    from services.certs.db import processed_events
    from services.common.tasks import apply_events

    def broken(session, payload, envelope):  # type: ignore[no-untyped-def]
        raise LookupError("no trainee 610102198503120011 for offering 7")

    env = _envelopes(1)[0]
    with caplog.at_level("WARNING", logger="services.common.tasks"):
        assert apply_events(cdb, processed_events, {"offering.approved": broken}, [env]) == [env]
    assert (f"event offering.approved {env['id']} failed, will retry: "
            "LookupError: no trainee 610102********0011 for offering 7") in caplog.text


def test_a_batched_handler_takes_each_run_of_its_events_together_in_order(databases):
    """A batched handler gets each run of consecutive events of its name in one call, in the message's order; an
    event of another name between them ends a run and is applied where it stands; an id kept before is left out."""
    from services.certs.db import db as cdb
    from services.certs.db import processed_events
    from services.common.events import batched
    from services.common.tasks import apply_events

    calls = []

    @batched
    def approved(session, items):  # type: ignore[no-untyped-def]
        assert all(envelope["payload"]["offering_id"] == payload["offering_id"] for payload, envelope in items)
        calls.append(("approved", [payload["offering_id"] for payload, _ in items]))

    def submitted(session, payload, envelope):  # type: ignore[no-untyped-def]
        calls.append(("submitted", payload["report_id"]))

    handlers = {"offering.approved": approved, "report.submitted": submitted}
    envs = _envelopes(5)
    report = make_envelope("report.submitted", "projects", {"offering_id": 7, "institution_id": 3, "report_id": 9})
    assert apply_events(cdb, processed_events, handlers, envs[:1]) == []
    assert apply_events(cdb, processed_events, handlers, [*envs[:3], report, *envs[3:]]) == []
    assert calls == [("approved", [100]), ("approved", [101, 102]), ("submitted", 9), ("approved", [103, 104])]
    approved(None, dict(envs[0]["payload"], offering_id=100), envs[0])  # one event alone: a run of one
    assert calls[-1] == ("approved", [100])


def test_an_event_that_fails_holds_back_no_other_and_alone_is_retried(databases, monkeypatch):
    """One event of a message cannot be applied yet: the others are kept, each once, and the task asks Celery
    to come back with that one only; when it comes back it is applied, and a copy of the message changes nothing."""
    from celery.exceptions import Retry

    from services.certs.db import db as cdb
    from services.certs.db import processed_events
    from services.common import clock
    from services.common.tasks import make_celery, register_event_consumer

    envs = _envelopes(4)
    failing = {envs[2]["id"]}
    applied = []

    def handler(session, payload, envelope):  # type: ignore[no-untyped-def]
        # a change of the handler's own, which must be kept with its event or not at all
        session.execute(processed_events.insert().values(event_id=f"side-{payload['offering_id']}", name="x",
                                                         processed_at=clock.now()))
        if envelope["id"] in failing:
            raise RuntimeError("not yet")
        applied.append(payload["offering_id"])

    celery = make_celery("certs")
    register_event_consumer(celery, "evtest", cdb, processed_events, {"offering.approved": handler})
    task = celery.tasks["evtest.handle_events"]
    asked = {}

    def retry(**kwargs):  # type: ignore[no-untyped-def]
        asked.update(kwargs)
        return Retry("again")

    monkeypatch.setattr(task, "retry", retry)
    with pytest.raises(Retry):
        task.run(envs)
    assert [e["id"] for e in asked["args"][0]] == [envs[2]["id"]]
    good = [e for e in envs if e["id"] not in failing]
    assert _kept(cdb, processed_events) == sorted([e["id"] for e in good] + ["side-100", "side-101", "side-103"])
    assert applied == [100, 101, 100, 101, 103]  # together (rolled back at the third), then one at a time

    failing.clear()
    monkeypatch.setattr(task, "retry", lambda **kw: pytest.fail(f"retried {kw}"))
    assert task.run(asked["args"][0]) == 1
    assert task.run(envs) == 4  # a copy of the whole message: all skipped
    assert applied[-1] == 102
    assert _kept(cdb, processed_events) == sorted([e["id"] for e in envs] + [f"side-{100 + i}" for i in range(4)])


def test_a_single_event_message_of_an_older_relay_is_still_applied(databases):
    from services.certs.db import db as cdb
    from services.certs.db import processed_events
    from services.common.tasks import make_celery, register_event_consumer

    seen = []
    handle_event = register_event_consumer(make_celery("certs"), "evtest1", cdb, processed_events, {
        "offering.approved": lambda session, payload, envelope: seen.append(payload["offering_id"])})
    env = _envelopes(1)[0]
    assert handle_event.run(env) is True and handle_event.run(env) is False
    assert seen == [100]


def test_a_retry_names_its_events_in_the_headers_not_their_content(databases):
    """The message a retry sends carries only the failed events, and its headers say what they are as the relay's
    did, not Celery's repr of their content (names, encrypted ID numbers)."""
    import base64

    from celery.exceptions import Retry

    from services.certs.db import db as cdb
    from services.certs.db import processed_events
    from services.common.config import redis_client
    from services.common.tasks import make_celery, register_event_consumer

    def not_yet(session, payload, envelope):  # type: ignore[no-untyped-def]
        raise RuntimeError("not yet")

    celery = make_celery("certs")
    register_event_consumer(celery, "evtest2", cdb, processed_events, {"offering.approved": not_yet})
    task = celery.tasks["evtest2.handle_events"]
    broker = redis_client()
    broker.delete("evtest2")
    envs = _envelopes(2)
    task.push_request(id="ev.evtest2.1", retries=0, called_directly=False, is_eager=False,
                      delivery_info={"exchange": "", "routing_key": "evtest2"})
    try:
        with pytest.raises(Retry):
            task.run(envs)
        raw = broker.rpop("evtest2")
    finally:
        task.pop_request()
        broker.delete("evtest2")
    message = json.loads(raw)
    headers = message["headers"]
    assert headers["task"] == "evtest2.handle_events" and headers["retries"] == 1
    assert headers["argsrepr"] == f"(2 events offering.approved {envs[0]['id']} .. {envs[1]['id']})"
    assert "西安" not in json.dumps(headers, ensure_ascii=False)
    assert json.loads(base64.b64decode(message["body"]))[0][0] == envs
    assert _kept(cdb, processed_events) == []


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_insert_rows_or_skip_keeps_the_first_of_a_key_and_every_value(backend, databases, tmp_path):
    """A message's rows in one statement (JSON rows on PostgreSQL, a VALUES list on SQLite): values of every kind
    arrive as given, a row already there and the second row of a key in the same statement come back as nothing."""
    from sqlalchemy import JSON, Boolean, Column, Integer, MetaData, String, Table, create_engine
    from sqlalchemy.orm import Session

    from services.common.db import UTCDateTime, insert_rows_or_skip

    meta = MetaData()
    table = Table("rows_or_skip", meta, Column("id", Integer, primary_key=True),
                  Column("key", String(16), nullable=False, unique=True), Column("at", UTCDateTime()),
                  Column("flags", JSON), Column("forced", Boolean), Column("note", String(40)))
    engine = (databases["certs"].engine if backend == "postgresql"
              else create_engine(f"sqlite:///{tmp_path}/rows.db"))
    meta.create_all(engine)
    at = dt.datetime(2026, 12, 10, 0, 40, 1, 250, tzinfo=dt.UTC)
    try:
        with Session(engine) as s:
            first = insert_rows_or_skip(s, table, [{"key": "a", "at": at, "flags": [], "forced": False,
                                                    "note": "引号\"与\\反斜杠"}], ("key",), ("key",))
            assert list(first.scalars()) == ["a"]
            rows = [{"key": k, "at": at + dt.timedelta(hours=i), "flags": ["many_identities_same_address"] * i,
                     "forced": bool(i % 2), "note": None if i == 2 else f"第{i}行"} for i, k in enumerate("abcb")]
            kept = insert_rows_or_skip(s, table, rows, ("key",), ("key", "note"))
            assert sorted(kept.all()) == [("b", "第1行"), ("c", None)]  # a was there; the second b is skipped
            s.commit()
            got = {r.key: r for r in s.execute(select(table))}
        assert got["a"].note == "引号\"与\\反斜杠" and got["a"].at == at and got["a"].flags == []
        assert (got["b"].at, got["b"].flags, got["b"].forced) == (at + dt.timedelta(hours=1),
                                                                  ["many_identities_same_address"], True)
        assert (got["c"].flags, got["c"].forced, got["c"].note) == (["many_identities_same_address"] * 2, False, None)
        with pytest.raises(ValueError), Session(engine) as s:
            insert_rows_or_skip(s, table, [])
    finally:
        meta.drop_all(engine)
        if backend == "sqlite":
            engine.dispose()
