"""The benchmarks of `make bench` (issue 3, "Speed"; credits rows in bench/credits.py), or
`python -m bench.run [--only ROWS] [options]`: rows insert, submit, hello, qr (check-in, below), analysis
(考勤分析 of 10,000 trainees x 4 windows, in-process against a hand-written SQL aggregate; no stack) and
compliance (达标情况 page and JSON with 1,000,000 awards stored, wrk at 10 connections, p99 <= 50 ms, next to
the bare hello at the same 10 connections), and certs (certificate export of 1,000 certificates as one job, in a
child process, next to one WeasyPrint render per certificate of the same run; bench/certs.py; no stack). --only runs
some of them; a row's same-run baseline comes with it. One table is printed at the end.

Starts the suite with the local runner (deploy.local.Stack) on PostgreSQL, in databases of its own
(<DATABASE_URL>_<run>_<service>, dropped at the end) and a temporary var directory, plus the bare
Flask yardsticks of bench/baseline.py under gunicorn with the same number of workers, behind the same
nginx (a server block of their own on another loopback port, with the gateway's proxy settings).
It loads one activity with one open check-in window straight into the checkin database, then drives
the gateway with wrk (Lua script bench/requests.lua replaying a file of pre-built requests, each once)
at 50 connections for 10 seconds a row (the insert and submit rows: a round each, alternated, three times):

    baseline insert   POST /_bench/insert            bare Flask, one INSERT + commit
    check-in submit   POST /checkin/api/scan         cookies cme_scan (ticket) + cme_wx (openid), JSON form;
                                                     every request a different phone and identity
    hello             GET  /_bench/hello             bare Flask, constant JSON
    QR refresh        GET  /checkin/projector/<ptoken>/live

and prints requests/s, p50 and p99 of each, the machine's busy CPU time per request during the row (all
processes, wrk included), and the ratios against the targets (submit >= 0.8x the baseline insert with p99 <= 100
ms: the median of the rounds' ratios, each round against the insert round just before it, and the median of their
p99s; QR refresh >= 0.8x hello). Each row starts once what the rows before it set moving has settled (settle(): no
event waiting in an outbox, nothing queued or unacknowledged in Redis, the machine quiet; the submit row leaves
thousands of checkin.recorded for the relay and the credits worker, and the first row used to share the machine
with the niced workers still starting), so that a row measures itself, not the aftermath of what came before;
the wait is printed. Everything listens on 127.0.0.1; the
check-in rows take about 90 s, the credits rows about 2.5 minutes more (mostly loading the million awards);
the run refuses to start a row that would end after --budget seconds.

The check-in submit and the projector refresh are built by their features; until their functions
exist the row is skipped with the reason. What the bench imports (keyword arguments):

    services.checkin.phone.services   new_ticket(activity_id, window_id, slot, now) -> Ticket,
                                      dump_ticket(Ticket) -> str (cookie cme_scan; the form's nonce is
                                      Ticket.nonce), dump_openid(openid, now) -> str (cookie cme_wx);
                                      or bench_request(session=, activity=, window=, serial=, now=)
                                      -> (ticket cookie, openid cookie, body)
    services.checkin.projector.services  issue_ptoken(window, opener) -> str (GET /checkin/projector/<p>/live),
                                      or bench_live_path(session=, activity=, window=) -> the path

Settings: DATABASE_URL (the PostgreSQL server and a database name prefix; default
postgresql://root@127.0.0.1:5432/cmebench), CME_WEB_WORKERS (gunicorn workers per app, default 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LUA = Path(__file__).with_name("requests.lua")
DEFAULT_DATABASE_URL = "postgresql://root@127.0.0.1:5432/cmebench"
SUBMIT_PATH = "/checkin/api/scan"
TARGET_SUBMIT_RATIO = 0.8
TARGET_SUBMIT_P99_MS = 100.0
TARGET_QR_RATIO = 0.8


# ---- wrk output ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int = 0
    socket_errors: int = 0
    cpu_ms: float | None = None  # the machine's busy CPU time per request during the run (machine_busy)
    by_process: tuple[tuple[str, float], ...] = ()  # (group, ms of CPU a request), most first (--by-process)

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


def machine_busy() -> float | None:
    """Seconds of CPU this machine has spent busy so far, over all cores (/proc/stat: user, nice, system, irq,
    softirq; not idle, iowait or steal); None where there is no /proc/stat. Per request it shows what a row costs
    the whole machine; on a machine that runs slower for a while it grows too (3.2 to 4.5 ms for the same INSERT
    row on 26 November), so it explains a ratio rather than replacing it."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse_wrk(text: str) -> WrkResult:
    """Read wrk's report (run with --latency): requests/s, the 50% and 99% latencies, errors."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    total = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text, re.M)
    pct = {p: _ms(v, u) for p, v, u in re.findall(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)}
    if not rps or not total or "50" not in pct or "99" not in pct:
        raise ValueError("not a wrk --latency report:\n" + text[-2000:])
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=_ms(total.group(2), total.group(3)) / 1000.0,
        rps=float(rps.group(1)),
        p50_ms=pct["50"],
        p99_ms=pct["99"],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in sock.groups()) if sock else 0,
    )


_GROUPS = (  # (what a command line holds, the group it counts in), first match wins
    ("cme-bench-baseline", "baseline web"), ("nginx", "nginx"), ("postgres", "postgres"), ("redis-server", "redis"),
    ("wrk", "wrk"), ("services.common.relay", "relay"))


def process_group(cmdline: str) -> str:
    """A process of the bench's machine by what it is: '<service> web' (gunicorn), '<service> worker' or 'beat'
    (Celery), 'relay <service>', 'baseline web', 'postgres <service>' (a backend connected to that service's
    database: whoever asked, web, relay or worker), 'postgres' (its own processes), 'nginx', 'redis', 'wrk', or
    'other'."""
    from deploy.local import SERVICES  # (imported here: the module puts the project on sys.path first)

    found = re.match(r"postgres: (?:\S+: )?\S+ \S+_([a-z]+) ", cmdline)  # postgres: 15/main: <user> <db> <client>
    if found and found.group(1) in (*SERVICES, "baseline"):
        return f"postgres {found.group(1)}"
    found = re.search(r"--name cme-(\w+)\b", cmdline)
    if found and found.group(1) != "bench":
        return f"{found.group(1)} web"
    found = re.search(r"services\.(\w+)\.worker (worker|beat)\b", cmdline)
    if found:
        return f"{found.group(1)} {found.group(2)}"
    for needle, group in _GROUPS:
        if needle in cmdline:
            return f"relay {cmdline.split()[-1]}" if group == "relay" else group
    return "other"


def process_cpu() -> dict[int, tuple[str, float]]:
    """pid -> (group, seconds of CPU so far) of every process readable in /proc ({} where there is none)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[int(entry.name)] = (process_group(cmdline), (int(fields[11]) + int(fields[12])) / tick)
    return out


