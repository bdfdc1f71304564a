"""Every model of the checkin service."""

from .activities.models import *  # noqa: F401,F403
from .db import Base  # noqa: F401
from .scans.models import Checkin, RefusedScan  # noqa: F401
from .trainees.models import Trainee, WeChatBinding  # noqa: F401
from .windows.models import AuditLog, CheckinWindow  # noqa: F401
