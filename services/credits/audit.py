"""Credits' audit trail (services.common.audit): withdrawals, 筛选授分人员 exclusions, manual entries, grants."""

from __future__ import annotations

from services.common.audit import AuditMixin

from .db import Base

__all__ = ["AuditLog"]


class AuditLog(AuditMixin, Base):
    pass
