"""Celery worker of the projects service.

Queue "projects" (celery -A services.projects.worker worker -Q projects): consumes credits.granted (the award lists
the execution report imports), credits.name_corrected and its own projects.decided (the committee's decisions, told
to the institution by SMS), and runs the daily deadline reminders (projects.send_reminders), which exactly one beat
process schedules: celery -A services.projects.worker beat --schedule var/celerybeat-schedule

Queue "projects-jobs": the committee's 项目目录 jobs (services/projects/catalogue/tasks.py), 导入
(projects.import_catalogue: one job per uploaded workbook, all rows or none) and 导出 Excel of a long list
(projects.export_catalogue), started as a worker of its own, one job at a time, so that a 20 s import never holds
up the events above; and, once a day from the beat, the clearing of those jobs' files past CME_CATALOGUE_FILES_DAYS
(projects.clear_catalogue_files):
    celery -A services.projects.worker worker -Q projects-jobs -n projects-jobs@%h --concurrency 1"""

from celery.schedules import crontab

from services.common.tasks import make_celery, register_event_consumer

from . import models  # noqa: F401
from .awarded import handlers as awarded
from .catalogue import tasks as catalogue_tasks
from .db import SERVICE, db, processed_events
from .reminders import handlers as decisions
from .reminders import tasks as reminder_tasks
from .reports import handlers as reports

HANDLERS = {**awarded.HANDLERS, **reports.HANDLERS, **decisions.HANDLERS}
celery = make_celery(SERVICE)
handle_event = register_event_consumer(celery, SERVICE, db, processed_events, HANDLERS)
send_reminders = reminder_tasks.register(celery)
import_catalogue, export_catalogue = catalogue_tasks.register(celery)
clear_catalogue_files = catalogue_tasks.register_sweep(celery)

# celery's timezone is Asia/Shanghai (make_celery), so this is 08:00 Beijing time
celery.conf.beat_schedule = {
    "projects-send-reminders-daily": {
        "task": reminder_tasks.TASK,
        "schedule": crontab(hour=8, minute=0),
        "options": {"queue": SERVICE},  # a run delayed or delivered twice is harmless: each message is claimed once
    },
    # 03:30 Beijing time, on the catalogue jobs' own worker: the files of jobs ended CME_CATALOGUE_FILES_DAYS ago
    "projects-clear-catalogue-files-daily": {
        "task": catalogue_tasks.SWEEP_TASK,
        "schedule": crontab(hour=3, minute=30),
        "options": {"queue": catalogue_tasks.QUEUE},  # run twice, it clears nothing more
    },
}
