"""Event handlers of this feature: "credits.name_corrected" puts the name the committee corrected at 学员账号 on
the trainee's record here, so that 签到名单 and its Excel, a later scan's 已签到 and the name a 代签 is checked
against say what her awards and certificates say."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from .models import Trainee

log = logging.getLogger(__name__)


def on_name_corrected(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    renamed = session.execute(update(Trainee).where(Trainee.trainee_key == payload["trainee_key"],
                                                    Trainee.name != payload["name"])
                              .values(name=payload["name"]).execution_options(synchronize_session=False)).rowcount
    log.info("credits.name_corrected %s: %s trainee renamed", envelope.get("id"), renamed)


HANDLERS: dict[str, Callable[[Session, dict[str, Any], dict[str, Any]], None]] = {
    "credits.name_corrected": on_name_corrected,
}
