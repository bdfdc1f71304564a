"""Pages and JSON API of 电子学分证书查询打印 (guide §五).

Trainee (phone, WeChat's browser):  GET /certs/my · POST /certs/exports · GET /certs/exports/<id> · GET
/certs/exports/<id>.pdf. Institution: GET /certs/institution/offerings[/<offering_id>] (the list: ?year=, this
year's by default, and ?page=) · POST /certs/institution/offerings/<offering_id>/exports (own offerings only;
another's is 404; while one of the offering is queued or running, that one is the answer). Either export asked
for again after one of the same certificates finished opens that file (…?existing=1: 已有相同的导出文件), unless
new=1. Committee: GET /certs/lookup?number= · POST /certs/lookup/id (full ID number, audit-logged). Everyone: GET
/certs/verify[/<number>] (rate-limited). JSON equivalents under /certs/api/ (the offerings list too). An export
job is seen by its owner only (others: 404).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Blueprint, flash, make_response, redirect, render_template, request
from flask_smorest import Blueprint as ApiBlueprint

from services.common import clock, jobs, pii
from services.common.auth import COOKIE, Principal, access, check_public_csrf, current, trainee_login_url
from services.common.errors import AppError, wants_json
from services.common.formats import fmt_credits
from services.common.inputs import load_json, load_query
from services.common.paging import keep_per_page, past_last
from services.common.schemas import load_form
from services.common.web import download

from ..db import db
from . import services as svc
from . import tasks
from .models import JOB_STATES
from .ratelimit import check_verify_rate, name_check_allowed
from .schemas import (
    NUMBER_MAX,
    CertificateListOut,
    ExportForm,
    ExportIn,
    ExportPageQuery,
    JobOut,
    LookupOut,
    MyYearQuery,
    NewExportForm,
    NewExportQuery,
    NumberQuery,
    OfferingPageOut,
    OfferingsQuery,
    VerifyNameForm,
    VerifyOut,
)

BEARER = [{"bearer": []}]

trainee_pages = Blueprint("certs_trainee", __name__, template_folder="templates")
pages = Blueprint("certs_certificates", __name__, template_folder="templates")
api = ApiBlueprint("certs_api", __name__, url_prefix="/certs/api",
                   description="电子学分证书：本人证书列表、导出学分证书（PDF）、机构按期导出、证书验证、委员会查询")


MY_PAGE = "/certs/my"
LOGIN_ENDED = "登录已失效（可能已在其他设备修改了密码、退出登录，或已超过 12 小时），请重新登录后再导出学分证书。"
# the export pages an institution shares: a visitor without a session is sent by the job's kind
JOB_PAGES = {"certs_certificates.export_page", "certs_certificates.export_download"}


@trainee_pages.before_request
def _trainee_login_first() -> Any:
    """A trainee without a session signs in at credits, not at the institutions' login (which has no trainee
    option): a page with where she was, a form sent after her session ended (logged out elsewhere, password
    reset) back to 学分证书 with why, instead of a bare 401 page whose only link was the public verification."""
    if current() is not None or wants_json():
        return None
    if request.method == "GET":
        return redirect(trainee_login_url(request.full_path.rstrip("?")))
    if not request.cookies.get(COOKIE):  # with the ended cookie, the login page says it itself
        flash(LOGIN_ENDED, "error")
    return redirect(trainee_login_url(MY_PAGE), 303)


@pages.before_request
def _job_login_first() -> Any:
    """An export page opened without a session: a trainee's export sends to the trainee login (the walk's trainee
    was sent to /projects/login, which she cannot use); an institution's to @access's, the institutions'."""
    if request.endpoint not in JOB_PAGES or current() is not None or request.method != "GET" or wants_json():
        return None
    if svc.job_kind(db.session(), (request.view_args or {}).get("job_id", 0)) == "institution":
        return None
    return redirect(trainee_login_url(request.full_path.rstrip("?")))


@pages.context_processor
def _number_max() -> dict[str, int]:
    return {"number_max": NUMBER_MAX}  # the number boxes take what the page reads


def _me() -> Principal:
    p = current()
    assert p is not None  # @access made sure
    return p


def _commit_and_send(job: Any) -> None:
    session = db.session()
    session.commit()
    tasks.send(session, job)


def _commit_or_send(job: Any, new: bool) -> None:
    """A new job is committed and queued; the same export asked for again is answered with its job, unsent (a
    second message would start a second run of a job already running; a queued one's page sends it again if its
    message was lost)."""
    if new:
        _commit_and_send(job)
    else:
        db.session().commit()  # ends the transaction holding the trainee's export lock


