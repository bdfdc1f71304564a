from alembic import context

from services.common.db import run_migrations_online
from services.credits import models  # noqa: F401 - registers every table on the metadata

run_migrations_online(context, context.config)
