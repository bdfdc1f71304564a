"""Celery worker of the credits service (queue "credits"): consumes the events in services.common.events.CATALOGUE."""

from services.common.tasks import make_celery, register_event_consumer

from . import models  # noqa: F401
from .attendance.handlers import HANDLERS as ATTENDANCE_HANDLERS
from .awards.handlers import HANDLERS as AWARD_HANDLERS
from .db import SERVICE, db, processed_events
from .offerings.handlers import HANDLERS as OFFERING_HANDLERS

HANDLERS = {**OFFERING_HANDLERS, **ATTENDANCE_HANDLERS, **AWARD_HANDLERS}
if len(HANDLERS) != len(OFFERING_HANDLERS) + len(ATTENDANCE_HANDLERS) + len(AWARD_HANDLERS):
    raise RuntimeError("two features of credits handle the same event")

celery = make_celery(SERVICE)
handle_event = register_event_consumer(celery, SERVICE, db, processed_events, HANDLERS)
