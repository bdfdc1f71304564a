"""App factory of the projects service."""

from __future__ import annotations

import importlib
from typing import Any

from flask import Blueprint, Flask, redirect

from services.common.auth import access, current
from services.common.web import create_service_app

from . import models  # noqa: F401 - the whole schema is known before the first request
from .catalogue.tasks import QUEUE as JOBS_QUEUE
from .db import SERVICE, db
from .uploads import file_size

# One package per feature (Indico style); each views module exposes `pages` and/or `api`.
FEATURES = ("institutions", "auth", "catalogue", "filings", "reviews", "reports", "dashboard")

home = Blueprint("projects_home", __name__)

@home.get("/projects/")
@access("public")
def index() -> Any:
    p = current()
    if p is None:
        return redirect("/projects/login")
    if p.role == "reviewer":
        return redirect("/projects/review")  # the committee's 首页 (dashboard)
    if p.role == "institution":
        return redirect("/projects/filings")
    return redirect("/credits/")

def create_app(config: dict[str, Any] | None = None) -> Flask:
    pages: list[Any] = [home]
    apis: list[Any] = []
    for name in FEATURES:
        module = importlib.import_module(f"services.projects.{name}.views")
        if getattr(module, "pages", None) is not None:
            pages.append(module.pages)
        if getattr(module, "api", None) is not None:
            apis.append(module.api)
    # the catalogue's jobs have a queue (and a worker) of their own: its length is watched beside the events'
    app = create_service_app(SERVICE, db, pages, apis, config, queues=(SERVICE, JOBS_QUEUE))
    app.jinja_env.filters["file_size"] = file_size
    return app
