"""GET /<service>/metrics: Prometheus text the on-call person scrapes (README, operating): database and Redis up,
the outbox backlog and its age, events consumed, Celery queue lengths; no personal data."""

from __future__ import annotations

import datetime as dt
import re

from services.common import clock


def value(text: str, name: str, **labels: str) -> float:
    label = ",".join(f'{k}="{v}"' for k, v in labels.items())
    found = re.search(rf"^{name}\{{{re.escape(label)}\}} (\S+)$", text, re.M)
    assert found, f"{name}{{{label}}} missing in:\n{text}"
    return float(found.group(1))


def test_outbox_backlog_and_its_age(credits_app, databases):
    from services.common.events import emit
    from services.credits.db import db, outbox

    c = credits_app.test_client()
    text = c.get("/credits/metrics").get_data(as_text=True)
    assert value(text, "cme_database_up", service="credits") == 1
    assert value(text, "cme_redis_up", service="credits") == 1
    assert value(text, "cme_outbox_unsent", service="credits") == 0
    assert value(text, "cme_outbox_oldest_unsent_seconds", service="credits") == 0
    assert "# TYPE cme_outbox_unsent gauge" in text

    clock.set_now(dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC))
    s = db.new_session()
    emit(s, outbox, "credits", "credits.withdrawn", {"award_id": 1, "offering_id": 2,
                                                     "withdrawn_at": clock.now(), "reason": "测试"})
    s.commit()
    s.close()
    clock.set_now(dt.datetime(2026, 12, 1, 2, 5, tzinfo=dt.UTC))
    text = c.get("/credits/metrics").get_data(as_text=True)
    assert value(text, "cme_outbox_unsent", service="credits") >= 1  # one per consumer of the event
    assert value(text, "cme_outbox_oldest_unsent_seconds", service="credits") == 300


def test_every_service_lists_its_queues(projects_app, checkin_app, credits_app, certs_app):
    for name, app in (("projects", projects_app), ("checkin", checkin_app), ("credits", credits_app),
                      ("certs", certs_app)):
        resp = app.test_client().get(f"/{name}/metrics")
        assert resp.status_code == 200 and resp.mimetype == "text/plain"
        value(resp.get_data(as_text=True), "cme_queue_length", service=name, queue=name)
    certs = certs_app.test_client().get("/certs/metrics").get_data(as_text=True)
    value(certs, "cme_queue_length", service="certs", queue="certs-render")


def test_a_database_that_does_not_answer_reads_zero(credits_app, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from services.common import web

    def refused(_sql):  # noqa: ANN202 - as a stopped PostgreSQL answers the first statement
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(web, "text", refused)
    resp = credits_app.test_client().get("/credits/metrics")
    assert resp.status_code == 200
    assert value(resp.get_data(as_text=True), "cme_database_up", service="credits") == 0


def test_an_unsent_event_on_sqlite_reads_its_age_once(tmp_path, monkeypatch):
    """The local run's embedded SQLite gives min(created_at) back as text: the age is still read, and no series
    is written twice (Prometheus rejects a scrape with cme_database_up both 1 and 0)."""
    from sqlalchemy import MetaData

    from services.common.config import get_settings
    from services.common.db import ServiceDB
    from services.common.events import emit, outbox_tables
    from services.common.web import service_metrics

    monkeypatch.setenv("CME_CREDITS_DATABASE_URL", f"sqlite:///{tmp_path}/credits.db")
    get_settings.cache_clear()
    metadata = MetaData()
    outbox, _processed = outbox_tables(metadata)
    sdb = ServiceDB("credits", metadata, tmp_path)
    try:
        assert sdb.engine.dialect.name == "sqlite"
        metadata.create_all(sdb.engine)
        clock.set_now(dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC))
        s = sdb.new_session()
        emit(s, outbox, "credits", "credits.withdrawn", {"award_id": 1, "offering_id": 2,
                                                         "withdrawn_at": clock.now(), "reason": "测试"})
        s.commit()
        s.close()
        clock.set_now(dt.datetime(2026, 12, 1, 2, 5, tzinfo=dt.UTC))
        text = service_metrics("credits", sdb, ("credits",))
    finally:
        sdb.reset()
        monkeypatch.delenv("CME_CREDITS_DATABASE_URL")
        get_settings.cache_clear()

    series = [line.rsplit(" ", 1)[0] for line in text.splitlines() if not line.startswith("#")]
    assert len(series) == len(set(series)), text
    assert value(text, "cme_database_up", service="credits") == 1
    assert value(text, "cme_outbox_unsent", service="credits") >= 1
    assert value(text, "cme_outbox_oldest_unsent_seconds", service="credits") == 300
    assert value(text, "cme_events_processed", service="credits") == 0
