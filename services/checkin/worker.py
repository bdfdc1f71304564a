"""Celery worker of the checkin service (queue "checkin"): consumes the events in services.common.events.CATALOGUE."""

from services.common.tasks import make_celery, register_event_consumer

from . import models  # noqa: F401
from .activities.handlers import HANDLERS
from .db import SERVICE, db, processed_events

celery = make_celery(SERVICE)
handle_event = register_event_consumer(celery, SERVICE, db, processed_events, HANDLERS)
