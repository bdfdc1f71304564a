"""Celery worker of the certs service (queue "certs"): consumes credits.effective."""

from services.common.tasks import make_celery, register_event_consumer

from . import models  # noqa: F401
from .awards.handlers import HANDLERS
from .db import SERVICE, db, processed_events

celery = make_celery(SERVICE)
handle_event = register_event_consumer(celery, SERVICE, db, processed_events, HANDLERS)
