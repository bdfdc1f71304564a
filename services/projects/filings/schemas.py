"""Input and output schemas of 项目举办前登记 (the form and the JSON API load through the same rules)."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import Schema, ValidationError, pre_load, validate, validates_schema

from services.common.errors import AppError
from services.common.inputs import half_width
from services.common.paging import PageArgsSchema, page_schema
from services.common.schemas import (
    CalendarDate,
    Length,
    NotBlank,
    OneOf,
    Range,
    ZhFormSchema,
    ZhSchema,
    fields,
    reason_field,
)

from ..catalogue.models import MODES
from ..catalogue.schemas import ProjectOutSchema

PHONE_RE = r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8}(-\d{1,6})?)$"
PHONE_MSG = "请填写手机号码或带区号的固定电话，如 13800000000 或 029-85323000。"


class PhoneField(fields.String):
    """联系电话 as typed: 全角 digits and a full-width dash folded, spaces and brackets dropped ("138 0000 0000",
    "(029)85323000"), a mobile's dashes and +86 dropped ("138-0000-0000"), then checked as a mobile or a landline
    with its area code."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = re.sub(r"[\s()（）]", "", half_width(super()._deserialize(value, attr, data, **kwargs)))
        text = text.replace("\u2014", "-").replace("\u2013", "-")
        # a mobile in groups of dashes (138-0000-0000) or after the country code (+86, 0086): the 11 digits
        mobile = re.fullmatch(r"(?:\+?86-?|0086-?)?(1[3-9]\d(?:-?\d){8})", text)
        if mobile:
            text = mobile.group(1).replace("-", "")
        if text and not re.match(PHONE_RE, text):
            raise ValidationError(PHONE_MSG)
        return text
PROJECT_STATUSES = ("unfiled", "draft", "submitted", "returned", "approved", "cancelled")
PROJECT_STATUS_LABELS = {"unfiled": "有未登记期次", "draft": "有草稿", "submitted": "待审批",
                         "returned": "已退回", "approved": "已审批通过", "cancelled": "有未举办期次"}
FIELD_LABELS = {"starts_on": "举办开始日期", "ends_on": "举办结束日期", "venue": "举办地点", "mode": "举办方式",
                "expected_trainees": "预计培训人数", "contact_person": "联系人", "contact_phone": "联系电话",
                "schedule": "日程安排", "date": "日期", "start": "开始时间", "end": "结束时间", "title": "内容",
                "version": "版本", "notice": "会议通知", "agenda": "会议日程", "note": "说明",
                "online_supervision": "线上学员授予学分监管说明"}


class ScheduleItemInSchema(ZhSchema):
    date = CalendarDate(required=True, error_messages={"required": "未填写。"})
    start = fields.Time(required=True, error_messages={"required": "未填写。"})
    end = fields.Time(required=True, error_messages={"required": "未填写。"})
    title = fields.String(required=True, validate=[NotBlank(), Length(max=200)])

    @pre_load
    def _blank_is_missing(self, data: Any, **_: Any) -> Any:
        """A row of the page's table with only its 内容 typed says 第 4 行日期：未填写, not a format error."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data

    # also when another field of the row is wrong: every mistake of the form is shown at once, not one per round
    @validates_schema(skip_on_field_errors=False)
    def _order(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("start") and data.get("end") and data["end"] <= data["start"]:
            raise ValidationError("结束时间应晚于开始时间。", "end")


MAX_SPAN_DAYS = 92
NOTE_MAX = 500


class _FilingFields:
    starts_on = CalendarDate(allow_none=True)
    ends_on = CalendarDate(allow_none=True)
    venue = fields.String(validate=Length(max=200))
    mode = fields.String(validate=OneOf(MODES))
    expected_trainees = fields.Integer(allow_none=True, validate=Range(1, 100000))
    contact_person = fields.String(validate=Length(max=50))
    contact_phone = PhoneField()
    schedule = fields.List(fields.Nested(ScheduleItemInSchema),
                           validate=validate.Length(max=200, error="日程最多填写 {max} 行。"))
    note = fields.String(validate=Length(max=NOTE_MAX),
                         metadata={"description": "说明（可选）：对举办日期、日程或退回意见的说明，委员会审批时可见"})
    version = fields.Integer(load_default=None, metadata={"description": "读取时的 version；不一致时返回 409"})

    @validates_schema(skip_on_field_errors=False)
    def _dates(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("starts_on") and data.get("ends_on") and data["ends_on"] < data["starts_on"]:
            raise ValidationError("结束日期不能早于开始日期。", "ends_on")
        # one 期 lasting more than a season is a typo (the office's walk filed 2026-12-10 to 2027-12-11)
        if data.get("starts_on") and data.get("ends_on") and (data["ends_on"] - data["starts_on"]).days > MAX_SPAN_DAYS:
            raise ValidationError(f"一期的举办时间不能超过 {MAX_SPAN_DAYS} 天，请核对结束日期。", "ends_on")


class FilingInSchema(_FilingFields, ZhSchema):
    """PUT /projects/api/filings/<id>: the fields sent are set, the others keep their value."""


class FilingFormSchema(_FilingFields, ZhFormSchema):
    pass


class SubmitSchema(ZhSchema):
    version = fields.Integer(load_default=None)


class CancelSchema(ZhSchema):
    """取消举办 (the office) or 标记未举办 (the committee): why the approved 期 is not held."""

    reason = reason_field("请填写未举办的原因。", max_length=500)
    version = fields.Integer(load_default=None)


class CancelFormSchema(CancelSchema, ZhFormSchema):
    pass


def cancel_refused(exc: AppError) -> AppError:
    """The API's sentence for a refused reason of 取消举办/标记未举办: the one the page shows beside the field."""
    said = (exc.fields or {}).get("reason")
    if not isinstance(said, str):
        return exc
    return AppError(422, "invalid_input", said if said.startswith("请") else f"未举办的原因{said}", exc.fields)