EXISTING = "已有相同的导出文件"


def _job_page(job: Any, new: bool) -> Any:
    """After 导出: the job's page; an earlier finished file of the same selection opens saying so (its page offers
    重新生成 for whoever wants a new file)."""
    return redirect(f"/certs/exports/{job.id}" + ("?existing=1" if svc.reused_file(job, new) else ""), 303)


def _row_dict(r: svc.Row) -> dict[str, Any]:
    a = r.award
    return {"award_id": a.award_id, "offering_id": a.offering_id, "name": a.name,
            "id_number_masked": pii.masked(a.id_enc), "project_number": a.project_number,
            "project_title": a.project_title,
            "institution_name": a.institution_name, "starts_on": a.starts_on, "ends_on": a.ends_on,
            "credit_class": a.credit_class, "credit_value": fmt_credits(a.credit_value),
            "activity_date": a.activity_date, "printable": r.status.printable,
            "printable_from": r.status.printable_from, "revoked": r.status.revoked, "revoked_at": a.revoked_at,
            "status_text": r.status.text, "number": r.certificate.number if r.certificate else None}


# ---------------------------------------------------------------- trainee pages

def _my_page(error: str | None = None, fields: dict[str, str] | None = None, status: int = 200, *,
             year: int | None = None, ticked: list[int] | None = None) -> Any:
    """Her certificates by the year their credit counts in (the activity date's, as 达标情况查询 counts it), newest
    first. Ticked: what she ticked when a refusal sends the page back (kept, not re-ticked), else the printable ones
    of `year` (she came from that year's 达标情况查询), else every printable one."""
    p = _me()
    rows = svc.trainee_rows(db.session(), p.trainee_key or "")
    jobs = svc.recent_trainee_jobs(db.session(), p.trainee_key or "")
    years: dict[int, list[svc.Row]] = {}
    for r in rows:
        years.setdefault(r.award.activity_date.year, []).append(r)
    printable = [r for r in rows if r.status.printable]
    if ticked is not None:
        kept = set(ticked)
        checked = {r.award.award_id for r in printable if r.award.award_id in kept}
    else:
        checked = {r.award.award_id for r in printable if year is None or r.award.activity_date.year == year}
    return render_template("certs/my.html", rows=rows, years=sorted(years.items(), reverse=True), year=year,
                           checked=checked, today=clock.today_local(), error=error, jobs=jobs, job_states=JOB_STATES,
                           fmt_time=clock.fmt, fields=fields or {}, credits=fmt_credits), status


@trainee_pages.get("/certs/my")
@access("trainee")
def my_certificates() -> Any:
    return _my_page(year=load_query(MyYearQuery(), {"year": "年度"})["year"])


@trainee_pages.post("/certs/exports")
@access("trainee")
def export_create() -> Any:
    form = {**request.form.to_dict(flat=False), "new": request.form.get("new", "")}  # award_id alone is a list
    data, errors = load_form(ExportForm(), form)
    if errors or data is None:
        return _my_page("请勾选要导出的学分证书。", status=422)
    try:
        job, new = svc.create_trainee_export(db.session(), _me(), data["award_id"], data["new"])
    except AppError as exc:
        db.session().rollback()
        # her ticks are kept: a certificate withdrawn since she opened the page must not re-tick what she left out
        return _my_page(exc.message, exc.fields, exc.status, ticked=data["award_id"])
    _commit_or_send(job, new)
    return _job_page(job, new)


# ---------------------------------------------------------------- export jobs (trainee or institution)

def _mended(session: Any, job: Any) -> Any:
    """A render killed past its hard time limit is failed (its page offers to export again instead of 正在生成 for
    good), a queued job whose message was lost is sent again."""
    return jobs.mend(session, job, tasks.RENDER_TIME_LIMIT, svc.KILLED, tasks.send)


@pages.get("/certs/exports/<int:job_id>")
@access("trainee", "institution")
def export_page(job_id: int) -> Any:
    session = db.session()
    job = _mended(session, svc.get_job(session, _me(), job_id))
    layout = "certs/_layout.html" if _me().role == "trainee" else "base.html"
    stale = svc.outdated(session, job)
    existing = load_query(ExportPageQuery(), {"existing": EXISTING})["existing"] and job.state == "done" and not stale
    return render_template("certs/export.html", job=job, layout=layout, stale=stale.message if stale else None,
                           existing=existing,
                           refresh=job.state in ("queued", "running"),
                           waited=jobs.waited_minutes(job))


