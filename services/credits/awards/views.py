"""Pages and JSON API of 学分管理 → 项目参加者授分 (guide §三 second half).

Who may call: an institution works on its own offerings only (another's are "not found"); the committee
(reviewer) may look at every offering's analysis, attendees and awards, and of the changes only withdraws (撤销) an
award or restores (恢复) an effective one it withdrew by mistake; trainees and anonymous callers are refused.
Every change is one commit; the event credits.granted leaves with it.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, flash, redirect, render_template, request
from flask_smorest import Blueprint as ApiBlueprint

from services.common import clock, pii
from services.common.auth import Principal, access, current
from services.common.errors import AppError
from services.common.identity import TITLES
from services.common.inputs import flatten, id_or_none, load_json, load_query, page_version
from services.common.paging import PER_PAGE, paginate
from services.common.schemas import STALE_PAGE, ValidationError, load_form
from services.common.web import XLSX, download

from ..analysis import describe
from ..db import db
from . import services as svc
from .models import METHODS, STATES, CreditAward
from .schemas import (
    FIELD_LABELS,
    ActivityDateSchema,
    AnalysisOutSchema,
    AnalysisSchema,
    AttendeesOutSchema,
    AwardListOutSchema,
    AwardPageSchema,
    AwardQuerySchema,
    ExclusionOutSchema,
    ExclusionSchema,
    GrantOutSchema,
    GrantSchema,
    IncludeSchema,
    ManualEntrySchema,
    OfferingPageSchema,
    OfferingQuerySchema,
    RegrantSchema,
    RestoreSchema,
    WindowOutSchema,
    WithdrawSchema,
)

pages = Blueprint("credits_awards", __name__, template_folder="templates")
api = ApiBlueprint("credits_awards_api", __name__, url_prefix="/credits/api",
                   description="学分管理 → 项目参加者授分：考勤分析、有效人员明细、筛选授分人员、授分、撤销、"
                               "恢复、手工录入学分")

BEARER = [{"bearer": []}]
ATTENDEES_PER_PAGE = 100


def _me() -> Principal:
    p = current()
    assert p is not None  # @access made sure
    return p


def _can_edit(offering: Any) -> bool:
    """Buttons that change the award list (撤销 among them): the institution's, while its execution report is not
    submitted."""
    return _me().role == "institution" and not offering.awards_locked


def _can_grant(offering: Any) -> bool:
    """Buttons that lead to or make an award (确定, 不授分, 授分, 恢复授分, 手工录入, 更正活动日期): as _can_edit, and
    not for a cancelled 期 (svc.can_grant, the rule the services apply)."""
    return _me().role == "institution" and svc.can_grant(offering)


def commit() -> None:
    db.commit("该授分记录已被他人修改，请刷新页面后重试。")


def _offering_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for offering, award_count, analysis_count, manual_count in result["items"]:
        rows.append({
            "offering_id": offering.offering_id, "project_number": offering.project_number,
            "project_title": offering.project_title, "seq": offering.seq, "seq_label": offering.seq_label,
            "institution_name": offering.institution_name, "year": offering.year,
            "credit_class": offering.credit_class, "credit_value": offering.credit_value,
            "starts_on": offering.starts_on, "ends_on": offering.ends_on, "award_count": award_count,
            "analysed": bool(analysis_count),
            "status": svc.grant_status(award_count, analysis_count, offering.report_state, manual_count,
                                       offering.cancelled_text(brief=True)),
            "cancelled": offering.cancelled, "cancelled_by": offering.cancelled_by,
            "cancel_reason": offering.cancel_reason})
    return rows


def _offerings_page(args: dict[str, Any]) -> dict[str, Any]:
    result = paginate(db.session(), svc.offering_query(_me(), args.get("q"), args.get("year")), args, scalars=False)
    return {**result, "items": _offering_rows(result)}


def _analysis_form(form: Any) -> dict[str, Any]:
    """The analysis form's fields (window ticks with from_<id>/to_<id> ranges) as AnalysisSchema's input."""
    picks = []
    for raw in form.getlist("window"):
        window_id = id_or_none(raw)
        if window_id is None:
            raise AppError(422, "invalid_input", "所选刷卡周期不正确，请刷新页面后重试。")
        picks.append({k: v for k, v in (("window_id", window_id), ("from_ts", form.get(f"from_{raw}", "").strip()),
                                        ("to_ts", form.get(f"to_{raw}", "").strip())) if v != ""})
    data: dict[str, Any] = {"windows": picks, "rule_mode": form.get("rule_mode") or "all",
                            "pairs_required": bool(form.get("pairs_required")),
                            "include_forced": bool(form.get("include_forced"))}
    if data["rule_mode"] == "at_least" and form.get("rule_n", "").strip():
        data["rule_n"] = form.get("rule_n", "").strip()
    return data


def _load_analysis(windows: list[svc.WindowInfo], raw: dict[str, Any]) -> svc.AnalysisInput:
    try:
        data = AnalysisSchema().load(raw)
    except ValidationError as exc:
        raise AppError(422, "invalid_input", "考勤分析条件有误，请修改后重试。",
                       flatten(exc.messages, FIELD_LABELS)) from exc
    return svc.check_input(windows, data)


def _form_values(windows: list[svc.WindowInfo], form: Any | None, saved: Any | None = None) -> dict[str, Any]:
    """What the analysis form shows: the ticks and ranges typed; else the saved analysis's choices (重新考勤分析 after
    a late 代签 must not silently drop 计入代签 or a narrowed range); else each window's own range."""
    values: dict[str, Any] = {"ticked": set(), "rule_mode": "all", "rule_n": "", "pairs_required": False,
                              "include_forced": False}
    for w in windows:
        values[f"from_{w.window_id}"] = clock.fmt(w.starts_at, "%Y-%m-%dT%H:%M")
        values[f"to_{w.window_id}"] = clock.fmt(w.ends_at, "%Y-%m-%dT%H:%M")
    if form is None and saved is not None:
        values.update(rule_mode=saved.rule_mode, rule_n="" if saved.rule_n is None else str(saved.rule_n),
                      pairs_required=saved.pairs_required, include_forced=saved.include_forced)
        by_id = {w.window_id: w for w in windows}
        for pick in svc.input_of(saved).picks:
            w = by_id.get(pick.window_id)
            if w is None:  # deleted since: nothing to tick
                continue
            values["ticked"].add(w.window_id)
            # a window edited since keeps only the part of the saved range still inside it (the inputs' min/max)
            start, end = max(pick.from_ts, w.starts_at), min(pick.to_ts, w.ends_at)
            if start < end:
                values[f"from_{w.window_id}"] = clock.fmt(start, "%Y-%m-%dT%H:%M")
                values[f"to_{w.window_id}"] = clock.fmt(end, "%Y-%m-%dT%H:%M")
    if form is not None:
        values["ticked"] = {n for n in map(id_or_none, form.getlist("window")) if n is not None}
        for k in ("rule_mode", "rule_n"):
            values[k] = form.get(k, values[k])
        values["pairs_required"] = bool(form.get("pairs_required"))
        values["include_forced"] = bool(form.get("include_forced"))
        for w in windows:
            for k in (f"from_{w.window_id}", f"to_{w.window_id}"):
                if form.get(k):
                    values[k] = form.get(k)
    return values


