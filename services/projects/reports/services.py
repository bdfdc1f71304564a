"""执行情况反馈: the institution's held offerings, the five pages, 导入, 提交, 删除, the committee's review
and the deadline (the offering's end date + 14 days).

Every function takes the session (and the acting Principal where it matters), checks ownership itself
and leaves the commit to the caller (one commit per request). State rules live in states.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from services.common import clock, pii
from services.common.auth import Principal, own_institution
from services.common.db import savepoint
from services.common.errors import AppError
from services.common.formats import fmt_credits
from services.common.paging import matches, paginate

from ..audit.models import histories_of, history_of, record
from ..awarded.models import AwardedList, AwardedTrainee
from ..catalogue.models import Project
from ..filings import states as filing_states
from ..filings.models import Filing, Offering
from ..filings.services import committee_filters
from . import files, states
from .models import ExecutionReport, ReportLecturer, ReportMaterial, ReportTrainee, ReportUpload
from .schemas import PAGES

DAYS_AFTER = 14
REASON_MAX = 1000


# ---------------------------------------------------------------- deadline


def due_on(filing: Filing) -> dt.date | None:
    """The report is due 14 days after the offering's (approved) end date."""
    return filing.ends_on + dt.timedelta(days=DAYS_AFTER) if filing.ends_on else None


def is_overdue(filing: Filing, report: ExecutionReport | None, today: dt.date | None = None) -> bool:
    due = due_on(filing)
    today = today or clock.today_local()
    return due is not None and today > due and (report is None or report.state in states.EDITABLE)


def submitted_late(filing: Filing, report: ExecutionReport) -> bool:
    due = due_on(filing)
    sent = clock.to_local(report.submitted_at)
    return due is not None and sent is not None and sent.date() > due


def offering_info(offering: Offering, filing: Filing, project: Project, report: ExecutionReport | None,
                  today: dt.date | None = None) -> dict[str, Any]:
    return {
        "offering_id": offering.id, "seq": offering.seq, "seq_label": offering.label, "project_id": project.id,
        "project_number": project.number, "project_title": project.title, "year": project.year,
        "institution_id": filing.institution_id, "institution_name": project.institution.name,
        "starts_on": filing.starts_on, "ends_on": filing.ends_on, "due_on": due_on(filing),
        "overdue": is_overdue(filing, report, today),
    }


def _held() -> Any:
    """Offerings whose pre-event filing was approved, with project and (maybe) report."""
    return (select(Offering, Filing, Project, ExecutionReport)
            .join(Filing, Filing.offering_id == Offering.id)
            .join(Project, Offering.project_id == Project.id)
            .outerjoin(ExecutionReport, ExecutionReport.offering_id == Offering.id)
            .where(Filing.state == "approved"))


def _not_submitted() -> Any:
    return or_(ExecutionReport.id.is_(None), ExecutionReport.state.in_(states.EDITABLE))


def due_reports(session: Session, today: dt.date, filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Offerings that have ended and whose report is not submitted (none, draft or returned), soonest due first,
    with the due date and whether it is overdue: for the reminder task and the committee's 逾期 list (which the
    clerk narrows by 年度, 申办机构 and 检索, as the list above it)."""
    stmt = _held().where(Filing.ends_on <= today, _not_submitted())
    stmt = committee_filters(stmt, filters or {}, Filing.institution_id)
    stmt = (stmt.order_by(Filing.ends_on, Offering.id)
            .options(selectinload(Project.institution)))  # one query for the names, not one per institution
    return [_due_dict(row, today) for row in session.execute(stmt).all()]


# ---------------------------------------------------------------- the institution's list


def _brief(report: ExecutionReport | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {"id": report.id, "state": report.state, "state_label": states.LABELS[report.state],
            "version": report.version, "created_at": report.created_at, "submitted_at": report.submitted_at,
            "return_reason": report.return_reason}


def _can_create(filing: Filing, report: ExecutionReport | None, today: dt.date) -> bool:
    return report is None and filing.starts_on is not None and filing.starts_on <= today


def offering_row(offering: Offering, filing: Filing, project: Project, report: ExecutionReport | None,
                 today: dt.date | None = None) -> dict[str, Any]:
    today = today or clock.today_local()
    row = offering_info(offering, filing, project, report, today)
    row.update(mode=filing.mode, venue=filing.venue, report=_brief(report),
               can_create=_can_create(filing, report, today))
    return row


def not_held_count(session: Session, principal: Principal) -> int:
    """The office's approved 期 ended as 未举办 (取消举办, 标记未举办): no report is due for them; the list says so."""
    return session.scalar(select(func.count(Filing.id)).where(Filing.institution_id == principal.institution_id,
                                                                Filing.state == "cancelled")) or 0


