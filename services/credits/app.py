"""App factory of the credits service."""

from __future__ import annotations

from typing import Any

from flask import Flask

from services.common.web import create_service_app

from . import models  # noqa: F401
from .accounts import views as account_views
from .attendance import views as attendance_views
from .db import SERVICE, db
from .offerings import views


def create_app(config: dict[str, Any] | None = None) -> Flask:
    return create_service_app(SERVICE, db, [views.pages, account_views.pages],
                              [views.api, attendance_views.api, account_views.api], config)
