"""App factory of the certs service: 电子学分证书 (export, download, verification, committee look-up)."""

from __future__ import annotations

from typing import Any

from flask import Flask

from services.common.web import create_service_app

from . import models  # noqa: F401
from .certificates import views
from .certificates.tasks import RENDER_QUEUE
from .db import SERVICE, db


def create_app(config: dict[str, Any] | None = None) -> Flask:
    return create_service_app(SERVICE, db, [views.trainee_pages, views.pages], [views.api], config,
                              queues=(SERVICE, RENDER_QUEUE))
