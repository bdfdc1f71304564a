"""Certs' audit trail (services.common.audit): exports, downloads, full-ID views, revocations."""

from __future__ import annotations

from services.common.audit import AuditMixin

from .db import Base

__all__ = ["AuditLog"]


class AuditLog(AuditMixin, Base):
    pass
