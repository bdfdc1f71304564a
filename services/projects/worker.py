"""Celery worker of the projects service (queue "projects"): celery -A services.projects.worker worker -Q projects
It consumes credits.granted (the award lists the execution report imports)."""

from services.common.tasks import make_celery, register_event_consumer

from . import models  # noqa: F401
from .awarded.handlers import HANDLERS
from .db import SERVICE, db, processed_events

celery = make_celery(SERVICE)
handle_event = register_event_consumer(celery, SERVICE, db, processed_events, HANDLERS)
