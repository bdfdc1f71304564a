"""Celery worker of the credits service (queue "credits"): consumes the events in services.common.events.CATALOGUE
and sends the daily SMS about certificates that became printable (credits.send_printable_notices), which exactly
one beat process of credits schedules: celery -A services.credits.worker beat --schedule var/celerybeat-credits"""

from celery.schedules import crontab

from services.common.tasks import make_celery, register_event_consumer

from . import models  # noqa: F401
from .attendance.handlers import HANDLERS as ATTENDANCE_HANDLERS
from .awards.handlers import HANDLERS as AWARD_HANDLERS
from .db import SERVICE, db, processed_events
from .notices import tasks as notice_tasks
from .offerings.handlers import HANDLERS as OFFERING_HANDLERS
from .statistics.handlers import HANDLERS as STATISTICS_HANDLERS

HANDLERS = {**OFFERING_HANDLERS, **ATTENDANCE_HANDLERS, **AWARD_HANDLERS, **STATISTICS_HANDLERS}
if len(HANDLERS) != (len(OFFERING_HANDLERS) + len(ATTENDANCE_HANDLERS) + len(AWARD_HANDLERS)
                     + len(STATISTICS_HANDLERS)):
    raise RuntimeError("two features of credits handle the same event")

celery = make_celery(SERVICE)
handle_event = register_event_consumer(celery, SERVICE, db, processed_events, HANDLERS)
send_printable_notices = notice_tasks.register(celery)

# celery's timezone is Asia/Shanghai (make_celery): 09:00 Beijing time, after projects' 08:00 reminders
celery.conf.beat_schedule = {
    "credits-send-printable-notices-daily": {
        "task": notice_tasks.TASK,
        "schedule": crontab(hour=9, minute=0),
        "options": {"queue": SERVICE},  # a run delayed or delivered twice is harmless: each award is claimed once
    },
}
