"""The daily printable-certificate notice task (beat: every day at 09:00 Asia/Shanghai, services/credits/worker.py)."""

from __future__ import annotations

from typing import Any

from celery import Celery

from services.common.tasks import register_daily_task

from ..db import db
from .services import send_printable_notices

TASK = "credits.send_printable_notices"


def register(celery: Celery) -> Any:
    """Idempotent: every award is claimed once, so a redelivery or a second beat sends nothing twice."""
    return register_daily_task(celery, TASK, db, send_printable_notices, "printable notice run")
