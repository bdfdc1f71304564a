"""The local runner: the whole suite on one machine, no containers.

    python -m deploy.local up        migrate, start Redis (when none answers), the fake WeChat OAuth server,
                                     the four services under gunicorn, a Celery worker and an outbox relay
                                     per service, a Celery beat each for projects (daily reminders,
                                     catalogue file sweep) and credits (printable-certificate SMS), and nginx on
                                     http://127.0.0.1:8080; wait until healthy;
                                     load the demo data
    python -m deploy.local down      stop everything `up` started (safe to run twice)
    python -m deploy.local status    list the processes and whether they run; exits 1 when one is stopped
                                     or a service is not healthy

`up` on a stack of which some processes still run is a repair: it starts what is missing with the settings
recorded in var/run/stack.json by the `up` that started the others (REDIS_URL, DATABASE_URL, the ports), and
refuses, naming the difference, when the environment sets one of them otherwise. When it fails it stops only
what it started itself. Each pid file also names the code its process was started from (CODE_PATHS' digest and the
commit): after a `git pull`, `status` names the processes running older code and exits 1, and `up` is the upgrade:
it migrates, then restarts them (a failed migration leaves them running).
    python -m deploy.local render-gateway [--compose] [--out FILE]
                                     print the nginx configuration rendered from gateway/nginx.conf.template

Everything lives under the var directory (CME_VAR_DIR, default ./var): SQLite databases when no
DATABASE_URL is set, var/run/<process>.pid, var/log/<process>.log, var/sms.log, nginx's temp files.
Children run in their own sessions (process groups), so `make up` returns and `down` stops whole groups.

Settings read here (all optional): CME_VAR_DIR, CME_GATEWAY_PORT (8080), CME_SERVICE_PORTS
("projects=8101,checkin=8102,credits=8103,certs=8104"), CME_WEB_WORKERS (2; CME_WEB_THREADS, 4 threads
each, is read by deploy/gunicorn.conf.py), REDIS_URL, DATABASE_URL,
CME_GATEWAY_LOGIN_RATE (10r/m), CME_GATEWAY_LOGIN_BURST (5), CME_GATEWAY_SMS_RATE (5r/m),
CME_GATEWAY_SMS_BURST (3), CME_GATEWAY_TRAINEE_LOGIN_RATE (60r/m), CME_GATEWAY_TRAINEE_LOGIN_BURST (30),
CME_GATEWAY_MAX_BODY (12m), CME_GATEWAY_REAL_IP_FROM (unset: no balancer in front), CME_WECHAT_FAKE_PORT (8090),
NGINX (path of the nginx binary), REDIS_SERVER (path of redis-server), CME_BACKGROUND_NICE (19: the niceness of
the Celery workers, beats and relays, 0 to run them at the web tier's priority).

Priorities: when a lecture hall scans, every check-in is also an event that the checkin relay sends and the
credits worker copies. On a small machine those two took more CPU than the check-in pages themselves, so the
phones waited for work that can wait. Background processes run niced: under a burst the web tier gets the CPU
first and the events, kept in the outbox and on the queues, catch up seconds later. The lowest priority (19):
the bench's check-in row measured 0.59-0.66x the bare INSERT with it against 0.44-0.53x at niceness 10, runs
interleaved (with the bench of 25 November, which flattered both: README, Benchmark); whenever the web tier
pauses, the background has the CPU.

WeChat: the local run never talks to the real WeChat. It runs the shipped fake OAuth server
(deploy/fakes/wechat.py, process "fake-wechat" on 127.0.0.1:CME_WECHAT_FAKE_PORT) and gives every
process CME_WECHAT_API_BASE and CME_WECHAT_OPEN_BASE pointing at it, CME_WECHAT_UA_REQUIRED=0 (unless
set: the fake lets any browser through, so the check-in pages need not insist on WeChat's browser)
and CME_PUBLIC_BASE_URL = the gateway's URL (unless set), where the fake sends the phone back to.

The same runner is a library for the tests (tests/stack) and the benchmark (bench/run.py):
Stack(var_dir, gateway_port, service_ports, env, own_redis_port, web_workers, wechat_port,
extra_processes, extra_gateway_servers) with start(), stop(), start_process(name), stop_process(name),
wait_healthy().
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GATEWAY_DIR = ROOT / "gateway"
TEMPLATE = GATEWAY_DIR / "nginx.conf.template"
SERVICES = ("projects", "checkin", "credits", "certs")
DEFAULT_PORTS = {"projects": 8101, "checkin": 8102, "credits": 8103, "certs": 8104}
COMPOSE_PORT = 8000  # every service container listens here
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_WECHAT_PORT = 8090
FAKE_WECHAT = "fake-wechat"

GATEWAY_DEFAULTS = {
    "login_rate": "10r/m",
    "login_burst": "5",
    "sms_rate": "5r/m",
    "sms_burst": "3",
    "trainee_login_rate": "60r/m",
    "trainee_login_burst": "30",
    "max_body": "12m",  # services.common.config.DEFAULT_MAX_BODY (this module stands alone)
    "real_ip_from": "",
}
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


# ---- the gateway configuration --------------------------------------------------------------------

def gateway_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The tunable values of the template, from CME_GATEWAY_<NAME> variables."""
    return {name: env.get(f"CME_GATEWAY_{name.upper()}", default) for name, default in GATEWAY_DEFAULTS.items()}


def real_ip_lines(sources: str) -> str:
    """nginx's realip settings trusting X-Forwarded-For from these addresses or networks (comma or space
    separated); empty: none, nginx's peer is the client (no balancer in front)."""
    lines = []
    for source in re.split(r"[\s,]+", sources.strip()):
        if not source:
            continue
        try:
            ipaddress.ip_network(source, strict=False)
        except ValueError:
            raise SystemExit(f"CME_GATEWAY_REAL_IP_FROM: {source!r} is not an IP address or network") from None
        lines.append(f"    set_real_ip_from {source};")
    if lines:
        lines += ["    real_ip_header X-Forwarded-For;", "    real_ip_recursive on;"]
    return "\n".join(lines)


