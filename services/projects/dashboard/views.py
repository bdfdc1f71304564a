"""首页 of the committee: GET /projects/review (page), GET /projects/api/review/dashboard (JSON) and the lists
behind the figures that have no list elsewhere, GET /projects/review/dashboard/list?what=…"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, redirect, render_template, request
from flask_smorest import Blueprint as ApiBlueprint

from services.common import clock
from services.common.auth import access
from services.common.inputs import keep_args, load_query
from services.common.paging import keep_per_page, past_last

from ..catalogue.services import fmt_decimal
from ..db import db
from . import services
from .schemas import DashboardOutSchema, ListQuerySchema

pages = Blueprint("projects_dashboard", __name__, template_folder="templates")
api = ApiBlueprint("projects_dashboard_api", __name__, url_prefix="/projects/api",
                   description="继续医学教育委员会首页（统计与提醒）")
BEARER = [{"bearer": []}]
QUERY_LABELS = {"what": "列表", "month": "月份", "page": "页码", "per_page": "每页条数"}


@pages.get("/projects/review")
@access("reviewer")
def home() -> Any:
    data = services.dashboard(db.session(), clock.today_local())
    chart = services.bar_chart(data["credits_by_month"])
    return render_template("projects/dashboard/home.html", d=data, chart=chart, fmt_decimal=fmt_decimal,
                           first_steps=services.first_steps(db.session()))


@pages.get("/projects/review/dashboard/list")
@access("reviewer")
def figure_list() -> Any:
    args = load_query(ListQuerySchema(), QUERY_LABELS)
    what = args["what"]
    if what == "report_overdue":  # an old link or bookmark: the list moved to its own page, with the same paging
        moved = {k: args[k] for k in ("page", "per_page") if k in request.args}
        return redirect(services.OVERDUE_URL + (f"?{urlencode(moved)}" if moved else ""))
    month = services.parse_month(args["month"]) if what in services.WITH_MONTH else None
    rows = services.list_rows(db.session(), what, clock.today_local(), month)
    per_page = args["per_page"]
    pages_n = max(1, math.ceil(len(rows) / per_page))
    page = min(args["page"], pages_n)
    title = services.LISTS[what]
    if month is not None:
        title = title.replace("当月", f"{month.year}年{month.month}月")
    return render_template("projects/dashboard/list.html", what=what, title=title, total=len(rows),
                           rows=rows[(page - 1) * per_page: page * per_page], page=page, pages=pages_n,
                           keep=keep_per_page(keep_args(args, ("what", "month")), args),
                           past_last=past_last(args, {"total": len(rows), "page": page}), fmt_decimal=fmt_decimal,
                           deadline_label="上报截止日期" if what == "filing_draft" else "反馈应提交日期")


@api.route("/review/dashboard", methods=["GET"])
@access("reviewer")
@api.response(200, DashboardOutSchema)
@api.doc(security=BEARER, summary="委员会首页：登记与反馈按状态统计、到期与逾期、本月举办、近 12 个月授予学分")
def api_dashboard() -> Any:
    return services.dashboard(db.session(), clock.today_local())
