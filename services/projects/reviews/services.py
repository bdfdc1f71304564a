"""The committee's side: the queue of filings, 审批通过 (with the offering.approved event in the same
transaction) and 退回修改 with a reason. State rules come from filings.states."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from services.common.auth import Principal
from services.common.errors import AppError
from services.common.events import emit
from services.common.paging import paginate

from ..catalogue.models import Project
from ..db import outbox
from ..filings import states
from ..filings.models import Filing, Offering
from ..filings.services import _check_version, committee_filters

REASON_MAX = 1000


def review_page(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    stmt = (select(Filing).join(Offering, Filing.offering_id == Offering.id)
            .join(Project, Offering.project_id == Project.id))
    state = args.get("state")
    if state == "all":
        stmt = stmt.where(Filing.state != "draft")  # a draft is the institution's business until it is sent
    else:
        stmt = stmt.where(Filing.state == (state or "submitted"))
    stmt = committee_filters(stmt, args, Filing.institution_id)
    # a page of rows in a few queries, not two or more per row (the JPGs' bytes are deferred by the model)
    stmt = stmt.options(selectinload(Filing.offering).selectinload(Offering.project).selectinload(Project.institution),
                        selectinload(Filing.uploads))
    return paginate(session, stmt, args, Filing.submitted_at.asc().nulls_last(), Filing.id)


def get_for_review(session: Session, filing_id: int, lock: bool = False) -> Filing:
    stmt = select(Filing).where(Filing.id == filing_id, Filing.state != "draft")
    if lock:
        stmt = stmt.with_for_update()
    filing = session.scalar(stmt)
    if filing is None:
        raise AppError(404, "not_found", "该登记不存在或尚未上报。")
    return filing


def filing_of_offering(session: Session, offering_id: int) -> Filing:
    filing = session.scalar(select(Filing).where(Filing.offering_id == offering_id, Filing.state != "draft"))
    if filing is None:
        raise AppError(404, "not_found", "该期次不存在或尚未上报。")
    return filing


def approval_payload(filing: Filing) -> dict[str, Any]:
    project = filing.project
    return {
        "offering_id": filing.offering_id, "institution_id": filing.institution_id,
        "institution_name": project.institution.name, "project_id": project.id,
        "project_number": project.number, "project_title": project.title, "year": project.year,
        "seq": filing.offering.seq, "credit_class": project.credit_class, "credit_value": project.credit_value,
        "hours": project.hours, "starts_on": filing.starts_on, "ends_on": filing.ends_on, "venue": filing.venue,
        "mode": filing.mode,
        "schedule": [{"date": dt.date.fromisoformat(s["date"]), "start": dt.time.fromisoformat(s["start"]),
                      "end": dt.time.fromisoformat(s["end"]), "title": s.get("title", "")}
                     for s in filing.schedule or []],
    }


def approve(session: Session, principal: Principal, filing: Filing, version: int | None = None) -> Filing:
    if states.can(filing, "approve"):  # else the state's own refusal (a second click: "审批通过" already)
        _check_version(filing, version)
    states.transition(session, principal, filing, "approve")
    # same transaction as the state change: the event leaves only if the approval commits
    emit(session, outbox, "projects", "offering.approved", approval_payload(filing))
    return filing


def return_filing(session: Session, principal: Principal, filing: Filing, reason: str,
                  version: int | None = None) -> Filing:
    reason = (reason or "").strip()
    if not reason:
        raise AppError(422, "invalid_input", "退回时必须填写退回原因。", {"reason": "请填写退回原因。"})
    if len(reason) > REASON_MAX:
        raise AppError(422, "invalid_input", f"退回原因不能超过 {REASON_MAX} 个字。", {"reason": "退回原因太长。"})
    if states.can(filing, "return"):
        _check_version(filing, version)
    states.transition(session, principal, filing, "return", reason)
    return filing

