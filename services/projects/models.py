"""Every model of the projects service, imported so Alembic and the app see the whole schema."""

from .audit.models import AuditLog  # noqa: F401
from .auth.models import *  # noqa: F401,F403
from .awarded.models import *  # noqa: F401,F403
from .catalogue.models import *  # noqa: F401,F403
from .db import Base  # noqa: F401
from .filings.models import *  # noqa: F401,F403
from .institutions.models import Institution, InstitutionAdmin, Reviewer  # noqa: F401
from .reminders.models import ReminderSent  # noqa: F401
from .reports.models import *  # noqa: F401,F403