def cpu_by_group(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]],
                 requests: int) -> tuple[tuple[str, float], ...]:
    """Milliseconds of CPU a request per group between two process_cpu() readings, most first (a process that
    ended between them is not counted; one that began is counted whole)."""
    groups: dict[str, float] = {}
    for pid, (group, seconds) in after.items():
        spent = seconds - before.get(pid, (group, 0.0))[1]
        groups[group] = groups.get(group, 0.0) + spent
    per = [(group, spent * 1000 / requests) for group, spent in groups.items() if spent > 0]
    return tuple(sorted(per, key=lambda item: -item[1]))


# ---- requests ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Line:
    method: str
    path: str
    cookie: str = ""
    body: str = ""

    def render(self) -> str:
        for part in (self.method, self.path, self.cookie, self.body):
            if "\t" in part or "\n" in part:
                raise ValueError("a request line may hold no tab or newline")
        return f"{self.method}\t{self.path}\t{self.cookie}\t{self.body}"


def write_lines(path: Path, lines: list[Line]) -> Path:
    path.write_text("".join(line.render() + "\n" for line in lines), encoding="utf-8")
    return path


def id_number(serial: int) -> str:
    """A valid resident ID number per serial (birth date and sequence vary; check digit computed)."""
    from stdnum.cn import ric

    born = dt.date(1960, 1, 1) + dt.timedelta(days=serial // 900)
    body = f"110105{born:%Y%m%d}{100 + serial % 900:03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum wants a placeholder check digit


def form_body(serial: int) -> dict[str, str]:
    """A first scan's form: a different trainee per serial."""
    name = "学员" + "".join("零一二三四五六七八九"[int(d)] for d in str(serial))  # a name is Chinese characters
    return {"nonce": uuid.uuid4().hex, "name": name, "id_number": id_number(serial),
            "mobile": f"139{serial:08d}", "title": "主治医师", "unit": "西安市第一医院"}


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))  # ASCII-escaped: one line, no tabs


def _import(name: str) -> tuple[Any | None, str]:
    try:
        return importlib.import_module(name), ""
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            return None, f"{name} does not exist yet"
        return None, f"{name} cannot be imported: {exc}"
    except Exception as exc:  # noqa: BLE001 - a half-built feature: skip the row, say why
        return None, f"{name} cannot be imported: {type(exc).__name__}: {exc}"


