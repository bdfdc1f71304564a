"""App factory of the checkin service."""

from __future__ import annotations

from typing import Any

from flask import Flask

from services.common.web import create_service_app

from . import models  # noqa: F401
from .activities import views
from .db import SERVICE, db
from .phone import views as phone_views
from .projector import views as projector_views
from .windows import views as windows_views


def create_app(config: dict[str, Any] | None = None) -> Flask:
    pages, apis = [views.pages, phone_views.pages], [views.api, phone_views.api]
    pages += [windows_views.pages, projector_views.pages]  # 二维码考勤: 刷卡周期, 代签, 签到名单, 投影页
    apis += [windows_views.api, projector_views.api]
    return create_service_app(SERVICE, db, pages, apis, config)
