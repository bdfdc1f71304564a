"""App factory of the credits service."""

from __future__ import annotations

from typing import Any

from flask import Flask

from services.common.formats import fmt_credits
from services.common.web import create_service_app

from . import models  # noqa: F401
from .accounts import desk as account_desk
from .accounts import views as account_views
from .attendance import views as attendance_views
from .awards import views as award_views
from .compliance import views as compliance_views
from .db import SERVICE, db
from .offerings import views
from .statistics import views as statistics_views


def create_app(config: dict[str, Any] | None = None) -> Flask:
    pages = [views.pages, account_views.pages, account_desk.pages, award_views.pages, compliance_views.pages,
             statistics_views.pages]
    app = create_service_app(SERVICE, db, pages,
                             [views.api, attendance_views.api, award_views.api, account_views.api,
                              compliance_views.api], config)
    # credits as every page says them: 0.5, never "0.50" (the award pages printed the stored Numeric)
    app.jinja_env.globals["credits"] = fmt_credits
    return app
