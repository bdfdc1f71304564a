"""The daily reminder task (beat: every day at 08:00 Asia/Shanghai, see services/projects/worker.py)."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from services.common import clock

from ..db import db
from .services import send_due_reminders

log = logging.getLogger(__name__)

TASK = "projects.send_reminders"


def register(celery: Celery) -> Any:
    @celery.task(name=TASK, acks_late=True, ignore_result=True)
    def send_reminders() -> dict[str, Any]:
        """Idempotent: every message is claimed once (ReminderSent), so a redelivery or a second beat sends
        nothing twice; an SMS that failed is retried by the next run."""
        session = db.new_session()
        try:
            return send_due_reminders(session, clock.today_local())
        except Exception:
            session.rollback()
            log.exception("reminder run failed")
            raise
        finally:
            session.close()

    return send_reminders
