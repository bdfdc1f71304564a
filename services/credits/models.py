"""Every model of the credits service."""

from .accounts.models import SmsCode, TraineeAccount  # noqa: F401
from .attendance.models import *  # noqa: F401,F403
from .audit import AuditLog  # noqa: F401
from .awards.models import *  # noqa: F401,F403
from .db import Base  # noqa: F401
from .offerings.models import *  # noqa: F401,F403
from .statistics.models import *  # noqa: F401,F403