def _award_dict(a: CreditAward) -> dict[str, Any]:
    return {"id": a.id, "offering_id": a.offering_id, "name": a.name, "id_masked": pii.masked(a.id_enc),
            "title": a.title, "unit": a.unit, "project_number": a.project_number, "project_title": a.project_title,
            "credit_class": a.credit_class, "credit_value": a.credit_value, "activity_date": a.activity_date,
            "method": a.method, "valid_credit": a.method == "attendance", "state": a.state,
            "granted_at": a.granted_at, "withdrawn_at": a.withdrawn_at, "withdraw_reason": a.withdraw_reason,
            "version": a.version}


# ---- pages ---------------------------------------------------------------------------------------

@pages.get("/credits/awards")
@access("institution", "reviewer")
def offering_list() -> Any:
    args = load_query(OfferingQuerySchema(), FIELD_LABELS)
    result = _offerings_page(args)
    keep = {k: v for k, v in args.items() if k in ("q", "year") and v not in (None, "")}
    return render_template("credits/awards/list.html", result=result, args=args, keep=keep)


@pages.get("/credits/awards/<int:offering_id>")
@access("institution", "reviewer")
def method_step(offering_id: int) -> Any:
    """授分 step 1: the method. Manual entry is offered with the guide's own warning."""
    offering = svc.get_offering(db.session(), _me(), offering_id)
    return render_template("credits/awards/method.html", o=offering, warning=svc.MANUAL_WARNING, methods=METHODS,
                           can_grant=_can_grant(offering))


PREVIEW_ROWS = 200  # the 考勤分析 preview lists this many; 确定 keeps them all
SHORT_ROWS = 200  # and this many of who falls short of the rule (_short.html)


