"""Celery worker of the projects service (queue "projects"): celery -A services.projects.worker worker -Q projects"""

from services.common.tasks import make_celery

from . import models  # noqa: F401
from .db import SERVICE

celery = make_celery(SERVICE)