def own_offerings_page(session: Session, principal: Principal, args: dict[str, Any]) -> dict[str, Any]:
    today = clock.today_local()
    stmt = _held().where(Filing.institution_id == principal.institution_id)
    if args.get("year"):
        stmt = stmt.where(Project.year == args["year"])
    if args.get("q"):
        stmt = stmt.where(matches(args["q"], Project.title, Project.number))
    status = args.get("status")
    if status == "none":
        stmt = stmt.where(ExecutionReport.id.is_(None))
    elif status == "overdue":
        stmt = stmt.where(Filing.ends_on < today - dt.timedelta(days=DAYS_AFTER), _not_submitted())
    elif status:
        stmt = stmt.where(ExecutionReport.state == status)
    page = paginate(session, stmt, args, Filing.ends_on.desc(), Offering.id, scalars=False)
    page["items"] = [offering_row(*row, today=today) for row in page["items"]]
    return page


def own_offering(session: Session, principal: Principal, offering_id: int,
                 lock: bool = False) -> tuple[Offering, Filing, Project, ExecutionReport | None]:
    """反馈管理 of one held offering: another institution's, or one not approved, is not found."""
    stmt = _held().where(Offering.id == offering_id)
    if lock:
        stmt = stmt.with_for_update(of=Filing)
    row = session.execute(stmt).first()
    if row is None:
        cancelled = session.scalar(select(Filing).where(Filing.offering_id == offering_id,
                                                        Filing.state == "cancelled"))
        if cancelled is not None and principal.institution_id == cancelled.institution_id:
            raise AppError(409, "not_held", f"{filing_states.ENDED[cancelled.cancelled_by or 'institution']}，"
                                            "不需要执行情况反馈。")
        raise AppError(404, "not_found", "该期项目不存在或举办前登记尚未审批通过。")
    own_institution(principal, row[1].institution_id, "该期项目不存在或举办前登记尚未审批通过。")
    return row[0], row[1], row[2], row[3]


# ---------------------------------------------------------------- loading with ownership


def get_report(session: Session, principal: Principal, report_id: int, lock: bool = False) -> ExecutionReport:
    stmt = select(ExecutionReport).where(ExecutionReport.id == report_id)
    if lock:
        stmt = stmt.with_for_update()
    report = session.scalar(stmt)
    if report is None:
        raise AppError(404, "not_found", "该反馈记录不存在。")
    own_institution(principal, report.institution_id, "该反馈记录不存在。")  # another's: as if missing
    return report


def get_for_review(session: Session, report_id: int, lock: bool = False) -> ExecutionReport:
    stmt = select(ExecutionReport).where(ExecutionReport.id == report_id, ExecutionReport.state != "draft")
    if lock:
        stmt = stmt.with_for_update()
    report = session.scalar(stmt)
    if report is None:
        raise AppError(404, "not_found", "该反馈记录不存在或尚未提交。")
    return report


def get_visible(session: Session, principal: Principal, report_id: int) -> ExecutionReport:
    """The owning institution sees its own; the committee sees what was submitted at least once."""
    if principal.role == "reviewer":
        return get_for_review(session, report_id)
    return get_report(session, principal, report_id)


def _check_version(report: ExecutionReport, version: int | None) -> None:
    if version is not None and version != report.version:
        raise AppError(409, "conflict", "该反馈记录已被修改，请刷新页面后重试。")


def _touch(session: Session, report: ExecutionReport) -> None:
    report.updated_at = clock.now()  # bumps the version: a change of a page is a change of the report
    session.flush()


# ---------------------------------------------------------------- actions


