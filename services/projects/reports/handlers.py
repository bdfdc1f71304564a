"""Event handlers of this feature: "credits.name_corrected" puts a trainee's corrected name on the award lists
kept here and on every report's 考勤导入, an approved report's included (its page 4 names the trainees the
committee approved; a misspelt name there is the one thing about it that was never true)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..audit.models import record
from ..awarded.models import AwardedTrainee
from . import states
from .models import ReportTrainee

log = logging.getLogger(__name__)


def on_name_corrected(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    key, name = payload["trainee_key"], payload["name"]
    session.execute(update(AwardedTrainee).where(AwardedTrainee.trainee_key == key, AwardedTrainee.name != name)
                    .values(name=name).execution_options(synchronize_session=False))
    renamed = session.execute(select(ReportTrainee.report_id, ReportTrainee.name)
                              .where(ReportTrainee.trainee_key == key, ReportTrainee.name != name)).all()
    if renamed:
        session.execute(update(ReportTrainee).where(ReportTrainee.trainee_key == key, ReportTrainee.name != name)
                        .values(name=name).execution_options(synchronize_session=False))
    for report_id, old in renamed:  # the report's 办理记录 says why page 4 changed after 导入
        record(session, None, states.OBJECT, report_id, "name_corrected", None, None,
               f"委员会更正学员姓名：{old} → {name}")
    log.info("credits.name_corrected %s: %s report(s) renamed", envelope.get("id"), len(renamed))


HANDLERS: dict[str, Callable[[Session, dict[str, Any], dict[str, Any]], None]] = {
    "credits.name_corrected": on_name_corrected,
}
