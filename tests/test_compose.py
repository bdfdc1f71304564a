"""docker-compose.yml, checked without a Docker engine: it parses, every gateway upstream has a
service, every command names a module that exists, every long-running service has a health check."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from deploy.local import SERVICES, compose_upstreams, render_gateway

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
ALL = COMPOSE["services"]
ONE_SHOT = {name for name, svc in ALL.items() if svc.get("restart") == "no"}
APP = {name for name, svc in ALL.items() if svc.get("build")}


def _gateway_conf() -> str:
    return render_gateway(compose_upstreams(), "8080", None, compose=True, gateway_dir="/gateway")


def test_compose_has_the_whole_suite():
    for name in ("postgres", "redis", "migrate", "gateway", "beat", "beat-credits", *SERVICES):
        assert name in ALL, name
    for name in SERVICES:
        assert f"worker-{name}" in ALL
        assert f"relay-{name}" in ALL
    assert "--appendonly" in ALL["redis"]["command"]


def test_every_gateway_upstream_has_a_service():
    conf = _gateway_conf()
    upstreams = dict(re.findall(r"upstream\s+(\w+)\s*\{(.*?)\}", conf, re.S))
    assert set(upstreams) == set(SERVICES)
    proxied = set(re.findall(r"proxy_pass\s+http://([\w-]+)", conf))
    assert proxied <= set(upstreams)
    for name, body in upstreams.items():
        servers = re.findall(r"server\s+([\w.-]+):(\d+)", body)
        assert servers, name
        for host, port in servers:
            assert host in ALL, f"upstream {name} points at {host}, which is no compose service"
            assert host in APP
            assert f"services.{name}.wsgi:app" in ALL[host]["command"]
            assert port == "8000"


def test_gateway_mounts_the_rendered_config():
    gw = ALL["gateway"]
    assert any(v.endswith(":/gateway:ro") for v in gw["volumes"])
    assert "-c" in gw["command"]
    assert gw["depends_on"]["gateway-config"]["condition"] == "service_completed_successfully"
    assert (ROOT / "gateway" / "nginx.conf.template").is_file()
    for code in (413, 429, 502):
        assert (ROOT / "gateway" / "errors" / f"{code}.html").is_file()


def _module_of(command: list[str]) -> list[str]:
    """The Python modules a command names: gunicorn's app, celery -A, python -m."""
    found = []
    for i, arg in enumerate(command):
        if re.fullmatch(r"services\.[\w.]+:\w+", arg):
            found.append(arg)
        if arg == "-A" or (arg == "-m" and command[0].startswith("python")):
            found.append(command[i + 1])
        if arg == "-c" and command[0] == "gunicorn":
            assert (ROOT / command[i + 1]).is_file(), command[i + 1]
    return found


@pytest.mark.parametrize("name", sorted(APP))
def test_every_command_names_a_module_that_exists(name):
    command = ALL[name]["command"]
    assert isinstance(command, list), "exec form, so signals reach the process"
    modules = _module_of(command)
    assert modules, command
    for target in modules:
        module, _, attr = target.partition(":")
        assert importlib.util.find_spec(module) is not None, target
        if attr:  # the gunicorn entry really has the app object
            assert hasattr(importlib.import_module(module), attr), target


@pytest.mark.parametrize("name", sorted(set(ALL) - ONE_SHOT))
def test_every_long_running_service_has_a_healthcheck(name):
    check = ALL[name].get("healthcheck")
    assert check and check.get("test"), name


def test_scalable_services_have_no_fixed_name_or_host_port():
    for name in APP:
        svc = ALL[name]
        assert "container_name" not in svc, name
        assert "ports" not in svc, name


def test_configuration_comes_from_the_env_file():
    for name in APP:
        assert ALL[name]["env_file"] == ".env" or ".env" in ALL[name]["env_file"]
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    for key in ("CME_SECRET_KEY", "CME_PII_KEYS", "CME_HASH_KEYS", "DATABASE_URL", "REDIS_URL", "CME_SMS_PROVIDER",
                "CME_TENCENT_SECRET_ID", "CME_CLOCK_OFFSET_SECONDS", "CME_CLOCK_FILE", "CME_PUBLIC_BASE_URL",
                "CME_GATEWAY_PORT", "POSTGRES_PASSWORD"):
        assert re.search(rf"^#?\s*{key}=", example, re.M), key


def test_dockerfile_builds_the_app_image():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    for package in ("fonts-noto-cjk", "libharfbuzz-subset0", "libpango-1.0-0", "requirements.txt"):
        assert package in dockerfile
    for name in APP:
        assert ALL[name]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (ROOT / "deploy" / "gunicorn.conf.py").is_file()


