"""Celery worker of the checkin service (queue "checkin"): consumes the events in services.common.events.CATALOGUE
(offering.approved makes a 继教活动, offering.cancelled closes it; credits.name_corrected renames a trainee's
record)."""

from services.common.tasks import make_celery, register_event_consumer

from . import models  # noqa: F401
from .activities import handlers as activities
from .db import SERVICE, db, processed_events
from .trainees import handlers as trainees

HANDLERS = {**activities.HANDLERS, **trainees.HANDLERS}
celery = make_celery(SERVICE)
handle_event = register_event_consumer(celery, SERVICE, db, processed_events, HANDLERS)