@pages.get("/certs/exports/<int:job_id>.pdf")
@access("trainee", "institution")
def export_download(job_id: int) -> Any:
    session = db.session()
    job = svc.get_job(session, _me(), job_id)
    data = svc.job_pdf(session, _me(), job)
    session.commit()
    return download(data, "application/pdf", f"certificates-{job.id}.pdf", f"学分证书-{job.id}.pdf")


# ---------------------------------------------------------------- institution

@pages.get("/certs/institution/offerings")
@access("institution")
def institution_offerings() -> Any:
    """学分证书导出: one year's offerings (this year's in Beijing time unless another is chosen), a page at a time."""
    args = load_query(OfferingsQuery(), {"year": "年度"})
    this_year = clock.today_local().year
    year = args["year"] or this_year
    session = db.session()
    page = svc.institution_offerings(session, _me(), year, args)
    notes = svc.offering_notes(session, _me(), year, page["total"])  # the API's hint, said with links here
    # a page past the last (an old bookmark, an edited address) shows the last one, and says so: the pager and the
    # rows agree, and the office is not left wondering why page 999 looks like page 2
    return render_template("certs/offerings.html", page=page, year=year, years=notes["years"],
                           keep=keep_per_page({"year": year}, args), past_last=past_last(args, page),
                           others=notes["others"], late=notes["late"],
                           choices=sorted(set(notes["years"]) | {this_year, year}, reverse=True))


def _offering_page(offering_id: int, error: str | None = None, status: int = 200) -> Any:
    rows = svc.offering_rows(db.session(), _me(), offering_id)
    # masked ID numbers tell two 张伟 of one hall apart when one of them calls about her certificate
    return render_template("certs/offering.html", rows=rows, offering_id=offering_id, first=rows[0].award,
                           printable=sum(r.status.printable for r in rows), error=error,
                           credits=fmt_credits, masked=pii.masked), status


@pages.get("/certs/institution/offerings/<int:offering_id>")
@access("institution")
def institution_offering(offering_id: int) -> Any:
    return _offering_page(offering_id)


@pages.post("/certs/institution/offerings/<int:offering_id>/exports")
@access("institution")
def institution_export(offering_id: int) -> Any:
    data, _errors = load_form(NewExportForm(), request.form)
    try:
        job, new = svc.offering_export(db.session(), _me(), offering_id, bool(data and data["new"]))
    except AppError as exc:
        db.session().rollback()
        if exc.status == 404:
            raise
        return _offering_page(offering_id, exc.message, exc.status)
    _commit_or_send(job, new)
    if not new and job.state != "done":
        flash("该期项目的学分证书已在导出中，以下是这次导出的进度；完成后即可下载，无需再次导出。", "ok")
    return _job_page(job, new)


# ---------------------------------------------------------------- committee

def _too_long(count: int) -> str:
    return (f"证书编号过长：您输入了 {count} 个字符，最多可输入 {NUMBER_MAX} 个。证书编号为 16 位（4 位年份加 12 位"
            "字母和数字），请只输入证书上“证书编号：”之后的编号。")


def _number_box(source: Any) -> tuple[str, str | None]:
    """The number as typed in a search box (query or form), through its schema, and why it is refused, if it is:
    text over NUMBER_MAX characters is not read but said to be too long, the box keeping its first NUMBER_MAX (it
    was emptied without a word). Anything else malformed (a control character) is none."""
    raw = source.get("number", "")
    data, errors = load_form(NumberQuery(), {"number": raw})
    if data is not None:
        return data["number"], None
    raw = raw.strip() if isinstance(raw, str) else ""
    if len(raw) <= NUMBER_MAX:
        return "", None
    kept, _unreadable = load_form(NumberQuery(), {"number": raw[:NUMBER_MAX]})
    return (kept["number"] if kept else ""), _too_long(len(raw))


def _typed_number(source: Any) -> str:
    return _number_box(source)[0]


def _number_arg(source: Any) -> str:
    """The number typed in a search box, normalised (what is looked up)."""
    return svc.normalise_number(_typed_number(source))