class FilingsQuerySchema(PageArgsSchema, ZhSchema):
    q = fields.String(load_default=None, validate=Length(max=100), metadata={"description": "项目名称"})
    number = fields.String(load_default=None, validate=Length(max=40), metadata={"description": "项目编号"})
    year = fields.Integer(load_default=None, validate=Range(2000, 2100))
    status = fields.String(load_default=None, validate=OneOf(PROJECT_STATUSES, PROJECT_STATUS_LABELS),
                           metadata={"description": "unfiled 有未登记期次 / draft / submitted / returned / approved / "
                                                    "cancelled 有未举办期次"})


class ScheduleItemOutSchema(Schema):
    date = fields.String()
    start = fields.String()
    end = fields.String()
    title = fields.String()


class UploadOutSchema(Schema):
    kind = fields.String()
    label = fields.String()
    filename = fields.String()
    size = fields.Integer()
    width = fields.Integer()
    height = fields.Integer()
    sha256 = fields.String()
    url = fields.String()


class HistoryOutSchema(Schema):
    at = fields.DateTime()
    actor_name = fields.String()
    action = fields.String()
    from_state = fields.String(allow_none=True)
    to_state = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)


class FilingOutSchema(Schema):
    id = fields.Integer()
    offering_id = fields.Integer()
    seq = fields.Integer()
    seq_label = fields.String()
    institution_id = fields.Integer()
    institution_name = fields.String()
    project = fields.Nested(ProjectOutSchema)
    state = fields.String()
    state_label = fields.String()
    version = fields.Integer()
    starts_on = fields.Date(allow_none=True)
    ends_on = fields.Date(allow_none=True)
    venue = fields.String()
    mode = fields.String()
    expected_trainees = fields.Integer(allow_none=True)
    contact_person = fields.String()
    contact_phone = fields.String(metadata={"description": "本机构可见完整号码，其他人看到掩码"})
    schedule = fields.List(fields.Nested(ScheduleItemOutSchema))
    uploads = fields.List(fields.Nested(UploadOutSchema))
    missing = fields.List(fields.String(), metadata={"description": "上报前尚缺的项目"})
    return_reason = fields.String(allow_none=True)
    note = fields.String(metadata={"description": "申办机构的说明"})
    checks = fields.List(fields.String(),
                         metadata={"description": "核对提示（不影响上报）：如举办日期不在项目目录的举办时间内"})
    submitted_at = fields.DateTime(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True, metadata={"description": "取消举办或标记未举办的时间"})
    cancelled_by = fields.String(allow_none=True, metadata={"description": "institution 举办机构取消举办 / "
                                                                           "committee 委员会标记未举办"})
    cancel_reason = fields.String(allow_none=True)
    can_cancel = fields.Boolean(metadata={"description": "本机构现在可以取消举办（审批通过且尚未开始）"})
    history = fields.List(fields.Nested(HistoryOutSchema))


class OfferingStateOutSchema(Schema):
    seq = fields.Integer()
    label = fields.String()
    filing_id = fields.Integer()
    state = fields.String()
    state_label = fields.String()


class ProjectRowOutSchema(Schema):
    project = fields.Nested(ProjectOutSchema)
    offerings = fields.List(fields.Nested(OfferingStateOutSchema))
    next_seq = fields.Integer(allow_none=True)
    next_label = fields.String(allow_none=True, metadata={"description": "按钮文字，如 第一期未登记"})
    next_filing_id = fields.Integer(allow_none=True, metadata={"description": "该期已有草稿时的登记 id"})
    year_closed = fields.Boolean(metadata={"description": "项目年度内已无可登记的举办日期：不能再登记新的期次"})
    closed_reason = fields.String(allow_none=True, metadata={"description": "不能再登记新期次的原因"})


ProjectRowPageSchema = page_schema(ProjectRowOutSchema, "ProjectRowPageSchema")
