"""Input (the year asked for) and output of 达标情况查询."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from marshmallow import EXCLUDE, validates

from services.common import clock
from services.common.schemas import ValidationError, ZhSchema, fields

FIRST_YEAR = 2000
YEAR_MESSAGE = "年份应为四位数字，如 2026。"


class YearQuery(ZhSchema):
    """?year=2026; other query keys (WeChat adds from=singlemessage to shared links) are ignored."""

    class Meta:
        unknown = EXCLUDE

    year = fields.Integer(strict=False, load_default=None,
                          error_messages={"invalid": YEAR_MESSAGE, "null": YEAR_MESSAGE})

    @validates("year")
    def _year_in_range(self, value: int | None, **_: object) -> None:
        last = clock.today_local().year + 1
        if value is not None and not FIRST_YEAR <= value <= last:
            raise ValidationError(f"年份应在 {FIRST_YEAR} 到 {last} 之间。")


class Credits(fields.Decimal):
    """Credits as a string with two decimals ("25.00"), never a float."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(places=2, as_string=True, **kwargs)  # type: ignore[arg-type]


class RequirementOut(ZhSchema):
    total = Credits()
    class1 = Credits()


class SumsOut(ZhSchema):
    class1 = Credits()
    class2 = Credits()
    total = Credits()
    count = fields.Integer()


class AwardOut(ZhSchema):
    id = fields.Integer()
    project_number = fields.String()
    project_title = fields.String()
    institution_name = fields.String()
    credit_class = fields.String()
    credit_value = Credits()
    offering_starts_on = fields.Date()
    offering_ends_on = fields.Date()
    activity_date = fields.Date()
    method = fields.String(metadata={"description": "attendance 根据会场考勤授分 | manual 手工录入学分（非有效学分）"})
    state = fields.String(metadata={"description": "pending 待生效 | effective 已生效 | withdrawn 已撤销"})
    state_label = fields.String()
    counted = fields.Boolean(metadata={"description": "是否计入达标（仅已生效的考勤授分）"})
    status_text = fields.String()
    printable = fields.Boolean(metadata={"description": "现在是否可打印学分证书"})
    printable_from = fields.Date(allow_none=True)
    printable_text = fields.String()


class CheckinOut(ZhSchema):
    offering_id = fields.Integer()
    project_number = fields.String()
    project_title = fields.String()
    institution_name = fields.String()
    starts_on = fields.Date(allow_none=True, metadata={"description": "期次的举办日期；学分系统尚未收到该期次时为空"})
    ends_on = fields.Date(allow_none=True)
    first_scan_on = fields.Date()
    last_scan_on = fields.Date()
    checkins = fields.Integer(metadata={"description": "签到次数（含代签）"})
    forced = fields.Integer(metadata={"description": "其中代签次数"})
    sign_outs = fields.Integer(metadata={"description": "其中签退次数（签退时段的扫码）"})
    state = fields.String(metadata={"description": (
        "awaiting 已签到，待举办机构授分 | not_awarded 已签到，未获授分：请联系举办机构 | not_held 项目未举办")})
    state_label = fields.String()
    note = fields.String(metadata={"description": "接下来会怎样、该找谁"})


class YearOut(ZhSchema):
    year = fields.Integer()
    requirement = fields.Nested(RequirementOut)
    requirement_text = fields.String()
    effective = fields.Nested(SumsOut, metadata={"description": "已生效的考勤授分，计入达标"})
    pending = fields.Nested(SumsOut, metadata={"description": "待生效（执行情况反馈审核通过后生效），暂不计入"})
    manual = fields.Nested(SumsOut, metadata={"description": "手工录入学分：非有效学分，不计入达标"})
    withdrawn = fields.Nested(SumsOut, metadata={"description": "已撤销，不计入"})
    not_held = fields.Nested(SumsOut, metadata={"description": "所属期次已取消举办或已标记未举办：不会生效，不计入"})
    met = fields.Boolean()
    missing_class1 = Credits()
    missing_total = Credits()
    missing_text = fields.String()
    status_text = fields.String()
    awards = fields.List(fields.Nested(AwardOut), allow_none=True)
    checkins_without_award = fields.List(
        fields.Nested(CheckinOut), allow_none=True, attribute="checkins",
        metadata={"description": "本年度已签到、但没有本人授分的期次（已撤销的授分在 awards 中）"})


