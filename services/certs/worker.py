"""Celery worker of the certs service (queue "certs")."""

from services.common.tasks import make_celery

from . import models  # noqa: F401
from .db import SERVICE

celery = make_celery(SERVICE)
