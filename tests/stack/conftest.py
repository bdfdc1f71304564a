"""The whole suite behind the real nginx, for the cross-service tests (marked `stack`).

One stack per test run, started through the local runner (deploy/local.py) on PostgreSQL with its
own databases (cmet_<run>_stack_<service>, migrated by `deploy.manage upgrade`, dropped at the end),
its own redis-server on a free port (tests stop and start it), the fake WeChat OAuth server
(deploy/fakes/wechat.py) on a free port that every service uses as WeChat, free ports for gunicorn
and nginx, and a var dir in a temp folder. Stack and test process share the default secret and key sets.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from deploy.local import SERVICES, Stack, free_port
from services.common.config import normalise_db_url


class StackHandle:
    """What a test sees: URLs, paths, databases and the runner's controls."""

    def __init__(self, stack: Stack, database_base: str):
        self.stack = stack
        self.base_url = stack.base_url
        self.wechat_url = stack.wechat_url
        self.sms_log = stack.sms_log
        self.database_base = database_base
        self.demo_summary: dict | None = None  # the stack fixture loads the demo as it starts
        self._engines: dict[str, Engine] = {}
        self.http = requests.Session()

    def url(self, path: str) -> str:
        return self.base_url + path

    def log_path(self, name: str) -> Path:
        return self.stack.log_path(name)

    def stop_process(self, name: str) -> None:
        self.stack.stop_process(name)

    def start_process(self, name: str) -> None:
        self.stack.start_process(name)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        self.stack.wait_healthy(timeout)

    def database_url(self, service: str) -> str:
        return normalise_db_url(f"{self.database_base}_{service}")

    def engine(self, service: str) -> Engine:
        if service not in self._engines:
            self._engines[service] = create_engine(self.database_url(service), pool_pre_ping=True)
        return self._engines[service]

    def session(self, service: str) -> Session:
        """A session on the stack's own database of a service (not the test run's)."""
        return Session(bind=self.engine(service), expire_on_commit=False)

    @staticmethod
    def wait_until(check: Callable[[], object], timeout: float = 30.0, interval: float = 0.3, what: str = "") -> object:
        return wait_until(check, timeout, interval, what)

    @contextmanager
    def clock_moved(self, seconds: int) -> Iterator[None]:
        """Move every service's clock (CME_CLOCK_FILE, re-read by the running suite), then put it back."""
        path = Path(self.stack.env["CME_CLOCK_FILE"])
        path.write_text(str(int(seconds)))
        try:
            yield
        finally:
            path.write_text("0")

    def dispose(self) -> None:
        self.http.close()
        for engine in self._engines.values():
            engine.dispose()


def wait_until(check: Callable[[], object], timeout: float = 30.0, interval: float = 0.3, what: str = "") -> object:
    """Poll until check() is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or check}")
        time.sleep(interval)


def _drop_databases(base: str) -> None:
    url = make_url(normalise_db_url(f"{base}_projects"))
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in SERVICES:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(normalise_db_url(f"{base}_{name}")).database}" '
                                  "WITH (FORCE)"))
    finally:
        admin.dispose()


@contextmanager
def running_stack(base: str, prefix: str, **extra_env: str) -> Iterator[StackHandle]:
    """The whole suite under the local runner on the databases <base>_<service>, in a var dir of its own (kept
    when CME_KEEP_STACK_VAR=1), with `extra_env` on top of the settings every stack test relies on."""
    var_dir = Path(tempfile.mkdtemp(prefix=prefix))
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": base,
        "CME_VAR_DIR": str(var_dir),
        "CME_SMS_LOG": str(var_dir / "sms.log"),
        # two workers of four threads: the concurrency tests really race inside the service
        "CME_WEB_WORKERS": "2",
        "CME_WEB_THREADS": "4",
        # the suite's one clock, movable while it runs (StackHandle.clock_moved)
        "CME_CLOCK_FILE": str(var_dir / "clock-offset"),
        "CME_WECHAT_UA_REQUIRED": "0",
        **extra_env,
    })
    for name in SERVICES:  # a per-service override in the environment would bypass the stack's databases
        env.pop(f"CME_{name.upper()}_DATABASE_URL", None)
    gateway_port = free_port()
    # links the services make (the WeChat login's way back, QR codes) point at this stack's gateway
    env["CME_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{gateway_port}"
    runner = Stack(var_dir, gateway_port=gateway_port, service_ports={name: free_port() for name in SERVICES},
                   env=env, own_redis_port=free_port(), wechat_port=free_port())
    handle = StackHandle(runner, base)
    try:
        runner.start(timeout=120)
        yield handle
    finally:
        handle.dispose()
        runner.stop()
        if os.environ.get("CME_KEEP_STACK_VAR") != "1":
            shutil.rmtree(var_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def stack() -> Iterator[StackHandle]:
    # tests/conftest.py set DATABASE_URL to postgresql://.../cmet_<run>; the `databases` fixture owns
    # cmet_<run>_<service>, so the stack takes cmet_<run>_stack_<service>.
    base = os.environ["DATABASE_URL"].rstrip("/") + "_stack"
    try:
        # one certificate a chunk: an export of two goes through the render processes of the real Celery worker
        with running_stack(base, "cmet-stack-", CME_CERTS_RENDER_CHUNK="1") as handle:
            # the demo first, as `make up` loads it: the runner keeps it out of a database whose committee accounts
            # are not the demo's, and tests that make their own accounts (the fuzz run's) may come first
            handle.demo_summary = handle.stack.load_demo()
            yield handle
    finally:
        _drop_databases(base)


@pytest.fixture(scope="session")
def demo(stack: StackHandle) -> dict:
    """The demo data of `make up`, loaded into the stack when it started (loading is idempotent)."""
    logins = stack.demo_summary
    assert logins and "institutions" in logins, f"the demo data did not load: {logins}"
    return logins
