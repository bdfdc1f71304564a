from __future__ import annotations

from pathlib import Path

from services.common.db import ServiceDB, make_base
from services.common.events import outbox_tables

SERVICE = "checkin"
Base = make_base()
outbox, processed_events = outbox_tables(Base.metadata)
db = ServiceDB(SERVICE, Base.metadata, Path(__file__).parent / "migrations")
