"""Celery worker of the credits service (queue "credits"): consumes the events in services.common.events.CATALOGUE."""

from services.common.tasks import make_celery, register_event_consumer

from . import models  # noqa: F401
from .db import SERVICE, db, processed_events
from .offerings.handlers import HANDLERS

celery = make_celery(SERVICE)
handle_event = register_event_consumer(celery, SERVICE, db, processed_events, HANDLERS)