def submit_lines(session: Any, activity: Any, window: Any, n: int, now: dt.datetime,
                 first_serial: int = 0) -> tuple[list[Line], str]:
    """N distinct first-scan submissions (ticket, openid, form) made with services.checkin.phone's own
    functions, as the phone holds them after opening the QR URL and the WeChat login; ([], why) when absent.
    Serials from first_serial on: each round of the row has trainees of its own."""
    phone, why = _import("services.checkin.phone.services")
    if phone is None:
        return [], why
    hook: Callable[..., Any] | None = getattr(phone, "bench_request", None)
    needed = ("new_ticket", "dump_ticket", "dump_openid")
    if hook is None and not all(hasattr(phone, name) for name in needed):
        return [], ("services.checkin.phone.services has neither bench_request() nor "
                    + ", ".join(f"{name}()" for name in needed))
    from services.checkin.qr.tokens import slot_at

    slot = slot_at(now)
    lines = []
    for i in range(first_serial, first_serial + n):
        if hook is not None:
            ticket, wx, body = hook(session=session, activity=activity, window=window, serial=i, now=now)
        else:
            issued = phone.new_ticket(activity.id, window.id, slot, now)
            ticket, wx = phone.dump_ticket(issued), phone.dump_openid(f"obench{i:08d}{uuid.uuid4().hex[:12]}", now)
            body = {**form_body(i), "nonce": issued.nonce}
        lines.append(Line("POST", SUBMIT_PATH, f"cme_scan={ticket}; cme_wx={wx}", _dumps(body)))
    return lines, ""


def projector_lines(session: Any, activity: Any, window: Any) -> tuple[list[Line], str]:
    projector, why = _import("services.checkin.projector.services")
    if projector is None:
        return [], why
    hook = getattr(projector, "bench_live_path", None)
    issue = getattr(projector, "issue_ptoken", None)
    if hook is not None:
        path = hook(session=session, activity=activity, window=window)
    elif issue is not None:
        from services.common.auth import Principal

        opener = Principal(role="institution", subject=f"inst:{activity.institution_id}:admin:1", name="bench",
                           institution_id=activity.institution_id, admin_id=1)
        path = f"/checkin/projector/{issue(window, opener)}/live"
    else:
        return [], "services.checkin.projector.services has neither bench_live_path() nor issue_ptoken()"
    return [Line("GET", path)], ""


# ---- the stack -----------------------------------------------------------------------------------

QUIET_CORES = 0.3  # the stack at rest: four relays polling, about 0.1 of a core here


def settle(stack: Any, limit: float = 60.0) -> tuple[float, int, float]:
    """Wait until no event waits in any service's outbox, no message is queued or unacknowledged in the stack's
    Redis, and the machine is quiet (under QUIET_CORES busy over a second: the background processes niced below
    the web tier go on starting for tens of seconds after the stack answers, and a first row measured meanwhile
    paid for them), at most ``limit`` seconds; (seconds waited, what was still moving, cores busy at the end)."""
    import redis
    from sqlalchemy import create_engine, text

    from deploy.local import SERVICES

    engines = [create_engine(stack.database_urls[name]) for name in SERVICES]
    broker = redis.Redis.from_url(stack.redis_url)
    began = time.monotonic()
    try:
        while True:
            busy, since = machine_busy(), time.monotonic()
            time.sleep(1.0)
            after = machine_busy()
            cores = (after - busy) / (time.monotonic() - since) if busy is not None and after is not None else 0.0
            moving = broker.hlen("unacked") + sum(broker.llen(k) for k in broker.scan_iter(_type="list"))
            for engine in engines:
                with engine.connect() as conn:
                    moving += conn.execute(text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")).scalar_one()
            if (not moving and cores < QUIET_CORES) or time.monotonic() - began > limit:
                return time.monotonic() - began, moving, cores
    finally:
        broker.close()
        for engine in engines:
            engine.dispose()


def follow_copies(stack: Any, stored: int, limit: float = 120.0) -> float | None:
    """Seconds until credits holds a copy of each of the `stored` check-ins (None: not within `limit`). The
    submit row measures the phones' answers; this is how long the events those answers made take to arrive."""
    from sqlalchemy import create_engine, text

    engine = create_engine(stack.database_urls["credits"])
    began = time.monotonic()
    try:
        while time.monotonic() - began < limit:
            with engine.connect() as conn:
                if conn.execute(text("SELECT count(*) FROM attendance_records")).scalar_one() >= stored:
                    return time.monotonic() - began
            time.sleep(0.25)
        return None
    finally:
        engine.dispose()


def background_line(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], checkins: int) -> str:
    """The relays', the Celery workers' and credits' PostgreSQL CPU from the row's start until the copies were
    kept, per check-in of the row: the work each check-in leaves behind, wherever it fell."""
    groups = cpu_by_group(before, after, checkins)
    wanted = [(g, ms) for g, ms in groups if g.startswith(("relay", "credits worker", "postgres credits", "redis"))
              and ms >= 0.01]
    return ", ".join(f"{g} {ms:.2f}" for g, ms in wanted) + f" (total {sum(ms for _g, ms in wanted):.2f})"


