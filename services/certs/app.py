"""App factory of the certs service (health and OpenAPI for now; certificates come with their issue)."""

from __future__ import annotations

from typing import Any

from flask import Flask

from services.common.web import create_service_app

from . import models  # noqa: F401
from .db import SERVICE, db


def create_app(config: dict[str, Any] | None = None) -> Flask:
    return create_service_app(SERVICE, db, [], [], config)
