"""Every model of the credits service."""

from .db import Base  # noqa: F401
from .offerings.models import *  # noqa: F401,F403