def _drop(urls: list[str]) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    if not urls:
        return
    admin = create_engine(make_url(urls[0]).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for url in urls:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def gateway_block(listen_port: int, app_port: int) -> str:
    """The yardsticks behind the same nginx, with the gateway's proxy settings (deploy/local.py extra_servers)."""
    return f"""
    upstream bench_baseline {{
        server 127.0.0.1:{app_port} max_fails=0;
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{listen_port};
        server_name _;
        add_header X-Request-ID $cme_request_id always;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Request-ID $cme_request_id;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        location /_bench/ {{
            proxy_pass http://bench_baseline;
        }}
    }}
"""


def server_url() -> str:
    """The PostgreSQL server and database name prefix of the run (DATABASE_URL, else the default)."""
    from services.common.config import get_settings

    get_settings()  # the optional .env, as the services read it
    server = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    if not server.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        raise SystemExit(f"the benchmark needs PostgreSQL: DATABASE_URL={server!r}")
    return server


@contextmanager
def bench_stack(workers: int, keep: bool) -> Iterator[Any]:
    from sqlalchemy import create_engine

    from bench.baseline import metadata
    from deploy.local import SERVICES, Proc, Stack, free_port
    from services.common.config import normalise_db_url
    from services.common.db import ensure_database

    server = server_url()
    run = uuid.uuid4().hex[:6]
    base = f"{server.rstrip('/')}_{run}"
    urls = [normalise_db_url(f"{base}_{name}") for name in (*SERVICES, "baseline")]
    var_dir = Path(tempfile.mkdtemp(prefix=f"cmebench-{run}-"))
    app_port, bench_port = free_port(), free_port()
    env = dict(os.environ)
    env.update({"DATABASE_URL": base, "CME_VAR_DIR": str(var_dir), "CME_SMS_LOG": str(var_dir / "sms.log"),
                "CME_WEB_WORKERS": str(workers), "BENCH_BASELINE_DATABASE_URL": urls[-1]})
    for name in SERVICES:
        env.pop(f"CME_{name.upper()}_DATABASE_URL", None)
    gateway_port = free_port()
    env["CME_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{gateway_port}"
    gunicorn_conf = str(ROOT / "deploy" / "gunicorn.conf.py")
    baseline = Proc("bench-baseline", [sys.executable, "-m", "gunicorn", "-c", gunicorn_conf,
                                       "--bind", f"127.0.0.1:{app_port}", "--workers", str(workers),
                                       "--name", "cme-bench-baseline", "bench.baseline:app"])
    stack = Stack(var_dir, gateway_port=gateway_port, service_ports={n: free_port() for n in SERVICES}, env=env,
                  own_redis_port=free_port(), web_workers=workers, wechat_port=free_port(),
                  extra_processes=[baseline], extra_gateway_servers=gateway_block(bench_port, app_port))
    stack.bench_url = f"http://127.0.0.1:{bench_port}"  # type: ignore[attr-defined]
    stack.database_urls = dict(zip((*SERVICES, "baseline"), urls, strict=True))  # type: ignore[attr-defined]
    try:
        ensure_database(urls[-1])
        engine = create_engine(urls[-1])
        metadata.create_all(engine)
        engine.dispose()
        stack.start(timeout=90)
        yield stack
    finally:
        stack.stop()
        _drop(urls)
        if keep:
            print(f"(kept the logs in {var_dir})")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)


def seed(session: Any, now: dt.datetime) -> tuple[Any, Any]:
    """One approved activity with one sign-in window open for the whole run, straight into checkin's tables."""
    from services.checkin import models  # noqa: F401 - the whole schema is known
    from services.checkin.activities.models import Activity
    from services.checkin.windows.models import CheckinWindow

    activity = Activity(offering_id=1, institution_id=1, institution_name="西安交通大学第一附属医院", project_id=1,
                        project_number="2026-04-01-001", project_title="基准测试：心血管急危重症诊治进展",
                        year=now.year, seq=1, credit_class="Ⅰ类", credit_value=10, hours=20, starts_on=now.date(),
                        ends_on=now.date(), venue="西安", mode="线下", schedule=[], approved_at=now)
    session.add(activity)
    session.flush()
    window = CheckinWindow(activity_id=activity.id, title="上午签到", kind="sign_in",
                           starts_at=now - dt.timedelta(minutes=10), ends_at=now + dt.timedelta(hours=2))
    session.add(window)
    session.commit()
    return activity, window


# ---- running wrk ---------------------------------------------------------------------------------

@dataclass
class Row:
    label: str
    result: WrkResult | None = None  # the row's figures (its rounds combined: combine())
    skipped: str = ""
    rounds: list[WrkResult] = dataclasses.field(default_factory=list)  # the insert and submit rows' own runs


def combine(results: list[WrkResult]) -> WrkResult:
    """A row's rounds as one: requests, time and errors summed, the rate over the whole time, the latencies the
    rounds' medians, CPU per request over all their requests."""
    if len(results) == 1:
        return results[0]
    requests = sum(r.requests for r in results)
    seconds = sum(r.seconds for r in results)

    def per_request(values: list[tuple[float, int]]) -> float:
        return sum(ms * n for ms, n in values) / requests if requests else 0.0

    cpu = [(r.cpu_ms, r.requests) for r in results if r.cpu_ms is not None]
    groups: dict[str, list[tuple[float, int]]] = {}
    for r in results:
        for group, ms in r.by_process:
            groups.setdefault(group, []).append((ms, r.requests))
    by_process = tuple(sorted(((g, per_request(v)) for g, v in groups.items()), key=lambda item: -item[1]))
    return WrkResult(requests=requests, seconds=seconds, rps=requests / seconds if seconds else 0.0,
                     p50_ms=statistics.median(r.p50_ms for r in results),
                     p99_ms=statistics.median(r.p99_ms for r in results),
                     non_2xx=sum(r.non_2xx for r in results), socket_errors=sum(r.socket_errors for r in results),
                     cpu_ms=per_request(cpu) if len(cpu) == len(results) else None, by_process=by_process)


def paired_ratios(row: Row, base: Row) -> list[float]:
    """Each round's rate against its yardstick's round just before it (the same minute of the machine)."""
    return [r.rps / b.rps if b.rps else 0.0 for r, b in zip(row.rounds, base.rounds, strict=False)]


def run_wrk(wrk: str, url: str, lines_file: Path, *, threads: int, connections: int, seconds: float,
            first: int = 0, by_process: bool = False) -> WrkResult:
    """wrk replaying lines_file from line `first` (0-based) on; by_process: also where the CPU went."""
    argv = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--latency", "--timeout", "5s",
            "-s", str(LUA), url, "--", str(lines_file), str(threads), str(first)]
    procs = process_cpu() if by_process else {}
    busy = machine_busy()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, cwd=ROOT)
    after = machine_busy()
    procs_after = process_cpu() if by_process else {}
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stderr[-2000:]}")
    result = parse_wrk(done.stdout)
    if not result.requests:
        return result
    if procs_after:
        result = dataclasses.replace(result, by_process=cpu_by_group(procs, procs_after, result.requests))
    if busy is None or after is None:
        return result
    return dataclasses.replace(result, cpu_ms=(after - busy) * 1000 / result.requests)


