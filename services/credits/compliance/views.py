"""达标情况查询 for the trainee on the phone, and the same as JSON API.

GET /credits/compliance?year=2026      page (trainee session; anonymous → the trainee login)
GET /credits/api/me/compliance?year=   JSON (trainee bearer token)

Only the signed-in trainee's own awards and check-ins are read (by the account's trainee_key, never by a parameter);
the ID number is shown masked. A trainee still on the initial password is sent to change it first.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from flask import Blueprint, jsonify, redirect, render_template, request
from flask_smorest import Blueprint as ApiBlueprint

from services.common import auth as cauth
from services.common import clock
from services.common.auth import access, current
from services.common.errors import AppError, wants_json
from services.common.formats import fmt_credits
from services.common.inputs import typed_args
from services.common.schemas import ValidationError

from ..accounts.views import LOGIN_PAGE, PASSWORD_PAGE, SESSION_GONE, masked_id, session_account_id
from ..db import db
from . import requirements
from .schemas import ComplianceOut, YearQuery, dump_compliance
from .services import account_with_awards, checkins_without_award, summarise

PAGE = "/credits/compliance"
FORBIDDEN = "达标情况查询仅供学员本人使用，请退出当前账号后用学员账号（身份证号码）登录。"
MUST_CHANGE = "您正在使用初始密码（姓名全拼），请先修改密码（POST /credits/api/auth/password）后再查询学分。"

pages = Blueprint("credits_compliance", __name__, template_folder="templates")
api = ApiBlueprint("credits_compliance_api", __name__, url_prefix="/credits/api",
                   description="达标情况查询：本人各年度学分（Ⅰ类、Ⅱ类）、待生效和手工录入学分、是否达标及证书可打印时间")


@pages.record
def _check_requirements(_state: Any) -> None:
    """A malformed CME_CREDIT_REQUIREMENTS stops the service at start-up."""
    requirements.check_configuration()


def _trainee_only() -> Any:
    p = current()
    if p is None:
        if request.method == "GET" and not wants_json():
            return redirect(LOGIN_PAGE)
        raise AppError(401, "login_required", "请先登录。")
    if p.role != "trainee":
        raise AppError(403, "forbidden", FORBIDDEN)
    return None


pages.before_request(_trainee_only)
api.before_request(_trainee_only)


@dataclass(frozen=True)
class SignedIn:
    """The trainee of the session, as read with the awards in one query (services.account_with_awards)."""

    trainee_key: str
    name: str
    id_enc: str
    must_change: bool
    rows: list[Any]

    @cached_property  # the page shows it twice; each is a decryption
    def masked_id(self) -> str:
        return masked_id(self)


def _signed_in() -> SignedIn:
    """The session's account and its awards in one read; a token whose account is gone (or is not ours) must
    log in again, as signed_in_account() says."""
    account_id, trainee_key = session_account_id()
    rows = [] if account_id is None else db.retry_dropped(lambda conn: account_with_awards(conn, account_id))
    if not rows or rows[0].account_key != trainee_key:
        raise AppError(401, "login_required", SESSION_GONE)
    first = rows[0]
    return SignedIn(first.account_key, first.account_name, first.account_id_enc, bool(first.account_must_change),
                    rows)


def _summary(trainee: SignedIn, year: int | None, also: tuple[int, ...] = ()) -> dict[str, Any]:
    today = clock.today_local()
    # the second read: her check-ins of offerings that have no award of hers (any award of hers, withdrawn too, is
    # a line of its own already)
    awarded = {row.offering_id for row in trainee.rows if row.id is not None}
    checkins = db.retry_dropped(lambda conn: checkins_without_award(conn, trainee.trainee_key, awarded))
    return {"trainee": {"name": trainee.name, "id_number_masked": trainee.masked_id}, "today": today,
            "years": summarise(trainee.rows, today, year=year, also=also, checkins=checkins)}


LAST_YEAR_FIRST_UNTIL_MONTH = 3  # through March an empty year opens the page on last year


def _holds_anything(summary: Any) -> bool:
    """A year with an award of hers (withdrawn ones too) or a check-in of hers: one worth opening the page on."""
    return bool(summary.awards or summary.checkins)


def _year_arg() -> int | None:
    try:
        # as every list page: ?year= left blank is this page's default year, ２０２６ is 2026
        return YearQuery().load(typed_args())["year"]
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"year": exc.messages}
        first = messages.get("year") or ["年份不正确。"]
        raise AppError(422, "invalid_input", first[0] if isinstance(first, list) else str(first), messages) from None


@pages.get(PAGE)
@access("trainee")
def compliance_page() -> Any:
    try:
        trainee = _signed_in()
    except AppError as exc:
        if exc.status != 401:
            raise
        return cauth.clear_login_cookie(redirect(LOGIN_PAGE))
    if trainee.must_change:
        return redirect(PASSWORD_PAGE)
    year = _year_arg()
    today = clock.today_local()
    # last year is always a chip: early in a year it is the one she asks about, awarded or not (it was reachable
    # only by editing the URL)
    if year is not None or today.month > LAST_YEAR_FIRST_UNTIL_MONTH:  # the year asked for, else this year
        shown = year if year is not None else today.year
        data = _summary(trainee, shown, also=(today.year - 1,))
        selected = next(s for s in data["years"] if s.year == shown)
    else:  # every year's lines: which year opens depends on what this year and last year hold
        data = _summary(trainee, None, also=(today.year - 1,))
        by_year = {s.year: s for s in data["years"]}
        selected = by_year[today.year]
        last = by_year[today.year - 1]
        # in January this year is empty (a red 未达标, 暂无) and what she came for is last year's result and its
        # printable certificates: the page opens on last year and says so, this year one tap away. Only in the
        # year's first quarter (December's offerings print from about February): later an empty year is news she
        # must see first, 未达标 with the 'earlier' card below pointing at last year
        if not _holds_anything(selected) and _holds_anything(last):
            selected = last
    opened_on_last = year is None and selected.year == today.year - 1
    # early in a year hers is empty, and what she came for is last year's result: said first, one tap away
    earlier = None if year is not None or opened_on_last or selected.awards else next(
        (s for s in data["years"] if s.year < selected.year
         and (s.effective.count or s.pending.count or s.manual.count)), None)
    return render_template("credits/trainee/compliance.html", account=trainee, masked_id=trainee.masked_id,
                           today=today, years=data["years"], selected=selected, earlier=earlier,
                           opened_on_last=opened_on_last,
                           credits=fmt_credits)


@api.route("/me/compliance", methods=["GET"])
@access("trainee")
@api.arguments(YearQuery, location="query", as_kwargs=True)
@api.response(200, ComplianceOut)
@api.doc(security=[{"bearer": []}], summary="达标情况查询（本人）")
def api_compliance(year: int | None = None) -> Any:
    """本人各年度的学分：已生效（计入达标，按Ⅰ类、Ⅱ类）、待生效、手工录入（非有效学分，不计入达标）、已撤销，
    年度要求、是否达标及还差多少；每条授分的证书可打印时间；已签到但没有本人授分的期次及其去向
    （待举办机构授分、未获授分、项目未举办）。不指定 year 时列出全部年度（含今年）。
    仍在使用初始密码时返回 403（code = password_change_required），须先修改密码。"""
    trainee = _signed_in()
    if trainee.must_change:
        raise AppError(403, "password_change_required", MUST_CHANGE)
    data = _summary(trainee, year)
    if year is not None:
        data["years"] = [s for s in data["years"] if s.year == year]
    return jsonify(dump_compliance(data))  # ComplianceOut's JSON, written without marshmallow (see schemas.py)
