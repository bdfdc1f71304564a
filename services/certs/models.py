"""Every model of the certs service."""

from .audit import *  # noqa: F401,F403
from .awards.models import *  # noqa: F401,F403
from .certificates.models import *  # noqa: F401,F403
from .db import Base  # noqa: F401
