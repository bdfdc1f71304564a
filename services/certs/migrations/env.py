from alembic import context

from services.certs import models  # noqa: F401 - registers every table on the metadata
from services.common.db import run_migrations_online

run_migrations_online(context, context.config)