def after_warmup(warm: WrkResult, threads: int, connections: int) -> int:
    """The first line the measured run may send: past every line the warm-up can have sent, answered or still in
    flight, however unevenly its threads went (one of them may have sent them all)."""
    return threads * (warm.requests + connections)


def _fmt(row: Row) -> str:
    if row.result is None:
        return f"  {row.label:<42} skipped: {row.skipped}"
    r = row.result
    cpu = f"{r.cpu_ms:>8.2f}" if r.cpu_ms is not None else f"{'-':>8}"
    return (f"  {row.label:<42} {r.rps:>9.1f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {r.requests:>9} "
            f"{r.errors:>7} {cpu}")


def ratio_lines(submit: Row, insert: Row, qr: Row, hello: Row) -> tuple[list[str], bool]:
    out, ok = [], True
    if submit.result and insert.result:
        pairs = paired_ratios(submit, insert)
        ratio = (statistics.median(pairs) if len(pairs) > 1 else
                 submit.result.rps / insert.result.rps if insert.result.rps else 0.0)
        good = (ratio >= TARGET_SUBMIT_RATIO and submit.result.p99_ms <= TARGET_SUBMIT_P99_MS
                and not submit.result.errors)
        ok &= good
        median = "the median of the rounds: " if len(pairs) > 1 else ""
        out.append(f"  check-in submit / baseline insert = {median}{ratio:.2f}x (target >= {TARGET_SUBMIT_RATIO}x), "
                   f"p99 {submit.result.p99_ms:.1f} ms (target <= {TARGET_SUBMIT_P99_MS:.0f} ms), "
                   f"errors {submit.result.errors}: {'MET' if good else 'NOT MET'}")
        if len(pairs) > 1:
            out.append("    rounds: " + ", ".join(
                f"{r:.2f}x p99 {s.p99_ms:.0f} ms (insert {b.rps:.0f}, check-in {s.rps:.0f} requests/s)"
                for r, s, b in zip(pairs, submit.rounds, insert.rounds, strict=False)))
        if submit.result.cpu_ms and insert.result.cpu_ms:
            out.append(f"    (the machine's CPU per request: submit {submit.result.cpu_ms:.2f} ms, insert "
                       f"{insert.result.cpu_ms:.2f} ms; the insert's rate at the submit's cost would be "
                       f"{insert.result.cpu_ms / submit.result.cpu_ms:.2f}x)")
    else:
        out.append(f"  check-in submit / baseline insert: not measured ({submit.skipped or insert.skipped})")
    if qr.result and hello.result:
        ratio = qr.result.rps / hello.result.rps if hello.result.rps else 0.0
        good = ratio >= TARGET_QR_RATIO and not qr.result.errors
        ok &= good
        out.append(f"  QR refresh / hello = {ratio:.2f}x (target >= {TARGET_QR_RATIO}x), errors {qr.result.errors}: "
                   f"{'MET' if good else 'NOT MET'}")
    else:
        out.append(f"  QR refresh / hello: not measured ({qr.skipped or hello.skipped})")
    return out, ok


