"""Celery worker of the certs service.

Queue "certs": the events credits.effective and credits.withdrawn (services.common.events.CATALOGUE).
Queue "certs-render": PDF rendering of export jobs (certs.render_export), started as its own worker:
    celery -A services.certs.worker worker -Q certs-render -n certs-render@%h --concurrency 1
A render child is recycled after CME_CERTS_RENDER_MAX_TASKS tasks (20) or CME_CERTS_RENDER_MAX_MEMORY_KB (500000)
of resident memory, so WeasyPrint's caches never grow without bound. A job of more than one chunk
(CME_CERTS_RENDER_CHUNK certificates, 25) renders its chunks side by side in CME_CERTS_RENDER_PROCESSES (2) processes
forked from the child for that job (services/certs/certificates/render.py), so one render worker uses both cores.
"""

from services.common.config import env
from services.common.tasks import make_celery, register_event_consumer

from . import models  # noqa: F401
from .awards.handlers import HANDLERS
from .certificates.tasks import RENDER_QUEUE, RENDER_TIME_LIMIT, TASK_NAME, run_render
from .db import SERVICE, db, processed_events

celery = make_celery(SERVICE)
celery.conf.update(
    task_routes={TASK_NAME: {"queue": RENDER_QUEUE}},
    worker_max_tasks_per_child=int(env("CME_CERTS_RENDER_MAX_TASKS", "20") or 20),
    worker_max_memory_per_child=int(env("CME_CERTS_RENDER_MAX_MEMORY_KB", "500000") or 500000),
)
handle_event = register_event_consumer(celery, SERVICE, db, processed_events, HANDLERS)
# its queue comes from task_routes above (a task's own `queue` attribute is deprecated, gone in Celery 6)
render_export = celery.task(name=TASK_NAME, acks_late=True, soft_time_limit=RENDER_TIME_LIMIT - 300,
                            time_limit=RENDER_TIME_LIMIT)(run_render)
