"""A private, throw-away PostgreSQL cluster for the fault tests (tests/stack/test_faults.py).

The system PostgreSQL (127.0.0.1:5432) is shared with other test runs, so a test that restarts its
database must not touch it. This starts the distribution's PostgreSQL binaries on a free port with a
data directory of its own (trust authentication, no fsync: nothing here has to survive a power cut).
PostgreSQL refuses to run as root: as root, initdb and pg_ctl run as the `postgres` user (runuser),
which owns the data directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

PG_BIN_DIRS = [Path("/usr/lib/postgresql/15/bin"), *sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]
RUN_AS = "postgres"


def find_bin_dir() -> Path | None:
    """The first PostgreSQL binary directory with initdb, pg_ctl and postgres; None when there is none."""
    for d in PG_BIN_DIRS:
        if all((d / b).exists() for b in ("initdb", "pg_ctl", "postgres")):
            return d
    return None


def missing_reason() -> str | None:
    """Why a private cluster cannot be started here (None: it can)."""
    if find_bin_dir() is None:
        return f"no PostgreSQL server binaries (initdb, pg_ctl, postgres) in {', '.join(map(str, PG_BIN_DIRS[:1]))}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            return f"running as root and there is no `{RUN_AS}` user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and `runuser` is missing"
    return None


class PgCluster:
    """initdb + pg_ctl on a port; start(), stop(), restart(), destroy(). url() is a trust-auth URL."""

    def __init__(self, port: int, bin_dir: Path | None = None):
        self.port = port
        self.bin_dir = bin_dir or find_bin_dir()
        assert self.bin_dir is not None, missing_reason()
        self.root = Path(tempfile.mkdtemp(prefix="cmet-pg-"))
        self.data = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self.user = "postgres"
        self._as_root = os.geteuid() == 0
        if self._as_root:
            pw = pwd.getpwnam(RUN_AS)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.root.chmod(0o700)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bin_dir / argv[0]), *argv[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", RUN_AS, "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if result.returncode != 0:
            log = self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""
            raise RuntimeError(f"{' '.join(argv[:2])} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                               f"{log}")
        return result

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8", "--no-locale",
                  "--no-sync")
        conf = self.data / "postgresql.conf"
        with conf.open("a", encoding="utf-8") as f:
            f.write("\n".join([
                "",
                f"port = {self.port}",
                "listen_addresses = '127.0.0.1'",
                f"unix_socket_directories = '{self.root}'",
                "max_connections = 300",
                "fsync = off",
                "synchronous_commit = off",
                "full_page_writes = off",
                "shared_buffers = 64MB",
                "",
            ]))

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-m", mode, "-w", "-t", "60", "restart")

    def running(self) -> bool:
        cmd = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "status"]
        if self._as_root:
            cmd = ["runuser", "-u", RUN_AS, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0

    def destroy(self) -> None:
        """Stop the cluster (immediately) if it runs, and remove its directory."""
        try:
            if self.data.exists() and self.running():
                self.stop(mode="immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
