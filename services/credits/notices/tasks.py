"""The daily printable-certificate notice task (beat: every day at 09:00 Asia/Shanghai, services/credits/worker.py)."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from services.common import clock

from ..db import db
from .services import send_printable_notices

log = logging.getLogger(__name__)

TASK = "credits.send_printable_notices"


def register(celery: Celery) -> Any:
    @celery.task(name=TASK, acks_late=True, ignore_result=True)
    def send_notices() -> dict[str, Any]:
        """Idempotent: every award is claimed once, so a redelivery or a second beat sends nothing twice."""
        session = db.new_session()
        try:
            return send_printable_notices(session, clock.today_local())
        except Exception:
            session.rollback()
            log.exception("printable notice run failed")
            raise
        finally:
            session.close()

    return send_notices
