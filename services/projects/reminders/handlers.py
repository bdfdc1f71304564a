"""projects.decided: the committee's 审批通过 or 退回 of a filing or an execution report is told to every 机构负责人
of the institution by SMS. Before, the office found out only at its next login, while a returned filing's
7-day deadline ran on.

The event leaves the outbox only if the decision committed, and the worker records it as processed in the
transaction that sent the messages, so a delivered event is not sent again; a failed SMS fails the event, which
is retried. Each message sent is remembered in Redis for a while (SENT_MEMORY), so the retry texts only those not
reached yet; with Redis unreadable it texts them all (a notice twice beats a notice never). Mobiles and message
texts are never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common import clock, pii, sms
from services.common.config import redis_client
from services.common.events import parse_time
from services.common.formats import zh_date
from services.common.logs import brief

from ..filings.models import Offering
from .services import _recipients

log = logging.getLogger(__name__)

SENT_PREFIX = "cme:decision-sms:"
SENT_MEMORY = 3 * 24 * 3600  # longer than the event's retries last


def _already_sent(key: str) -> bool:
    try:
        return bool(redis_client().exists(key))
    except redis.RedisError:
        return False


def _remember_sent(key: str) -> None:
    try:
        redis_client().set(key, 1, ex=SENT_MEMORY)
    except redis.RedisError as exc:  # a retry may text this person again: said, not fatal
        log.warning("decision notice sent but not remembered (%s)", brief(exc))


SUBJECTS = {"filing": "项目举办前登记", "report": "执行情况反馈"}
NEXT = {
    ("filing", "approved"): "可按登记举办，并在继教活动-项目管理中使用二维码考勤",
    ("filing", "returned"): "请登录系统查看退回原因，修改后重新上报",
    ("report", "approved"): "参加者的学分已生效",
    ("report", "returned"): "请登录系统查看退回原因，修改后重新提交（提交期限不因退回延长）",
    ("filing", "unheld"): "本期不再需要执行情况反馈，已授学分不会生效，本项目可另登记一期；"
                          "如有异议请联系省继续医学教育委员会",
}
DONE = {"approved": "的{subject}已审批通过", "returned": "的{subject}已被退回",
        "unheld": "已被省继续医学教育委员会标记为未举办"}


def message(kind: str, decision: str, project_title: str, seq: str, day: str) -> tuple[str, tuple[str, ...]]:
    """(the full text, the [what, date] of the notice template of a provider that sends by template)."""
    what = f"您单位“{project_title}”{seq}" + DONE[decision].format(subject=SUBJECTS[kind])
    return f"{sms.SIGN}{what}（{day}），{NEXT[(kind, decision)]}。", (what, day)


def on_decided(session: Session, payload: dict[str, Any], envelope: dict[str, Any]) -> None:
    offering = session.scalar(select(Offering).where(Offering.id == payload["offering_id"]))
    if offering is None:  # a deleted draft's offering cannot be decided on; nothing to tell
        return
    why, admins = _recipients(session, payload["institution_id"])
    if why:
        log.warning("decision notice %s %s skipped: %s", payload["kind"], payload["object_id"], why)
        return
    text, params = message(payload["kind"], payload["decision"], offering.project.title, offering.label,
                           zh_date(clock.to_local(parse_time(envelope["time"])).date()))  # type: ignore[union-attr]
    for admin_id, mobile_enc in admins:
        sent = f"{SENT_PREFIX}{envelope['id']}:{admin_id}"
        if _already_sent(sent):  # reached before an earlier try failed on someone after her
            continue
        try:
            sms.send_sms(pii.decrypt(mobile_enc), text, params, template="notice")  # a failure: the event is retried
        except sms.SmsNotConfigured as exc:  # retrying cannot help: said once, for the operator
            log.warning("decision notice %s %s not sent: %s", payload["kind"], payload["object_id"], exc)
            return
        _remember_sent(sent)
        log.info("decision notice %s %s (%s) sent to admin %s of institution %s", payload["kind"],
                 payload["object_id"], payload["decision"], admin_id, payload["institution_id"])


HANDLERS: dict[str, Callable[[Session, dict[str, Any], dict[str, Any]], None]] = {
    "projects.decided": on_decided,
}
