r"""The one state machine of a 项目举办前登记 (Filing), used by the institution's pages, the
committee's pages and both JSON APIs.

    draft --submit--> submitted --approve--> approved
    returned --submit--^        \--return--> returned
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.common import clock
from services.common.auth import Principal
from services.common.errors import AppError

from ..audit.models import record
from ..decisions import emit_decided
from .models import Filing

STATES = ("draft", "submitted", "returned", "approved")
LABELS = {"draft": "草稿", "submitted": "待审批", "returned": "已退回", "approved": "审批通过"}
ACTION_LABELS = {"create": "新建登记", "delete": "删除草稿", "submit": "保存并上报", "approve": "审批通过",
                 "return": "退回修改", "view_contact": "查看完整联系电话"}
EDITABLE = frozenset({"draft", "returned"})
TRANSITIONS: dict[str, tuple[frozenset[str], str, str]] = {
    # action: (allowed from-states, to-state, role that may do it)
    "submit": (frozenset({"draft", "returned"}), "submitted", "institution"),
    "approve": (frozenset({"submitted"}), "approved", "reviewer"),
    "return": (frozenset({"submitted"}), "returned", "reviewer"),
}
_REFUSALS = {
    "submit": "该登记{state}，不能再次上报。",
    "approve": "该登记{state}，不能审批。",
    "return": "该登记{state}，不能退回。",
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
    else:
        filing.decided_at = now
    filing.return_reason = reason if action == "return" else None
    session.flush()  # the version check of optimistic locking happens here, before the audit row
    record(session, actor, "filing", filing.id, action, from_state, to_state, reason)
    emit_decided(session, "filing", action, filing.id, filing.offering_id, filing.institution_id)
