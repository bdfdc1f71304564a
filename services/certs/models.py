"""Every model of the certs service."""

from .awards.models import *  # noqa: F401,F403
from .db import Base  # noqa: F401
