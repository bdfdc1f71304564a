r"""The one state machine of a 项目举办前登记 (Filing), used by the institution's pages, the
committee's pages and both JSON APIs.

    draft --submit--> submitted --approve--> approved --cancel / mark_unheld--> cancelled
    returned --submit--^        \--return--> returned

An approved 期 that is not held ends as cancelled: the office's 取消举办 before it starts, the committee's
标记未举办 once there is no execution report. Final: offering.cancelled tells checkin and credits, and the project
may file one more 期 in its place.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from services.common import clock, pii
from services.common.auth import Principal
from services.common.errors import AppError

from .. import uploads as jpg
from ..audit.models import record
from ..decisions import emit_decided
from .models import Filing
from .schemas import FIELD_LABELS

STATES = ("draft", "submitted", "returned", "approved", "cancelled")
LABELS = {"draft": "草稿", "submitted": "待审批", "returned": "已退回", "approved": "审批通过", "cancelled": "未举办"}
ACTION_LABELS = {"create": "新建登记", "delete": "删除草稿", "submit": "保存并上报", "approve": "审批通过",
                 "return": "退回修改", "view_contact": "查看完整联系电话", "cancel": "取消举办",
                 "mark_unheld": "标记未举办"}
# who ends an approved 期 by each action (offering.cancelled's `by`), and how a page says it was ended
CANCELLED_BY = {"cancel": "institution", "mark_unheld": "committee"}
ENDED = {"institution": "本期已由举办机构取消举办", "committee": "本期已由省继续医学教育委员会标记未举办"}
EDITABLE = frozenset({"draft", "returned"})
TRANSITIONS: dict[str, tuple[frozenset[str], str, str]] = {
    # action: (allowed from-states, to-state, role that may do it)
    "submit": (frozenset({"draft", "returned"}), "submitted", "institution"),
    "approve": (frozenset({"submitted"}), "approved", "reviewer"),
    "return": (frozenset({"submitted"}), "returned", "reviewer"),
    "cancel": (frozenset({"approved"}), "cancelled", "institution"),
    "mark_unheld": (frozenset({"approved"}), "cancelled", "reviewer"),
}
_REFUSALS = {
    "submit": "该登记{state}，不能再次上报。",
    "approve": "该登记{state}，不能审批。",
    "return": "该登记{state}，不能退回。",
    "cancel": "该登记{state}，只有审批通过的期次可以取消举办。",
    "mark_unheld": "该登记{state}，只有审批通过的期次可以标记未举办。",
}


def can(filing: Filing, action: str) -> bool:
    return filing.state in TRANSITIONS[action][0]


def ensure_editable(filing: Filing) -> None:
    if filing.state not in EDITABLE:
        raise AppError(409, "not_editable", f"该登记当前状态为“{LABELS[filing.state]}”，不能修改。")


def ensure_deletable(filing: Filing) -> None:
    """Only a draft never sent goes (the guide: 提交前可以进行修改和删除); once sent, the committee's record of it
    (its return and reason) stays."""
    if filing.state == "returned":
        raise AppError(409, "not_deletable", "该登记已上报并被退回，不能删除；请按退回原因修改后重新上报。")
    if filing.state != "draft":
        raise AppError(409, "not_deletable", f"该登记当前状态为“{LABELS[filing.state]}”，不能删除。")


# what the committee reads a filing by, in the form's order: a change of any is named at the next 上报
_SENT_FIELDS = ("starts_on", "ends_on", "venue", "mode", "expected_trainees", "contact_person", "contact_phone",
                "schedule", "note")


def sent_as(filing: Filing) -> dict[str, Any]:
    """The filing as a 上报 sends it (the phone as its keyed hash, files by their SHA-256), to compare the next."""
    return {"starts_on": str(filing.starts_on), "ends_on": str(filing.ends_on), "venue": filing.venue,
            "mode": filing.mode, "expected_trainees": filing.expected_trainees,
            "contact_person": filing.contact_person,
            "contact_phone": pii.mobile_hash(pii.decrypt(filing.contact_phone_enc)) if filing.contact_phone_enc else "",
            "schedule": filing.schedule or [], "note": filing.note,
            "uploads": {u.kind: u.sha256 for u in filing.uploads}}


def changes_since_sent(filing: Filing, now: dict[str, Any]) -> str | None:
    """办理记录's line for a 上报 after an earlier one: what differs from what was sent then (None the first time)."""
    before = filing.submitted_as
    if not before:
        return None
    changed = [FIELD_LABELS[key] for key in _SENT_FIELDS if before.get(key) != now.get(key)]
    files = before.get("uploads") or {}
    changed += [f"{label}（重新上传）" if kind in files else f"{label}（新上传）"
                for kind, label in jpg.KINDS.items() if now["uploads"].get(kind) not in (None, files.get(kind))]
    changed += [f"{label}（已删除）" for kind, label in jpg.KINDS.items()
                if kind in files and kind not in now["uploads"]]
    return ("与上次上报相比修改了：" + "、".join(changed) + "。") if changed else "与上次上报相比未作修改。"


def transition(session: Session, actor: Principal, filing: Filing, action: str, reason: str | None = None) -> None:
    allowed, to_state, role = TRANSITIONS[action]
    if actor.role != role:
        raise AppError(403, "forbidden", "您没有权限进行此操作。")
    if filing.state not in allowed:
        raise AppError(409, "bad_state", _REFUSALS[action].format(state=f"当前状态为“{LABELS[filing.state]}”"))
    from_state = filing.state
    filing.state = to_state
    now = clock.now()
    if action == "submit":
        filing.submitted_at = now
        sending = sent_as(filing)
        reason = reason or changes_since_sent(filing, sending)
        filing.submitted_as = sending
    elif action in CANCELLED_BY:
        filing.cancelled_at, filing.cancelled_by, filing.cancel_reason = now, CANCELLED_BY[action], reason
    else:
        filing.decided_at = now
    filing.return_reason = reason if action == "return" else None
    session.flush()  # the version check of optimistic locking happens here, before the audit row
    record(session, actor, "filing", filing.id, action, from_state, to_state, reason)
    emit_decided(session, "filing", action, filing.id, filing.offering_id, filing.institution_id)
