"""Deadline reminders by SMS to every 机构负责人 of the institution concerned:

- 执行情况反馈 (due 14 days after the offering ends, reports.services.due_reports): 3 days before the due
  date and on the due date, while the report is not submitted (none, draft or returned);
- 项目举办前登记 (a draft or returned filing; deadline = the offering's start − 7 days, the last day on which
  保存并上报 is accepted): 3 days before the deadline and on the deadline day.

"3 days before" is a window (3, 2 or 1 day left): a day the beat missed, or a filing dated late, is caught up
the next run, still once. Each message is claimed by a ReminderSent row (unique per object, stage, deadline and
person) committed before the SMS leaves; a failed SMS removes its row again, so the next run retries it
(DESIGN: messages after commit). A crash between the commit and the send loses that one message rather than
ever sending it twice. Mobiles and message texts are never logged.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common import pii, sms
from services.common.db import savepoint
from services.common.formats import zh_date
from services.common.logs import brief

from ..catalogue.models import Project
from ..filings import states as filing_states
from ..filings.models import Filing, Offering, seq_label
from ..filings.services import MIN_DAYS_BEFORE
from ..institutions.models import Institution, InstitutionAdmin
from ..reports.services import due_reports
from .models import ReminderSent

log = logging.getLogger(__name__)

BEFORE_DAYS = 3
SIGN = sms.SIGN


@dataclass(frozen=True)
class Due:
    """One thing with a deadline that someone has to act on."""

    kind: str  # report | filing
    object_id: int  # report: offering id; filing: filing id
    institution_id: int
    project_title: str
    seq_label: str
    due_on: dt.date


def stage_for(due_on: dt.date, today: dt.date) -> str | None:
    left = (due_on - today).days
    if left == 0:
        return "due"
    if 1 <= left <= BEFORE_DAYS:
        return "before"
    return None


def message(due: Due, stage: str) -> tuple[str, tuple[str, ...]]:
    """(the full text, the template parameters of a provider that sends by template)."""
    what = f"您单位“{due.project_title}”{due.seq_label}"
    date = zh_date(due.due_on)
    if due.kind == "report":
        subject, verb = "执行情况反馈", "提交"
    else:
        subject, verb = "项目举办前登记", "上报"
    rule = "" if due.kind == "report" else f"（须在举办前{MIN_DAYS_BEFORE}天完成）"
    if stage == "due":
        text = f"{SIGN}{what}的{subject}今天（{date}）截止{verb}{rule}，请尽快登录系统填报。"
    else:
        text = f"{SIGN}{what}的{subject}应于{date}（含当日）前{verb}{rule}，请及时登录系统填报。"
    return text, (due.project_title, due.seq_label, date)


# ---------------------------------------------------------------- what is due


def report_dues(session: Session, today: dt.date) -> list[Due]:
    """Offerings whose execution report is not submitted and whose due date is 0..3 days away."""
    out = []
    for d in due_reports(session, today):
        if d["due_on"] is not None and stage_for(d["due_on"], today):
            out.append(Due("report", d["offering_id"], d["institution_id"], d["project_title"], d["seq_label"],
                           d["due_on"]))
    return out


def filing_dues(session: Session, today: dt.date) -> list[Due]:
    """Draft or returned filings whose deadline (start − 7 days) is 0..3 days away."""
    first = today + dt.timedelta(days=MIN_DAYS_BEFORE)
    stmt = (select(Filing, Offering, Project).join(Offering, Filing.offering_id == Offering.id)
            .join(Project, Offering.project_id == Project.id)
            .where(Filing.state.in_(filing_states.EDITABLE), Filing.starts_on.is_not(None),
                   Filing.starts_on.between(first, first + dt.timedelta(days=BEFORE_DAYS)))
            .order_by(Filing.starts_on, Filing.id))
    out = []
    for filing, offering, project in session.execute(stmt).all():
        assert filing.starts_on is not None
        out.append(Due("filing", filing.id, filing.institution_id, project.title, seq_label(offering.seq),
                       filing.starts_on - dt.timedelta(days=MIN_DAYS_BEFORE)))
    return out


# ---------------------------------------------------------------- sending


def _claim(session: Session, due: Due, stage: str, admin_id: int) -> ReminderSent | None:
    """Insert and commit the row that says this message is sent; None when it already was (or another beat
    process is sending it right now: the unique key waits for its commit and then refuses)."""
    key = (ReminderSent.kind == due.kind, ReminderSent.object_id == due.object_id, ReminderSent.stage == stage,
           ReminderSent.due_on == due.due_on, ReminderSent.admin_id == admin_id)
    if session.scalar(select(ReminderSent.id).where(*key)) is not None:
        return None
    row = ReminderSent(kind=due.kind, object_id=due.object_id, stage=stage, due_on=due.due_on, admin_id=admin_id,
                       institution_id=due.institution_id)
    try:
        with savepoint(session):
            session.add(row)
    except IntegrityError:
        session.commit()
        return None
    session.commit()
    return row


def _recipients(session: Session, institution_id: int) -> tuple[str | None, list[tuple[int, str]]]:
    """(why nobody is reminded, [(admin id, encrypted mobile)])."""
    inst = session.get(Institution, institution_id)
    if inst is None or not inst.active:
        return f"institution {institution_id} is inactive", []
    admins = session.execute(select(InstitutionAdmin.id, InstitutionAdmin.mobile_enc)
                             .where(InstitutionAdmin.institution_id == institution_id)
                             .order_by(InstitutionAdmin.id)).all()
    if not admins:
        return f"institution {institution_id} has no responsible person (机构负责人)", []
    return None, [(a.id, a.mobile_enc) for a in admins]


def send_due_reminders(session: Session, today: dt.date) -> dict[str, Any]:
    """Send every reminder due `today` that was not sent yet. Commits itself, once per message (the claim),
    so the caller hands in a session with nothing pending. Returns counts for the log and the task result."""
    summary = {"date": today.isoformat(), "due": 0, "sent": 0, "already_sent": 0, "failed": 0, "skipped": 0}
    dues = report_dues(session, today) + filing_dues(session, today)
    session.commit()  # end the reading transaction: each claim below is its own
    for due in dues:
        stage = stage_for(due.due_on, today)
        assert stage is not None
        summary["due"] += 1
        why, admins = _recipients(session, due.institution_id)
        if why:
            summary["skipped"] += 1
            log.warning("reminder %s %s (%s) skipped: %s", due.kind, due.object_id, stage, why)
            continue
        text, params = message(due, stage)
        for admin_id, mobile_enc in admins:
            row = _claim(session, due, stage, admin_id)
            if row is None:
                summary["already_sent"] += 1
                continue
            try:
                sms.send_sms(pii.decrypt(mobile_enc), text, params, template="reminder")
            except Exception as exc:  # noqa: BLE001 - any provider failure: give the claim back, retry next run
                log.warning("reminder %s %s (%s) to admin %s failed, will retry next run: %s", due.kind,
                            due.object_id, stage, admin_id, brief(exc))
                session.delete(row)
                session.commit()
                summary["failed"] += 1
                continue
            log.info("reminder %s %s (%s, due %s) sent to admin %s of institution %s", due.kind, due.object_id,
                     stage, due.due_on, admin_id, due.institution_id)
            summary["sent"] += 1
    log.info("reminders of %s: %s", today, summary)
    return summary
