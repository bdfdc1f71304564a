"""达标情况查询 for the trainee on the phone, and the same as JSON API.

GET /credits/compliance?year=2026      page (trainee session; anonymous → the trainee login)
GET /credits/api/me/compliance?year=   JSON (trainee bearer token)

Only the signed-in trainee's own awards are read (by the account's trainee_key, never by a parameter); the
ID number is shown masked. A trainee still on the initial password is sent to change it first.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request
from flask_smorest import Blueprint as ApiBlueprint

from services.common import auth as cauth
from services.common import clock
from services.common.auth import access, current
from services.common.errors import AppError, wants_json
from services.common.formats import fmt_credits
from services.common.schemas import ValidationError

from ..accounts.models import TraineeAccount
from ..accounts.views import LOGIN_PAGE, PASSWORD_PAGE, masked_id, signed_in_account
from ..db import db
from . import requirements
from .schemas import ComplianceOut, YearQuery
from .services import yearly_summary

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


def _summary(account: TraineeAccount, year: int | None) -> dict[str, Any]:
    today = clock.today_local()
    years = yearly_summary(db.session, account.trainee_key, today, year=year)
    return {"trainee": {"name": account.name, "id_number_masked": masked_id(account)}, "today": today,
            "years": years}


def _year_arg() -> int | None:
    try:
        return YearQuery().load(request.args.to_dict())["year"]
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"year": exc.messages}
        first = messages.get("year") or ["年份不正确。"]
        raise AppError(422, "invalid_input", first[0] if isinstance(first, list) else str(first), messages) from None


@pages.get(PAGE)
@access("trainee")
def compliance_page() -> Any:
    try:
        account = signed_in_account()
    except AppError as exc:
        if exc.status != 401:
            raise
        return cauth.clear_login_cookie(redirect(LOGIN_PAGE))
    if account.must_change:
        return redirect(PASSWORD_PAGE)
    year = _year_arg()
    today = clock.today_local()
    data = _summary(account, year if year is not None else today.year)
    selected = next(s for s in data["years"] if s.awards is not None)
    return render_template("credits/trainee/compliance.html", account=account, masked_id=masked_id(account),
                           today=today, years=data["years"], selected=selected, credits=fmt_credits)


@api.route("/me/compliance", methods=["GET"])
@access("trainee")
@api.arguments(YearQuery, location="query", as_kwargs=True)
@api.response(200, ComplianceOut)
@api.doc(security=[{"bearer": []}], summary="达标情况查询（本人）")
def api_compliance(year: int | None = None) -> Any:
    """本人各年度的学分：已生效（计入达标，按Ⅰ类、Ⅱ类）、待生效、手工录入（无效，不计入达标）、已撤销，
    年度要求、是否达标及还差多少；每条授分的证书可打印时间。不指定 year 时列出全部年度（含今年）。
    仍在使用初始密码时返回 403（code = password_change_required），须先修改密码。"""
    account = signed_in_account()
    if account.must_change:
        raise AppError(403, "password_change_required", MUST_CHANGE)
    data = _summary(account, year)
    if year is not None:
        data["years"] = [s for s in data["years"] if s.year == year]
    return data