def create_report(session: Session, principal: Principal, offering_id: int) -> ExecutionReport:
    """新建: one live report per offering; the first page starts from the approved filing's details."""
    offering, filing, project, report = own_offering(session, principal, offering_id, lock=True)
    if report is not None:
        raise AppError(409, "exists",
                       "本期已有反馈记录，请在“反馈管理”中打开；如需重新填写，请先删除原记录（提交前可删除）。")
    today = clock.today_local()
    if filing.starts_on is None or filing.starts_on > today:
        raise AppError(409, "not_held", f"本期于 {filing.starts_on} 开始举办，举办后方可新建执行情况反馈。")
    # what the suite already knows is filled in for the office to confirm (the walk typed each again): the
    # catalogue's 学时, the credited count credits sent, the filing's 会议通知 and 会议日程 (replaceable on page 3)
    awarded = session.scalar(select(AwardedList.count).where(AwardedList.offering_id == offering.id))
    report = ExecutionReport(
        offering_id=offering.id, institution_id=filing.institution_id, state="draft",
        actual_starts_on=filing.starts_on, actual_ends_on=filing.ends_on, venue=filing.venue, mode=filing.mode,
        organiser=project.host_name, contact_person=filing.contact_person,
        contact_phone_enc=filing.contact_phone_enc, summary="", created_at=clock.now(),
        total_hours=project.hours if project.hours and project.hours > 0 else None, trainees_count=awarded or None,
    )
    for kind, from_kind in (("notice", "notice"), ("schedule", "agenda")):
        up = filing.upload(from_kind)
        if up is not None:
            report.uploads.append(ReportUpload(kind=kind, filename=up.filename, content_type="image/jpeg",
                                               size=up.size, width=up.width, height=up.height, sha256=up.sha256,
                                               data=up.data, uploaded_at=clock.now()))
    try:
        with savepoint(session):  # UNIQUE(offering_id): a concurrent 新建 loses here, not with a 500
            session.add(report)
            session.flush()
    except IntegrityError:
        raise AppError(409, "exists", "本期已有反馈记录，请在“反馈管理”中打开。") from None
    record(session, principal, states.OBJECT, report.id, "create", None, "draft")
    return report


def dates_outside_year(report: ExecutionReport, days: dict[str, dt.date | None]) -> dict[str, str]:
    """Each 实际举办日期 outside the project's year, by field: held to it as the filing was (a 2020 typed for 2026
    is a typo, not a note, and the offering's credits would count toward the wrong year)."""
    year = report.offering.project.year
    msg = f"本项目为 {year} 年度项目（项目目录），实际举办日期须在 {year} 年内。"
    return {name: msg for name, day in days.items() if day is not None and day.year != year}


def save_facts(session: Session, principal: Principal, report: ExecutionReport, data: dict[str, Any]) -> None:
    """第1页 执行情况 (loaded through FactsInSchema / FactsFormSchema)."""
    states.ensure_editable(report)
    _check_version(report, data.get("version"))
    outside = dates_outside_year(report, {n: data[n] for n in ("actual_starts_on", "actual_ends_on")})
    if outside:
        raise AppError(422, "invalid_input", next(iter(outside.values())), outside)
    for name in ("actual_starts_on", "actual_ends_on", "venue", "mode", "trainees_count", "total_hours",
                 "organiser", "contact_person"):
        setattr(report, name, data[name])
    report.contact_phone_enc = pii.encrypt(data["contact_phone"])
    _touch(session, report)


def save_lecturers(session: Session, principal: Principal, report: ExecutionReport, data: dict[str, Any]) -> None:
    """第2页 授课情况: the list replaces the previous one."""
    states.ensure_editable(report)
    _check_version(report, data.get("version"))
    report.lecturers.clear()
    session.flush()
    for i, row in enumerate(data["lecturers"]):
        report.lecturers.append(ReportLecturer(position=i, **{k: row[k] for k in
                                                             ("name", "title", "unit", "topic", "hours")}))
    _touch(session, report)


