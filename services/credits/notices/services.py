"""Which awards became printable and who is told, once each.

An award's certificate is printable when the award is effective, comes from attendance (manual entries never get
one) and 4 weeks have passed since its offering ended (the rule of 达标情况查询 and of certs). The daily run sends
one SMS per trainee for all of their awards that became printable since the last run; it claims the awards
(credit_awards.printable_notice_at) and commits before the SMS leaves, and gives the claim back when the SMS
fails, so the next run retries: never twice, at worst one message lost to a crash between commit and send.
Mobiles and message texts are never logged.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.common import clock, pii, sms
from services.common.formats import zh_date
from services.common.logs import brief

from ..accounts.models import TraineeAccount
from ..awards.models import PRINTABLE_AFTER, CreditAward

log = logging.getLogger(__name__)

SIGN = sms.SIGN


def message(name: str, titles: list[str], since: dt.date) -> tuple[str, tuple[str, ...]]:
    """(the full text, the parameters of the "notice" template: [what, date])."""
    what = f"“{titles[0]}”" + (f"等{len(titles)}个项目" if len(titles) > 1 else "")
    text = (f"{SIGN}{name}，您参加的{what}的学分证书自{zh_date(since)}起可以打印，"
            "请登录系统在“达标情况查询”中导出学分证书。")
    return text, (what, zh_date(since))


def printable_on(award: CreditAward) -> dt.date:
    """The day its certificate became printable: 4 weeks after the offering ended, or the day the award became
    effective if that was later. Not the day of the run: a run that missed days, or a notice sent again after a
    failed SMS, would name a day after the certificate could already be printed."""
    effective = clock.to_local(award.effective_at)
    after = award.offering_ends_on + PRINTABLE_AFTER
    return max(after, effective.date()) if effective is not None else after


def printable_unnotified(session: Session, today: dt.date) -> dict[str, list[CreditAward]]:
    """Awards whose certificates are printable today and whose trainee was not told yet, by trainee."""
    rows = session.scalars(
        select(CreditAward)
        .where(CreditAward.state == "effective", CreditAward.method == "attendance",
               CreditAward.offering_ends_on <= today - PRINTABLE_AFTER, CreditAward.printable_notice_at.is_(None))
        .order_by(CreditAward.trainee_key, CreditAward.offering_ends_on, CreditAward.id)).all()
    by_trainee: dict[str, list[CreditAward]] = defaultdict(list)
    for row in rows:
        by_trainee[row.trainee_key].append(row)
    return by_trainee


def _mobile_enc(session: Session, trainee_key: str, awards: list[CreditAward]) -> str | None:
    """The account's mobile (what 忘记密码 uses), else the one typed at the latest check-in."""
    account_mobile = session.scalar(select(TraineeAccount.mobile_enc).where(TraineeAccount.trainee_key == trainee_key))
    return account_mobile or next((a.mobile_enc for a in reversed(awards) if a.mobile_enc), None)


def send_printable_notices(session: Session, today: dt.date) -> dict[str, Any]:
    """Tell every trainee whose certificates became printable by `today`. Commits itself (each claim is its own
    transaction), so the caller hands in a session with nothing pending. Returns counts for the log."""
    summary = {"date": today.isoformat(), "trainees": 0, "sent": 0, "already_sent": 0, "failed": 0, "no_mobile": 0}
    found = printable_unnotified(session, today)
    due = {key: [(a.id, a.project_title, a.name, printable_on(a)) for a in awards] for key, awards in found.items()}
    mobiles = {key: _mobile_enc(session, key, awards) for key, awards in found.items()}
    session.commit()  # end the reading transaction
    for key, awards in due.items():
        summary["trainees"] += 1
        mobile_enc = mobiles.get(key)
        if not mobile_enc:
            summary["no_mobile"] += 1
            continue
        claimed = set(session.scalars(
            update(CreditAward)
            .where(CreditAward.id.in_([a[0] for a in awards]), CreditAward.printable_notice_at.is_(None))
            .values(printable_notice_at=clock.now())
            .returning(CreditAward.id)).all())
        session.commit()
        if not claimed:  # another run took them meanwhile
            summary["already_sent"] += 1
            continue
        titles = [title for award_id, title, _name, _on in awards if award_id in claimed]
        since = min(today, max(on for award_id, _title, _name, on in awards if award_id in claimed))
        text, params = message(awards[-1][2], titles, since)
        try:
            sms.send_sms(pii.decrypt(mobile_enc), text, params, template="notice")
        except Exception as exc:  # noqa: BLE001 - any provider failure: give the claim back, retry next run
            session.execute(update(CreditAward).where(CreditAward.id.in_(claimed))
                            .values(printable_notice_at=None))
            session.commit()
            summary["failed"] += 1
            log.warning("printable notice for %d award(s) failed, will retry next run: %s", len(claimed),
                        brief(exc))
            continue
        summary["sent"] += 1
    log.info("printable notices of %s: %s", today, summary)
    return summary
