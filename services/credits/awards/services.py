"""授分, one place for every rule (pages and JSON API call these; they flush, the view commits once).

Flow (guide §三): 考勤分析 on the windows that had QR check-in (each range at most the window's own start to
end) → 确定 saves the analysis → 有效人员明细 → 筛选授分人员 (untick with a reason, audit-logged) → 活动日期
(default: the offering's last day) → 授分. Granting again adds only valid attendees without an award; the
database holds one award per trainee per offering whatever the method. 手工录入学分 stores awards marked
manual, which are never valid credit. Every change of the award list emits ``credits.granted`` with the
offering's whole current list, so projects' copy is replaced, never merged.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field, replace
from typing import Any

from openpyxl import Workbook
from sqlalchemy import case, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from services.common import clock, pii
from services.common.audit import record_audit
from services.common.auth import Principal, own_institution
from services.common.db import insert_for, savepoint
from services.common.errors import AppError
from services.common.events import emit
from services.common.paging import matches
from services.common.sheets import text_row

from ..accounts.models import TraineeAccount
from ..accounts.services import ensure_account
from ..analysis import Attendee, Rule, WindowPick, describe, valid_attendees
from ..attendance.models import ActivityWindow, AttendanceRecord
from ..audit import AuditLog
from ..db import outbox
from ..offerings.models import OfferingCredit
from .handlers import effective_payload
from .models import METHODS, STATES, AttendanceAnalysis, AwardExclusion, CreditAward

MANUAL_WARNING = "请勿选择手工录入学分，手工录入学分为非有效学分。"


# ---- loading ------------------------------------------------------------------------------------

def get_offering(session: Session, principal: Principal, offering_id: int) -> OfferingCredit:
    row = session.scalars(select(OfferingCredit).where(OfferingCredit.offering_id == offering_id)).first()
    if row is None:
        raise AppError(404, "not_found", "该期次不存在，或其审批消息尚未送达学分系统。")
    own_institution(principal, row.institution_id, "该期次不存在，或其审批消息尚未送达学分系统。")
    return row


def get_award(session: Session, principal: Principal, award_id: int) -> CreditAward:
    award = session.get(CreditAward, award_id)
    if award is None:
        raise AppError(404, "not_found", "该授分记录不存在。")
    own_institution(principal, award.institution_id, "该授分记录不存在。")
    return award


def offering_query(principal: Principal, q: str | None = None, year: int | None = None) -> Select[Any]:
    """The offerings a principal may grant (institution: its own) or look at (committee: all), with the
    number of current awards and whether an analysis was saved, newest first."""
    awards = (select(func.count()).where(CreditAward.offering_id == OfferingCredit.offering_id,
                                         CreditAward.state != "withdrawn")
              .correlate(OfferingCredit).scalar_subquery())
    manual = (select(func.count()).where(CreditAward.offering_id == OfferingCredit.offering_id,
                                         CreditAward.state != "withdrawn", CreditAward.method == "manual")
              .correlate(OfferingCredit).scalar_subquery())
    analysed = (select(func.count()).where(AttendanceAnalysis.offering_id == OfferingCredit.offering_id)
                .correlate(OfferingCredit).scalar_subquery())
    stmt = select(OfferingCredit, awards.label("award_count"), analysed.label("analysis_count"),
                  manual.label("manual_count"))
    if principal.role == "institution":
        stmt = stmt.where(OfferingCredit.institution_id == principal.institution_id)
    if q:
        stmt = stmt.where(matches(q, OfferingCredit.project_number, OfferingCredit.project_title,
                                  OfferingCredit.institution_name))
    if year:
        stmt = stmt.where(OfferingCredit.year == year)
    return stmt.order_by(OfferingCredit.starts_on.desc(), OfferingCredit.offering_id.desc())


# why a cancelled 期 takes no more 授分 (the pages say it beside the offering as well, from OfferingCredit)
NOT_HELD = {"institution": "本期已取消举办，不能再授分或手工录入学分；已有的授分不会生效，如需清理可撤销。",
            "committee": "本期已被继续医学教育委员会标记为未举办，不能再授分或手工录入学分；已有的授分不会生效，"
                         "如需清理可撤销。"}


def ensure_held(offering: OfferingCredit) -> None:
    """One rule for every step that leads to or makes an award (考勤分析's 确定, 筛选授分人员, 授分, 恢复授分, 手工录入,
    更正活动日期): not for a cancelled 期, whose awards can never take effect. 撤销 stays possible (ensure_open)."""
    if offering.cancelled:
        raise AppError(409, "offering_cancelled", NOT_HELD[offering.cancelled_by or "institution"])


def can_grant(offering: OfferingCredit) -> bool:
    """What the pages ask before offering 授分 and its steps: the same rule as ensure_grantable."""
    return not offering.cancelled and not offering.awards_locked


def ensure_grantable(offering: OfferingCredit) -> None:
    ensure_held(offering)
    ensure_open(offering)


def ensure_open(offering: OfferingCredit) -> None:
    """One rule for every change of the award list: not while the execution report is submitted or approved."""
    if offering.report_state == "approved":
        raise AppError(409, "report_approved", "执行情况反馈已审核通过，授分已生效，不能再修改授分名单。")
    if offering.report_state == "submitted":
        raise AppError(409, "report_submitted",
                       "执行情况反馈已提交，授分名单已锁定；如需修改，请待继续医学教育委员会退回后再操作。")


def grant_status(award_count: int, analysis_count: int, report_state: str = "none", manual_count: int = 0,
                 cancelled_text: str = "") -> str:
    if cancelled_text:  # OfferingCredit.cancelled_text: the state with its reason; nothing granted takes effect
        return cancelled_text + (f"；已有授分 {award_count} 人，不会生效" if award_count else "")
    if report_state == "approved":
        # a 手工录入 never takes effect: counting it among the effective would overstate the valid credit
        extra = f"；手工录入 {manual_count} 人为非有效学分，不生效" if manual_count else ""
        return f"执行情况反馈已审核通过，授分已生效（{award_count - manual_count} 人{extra}）"
    manual = f"，含手工录入 {manual_count} 人（非有效学分）" if manual_count else ""
    if report_state == "submitted":
        return f"执行情况反馈已提交，授分名单已锁定（{award_count} 人{manual}）"
    if award_count:
        return f"已授分 {award_count} 人{manual}"
    return "已完成考勤分析，未授分" if analysis_count else "未授分"


# ---- windows and analysis -----------------------------------------------------------------------

@dataclass(frozen=True)
class WindowInfo:
    """A window (刷卡周期) as credits knows it: from its copies of the check-ins (scans > 0) or its copy of the
    window alone (scans == 0: nobody scanned in it)."""

    window_id: int
    kind: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    scans: int
    forced: int
    title: str | None = None  # the 标题 checkin gave it; None while only copies from older events are held

    @property
    def kind_label(self) -> str:
        return "签到" if self.kind == "sign_in" else "签退"

    @property
    def time_label(self) -> str:
        return f"{clock.fmt(self.starts_at)} 至 {clock.fmt(self.ends_at, '%H:%M')}（{self.kind_label}）"

    @property
    def label(self) -> str:
        """How every credits page and message names the window: its 标题 beside its time and kind, as the office
        named it in checkin ("第一天上午 签到 · 2026-11-27 08:00 至 08:30（签到）"); the time alone if unknown."""
        return f"{self.title} · {self.time_label}" if self.title else self.time_label


def windows_of(session: Session, offering_id: int) -> list[WindowInfo]:
    """The offering's windows with their scans: those of the check-in copies, and those credits' copy of the windows
    (activity_windows) knows of without a scan, listed with 0, so 考勤分析 shows the office every window it knows."""
    r = AttendanceRecord
    # every copy of a window carries the same title (checkin.window_changed renames them all); max() skips the
    # copies made from events that had none
    rows = session.execute(
        select(r.window_id, func.max(r.window_kind), func.min(r.window_starts_at), func.max(r.window_ends_at),
               func.count(), func.sum(case((r.forced.is_(True), 1), else_=0)), func.max(r.window_title))
        .where(r.offering_id == offering_id).group_by(r.window_id)).all()
    infos = {w: WindowInfo(w, kind, s, e, n, int(f or 0), title) for w, kind, s, e, n, f, title in rows}
    # a window deleted in checkin is not offered (it has no check-in copies: one with scans cannot be deleted)
    for known in session.scalars(select(ActivityWindow).where(ActivityWindow.offering_id == offering_id,
                                                              ActivityWindow.deleted_at.is_(None))):
        if known.window_id not in infos:
            infos[known.window_id] = WindowInfo(known.window_id, known.kind, known.starts_at, known.ends_at, 0, 0,
                                                known.title)
        elif infos[known.window_id].title is None and known.title:
            infos[known.window_id] = replace(infos[known.window_id], title=known.title)
    return sorted(infos.values(), key=lambda i: (i.starts_at, i.window_id))


def activity_id_of(session: Session, offering_id: int) -> int | None:
    return session.scalar(select(AttendanceRecord.activity_id).where(AttendanceRecord.offering_id == offering_id)
                          .limit(1))


@dataclass
class AnalysisInput:
    """What the institution ticked: windows with ranges, the rule, and whether forced check-ins count."""

    picks: list[WindowPick]
    rule: Rule
    include_forced: bool = False


def check_input(windows: list[WindowInfo], data: dict[str, Any]) -> AnalysisInput:
    """Turn the loaded form/JSON (schemas.AnalysisSchema) into an analysis, refusing what cannot be meant."""
    known = {w.window_id: w for w in windows}
    picks: list[WindowPick] = []
    errors: dict[str, str] = {}
    for item in data["windows"]:
        info = known.get(item["window_id"])
        if info is None:
            errors["windows"] = "所选刷卡周期不属于本活动、已在二维码考勤中删除，或学分系统尚未收到该刷卡周期。"
            continue
        start, end = item.get("from_ts") or info.starts_at, item.get("to_ts") or info.ends_at
        if start < info.starts_at or end > info.ends_at:
            errors["windows"] = f"刷卡周期 {info.label} 的时间范围只能在周期的开始与结束时间之内。"
        elif start > end:
            errors["windows"] = f"刷卡周期 {info.label} 的结束时间早于开始时间。"
        picks.append(WindowPick(info.window_id, start, end))
    if len({p.window_id for p in picks}) != len(picks):
        errors["windows"] = "同一刷卡周期只能勾选一次。"
    if not picks and "windows" not in errors:
        errors["windows"] = "请至少勾选一个刷卡周期。"
    mode, n = data["rule_mode"], data.get("rule_n")
    if mode == "at_least":
        if not n:
            errors["rule_n"] = "请填写至少需要签到的刷卡周期数。"
        elif n > len(picks):
            errors["rule_n"] = f"至少签到的周期数（{n}）不能多于所选刷卡周期数（{len(picks)}）。"
    if errors:
        raise AppError(422, "invalid_input", "考勤分析条件有误，请修改后重试。", errors)
    rule = Rule("all", None, data["pairs_required"]) if mode == "all" else Rule("at_least", n, data["pairs_required"])
    return AnalysisInput(picks, rule, data["include_forced"])


def run(session: Session, offering_id: int, inp: AnalysisInput) -> list[Attendee]:
    activity_id = activity_id_of(session, offering_id)
    if activity_id is None:
        return []
    return valid_attendees(session, activity_id, inp.picks, inp.rule, inp.include_forced)


def short_of_rule(session: Session, offering_id: int, inp: AnalysisInput, valid: set[str]) -> list[Attendee]:
    """Who checked in within the ticked ranges but does not meet the rule, with the windows they did meet (the
    office's "why did she get no credit?"): the same analysis asking for one window instead of the rule's."""
    activity_id = activity_id_of(session, offering_id)
    if activity_id is None:
        return []
    anyone = valid_attendees(session, activity_id, inp.picks, Rule("at_least", 1, inp.rule.pairs_required),
                             inp.include_forced)
    return sorted((a for a in anyone if a.trainee_key not in valid), key=lambda a: (-a.windows_met, a.name))


def save_analysis(session: Session, principal: Principal, offering: OfferingCredit,
                  inp: AnalysisInput) -> tuple[AttendanceAnalysis, list[Attendee]]:
    """确定: keep the analysis (the latest one is what 授分 uses); returns it with the valid attendees it found."""
    ensure_grantable(offering)
    activity_id = activity_id_of(session, offering.offering_id)
    if activity_id is None:
        raise AppError(409, "no_checkins", "本期次尚无二维码考勤记录，无法进行考勤分析。")
    valid = valid_attendees(session, activity_id, inp.picks, inp.rule, inp.include_forced)
    row = AttendanceAnalysis(
        offering_id=offering.offering_id, activity_id=activity_id, institution_id=offering.institution_id,
        windows=[{"window_id": p.window_id, "from_ts": p.from_ts.isoformat(), "to_ts": p.to_ts.isoformat()}
                 for p in inp.picks],
        rule_mode=inp.rule.mode, rule_n=inp.rule.n, pairs_required=inp.rule.pairs_required,
        include_forced=inp.include_forced, valid_count=len(valid), created_at=clock.now(),
        created_by=principal.describe())
    session.add(row)
    session.flush()
    record_audit(session, AuditLog, principal, "offering", offering.offering_id, "analyse",
                 reason=f"{rule_text(row)}；有效人员 {len(valid)} 人")
    return row, valid


def latest_analysis(session: Session, offering_id: int) -> AttendanceAnalysis | None:
    return session.scalars(select(AttendanceAnalysis).where(AttendanceAnalysis.offering_id == offering_id)
                           .order_by(AttendanceAnalysis.id.desc()).limit(1)).first()


def input_of(analysis: AttendanceAnalysis) -> AnalysisInput:
    picks = [WindowPick(w["window_id"], dt.datetime.fromisoformat(w["from_ts"]), dt.datetime.fromisoformat(w["to_ts"]))
             for w in analysis.windows]
    rule = Rule(analysis.rule_mode, analysis.rule_n, analysis.pairs_required)  # type: ignore[arg-type]
    return AnalysisInput(picks, rule, analysis.include_forced)


def windows_changed_since(analysis: AttendanceAnalysis, windows: list[WindowInfo]) -> list[WindowInfo]:
    """The windows whose times were edited (checkin.window_changed) so that the saved analysis's range for them
    reaches outside them: its valid list still counts scans the window no longer holds (the office's walk)."""
    now = {w.window_id: w for w in windows}
    return [now[p.window_id] for p in input_of(analysis).picks if p.window_id in now
            and (p.from_ts < now[p.window_id].starts_at or p.to_ts > now[p.window_id].ends_at)]


def rule_text(analysis: AttendanceAnalysis) -> str:
    inp = input_of(analysis)
    text = describe(inp.rule, len(inp.picks))
    return text + ("；含代签（强制签到）记录" if inp.include_forced else "；不含代签（强制签到）记录")


# ---- 有效人员明细 and 筛选授分人员 ------------------------------------------------------------------

@dataclass
class AttendeeRow:
    trainee_key: str
    name: str
    id_masked: str
    title: str
    unit: str
    scans: dict[int, dt.datetime]
    status: str  # "to_grant" | "granted" | "withdrawn" | "excluded"
    award_id: int | None = None
    exclusion_reason: str | None = None
    award_method: str | None = None
    forced: frozenset[int] = frozenset()  # the windows whose check-in was a 代签
    other_wechat: frozenset[int] = frozenset()  # the windows whose check-in came from another WeChat account

    @property
    def status_label(self) -> str:
        return {"to_grant": "待授分", "granted": "已授分", "withdrawn": "已撤销", "excluded": "已排除"}[self.status]


@dataclass
class Person:
    id_enc: str
    mobile_enc: str | None
    title: str
    unit: str
    # the name on her account: a check-in carries the name typed at the scan, and the committee's 更正姓名
    # corrects the account (and the awards made so far); lists and awards made later take the corrected one
    account_name: str | None = None

    def name_or(self, scanned: str) -> str:
        return self.account_name or scanned


def people(session: Session, offering_id: int, keys: list[str] | None = None) -> dict[str, Person]:
    """Identity details of the offering's checked-in trainees (one query; the latest check-in's values, and the
    name on the trainee's account)."""
    r = AttendanceRecord
    stmt = (select(r.trainee_key, r.id_enc, r.mobile_enc, r.title, r.unit, TraineeAccount.name)
            .outerjoin(TraineeAccount, TraineeAccount.trainee_key == r.trainee_key)
            .where(r.offering_id == offering_id).order_by(r.trainee_key, r.scanned_at))
    if keys is not None and len(keys) <= 1000:
        stmt = stmt.where(r.trainee_key.in_(keys))
    result: dict[str, Person] = {}
    for key, id_enc, mobile_enc, title, unit, name in session.execute(stmt):
        result[key] = Person(id_enc, mobile_enc or None, title, unit, name)  # later scans overwrite earlier
    return result


# What stops another award of the trainee for the offering (授分, 手工录入, 筛选授分人员): a current award, or an
# attendance award the institution withdrew (a decision on her attendance, which the next 授分 must not undo).
# A withdrawn 手工录入 stops nothing: it is how an institution makes way for the valid credit her attendance earns.
BLOCKS = or_(CreditAward.state != "withdrawn", CreditAward.method == "attendance")


def attendee_rows(session: Session, offering: OfferingCredit, analysis: AttendanceAnalysis) -> list[AttendeeRow]:
    attendees = run(session, offering.offering_id, input_of(analysis))
    keys = [a.trainee_key for a in attendees]
    who = people(session, offering.offering_id, keys)
    awards = {}
    withdrawn_last = case((CreditAward.state == "withdrawn", 0), else_=1)
    for award in session.scalars(select(CreditAward).where(CreditAward.offering_id == offering.offering_id, BLOCKS)
                                 .order_by(withdrawn_last, CreditAward.id)):
        awards[award.trainee_key] = award  # the current award wins over a withdrawn one
    excluded = dict(session.execute(select(AwardExclusion.trainee_key, AwardExclusion.reason)
                                    .where(AwardExclusion.offering_id == offering.offering_id)).all())
    # a 代签 counts only when the analysis includes them; then each one is marked where it counted
    forced = forced_checkins(session, offering.offering_id) if analysis.include_forced else {}
    other = other_wechat_checkins(session, offering.offering_id)
    rows = []
    for a in attendees:
        p = who.get(a.trainee_key)
        award = awards.get(a.trainee_key)
        if award is not None:
            status = "withdrawn" if award.state == "withdrawn" else "granted"
        else:
            status = "excluded" if a.trainee_key in excluded else "to_grant"
        rows.append(AttendeeRow(
            a.trainee_key, p.name_or(a.name) if p else a.name, pii.masked(p.id_enc) if p else "****",
            p.title if p else "", p.unit if p else "",
            a.scans, status, award.id if award else None, excluded.get(a.trainee_key),
            award.method if award else None, frozenset(forced.get(a.trainee_key, ())),
            frozenset(other.get(a.trainee_key, ()))))
    return rows


def granted_outside(session: Session, offering_id: int, rows: list[AttendeeRow]) -> list[str]:
    """The names of current awards by attendance whose trainee the latest analysis no longer finds valid (it
    was narrowed after 授分): the office must see them, and withdraw them if the new analysis is right."""
    valid = {r.trainee_key for r in rows}
    return [a.name for a in session.scalars(
        select(CreditAward).where(CreditAward.offering_id == offering_id, CreditAward.method == "attendance",
                                  CreditAward.state != "withdrawn").order_by(CreditAward.name))
            if a.trainee_key not in valid]


def exclude(session: Session, principal: Principal, offering: OfferingCredit, trainee_key: str, reason: str) -> str:
    """筛选授分人员: untick one valid attendee (not yet granted); the reason goes to the audit log too."""
    ensure_grantable(offering)
    # the name on her account (更正姓名), as her row shows it; else the one typed at her scan
    name = session.scalar(select(func.coalesce(TraineeAccount.name, AttendanceRecord.name))
                          .select_from(AttendanceRecord)
                          .outerjoin(TraineeAccount, TraineeAccount.trainee_key == AttendanceRecord.trainee_key)
                          .where(AttendanceRecord.offering_id == offering.offering_id,
                                 AttendanceRecord.trainee_key == trainee_key).limit(1))
    if name is None:
        raise AppError(404, "not_found", "本期次的考勤记录中没有该学员。")
    if session.scalar(select(CreditAward.id).where(CreditAward.offering_id == offering.offering_id,
                                                   CreditAward.trainee_key == trainee_key, BLOCKS)) is not None:
        raise AppError(409, "already_granted", f"{name} 已授分，如需取消请在授分名单中撤销。")
    stmt = insert_for(session, AwardExclusion).values(
        offering_id=offering.offering_id, trainee_key=trainee_key, reason=reason, created_at=clock.now(),
        created_by=principal.describe())
    session.execute(stmt.on_conflict_do_update(index_elements=["offering_id", "trainee_key"],
                                               set_={"reason": reason, "created_by": principal.describe()}))
    record_audit(session, AuditLog, principal, "offering", offering.offering_id, "exclude",
                 reason=f"{name}：{reason}")
    return name


def include_again(session: Session, principal: Principal, offering: OfferingCredit, trainee_key: str) -> None:
    ensure_grantable(offering)
    row = session.scalars(select(AwardExclusion).where(AwardExclusion.offering_id == offering.offering_id,
                                                       AwardExclusion.trainee_key == trainee_key)).first()
    if row is None:
        raise AppError(404, "not_found", "该学员未被排除。")
    session.delete(row)
    record_audit(session, AuditLog, principal, "offering", offering.offering_id, "include",
                 reason=f"恢复授分（原排除原因：{row.reason}）")


# ---- 授分 -----------------------------------------------------------------------------------------

@dataclass
class GrantResult:
    added: int = 0
    already: int = 0
    excluded: int = 0
    withdrawn: int = 0  # an attendance award the institution withdrew: the next 授分 does not undo it
    names: list[str] = field(default_factory=list)


def _check_activity_date(offering: OfferingCredit, activity_date: dt.date) -> None:
    if not offering.starts_on <= activity_date <= offering.ends_on:
        raise AppError(422, "invalid_input", "活动日期须在本期次举办日期之内。",
                       {"activity_date": f"请选择 {offering.starts_on} 至 {offering.ends_on} 之间的日期。"})


def _award_values(offering: OfferingCredit, principal: Principal, activity_date: dt.date,
                  method: str) -> dict[str, Any]:
    return {
        "offering_id": offering.offering_id, "institution_id": offering.institution_id,
        "project_number": offering.project_number, "project_title": offering.project_title,
        "institution_name": offering.institution_name, "credit_class": offering.credit_class,
        "credit_value": offering.credit_value, "offering_starts_on": offering.starts_on,
        "offering_ends_on": offering.ends_on, "activity_date": activity_date, "year": activity_date.year,
        "method": method, "state": "pending", "granted_at": clock.now(), "granted_by": principal.describe(),
        "version": 1,
    }


def grant(session: Session, principal: Principal, offering: OfferingCredit, activity_date: dt.date) -> GrantResult:
    """授分 from the latest saved analysis: every valid attendee not excluded and without an award yet."""
    ensure_grantable(offering)
    _check_activity_date(offering, activity_date)
    analysis = latest_analysis(session, offering.offering_id)
    if analysis is None:
        raise AppError(409, "no_analysis", "请先完成考勤分析（勾选刷卡周期，点击考勤分析后确定），再授分。")
    attendees = run(session, offering.offering_id, input_of(analysis))
    blocking = session.execute(select(CreditAward.trainee_key, CreditAward.state)
                               .where(CreditAward.offering_id == offering.offering_id, BLOCKS)).all()
    has_award = {key for key, _state in blocking}
    current = {key for key, state in blocking if state != "withdrawn"}  # a current award always blocks
    excluded = set(session.scalars(select(AwardExclusion.trainee_key)
                                   .where(AwardExclusion.offering_id == offering.offering_id)))
    result = GrantResult()
    new = []
    for a in attendees:
        if a.trainee_key in current:
            result.already += 1
        elif a.trainee_key in has_award:
            result.withdrawn += 1
        elif a.trainee_key in excluded:
            result.excluded += 1
        else:
            new.append(a)
    who = people(session, offering.offering_id, [a.trainee_key for a in new])
    base = _award_values(offering, principal, activity_date, "attendance")
    rows = []
    for a in new:
        p = who[a.trainee_key]
        rows.append({**base, "trainee_key": a.trainee_key, "name": p.name_or(a.name), "id_enc": p.id_enc,
                     "mobile_enc": p.mobile_enc, "title": p.title, "unit": p.unit, "analysis_id": analysis.id})
    inserted: set[str] = set()
    if rows:
        # a concurrent 授分 of the same offering (double click, two clerks) inserts nobody twice
        stmt = insert_for(session, CreditAward).on_conflict_do_nothing(
            # the index's own predicate as text: a bound parameter in its place is not matched to the partial
            # index by PostgreSQL for executemany's prepared statement ("no unique constraint matching")
            index_elements=["offering_id", "trainee_key"], index_where=text("state != 'withdrawn'"))
        for start in range(0, len(rows), 1000):
            # RETURNING names who this 授分 granted: those another clerk's 授分 took meanwhile were already granted
            inserted.update(session.scalars(stmt.returning(CreditAward.trainee_key), rows[start:start + 1000]))
    result.added = len(inserted)
    result.already += len(rows) - len(inserted)
    result.names = [row["name"] for row in rows if row["trainee_key"] in inserted]
    record_audit(session, AuditLog, principal, "offering", offering.offering_id, "grant",
                 reason=f"根据会场考勤授分 {result.added} 人（活动日期 {activity_date}；已授分 {result.already} 人，"
                        f"排除 {result.excluded} 人"
                        + (f"，已撤销 {result.withdrawn} 人" if result.withdrawn else "") + "）")
    emit_granted(session, offering)
    return result


def correct_activity_date(session: Session, principal: Principal, offering: OfferingCredit, activity_date: dt.date,
                          reason: str) -> int:
    """更正活动日期: a wrong day chosen at 授分 was for good (恢复授分 brings the old day back); every pending award
    of the offering takes the day chosen now, while the report is open. Returns how many changed."""
    ensure_grantable(offering)
    _check_activity_date(offering, activity_date)
    if session.scalar(select(CreditAward.id).where(CreditAward.offering_id == offering.offering_id,
                                                   CreditAward.state == "pending").limit(1)) is None:
        raise AppError(409, "nothing_pending", "本期次没有待生效的授分记录，无需更正活动日期。")
    changed = session.execute(update(CreditAward).where(
        CreditAward.offering_id == offering.offering_id, CreditAward.state == "pending",
        CreditAward.activity_date != activity_date)
        # the year the credit counts for is the day's (an offering over New Year moved to 31 December counts in
        # that year's 达标情况); an open 撤销 form is now stale
        .values(activity_date=activity_date, year=activity_date.year, version=CreditAward.version + 1)
        .execution_options(synchronize_session=False)).rowcount or 0
    if not changed:
        raise AppError(409, "unchanged", f"待生效的授分记录的活动日期均已是 {activity_date}，无需更正。")
    record_audit(session, AuditLog, principal, "offering", offering.offering_id, "activity_date",
                 reason=f"更正活动日期为 {activity_date}（{changed} 条授分记录）：{reason}")
    emit_granted(session, offering)
    return changed


NAME_MISMATCH = "该身份证号码已登记的姓名与填写的姓名不一致，请核对姓名和身份证号码。"


def manual_entry(session: Session, principal: Principal, offering: OfferingCredit, data: dict[str, Any]) -> CreditAward:
    """手工录入学分: stored and shown as 非有效学分; it never counts and never becomes effective."""
    ensure_grantable(offering)
    _check_activity_date(offering, data["activity_date"])
    id_number: str = data["id_number"]
    key = pii.id_hash(id_number)
    if session.scalar(select(CreditAward.id).where(CreditAward.offering_id == offering.offering_id,
                                                   CreditAward.trainee_key == key, BLOCKS)) is not None:
        raise AppError(409, "already_granted", "该学员本期次已有授分记录，不能重复录入。",
                       {"id_number": "该学员本期次已有授分记录。"})
    known = session.scalar(select(TraineeAccount.name).where(TraineeAccount.trainee_key == key))
    if known is not None and known != data["name"]:
        # the account's name is the trainee's own (her first check-in): another name is a typo or another person
        raise AppError(422, "name_mismatch", NAME_MISMATCH, {"name": NAME_MISMATCH, "id_number": NAME_MISMATCH})
    id_enc = pii.encrypt(id_number)
    mobile = data.get("mobile") or None
    mobile_enc = pii.encrypt(mobile) if mobile else None
    award = CreditAward(**_award_values(offering, principal, data["activity_date"], "manual"), trainee_key=key,
                        name=data["name"], id_enc=id_enc, mobile_enc=mobile_enc, title=data.get("title") or "",
                        unit=data.get("unit") or "")
    session.add(award)
    session.flush()
    ensure_account(session, key, id_enc, data["name"], mobile_enc, pii.mobile_hash(mobile) if mobile else None)
    record_audit(session, AuditLog, principal, "award", award.id, "manual_entry", to_state="pending",
                 reason=f"手工录入学分（非有效学分）：{award.name}")
    emit_granted(session, offering)
    return award


def withdraw(session: Session, principal: Principal, award: CreditAward, reason: str) -> CreditAward:
    """撤销 an award with a reason. The institution: a pending award while the offering's report is not
    submitted. The committee: any award not withdrawn yet, effective ones included (a certificate made of
    it is then revoked for good; restore() gives the credit back as a new award with a new certificate).
    credits.withdrawn tells certs; credits.granted the new list."""
    if award.state == "withdrawn":
        raise AppError(409, "not_withdrawable", "该授分记录已撤销，无需再次撤销。")
    offering = session.scalars(select(OfferingCredit).where(OfferingCredit.offering_id == award.offering_id)).one()
    if principal.role != "reviewer":
        if award.state != "pending":
            raise AppError(409, "not_withdrawable",
                           f"该授分记录{STATES[award.state]}，不能撤销；如确需撤销，请联系继续医学教育委员会。")
        ensure_open(offering)
    before = award.state
    award.state, award.withdrawn_at, award.withdraw_reason = "withdrawn", clock.now(), reason
    session.flush()
    record_audit(session, AuditLog, principal, "award", award.id, "withdraw", before, "withdrawn",
                 reason=f"{award.name}：{reason}")
    emit(session, outbox, "credits", "credits.withdrawn", {"award_id": award.id, "offering_id": award.offering_id,
                                                           "withdrawn_at": award.withdrawn_at, "reason": reason})
    emit_granted(session, offering)
    return award


def regrant(session: Session, principal: Principal, award: CreditAward, reason: str) -> CreditAward:
    """恢复授分: an award by attendance withdrawn by mistake is granted again, as a new pending award, if the
    latest analysis still finds her valid (a withdrawn attendance award otherwise stops every later 授分, so
    that a 授分 never undoes a withdrawal by itself). The withdrawn award stays as history."""
    offering = session.scalars(select(OfferingCredit).where(OfferingCredit.offering_id == award.offering_id)).one()
    ensure_grantable(offering)
    if award.method != "attendance" or award.state != "withdrawn":
        raise AppError(409, "not_regrantable", "只有已撤销的“根据会场考勤授分”记录可以恢复授分。")
    if session.scalar(select(CreditAward.id).where(CreditAward.offering_id == award.offering_id,
                                                   CreditAward.trainee_key == award.trainee_key,
                                                   CreditAward.state != "withdrawn")) is not None:
        raise AppError(409, "already_granted", f"{award.name} 本期次已有授分记录，无需恢复。")
    analysis = latest_analysis(session, offering.offering_id)
    valid = {a.trainee_key for a in run(session, offering.offering_id, input_of(analysis))} if analysis else set()
    if award.trainee_key not in valid:
        raise AppError(409, "not_valid_now", f"按当前保存的考勤分析，{award.name} 不是有效人员，不能恢复授分。")
    # the day the offering's other pending awards now carry (an 更正活动日期 after the withdrawal), else her own
    days = set(session.scalars(select(CreditAward.activity_date).where(
        CreditAward.offering_id == award.offering_id, CreditAward.state == "pending").distinct()))
    day = days.pop() if len(days) == 1 else award.activity_date
    again = CreditAward(**_award_values(offering, principal, day, "attendance"),
                        trainee_key=award.trainee_key, name=award.name, id_enc=award.id_enc,
                        mobile_enc=award.mobile_enc, title=award.title, unit=award.unit, analysis_id=analysis.id)
    session.add(again)
    session.flush()
    record_audit(session, AuditLog, principal, "award", again.id, "regrant", "withdrawn", "pending",
                 reason=f"{award.name}：{reason}（恢复已撤销的授分记录 {award.id}）")
    emit_granted(session, offering)
    return again


RESTORE_ONLY = "只有已生效后被撤销的“根据会场考勤授分”记录可以恢复。"


def restore_refusal(award: CreditAward, offering: OfferingCredit, has_current: bool) -> AppError | None:
    """Why the committee cannot 恢复 this award now, or None: the one rule of restore() and of the 恢复 button."""
    # effective_at stays on an award the committee withdrew after it took effect (effective_has_time); a pending
    # award never had one, and its mistaken withdrawal is the office's 恢复授分 while the report is open
    if award.method != "attendance" or award.state != "withdrawn" or award.effective_at is None:
        return AppError(409, "not_restorable", RESTORE_ONLY)
    if offering.cancelled:
        # as ensure_held: a 期 not held has no credit to give back
        said = offering.cancelled_text().removeprefix("本期")
        return AppError(409, "offering_cancelled", f"该期次{said}，不能恢复授分。")
    if has_current:
        return AppError(409, "already_granted", f"{award.name} 本期次已有授分记录，不能恢复。")
    return None


def current_trainees(session: Session, offering_id: int) -> set[str]:
    """The trainees holding an award (not withdrawn) of the offering."""
    return set(session.scalars(select(CreditAward.trainee_key).where(CreditAward.offering_id == offering_id,
                                                                     CreditAward.state != "withdrawn")))


def restore(session: Session, principal: Principal, award: CreditAward, reason: str) -> CreditAward:
    """恢复 (the committee only): an effective award it withdrew by mistake takes effect again as a NEW award, effective
    now, with the withdrawn one's trainee and values; the withdrawn one stays as history, and its certificate stays
    revoked (its number never verifies again). credits.effective gives certs the new award (a new certificate, with
    a new number, at its next export); credits.granted gives projects the list."""
    if principal.role != "reviewer":
        raise AppError(403, "forbidden", "只有继续医学教育委员会可以恢复已生效的授分。")
    offering = session.scalars(select(OfferingCredit).where(OfferingCredit.offering_id == award.offering_id)).one()
    refusal = restore_refusal(award, offering, award.trainee_key in current_trainees(session, award.offering_id))
    if refusal is not None:
        raise refusal
    now = clock.now()
    again = CreditAward(
        offering_id=award.offering_id, institution_id=award.institution_id, trainee_key=award.trainee_key,
        name=award.name, id_enc=award.id_enc, mobile_enc=award.mobile_enc, title=award.title, unit=award.unit,
        project_number=award.project_number, project_title=award.project_title,
        institution_name=award.institution_name, credit_class=award.credit_class, credit_value=award.credit_value,
        offering_starts_on=award.offering_starts_on, offering_ends_on=award.offering_ends_on,
        activity_date=award.activity_date, year=award.year, method="attendance", state="effective",
        analysis_id=award.analysis_id, granted_at=now, granted_by=principal.describe(), effective_at=now, version=1,
        restored_from=award.id)
    try:
        with savepoint(session):  # a second clerk at the same moment: the row's own refusal, not a conflict
            session.add(again)
            session.flush()
    except IntegrityError:
        raise AppError(409, "already_granted", f"{award.name} 本期次已有授分记录，不能恢复。") from None
    record_audit(session, AuditLog, principal, "award", again.id, "restore", "withdrawn", "effective",
                 reason=f"{award.name}：{reason}（恢复已撤销的授分记录 {award.id}，新的学分证书）")
    emit(session, outbox, "credits", "credits.effective", effective_payload(session, offering))
    emit_granted(session, offering)
    return again


def rename_trainee(session: Session, trainee_key: str, name: str) -> int:
    """The committee corrected her name (学员账号): every award of hers takes it, the award lists of reports still
    open are sent again (the report's 导入 shows it), and certs is told, so her certificates show it too. Returns
    how many awards were renamed."""
    renamed = session.execute(
        update(CreditAward).where(CreditAward.trainee_key == trainee_key, CreditAward.name != name)
        .values(name=name, version=CreditAward.version + 1).returning(CreditAward.offering_id)
        .execution_options(synchronize_session="fetch")).scalars().all()
    open_offerings = session.scalars(select(OfferingCredit).where(
        OfferingCredit.offering_id.in_(set(renamed)), OfferingCredit.report_state.in_(("none", "returned")))
        .order_by(OfferingCredit.offering_id)).all()
    for offering in open_offerings:
        emit_granted(session, offering)
    emit(session, outbox, "credits", "credits.name_corrected", {"trainee_key": trainee_key, "name": name})
    return len(renamed)


def current_awards(session: Session, offering_id: int) -> list[CreditAward]:
    return list(session.scalars(select(CreditAward).where(CreditAward.offering_id == offering_id,
                                                          CreditAward.state != "withdrawn")
                                .order_by(CreditAward.id)))


def emit_granted(session: Session, offering: OfferingCredit) -> None:
    session.flush()
    forced = forced_checkins(session, offering.offering_id)
    awards = [{
        "award_id": a.id, "trainee_key": a.trainee_key, "name": a.name, "id_enc": a.id_enc, "title": a.title,
        "unit": a.unit, "credit_class": a.credit_class, "credit_value": a.credit_value,
        "activity_date": a.activity_date, "method": a.method, "state": a.state,
        "forced": len(forced.get(a.trainee_key, ())),
    } for a in current_awards(session, offering.offering_id)]
    emit(session, outbox, "credits", "credits.granted",
         {"offering_id": offering.offering_id, "institution_id": offering.institution_id, "awards": awards})


def award_order() -> tuple[Any, ...]:
    """授分名单's order, on the page, in its pages and in the Excel: current awards first, by method, then name."""
    return (case((CreditAward.state == "withdrawn", 1), else_=0), CreditAward.method, CreditAward.name,
            CreditAward.id)


def award_list(session: Session, offering_id: int) -> list[CreditAward]:
    """The whole list (the Excel, credits.granted's neighbours); a page of it is award_query's."""
    return list(session.scalars(select(CreditAward).where(CreditAward.offering_id == offering_id)
                                .order_by(*award_order())))


def award_query(offering_id: int, q: str | None = None) -> Select[Any]:
    """The awards of an offering a 授分名单 page shows, narrowed by a name typed in its search box (the name on the
    award, which a 更正姓名 renames too); paginate() orders it by award_order()."""
    stmt = select(CreditAward).where(CreditAward.offering_id == offering_id)
    return stmt.where(matches(q, CreditAward.name)) if q else stmt


def award_position(session: Session, offering_id: int, award_id: int, q: str | None = None) -> int | None:
    """The 0-based place of an award in the (searched) list, so a refused 撤销 is shown on the page holding its row."""
    ranked = award_query(offering_id, q).with_only_columns(
        CreditAward.id, func.row_number().over(order_by=award_order()).label("at")).subquery()
    at = session.scalar(select(ranked.c.at).where(ranked.c.id == award_id))
    return None if at is None else int(at) - 1


def award_counts(session: Session, offering_id: int) -> dict[str, int]:
    """The whole list's counts, kept above every page of it: all records, withdrawn, current (by attendance and
    manual) and pending (更正活动日期 is offered while one is)."""
    a = CreditAward
    current = a.state != "withdrawn"
    total, withdrawn, attendance, manual, pending = session.execute(
        select(func.count(), func.count().filter(a.state == "withdrawn"),
               func.count().filter(current, a.method == "attendance"),
               func.count().filter(current, a.method == "manual"),
               func.count().filter(a.state == "pending"))
        .where(a.offering_id == offering_id)).one()
    return {"total": total, "withdrawn": withdrawn, "current": total - withdrawn, "attendance": attendance,
            "manual": manual, "pending": pending}


def restored_by(session: Session, award_ids: list[int]) -> dict[int, CreditAward]:
    """withdrawn award id -> the award the committee's 恢复 made of it, for the rows of one page."""
    if not award_ids:
        return {}
    return {a.restored_from: a for a in session.scalars(select(CreditAward)
                                                        .where(CreditAward.restored_from.in_(award_ids)))
            if a.restored_from is not None}


def current_among(session: Session, offering_id: int, trainee_keys: set[str]) -> set[str]:
    """Which of these trainees hold a current (not withdrawn) award of the offering."""
    if not trainee_keys:
        return set()
    return set(session.scalars(select(CreditAward.trainee_key).where(
        CreditAward.offering_id == offering_id, CreditAward.state != "withdrawn",
        CreditAward.trainee_key.in_(trainee_keys))))


def state_label(award: CreditAward, offering: OfferingCredit | None = None) -> str:
    """待生效 / 已生效 / 已撤销; a 手工录入 (非有效学分) never becomes effective, so it never reads 待生效, nor does a
    pending award of a cancelled 期 (no execution report will be filed for it)."""
    if award.method == "manual" and award.state != "withdrawn":
        return "不生效（非有效学分）"
    if award.state == "pending" and offering is not None and offering.cancelled:
        return f"不会生效（{offering.cancelled_label}）"
    return STATES[award.state]


def forced_checkins(session: Session, offering_id: int) -> dict[str, set[int]]:
    """trainee_key -> the windows where her check-in was a 代签 (forced), for marking it on every list."""
    r = AttendanceRecord
    out: dict[str, set[int]] = {}
    for key, window_id in session.execute(select(r.trainee_key, r.window_id)
                                          .where(r.offering_id == offering_id, r.forced.is_(True))):
        out.setdefault(key, set()).add(window_id)
    return out


OTHER_WECHAT = "id_on_new_wechat"  # checkin's flag: made on a WeChat account bound beside the trainee's own


def other_wechat_checkins(session: Session, offering_id: int) -> dict[str, set[int]]:
    """trainee_key -> the windows where her check-in came from a WeChat account other than her own (a new phone,
    or someone scanning for her): the office sees it before 授分."""
    r = AttendanceRecord
    out: dict[str, set[int]] = {}
    for key, window_id, flags in session.execute(select(r.trainee_key, r.window_id, r.flags)
                                                 .where(r.offering_id == offering_id)):
        if OTHER_WECHAT in (flags or ()):
            out.setdefault(key, set()).add(window_id)
    return out


def method_label(award: CreditAward) -> str:
    return METHODS[award.method] + ("（非有效学分）" if award.method == "manual" else "")


def forced_text(window_ids: set[int], windows: dict[int, WindowInfo]) -> str:
    """The award list Excel's 代签 cell: how many, and in which 刷卡周期 (by its 标题 where credits knows it)."""
    named = [windows[w] for w in window_ids if w in windows]
    names = "、".join(w.label for w in sorted(named, key=lambda w: (w.starts_at, w.window_id)))
    return f"有（{len(window_ids)} 次{'：' + names if names else ''}）"


def export_xlsx(offering: OfferingCredit, awards: list[CreditAward], forced: dict[str, set[int]],
                windows: list[WindowInfo] | None = None) -> bytes:
    """The award list as the institution's office keeps it; ID numbers and mobiles masked; 代签 marked, with the
    刷卡周期 it was made in."""
    by_id = {w.window_id: w for w in windows or ()}
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("授分名单")
    # sized and its header kept in view, as the office reads it on screen before printing (set before any row:
    # a write-only sheet writes them first)
    for column, width in zip("ABCDEFGHIJKLMN", (6, 10, 22, 12, 28, 8, 6, 12, 14, 14, 18, 18, 24, 40), strict=True):
        ws.column_dimensions[column].width = width
    ws.freeze_panes = "A3"
    ws.append(text_row(ws, [f"{offering.project_number} {offering.project_title} {offering.seq_label}".rstrip()
                            + f"（{offering.starts_on} 至 {offering.ends_on}）"
                            + (f" {offering.cancelled_text()}，授分均不会生效" if offering.cancelled else "")]))
    ws.append(["序号", "姓名", "身份证号码", "职称", "单位", "学分类别", "学分", "活动日期", "授分方式", "是否有效学分",
               "状态", "授分时间", "撤销原因", "代签"])
    for i, a in enumerate(awards, 1):
        ws.append(text_row(ws, [i, a.name, pii.masked(a.id_enc), a.title, a.unit, a.credit_class,
                                float(a.credit_value), a.activity_date.isoformat(), METHODS[a.method],
                                "否（已撤销）" if a.state == "withdrawn" else
                                "否（手工录入）" if a.method == "manual" else
                                "否（" + offering.cancelled_label + "）" if offering.cancelled else "是",
                                state_label(a, offering),
                                clock.fmt(a.granted_at), a.withdraw_reason or "",
                                forced_text(forced[a.trainee_key], by_id) if a.trainee_key in forced else ""]))
    current = [a for a in awards if a.state != "withdrawn"]
    valid = sum(1 for a in current if a.method == "attendance")
    # the office reconciles the file against the page: the counts it shows, in the file's last row
    kind = "根据会场考勤授分（不会生效）" if offering.cancelled else "有效学分"
    ws.append(text_row(ws, [f"合计：{kind} {valid} 人；手工录入（非有效学分）{len(current) - valid} 人；"
                            f"已撤销 {len(awards) - len(current)} 条"]))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
