"""The one place of the printing rule (guide §五, DESIGN stage 5): a certificate prints only for an effective award
(certs holds it and credits has not withdrawn it) of an approved provincial project (every EffectiveAward is one),
and only from 4 weeks after the offering ended, judged on the suite's clock in Beijing time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from services.common import clock

from ..awards.models import EffectiveAward

PRINTABLE_AFTER = dt.timedelta(days=28)


def printable_from(award: EffectiveAward) -> dt.date:
    return award.ends_on + PRINTABLE_AFTER


@dataclass(frozen=True)
class PrintStatus:
    printable: bool
    printable_from: dt.date | None  # None when it never prints (revoked)
    revoked: bool
    text: str


def print_status(award: EffectiveAward, today: dt.date | None = None) -> PrintStatus:
    today = today or clock.today_local()
    if award.revoked_at is not None:
        return PrintStatus(False, None, True, f"已撤销（{clock.fmt(award.revoked_at, '%Y-%m-%d')} 起），不能打印")
    due = printable_from(award)
    if today >= due:
        return PrintStatus(True, due, False, "可打印")
    return PrintStatus(False, due, False, f"{due.isoformat()} 起可打印（项目结束 4 周后）")