ROWS = ("insert", "submit", "hello", "qr", "analysis", "compliance", "certs")
# a row's same-run yardstick comes with it: --only submit also runs insert
NEEDS = {"submit": ("insert",), "qr": ("hello",), "compliance": ("hello",)}
STACK_ROWS = ("insert", "submit", "hello", "qr", "compliance")


def run_order(single: list[str], paired: list[str], rounds: int) -> list[tuple[str, int]]:
    """(row, round) in the order they run: the single rows once, then the paired rows alternated, round by round."""
    return [(k, 0) for k in single] + [(k, n) for n in range(rounds) for k in paired]


def select_rows(only: str | None) -> list[str]:
    """The rows to run, in table order, from --only's comma-separated names (all when empty) plus their baselines."""
    if not only:
        return list(ROWS)
    asked = {name.strip() for name in only.split(",") if name.strip()}
    unknown = asked - set(ROWS)
    if unknown or not asked:
        raise ValueError(f"unknown row(s) {', '.join(sorted(unknown)) or '(none)'}; choose from {', '.join(ROWS)}")
    for name in list(asked):
        asked.update(NEEDS.get(name, ()))
    return [name for name in ROWS if name in asked]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help=f"comma-separated rows to run, of {','.join(ROWS)} (all); a "
                        "row's baseline comes with it (submit: insert, qr and compliance: hello; certs has its own)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured row or round (10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the insert and submit rows, alternated; "
                        "the submit ratio is the median of each round against the insert round before it (3)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each row (2)")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=max(1, min(4, os.cpu_count() or 1)), help="wrk threads")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("CME_WEB_WORKERS") or 2),
                        help="gunicorn workers of each service and of the baseline app")
    parser.add_argument("--requests", type=int, default=40000,
                        help="distinct check-in submissions prepared for each round")
    parser.add_argument("--awards", type=int, default=1_000_000,
                        help="credit awards stored for the compliance rows (10 a trainee)")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds the whole run may take")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is not met")
    parser.add_argument("--keep", action="store_true", help="keep the stack's logs")
    parser.add_argument("--by-process", action="store_true",
                        help="print where each wrk row's CPU went, per process group (ms a request)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    try:
        selected = select_rows(args.only)
    except ValueError as exc:
        parser.error(str(exc))
    started, load_before = time.monotonic(), os.getloadavg()[0]
    wrk = shutil.which("wrk")
    if not wrk and set(selected) & set(STACK_ROWS):
        print("wrk not found: run deploy/install.sh --bench (make bench does)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import create_engine, func, select
    from sqlalchemy.orm import Session

    from bench import certs, credits
    from services.common import clock

    rows = {k: Row(label) for k, label in (("insert", "baseline: bare Flask, 1 INSERT"),
                                           ("submit", f"check-in submit POST {SUBMIT_PATH}"),
                                           ("hello", "baseline: bare Flask hello"),
                                           ("helloc", f"baseline: hello, {credits.COMPLIANCE_CONNECTIONS} connections"),
                                           ("qr", "QR refresh GET /checkin/projector/<p>/live"),
                                           ("cpage", f"compliance page GET {credits.COMPLIANCE_PAGE}"),
                                           ("capi", f"compliance JSON {credits.COMPLIANCE_API}"))}
    wrk_keys = [k for k in ("hello", "qr") if k in selected]
    if "compliance" in selected:
        # the compliance rows' yardstick at their own concurrency: a p99 and a rate compare only at equal load
        wrk_keys += ["helloc", "cpage", "capi"]
    # the submit row last (after its yardstick): the credits worker goes on copying its thousands of check-ins and
    # opening their trainees' accounts for tens of seconds after it, which no later row should share. It and its
    # yardstick run in rounds, alternated (insert, submit, insert, submit, ...): this machine's speed drifts over
    # minutes (one run of each, one after the other, gave 0.49x and, two minutes later, 0.88x), so each round is
    # compared with the yardstick's round just before it and the verdict takes the median.
    paired = [k for k in ("insert", "submit") if k in selected]
    schedule = run_order(wrk_keys, paired, args.rounds)
    wrk_keys += paired
    shown = [k for k in ("insert", "submit", "hello", "qr", "helloc", "cpage", "capi") if k in wrk_keys]
    for key, row in rows.items():
        row.skipped = "" if key in wrk_keys else "not selected (--only)"
    stored: int | None = None
    copied_after: list[float | None] = []
    background: list[str] = []
    awards_note = ""
    analysis: list[Any] = []
    analysis_failed = ""
    if "analysis" in selected:
        print("measuring attendance analysis (a credits database of its own) ...", flush=True)
        try:
            with credits.own_credits_database(server_url()) as url:
                analysis = credits.run_analysis(url)
        except AssertionError as exc:
            analysis_failed = str(exc)
            print(f"ATTENDANCE ANALYSIS FAILED: {exc}", file=sys.stderr, flush=True)
    if wrk_keys:
        print(f"starting a stack on PostgreSQL ({args.workers} gunicorn worker(s) per app) ...", flush=True)
    with (bench_stack(args.workers, args.keep) if wrk_keys else nullcontext()) as stack, \
            tempfile.TemporaryDirectory(prefix="cmebench-req-") as tmp:
        files: dict[str, Path] = {}
        if stack is not None:
            engine = create_engine(stack.database_urls["checkin"])
            session = Session(bind=engine, expire_on_commit=False)
            now = clock.now()
            activity, window = seed(session, now)
            if "insert" in selected:
                files["insert"] = write_lines(Path(tmp) / "insert.txt", [
                    Line("POST", "/_bench/insert", "", _dumps(form_body(i))) for i in range(args.requests)])
            if "hello" in selected:
                files["hello"] = files["helloc"] = write_lines(Path(tmp) / "hello.txt", [Line("GET", "/_bench/hello")])
            if "submit" in selected:  # each round's requests are made just before it (a ticket lives 10 minutes)
                lines, why = submit_lines(session, activity, window, 1, now)
                if lines:
                    files["submit"] = Path(tmp) / "submit.txt"
                else:
                    rows["submit"].skipped = why
            if "qr" in selected:
                lines, why = projector_lines(session, activity, window)
                if lines:
                    files["qr"] = write_lines(Path(tmp) / "qr.txt", lines)
                else:
                    rows["qr"].skipped = why
            session.commit()
            if "compliance" in selected:
                skips, awards_note = credits.prepare_compliance(
                    stack, Path(tmp), files, args.awards, budget_left=args.budget - (time.monotonic() - started))
                for key, why in skips.items():
                    rows[key].skipped = why
            urls = {"insert": stack.bench_url, "hello": stack.bench_url, "helloc": stack.bench_url}
            for key, round_no in schedule:
                row = rows[key]
                if key not in files or row.skipped:
                    continue
                left = args.budget - (time.monotonic() - started) - 15  # 15 s to stop and drop
                if left < args.warmup + args.seconds + 5:
                    row.skipped = "out of time budget" if not row.rounds else ""
                    continue
                if key == "submit":
                    lines, _why = submit_lines(session, activity, window, args.requests, clock.now(),
                                               first_serial=round_no * args.requests)
                    write_lines(files[key], lines)
                waited, moving, cores = settle(stack, limit=min(60.0, left - args.warmup - args.seconds - 5))
                if waited >= 2 or moving or cores >= QUIET_CORES:
                    print(f"  waited {waited:.0f} s for the stack to settle (events, background processes)"
                          f"{f' ({moving} event(s) still moving)' if moving else ''}"
                          f"{f' (still {cores:.1f} cores busy)' if cores >= QUIET_CORES else ''}", flush=True)
                print(f"measuring {row.label}{f' (round {round_no + 1})' if key in paired else ''} ...", flush=True)
                connections = credits.COMPLIANCE_CONNECTIONS if key in ("helloc", "cpage", "capi") else args.connections
                threads = min(args.threads, connections)
                try:
                    first = 0
                    if args.warmup > 0:
                        warm = run_wrk(wrk, urls.get(key, stack.base_url), files[key], threads=threads,
                                       connections=connections, seconds=args.warmup)
                        first = after_warmup(warm, threads, connections)
                    procs_before = process_cpu() if key == "submit" and args.by_process else {}
                    result = run_wrk(wrk, urls.get(key, stack.base_url), files[key], threads=threads,
                                     connections=connections, seconds=args.seconds, first=first,
                                     by_process=args.by_process)
                    row.rounds.append(result)
                    if key == "submit":
                        from services.checkin.scans.models import Checkin

                        stored = session.scalar(select(func.count()).select_from(Checkin))
                        copied_after.append(follow_copies(stack, stored))
                        if procs_before and copied_after[-1] is not None and result.requests:
                            background.append(background_line(procs_before, process_cpu(), result.requests))
                except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
                    row.skipped = f"wrk failed: {exc}"
                    row.rounds.clear()
            for row in rows.values():
                if row.rounds:
                    row.result = combine(row.rounds)
            session.close()
            engine.dispose()
            print("stopping the stack ...", flush=True)

    certs_result = None
    certs_skipped = certs_failed = ""
    # after the stack has stopped (nothing else of ours running), outside --budget: it takes about 3 minutes
    if "certs" in selected:
        certs_skipped = certs.prerequisites()
        if not certs_skipped:
            print("measuring certificate export (a certs database of its own, child processes) ...", flush=True)
            try:
                with certs.own_certs_database(server_url()) as url:
                    certs_result = certs.run_certs(url)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                certs_skipped = certs_failed = f"failed: {exc}"
                print(f"CERTIFICATE EXPORT FAILED: {exc}", file=sys.stderr, flush=True)
    ok = True
    print()
    if wrk_keys:
        print(f"benchmark: wrk {args.threads} thread(s), {args.connections} connections ("
              f"{credits.COMPLIANCE_CONNECTIONS} for compliance), {args.seconds:g} s a row after {args.warmup:g} s "
              f"warm-up; nginx gateway, gunicorn x{args.workers}, PostgreSQL, loopback")
        print(f"  {'':<42} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'errors':>7} {'cpu ms':>8}")
        for key in shown:
            print(_fmt(rows[key]))
        for key in shown:
            r = rows[key].result
            if r is not None and r.by_process:
                print(f"  {rows[key].label}, ms of CPU a request by process: "
                      + ", ".join(f"{group} {ms:.2f}" for group, ms in r.by_process if ms >= 0.01))
        if stored is not None:
            after = [f"{s:.0f} s" if s is not None else "not within 120 s" for s in copied_after]
            print(f"  check-ins stored by the submit row: {stored}; credits held a copy of each "
                  f"{', '.join(after)} after {'each round' if len(after) > 1 else 'the row'}")
        for n, line in enumerate(background, 1):
            print(f"  left behind by a check-in{f' of round {n}' if len(background) > 1 else ''}, ms of CPU from "
                  f"the row's start until then: {line}")
        if awards_note:
            print(f"  {awards_note}")
    if "analysis" in selected:
        print("attendance analysis: 10,000 trainees x 4 windows (40,000 scans) + noise, 1 warm-up + 5 timed runs, "
              "in-process on PostgreSQL")
        if analysis_failed:
            print(f"  FAILED: {analysis_failed}")
        print("\n".join(credits.analysis_table(analysis)))
    if "certs" in selected:
        print(f"certificate export: {certs.CERTS:,} certificates of one offering, no stack, PostgreSQL; the task "
              "and the baseline each in a child process of its own, one after the other")
        if certs_result is not None:
            print("\n".join(certs.certs_table(certs_result)))
        else:
            print(f"  skipped: {certs_skipped}")
    print("ratios:")
    if {"insert", "submit", "qr"} & set(selected):
        lines_out, ok = ratio_lines(rows["submit"], rows["insert"], rows["qr"], rows["hello"])
        print("\n".join(lines_out))
    if "analysis" in selected:
        lines_out, good = credits.analysis_ratio_lines(analysis, analysis_failed)
        ok &= good
        print("\n".join(lines_out))
    if "compliance" in selected:
        lines_out, good = credits.compliance_ratio_lines([rows["cpage"], rows["capi"]], rows["helloc"])
        ok &= good
        print("\n".join(lines_out))
    if "certs" in selected:
        lines_out, good = certs.certs_ratio_lines(certs_result, certs_skipped)
        ok &= good
        print("\n".join(lines_out))
    print(f"(whole run {time.monotonic() - started:.0f} s; 1-minute load average {load_before:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} cores)")
    if analysis_failed or certs_failed:
        return 1
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