def render_template(template: str, values: Mapping[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"gateway template needs a value for {{{{ {name} }}}}")
        return str(values[name])

    return _PLACEHOLDER.sub(sub, template)


def _upstream_block(name: str, servers: Sequence[str], compose: bool) -> str:
    lines = [f"    upstream {name} {{"]
    if compose:
        # Docker's DNS answers with every replica (`--scale`); `resolve` follows scaling at run time.
        lines.append(f"        zone upstream_{name} 64k;")
        lines += [f"        server {s} resolve;" for s in servers]
    else:
        lines += [f"        server {s} max_fails=0;" for s in servers]
    lines.append("        keepalive 16;")
    lines.append("    }")
    return "\n".join(lines)


def _size_label(size: str) -> str:
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", size.strip())
    if not m:
        return size
    unit = {"": " 字节", "k": " KB", "m": " MB", "g": " GB"}[m.group(2).lower()]
    return m.group(1) + unit


def render_gateway(
    upstreams: Mapping[str, Sequence[str]],
    listen: str,
    var_dir: Path | None,
    env: Mapping[str, str] | None = None,
    compose: bool = False,
    gateway_dir: Path | str = GATEWAY_DIR,
    extra_servers: str = "",
) -> str:
    """nginx.conf for the local run (paths under var_dir) or for docker compose (compose=True).

    extra_servers: nginx text added inside `http { }` after the gateway's server (upstreams and server
    blocks of the benchmark's bare endpoints); empty for the suite itself."""
    env = os.environ if env is None else env
    values = gateway_settings(env)
    values["max_body_label"] = _size_label(values["max_body"])
    values["real_ip"] = real_ip_lines(values["real_ip_from"])
    if compose:
        values.update(
            user_line="",
            worker_processes="auto",
            pid_file="/tmp/nginx.pid",
            temp_dir="/tmp",
            error_log="stderr",
            access_log="/dev/stdout",
            resolver_line="    resolver 127.0.0.11 valid=10s ipv6=off;\n",
        )
    else:
        assert var_dir is not None
        # A root master would hand its workers to "nobody", who cannot enter a private var dir.
        user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
        values.update(
            user_line=user,
            worker_processes="1",
            pid_file=str(var_dir / "nginx" / "nginx.pid"),
            temp_dir=str(var_dir / "nginx"),
            error_log=str(var_dir / "log" / "nginx-error.log"),
            access_log=str(var_dir / "log" / "nginx-access.log"),
            resolver_line="",
        )
    values["listen"] = listen
    values["gateway_dir"] = str(gateway_dir)
    values["upstreams"] = "\n\n".join(_upstream_block(name, upstreams[name], compose) for name in SERVICES) + "\n"
    conf = render_template(TEMPLATE.read_text(encoding="utf-8"), values)
    if extra_servers:
        head, _, tail = conf.rstrip().rpartition("}")  # the closing brace of `http { }`
        assert not tail.strip(), "the template ends with the http block"
        conf = f"{head}\n{extra_servers.rstrip()}\n}}\n"
    return conf


def compose_upstreams() -> dict[str, list[str]]:
    return {name: [f"{name}:{COMPOSE_PORT}"] for name in SERVICES}


# ---- processes ----------------------------------------------------------------------------------

@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    background: bool = False  # runs at CME_BACKGROUND_NICE (see "Priorities" above)


def background_nice(env: Mapping[str, str]) -> int:
    raw = env.get("CME_BACKGROUND_NICE", "19").strip() or "19"
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"CME_BACKGROUND_NICE must be a whole number from 0 to 19, got {raw!r}") from None
    if not 0 <= value <= 19:
        raise SystemExit(f"CME_BACKGROUND_NICE must be a whole number from 0 to 19, got {value}")
    return value


def _lower_priority(nice: int) -> None:
    """In the child, after setsid: with autogroup scheduling (Linux's default) a new session is a group of its
    own and CPU is shared between groups first, so the group's niceness is set too, not only the process's."""
    os.nice(nice)
    try:
        with open("/proc/self/autogroup", "w") as group:
            group.write(str(nice))
    except OSError:  # no autogroup here: the process's niceness is all there is
        pass