class TraineeOut(ZhSchema):
    name = fields.String()
    id_number_masked = fields.String()


class ComplianceOut(ZhSchema):
    trainee = fields.Nested(TraineeOut)
    today = fields.Date(metadata={"description": "北京时间的今天（打印日期按此判断）"})
    years = fields.List(fields.Nested(YearOut), metadata={"description": "按年度从新到旧；指定 year 时只含该年度"})


# ---- the same output without marshmallow ---------------------------------------------------------------------
# ComplianceOut describes the API (OpenAPI) and is the reference; dumping a trainee's years through it took a third
# of the request (some 330 fields). dump_compliance writes the same JSON by hand; tests/credits/test_compliance.py
# compares the two on awards of every kind.

_CENTS = Decimal("0.01")


def _credits(value: Decimal) -> str:
    return format(Decimal(value).quantize(_CENTS), "f")  # as Credits dumps it


def _date(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _sums(s: Any) -> dict[str, Any]:
    return {"class1": _credits(s.class1), "class2": _credits(s.class2), "total": _credits(s.total),
            "count": int(s.count)}


def _award(a: Any) -> dict[str, Any]:
    return {"id": int(a.id), "project_number": a.project_number, "project_title": a.project_title,
            "institution_name": a.institution_name, "credit_class": a.credit_class,
            "credit_value": _credits(a.credit_value), "offering_starts_on": _date(a.offering_starts_on),
            "offering_ends_on": _date(a.offering_ends_on), "activity_date": _date(a.activity_date),
            "method": a.method, "state": a.state, "state_label": a.state_label, "counted": bool(a.counted),
            "status_text": a.status_text, "printable": bool(a.printable), "printable_from": _date(a.printable_from),
            "printable_text": a.printable_text}


def _checkin(c: Any) -> dict[str, Any]:
    return {"offering_id": int(c.offering_id), "project_number": c.project_number, "project_title": c.project_title,
            "institution_name": c.institution_name, "starts_on": _date(c.starts_on), "ends_on": _date(c.ends_on),
            "first_scan_on": _date(c.first_scan_on), "last_scan_on": _date(c.last_scan_on),
            "checkins": int(c.checkins), "forced": int(c.forced), "sign_outs": int(c.sign_outs),
            "state": c.state, "state_label": c.state_label,
            "note": c.note}


def _year(y: Any) -> dict[str, Any]:
    return {"year": int(y.year),
            "requirement": {"total": _credits(y.requirement.total), "class1": _credits(y.requirement.class1)},
            "requirement_text": y.requirement_text, "effective": _sums(y.effective), "pending": _sums(y.pending),
            "manual": _sums(y.manual), "withdrawn": _sums(y.withdrawn), "not_held": _sums(y.not_held),
            "met": bool(y.met),
            "missing_class1": _credits(y.missing_class1), "missing_total": _credits(y.missing_total),
            "missing_text": y.missing_text, "status_text": y.status_text,
            "awards": None if y.awards is None else [_award(a) for a in y.awards],
            "checkins_without_award": None if y.checkins is None else [_checkin(c) for c in y.checkins]}


def dump_compliance(data: dict[str, Any]) -> dict[str, Any]:
    """What ComplianceOut().dump(data) gives."""
    return {"trainee": {"name": data["trainee"]["name"], "id_number_masked": data["trainee"]["id_number_masked"]},
            "today": _date(data["today"]), "years": [_year(y) for y in data["years"]]}