def test_gunicorn_config_loads():
    namespace: dict = {}
    exec(compile((ROOT / "deploy" / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)
    assert namespace["workers"] >= 1 and namespace["max_requests"] > 0
    assert "x-request-id" in namespace["access_log_format"]
    # gunicorn's access log names the path, never the query string (%(r)s and %(q)s would carry ?q=<ID number>)
    assert "%(U)s" in namespace["access_log_format"] and "%(r)s" not in namespace["access_log_format"]
    assert "%(q)s" not in namespace["access_log_format"]
    # no shared control socket: a setting this gunicorn knows, so the file's value takes effect
    from gunicorn.config import KNOWN_SETTINGS

    assert namespace["control_socket_disable"] is True
    assert "control_socket_disable" in {s.name for s in KNOWN_SETTINGS}


def test_every_container_rotates_its_log():
    """Docker's json-file log grows without end unless capped: every service, one-shots included."""
    for name, svc in ALL.items():
        logging = svc.get("logging") or {}
        assert logging.get("driver") == "json-file", name
        assert logging["options"]["max-size"] and int(logging["options"]["max-file"]) >= 2, name


def test_gateway_trusts_a_load_balancers_forwarded_address_only_when_told():
    assert "real_ip" not in _gateway_conf()  # default: nginx's peer is the client
    conf = render_gateway(compose_upstreams(), "8080", None, {"CME_GATEWAY_REAL_IP_FROM": "10.0.0.0/8, 192.168.1.5"},
                          compose=True, gateway_dir="/gateway")
    assert "set_real_ip_from 10.0.0.0/8;" in conf and "set_real_ip_from 192.168.1.5;" in conf
    assert "real_ip_header X-Forwarded-For;" in conf and "real_ip_recursive on;" in conf
    with pytest.raises(SystemExit, match="CME_GATEWAY_REAL_IP_FROM"):
        render_gateway(compose_upstreams(), "8080", None, {"CME_GATEWAY_REAL_IP_FROM": "10.0.0.0/8; include /x"},
                       compose=True, gateway_dir="/gateway")


def test_rendered_gateway_configs_are_valid_nginx(tmp_path):
    """nginx -t on the local rendering (the compose one needs Docker's resolver and a newer nginx)."""
    import shutil
    import subprocess

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.skip("nginx is not installed")
    for sub in ("run", "log", "nginx"):
        (tmp_path / sub).mkdir()
    upstreams = {name: [f"127.0.0.1:{9100 + i}"] for i, name in enumerate(SERVICES)}
    for env in ({}, {"CME_GATEWAY_REAL_IP_FROM": "10.0.0.0/8,fd00::/8"}):
        conf = render_gateway(upstreams, "127.0.0.1:9099", tmp_path, env)
        (tmp_path / "nginx.conf").write_text(conf)
        result = subprocess.run([nginx, "-t", "-p", str(tmp_path / "nginx"), "-e", str(tmp_path / "log" / "e.log"),
                                 "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True)
        assert result.returncode == 0, (env, result.stderr)


def test_background_services_yield_the_cpu_to_the_web_services():
    """Under a burst of scans the phones are answered first; workers, beats and relays catch up after."""
    background = [n for n in ALL if n.startswith(("worker-", "beat", "relay-"))]
    # a worker and a relay each, certs-render, projects-jobs, two beats
    assert len(background) == 2 * len(SERVICES) + 4
    for name in background:
        assert ALL[name].get("cpu_shares", 1024) < 1024, name
    for name in SERVICES:
        assert ALL[name].get("cpu_shares", 1024) == 1024, name


def _queues(command: list[str]) -> tuple[str, str] | None:
    """(queue, concurrency) of a Celery worker's command line; None for anything else."""
    if "worker" not in command or "-Q" not in command:
        return None
    return command[command.index("-Q") + 1], command[command.index("--concurrency") + 1]


def test_every_queue_a_task_is_routed_to_has_a_worker_in_both_layouts(tmp_path):
    """The catalogue's jobs (导入, 导出 Excel) go to projects-jobs, away from the projects events: compose and the
    local runner each start a worker on it, one job at a time, as they do for
    certs-render."""
    from deploy.local import Stack
    from services.certs.worker import celery as certs
    from services.projects.worker import celery as projects

    routed = set(SERVICES) | {route["queue"] for app in (projects, certs)
                              for route in (app.conf.task_routes or {}).values()}
    assert {"projects-jobs", "certs-render"} <= routed
    compose = dict(q for svc in ALL.values() if (q := _queues(svc.get("command") or [])))
    local = dict(q for p in Stack(tmp_path, env={}).processes() if (q := _queues(p.argv)))
    for layout in (compose, local):
        assert routed <= set(layout), routed - set(layout)
        assert layout["projects-jobs"] == "1" and layout["certs-render"] == "1"
    assert "projects-jobs" in ALL["worker-projects-jobs"]["command"]
    assert "projects-jobs@$$HOSTNAME" in ALL["worker-projects-jobs"]["healthcheck"]["test"][1]


def test_local_run_starts_background_processes_niced(tmp_path):
    import subprocess
    import sys

    from deploy.local import Stack, _lower_priority, background_nice

    procs = {p.name: p for p in Stack(tmp_path, env={}).processes()}
    assert {n for n, p in procs.items() if p.background} == {
        n for n in procs if n.startswith(("worker-", "beat-", "relay-"))}
    assert not any(procs[f"web-{name}"].background for name in SERVICES) and not procs["gateway"].background
    assert background_nice({}) == 19 and background_nice({"CME_BACKGROUND_NICE": "0"}) == 0
    with pytest.raises(SystemExit):
        background_nice({"CME_BACKGROUND_NICE": "20"})
    # a child in a session of its own, as the runner starts it: the process and its autogroup are niced
    probe = ("import os; g = '/proc/self/autogroup'; print(os.nice(0)); "
             "print(open(g).read().split()[-1] if os.path.exists(g) else 'none')")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         start_new_session=True, preexec_fn=lambda: _lower_priority(19)).stdout.split()
    assert out[0] == "19" and out[1] in ("19", "none")  # "none": a kernel without autogroup scheduling


def test_behind_a_balancer_the_gateway_sees_the_phones_address(tmp_path):
    """With CME_GATEWAY_REAL_IP_FROM naming the balancer, the access log (and the rate limits' key) carry the
    address the balancer forwarded; a client outside it cannot pick its own."""
    import http.client
    import shutil
    import subprocess
    import time

    from deploy.local import free_port

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.skip("nginx is not installed")
    for sub in ("run", "log", "nginx"):
        (tmp_path / sub).mkdir()
    port = free_port()
    upstreams = {name: [f"127.0.0.1:{free_port()}"] for name in SERVICES}

    def seen_as(trusted: str) -> str:
        access = tmp_path / "log" / "nginx-access.log"
        access.unlink(missing_ok=True)
        conf = render_gateway(upstreams, f"127.0.0.1:{port}", tmp_path, {"CME_GATEWAY_REAL_IP_FROM": trusted})
        (tmp_path / "nginx.conf").write_text(conf)
        server = subprocess.Popen([nginx, "-p", str(tmp_path / "nginx"), "-e", str(tmp_path / "log" / "e.log"),
                                   "-c", str(tmp_path / "nginx.conf")])
        try:
            for _ in range(50):
                try:  # "/" answers a redirect itself, logged (the health check is not)
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    conn.request("GET", "/", headers={"X-Forwarded-For": "203.0.113.7"})
                    assert conn.getresponse().status == 302
                    conn.close()
                    break
                except OSError:
                    time.sleep(0.1)
            for _ in range(50):
                if access.exists() and access.read_text():
                    break
                time.sleep(0.1)
            return access.read_text().split(" ", 1)[0]
        finally:
            server.terminate()
            server.wait(10)

    assert seen_as("127.0.0.1") == "203.0.113.7"  # the balancer (here: loopback) is trusted
    assert seen_as("10.0.0.0/8") == "127.0.0.1"  # a client not in the list keeps its own address


def test_every_setting_the_code_reads_is_documented():
    """README's configuration table and .env.example name every setting read in the code (README says so)."""
    read = set()
    for path in [*(ROOT / "services").rglob("*.py"), *(ROOT / "deploy").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        read |= set(re.findall(r"""(?:env|environ\.get|getenv|environ\[|_int_env)\(?\s*["']([A-Z][A-Z0-9_]+)["']""",
                               text))
        read |= set(re.findall(r"""_find\(\s*["'][^"']+["'],\s*["']([A-Z][A-Z0-9_]+)["']""", text))  # NGINX, ...
    # every name, not only the suite's own: libpq's PGOPTIONS (deploy.manage sets lock_timeout through it unless the
    # operator did) and gunicorn's WEB_CONCURRENCY were read and in neither; a request's WSGI keys are no settings
    read = {name for name in read if not name.startswith("HTTP_")}
    assert {"CME_TRAINEE_MAX_FAILURES", "CME_WEB_TIMEOUT", "CME_PROJECTOR_LEAD_SECONDS", "PGOPTIONS",
            "NGINX"} <= read  # the scan works
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Configuration"):readme.index("## Deployment")]
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    missing = {name for name in read if f"`{name}`" not in table}
    assert not missing, f"missing in README's configuration table: {sorted(missing)}"
    # CME_ENV_FILE names the file itself
    missing = {name for name in read - {"CME_ENV_FILE"} if not re.search(rf"^#?\s*{name}=", example, re.M)}
    assert not missing, f"missing in .env.example: {sorted(missing)}"