def _start_time(pid: int) -> str | None:
    """The kernel's start time of a process: guards a pid file against a recycled pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is not alive
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _redis_answers(url: str, timeout: float = 1.0) -> bool:
    u = urllib.parse.urlparse(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=timeout) as s:
            s.settimeout(timeout)
            if u.password:
                s.sendall(f"AUTH {u.password}\r\n".encode())
                s.recv(64)
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _live_processes() -> Iterator[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every process /proc shows that is not a zombie."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if fields[0] != "Z":
            yield int(entry.name), int(fields[1]), int(fields[2])


def _children(pid: int) -> set[int]:
    """The live processes whose parent is pid (nginx's workers under their master)."""
    return {child for child, parent, _group in _live_processes() if parent == pid}


def _command_line(pid: int) -> str:
    """What /proc says the process runs, its arguments joined by spaces (nginx's master rewrites it to
    "nginx: master process <its command>")."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _port_answers(port: int, timeout: float = 1.0, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _find(binary: str, env_name: str, extra: Sequence[str] = ()) -> str:
    found = os.environ.get(env_name) or shutil.which(binary)
    if not found:
        for path in extra:
            if os.access(path, os.X_OK):
                found = path
                break
    if not found:
        raise SystemExit(f"{binary} not found: run deploy/install.sh (make up does) or set {env_name}")
    return found


# What the processes execute. A process keeps the code it was started with: after a `git pull` (or any edit) it
# runs on the old code until it is restarted, so each pid file names the code its process was started from.
CODE_PATHS = ("services", "deploy", "gateway", "requirements.txt")
NOT_CODE = ("redis",)  # not the suite's code: an upgrade need not restart it


def code_version(root: Path = ROOT) -> dict[str, str]:
    """The code a process started now would run: a digest of CODE_PATHS' files (Python's caches left out) and,
    in a git checkout, its commit (for the operator's screen; "" elsewhere)."""
    digest = hashlib.sha256()
    for top in CODE_PATHS:
        path = root / top
        files = [path] if path.is_file() else sorted(
            p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
        for f in files:
            try:
                content = f.read_bytes()
            except OSError:  # removed since it was listed (a `git pull` under way): the code changes anyway
                content = b"\0gone"
            digest.update(f.relative_to(root).as_posix().encode() + b"\0" + content + b"\0")
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"digest": digest.hexdigest(), "commit": commit}


def code_label(code: Mapping[str, str] | None) -> str:
    if not code:
        return "code the runner of then did not record"
    return code["commit"] or f"code {code['digest'][:12]}"


class StackError(RuntimeError):
    pass


class SettingsRefused(RuntimeError):
    """The settings (environment and .env) that the services would refuse to start on."""


class Stack:
    """The suite on this machine: Redis (own, if asked or none answers), gunicorn, Celery workers,
    outbox relays and nginx, each a supervised-by-pid-file process group under var_dir."""

    def __init__(
        self,
        var_dir: Path | str,
        gateway_port: int = 8080,
        service_ports: Mapping[str, int | Sequence[int]] | None = None,
        env: Mapping[str, str] | None = None,
        own_redis_port: int | None = None,
        web_workers: int | None = None,
        wechat_port: int | None = None,
        extra_processes: Sequence[Proc] = (),
        extra_gateway_servers: str = "",
    ):
        self.var_dir = Path(var_dir).resolve()
        self.gateway_port = gateway_port
        # the address nginx listens on: loopback unless the operator opens the suite to the clerks' computers
        listen = (env if env is not None else os.environ).get("CME_GATEWAY_LISTEN") or "127.0.0.1"
        try:
            ipaddress.IPv4Address(listen)
        except ValueError:
            raise SettingsRefused(f"CME_GATEWAY_LISTEN={listen!r} is not an IPv4 address (127.0.0.1: this machine "
                                  "only; 0.0.0.0: every network interface)") from None
        self.gateway_listen = listen
        self.extra_processes = list(extra_processes)
        self.extra_gateway_servers = extra_gateway_servers
        ports = dict(DEFAULT_PORTS)
        ports.update(service_ports or {})
        self.service_ports: dict[str, list[int]] = {
            name: ([p] if isinstance(p, int) else list(p)) for name, p in ports.items()}
        base = dict(os.environ if env is None else env)
        # what the operator set (a clock offset, SMS or WeChat settings, keys), before the runner's own defaults
        # are added: recorded so that a repair `up` starts the missing processes with the same
        self.operator_env = operator_settings(base)
        self.own_redis_port = own_redis_port
        if own_redis_port is not None:
            base["REDIS_URL"] = f"redis://127.0.0.1:{own_redis_port}/0"
        base.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
        base["CME_VAR_DIR"] = str(self.var_dir)
        base.setdefault("CME_SMS_LOG", str(self.var_dir / "sms.log"))
        base.setdefault("CME_PUBLIC_BASE_URL", f"http://127.0.0.1:{gateway_port}")
        # the shipped fake WeChat OAuth server stands in for WeChat (never the real one in a local run)
        self.wechat_port = wechat_port or int(base.get("CME_WECHAT_FAKE_PORT") or DEFAULT_WECHAT_PORT)
        base["CME_WECHAT_API_BASE"] = self.wechat_url
        base["CME_WECHAT_OPEN_BASE"] = self.wechat_url
        base.setdefault("CME_WECHAT_UA_REQUIRED", "0")
        base["PYTHONUNBUFFERED"] = "1"
        base["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), base.get("PYTHONPATH", "")) if p)
        self.env = base
        self.web_workers = web_workers or int(base.get("CME_WEB_WORKERS", "2") or 2)
        self.run_dir = self.var_dir / "run"
        self.log_dir = self.var_dir / "log"
        self.started: list[str] = []  # what this object started, so a failed `up` stops only that
        self.reloaded: list[str] = []  # what an upgrade gave the new code without a restart (the gateway)
        self._code: dict[str, str] | None = None
        self.migrated: list[str] = []  # what the last migrate() moved: "<service> <from> → <to>"

    # -- layout
    @property
    def gateway_host(self) -> str:
        """Where this machine reaches the gateway (0.0.0.0 listens on loopback too)."""
        return "127.0.0.1" if self.gateway_listen == "0.0.0.0" else self.gateway_listen

    @property
    def base_url(self) -> str:
        return f"http://{self.gateway_host}:{self.gateway_port}"

    @property
    def wechat_url(self) -> str:
        """The fake WeChat OAuth server (both of WeChat's base URLs)."""
        return f"http://127.0.0.1:{self.wechat_port}/"

    @property
    def redis_url(self) -> str:
        return self.env["REDIS_URL"]

    @property
    def sms_log(self) -> Path:
        return Path(self.env["CME_SMS_LOG"])

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pid_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def _prepare_dirs(self) -> None:
        for d in (self.var_dir, self.run_dir, self.log_dir, self.var_dir / "nginx", self.var_dir / "redis"):
            d.mkdir(parents=True, exist_ok=True)

    def _redis_is_ours(self) -> bool:
        if self.own_redis_port is not None:
            return True
        if self.pid_path("redis").exists():
            return True
        return not _redis_answers(self.redis_url)

    def processes(self) -> list[Proc]:
        py = sys.executable
        procs: list[Proc] = []
        if self._redis_is_ours():
            procs.append(Proc("redis", [_find("redis-server", "REDIS_SERVER", ["/usr/bin/redis-server"]),
                                        str(self.run_dir / "redis.conf")]))
        procs.append(Proc(FAKE_WECHAT, [py, "-m", "deploy.fakes.wechat", "--host", "127.0.0.1",
                                        "--port", str(self.wechat_port)]))
        for name in SERVICES:
            binds: list[str] = []
            for port in self.service_ports[name]:
                binds += ["--bind", f"127.0.0.1:{port}"]
            procs.append(Proc(f"web-{name}", [py, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                                              *binds, "--workers", str(self.web_workers),
                                              "--name", f"cme-{name}", f"services.{name}.wsgi:app"]))
        for name in SERVICES:
            procs.append(Proc(f"worker-{name}", [py, "-m", "celery", "-A", f"services.{name}.worker", "worker",
                                                 "-Q", name, "-n", f"{name}@%h", "--concurrency", "1",
                                                 "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
                              background=True))
        # certificate PDFs render on a queue of their own, one task at a time (WeasyPrint is CPU and memory hungry)
        procs.append(Proc("worker-certs-render", [py, "-m", "celery", "-A", "services.certs.worker", "worker",
                                                  "-Q", "certs-render", "-n", "certs-render@%h", "--concurrency", "1",
                                                  "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
                              background=True))
        # the committee's 项目目录 imports and exports on a queue of their own, one job at a time: a 20 s import must
        # not hold up the projects events (decision SMS, award lists) on worker-projects
        procs.append(Proc("worker-projects-jobs", [py, "-m", "celery", "-A", "services.projects.worker", "worker",
                                                   "-Q", "projects-jobs", "-n", "projects-jobs@%h", "--concurrency",
                                                   "1", "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
                              background=True))
        # one beat per service with periodic tasks: projects' daily deadline reminders (services/projects/reminders) and
        # its nightly sweep of kept catalogue files (services/projects/catalogue/retention),
        # credits' daily notices of printable certificates (services/credits/notices)
        for name in ("projects", "credits"):
            schedule = str(self.run_dir / f"celerybeat-schedule-{name}")
            procs.append(Proc(f"beat-{name}", [py, "-m", "celery", "-A", f"services.{name}.worker", "beat",
                                               "--loglevel", "INFO", "--schedule", schedule], background=True))
        for name in SERVICES:
            procs.append(Proc(f"relay-{name}", [py, "-m", "services.common.relay", name], background=True))
        procs += self.extra_processes
        nginx = _find("nginx", "NGINX", ["/usr/sbin/nginx"])
        procs.append(Proc("gateway", [nginx, "-p", str(self.var_dir / "nginx"), "-e",
                                      str(self.log_dir / "nginx-error.log"), "-c", str(self.run_dir / "nginx.conf")]))
        return procs

    def _proc(self, name: str) -> Proc:
        for p in self.processes():
            if p.name == name:
                return p
        raise KeyError(f"no process named {name}")

    # -- configuration files
    def write_configs(self) -> None:
        self._prepare_dirs()
        upstreams = {name: [f"127.0.0.1:{p}" for p in ports] for name, ports in self.service_ports.items()}
        conf = render_gateway(upstreams, f"{self.gateway_listen}:{self.gateway_port}", self.var_dir, self.env,
                              extra_servers=self.extra_gateway_servers)
        (self.run_dir / "nginx.conf").write_text(conf, encoding="utf-8")
        port = self.own_redis_port or urllib.parse.urlparse(self.redis_url).port or 6379
        (self.run_dir / "redis.conf").write_text(
            "\n".join([
                f"port {port}",
                "bind 127.0.0.1",
                "protected-mode yes",
                "daemonize no",
                f"dir {self.var_dir / 'redis'}",
                "appendonly yes",
                "appendfsync everysec",
                "save 60 1",
                "maxmemory 256mb",
                "maxmemory-policy noeviction",
                f"logfile {self.log_path('redis')}",
                "",
            ]),
            encoding="utf-8",
        )

    # -- one process
    @property
    def code(self) -> dict[str, str]:
        """The checkout's code, as processes started now run it (computed once per Stack)."""
        if self._code is None:
            self._code = code_version()
        return self._code

    def _pid_file(self, name: str) -> list[str]:
        try:
            return self.pid_path(name).read_text().splitlines()
        except OSError:
            return []

    def pid(self, name: str) -> int | None:
        """The pid of a running process of ours, None when it does not run (stale files are removed)."""
        lines = self._pid_file(name)
        try:
            pid = int(lines[0])
        except (IndexError, ValueError):
            return None
        started = lines[1].strip() if len(lines) > 1 else ""
        if _alive(pid) and (not started or _start_time(pid) == started):
            return pid
        self.pid_path(name).unlink(missing_ok=True)
        return None

    def code_of(self, name: str) -> dict[str, str] | None:
        """The code a process was started from, as its pid file says (None: started by a runner that kept none)."""
        lines = self._pid_file(name)
        parts = lines[2].split() if len(lines) > 2 else []
        if len(parts) < 2 or parts[0] != "code":
            return None
        return {"digest": parts[1], "commit": parts[2] if len(parts) > 2 else ""}

    def older_code(self, names: Sequence[str]) -> dict[str, dict[str, str] | None]:
        """Of these running processes, those started from other code than the checkout holds now (a `git pull`
        since), with the code each runs."""
        codes = {name: self.code_of(name) for name in names if name not in NOT_CODE}
        return {name: code for name, code in codes.items() if not code or code["digest"] != self.code["digest"]}

    def code_note(self, older: Mapping[str, dict[str, str] | None]) -> str:
        """What the operator reads about processes running older code."""
        labels = sorted({code_label(code) for code in older.values()})
        return (f"{', '.join(older)} run{'s' if len(older) == 1 else ''} older code ({', '.join(labels)}) than the "
                f"checkout ({code_label(self.code)})")

    def start_process(self, name: str) -> int:
        running = self.pid(name)
        if running:
            return running
        proc = self._proc(name)
        self._prepare_dirs()
        if name == "gateway":
            self._check_nginx(proc)
        env = dict(self.env)
        env.update(proc.env)
        nice = background_nice(env) if proc.background else 0
        with open(self.log_path(name), "ab") as log, open(os.devnull, "rb") as null:
            child = subprocess.Popen(proc.argv, cwd=ROOT, env=env, stdin=null, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, close_fds=True,
                                     preexec_fn=(lambda: _lower_priority(nice)) if nice else None)
        self.pid_path(name).write_text(f"{child.pid}\n{_start_time(child.pid) or ''}\n"
                                       f"code {self.code['digest']} {self.code['commit']}\n")
        self.started.append(name)
        if name == "redis":
            self._wait_for(lambda: _redis_answers(self.redis_url), 20, "redis", name)
        if name == FAKE_WECHAT:
            self._wait_for(lambda: _port_answers(self.wechat_port), 20, "the fake WeChat server", name)
        return child.pid

    def reload_process(self, name: str, timeout: float = 10.0) -> bool:
        """Give the running gateway the checkout's configuration and error pages without a restart: nginx's master,
        on SIGHUP, checks the new configuration, starts new workers on it and lets the old ones finish their
        requests; its listening socket stays open. A restart (stop, then start) refused connections for ~0.1 s.
        True when reloaded (its pid file then names the checkout's code); False when it must be restarted instead:
        another process than the gateway, not running, started with another command, not answering on its port,
        or no new worker within `timeout`. An invalid configuration raises StackError, as a start would."""
        pid = self.pid(name)
        if name != "gateway" or pid is None:
            return False
        proc = self._proc(name)
        if (not _command_line(pid).endswith(" ".join(proc.argv))
                or not _port_answers(self.gateway_port, host=self.gateway_host)):
            return False
        self._check_nginx(proc)
        before = _children(pid)
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while not _children(pid) - before:
            if time.monotonic() > deadline or not _alive(pid):
                return False
            time.sleep(0.05)
        lines = self._pid_file(name)
        self.pid_path(name).write_text("\n".join([*lines[:2], f"code {self.code['digest']} {self.code['commit']}"])
                                       + "\n")
        self.reloaded.append(name)
        return True

    def _check_nginx(self, proc: Proc) -> None:
        result = subprocess.run([*proc.argv, "-t", "-q"], cwd=ROOT, env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            raise StackError(f"nginx configuration is invalid:\n{result.stderr}")

    def stop_process(self, name: str, timeout: float = 20.0) -> bool:
        """Stop one process group (TERM, then KILL after timeout). False when it was not running."""
        pid = self.pid(name)
        if pid is None:
            self.pid_path(name).unlink(missing_ok=True)
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._group_alive(pid):
            self._reap(pid)
            time.sleep(0.1)
        if self._group_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            time.sleep(0.2)
        self._reap(pid)
        self.pid_path(name).unlink(missing_ok=True)
        return True

    @staticmethod
    def _reap(pid: int) -> None:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass

    @staticmethod
    def _group_alive(pgid: int) -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return any(group == pgid for _pid, _parent, group in _live_processes())  # not only zombies left

    # -- the whole stack
    def migrate(self) -> None:
        result = subprocess.run([sys.executable, "-m", "deploy.manage", "upgrade"], cwd=ROOT, env=self.env,
                                capture_output=True, text=True)
        self.log_path("migrate").parent.mkdir(parents=True, exist_ok=True)
        self.log_path("migrate").write_text(result.stdout + result.stderr)
        # "<service>: database at head, upgraded from <rev> to <rev>" (deploy.manage upgrade) for what moved
        self.migrated = [f"{m.group(1)} {m.group(2)} → {m.group(3)}" for m in re.finditer(
            r"^(\w+): database at head, upgraded from (.+) to (\S+)$", result.stdout, re.MULTILINE)]
        if result.returncode != 0:
            # deploy.manage ends with one line naming the service and the reason; the traceback stays in the log
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            raise StackError(f"migrations failed: {lines[-1] if lines else 'exit code ' + str(result.returncode)}\n"
                             f"(the whole output: {self.log_path('migrate')})")

    def start(self, migrate: bool = True, wait: bool = True, timeout: float = 120.0,
              restart: Collection[str] = ()) -> None:
        """Start what does not run. `restart`: running processes to stop once the databases are migrated and to
        start again, one after another (an upgrade: they run older code than the checkout); a failed migration
        leaves them running."""
        self.write_configs()
        names = [p.name for p in self.processes()]
        if "redis" in names:
            self.start_process("redis")
        if migrate:
            self.migrate()
        # one after another, the gateway last (see processes()): each service is away only for its own restart, and
        # meanwhile the gateway answers for it with its page saying the service is unavailable
        for name in names:
            if name == "redis":
                continue
            if name in restart and not self.reload_process(name):  # the gateway reloads, the others restart
                self.stop_process(name)
            self.start_process(name)
        if wait:
            self.wait_healthy(timeout)

    def stop(self, only: Collection[str] | None = None) -> list[str]:
        """Stop every process with a pid file (or only those named), gateway first, Redis last. Safe to call
        twice."""
        order = ["gateway", *[f"web-{s}" for s in SERVICES], FAKE_WECHAT, "beat-projects", "beat-credits",
                 *[f"relay-{s}" for s in SERVICES], *[f"worker-{s}" for s in SERVICES], "worker-certs-render",
                 "worker-projects-jobs", "redis"]
        known = {p.stem for p in self.run_dir.glob("*.pid")} if self.run_dir.exists() else set()
        order += sorted(known - set(order))
        if only is not None:
            order = [name for name in order if name in only]
        stopped = [name for name in order if name in known and self.stop_process(name)]
        return stopped

    def ports_in_use(self) -> list[str]:
        """The ports that the processes about to start (those not running) would listen on and that another program
        answers on already, each with the process and the setting that chose it."""
        wanted = [("gateway", self.gateway_port, "CME_GATEWAY_PORT"),
                  (FAKE_WECHAT, self.wechat_port, "CME_WECHAT_FAKE_PORT")]
        wanted += [(f"web-{name}", port, "CME_SERVICE_PORTS") for name in SERVICES for port in self.service_ports[name]]
        if self._redis_is_ours():
            wanted.append(("redis", self.own_redis_port or urllib.parse.urlparse(self.redis_url).port or 6379,
                           "REDIS_URL"))
        return [f"port {port} ({name}, {setting})" for name, port, setting in wanted
                if not self.pid(name) and (_port_answers(port, timeout=0.5) or name == "gateway" and _port_answers(
                    port, timeout=0.5, host=self.gateway_host))]

    def settings(self) -> dict[str, Any]:
        """What the processes were started with and a second `up` must not change (written by `up`)."""
        return {
            "REDIS_URL": self.redis_url,
            "DATABASE_URL": self.env.get("DATABASE_URL") or None,
            "CME_GATEWAY_PORT": str(self.gateway_port),
            "CME_SERVICE_PORTS": _ports_text(self.service_ports),
            "CME_WECHAT_FAKE_PORT": str(self.wechat_port),
            "CME_VAR_DIR": str(self.var_dir),
            "environment": dict(self.operator_env),
        }

    def running(self) -> list[str]:
        """The processes of ours that run now, by their pid files."""
        known = sorted(p.stem for p in self.run_dir.glob("*.pid")) if self.run_dir.exists() else []
        return [name for name in known if self.pid(name)]

    def status(self) -> dict[str, int | None]:
        names = [p.name for p in self.processes()]
        if self.run_dir.exists():
            names += sorted({p.stem for p in self.run_dir.glob("*.pid")} - set(names))
        return {name: self.pid(name) for name in names}

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        req = urllib.request.Request(self.base_url + path, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, OSError):
            return 0, b""

    def healthy(self) -> dict[str, int]:
        return {name: self.get(f"/{name}/healthz")[0] for name in SERVICES}

    def wait_healthy(self, timeout: float = 120.0) -> None:
        """Until every /<service>/healthz answers 200 through the gateway; fails early when a process died."""
        deadline = time.monotonic() + timeout
        last: dict[str, int] = {}
        while time.monotonic() < deadline:
            last = self.healthy()
            if all(code == 200 for code in last.values()):
                return
            dead = [p.name for p in self.processes() if self.pid(p.name) is None]
            if dead:
                reasons = "".join(f"{name}: {why}\n" for name in dead if (why := self.reason(name)))
                raise StackError(f"stopped while starting: {', '.join(dead)}\n{reasons}" + self._tails(dead))
            time.sleep(0.5)
        names = [p.name for p in self.processes()]
        raise StackError(f"not healthy after {timeout:.0f}s: {last}\n" + self._tails(names))

    def _wait_for(self, check, timeout: float, what: str, name: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            if self.pid(name) is None:
                break
            time.sleep(0.1)
        raise StackError(f"{what} did not come up\n" + self._tails([name]))

    _EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?\w*(?:Error|Exception|Exit): .+$")

    def reason(self, name: str) -> str | None:
        """The last exception a process's log ends with (gunicorn's own HaltServer, which only says that a worker
        failed to boot, left out): what stopped it, which the tail of a traceback may not show."""
        path = self.log_path(name)
        try:
            tail = path.read_text(errors="replace").splitlines()[-300:]
        except OSError:
            return None
        found = [line.strip() for line in tail if self._EXCEPTION.match(line.strip()) and "HaltServer" not in line]
        return found[-1] if found else None

    def _tails(self, names: Sequence[str], lines: int = 15) -> str:
        out = []
        for name in names:
            path = self.log_path(name)
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {path}\n" + "\n".join(tail))
        return "\n".join(out)

    def load_demo(self) -> dict | None:
        """Run services.projects.demo.load_demo in the stack's environment; None when there is no demo yet."""
        result = subprocess.run([sys.executable, "-m", "deploy.local", "_demo"], cwd=ROOT, env=self.env,
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise StackError(f"loading the demo data failed:\n{result.stderr[-3000:]}")
        last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "null"
        return json.loads(last)


def _load_demo_here(wait_seconds: float = 60.0) -> None:
    """Child of Stack.load_demo: prints the demo's summary as one JSON line (or null).

    projects' demo approves a held offering; checkin learns of it through offering.approved (relay and
    worker), so the demo check-ins wait until the activity is there. The runner may import every service:
    it is the one place that plays the whole story, as people would across the services."""
    import importlib.util

    if importlib.util.find_spec("services.projects.demo") is None:
        print("null")
        return
    from services.checkin import models as checkin_models  # noqa: F401 - the whole schema is known
    from services.checkin.db import db as checkin_db
    from services.checkin.demo import load_demo_checkins
    from services.projects import models  # noqa: F401 - the whole schema is known
    from services.projects.db import db
    from services.projects.demo import load_demo  # type: ignore[import-not-found]

    session = db.new_session()
    try:
        refused = _installation_of_its_own(session)
        if refused:
            print(json.dumps({"not_loaded": refused}, ensure_ascii=False))
            return
        summary = load_demo(session)
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()
    for held in summary.get("held_offerings") or []:
        deadline = time.monotonic() + wait_seconds
        while True:
            csession = checkin_db.new_session()
            try:
                scans = load_demo_checkins(csession, held["offering_id"])
            except Exception:
                csession.rollback()
                raise
            finally:
                csession.close()
            if scans is not None or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if scans is None:
            print(f"the checkin activity of the demo offering {held['project_title']} did not arrive within "
                  f"{wait_seconds:.0f} s; run `python -m deploy.local _demo` again later", file=sys.stderr)
            continue
        held["activity_id"] = scans["activity_id"]
        held["checkins_added"] = scans["checkins_added"]
        summary["trainees"] = scans["trainees"]  # the same eight scanned at each held offering
    if summary.get("held_offerings"):
        summary["held_offering"] = summary["held_offerings"][0]
    print(json.dumps(summary, ensure_ascii=False, default=str))


def _installation_of_its_own(session: Any) -> str | None:
    """Why the demo must stay out of this projects database, or None. The demo adds a committee account whose
    password README publishes, its catalogue over the real one's numbers and scans of made-up trainees into
    offerings of its own names: a `make down` / `make up` of an installation started without it (CME_LOCAL_DEMO=0
    given once, in the shell) must not mix it in. Loaded only into a database with no committee account yet, or
    one that already holds the demo's."""
    from sqlalchemy import select

    from services.projects.demo import REVIEWER  # type: ignore[import-not-found]
    from services.projects.institutions.models import Reviewer

    accounts = list(session.scalars(select(Reviewer.account).order_by(Reviewer.id).limit(4)))
    if not accounts or REVIEWER["account"] in accounts:
        return None
    return (f"this installation has committee accounts of its own ({', '.join(accounts)}) and not the demo's, "
            "so its data is not mixed with the demo's; CME_LOCAL_DEMO=0 in .env says the same without this check")


# ---- command line --------------------------------------------------------------------------------

def _ports_from_env(environ: Mapping[str, str] | None = None) -> dict[str, int | list[int]]:
    environ = os.environ if environ is None else environ
    ports: dict[str, int | list[int]] = {}
    for part in environ.get("CME_SERVICE_PORTS", "").split(","):
        if "=" in part:
            name, _, value = part.partition("=")
            numbers = [int(v) for v in value.split("+") if v.strip()]
            ports[name.strip()] = numbers[0] if len(numbers) == 1 else numbers
    return ports


def _ports_text(ports: Mapping[str, int | Sequence[int]]) -> str:
    """CME_SERVICE_PORTS's form, every service named, so two spellings of the same ports compare equal."""
    merged: dict[str, int | Sequence[int]] = {**DEFAULT_PORTS, **ports}
    return ",".join(f"{name}=" + "+".join(str(p) for p in ([merged[name]] if isinstance(merged[name], int)
                                                           else merged[name])) for name in SERVICES)


def _explicit(name: str, raw: str) -> str:
    """An operator's value of a recorded setting in the form Stack.settings() records it."""
    if name == "CME_SERVICE_PORTS":
        return _ports_text(_ports_from_env({name: raw}))
    if name in ("CME_GATEWAY_PORT", "CME_WECHAT_FAKE_PORT"):
        return str(int(raw))
    return raw


def _shown(name: str, value: str | None) -> str:
    if value is None:
        return "unset" + (" (SQLite files in the var directory)" if name == "DATABASE_URL" else "")
    parsed = urllib.parse.urlsplit(value)
    if parsed.password:  # name the URL, never print its password
        value = value.replace(f":{parsed.password}@", ":***@", 1)
    return value


SETTINGS_FILE = "stack.json"
RECORDED = ("REDIS_URL", "DATABASE_URL", "CME_GATEWAY_PORT", "CME_SERVICE_PORTS", "CME_WECHAT_FAKE_PORT")
# set by the runner for every process from the var directory and the ports, or read by the runner alone
NOT_CARRIED = ("CME_VAR_DIR", "CME_WECHAT_API_BASE", "CME_WECHAT_OPEN_BASE", "CME_LOCAL_DEMO")
_SECRET_NAME = re.compile(r"KEY|SECRET|PASSWORD|TOKEN")


def operator_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The suite's settings (CME_*, GUNICORN_*) in an environment, beyond the URLs and ports of RECORDED."""
    return {name: value for name, value in environ.items()
            if name.startswith(("CME_", "GUNICORN_")) and name not in RECORDED and name not in NOT_CARRIED
            and value.strip()}


def _shown_setting(name: str, value: str | None) -> str:
    """A setting for the operator's screen: keys and secrets are named, never printed."""
    if value is not None and _SECRET_NAME.search(name):
        return "(a value not shown)"
    return _shown(name, value)


def settings_path(var_dir: Path) -> Path:
    return var_dir / "run" / SETTINGS_FILE


def record_settings(stack: Stack) -> Path:
    """var/run/stack.json: the settings `up` started the stack with (only URLs and ports, already in the
    processes' environment; owner-only, as DATABASE_URL may carry a password)."""
    path = settings_path(stack.var_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(stack.settings(), out, indent=2)
        out.write("\n")
    return path


def settings_recorded(var_dir: Path) -> bool:
    """Whether var/run/stack.json holds every setting the running processes were started with (a runner of before
    29 November kept the URLs and ports only, or nothing)."""
    try:
        recorded = json.loads(settings_path(var_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(recorded, dict) and isinstance(recorded.get("environment"), dict)


def reconcile(var_dir: Path, environ: Mapping[str, str], running: Sequence[str],
              strict: bool) -> tuple[dict[str, str], list[str]]:
    """The environment to run a command with while processes of the stack still run: the settings recorded by
    the `up` that started them fill in what the operator left unset, so a plain `up` repairs the stack instead of
    starting the missing processes against another Redis, database or ports. An explicit value that contradicts
    the record stops `up` (strict) naming the difference; other commands use the record and say so.
    Returns the environment and notes for the operator."""
    env = dict(environ)
    path = settings_path(var_dir)
    if not running or not path.is_file():
        return env, []
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return env, [f"{path} is unreadable: the settings it held are not checked"]
    notes: list[str] = []
    differences: list[str] = []
    # (name, as the running stack was started, as this environment says): the URLs and ports, then every other
    # setting the operator gave (a clock offset, SMS or WeChat settings, keys): a repaired worker must not run on
    # another clock or key than the rest
    pairs: list[tuple[str, str | None, str | None]] = []
    for name in RECORDED:
        if name in recorded:
            raw = environ.get(name, "").strip()
            pairs.append((name, recorded[name], _explicit(name, raw) if raw else None))
    kept = recorded.get("environment")
    if isinstance(kept, dict):
        current = operator_settings(environ)
        pairs += [(name, kept.get(name), current.get(name)) for name in sorted(set(kept) | set(current))]
    for name, was, now in pairs:
        if now is None:
            if was is not None:
                env[name] = str(was)
                notes.append(f"{name}={_shown_setting(name, str(was))} (as the running stack was started)")
        elif now != was:
            differences.append(f"{name}: the running stack uses {_shown_setting(name, was)}, this environment says "
                               f"{_shown_setting(name, now)}")
            if was is None:
                env.pop(name, None)
            else:
                env[name] = str(was)
    if differences:
        head = f"processes of the stack still run ({', '.join(running)}) with the settings in {path}:"
        if strict:
            raise SystemExit(head + "\n  " + "\n  ".join(differences) + "\nrun `python -m deploy.local up` with "
                             "the same settings (or unset them) to start what is missing, or `python -m "
                             "deploy.local down` first to start over with the new ones")
        notes += [f"ignored, {d}" for d in differences]
    return env, notes


def stack_from_env(strict: bool = False, check: bool = True) -> tuple[Stack, list[str]]:
    """The stack the environment names; while processes of it run, with the settings they were started with
    (see reconcile; strict for `up`). Returns the stack and notes for the operator."""
    from services.common.config import get_settings

    try:
        get_settings()  # reads the optional .env (CME_ENV_FILE) into the environment, as the services do
    except RuntimeError as exc:  # CME_ENV=production's refusal names each setting: a traceback would bury it
        if check:
            raise SettingsRefused(str(exc)) from None
    var_dir = Path(os.environ.get("CME_VAR_DIR", ROOT / "var")).resolve()
    running = Stack(var_dir, env={}).running()
    environ, notes = reconcile(var_dir, os.environ, running, strict)
    stack = Stack(var_dir, int(environ.get("CME_GATEWAY_PORT") or 8080), _ports_from_env(environ), env=environ)
    return stack, notes


# what a new installation started without the demo needs next: nobody can log in until an operator makes the first
# 审核员 (only the committee creates institutions), and the command reads .env, not the shell `make up` ran in
_FIRST_REVIEWER = ("A new installation has no committee account: make the first with `.venv/bin/python -m "
                   "services.projects.institutions.reviewers add ACCOUNT NAME MOBILE` (`list` shows those there are). "
                   "It reads .env, not this shell: keep DATABASE_URL and the keys there (README, Operating it, "
                   "Deploy on one machine).")


def _print_demo(summary: dict | None) -> None:
    if summary == {}:
        print("Demo data: skipped (--no-demo / CME_LOCAL_DEMO=0).")
        print(_FIRST_REVIEWER)
        return
    if summary is None:
        print("Demo data: not available yet (services/projects/demo.py is missing).")
        return
    if "not_loaded" in summary:
        print(f"Demo data: not loaded: {summary['not_loaded']}.")
        return
    print("Demo data loaded (institutions and the committee log in at /projects/login, the SMS code appears in"
          " the SMS log; trainees log in at /credits/login with the ID number and the initial password):")

    def line(item: object) -> str:
        if isinstance(item, dict):
            return "  ".join(f"{k}: {v}" for k, v in item.items() if not isinstance(v, (dict, list)))
        return str(item)

    for key, value in (summary.items() if isinstance(summary, dict) else [("demo", summary)]):
        if key == "held_offering" and "held_offerings" in summary:  # the first of held_offerings, printed there
            continue
        if isinstance(value, list):
            print(f"  {key}:")
            for item in value:
                print(f"    {line(item)}")
        else:
            print(f"  {key}: {line(value)}")


TENCENT_REQUIRED = ("CME_TENCENT_SECRET_ID", "CME_TENCENT_SECRET_KEY", "CME_TENCENT_SMS_APP_ID", "CME_TENCENT_SMS_SIGN",
                    "CME_TENCENT_SMS_TEMPLATE_ID")  # what services.common.sms needs before it sends a login code


def sms_line(env: Mapping[str, str], sms_log: Path) -> str:
    """Where the login codes go. `make up` said "written to var/sms.log" whatever CME_SMS_PROVIDER said: with
    .env.example's tencent and no account, no code went anywhere and the login page only said to try again later."""
    provider = env.get("CME_SMS_PROVIDER") or "log"
    if provider == "log":
        return f"SMS codes are written to {sms_log}"
    missing = [name for name in TENCENT_REQUIRED if not env.get(name)] if provider == "tencent" else []
    if missing:
        return (f"SMS: CME_SMS_PROVIDER=tencent but {', '.join(missing)} not set: NO login code will be sent, so "
                f"nobody can log in; set them, or CME_SMS_PROVIDER=log to read the codes in {sms_log}")
    return f"SMS codes are sent by CME_SMS_PROVIDER={provider} (not written to {sms_log})"


def cmd_up(stack: Stack, demo: bool = True, notes: Sequence[str] = ()) -> int:
    print(f"var directory: {stack.var_dir}")
    for note in notes:
        print(f"reusing {note}")
    db = stack.env.get("DATABASE_URL")
    print(f"databases: {_shown('DATABASE_URL', db) if db else f'SQLite files {stack.var_dir}/<service>.db'}")
    already = stack.running()
    # an upgrade (`git pull`, then `make up`): the databases are migrated, then what runs the old code is restarted
    older = stack.older_code(already)
    if older and not settings_recorded(stack.var_dir):
        # restarted with this shell's settings they could come back on other keys, another clock or other ports
        print(f"upgrade refused: {stack.code_note(older)}, and the runner that started them kept no full record "
              f"of their settings ({settings_path(stack.var_dir)}): run `make down`, then `make up` with the "
              "settings they were started with (the same CME_* variables or .env)", file=sys.stderr)
        return 1
    busy = stack.ports_in_use()
    if busy:
        print(f"FAILED: another program listens on {'; '.join(busy)}: stop it, or start the suite on other ports "
              "(README, Configuration); nothing was started", file=sys.stderr)
        return 1
    redis = _shown("REDIS_URL", stack.redis_url)  # names the URL, never its password
    if stack.pid("redis"):
        print(f"redis: ours, running at {redis}")
    elif stack._redis_is_ours():
        print(f"redis: starting redis-server at {redis}")
    else:
        print(f"redis: using the one answering at {redis}")
    if older:
        print(f"upgrade: {stack.code_note(older)}: migrating the databases, then restarting them")
    record_settings(stack)
    try:
        stack.start(restart=list(older))
        # a repair leaves the data as it is (the demo was loaded by the `up` that started the others)
        summary = stack.load_demo() if demo and not already else {}
    except StackError as exc:
        if older and stack.started:
            # the old code is gone from the checkout: stopping what runs on the new one would only take more down
            running = stack.running()
            down = [p.name for p in stack.processes() if p.name not in running]
            print(f"\nFAILED: {exc}\n\nThe upgrade left running on {code_label(stack.code)}: "
                  f"{', '.join(running) or 'nothing'}; not running: {', '.join(down)}. Fix what the log names, then "
                  "`make up` starts what is missing (`make status` lists it).", file=sys.stderr)
            return 1
        # a repair `up` must not take down what ran fine before it: stop only what this run started
        print(f"\nFAILED: {exc}\n\nStopping what this run started.", file=sys.stderr)
        stopped = stack.stop(only=stack.started)
        print("stopped: " + (", ".join(stopped) or "nothing"), file=sys.stderr)
        kept = [name for name in already if name not in stack.started and stack.pid(name)]
        if kept:
            print("left running as they were before: " + ", ".join(kept), file=sys.stderr)
        return 1
    for line in stack.migrated:
        print(f"migrated: {line}")
    print()
    print(f"The suite runs at {stack.base_url}/"
          + (f" (nginx listens on {stack.gateway_listen}:{stack.gateway_port}; users open "
             f"{stack.env.get('CME_PUBLIC_BASE_URL')})" if stack.gateway_listen != stack.gateway_host else ""))
    print(sms_line(stack.env, stack.sms_log))
    print(f"WeChat login goes to the fake WeChat OAuth server at {stack.wechat_url} (any browser is let through)")
    print(f"Logs: {stack.log_dir}/<process>.log    Stop with: make down")
    if already:
        # the person on call wants to know what this repair did, not the demo's initial passwords again
        started = [name for name in stack.started if name not in older]
        kept = [name for name in already if name not in older]
        if older:
            restarted = [name for name in older if name not in stack.reloaded]
            done = ([f"restarted {', '.join(restarted)}"] if restarted else []) + (
                [f"reloaded {', '.join(stack.reloaded)} (no connection dropped)"] if stack.reloaded else [])
            print(f"Upgraded: {' and '.join(done)} on {code_label(stack.code)}"
                  + (f"; started {', '.join(started)}" if started else "")
                  + (f"; left running as they were: {', '.join(kept)}" if kept else ""))
        else:
            print(f"Repaired: started {', '.join(started) or 'nothing (every process was running)'}; "
                  f"left running as they were: {', '.join(kept)}")
        print("Demo data: none loaded by a repair or an upgrade (the demo's logins, if the first `up` loaded it, "
              "are in README, Run it)")
        return 0
    _print_demo(summary)
    return 0


def cmd_down(stack: Stack) -> int:
    stopped = stack.stop()
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def cmd_status(stack: Stack, notes: Sequence[str] = ()) -> int:
    """Lists the processes and the services' health; exits 1 when a process is stopped or a service is not
    healthy, so a monitor (or the person on call) can act on the exit code alone."""
    for note in notes:
        print(f"settings: {note}")
    rows = stack.status()
    for name, pid in rows.items():
        print(f"{name:18} {'running pid ' + str(pid) if pid else 'stopped'}")
    health = stack.healthy() if rows.get("gateway") else {}
    for name, code in health.items():
        print(f"{'/' + name + '/healthz':18} {code or 'no answer'}")
    stopped = [name for name, pid in rows.items() if not pid]
    unhealthy = [name for name, code in health.items() if code != 200]
    older = stack.older_code([name for name, pid in rows.items() if pid])
    if older:
        print(f"OLDER CODE: {stack.code_note(older)} (`make up` migrates the databases and restarts them)")
    if stopped:
        print(f"STOPPED: {', '.join(stopped)} (`make up` starts what is missing, with the settings the others "
              "were started with)")
    if unhealthy:
        logs = ", ".join(str(stack.log_path(f"web-{name}")) for name in unhealthy)
        print(f"NOT HEALTHY: {', '.join(unhealthy)} (see {logs})")
    return 1 if stopped or unhealthy or older else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up")
    up.add_argument("--no-demo", action="store_true", help="do not load the demo data (also CME_LOCAL_DEMO=0)")
    sub.add_parser("down")
    sub.add_parser("status")
    render = sub.add_parser("render-gateway")
    render.add_argument("--compose", action="store_true", help="for docker compose (service names, port 8000)")
    render.add_argument("--gateway-dir", default=None, help="where gateway/errors is (compose: /gateway)")
    render.add_argument("--out", default=None)
    sub.add_parser("_demo")
    args = parser.parse_args(argv)
    if args.cmd == "_demo":
        _load_demo_here()
        return 0
    if args.cmd == "render-gateway":
        if args.compose:
            conf = render_gateway(compose_upstreams(), "8080", None, compose=True,
                                  gateway_dir=args.gateway_dir or "/gateway")
        else:
            stack, _notes = stack_from_env()
            upstreams = {n: [f"127.0.0.1:{p}" for p in ports] for n, ports in stack.service_ports.items()}
            conf = render_gateway(upstreams, f"{stack.gateway_listen}:{stack.gateway_port}", stack.var_dir, stack.env,
                                  gateway_dir=args.gateway_dir or GATEWAY_DIR)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(conf, encoding="utf-8")
        else:
            sys.stdout.write(conf)
        return 0
    try:
        stack, notes = stack_from_env(strict=args.cmd == "up")
    except SettingsRefused as exc:
        if args.cmd != "down":
            hint = (" A trial that reads the login codes from the SMS log runs with CME_ENV=development (README, "
                    "Operating it, Deploy on one machine)." if "CME_SMS_PROVIDER=log" in str(exc) else "")
            print(f"FAILED: {exc}; nothing was {'started' if args.cmd == 'up' else 'asked'}.{hint}", file=sys.stderr)
            return 1
        try:
            stack, notes = stack_from_env(check=False)  # what runs is stopped whatever the settings now say
        except SettingsRefused as again:
            print(f"FAILED: {again}; nothing was stopped.", file=sys.stderr)
            return 1
    if args.cmd == "up":
        return cmd_up(stack, demo=not args.no_demo and os.environ.get("CME_LOCAL_DEMO", "1") != "0", notes=notes)
    if args.cmd == "status":
        return cmd_status(stack, notes)
    return cmd_down(stack)


if __name__ == "__main__":
    sys.exit(main())
