"""The daily reminder task (beat: every day at 08:00 Asia/Shanghai, see services/projects/worker.py)."""

from __future__ import annotations

from typing import Any

from celery import Celery

from services.common.tasks import register_daily_task

from ..db import db
from .services import send_due_reminders

TASK = "projects.send_reminders"


def register(celery: Celery) -> Any:
    """Idempotent: every message is claimed once (ReminderSent), so a redelivery or a second beat sends nothing
    twice; an SMS that failed is retried by the next run."""
    return register_daily_task(celery, TASK, db, send_due_reminders, "reminder run")
