"""Query arguments of the lists behind the figures, and the JSON shape of the dashboard."""

from __future__ import annotations

from marshmallow import ValidationError, validates_schema

from services.common.paging import PageArgsSchema
from services.common.schemas import OneOf, Regexp, ZhSchema, fields

from .services import LISTS, WITH_MONTH


class ListQuerySchema(PageArgsSchema, ZhSchema):
    what = fields.String(required=True, validate=OneOf(tuple(LISTS), LISTS),
                         metadata={"description": " / ".join(LISTS)})
    month = fields.String(load_default=None,
                          validate=Regexp(r"^20\d{2}-(0[1-9]|1[0-2])$", "月份格式应为 2026-05（2000 至 2099 年）。"),
                          metadata={"description": "月份 YYYY-MM（held、credited 必填）"})

    @validates_schema
    def _month_needed(self, data: dict, **_: object) -> None:
        if data.get("what") in WITH_MONTH and not data.get("month"):
            raise ValidationError("请指定月份。", "month")


class DashboardFigureSchema(ZhSchema):
    state = fields.String()
    label = fields.String()
    count = fields.Integer()
    url = fields.String()


class DashboardCountSchema(ZhSchema):
    count = fields.Integer()
    url = fields.String()
    days = fields.Integer()
    month = fields.String()


class DashboardMonthSchema(ZhSchema):
    month = fields.String(metadata={"description": "YYYY-MM"})
    label = fields.String()
    awards = fields.Integer(metadata={"description": "授分人次（不含手工录入）"})
    credits = fields.Decimal(as_string=True, metadata={"description": "学分合计"})
    url = fields.String()


class DashboardOutSchema(ZhSchema):
    today = fields.Date()
    filings = fields.List(fields.Nested(DashboardFigureSchema), metadata={"description": "举办前登记，按状态"})
    reports = fields.List(fields.Nested(DashboardFigureSchema), metadata={"description": "执行情况反馈，按状态"})
    reports_due_soon = fields.Nested(DashboardCountSchema, metadata={"description": "3 天内到期未提交的执行情况反馈"})
    reports_overdue = fields.Nested(DashboardCountSchema, metadata={"description": "已逾期未提交的执行情况反馈"})
    held_this_month = fields.Nested(DashboardCountSchema, metadata={"description": "本月举办的期次"})
    credits_by_month = fields.List(fields.Nested(DashboardMonthSchema),
                                   metadata={"description": "近 12 个月授予学分（按活动日期，不含手工录入）"})
