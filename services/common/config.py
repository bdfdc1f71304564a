"""Settings read from the environment (and an optional env file), one place for all services."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("projects", "checkin", "credits", "certs")


def _load_env_file(path: Path) -> None:
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        os.environ.setdefault(key.strip(), value.strip().strip('"').strip("'"))


@dataclass(frozen=True)
class Settings:
    secret_key: str
    var_dir: Path
    database_url: str | None
    redis_url: str
    # Comma-separated key set; the first key encrypts/hashes, all keys decrypt (rotation).
    pii_keys: tuple[str, ...]
    hash_keys: tuple[str, ...]
    sms_provider: str
    sms_log_path: Path
    public_base_url: str
    clock_offset_seconds: int
    clock_file: Path | None
    env: str
    extra: dict[str, str] = field(default_factory=dict)

    def service_database_url(self, service: str) -> str:
        """Each service owns its own database: <db>_<service> on PostgreSQL, var/<service>.db on SQLite."""
        own = os.environ.get(f"CME_{service.upper()}_DATABASE_URL")
        if own:
            return normalise_db_url(own)
        if self.database_url:
            url = normalise_db_url(self.database_url)
            if url.startswith("sqlite"):
                base = url.removesuffix(".db")
                return f"{base}_{service}.db"
            head, _, dbname = url.rpartition("/")
            dbname, _, query = dbname.partition("?")
            return f"{head}/{dbname or 'cme'}_{service}" + (f"?{query}" if query else "")
        self.var_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.var_dir / (service + '.db')}"


def normalise_db_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _split(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


DEV_PII_KEY = "ZGV2LW9ubHktcGlpLWtleS0wMDAwMDAwMDAwMDAwMDA="
DEV_HASH_KEY = "dev-only-hash-key"


def _placeholder(value: str) -> bool:
    return "change-me" in value.lower() or value.startswith("dev-only") or value == DEV_PII_KEY


def production_problems(secret: str, pii: tuple[str, ...], hash_keys: tuple[str, ...], sms_provider: str) -> list[str]:
    """What keeps a production start unsafe: secrets missing, left at .env.example's placeholders or at the
    development values published in this source (anyone could sign a login or look up a mobile), a PII key Fernet
    cannot use (found only at the first check-in otherwise), or SMS codes written to a file nobody reads."""
    from cryptography.fernet import Fernet

    problems = []
    if not secret or _placeholder(secret) or len(secret) < 32:
        problems.append("CME_SECRET_KEY must be set to a random value of at least 32 characters")
    if not pii or any(_placeholder(k) for k in pii):
        problems.append("CME_PII_KEYS must be set to generated Fernet keys")
    else:
        for n, key in enumerate(pii, 1):
            try:
                Fernet(key.encode())
            except (ValueError, TypeError):
                problems.append(f"CME_PII_KEYS key {n} is not a Fernet key (32 url-safe base64-encoded bytes)")
    if not hash_keys or any(_placeholder(k) for k in hash_keys) or len(hash_keys[0]) < 32:
        problems.append("CME_HASH_KEYS must be set to a random value of at least 32 characters")
    if sms_provider == "log":
        problems.append("CME_SMS_PROVIDER=log writes login codes to a file: set tencent and its CME_TENCENT_* settings")
    return problems


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    _load_env_file(Path(os.environ.get("CME_ENV_FILE", ROOT / ".env")))
    var_dir = Path(os.environ.get("CME_VAR_DIR", ROOT / "var"))
    env = os.environ.get("CME_ENV", "development")
    secret = os.environ.get("CME_SECRET_KEY", "")
    pii = _split(os.environ.get("CME_PII_KEYS", ""))
    hash_keys = _split(os.environ.get("CME_HASH_KEYS", ""))
    sms_provider = os.environ.get("CME_SMS_PROVIDER", "log")
    if env == "production":
        problems = production_problems(secret, pii, hash_keys, sms_provider)
        if problems:
            raise RuntimeError("CME_ENV=production refuses to start: " + "; ".join(problems))
    secret = secret or "dev-only-secret-change-me"
    # A fixed Fernet key and hash key for local trial runs and tests only.
    pii = pii or (DEV_PII_KEY,)
    hash_keys = hash_keys or (DEV_HASH_KEY,)
    clock_file = os.environ.get("CME_CLOCK_FILE")
    return Settings(
        secret_key=secret,
        var_dir=var_dir,
        database_url=os.environ.get("DATABASE_URL") or None,
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        pii_keys=pii,
        hash_keys=hash_keys,
        sms_provider=sms_provider,
        sms_log_path=Path(os.environ.get("CME_SMS_LOG", var_dir / "sms.log")),
        public_base_url=os.environ.get("CME_PUBLIC_BASE_URL", "http://127.0.0.1:8080"),
        clock_offset_seconds=int(os.environ.get("CME_CLOCK_OFFSET_SECONDS", "0") or 0),
        clock_file=Path(clock_file) if clock_file else None,
        env=env,
    )


def env(name: str, default: str = "") -> str:
    """A service-specific setting not worth a field of its own."""
    return os.environ.get(name, default)


DEFAULT_MAX_BODY = "12m"


def max_body_bytes() -> int | None:
    """The largest request the gateway lets through (CME_GATEWAY_MAX_BODY, nginx's size: 12m, 800k, 0 for no
    cap). The services refuse the same and the pages name it, so one setting moves all three together."""
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]?)\s*", env("CME_GATEWAY_MAX_BODY", DEFAULT_MAX_BODY))
    if m is None:  # nginx would not start on it either; the services keep the default
        m = re.fullmatch(r"(\d+)([m])", DEFAULT_MAX_BODY)
        assert m is not None
    size = int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]
    return size or None


def redis_client() -> redis.Redis:
    """The suite's Redis (REDIS_URL) with short timeouts: a Redis that is gone fails a caller in two seconds. One
    client (and connection pool) per process and URL, shared: callers must not close it."""
    return redis_client_for(get_settings().redis_url)


@lru_cache(maxsize=8)
def redis_client_for(url: str, timeout: float = 2) -> redis.Redis:
    """One shared client per URL and timeout (a caller on every request wants a shorter one)."""
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
