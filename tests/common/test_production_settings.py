"""CME_ENV=production refuses to start on what .env.example ships, on the development keys published in the
source, on a PII key Fernet cannot use and on SMS codes written to a file; it starts on real values."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from services.common import config

GOOD = {"CME_SECRET_KEY": "k" * 48, "CME_PII_KEYS": Fernet.generate_key().decode(),
        "CME_HASH_KEYS": "h" * 40, "CME_SMS_PROVIDER": "tencent"}


@pytest.fixture
def production(monkeypatch, tmp_path):
    monkeypatch.setenv("CME_ENV", "production")
    monkeypatch.setenv("CME_ENV_FILE", str(tmp_path / "none.env"))
    for name, value in GOOD.items():
        monkeypatch.setenv(name, value)
    config.get_settings.cache_clear()
    yield monkeypatch
    config.get_settings.cache_clear()


def _refused(monkeypatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config.get_settings.cache_clear()
    with pytest.raises(RuntimeError) as info:
        config.get_settings()
    return str(info.value)


def test_production_starts_with_real_secrets(production):
    settings = config.get_settings()
    assert settings.env == "production" and settings.hash_keys == (GOOD["CME_HASH_KEYS"],)


@pytest.mark.parametrize("name, value, says", [
    ("CME_SECRET_KEY", "change-me", "CME_SECRET_KEY"),
    ("CME_SECRET_KEY", "short-but-random", "CME_SECRET_KEY"),
    ("CME_SECRET_KEY", "", "CME_SECRET_KEY"),
    ("CME_PII_KEYS", "change-me", "CME_PII_KEYS"),
    ("CME_PII_KEYS", config.DEV_PII_KEY, "CME_PII_KEYS"),
    ("CME_PII_KEYS", "not-a-fernet-key-at-all", "is not a Fernet key"),
    ("CME_HASH_KEYS", "", "CME_HASH_KEYS"),
    ("CME_HASH_KEYS", "change-me", "CME_HASH_KEYS"),
    ("CME_HASH_KEYS", config.DEV_HASH_KEY, "CME_HASH_KEYS"),
    ("CME_SMS_PROVIDER", "log", "CME_SMS_PROVIDER=log"),
])
def test_production_refuses_placeholders_and_development_values(production, name, value, says):
    message = _refused(production, **{name: value})
    assert says in message and message.count(";") == 0  # only what is wrong is named


def test_env_example_as_shipped_names_every_secret_to_set(production):
    """cp .env.example .env and start: every secret left at its placeholder is named in one message."""
    import os

    saved = dict(os.environ)  # the env file is loaded into os.environ (setdefault): put it all back
    try:
        for name in GOOD:
            os.environ.pop(name, None)
        os.environ["CME_ENV_FILE"] = str(config.ROOT / ".env.example")
        config.get_settings.cache_clear()
        with pytest.raises(RuntimeError) as info:
            config.get_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert all(n in str(info.value) for n in ("CME_SECRET_KEY", "CME_PII_KEYS", "CME_HASH_KEYS"))


def test_development_and_tests_keep_their_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("CME_ENV", "development")
    monkeypatch.setenv("CME_ENV_FILE", str(tmp_path / "none.env"))
    for name in GOOD:
        monkeypatch.delenv(name, raising=False)
    config.get_settings.cache_clear()
    try:
        settings = config.get_settings()
        assert settings.pii_keys == (config.DEV_PII_KEY,) and settings.hash_keys == (config.DEV_HASH_KEY,)
    finally:
        config.get_settings.cache_clear()
