r"""The one state machine of a 执行情况反馈 (ExecutionReport), used by the institution's pages, the
committee's pages and both JSON APIs.

    draft --submit--> submitted --approve--> approved
    returned --submit--^        \--return--> returned

Before 提交 (draft, returned) the report can be edited and deleted; from 提交 on it is locked.
Every transition is audit-logged and writes its event (report.submitted / .returned / .approved) to the
outbox in the same transaction.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.common import clock
from services.common.auth import Principal
from services.common.errors import AppError
from services.common.events import emit

from ..audit.models import record
from ..db import outbox
from ..decisions import emit_decided
from .models import ExecutionReport

OBJECT = "report"
STATES = ("draft", "submitted", "returned", "approved")
LABELS = {"draft": "草稿", "submitted": "待审批", "returned": "已退回", "approved": "审批通过"}
ACTION_LABELS = {"create": "新建反馈记录", "import": "导入考勤记录", "submit": "提交", "approve": "审批通过",
                 "return": "退回修改", "delete": "删除", "view_contact": "查看完整联系电话",
                 "name_corrected": "更正学员姓名"}
EDITABLE = frozenset({"draft", "returned"})
TRANSITIONS: dict[str, tuple[frozenset[str], str, str]] = {
    # action: (allowed from-states, to-state, role that may do it)
    "submit": (frozenset({"draft", "returned"}), "submitted", "institution"),
    "approve": (frozenset({"submitted"}), "approved", "reviewer"),
    "return": (frozenset({"submitted"}), "returned", "reviewer"),
}
EVENTS = {"submit": "report.submitted", "approve": "report.approved", "return": "report.returned"}
_REFUSALS = {
    "submit": "该反馈记录{state}，不能再次提交。",
    "approve": "该反馈记录{state}，不能审批。",
    "return": "该反馈记录{state}，不能退回。",
}


def can(report: ExecutionReport, action: str) -> bool:
    if action == "delete":
        return report.state == "draft"
    if action == "edit":
        return report.state in EDITABLE
    return report.state in TRANSITIONS[action][0]


def ensure_deletable(report: ExecutionReport) -> None:
    """Only a draft goes: once sent, the committee's record of it (its return and reason) must stay."""
    if report.state == "returned":
        raise AppError(409, "not_deletable", "该反馈记录已提交并被退回，不能删除；请按退回原因修改后重新提交。")
    ensure_editable(report, "删除")


def ensure_editable(report: ExecutionReport, doing: str = "修改") -> None:
    if report.state not in EDITABLE:
        raise AppError(409, "not_editable",
                       f"该反馈记录当前状态为“{LABELS[report.state]}”，提交后不能{doing}。")


def transition(session: Session, actor: Principal, report: ExecutionReport, action: str,
               reason: str | None = None) -> None:
    allowed, to_state, role = TRANSITIONS[action]
    if actor.role != role:
        raise AppError(403, "forbidden", "您没有权限进行此操作。")
    if report.state not in allowed:
        raise AppError(409, "bad_state", _REFUSALS[action].format(state=f"当前状态为“{LABELS[report.state]}”"))
    from_state = report.state
    report.state = to_state
    now = clock.now()
    if action == "submit":
        report.submitted_at = now
    else:
        report.decided_at = now
    report.return_reason = reason if action == "return" else None
    session.flush()  # the version check of optimistic locking happens here, before the audit row and the event
    record(session, actor, OBJECT, report.id, action, from_state, to_state, reason)
    emit(session, outbox, "projects", EVENTS[action],
         {"offering_id": report.offering_id, "institution_id": report.institution_id, "report_id": report.id,
          "reason": reason or ""})
    emit_decided(session, OBJECT, action, report.id, report.offering_id, report.institution_id)
