"""The local runner as the person on call uses it, without starting the suite: `status` says by its exit code
whether anything is stopped, and `up` on a half-running stack repairs it with the settings it was started with
and, when it fails, stops only what it started itself."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from deploy import local
from deploy.local import SERVICES, Proc, Stack, StackError, _start_time

PORTS_IN_USE = Stack.ports_in_use


@pytest.fixture(autouse=True)
def ports_free(monkeypatch) -> None:
    """`up` checks that no other program holds its ports; these tests start nothing, on the default ports that
    another stack on this machine may be using."""
    monkeypatch.setattr(Stack, "ports_in_use", lambda self: [])


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen]]:
    """Stand-ins for running processes of the stack (each in a session of its own, as the runner starts them)."""
    started: list[subprocess.Popen] = []
    yield started
    for child in started:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def _pretend_running(stack: Stack, name: str, sleepers: list[subprocess.Popen],
                     code: str | None = None) -> subprocess.Popen:
    """A process as the runner starts it: its pid file names the code it was started from (`code`: its pid file's
    third line; default the checkout's)."""
    child = subprocess.Popen(["sleep", "120"], start_new_session=True)
    sleepers.append(child)
    stack.run_dir.mkdir(parents=True, exist_ok=True)
    if code is None:
        code = f"code {stack.code['digest']} {stack.code['commit']}"
    stack.pid_path(name).write_text(f"{child.pid}\n{_start_time(child.pid) or ''}\n{code}\n")
    return child


def test_status_exits_non_zero_naming_what_is_stopped(tmp_path, sleepers, capsys, monkeypatch):
    stack = Stack(tmp_path / "var", env={"REDIS_URL": os.environ["REDIS_URL"]})
    names = [p.name for p in stack.processes()]
    for name in names:
        _pretend_running(stack, name, sleepers)
    monkeypatch.setattr(stack, "healthy", lambda: {name: 200 for name in SERVICES})
    assert local.cmd_status(stack) == 0
    assert "STOPPED" not in capsys.readouterr().out

    os.killpg(sleepers[names.index("worker-credits")].pid, signal.SIGKILL)  # the credits worker died
    sleepers[names.index("worker-credits")].wait()
    assert local.cmd_status(stack) == 1
    out = capsys.readouterr().out
    assert "worker-credits     stopped" in out
    assert "STOPPED: worker-credits " in out

    monkeypatch.setattr(stack, "healthy", lambda: {**{name: 200 for name in SERVICES}, "certs": 503})
    assert local.cmd_status(stack) == 1
    out = capsys.readouterr().out
    assert "NOT HEALTHY: certs" in out and str(stack.log_path("web-certs")) in out  # the file itself, named


def test_status_of_a_stack_that_is_down_exits_non_zero(tmp_path, capsys):
    assert local.cmd_status(Stack(tmp_path / "var", env={"REDIS_URL": os.environ["REDIS_URL"]})) == 1
    assert "STOPPED: " in capsys.readouterr().out


@pytest.fixture
def started_on_6390(tmp_path, monkeypatch, sleepers) -> Path:
    """A stack started with REDIS_URL=redis://127.0.0.1:6390/0 and other ports, its credits worker still running;
    the operator's shell now sets none of those."""
    var = tmp_path / "var"
    first = Stack(var, gateway_port=8181, env={"REDIS_URL": "redis://127.0.0.1:6390/0",
                                               "DATABASE_URL": "postgresql://cme:s3cret@db.example/cme",
                                               "CME_CLOCK_OFFSET_SECONDS": "2505600", "CME_PII_KEYS": "k3y-1"})
    local.record_settings(first)
    _pretend_running(first, "worker-credits", sleepers)
    for name in [n for n in os.environ if n.startswith(("CME_", "GUNICORN_"))] + list(local.RECORDED):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CME_VAR_DIR", str(var))
    return var


def test_a_plain_up_reuses_the_settings_of_the_running_stack(started_on_6390):
    stack, notes = local.stack_from_env(strict=True)
    assert stack.redis_url == "redis://127.0.0.1:6390/0"
    assert stack.env["DATABASE_URL"] == "postgresql://cme:s3cret@db.example/cme"
    assert stack.gateway_port == 8181
    stack.write_configs()
    assert "port 6390" in (started_on_6390 / "run" / "redis.conf").read_text()
    assert any(n.startswith("REDIS_URL=redis://127.0.0.1:6390/0") for n in notes)
    assert not any("s3cret" in n for n in notes)  # the password is never printed


def refused_up(monkeypatch, **settings: str) -> str:
    """What a repair `up` in an environment with these settings says when it refuses."""
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as refused:
        local.stack_from_env(strict=True)
    return str(refused.value)


def test_an_up_that_contradicts_the_running_stack_is_refused(started_on_6390, monkeypatch):
    message = refused_up(monkeypatch, REDIS_URL="redis://127.0.0.1:6379/0",
                         DATABASE_URL="postgresql://cme:other@db.example/cme")
    assert "worker-credits" in message
    assert "REDIS_URL: the running stack uses redis://127.0.0.1:6390/0, this environment says " \
           "redis://127.0.0.1:6379/0" in message
    assert "DATABASE_URL" in message and "s3cret" not in message and "other" not in message
    assert "CME_GATEWAY_PORT" not in message  # not set here: taken from the record, no difference
    # the same settings given explicitly are no difference
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6390/0")
    monkeypatch.setenv("DATABASE_URL", "postgresql://cme:s3cret@db.example/cme")
    monkeypatch.setenv("CME_SERVICE_PORTS", "checkin=8102,projects=8101")
    stack, _ = local.stack_from_env(strict=True)
    assert stack.redis_url == "redis://127.0.0.1:6390/0"
    # status and down are not refused: they look at the stack that runs
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    stack, notes = local.stack_from_env(strict=False)
    assert stack.redis_url == "redis://127.0.0.1:6390/0" and any("REDIS_URL" in n for n in notes)


def test_a_repair_runs_on_the_clock_and_keys_the_stack_was_started_with(started_on_6390, monkeypatch):
    """A plain `up` after a worker died started it without the CME_CLOCK_OFFSET_SECONDS the others ran with:
    certificate exports were then stamped a month apart from the rest of the suite."""
    stack, notes = local.stack_from_env(strict=True)
    assert stack.env["CME_CLOCK_OFFSET_SECONDS"] == "2505600" and stack.env["CME_PII_KEYS"] == "k3y-1"
    assert "CME_CLOCK_OFFSET_SECONDS=2505600 (as the running stack was started)" in notes
    assert not any("k3y-1" in n for n in notes) and any(n.startswith("CME_PII_KEYS=") for n in notes)
    # the runner's own values are not the operator's: derived again, not carried
    assert "CME_WECHAT_API_BASE" not in (local.settings_path(started_on_6390).read_text())
    # another clock, or a setting the running processes do not have, is a difference: refused, keys not printed
    message = refused_up(monkeypatch, CME_CLOCK_OFFSET_SECONDS="0", CME_PII_KEYS="other-key",
                         CME_SMS_PROVIDER="tencent")
    assert "CME_CLOCK_OFFSET_SECONDS: the running stack uses 2505600, this environment says 0" in message
    assert "CME_SMS_PROVIDER: the running stack uses unset, this environment says tencent" in message
    assert "CME_PII_KEYS" in message and "k3y-1" not in message and "other-key" not in message


def test_a_repair_says_what_it_started_and_not_the_demo_again(tmp_path, sleepers, monkeypatch, capsys):
    stack = Stack(tmp_path / "var", env={"REDIS_URL": os.environ["REDIS_URL"]})
    _pretend_running(stack, "worker-checkin", sleepers)

    def start(restart: Sequence[str] = ()) -> None:
        stack.start_process("worker-checkin")  # running: left as it is
        stack.started.append("worker-credits")  # as start_process records what it starts

    monkeypatch.setattr(stack, "start", start)
    monkeypatch.setattr(stack, "load_demo", lambda: pytest.fail("a repair loads no demo data"))
    assert local.cmd_up(stack, demo=True) == 0
    out = capsys.readouterr().out
    assert "Repaired: started worker-credits; left running as they were: worker-checkin" in out
    assert "initial_password" not in out and "Demo data loaded" not in out


def test_once_nothing_runs_the_record_is_not_used(started_on_6390, sleepers, monkeypatch):
    os.killpg(sleepers[0].pid, signal.SIGKILL)
    sleepers[0].wait()
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    stack, notes = local.stack_from_env(strict=True)
    assert stack.redis_url == "redis://127.0.0.1:6379/0" and notes == []


def test_a_failed_up_stops_only_what_it_started(tmp_path, sleepers, monkeypatch, capsys):
    stack = Stack(tmp_path / "var", env={"REDIS_URL": os.environ["REDIS_URL"]},
                  extra_processes=[Proc("late-starter", ["sleep", "120"])])
    before = _pretend_running(stack, "worker-checkin", sleepers)

    def start(restart: Sequence[str] = ()) -> None:  # starts one process, then times out as an unhealthy stack does
        stack.start_process("worker-checkin")  # already running: not started again
        stack.start_process("late-starter")
        raise StackError("not healthy after 120s")

    monkeypatch.setattr(stack, "start", start)
    assert local.cmd_up(stack, demo=False) == 1
    err = capsys.readouterr().err
    assert "stopped: late-starter" in err and "left running as they were before: worker-checkin" in err
    assert stack.pid("late-starter") is None
    assert stack.pid("worker-checkin") == before.pid and before.poll() is None
    assert local.settings_path(stack.var_dir).stat().st_mode & 0o077 == 0  # DATABASE_URL may hold a password


@pytest.fixture
def upgraded_checkout(tmp_path, sleepers, monkeypatch) -> Stack:
    """A stack started from commit 6dc4180, web-credits and worker-credits still running, the checkout since
    brought to 457b0c3 (`git pull`): the running processes still execute the code they were started with."""
    monkeypatch.setattr(local, "code_version", lambda: {"digest": "b" * 64, "commit": "457b0c3"})
    stack = Stack(tmp_path / "var", env={"REDIS_URL": os.environ["REDIS_URL"]})
    local.record_settings(stack)  # the settings it was started with
    for name in ("web-credits", "worker-credits"):
        _pretend_running(stack, name, sleepers, code=f"code {'a' * 64} 6dc4180")
    _pretend_running(stack, "worker-checkin", sleepers)  # restarted after the pull: the new code already
    return stack


def test_status_names_the_processes_that_run_older_code_than_the_checkout(upgraded_checkout, monkeypatch, capsys):
    """After `git pull` every process ran on, and `make status` said all was well (exit 0): the on-call person
    could not see that the pages and workers still ran the old code against the migrated databases."""
    stack = upgraded_checkout
    monkeypatch.setattr(stack, "processes", lambda: [Proc(n, ["sleep"]) for n in
                                                      ("web-credits", "worker-checkin", "worker-credits")])
    monkeypatch.setattr(stack, "healthy", lambda: {name: 200 for name in SERVICES})
    assert local.cmd_status(stack) == 1
    out = capsys.readouterr().out
    assert "OLDER CODE: web-credits, worker-credits run older code (6dc4180) than the checkout (457b0c3)" in out
    assert "`make up`" in out


def test_pid_files_of_a_runner_that_kept_no_code_count_as_older(tmp_path, sleepers, monkeypatch, capsys):
    stack = Stack(tmp_path / "var", env={"REDIS_URL": os.environ["REDIS_URL"]})
    monkeypatch.setattr(stack, "processes", lambda: [Proc("web-certs", ["sleep"]), Proc("redis", ["sleep"])])
    _pretend_running(stack, "redis", sleepers, code="")  # not the suite's code: no restart for an upgrade
    _pretend_running(stack, "web-certs", sleepers, code="")
    monkeypatch.setattr(stack, "healthy", lambda: {name: 200 for name in SERVICES})
    assert local.cmd_status(stack) == 1
    assert "OLDER CODE: web-certs runs older code (code the runner of then did not record)" in capsys.readouterr().out


def _fake_start(stack: Stack, monkeypatch, steps: list[str], fail_migration: bool = False) -> None:
    def migrate() -> None:
        steps.append("migrate")
        if fail_migration:
            raise StackError("migrations failed (see var/log/migrate.log)")

    monkeypatch.setattr(stack, "migrate", migrate)
    monkeypatch.setattr(stack, "write_configs", lambda: None)
    monkeypatch.setattr(stack, "processes", lambda: [Proc(n, ["sleep", "120"]) for n in
                                                      ("web-credits", "worker-checkin", "worker-credits")])
    monkeypatch.setattr(stack, "wait_healthy", lambda timeout=120.0: steps.append("healthy"))
    monkeypatch.setattr(stack, "healthy", lambda: {name: 200 for name in SERVICES})


def test_up_after_a_pull_migrates_then_restarts_what_runs_the_old_code(upgraded_checkout, monkeypatch, capsys):
    """A plain `make up` after `git pull` migrated the databases and then said "Repaired: started nothing": every
    process went on running the old code."""
    stack = upgraded_checkout
    old = {name: stack.pid(name) for name in ("web-credits", "worker-checkin", "worker-credits")}
    steps: list[str] = []
    _fake_start(stack, monkeypatch, steps)
    monkeypatch.setattr(stack, "load_demo", lambda: pytest.fail("an upgrade of a running stack loads no demo"))
    try:
        assert local.cmd_up(stack, demo=True) == 0
        out = capsys.readouterr().out
        assert steps == ["migrate", "healthy"]
        assert "upgrade: web-credits, worker-credits run older code (6dc4180) than the checkout (457b0c3)" in out
        assert "Upgraded: restarted web-credits, worker-credits on 457b0c3; left running as they were: " \
               "worker-checkin\n" in out
        assert "Repaired" not in out
        new = {name: stack.pid(name) for name in old}
        assert new["worker-checkin"] == old["worker-checkin"]
        assert new["web-credits"] not in (None, old["web-credits"]) and new["worker-credits"] != old["worker-credits"]
        assert local.cmd_status(stack) == 0  # every process on the checkout's code now
    finally:
        stack.stop()


def test_a_failed_migration_leaves_the_old_processes_serving(upgraded_checkout, monkeypatch, capsys):
    stack = upgraded_checkout
    old = {name: stack.pid(name) for name in ("web-credits", "worker-checkin", "worker-credits")}
    _fake_start(stack, monkeypatch, [], fail_migration=True)
    assert local.cmd_up(stack, demo=False) == 1
    err = capsys.readouterr().err
    assert "migrations failed" in err and "left running as they were before: web-credits, worker-checkin" in err
    assert {name: stack.pid(name) for name in old} == old  # untouched, on the old code
    assert local.cmd_status(stack) == 1
    assert "OLDER CODE: web-credits, worker-credits" in capsys.readouterr().out


def test_the_code_version_follows_the_files_the_processes_run(tmp_path):
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "a.py").write_text("x = 1\n")
    (tmp_path / "services" / "__pycache__").mkdir()
    first = local.code_version(tmp_path)
    (tmp_path / "services" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert local.code_version(tmp_path) == first  # what Python caches is not code
    (tmp_path / "services" / "a.py").write_text("x = 2\n")
    assert local.code_version(tmp_path)["digest"] != first["digest"]


def test_the_fake_wechat_log_holds_no_secret_nor_login_code(tmp_path):
    """var/log/fake-wechat.log had every token exchange's query string: the 公众号's secret (CME_WECHAT_SECRET, which
    an operator trying the suite with the production settings has set) and the phone's login code."""
    import urllib.request

    port = local.free_port()
    log = tmp_path / "fake-wechat.log"
    env = {**os.environ, "CME_WECHAT_APPID": "wx-appid-1", "CME_WECHAT_SECRET": "s3cret-of-the-account"}
    with open(log, "wb") as out:
        child = subprocess.Popen([sys.executable, "-m", "deploy.fakes.wechat", "--port", str(port)], env=env,
                                 stdout=out, stderr=subprocess.STDOUT, cwd=local.ROOT)
    try:
        deadline = time.monotonic() + 20
        while not local._port_answers(port, timeout=0.2):
            assert child.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        url = (f"http://127.0.0.1:{port}/sns/oauth2/access_token?appid=wx-appid-1&secret=s3cret-of-the-account"
               "&code=the-phones-code-123&grant_type=authorization_code")
        with urllib.request.urlopen(url, timeout=5) as answer:
            assert b"errcode" in answer.read()  # an unknown code: refused, and logged all the same
    finally:
        child.terminate()
        child.wait(10)
    text = log.read_text()
    assert "GET /sns/oauth2/access_token" in text  # the request is still logged
    assert "s3cret-of-the-account" not in text and "the-phones-code-123" not in text


def test_a_migration_that_stops_is_named_first_not_after_a_traceback(tmp_path):
    """`make up` printed the last 3,000 characters of the migration's traceback: the reason (which service, what
    to do) was its very last line, under forty lines of alembic's frames."""
    (tmp_path / "a-file").write_text("")  # where projects' database should be a directory: it cannot be opened
    stack = Stack(tmp_path / "var", env={**os.environ, "CME_ENV_FILE": str(tmp_path / "none.env"),
                                         "CME_PROJECTS_DATABASE_URL": f"sqlite:///{tmp_path}/a-file/p.db"})
    with pytest.raises(StackError) as failed:
        stack.migrate()
    headline = str(failed.value).splitlines()[0]
    assert headline.startswith("migrations failed: projects: its database was not brought to head: "), headline
    assert f"{tmp_path}/a-file" in headline and "fix what it names, then run the upgrade again" in headline
    assert str(stack.log_path("migrate")) in str(failed.value)
    assert "Traceback" in stack.log_path("migrate").read_text()  # the whole story stays in the log


def test_up_names_the_database_and_redis_without_their_passwords(tmp_path, monkeypatch, capsys):
    """`make up` printed DATABASE_URL and REDIS_URL as given, passwords and all, on the screen (and into whatever
    keeps the terminal's output: a CI log, a cron mail)."""
    stack = Stack(tmp_path / "var", env={"REDIS_URL": "redis://:r3dis-pass@127.0.0.1:6391/0",
                                         "DATABASE_URL": "postgresql://cme:pg-pass@db.example/cme"})
    monkeypatch.setattr(stack, "start", lambda restart=(): None)
    assert local.cmd_up(stack, demo=False) == 0
    out = capsys.readouterr().out
    assert "databases: postgresql://cme:***@db.example/cme" in out and "redis://:***@127.0.0.1:6391/0" in out
    assert "pg-pass" not in out and "r3dis-pass" not in out


def test_an_upgrade_of_processes_whose_settings_were_not_recorded_is_refused(upgraded_checkout, monkeypatch,
                                                                            capsys):
    """A runner of before 29 November kept no record of the CME_* settings given in the environment (a clock
    offset, keys): restarting its processes with this shell's settings could bring them back on other keys or
    another clock, so the upgrade asks for `make down` and an `up` with the settings they were started with."""
    stack = upgraded_checkout
    record = local.settings_path(stack.var_dir)
    settings = json.loads(record.read_text())
    del settings["environment"]
    record.write_text(json.dumps(settings))
    old = {name: stack.pid(name) for name in ("web-credits", "worker-credits")}
    steps: list[str] = []
    _fake_start(stack, monkeypatch, steps)
    assert local.cmd_up(stack, demo=False) == 1
    err = capsys.readouterr().err
    assert "web-credits, worker-credits run older code" in err
    assert "`make down`, then `make up` with the settings they were started with" in err
    assert steps == [] and {name: stack.pid(name) for name in old} == old  # nothing migrated, nothing stopped
    assert "environment" not in json.loads(record.read_text())  # the record is left as it was


def test_up_says_which_databases_it_migrated_and_from_which_revision(tmp_path, monkeypatch, capsys):
    """After an upgrade's `make up` the on-call person could not tell whether any migration had run, nor which
    (var/log/migrate.log said "database at head" for every service, whether it moved or not)."""
    env = {k: v for k, v in os.environ.items() if "DATABASE_URL" not in k}  # SQLite files in the var directory
    stack = Stack(tmp_path / "var", env={**env, "CME_ENV_FILE": str(tmp_path / "none.env")})
    stack.migrate()
    assert "credits: database at head" in stack.log_path("migrate").read_text()
    step_back = ("from deploy.manage import service_db; from alembic import command; "
                 "command.downgrade(service_db('credits').alembic_config(), '-1')")
    subprocess.run([sys.executable, "-c", step_back], env=stack.env, cwd=local.ROOT, check=True, capture_output=True)
    monkeypatch.setattr(stack, "start", lambda restart=(): stack.migrate())
    assert local.cmd_up(stack, demo=False) == 0
    out = capsys.readouterr().out
    migrated = [line for line in out.splitlines() if line.startswith("migrated: ")]
    assert len(migrated) == 1 and re.fullmatch(r"migrated: credits [0-9a-f]{12} → [0-9a-f]{12}", migrated[0]), out
    log = stack.log_path("migrate").read_text()
    assert "projects: database at head, nothing to do" in log and "credits: database at head, upgraded from" in log


def test_up_names_a_port_another_program_holds_and_the_setting_that_chose_it(tmp_path, monkeypatch, capsys):
    """A port taken by another program surfaced 20 seconds later as gunicorn's "Connection in use" in the tail of
    one log, after the rest had been started and stopped again; the setting to change was not named."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stack = Stack(tmp_path / "var", service_ports={"credits": port}, env={"REDIS_URL": os.environ["REDIS_URL"]})
        monkeypatch.setattr(Stack, "ports_in_use", PORTS_IN_USE)
        monkeypatch.setattr(stack, "start", lambda restart=(): pytest.fail("nothing is started"))
        assert local.cmd_up(stack, demo=False) == 1
    out, err = capsys.readouterr()
    assert f"port {port} (web-credits, CME_SERVICE_PORTS)" in err and "another program" in err
    assert "redis: starting" not in out  # nothing is said to start


def test_an_upgrade_restarts_one_process_after_another_with_the_gateway_last(tmp_path, monkeypatch):
    """The upgrade stopped every process, gateway first, then started them all: the whole suite, pages included,
    refused connections for about ten seconds. One after another, each service is away only for its own restart,
    and the gateway, restarted last, answers meanwhile with its page saying the service is unavailable."""
    stack = Stack(tmp_path / "var", env={"REDIS_URL": os.environ["REDIS_URL"]})
    names = ["web-projects", "web-credits", "worker-credits", "relay-credits", "gateway"]
    calls: list[str] = []
    monkeypatch.setattr(stack, "processes", lambda: [Proc(n, ["sleep"]) for n in names])
    monkeypatch.setattr(stack, "write_configs", lambda: None)
    monkeypatch.setattr(stack, "migrate", lambda: calls.append("migrate"))
    monkeypatch.setattr(stack, "stop_process", lambda name, timeout=20.0: calls.append(f"stop {name}") or True)
    monkeypatch.setattr(stack, "start_process", lambda name: calls.append(f"start {name}") or 1)
    monkeypatch.setattr(stack, "wait_healthy", lambda timeout=120.0: calls.append("healthy"))
    stack.start(restart=names)
    assert calls == ["migrate", *[f"{verb} {name}" for name in names for verb in ("stop", "start")], "healthy"]


def test_the_code_version_of_a_checkout_changing_under_it_is_still_read(tmp_path, monkeypatch):
    """`make status` run while `git pull` removes a file: the file listed a moment before is gone when read."""
    (tmp_path / "services").mkdir()
    for name in ("a.py", "b.py"):
        (tmp_path / "services" / name).write_text("x = 1\n")
    read_bytes = Path.read_bytes

    def vanishing(self: Path) -> bytes:
        if self.name == "b.py":
            raise FileNotFoundError(self)
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", vanishing)
    assert len(local.code_version(tmp_path)["digest"]) == 64


def test_an_upgrade_that_one_process_cannot_start_on_leaves_the_others_running(upgraded_checkout, monkeypatch,
                                                                              capsys):
    """A release whose certs service could not start took the whole suite down: the upgrade stopped every process
    it had restarted, check-in included; it said web-certs was "left running as they were before" though it had
    died; and the log's tail showed gunicorn's HaltServer frames, not the error that stopped it."""
    stack = upgraded_checkout
    boot_error = ("import sys; print('Traceback (most recent call last):'); "
                  "print('RuntimeError: a bad release: certs cannot start'); "
                  "print('gunicorn.errors.HaltServer: <HaltServer \\'Worker failed to boot.\\' 3>'); sys.exit(3)")
    procs = [Proc("web-credits", ["sleep", "120"]), Proc("worker-checkin", ["sleep", "120"]),
             Proc("worker-credits", ["sleep", "120"]), Proc("web-certs", [sys.executable, "-c", boot_error])]
    _pretend_running(stack, "web-certs", [], code=f"code {'a' * 64} 6dc4180")
    monkeypatch.setattr(stack, "processes", lambda: procs)
    monkeypatch.setattr(stack, "migrate", lambda: None)
    monkeypatch.setattr(stack, "write_configs", lambda: None)
    monkeypatch.setattr(stack, "healthy", lambda: {name: 502 for name in SERVICES})
    try:
        assert local.cmd_up(stack, demo=False) == 1
        err = capsys.readouterr().err
        assert "stopped while starting: web-certs" in err
        assert "RuntimeError: a bad release: certs cannot start" in err.split("---")[0]  # named before the tail
        assert stack.pid("web-certs") is None
        assert all(stack.pid(name) for name in ("web-credits", "worker-checkin", "worker-credits"))
        assert "left running on 457b0c3: web-credits, worker-checkin, worker-credits" in err
        assert "not running: web-certs" in err and "left running as they were before" not in err
    finally:
        stack.stop()


def test_an_upgrade_behind_a_running_transaction_stops_instead_of_stalling_the_suite(tmp_path, monkeypatch):
    """`make up` migrates while the old processes still serve. A transaction of theirs that had read a table the
    migration alters (a slow request, a task) made the migration wait without end, saying nothing, and every query
    of the running suite on that table queued behind its lock: the credits pages hung with it."""
    import psycopg
    from alembic import command

    from tests.conftest import fresh_service_db

    with fresh_service_db("credits", "postgresql", tmp_path, monkeypatch, "locked") as cdb:
        cfg = cdb.alembic_config()
        command.upgrade(cfg, "head")
        # the steps an upgrade still has to take start with one that alters credit_awards (a4d6f0b2c8e1): pinned,
        # since "-1" stopped being that step once a later migration (offering_cancelled) came
        command.downgrade(cfg, "a4d6f0b2c8e1-1")
        cdb.engine.dispose()
        url = os.environ["CME_CREDITS_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url) as busy:  # an old process's open transaction that has read the table
            busy.execute("SELECT count(*) FROM credit_awards")
            began = time.monotonic()
            result = subprocess.run([sys.executable, "-m", "deploy.manage", "upgrade", "credits"], cwd=local.ROOT,
                                    capture_output=True, text=True, timeout=60)
            took = time.monotonic() - began
            busy.rollback()
    assert result.returncode != 0 and took < 30, (took, result.stderr[-500:])
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("credits: its database was not brought to head") and "lock timeout" in last, last
    assert "another session holds a lock" in last


@pytest.fixture
def running_gateway(tmp_path) -> Iterator[Stack]:
    """A real nginx, started by the runner from an older checkout (its pid file names other code)."""
    stack = Stack(tmp_path / "var", gateway_port=local.free_port(), env={"REDIS_URL": os.environ["REDIS_URL"]})
    stack.write_configs()
    local.record_settings(stack)  # the settings it was started with
    stack.start_process("gateway")
    try:
        local_wait = time.monotonic() + 10
        while not local._port_answers(stack.gateway_port) and time.monotonic() < local_wait:
            time.sleep(0.05)
        lines = stack.pid_path("gateway").read_text().splitlines()
        stack.pid_path("gateway").write_text(f"{lines[0]}\n{lines[1]}\ncode {'a' * 64} 6dc4180\n")
        yield stack
    finally:
        stack.stop()


def _answers_throughout(port: int, until: float) -> list[float]:
    """Connect to the port again and again until `until`; the moments a connection was refused."""
    refused = []
    while time.monotonic() < until:
        if not local._port_answers(port, timeout=0.5):
            refused.append(time.monotonic())
        time.sleep(0.005)
    return refused


def test_an_upgrade_reloads_the_gateway_instead_of_restarting_it(running_gateway, monkeypatch, capsys):
    """`make up` after a pull stopped nginx and started it again: connections were refused for ~0.1 s, a phone
    scanning then got no page. A HUP to its master gives it the new configuration and pages on the same socket."""
    import threading

    stack = running_gateway
    master = stack.pid("gateway")
    workers = local._children(master)
    assert stack.older_code(["gateway"]) and workers
    monkeypatch.setattr(stack, "processes", lambda: [p for p in Stack.processes(stack) if p.name == "gateway"])
    monkeypatch.setattr(stack, "migrate", lambda: None)
    monkeypatch.setattr(stack, "wait_healthy", lambda timeout=120.0: None)
    refused: list[float] = []
    watcher = threading.Thread(target=lambda: refused.extend(_answers_throughout(stack.gateway_port,
                                                                               time.monotonic() + 1.5)))
    watcher.start()
    time.sleep(0.2)
    assert local.cmd_up(stack, demo=False) == 0
    watcher.join()
    assert refused == []
    assert stack.pid("gateway") == master  # the same master: not restarted
    # its workers are new ones (the old ones finish what they serve and leave)
    deadline = time.monotonic() + 10
    while local._children(master) & workers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert local._children(master) and not local._children(master) & workers
    assert stack.older_code(["gateway"]) == {}  # its pid file names the checkout's code
    assert f"Upgraded: reloaded gateway (no connection dropped) on {local.code_label(stack.code)}" \
        in capsys.readouterr().out


def test_a_gateway_that_does_not_answer_is_restarted(running_gateway, monkeypatch):
    """A master alive whose port does not answer is not healthy: a reload would not mend it, a restart does."""
    stack = running_gateway
    master = stack.pid("gateway")
    monkeypatch.setattr(local, "_port_answers", lambda port, timeout=1.0, host="127.0.0.1": False)
    assert stack.reload_process("gateway") is False
    assert stack.pid("gateway") == master and stack.older_code(["gateway"])  # left for the restart
    assert stack.reload_process("web-credits") is False  # gunicorn is restarted: its code is imported once


def test_an_invalid_gateway_configuration_is_refused_before_the_reload(running_gateway):
    stack = running_gateway
    master = stack.pid("gateway")
    workers = local._children(master)
    conf = stack.run_dir / "nginx.conf"
    conf.write_text(conf.read_text() + "\nnot an nginx directive;\n")
    with pytest.raises(StackError, match="nginx configuration is invalid"):
        stack.reload_process("gateway")
    assert stack.pid("gateway") == master and local._children(master) == workers


def test_a_production_refusal_is_one_line_naming_the_setting_not_a_traceback(tmp_path, monkeypatch, capsys):
    """`make up` with CME_ENV=production and the SMS log (a contractor's trial with real keys) ended in a Python
    traceback whose last line held the reason."""
    from services.common.config import get_settings

    env_file = tmp_path / ".env"
    env_file.write_text("CME_ENV=production\nCME_SMS_PROVIDER=log\n")
    monkeypatch.setenv("CME_ENV_FILE", str(env_file))
    monkeypatch.setenv("CME_VAR_DIR", str(tmp_path / "var"))
    for name in ("CME_ENV", "CME_SMS_PROVIDER", "CME_SECRET_KEY", "CME_PII_KEYS", "CME_HASH_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(Stack, "start", lambda self, restart=(): pytest.fail("nothing starts on refused settings"))
    get_settings.cache_clear()
    try:
        assert local.main(["up", "--no-demo"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("FAILED: CME_ENV=production refuses to start: CME_SECRET_KEY must be set"), err
        assert "CME_SMS_PROVIDER=log writes login codes to a file" in err and "nothing was started" in err
        assert "CME_ENV=development" in err and "Traceback" not in err
        assert local.main(["down"]) == 0  # what runs can be stopped whatever the settings say now
        assert "stopped: nothing was running" in capsys.readouterr().out
    finally:
        get_settings.cache_clear()


def test_an_up_without_the_demo_says_how_to_make_the_first_committee_account(tmp_path, monkeypatch, capsys):
    stack = Stack(tmp_path / "var", env={"REDIS_URL": os.environ["REDIS_URL"]})
    monkeypatch.setattr(stack, "start", lambda restart=(): None)
    assert local.cmd_up(stack, demo=False) == 0
    out = capsys.readouterr().out
    assert "Demo data: skipped" in out
    assert "python -m services.projects.institutions.reviewers add ACCOUNT NAME MOBILE" in out
    assert "It reads .env, not this shell" in out


def test_the_demo_is_not_mixed_into_an_installation_started_without_it(tmp_path, capsys):
    """A contractor started the suite once with CME_LOCAL_DEMO=0 in the shell, made the committee's account and
    filed a real offering; a later `make down` / `make up` without it loaded the demo into the same databases: the
    `committee` account whose password README publishes, the sample catalogue, and made-up trainees' scans in the
    real offering."""
    env = {**os.environ, "CME_ENV_FILE": str(tmp_path / "none.env"), "CME_VAR_DIR": str(tmp_path / "var")}
    for name in ("DATABASE_URL", "CME_PROJECTS_DATABASE_URL", "CME_ENV"):
        env.pop(name, None)
    stack = Stack(tmp_path / "var", env=env)
    stack.migrate()
    cli = [sys.executable, "-m", "services.projects.institutions.reviewers"]
    subprocess.run([*cli, "add", "wjh", "王建华", "13912345678", "--password-stdin"], input="Weiyuanhui@2026\n",
                   env=stack.env, cwd=local.ROOT, check=True, capture_output=True, text=True)
    summary = stack.load_demo()
    assert summary is not None and "committee accounts of its own (wjh)" in summary["not_loaded"]
    listed = subprocess.run([*cli, "list"], env=stack.env, cwd=local.ROOT, check=True, capture_output=True,
                            text=True).stdout
    assert listed.split()[:1] == ["wjh"] and "committee" not in listed  # the demo's account was not added
    capsys.readouterr()
    local._print_demo(summary)
    out = capsys.readouterr().out
    assert out.startswith("Demo data: not loaded: this installation has committee accounts of its own (wjh)"), out
    assert "CME_LOCAL_DEMO=0" in out and "Committee@2026" not in out


def test_up_says_where_the_login_codes_go_and_when_none_will(tmp_path, monkeypatch, capsys):
    """.env.example's CME_SMS_PROVIDER=tencent left as it is: `make up` said the codes were written to var/sms.log,
    none was, and the login page only said 短信发送失败，请稍后重新获取验证码."""
    base = {"REDIS_URL": os.environ["REDIS_URL"]}
    for env, expected in (
            ({}, f"SMS codes are written to {tmp_path / 'var' / 'sms.log'}"),
            ({"CME_SMS_PROVIDER": "tencent", "CME_TENCENT_SECRET_ID": "id"},
             "SMS: CME_SMS_PROVIDER=tencent but CME_TENCENT_SECRET_KEY, CME_TENCENT_SMS_APP_ID, CME_TENCENT_SMS_SIGN, "
             "CME_TENCENT_SMS_TEMPLATE_ID not set: NO login code will be sent"),
            ({"CME_SMS_PROVIDER": "tencent", **{name: "x" for name in local.TENCENT_REQUIRED}},
             "SMS codes are sent by CME_SMS_PROVIDER=tencent (not written to")):
        stack = Stack(tmp_path / "var", env={**base, **env})
        monkeypatch.setattr(stack, "start", lambda restart=(): None)
        assert local.cmd_up(stack, demo=False) == 0
        out = capsys.readouterr().out
        assert expected in out, out
        assert expected.startswith("SMS codes are written to") == ("SMS codes are written to" in out)


def test_the_gateway_listens_where_the_operator_says(tmp_path, monkeypatch, capsys):
    """The local run's nginx listened on 127.0.0.1 only: on a one-machine installation the committee's and the
    institutions' computers could not open the pages whatever CME_PUBLIC_BASE_URL said."""
    def listen_line(env: dict[str, str]) -> str:
        stack = Stack(tmp_path / "var", gateway_port=18999, env={"REDIS_URL": os.environ["REDIS_URL"], **env})
        stack.write_configs()
        conf = (stack.run_dir / "nginx.conf").read_text()
        return re.findall(r"listen [^;]+;", conf)[0]

    assert listen_line({}) == "listen 127.0.0.1:18999;"
    assert listen_line({"CME_GATEWAY_LISTEN": "0.0.0.0"}) == "listen 0.0.0.0:18999;"
    everywhere = Stack(tmp_path / "var", env={"CME_GATEWAY_LISTEN": "0.0.0.0", "REDIS_URL": os.environ["REDIS_URL"],
                                              "CME_PUBLIC_BASE_URL": "http://10.1.2.3:8080"})
    assert everywhere.base_url == "http://127.0.0.1:8080"  # its health checks still go through loopback
    monkeypatch.setattr(everywhere, "start", lambda restart=(): None)
    assert local.cmd_up(everywhere, demo=False) == 0
    assert ("The suite runs at http://127.0.0.1:8080/ (nginx listens on 0.0.0.0:8080; users open "
            "http://10.1.2.3:8080)") in capsys.readouterr().out

    monkeypatch.setenv("CME_ENV_FILE", str(tmp_path / "none.env"))
    monkeypatch.setenv("CME_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CME_GATEWAY_LISTEN", "every-interface")
    monkeypatch.setattr(Stack, "start", lambda self, restart=(): pytest.fail("nothing starts on a wrong address"))
    assert local.main(["up", "--no-demo"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("FAILED: CME_GATEWAY_LISTEN='every-interface' is not an IPv4 address"), err