def _lookup_dict(cert: Any, award: Any) -> dict[str, Any]:
    out = svc.verification(db.session(), cert.number) or {}
    restored = svc.restored_as(db.session(), award)
    return {**out, "restored": restored is not None,
            "restored_number": restored[1].number if restored and restored[1] else None,
            "name": award.name, "id_number_masked": pii.mask_id(pii.decrypt(award.id_enc)),
            "award_id": award.award_id, "offering_id": award.offering_id, "revoke_reason": award.revoke_reason}


@pages.get("/certs/lookup")
@access("reviewer")
def lookup_page() -> Any:
    box, too_long = _number_box(request.args)
    typed = svc.typed_number(box)  # shown back as typed; the search reads it normalised
    if too_long:
        return render_template("certs/lookup.html", number="", typed=typed, info=None, full_id=None,
                               number_error=too_long), 422
    number = svc.normalise_number(typed)
    found = svc.by_number(db.session(), number) if number else None
    info = _lookup_dict(*found) if found else None
    problem = svc.number_problem(number) if number and not found else None
    return render_template("certs/lookup.html", number=number, typed=typed, info=info, full_id=None,
                           problem=problem), (
        404 if number and not found else 200)


@pages.post("/certs/lookup/id")
@access("reviewer")
def lookup_full_id() -> Any:
    session = db.session()
    number = _number_arg(request.form)
    found = svc.by_number(session, number)
    if found is None:
        raise AppError(404, "not_found", "未找到该证书编号。")
    full_id = svc.reveal_id(session, _me(), *found)
    session.commit()
    return render_template("certs/lookup.html", number=number, info=_lookup_dict(*found), full_id=full_id)


# ---------------------------------------------------------------- public verification

@pages.get("/certs/verify")
@access("public")
def verify_form() -> Any:
    box, too_long = _number_box(request.args)
    typed = svc.typed_number(box)
    if too_long:  # said beside the box, with what was typed in it; never sent on to an address of that length
        return render_template("certs/verify.html", info=None, number="", typed=typed, asked=False,
                               number_error=too_long), 422
    number = svc.normalise_number(typed)
    if number:
        # the number's own address when it reads as typed; else what was typed, so that the page can say it back
        # (a slip is told in the verifier's characters, a 0 read as O is said to be)
        plain = number == svc.folded_number(typed) and not svc.number_problem(number)
        return redirect(f"/certs/verify/{quote(number if plain else typed, safe='')}", 303)
    return render_template("certs/verify.html", info=None, number="", asked=False)


def _verify_answer(raw: str, name: str = "") -> dict[str, Any]:
    """What the verification page says of the number in its address: the certificate, or why there is none, with
    the number as the verifier typed it (trimmed, a pasted 证书编号： label left out)."""
    box, too_long = _number_box({"number": raw})
    typed = svc.typed_number(box)
    if too_long:
        return {"info": None, "number": "", "typed": typed, "asked": False, "number_error": too_long}
    data, errors = load_form(NumberQuery(), {"number": raw})
    number = svc.normalise_number(typed)
    info = svc.verification(db.session(), number, name, name_check_allowed) if number and not errors else None
    problem = str(errors["number"]).rstrip("。") if errors else None if info else svc.number_problem(number)
    read_as = number if number and number != svc.folded_number(typed) else None
    # the box keeps what was typed; the sentence above it says back its first 40 characters
    return {"info": info, "number": typed[:40], "typed": typed, "asked": True,
            "problem": problem, "read_as": read_as}


@pages.get("/certs/verify/<string:number>")
@access("public")
def verify_page(number: str) -> Any:
    check_verify_rate()
    answer = _verify_answer(number)
    status = 200 if answer["info"] else 422 if answer.get("number_error") else 404
    return render_template("certs/verify.html", **answer), status


@pages.post("/certs/verify/<string:number>")
@access("public")
def verify_name(number: str) -> Any:
    """核对持证人姓名: the name the verifier holds comes in a form, so it stays out of addresses, the browser's
    history and every log; it is checked, never echoed back."""
    check_public_csrf()
    check_verify_rate()
    data, errors = load_form(VerifyNameForm(), request.form)
    answer = _verify_answer(number, data["name"] if data else "")
    status = 422 if answer.get("number_error") else 404 if answer["info"] is None else 422 if errors else 200
    resp = make_response(render_template("certs/verify.html", name_error=errors.get("name"), **answer), status)
    resp.headers["Cache-Control"] = "no-store"  # the answer about a name stays out of the browser's cache
    return resp


# ---------------------------------------------------------------- JSON API

