"""A database that is down or restarting gets a retryable answer: 503, Retry-After and 系统繁忙，请稍后重试,
never a 500; the phone's check-in form comes back with what was typed (tests/stack/test_faults.py restarts a
real PostgreSQL under load; here the service's engine points at a port nobody listens on)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from services.common.errors import DB_BUSY_MESSAGE, db_unavailable, register_error_handlers

BUSY = "系统繁忙，请稍后重试"


class _DriverError(Exception):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the shared handler, on a bare app -------------------------------------------------------------------

@pytest.fixture
def bare() -> Flask:
    app = Flask(__name__)
    register_error_handlers(app)
    raising = {
        "down": OperationalError("SELECT 1", {}, _DriverError("connection refused")),
        "dropped": DBAPIError("SELECT 1", {}, _DriverError("server closed the connection"),
                              connection_invalidated=True),
        "pool": PoolTimeoutError("QueuePool limit reached"),
        "integrity": IntegrityError("INSERT", {}, _DriverError("duplicate key")),
    }

    @app.get("/api/<name>")
    def boom(name: str):  # type: ignore[no-untyped-def]
        raise raising[name]

    return app


def test_classification():
    assert db_unavailable(OperationalError("x", {}, _DriverError()))
    assert db_unavailable(DBAPIError("x", {}, _DriverError(), connection_invalidated=True))
    assert db_unavailable(PoolTimeoutError("pool"))
    assert not db_unavailable(IntegrityError("x", {}, _DriverError()))
    assert not db_unavailable(DBAPIError("x", {}, _DriverError()))
    assert BUSY in DB_BUSY_MESSAGE


@pytest.mark.parametrize("name", ["down", "dropped", "pool"])
def test_connection_failures_are_503_with_retry_after(bare, name):
    r = bare.test_client().get(f"/api/{name}")
    assert r.status_code == 503
    assert r.headers["Retry-After"].isdigit() and int(r.headers["Retry-After"]) > 0
    assert r.json["error"]["code"] == "unavailable"
    assert BUSY in r.json["error"]["message"]


def test_a_failing_statement_is_still_a_500(bare):
    r = bare.test_client().get("/api/integrity")
    assert r.status_code == 500 and "Retry-After" not in r.headers
    assert r.json["error"]["code"] == "internal_error"


# ---- the check-in service with its database unreachable ------------------------------------------------

@pytest.fixture
def checkin_db_down(checkin_app) -> Iterator[Flask]:
    """The checkin service's engines (the session's and the scan call's) point at a closed port for the test,
    then are put back."""
    from services.checkin.db import db
    from services.common.db import build_engine

    db.session.remove()
    saved, saved_autocommit = db.engine, db.autocommit_engine
    url = f"postgresql+psycopg://postgres@127.0.0.1:{_free_port()}/nowhere"
    dead = build_engine(url, connect_args={"connect_timeout": 2})
    dead_autocommit = build_engine(url, connect_args={"connect_timeout": 2}, pool_pre_ping=False,
                                   isolation_level="AUTOCOMMIT")
    db._engine, db._autocommit_engine = dead, dead_autocommit
    db._scoped.configure(bind=dead)
    try:
        yield checkin_app
    finally:
        db.session.remove()
        dead.dispose()
        dead_autocommit.dispose()
        db._engine, db._autocommit_engine = saved, saved_autocommit
        db._scoped.configure(bind=saved)


def _ticket_cookie(client) -> str:  # type: ignore[no-untyped-def]
    from services.checkin.phone.services import TICKET_COOKIE, dump_ticket, new_ticket

    ticket = new_ticket(activity_id=1, window_id=1, slot=1)
    client.set_cookie(TICKET_COOKIE, dump_ticket(ticket), domain="localhost", path="/checkin/")
    return ticket.nonce


WECHAT = {"User-Agent": "Mozilla/5.0 (Linux; Android 14) MicroMessenger/8.0.50", "Accept": "text/html"}
TYPED = {"name": "王小明", "id_number": "610102198503121233", "mobile": "13612345678", "title": "主治医师",
         "unit": "西安市第一医院"}


def test_phone_form_comes_back_with_what_was_typed(checkin_db_down):
    client = checkin_db_down.test_client()
    nonce = _ticket_cookie(client)
    r = client.post("/checkin/scan", data={**TYPED, "nonce": nonce, "mode": "form"},
                    headers=WECHAT)
    page = r.get_data(as_text=True)
    assert r.status_code == 503, page[:500]
    assert r.headers["Retry-After"].isdigit()
    assert BUSY in page and "您填写的内容已保留" in page
    for key in ("name", "id_number", "mobile", "unit"):
        assert f'value="{TYPED[key]}"' in page, key
    assert f'<option value="{TYPED["title"]}" selected>' in page
    assert f'name="nonce" value="{nonce}"' in page  # submitting it again is the same check-in, never a second


def test_phone_one_tap_gets_a_resubmit_button(checkin_db_down):
    client = checkin_db_down.test_client()
    nonce = _ticket_cookie(client)
    r = client.post("/checkin/scan", data={"nonce": nonce, "mode": "tap"}, headers=WECHAT)
    page = r.get_data(as_text=True)
    assert r.status_code == 503 and r.headers["Retry-After"].isdigit()
    assert BUSY in page and "重新提交" in page and f'name="nonce" value="{nonce}"' in page


def test_phone_scan_link_is_a_retry_page(checkin_db_down):
    from services.checkin.qr.tokens import make_token, slot_at

    r = checkin_db_down.test_client().get(f"/checkin/s/{make_token(1, 1, slot_at())}", headers=WECHAT)
    page = r.get_data(as_text=True)
    assert r.status_code == 503 and r.headers["Retry-After"].isdigit()
    assert BUSY in page and "点此重试" in page


def test_phone_json_api_is_503_json(checkin_db_down):
    from services.checkin.phone.services import WECHAT_COOKIE, dump_openid

    client = checkin_db_down.test_client()
    nonce = _ticket_cookie(client)
    # logged in with WeChat: the submission reaches the database (its only round trip stores the check-in)
    client.set_cookie(WECHAT_COOKIE, dump_openid("o-db-down"), domain="localhost", path="/checkin/")
    r = client.post("/checkin/api/scan", json={"nonce": nonce, **TYPED})
    assert r.status_code == 503 and r.headers["Retry-After"].isdigit()
    assert r.json["error"]["code"] == "unavailable" and BUSY in r.json["error"]["message"]


def test_a_session_that_cannot_close_does_not_turn_the_answer_into_a_500(checkin_app, monkeypatch):
    """PostgreSQL restarting between the view's last query and the request's end: closing the session fails
    (the rollback meets a dropped connection); the answer already made stands and the session is let go."""
    from services.checkin.db import db

    calls = []

    def remove() -> None:
        calls.append(1)
        raise OperationalError("ROLLBACK", {}, _DriverError("terminating connection due to administrator command"))

    monkeypatch.setattr(db.session, "remove", remove)
    r = checkin_app.test_client().get("/checkin/api/openapi.json")
    assert r.status_code == 200 and calls


def test_visibility_timeout_is_configurable(monkeypatch):
    """A killed worker's unacknowledged message comes back after CME_CELERY_VISIBILITY_TIMEOUT (600 s by
    default); a short one (the fault tests) is also swept for that often."""
    from services.common.tasks import transport_options

    monkeypatch.delenv("CME_CELERY_VISIBILITY_TIMEOUT", raising=False)
    assert transport_options() == {"visibility_timeout": 600}
    monkeypatch.setenv("CME_CELERY_VISIBILITY_TIMEOUT", "8")
    assert transport_options() == {"visibility_timeout": 8, "unacked_restore_interval": 2,
                                   "unacked_restore_throttle": 1}


# ---- ServiceDB.call_row: the scan's one statement on the driver connection ------------------------------

def test_call_row_repeats_once_on_a_connection_the_server_dropped(databases):
    from sqlalchemy import text

    from services.checkin.db import db

    first = db.call_row("SELECT pg_backend_pid()", ())
    assert first is not None
    with db.engine.connect() as admin:  # the server drops the pooled connection (as a restart does)
        admin.execute(text(f"SELECT pg_terminate_backend({int(first[0])})"))
    again = db.call_row("SELECT pg_backend_pid(), %s::text", ("ok",))
    assert again is not None and again[1] == "ok" and again[0] != first[0]


def test_call_row_dropped_twice_is_a_retryable_failure(databases):
    from services.checkin.db import db

    # the statement ends its own connection: the call and its one repetition both meet a dropped connection
    with pytest.raises(OperationalError) as caught:
        db.call_row("SELECT pg_terminate_backend(pg_backend_pid())", ())
    assert caught.value.connection_invalidated and db_unavailable(caught.value)
    assert db.call_row("SELECT 1", ()) == (1,)  # the pool goes on with new connections


def test_call_row_failing_statement_is_not_retryable_and_hides_its_parameters(databases):
    from services.checkin.db import db

    with pytest.raises(DBAPIError) as caught:
        db.call_row("SELECT %s::text WHERE 1 / 0 = 1", ("610102198503121233",))
    assert not db_unavailable(caught.value)
    assert "610102198503121233" not in str(caught.value)  # personal data never reaches a log line
    assert db.call_row("SELECT 2", ()) == (2,)


def test_call_row_on_a_server_that_is_down_is_a_retryable_failure(checkin_db_down):
    from services.checkin.db import db

    with pytest.raises(OperationalError) as caught:
        db.call_row("SELECT 1", ())
    assert db_unavailable(caught.value)