def save_materials(session: Session, principal: Principal, report: ExecutionReport, data: dict[str, Any]) -> None:
    """第5页 教材与总结."""
    states.ensure_editable(report)
    _check_version(report, data.get("version"))
    report.materials.clear()
    session.flush()
    for i, row in enumerate(data.get("materials") or []):
        report.materials.append(ReportMaterial(position=i, title=row["title"], editor=row["editor"],
                                               publisher=row["publisher"], year=row.get("year")))
    report.summary = data["summary"]
    _touch(session, report)


def put_upload(session: Session, principal: Principal, report: ExecutionReport, kind: str, filename: str | None,
               raw: bytes) -> ReportUpload:
    """第3页: 日程 / 会议通知 replace the previous one; 会议照片 and 试题 are added (up to a limit)."""
    if kind not in files.KINDS:
        raise AppError(404, "not_found", "不支持的上传类型。")
    states.ensure_editable(report)
    limits = {"photo": files.MAX_PHOTOS, "exam": files.MAX_EXAMS}
    if kind in limits and len(report.uploads_of(kind)) >= limits[kind]:
        raise files.refuse(kind, f"最多上传 {limits[kind]} 个，请先删除不需要的文件。")
    clean = files.clean_file(raw, kind)
    if kind in files.SINGLE:
        for old in report.uploads_of(kind):
            report.uploads.remove(old)
        session.flush()
    up = ReportUpload(kind=kind, filename=files.stored_name(filename, clean.content_type),
                      content_type=clean.content_type, size=len(clean.data), width=clean.width, height=clean.height,
                      sha256=clean.sha256, data=clean.data, uploaded_at=clock.now())
    report.uploads.append(up)
    _touch(session, report)
    return up


def delete_upload(session: Session, principal: Principal, report: ExecutionReport, upload_id: int) -> None:
    states.ensure_editable(report)
    up = next((u for u in report.uploads if u.id == upload_id), None)
    if up is None:
        raise AppError(404, "not_found", "该文件不存在。")
    report.uploads.remove(up)
    _touch(session, report)


def awarded_list(session: Session, report: ExecutionReport) -> AwardedList | None:
    return session.scalar(select(AwardedList).where(AwardedList.offering_id == report.offering_id,
                                                    AwardedList.institution_id == report.institution_id))


def import_attendance(session: Session, principal: Principal, report: ExecutionReport) -> tuple[int, bool]:
    """导入: copy the offering's current award list (credits.granted) into the report, replacing the last copy.
    Answers the number copied and whether page 1's 培训人数, still blank, was filled with it (the office would
    otherwise count the list by hand; a figure it typed is never changed)."""
    states.ensure_editable(report)
    source = awarded_list(session, report)
    if source is None:
        raise AppError(409, "no_awards", "学分管理尚未发来本期的授分名单，暂无可导入的考勤记录。请先在“学分管理 → "
                                         "项目参加者授分”中完成授分，稍后再导入。")
    rows = session.scalars(select(AwardedTrainee).where(AwardedTrainee.list_id == source.id)
                           .order_by(AwardedTrainee.id)).all()
    report.trainees.clear()
    session.flush()
    for a in rows:
        report.trainees.append(ReportTrainee(
            award_id=a.award_id, trainee_key=a.trainee_key, name=a.name, id_enc=a.id_enc, title=a.title,
            unit=a.unit, credit_class=a.credit_class, credit_value=a.credit_value, activity_date=a.activity_date,
            method=a.method, state=a.state, forced=a.forced))
    report.attendance_imported_at = clock.now()
    report.attendance_as_of = source.as_of
    filled = report.trainees_count is None and len(rows) > 0
    if filled:
        report.trainees_count = len(rows)
    _touch(session, report)
    record(session, principal, states.OBJECT, report.id, "import", None, None,
           f"导入 {len(rows)} 人" + ("，培训人数按导入人数填写" if filled else ""))
    return len(rows), filled