def _who(session: Any, offering_id: int, attendees: list[Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The masked ID numbers and the account names (更正姓名) of the listed trainees, by trainee key."""
    who = svc.people(session, offering_id, [a.trainee_key for a in attendees])
    return ({k: pii.masked(p.id_enc) for k, p in who.items()},
            {k: p.account_name for k, p in who.items() if p.account_name})


def _render_analysis(offering: Any, windows: list[svc.WindowInfo], values: dict[str, Any], errors: dict[str, str],
                     preview: list[Any] | None, preview_rule: str | None, status: int = 200,
                     forced: set[str] | None = None, **short: Any) -> Any:
    saved = svc.latest_analysis(db.session(), offering.offering_id)
    return render_template("credits/awards/analysis.html", o=offering, windows=windows, v=values, errors=errors,
                           preview=preview, preview_rule=preview_rule, saved=saved, forced=forced or set(),
                           short=short.get("short", []), ticked=short.get("ticked", 0),
                           include_forced=short.get("include_forced", False),
                           ids=short.get("ids", {}), names=short.get("names", {}), preview_rows=PREVIEW_ROWS,
                           short_rows=SHORT_ROWS,
                           saved_rule=svc.rule_text(saved) if saved else None,
                           can_edit=_can_grant(offering)), status


@pages.get("/credits/awards/<int:offering_id>/analysis")
@access("institution", "reviewer")
def analysis_step(offering_id: int) -> Any:
    offering = svc.get_offering(db.session(), _me(), offering_id)
    windows = svc.windows_of(db.session(), offering_id)
    saved = svc.latest_analysis(db.session(), offering_id)
    return _render_analysis(offering, windows, _form_values(windows, None, saved), {}, None, None)


@pages.post("/credits/awards/<int:offering_id>/analysis")
@access("institution")
def analysis_submit(offering_id: int) -> Any:
    """考勤分析 (action=preview) lists who is valid; 确定 (action=save) keeps the analysis for 授分."""
    session = db.session()
    offering = svc.get_offering(session, _me(), offering_id)
    windows = svc.windows_of(session, offering_id)
    values = _form_values(windows, request.form)
    try:
        inp = _load_analysis(windows, _analysis_form(request.form))
        if request.form.get("action") == "save":
            saved, _valid = svc.save_analysis(session, _me(), offering, inp)
            commit()
            flash(f"考勤分析已保存：有效人员 {saved.valid_count} 人。请查看有效人员明细并授分。", "ok")
            return redirect(f"/credits/awards/{offering_id}/attendees")
        attendees = svc.run(session, offering_id, inp)
    except AppError as exc:
        session.rollback()
        return _render_analysis(offering, windows, values, exc.fields or {"_schema": exc.message}, None, None,
                                exc.status)
    ticked = {p.window_id for p in inp.picks}
    forced = {k for k, ws in svc.forced_checkins(session, offering_id).items()
              if ws & ticked} if inp.include_forced else set()
    short = svc.short_of_rule(session, offering_id, inp, {a.trainee_key for a in attendees})
    # two 张伟 are told apart by their masked ID numbers; names as on their accounts (更正姓名)
    ids, names = _who(session, offering_id, attendees[:PREVIEW_ROWS] + short[:SHORT_ROWS])
    return _render_analysis(offering, windows, values, {}, attendees, describe(inp.rule, len(inp.picks)),
                            forced=forced, short=short, ticked=len(inp.picks), include_forced=inp.include_forced,
                            ids=ids, names=names)


@pages.get("/credits/awards/<int:offering_id>/attendees")
@access("institution", "reviewer")
def attendees_step(offering_id: int) -> Any:
    """有效人员明细 + 筛选授分人员 + 活动日期 + 授分."""
    return _attendees_page(offering_id)


def _back_to_attendees(offering_id: int) -> str:
    """有效人员明细 at the page and search a form on it was sent from: with hundreds of attendees, the office unticks
    or restores one after another, and page 1 of the whole list after each would lose its place."""
    params = {"q": (request.form.get("q") or "").strip()[:50], "page": id_or_none(request.form.get("page", ""))}
    query = urlencode({k: v for k, v in params.items() if v})
    return f"/credits/awards/{offering_id}/attendees" + (f"?{query}" if query else "")


def _attendees_page(offering_id: int, typed: dict[str, str] | None = None, status: int = 200) -> Any:
    """The attendees page; `typed` is a refused 不授分 (its trainee_key, reason and error) or 恢复授分 (trainee_key,
    regrant_reason), shown again in that person's row, on the page that holds the row, so the office never types
    the reason twice."""
    session = db.session()
    offering = svc.get_offering(session, _me(), offering_id)
    analysis = svc.latest_analysis(session, offering_id)
    if analysis is None:
        flash("请先完成考勤分析（勾选刷卡周期，点击考勤分析后确定）。", "error")
        return redirect(f"/credits/awards/{offering_id}/analysis")
    rows = svc.attendee_rows(session, offering, analysis)
    q = (request.values.get("q") or "").strip()[:50]  # a refused 不授分 posts the search it was made in
    shown = [r for r in rows if q in r.name] if q else rows
    pages_n = max(1, math.ceil(len(shown) / ATTENDEES_PER_PAGE))
    page = request.values.get("page", "1")
    page_no = min(max(1, id_or_none(page) or 1), pages_n)
    if typed:
        at = next((i for i, r in enumerate(shown) if r.trainee_key == typed.get("trainee_key")), None)
        page_no = page_no if at is None else at // ATTENDEES_PER_PAGE + 1
    counts = {s: sum(1 for r in rows if r.status == s) for s in ("to_grant", "granted", "withdrawn", "excluded")}
    windows = [w for w in svc.windows_of(session, offering_id) if w.window_id in {p["window_id"]
                                                                                  for p in analysis.windows}]
    changed = svc.windows_changed_since(analysis, windows)
    inp = svc.input_of(analysis)
    short = svc.short_of_rule(session, offering_id, inp, {r.trainee_key for r in rows})
    short_total = len(short)
    if q:  # a name searched for and not valid is most often one who fell short: find her there too, not 39 rows down
        _ids, all_names = _who(session, offering_id, short)
        short = [a for a in short if q in all_names.get(a.trainee_key, a.name)]
    ids, names = _who(session, offering_id, short[:SHORT_ROWS])
    return render_template(
        "credits/awards/attendees.html", o=offering, analysis=analysis, rule=svc.rule_text(analysis),
        windows=windows, rows=shown[(page_no - 1) * ATTENDEES_PER_PAGE: page_no * ATTENDEES_PER_PAGE],
        total=len(rows), counts=counts, page=page_no, pages=pages_n, q=q,
        activity_date=request.args.get("activity_date") or offering.ends_on.isoformat(),
        can_edit=_can_grant(offering), typed=typed or {},
        outside=svc.granted_outside(session, offering_id, rows), changed=changed, short=short, short_total=short_total,
        ticked=len(inp.picks), include_forced=inp.include_forced, ids=ids, names=names,
        short_rows=SHORT_ROWS, not_ended=clock.today_local() < offering.ends_on), status


@pages.post("/credits/awards/<int:offering_id>/exclusions")
@access("institution")
def exclusion_add(offering_id: int) -> Any:
    session = db.session()
    offering = svc.get_offering(session, _me(), offering_id)
    data, errors = load_form(ExclusionSchema(), request.form)
    if errors:
        if "trainee_key" in errors:
            flash("学员标识不正确，请刷新页面后重试。", "error")
            return redirect(_back_to_attendees(offering_id))
        return _attendees_page(offering_id, {"trainee_key": request.form.get("trainee_key", ""),
                                             "reason": request.form.get("reason", "")[:500],
                                             "error": f"不授分原因：{errors.get('reason')}"}, 400)
    try:
        name = svc.exclude(session, _me(), offering, data["trainee_key"], data["reason"])  # type: ignore[index]
    except AppError as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(_back_to_attendees(offering_id))
    commit()
    flash(f"已将 {name} 排除出授分人员（原因已记入操作日志）。", "ok")
    return redirect(_back_to_attendees(offering_id))


@pages.post("/credits/awards/<int:offering_id>/exclusions/include")
@access("institution")
def exclusion_remove(offering_id: int) -> Any:
    session = db.session()
    offering = svc.get_offering(session, _me(), offering_id)
    data, errors = load_form(IncludeSchema(), request.form)
    if errors:
        flash("学员标识不正确，请刷新页面后重试。", "error")
        return redirect(_back_to_attendees(offering_id))
    try:
        svc.include_again(session, _me(), offering, data["trainee_key"])  # type: ignore[index]
    except AppError as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(_back_to_attendees(offering_id))
    commit()
    flash("已恢复为待授分。", "ok")
    return redirect(_back_to_attendees(offering_id))


@pages.post("/credits/awards/<int:offering_id>/grant")
@access("institution")
def grant_submit(offering_id: int) -> Any:
    session = db.session()
    offering = svc.get_offering(session, _me(), offering_id)
    data, errors = load_form(GrantSchema(), request.form)
    if errors:
        flash(f"活动日期：{errors.get('activity_date', '请选择活动日期。')}", "error")
        return redirect(f"/credits/awards/{offering_id}/attendees")
    try:
        result = svc.grant(session, _me(), offering, data["activity_date"])  # type: ignore[index]
    except AppError as exc:
        session.rollback()
        flash(exc.message + ("".join(f" {v}" for v in (exc.fields or {}).values())), "error")
        return redirect(f"/credits/awards/{offering_id}/attendees")
    commit()
    withdrawn = (f"；已撤销 {result.withdrawn} 人（撤销的不再授分，误撤销的请在有效人员明细中点“恢复授分”）"
                 if result.withdrawn else "")
    flash(f"授分完成：新授分 {result.added} 人；此前已授分 {result.already} 人；排除 {result.excluded} 人{withdrawn}。",
          "ok")
    return redirect(f"/credits/awards/{offering_id}/list")


@pages.post("/credits/awards/<int:offering_id>/activity-date")
@access("institution")
def activity_date_submit(offering_id: int) -> Any:
    """更正活动日期 of the offering's pending awards (授分名单), with a reason."""
    session = db.session()
    offering = svc.get_offering(session, _me(), offering_id)
    back = f"/credits/awards/{offering_id}/list"
    typed = {"activity_date": request.form.get("activity_date", "")[:10],
             "reason": request.form.get("reason", "")[:500]}
    data, errors = load_form(ActivityDateSchema(), request.form)
    if errors:
        labels = {"activity_date": "活动日期", "reason": "更正原因"}
        return _award_list(offering_id, {**typed, "error": "；".join(f"{labels.get(k, k)}：{v}"
                                                                      for k, v in errors.items())}, 422)
    try:
        changed = svc.correct_activity_date(session, _me(), offering, data["activity_date"],  # type: ignore[index]
                                            data["reason"])  # type: ignore[index]
    except AppError as exc:
        session.rollback()
        message = exc.message + "".join(f" {v}" for v in (exc.fields or {}).values())
        return _award_list(offering_id, {**typed, "error": message}, exc.status)
    commit()
    when = data["activity_date"]  # type: ignore[index]
    flash(f"已将 {changed} 条待生效授分记录的活动日期更正为 {when}（已记入操作日志）。", "ok")
    return redirect(back)


@pages.get("/credits/awards/<int:offering_id>/list")
@access("institution", "reviewer")
def award_list_page(offering_id: int) -> Any:
    return _award_list(offering_id)


def _list_args() -> dict[str, Any]:
    """授分名单's search and page: the query string's, or (a 撤销 or 恢复 posts them) the form's."""
    if request.method == "GET":
        args = load_query(AwardQuerySchema(), FIELD_LABELS)
        return {**args, "q": (args.get("q") or "").strip() or None}
    form = request.form
    return {"q": (form.get("q") or "").strip()[:50] or None, "page": id_or_none(form.get("page", "")) or 1,
            "per_page": min(id_or_none(form.get("per_page", "")) or PER_PAGE, 100)}


def _back_to_list(offering_id: int) -> str:
    """授分名单 at the page and search a 撤销 or 恢复 was sent from: the office withdraws one after another in a list of
    thousands, and page 1 of the whole list after each would lose its place."""
    args = _list_args()
    query = urlencode({k: v for k, v in args.items() if v and (k == "q" or (k == "page" and v > 1)
                                                                   or (k == "per_page" and v != PER_PAGE))})
    return f"/credits/awards/{offering_id}/list" + (f"?{query}" if query else "")


def _award_rows(session: Any, offering: Any, awards: list[CreditAward], committee: bool) -> list[dict[str, Any]]:
    """One page's rows with what each shows: its state, 代签, a 恢复 made of it or that it is, and whether 恢复 is
    offered."""
    forced = svc.forced_checkins(session, offering.offering_id)
    current = svc.current_among(session, offering.offering_id, {a.trainee_key for a in awards})
    restored = svc.restored_by(session, [a.id for a in awards if a.state == "withdrawn"])
    return [{**_award_dict(a), "state_label": svc.state_label(a, offering),
             "restored_at": restored[a.id].granted_at if a.id in restored else None,
             "restores": a.restored_from,
             "forced": len(forced.get(a.trainee_key, ())),
             # 恢复: the committee's, of an effective award withdrawn by mistake (svc.restore's own rule)
             "restorable": committee and svc.restore_refusal(a, offering, a.trainee_key in current) is None}
            for a in awards]


def _award_list(offering_id: int, typed: dict[str, Any] | None = None, status: int = 200) -> Any:
    """授分名单, one page of it (a search by name narrows it; the counts above it are the whole list's, and the Excel
    is the whole list); `typed` is a refused 撤销 (award_id) or 更正活动日期 (activity_date) with what was typed and why
    it was refused, shown again in its own form, on the page holding its row: a reason written out is never lost to
    a stale page."""
    session = db.session()
    offering = svc.get_offering(session, _me(), offering_id)
    args = _list_args()
    if typed and typed.get("award_id"):
        at = svc.award_position(session, offering_id, typed["award_id"], args["q"])
        if at is not None:
            args["page"] = at // args["per_page"] + 1
    result = paginate(session, svc.award_query(offering_id, args["q"]), args, *svc.award_order())
    committee = _me().role == "reviewer"
    result["items"] = _award_rows(session, offering, result["items"], committee)
    keep = {k: v for k, v in (("q", args["q"]), ("per_page", args["per_page"])) if v and v != PER_PAGE}
    # 撤销 stays possible on a cancelled 期 (the office cleaning up); 更正活动日期 does not
    return render_template("credits/awards/awards.html", o=offering, result=result, awards=result["items"],
                           counts=svc.award_counts(session, offering_id), q=args["q"] or "", keep=keep,
                           methods=METHODS, states=STATES, can_edit=_can_edit(offering),
                           can_grant=_can_grant(offering),
                           committee=committee, typed=typed or {}), status


@pages.get("/credits/awards/<int:offering_id>/awards.xlsx")
@access("institution", "reviewer")
def award_export(offering_id: int) -> Any:
    session = db.session()
    offering = svc.get_offering(session, _me(), offering_id)
    data = svc.export_xlsx(offering, svc.award_list(session, offering_id), svc.forced_checkins(session, offering_id),
                           svc.windows_of(session, offering_id))
    name = "-".join(filter(None, ("授分名单", offering.project_number, offering.seq_label))) + ".xlsx"
    return download(data, XLSX, "awards.xlsx", name)


@pages.post("/credits/awards/award/<int:award_id>/withdraw")
@access("institution", "reviewer")
def award_withdraw(award_id: int) -> Any:
    return _on_award(award_id, "list", WithdrawSchema(), "撤销原因", svc.withdraw, "已撤销 {name} 的授分。",
                     check_version=True)


@pages.post("/credits/awards/award/<int:award_id>/regrant")
@access("institution")
def award_regrant(award_id: int) -> Any:
    """恢复授分 of an award by attendance withdrawn by mistake (有效人员明细, the row of an 已撤销 person)."""
    return _on_award(award_id, "attendees", RegrantSchema(), "恢复原因", svc.regrant,
                     "已恢复 {name} 的授分（待生效；原因已记入操作日志）。")


@pages.post("/credits/awards/award/<int:award_id>/restore")
@access("reviewer")
def award_restore(award_id: int) -> Any:
    """恢复 of an effective award the committee withdrew by mistake (授分名单, the row of the withdrawn award)."""
    return _on_award(award_id, "list", RestoreSchema(), "恢复原因", svc.restore,
                     "已恢复 {name} 的授分：新的授分记录已生效，学分证书将以新的编号生成，原证书仍作废"
                     "（原因已记入操作日志）。")


def _on_award(award_id: int, back_to: str, schema: Any, label: str, act: Any, done: str,
              check_version: bool = False) -> Any:
    """A change of one award with a reason (撤销, 恢复授分, 恢复), told in a flash on the page it came from."""
    session = db.session()
    award = svc.get_award(session, _me(), award_id)
    back = (_back_to_attendees(award.offering_id) if back_to == "attendees" else _back_to_list(award.offering_id))

    def refused(message: str, status: int) -> Any:
        reason = request.form.get("reason", "")[:500]
        if back_to == "list":  # 撤销, 恢复: the list again, the reason typed still in the row's form
            return _award_list(award.offering_id, {"award_id": award.id, "reason": reason, "error": message}, status)
        # 恢复授分: the attendees page again, on the page that holds her row, the reason still in its box
        flash(message, "error")
        return _attendees_page(award.offering_id, {"trainee_key": award.trainee_key, "regrant_reason": reason},
                               status)

    if check_version:  # the page always sends the row's version: a missing or garbled one is a stale page
        version = page_version(request.form)
        if version is None or version != award.version:
            return refused(STALE_PAGE if version is None
                           else "该授分记录已被他人修改（见本行最新状态），确认后请重新提交。", 409)
    data, errors = load_form(schema, request.form)
    if errors:
        return refused(f"{label}：{errors.get('reason', f'请填写{label}。')}", 422)
    try:
        act(session, _me(), award, data["reason"])  # type: ignore[index]
    except AppError as exc:
        session.rollback()
        return refused(exc.message, exc.status)
    commit()
    flash(done.format(name=award.name), "ok")
    return redirect(back)


def _render_manual(offering: Any, values: dict[str, Any], errors: dict[str, str], status: int = 200) -> Any:
    return render_template("credits/awards/manual.html", o=offering, v=values, errors=errors, titles=TITLES,
                           warning=svc.MANUAL_WARNING, can_edit=_can_grant(offering)), status


@pages.get("/credits/awards/<int:offering_id>/manual")
@access("institution")
def manual_form(offering_id: int) -> Any:
    offering = svc.get_offering(db.session(), _me(), offering_id)
    return _render_manual(offering, {"activity_date": offering.ends_on.isoformat()}, {})


@pages.post("/credits/awards/<int:offering_id>/manual")
@access("institution")
def manual_submit(offering_id: int) -> Any:
    session = db.session()
    offering = svc.get_offering(session, _me(), offering_id)
    values = {k: request.form.get(k, "") for k in ("name", "id_number", "mobile", "title", "unit", "activity_date",
                                                   "confirm_invalid")}
    data, errors = load_form(ManualEntrySchema(), request.form)
    if errors:
        return _render_manual(offering, values, errors, 422)
    try:
        award = svc.manual_entry(session, _me(), offering, data)  # type: ignore[arg-type]
    except AppError as exc:
        session.rollback()
        return _render_manual(offering, values, exc.fields or {"_schema": exc.message}, exc.status)
    commit()
    flash(f"已手工录入 {award.name} 的学分（非有效学分，不计入达标、不生成学分证书）。", "ok")
    return redirect(f"/credits/awards/{offering_id}/list")


# ---- JSON API ------------------------------------------------------------------------------------

@api.route("/grant/offerings", methods=["GET"])
@access("institution", "reviewer")
@api.arguments(OfferingQuerySchema, location="query", as_kwargs=False)
@api.response(200, OfferingPageSchema)
@api.doc(security=BEARER, summary="项目参加者授分：可授分的期次及授分状态")
def api_offerings(args: dict[str, Any]) -> Any:
    return _offerings_page(args)


@api.route("/offerings/<int:offering_id>/windows", methods=["GET"])
@access("institution", "reviewer")
@api.response(200, WindowOutSchema(many=True))
@api.doc(security=BEARER, summary="本期次的刷卡周期（学分系统所知的，含无人扫码的：scans 为 0）")
def api_windows(offering_id: int) -> Any:
    svc.get_offering(db.session(), _me(), offering_id)
    return svc.windows_of(db.session(), offering_id)


def _analysis_out(inp: svc.AnalysisInput, attendees: list[Any], saved_id: int | None) -> Any:
    return {"id": saved_id, "rule": describe(inp.rule, len(inp.picks)),
            "windows": [{"window_id": p.window_id, "from_ts": p.from_ts, "to_ts": p.to_ts} for p in inp.picks],
            "valid_count": len(attendees),
            "attendees": [{"trainee_key": a.trainee_key, "name": a.name, "windows_met": a.windows_met}
                          for a in attendees]}


@api.route("/offerings/<int:offering_id>/analysis/preview", methods=["POST"])
@access("institution")
@api.response(200, AnalysisOutSchema)
@api.doc(security=BEARER, summary="考勤分析（只查询，不保存）", requestBody={
    "content": {"application/json": {"schema": AnalysisSchema}}})
def api_analysis_preview(offering_id: int) -> Any:
    session = db.session()
    svc.get_offering(session, _me(), offering_id)
    windows = svc.windows_of(session, offering_id)
    inp = svc.check_input(windows, load_json(AnalysisSchema()))
    return _analysis_out(inp, svc.run(session, offering_id, inp), None)


@api.route("/offerings/<int:offering_id>/analyses", methods=["POST"])
@access("institution")
@api.response(201, AnalysisOutSchema)
@api.doc(security=BEARER, summary="确定：保存考勤分析（授分依据最近一次保存的分析）", requestBody={
    "content": {"application/json": {"schema": AnalysisSchema}}})
def api_analysis_save(offering_id: int) -> Any:
    session = db.session()
    offering = svc.get_offering(session, _me(), offering_id)
    windows = svc.windows_of(session, offering_id)
    inp = svc.check_input(windows, load_json(AnalysisSchema()))
    saved, attendees = svc.save_analysis(session, _me(), offering, inp)
    commit()
    return _analysis_out(inp, attendees, saved.id), 201


@api.route("/offerings/<int:offering_id>/attendees", methods=["GET"])
@access("institution", "reviewer")
@api.response(200, AttendeesOutSchema)
@api.doc(security=BEARER, summary="有效人员明细（最近一次保存的考勤分析；身份证号码脱敏）")
def api_attendees(offering_id: int) -> Any:
    session = db.session()
    offering = svc.get_offering(session, _me(), offering_id)
    analysis = svc.latest_analysis(session, offering_id)
    if analysis is None:
        raise AppError(409, "no_analysis", "请先完成考勤分析并确定。")
    rows = svc.attendee_rows(session, offering, analysis)
    ticked = {p["window_id"] for p in analysis.windows}
    return {"analysis_id": analysis.id, "rule": svc.rule_text(analysis),
            "windows": [w for w in svc.windows_of(session, offering_id) if w.window_id in ticked],
            "attendees": [{**r.__dict__, "scans": {str(k): v for k, v in r.scans.items()}} for r in rows]}


@api.route("/offerings/<int:offering_id>/exclusions", methods=["POST"])
@access("institution")
@api.response(200, ExclusionOutSchema)
@api.doc(security=BEARER, summary="筛选授分人员：排除一名有效人员（须填写原因，记入操作日志）",
         requestBody={"content": {"application/json": {"schema": ExclusionSchema}}})
def api_exclude(offering_id: int) -> Any:
    session = db.session()
    offering = svc.get_offering(session, _me(), offering_id)
    data = load_json(ExclusionSchema())
    svc.exclude(session, _me(), offering, data["trainee_key"], data["reason"])
    commit()
    return {"trainee_key": data["trainee_key"], "excluded": True}


@api.route("/offerings/<int:offering_id>/exclusions/include", methods=["POST"])
@access("institution")
@api.response(200, ExclusionOutSchema)
@api.doc(security=BEARER, summary="筛选授分人员：恢复一名被排除的人员",
         requestBody={"content": {"application/json": {"schema": IncludeSchema}}})
def api_include(offering_id: int) -> Any:
    session = db.session()
    offering = svc.get_offering(session, _me(), offering_id)
    data = load_json(IncludeSchema())
    svc.include_again(session, _me(), offering, data["trainee_key"])
    commit()
    return {"trainee_key": data["trainee_key"], "excluded": False}


@api.route("/offerings/<int:offering_id>/grant", methods=["POST"])
@access("institution")
@api.response(200, GrantOutSchema)
@api.doc(security=BEARER, summary="授分：按最近一次考勤分析授分（已授分的不重复）",
         requestBody={"content": {"application/json": {"schema": GrantSchema}}})
def api_grant(offering_id: int) -> Any:
    session = db.session()
    offering = svc.get_offering(session, _me(), offering_id)
    data = load_json(GrantSchema())
    result = svc.grant(session, _me(), offering, data["activity_date"])
    commit()
    return {"added": result.added, "already": result.already, "excluded": result.excluded,
            "withdrawn": result.withdrawn}


@api.route("/offerings/<int:offering_id>/manual-awards", methods=["POST"])
@access("institution")
@api.response(201, AwardListOutSchema)
@api.doc(security=BEARER, summary="手工录入学分（非有效学分：不计入达标，不生成学分证书）",
         requestBody={"content": {"application/json": {"schema": ManualEntrySchema}}})
def api_manual(offering_id: int) -> Any:
    session = db.session()
    offering = svc.get_offering(session, _me(), offering_id)
    data = load_json(ManualEntrySchema())
    award = svc.manual_entry(session, _me(), offering, data)
    commit()
    return {"offering_id": offering_id, "count": 1, "awards": [_award_dict(award)]}, 201


@api.route("/offerings/<int:offering_id>/awards", methods=["GET"])
@access("institution", "reviewer")
@api.arguments(AwardQuerySchema, location="query")
@api.response(200, AwardPageSchema)
@api.doc(security=BEARER, summary="授分名单，分页（含撤销的记录；手工录入的标为非有效学分）：q 按姓名检索；"
                                  "counts 为整个名单的人数，total 为检索到的条数；整个名单见导出 Excel")
def api_awards(args: dict[str, Any], offering_id: int) -> Any:
    session = db.session()
    offering = svc.get_offering(session, _me(), offering_id)
    q = (args.get("q") or "").strip() or None
    result = paginate(session, svc.award_query(offering_id, q), args, *svc.award_order())
    result["items"] = [{**_award_dict(a), "state_label": svc.state_label(a, offering)} for a in result["items"]]
    return {**result, "offering_id": offering_id, "counts": svc.award_counts(session, offering_id),
            "cancelled": offering.cancelled_text() or None}


@api.route("/awards/<int:award_id>/withdraw", methods=["POST"])
@access("institution", "reviewer")
@api.response(200, AwardListOutSchema)
@api.doc(security=BEARER, summary="撤销授分（须填写原因）：举办机构在执行情况反馈提交前撤销待生效的授分；"
                                  "继续医学教育委员会可撤销任何授分（已生效的，其学分证书随之作废；误撤销的可由委员会恢复，"
                                  "另发新的学分证书）",
         requestBody={"content": {"application/json": {"schema": WithdrawSchema}}})
def api_withdraw(award_id: int) -> Any:
    session = db.session()
    award = svc.get_award(session, _me(), award_id)
    data = load_json(WithdrawSchema())
    if data.get("version") and data["version"] != award.version:
        raise AppError(409, "conflict", "该授分记录已被他人修改，请刷新后重试。")
    svc.withdraw(session, _me(), award, data["reason"])
    commit()
    return {"offering_id": award.offering_id, "count": 1, "awards": [_award_dict(award)]}


@api.route("/awards/<int:award_id>/restore", methods=["POST"])
@access("reviewer")
@api.response(201, AwardListOutSchema)
@api.doc(security=BEARER, summary="恢复（继续医学教育委员会，须填写原因）：已生效后被撤销的授分恢复为一条新的"
                                  "已生效授分记录，另发新的学分证书（原证书仍作废）；该学员本期次已有授分或期次未举办时"
                                  "不能恢复",
         requestBody={"content": {"application/json": {"schema": RestoreSchema}}})
def api_restore(award_id: int) -> Any:
    session = db.session()
    award = svc.get_award(session, _me(), award_id)
    data = load_json(RestoreSchema())
    again = svc.restore(session, _me(), award, data["reason"])
    commit()
    return {"offering_id": award.offering_id, "count": 1, "awards": [_award_dict(again)]}, 201
