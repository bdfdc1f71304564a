"""Every model of the checkin service."""

from .activities.models import *  # noqa: F401,F403
from .db import Base  # noqa: F401