def missing_by_page(session: Session, report: ExecutionReport) -> list[dict[str, Any]]:
    """What 提交 still needs, page by page, in Chinese."""
    today = clock.today_local()
    need: dict[int, list[str]] = {n: [] for n in PAGES}
    labels = (("actual_starts_on", "实际开始日期"), ("actual_ends_on", "实际结束日期"), ("venue", "举办地点"),
              ("mode", "举办方式"), ("trainees_count", "培训人数"), ("total_hours", "总学时"),
              ("organiser", "承办单位"), ("contact_person", "联系人"), ("contact_phone_enc", "联系电话"))
    need[1] += [f"缺少{label}" for name, label in labels if not getattr(report, name)]
    if report.actual_ends_on and report.actual_ends_on > today:
        need[1].append(f"实际结束日期（{report.actual_ends_on}）尚未到")
    if not report.lecturers:
        need[2].append("至少填写一位授课专家")
    for kind in files.SINGLE:
        if not report.uploads_of(kind):
            need[3].append(f"缺少{files.KINDS[kind]}")
    if not report.uploads_of("photo"):
        need[3].append("至少上传一张会议照片")
    if report.attendance_imported_at is None:
        need[4].append("尚未导入考勤记录")
    elif not report.trainees:
        need[4].append("导入的考勤记录中没有学员")
    else:
        source = awarded_list(session, report)
        if source is not None and report.attendance_as_of is not None and source.as_of > report.attendance_as_of:
            need[4].append("授分名单在导入后有变化，请重新导入")
    if not (report.summary or "").strip():
        need[5].append("缺少执行情况总结")
    return [{"page": n, "page_label": PAGES[n], "items": items,
             "message": f"第{n}页（{PAGES[n]}）：" + "、".join(items)} for n, items in need.items() if items]


def submit_report(session: Session, principal: Principal, report: ExecutionReport,
                  version: int | None = None) -> ExecutionReport:
    """提交: every page complete; then locked (report.submitted in the same transaction)."""
    # the state before the version: a double click's second 提交 hears "已提交", not "modified by someone else"
    if not states.can(report, "submit"):
        states.transition(session, principal, report, "submit")  # raises the state's own refusal
    _check_version(report, version)
    missing = missing_by_page(session, report)
    if missing:
        message = "尚不能提交，请补全以下内容：" + "；".join(m["message"] for m in missing) + "。"
        raise AppError(422, "incomplete", message, {f"page{m['page']}": m["message"] for m in missing})
    states.transition(session, principal, report, "submit")
    return report


def delete_report(session: Session, principal: Principal, report: ExecutionReport, version: int | None = None) -> None:
    """删除 (a draft never submitted only): the record goes, with its rows and files; 新建 is possible again."""
    states.ensure_deletable(report)
    _check_version(report, version)
    record(session, principal, states.OBJECT, report.id, "delete", report.state, None)
    session.delete(report)
    session.flush()


# ---------------------------------------------------------------- the committee


def review_page(session: Session, args: dict[str, Any], whole: bool = False) -> dict[str, Any]:
    """A page of reports for the committee; `whole` (the JSON list, each report in full) also loads their
    lecturers, files (not their bytes), trainees and 教材 per page rather than per report."""
    stmt = (select(ExecutionReport).join(Offering, ExecutionReport.offering_id == Offering.id)
            .join(Project, Offering.project_id == Project.id))
    state = args.get("state")
    if state == "all":
        stmt = stmt.where(ExecutionReport.state != "draft")  # a draft is the institution's business until sent
    else:
        stmt = stmt.where(ExecutionReport.state == (state or "submitted"))
    stmt = committee_filters(stmt, args, ExecutionReport.institution_id)
    offering = selectinload(ExecutionReport.offering)  # a page of rows in a few queries, not a dozen per row
    stmt = stmt.options(offering.selectinload(Offering.filing),
                        offering.selectinload(Offering.project).selectinload(Project.institution))
    if whole:
        stmt = stmt.options(selectinload(ExecutionReport.lecturers), selectinload(ExecutionReport.uploads),
                            selectinload(ExecutionReport.trainees), selectinload(ExecutionReport.materials))
    return paginate(session, stmt, args, ExecutionReport.submitted_at.asc().nulls_last(), ExecutionReport.id)


def review_row(report: ExecutionReport) -> dict[str, Any]:
    """One row of 执行情况反馈审批: what the list shows, without the report's pages, attachments and history (the
    whole report_dict of each row cost the page some two hundred queries)."""
    offering = report.offering
    filing = offering.filing
    assert filing is not None
    return {"id": report.id, "offering": offering_info(offering, filing, offering.project, report),
            "state": report.state, "state_label": states.LABELS[report.state], "submitted_at": report.submitted_at,
            "submitted_late": submitted_late(filing, report)}


