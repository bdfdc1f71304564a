"""Every model of the certs service (certificates arrive with the certificate issue)."""

from .db import Base  # noqa: F401