@api.route("/me/certificates", methods=["GET"])
@access("trainee")
@api.response(200, CertificateListOut)
@api.doc(security=BEARER, summary="本人的学分证书（可打印的及其可打印日期）")
def api_my_certificates() -> Any:
    rows = svc.trainee_rows(db.session(), _me().trainee_key or "")
    return {"today": clock.today_local(), "items": [_row_dict(r) for r in rows]}


@api.route("/exports", methods=["POST"])
@access("trainee")
@api.response(202, JobOut)
@api.doc(security=BEARER, summary="导出学分证书（本人勾选的可打印证书，生成一个 PDF）；同一批证书已有导出文件"
                                  "（PDF 仍可下载）时返回那一个（existing 为 true），new 为 true 则重新生成",
         requestBody={"content": {"application/json": {"schema": ExportIn}}})
def api_export_create() -> Any:
    data = load_json(ExportIn())
    job, new = svc.create_trainee_export(db.session(), _me(), data["award_ids"], data["new"])
    _commit_or_send(job, new)
    return svc.job_dict(job, svc.reused_file(job, new)), 202


@api.route("/exports/<int:job_id>", methods=["GET"])
@access("trainee", "institution")
@api.response(200, JobOut)
@api.doc(security=BEARER, summary="导出进度；完成后 download_url 给出 PDF 地址")
def api_export(job_id: int) -> Any:
    session = db.session()
    job = _mended(session, svc.get_job(session, _me(), job_id))
    return svc.job_dict(job)


@api.route("/institution/offerings", methods=["GET"])
@access("institution")
@api.arguments(OfferingsQuery, location="query", as_kwargs=False)
@api.response(200, OfferingPageOut)
@api.doc(security=BEARER,
         summary="学分证书导出：本机构一个年度（学分计入年度，缺省为今年）的各期项目及可打印证书数，分页；"
                 "hint 为页面上的提示（该年度暂无已生效的授分时列出其他年度，1、2 月提示上一年度年末结束的期次）")
def api_institution_offerings(args: dict[str, Any]) -> Any:
    session = db.session()
    year = args["year"] or clock.today_local().year
    page = svc.institution_offerings(session, _me(), year, args)
    notes = svc.offering_notes(session, _me(), year, page["total"])
    return {**page, "year": year, "hint": notes["hint"], "last_year_printable": notes["late"],
            "years": [{"year": y, "count": n} for y, n in sorted(notes["years"].items(), reverse=True)]}


@api.route("/institution/offerings/<int:offering_id>/certificates", methods=["GET"])
@access("institution")
@api.response(200, CertificateListOut)
@api.doc(security=BEARER, summary="本机构一期项目的全部学分证书及可打印情况")
def api_offering_certificates(offering_id: int) -> Any:
    rows = svc.offering_rows(db.session(), _me(), offering_id)
    return {"today": clock.today_local(), "items": [_row_dict(r) for r in rows]}


@api.route("/institution/offerings/<int:offering_id>/exports", methods=["POST"])
@access("institution")
@api.response(202, JobOut)
@api.arguments(NewExportQuery, location="query", as_kwargs=False)
@api.doc(security=BEARER, summary="导出本机构一期项目的全部可打印学分证书（一个 PDF）；该期已有导出排队或生成中时，"
                                  "返回那一个导出；已有相同的导出文件时返回那一个（existing 为 true），"
                                  "?new=true 则重新生成")
def api_offering_export(args: dict[str, Any], offering_id: int) -> Any:
    job, new = svc.offering_export(db.session(), _me(), offering_id, args["new"])
    _commit_or_send(job, new)
    return svc.job_dict(job, svc.reused_file(job, new)), 202


@api.route("/verify/<string:number>", methods=["GET"])
@access("public")
@api.response(200, VerifyOut)
@api.doc(summary="证书验证（公开，限频）")
def api_verify(number: str) -> Any:
    check_verify_rate()
    info = svc.verification(db.session(), number)
    if info is None:
        raise AppError(404, "not_found", "未找到该证书编号，请核对后重试。")
    return info


@api.route("/certificates/<string:number>", methods=["GET"])
@access("reviewer")
@api.response(200, LookupOut)
@api.doc(security=BEARER, summary="按证书编号查询（继续医学教育委员会）")
def api_lookup(number: str) -> Any:
    found = svc.by_number(db.session(), number)
    if found is None:
        raise AppError(404, "not_found", "未找到该证书编号。")
    return _lookup_dict(*found)