def _overdue_stmt(today: dt.date, filters: dict[str, Any] | None) -> Any:
    """Offerings past their due date (end + 14 days) whose report is not sent (none, draft or returned): is_overdue
    in SQL, so that the committee's list is counted and paged by the database."""
    stmt = _held().where(Filing.ends_on < today - dt.timedelta(days=DAYS_AFTER), _not_submitted())
    return committee_filters(stmt, filters or {}, Filing.institution_id).options(selectinload(Project.institution))


def _due_dict(row: Any, today: dt.date) -> dict[str, Any]:
    offering, filing, project, report = row
    info = offering_info(offering, filing, project, report, today)
    info.update(report_id=report.id if report else None, report_state=report.state if report else None)
    return info


def overdue_offerings(session: Session, today: dt.date | None = None,
                      filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every overdue offering under the committee's filters, longest overdue first (the Excel for chasing)."""
    today = today or clock.today_local()
    rows = session.execute(_overdue_stmt(today, filters).order_by(Filing.ends_on, Offering.id)).all()
    return [_due_dict(r, today) for r in rows]


def overdue_page(session: Session, args: dict[str, Any], today: dt.date | None = None) -> dict[str, Any]:
    """One page of overdue_offerings ({items, total, page, pages, per_page}): the list had some 360 rows."""
    today = today or clock.today_local()
    page = paginate(session, _overdue_stmt(today, args), args, Filing.ends_on, Offering.id, scalars=False)
    page["items"] = [_due_dict(r, today) for r in page["items"]]
    return page


def approve(session: Session, principal: Principal, report: ExecutionReport, version: int | None = None) -> None:
    if states.can(report, "approve"):  # else the state's own refusal (a second click: "审批通过" already)
        _check_version(report, version)
    states.transition(session, principal, report, "approve")


def return_report(session: Session, principal: Principal, report: ExecutionReport, reason: str,
                  version: int | None = None) -> None:
    reason = (reason or "").strip()
    if not reason:
        raise AppError(422, "invalid_input", "退回时必须填写退回原因。", {"reason": "请填写退回原因。"})
    if len(reason) > REASON_MAX:
        raise AppError(422, "invalid_input", f"退回原因不能超过 {REASON_MAX} 个字。", {"reason": "退回原因太长。"})
    if states.can(report, "return"):
        _check_version(report, version)
    states.transition(session, principal, report, "return", reason)


# ---------------------------------------------------------------- presenting


def upload_dict(report: ExecutionReport, u: ReportUpload) -> dict[str, Any]:
    return {"id": u.id, "kind": u.kind, "label": files.KINDS[u.kind], "filename": u.filename,
            "content_type": u.content_type, "size": u.size, "width": u.width, "height": u.height,
            "sha256": u.sha256, "url": f"/projects/reports/{report.id}/uploads/{u.id}", "is_image": u.is_image}


_UNREAD: Any = object()  # a report_dict argument its caller did not read for it


def attendance_dict(session: Session, report: ExecutionReport, source: AwardedList | None = _UNREAD
                    ) -> dict[str, Any]:
    if source is _UNREAD:
        source = awarded_list(session, report)
    trainees = [{"name": t.name, "id_masked": t.id_masked, "title": t.title, "unit": t.unit,
                 "credit_class": t.credit_class, "credit_value": t.credit_value, "activity_date": t.activity_date,
                 "method": t.method, "manual": t.manual, "state": t.state, "forced": t.forced}
                for t in report.trainees]
    return {"imported_at": report.attendance_imported_at, "as_of": report.attendance_as_of,
            "count": len(trainees), "manual_count": sum(1 for t in trainees if t["manual"]),
            "forced_count": sum(1 for t in trainees if t["forced"]),
            "available": source is not None, "available_count": source.count if source is not None else None,
            "outdated": bool(source is not None and report.attendance_as_of is not None
                             and source.as_of > report.attendance_as_of),
            "trainees": trainees}


def cross_checks(report: ExecutionReport, filing: Any, project: Any, imported: int | None) -> list[str]:
    """What the report's figures say against what is known (the filing, the catalogue, the imported award list):
    notes for the clerk reviewing it and for the office before 提交, not refusals (a hall may hold more people
    than were granted credit). The office's walk submitted 培训人数 500 against 8 attendees, 总学时 0.5 against a
    12-学时 project and lecturer hours of 106, and nothing said so."""
    notes = []
    if report.actual_starts_on and report.actual_ends_on and filing.starts_on and filing.ends_on and (
            report.actual_starts_on != filing.starts_on or report.actual_ends_on != filing.ends_on):
        notes.append(f"实际举办日期 {report.actual_starts_on} 至 {report.actual_ends_on} 与举办前登记的 "
                     f"{filing.starts_on} 至 {filing.ends_on} 不一致。")
    if report.total_hours is not None and project.hours is not None and report.total_hours != project.hours:
        notes.append(f"总学时 {fmt_credits(report.total_hours)} 与项目目录登记的 "
                     f"{fmt_credits(project.hours)} 学时不一致。")
    lecture_hours = sum((lec.hours or 0) for lec in report.lecturers)
    if report.total_hours is not None and lecture_hours > report.total_hours:
        notes.append(f"授课学时合计 {fmt_credits(lecture_hours)} 超过总学时 {fmt_credits(report.total_hours)}。")
    if report.trainees_count is not None and imported and report.trainees_count != imported:
        notes.append(f"培训人数 {report.trainees_count} 与导入的授分名单 {imported} 人不一致。")
    return notes


def report_dicts(session: Session, principal: Principal, reports: list[ExecutionReport]) -> list[dict[str, Any]]:
    """report_dict of a page of reports, their award lists and 办理记录 read for the page at once (two queries per
    report otherwise)."""
    sources = {(a.offering_id, a.institution_id): a for a in session.scalars(
        select(AwardedList).where(AwardedList.offering_id.in_({r.offering_id for r in reports})))} if reports else {}
    histories = histories_of(session, states.OBJECT, [r.id for r in reports])
    return [report_dict(session, principal, r, sources.get((r.offering_id, r.institution_id)), histories[r.id])
            for r in reports]


def report_dict(session: Session, principal: Principal, report: ExecutionReport,
                source: AwardedList | None = _UNREAD, history: list[Any] | None = None) -> dict[str, Any]:
    offering = report.offering
    filing = offering.filing
    assert filing is not None
    owner = principal.role == "institution" and principal.institution_id == report.institution_id
    return {
        "id": report.id, "offering": offering_info(offering, filing, offering.project, report),
        "state": report.state, "state_label": states.LABELS[report.state], "version": report.version,
        "editable": report.state in states.EDITABLE,
        "facts": {"actual_starts_on": report.actual_starts_on, "actual_ends_on": report.actual_ends_on,
                  "venue": report.venue, "mode": report.mode, "trainees_count": report.trainees_count,
                  "total_hours": report.total_hours, "organiser": report.organiser,
                  "contact_person": report.contact_person,
                  "contact_phone": report.contact_phone if owner else report.contact_phone_masked},
        "lecturers": [{"name": lec.name, "title": lec.title, "unit": lec.unit, "topic": lec.topic,
                       "hours": lec.hours} for lec in report.lecturers],
        "uploads": [upload_dict(report, u) for u in report.uploads],
        "attendance": (attendance := attendance_dict(session, report, source)),
        "checks": cross_checks(report, filing, offering.project, attendance["count"] if attendance["imported_at"]
                               else None),
        "materials": [{"title": m.title, "editor": m.editor, "publisher": m.publisher, "year": m.year}
                      for m in report.materials],
        "summary": report.summary, "missing": missing_by_page(session, report) if report.state in states.EDITABLE
        else [], "return_reason": report.return_reason, "created_at": report.created_at,
        "submitted_at": report.submitted_at, "submitted_late": submitted_late(filing, report),
        "decided_at": report.decided_at,
        "history": history if history is not None else history_of(session, states.OBJECT, report.id),
    }

