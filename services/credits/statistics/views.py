"""年度统计 (the committee): the page and its Excel file."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from services.common import clock
from services.common.auth import access
from services.common.events import CANCELLED_BY
from services.common.formats import fmt_credits
from services.common.inputs import load_query
from services.common.schemas import IdRange, Length, Range, ZhSchema, fields
from services.common.web import XLSX, download

from ..db import db
from . import services as svc

pages = Blueprint("credits_statistics", __name__, template_folder="templates")


class YearQuery(ZhSchema):
    year = fields.Integer(load_default=None, validate=Range(2000, 2100))


class StatisticsQuery(YearQuery):
    q = fields.String(load_default="", validate=Length(max=100))  # 申办机构, by the name the rows show


class UnseenQuery(YearQuery):
    institution_id = fields.Integer(load_default=None, validate=IdRange())


def _figures() -> Any:
    args = load_query(StatisticsQuery(), {"year": "年度", "q": "申办机构"})
    year = args["year"] or clock.today_local().year
    return svc.year_figures(db.session(), year, clock.today_local(), args["q"].strip())


@pages.get("/credits/statistics")
@access("reviewer")
def statistics_page() -> Any:
    figures = _figures()
    years = svc.years_known(db.session(), clock.today_local().year, figures.year)
    return render_template("credits/statistics/year.html", f=figures, credits=fmt_credits, years=years)


@pages.get("/credits/statistics.xlsx")
@access("reviewer")
def statistics_export() -> Any:
    figures = _figures()
    name = f"{figures.year}年度继续医学教育统计{'-' + figures.search if figures.search else ''}.xlsx"
    return download(svc.export_xlsx(figures), XLSX, "statistics.xlsx", name)


def _unseen() -> tuple[dict[str, Any], int, list[Any]]:
    args = load_query(UnseenQuery(), {"year": "年度", "institution_id": "申办机构"})
    year = args["year"] or clock.today_local().year
    return args, year, svc.unseen_offerings(db.session(), year, clock.today_local(), args["institution_id"])


@pages.get("/credits/statistics/unseen.xlsx")
@access("reviewer")
def unseen_export() -> Any:
    _args, year, rows = _unseen()
    names = svc.names_now(db.session(), year, rows)
    return download(svc.export_unseen_xlsx(year, rows, names), XLSX, "unseen.xlsx", f"{year}年度{svc.UNSEEN}.xlsx")


@pages.get("/credits/statistics/cancelled")
@access("reviewer")
def cancelled_page() -> Any:
    """已取消举办/未举办, one 期 a row (of one host, from its row's figure, or of all): which, by whom, when, why."""
    args = load_query(UnseenQuery(), {"year": "年度", "institution_id": "申办机构"})
    year = args["year"] or clock.today_local().year
    rows = svc.cancelled_offerings(db.session(), year, args["institution_id"])
    return render_template("credits/statistics/cancelled.html", year=year, rows=rows,
                           names=svc.names_now(db.session(), year, rows), institution_id=args["institution_id"],
                           label=svc.CANCELLED, by=CANCELLED_BY)


@pages.get("/credits/statistics/unseen")
@access("reviewer")
def unseen_page() -> Any:
    """已过举办日期未见举办记录, one 期 a row (of one host, from its row's figure, or of all): the count alone did not
    say which 期 to ask each host about."""
    args, year, rows = _unseen()
    return render_template("credits/statistics/unseen.html", year=year, rows=rows,
                           names=svc.names_now(db.session(), year, rows),
                           institution_id=args["institution_id"], label=svc.UNSEEN)
