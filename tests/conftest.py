"""Test set-up: real PostgreSQL and Redis, a fresh set of databases per test run.

Each run gets its own database names (cmet_<run>_<service>) so parallel runs never meet;
tables are emptied after every test. Helpers log a principal in without SMS (login itself
is tested in tests/projects/test_login.py).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RUN = uuid.uuid4().hex[:8]
_TMP = Path(tempfile.mkdtemp(prefix=f"cmet-{RUN}-"))
os.environ.setdefault("CME_TEST_PG", "postgresql://root@127.0.0.1:5432")
os.environ["DATABASE_URL"] = f"{os.environ['CME_TEST_PG']}/cmet_{RUN}"
os.environ["REDIS_URL"] = os.environ.get("CME_TEST_REDIS_URL", "redis://127.0.0.1:6379/1")
os.environ["CME_VAR_DIR"] = str(_TMP)
os.environ["CME_SMS_LOG"] = str(_TMP / "sms.log")
os.environ["CME_SMS_PROVIDER"] = "log"
os.environ["CME_ENV"] = "test"
# unit tests see every change at once; the projector cache has its own test
os.environ["CME_PROJECTOR_LIVE_CACHE_SECONDS"] = "0"
os.environ["CME_ENV_FILE"] = str(_TMP / "none.env")

import pytest  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from services.common import clock  # noqa: E402
from services.common.auth import COOKIE, Principal, issue_token  # noqa: E402
from services.common.config import SERVICES, get_settings  # noqa: E402
from services.common.db import ensure_database  # noqa: E402

get_settings.cache_clear()


def _service_db(name: str):  # type: ignore[no-untyped-def]
    import importlib

    importlib.import_module(f"services.{name}.models")
    return importlib.import_module(f"services.{name}.db").db


@pytest.fixture(scope="session")
def databases():
    """Create every service's database and schema once per run; drop them at the end."""
    made = {}
    for name in SERVICES:
        sdb = _service_db(name)
        ensure_database(sdb.url)
        sdb.metadata.create_all(sdb.engine)
        made[name] = sdb
    yield made
    for sdb in made.values():
        sdb.reset()
    url = make_url(get_settings().service_database_url("projects"))
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in SERVICES:
            conn.execute(text(f'DROP DATABASE IF EXISTS "cmet_{RUN}_{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(autouse=True)
def _own_redis_keys():
    """Apart from _clean_tables, so that a module overriding that one (the permission matrix, which restores a
    snapshot instead) still keeps its Redis keys under this run's prefixes and forgets them after each test: one
    case's logout of TEST_SID must not end the next case's session."""
    _own_redis_prefixes()
    yield
    _forget_unknown_login_tries()


@pytest.fixture(autouse=True)
def _clean_tables(request):
    yield
    clock.set_now(None)
    if "databases" not in request.fixturenames:
        return
    for name in SERVICES:
        sdb = _service_db(name)
        sdb.session.remove()
        tables = ", ".join(f'"{t.name}"' for t in sdb.metadata.sorted_tables)
        if tables:
            with sdb.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def _own_redis_prefixes() -> None:
    """The wrong tries of ID numbers without an account and the sessions ended early live in Redis, not in a
    table: this run keeps them under prefixes of its own, so a run beside it (a CI clone, another checkout)
    neither sees nor clears them."""
    from services.certs.certificates import ratelimit
    from services.common import auth
    from services.credits.accounts import services as accounts

    ratelimit.PREFIX = f"cme:certs:verify:test-{RUN}:"  # counted per real minute: a test's tries not the next's
    ratelimit.NAME_PREFIX = f"cme:certs:name-check:test-{RUN}:"
    accounts.UNKNOWN_LOGIN_PREFIX = f"cme:unknown-login:test-{RUN}:"
    accounts.UNKNOWN_RESET_PREFIX = f"cme:unknown-reset:test-{RUN}:"
    auth._ENDED = f"cme:session-ended:test-{RUN}:"  # ended sessions too: every run has a trainee:1


def _forget_unknown_login_tries() -> None:
    """The same made-up ID numbers (and certificate numbers) are typed by test after test, and the page cookies
    share one session id: each test starts with none counted and no session ended."""
    import redis

    from services.certs.certificates import ratelimit
    from services.common import auth
    from services.common.config import redis_client
    from services.credits.accounts import services as accounts

    client = redis_client()
    prefixes = (accounts.UNKNOWN_LOGIN_PREFIX, accounts.UNKNOWN_RESET_PREFIX, ratelimit.PREFIX, ratelimit.NAME_PREFIX,
                auth._ENDED)  # a test's logout of TEST_SID ends that session for itself only
    try:
        keys = [k for prefix in prefixes for k in client.scan_iter(prefix + "*", count=1000)]
        if keys:
            client.delete(*keys)
    except redis.RedisError:  # a test that stopped Redis on purpose: nothing of its own to forget
        pass


def _app(name: str, databases):  # type: ignore[no-untyped-def]
    import importlib

    app = importlib.import_module(f"services.{name}.app").create_app({"TESTING": True})
    return app


@pytest.fixture(scope="session")
def projects_app(databases):
    return _app("projects", databases)


@pytest.fixture(scope="session")
def checkin_app(databases):
    return _app("checkin", databases)


@pytest.fixture(scope="session")
def credits_app(databases):
    return _app("credits", databases)


@pytest.fixture(scope="session")
def certs_app(databases):
    return _app("certs", databases)


@pytest.fixture
def projects_db(databases):
    return databases["projects"]


@pytest.fixture
def sms_log() -> Path:
    return Path(os.environ["CME_SMS_LOG"])


@pytest.fixture
def sms_inbox(sms_log):  # type: ignore[no-untyped-def]
    """An empty SMS log of the `log` provider, and a function reading what was sent since."""
    import json

    if sms_log.exists():
        sms_log.unlink()

    def read() -> list[dict]:
        if not sms_log.exists():
            return []
        return [json.loads(line) for line in sms_log.read_text(encoding="utf-8").splitlines() if line.strip()]

    return read


def bearer(principal: Principal) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(principal)}"}


TEST_SID = "test-session"  # the session id of the page cookies tests make, so that they know its forms' token


def session_cookie(principal: Principal) -> str:
    """A page cookie's value: a login of the principal, session TEST_SID."""
    return issue_token(principal, sid=TEST_SID)


def csrf_for(principal: Principal | None, visitor: str = "test-visitor") -> str:
    """The form token a page shows to the session of session_cookie(principal), or (None) to an anonymous visitor
    whose cme_csrf cookie is `visitor`."""
    from services.common.auth import csrf_basis

    basis = csrf_basis(principal.subject, TEST_SID) if principal else f"anon:{visitor}"
    return hmac.new(get_settings().secret_key.encode(), f"csrf:{basis}".encode(), hashlib.sha256).hexdigest()[:32]


def page_version(client, url: str) -> str:  # type: ignore[no-untyped-def]
    """The hidden version a page's form sends, as the browser would read it from the page at `url`."""
    import re

    return re.search(r'name="version" value="(\d+)"', client.get(url).get_data(as_text=True)).group(1)


def login_client(client, principal: Principal):  # type: ignore[no-untyped-def]
    """Give a test client the page cookie of a principal."""
    client.set_cookie(COOKIE, session_cookie(principal), domain="localhost", path="/")
    return client


@pytest.fixture
def make_institution(projects_db):
    """Create an institution with one responsible person; returns (institution, principal)."""
    from services.projects.institutions.services import add_admin, create_institution

    counter = {"n": 0}

    def make(name: str | None = None, account: str | None = None, password: str = "Passw0rd!"):
        counter["n"] += 1
        n = counter["n"]
        s = projects_db.new_session()
        inst = create_institution(s, account or f"inst{n:03d}", name or f"测试医院{n}", password)
        admin = add_admin(s, inst, f"负责人{n}", f"1380000{n:04d}")
        s.commit()
        principal = Principal(role="institution", subject=f"inst:{inst.id}:admin:{admin.id}", name=inst.name,
                              institution_id=inst.id, admin_id=admin.id)
        s.close()
        return inst, principal

    return make


@pytest.fixture
def inst_a(make_institution):
    return make_institution("西安市第一医院", "xa_first")


@pytest.fixture
def inst_b(make_institution):
    return make_institution("宝鸡市中心医院", "bj_center")


@pytest.fixture
def reviewer(projects_db):
    from services.projects.institutions.services import create_reviewer

    s = projects_db.new_session()
    r = create_reviewer(s, "committee01", "审核员甲", "Review0r!", "13900000001")
    s.commit()
    principal = Principal(role="reviewer", subject=f"reviewer:{r.id}", name=r.name, reviewer_id=r.id)
    s.close()
    return r, principal


@contextmanager
def fresh_service_db(service: str, dialect: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                     suffix: str = "fresh") -> Iterator[Any]:
    """The service's ServiceDB on an empty database of its own, PostgreSQL (`<test db>_<suffix>`) or SQLite (the
    local run's embedded default) under tmp_path, for a migration test; dropped afterwards."""
    import importlib

    importlib.import_module(f"services.{service}.models")  # the whole schema is known
    sdb = importlib.import_module(f"services.{service}.db").db
    variable = f"CME_{service.upper()}_DATABASE_URL"
    if dialect == "postgresql":
        base = make_url(get_settings().service_database_url(service))
        url = base.set(database=f"{base.database}_{suffix}").render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp_path / (service + '.db')}"
    monkeypatch.setenv(variable, url)
    get_settings.cache_clear()
    sdb.reset()
    try:
        if dialect == "postgresql":
            ensure_database(url)
            with create_engine(url).begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        yield sdb
    finally:
        sdb.reset()
        monkeypatch.delenv(variable)
        get_settings.cache_clear()
        if dialect == "postgresql":
            admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
            admin.dispose()
