"""Each service's Alembic migrations build exactly the schema its models describe, on PostgreSQL."""

import importlib
import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.common.config import get_settings

SERVICES = ["projects", "checkin", "credits", "certs"]
# functions the code calls, made by migrations (metadata comparison does not see them)
FUNCTIONS = {"checkin": {"checkin_record_scan", "checkin_iso"}}


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_models(service, monkeypatch):
    importlib.import_module(f"services.{service}.models")
    sdb = importlib.import_module(f"services.{service}.db").db
    base = make_url(get_settings().service_database_url(service))
    name = f"{base.database}_mig"
    url = base.set(database=name).render_as_string(hide_password=False)
    monkeypatch.setenv(f"CME_{service.upper()}_DATABASE_URL", url)
    get_settings.cache_clear()
    sdb.reset()
    try:
        sdb.upgrade()
        with sdb.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), sdb.metadata)
        assert diff == [], f"models and migrations of {service} differ: {diff}"
        with sdb.engine.connect() as conn:
            made = set(conn.execute(text("SELECT proname FROM pg_proc JOIN pg_namespace n ON n.oid = pronamespace "
                                         "WHERE nspname = 'public'")).scalars())
        assert made == FUNCTIONS.get(service, set())
    finally:
        sdb.reset()
        monkeypatch.delenv(f"CME_{service.upper()}_DATABASE_URL")
        get_settings.cache_clear()
        admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        assert os.environ.get(f"CME_{service.upper()}_DATABASE_URL") is None
