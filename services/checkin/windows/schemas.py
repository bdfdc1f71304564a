"""Input and output schemas of 刷卡周期, 代签 and the check-in list (the pages and the JSON API share them)."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, validates_schema

from services.common.identity import TraineeIdentitySchema
from services.common.paging import PageArgsSchema, page_schema
from services.common.schemas import (
    IdRange,
    Length,
    LocalDateTime,
    NotBlank,
    OneOf,
    Range,
    Regexp,
    ValidationError,
    ZhFormSchema,
    ZhSchema,
    fields,
    reason_field,
)

from .models import KINDS

FIELD_LABELS = {"title": "名称", "kind": "类型", "starts_at": "开始时间", "ends_at": "结束时间", "reason": "原因",
                "version": "版本", "q": "检索", "window_id": "时段", "page": "页码", "per_page": "每页条数",
                "name": "姓名", "id_number": "身份证号码", "mobile": "手机号码", "unit": "单位", "nonce": "提交编号"}


def _required(label: str, verb: str = "填写") -> dict[str, str]:
    return {"required": f"请{verb}{label}。", "null": f"请{verb}{label}。"}


class _WindowFields(Schema):
    title = fields.String(validate=[NotBlank(), Length(max=200)], error_messages=_required("名称"),
                          metadata={"description": "名称，如 上午专题讲座"})
    kind = fields.String(validate=OneOf(tuple(KINDS), KINDS), error_messages=_required("类型", "选择"),
                         metadata={"description": "sign_in 签到 | sign_out 签退"})
    starts_at = LocalDateTime(error_messages=_required("开始时间"),
                              metadata={"description": "开始时间（北京时间，如 2026-12-10T08:30）"})
    ends_at = LocalDateTime(error_messages=_required("结束时间"), metadata={"description": "结束时间"})

    @validates_schema
    def _in_order(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "starts_at" in data and "ends_at" in data and data["ends_at"] <= data["starts_at"]:
            raise ValidationError("结束时间应晚于开始时间。", "ends_at")


class WindowCreateSchema(_WindowFields, ZhSchema):
    """New window (API body)."""

    class Meta:
        unknown = RAISE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("title", "kind", "starts_at", "ends_at"):
            self.fields[name].required = True


class WindowCreateFormSchema(WindowCreateSchema, ZhFormSchema):
    class Meta:
        unknown = EXCLUDE


class WindowUpdateSchema(_WindowFields, ZhSchema):
    """Edit (API body): only the fields sent change; a window with check-ins needs a reason."""

    reason = fields.String(validate=Length(min=2, max=500), load_default=None,
                           metadata={"description": "修改原因（该时段已有签到时必填，记入操作日志）"})
    version = fields.Integer(load_default=None, validate=Range(min=1),
                             metadata={"description": "读取时的版本号；不一致时返回 409"})

    class Meta:
        unknown = RAISE


class WindowUpdateFormSchema(WindowUpdateSchema, ZhFormSchema):
    class Meta:
        unknown = EXCLUDE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("title", "kind", "starts_at", "ends_at"):  # a form sends every field
            self.fields[name].required = True


_NONCE = Regexp(r"^[A-Za-z0-9_-]{16,48}$", "提交编号格式不正确，请刷新页面后重试。")


class ForcedCheckinFormSchema(TraineeIdentitySchema):
    """代签 on the institution's page: the trainee's identity and a required reason."""

    reason = reason_field(_required("代签原因"), metadata={"label": "代签原因"})
    present_at = LocalDateTime(load_default=None, allow_none=True,
                               metadata={"label": "到场时间", "description": "选填：学员实际到场的时间，须在本时段内且"
                                         "不晚于现在；不填则记为提交时间（时段结束后补录的记为时段结束时间）"})
    nonce = fields.String(load_default=None, validate=_NONCE,
                          metadata={"description": "幂等键：同一提交编号重复提交只记一次"})


class ForcedCheckinSchema(ForcedCheckinFormSchema):
    """代签 through the JSON API (unknown keys refused)."""

    class Meta:
        unknown = RAISE


class CheckinQuerySchema(PageArgsSchema, ZhSchema):
    q = fields.String(load_default=None, validate=Length(max=50),
                      metadata={"description": "姓名或单位（部分）；完整的身份证号码或手机号码"})
    window_id = fields.Integer(load_default=None, validate=IdRange(), metadata={"description": "刷卡周期"})


class RefusedQuerySchema(ZhSchema):
    window_id = fields.Integer(load_default=None, validate=IdRange(), metadata={"description": "刷卡周期"})


class CheckinSearchSchema(CheckinQuerySchema):
    """POST body of a search by a full ID number or mobile (kept out of URLs, so out of access logs)."""


# ---------------------------------------------------------------- output

class WindowOutSchema(Schema):
    id = fields.Integer()
    activity_id = fields.Integer()
    title = fields.String()
    kind = fields.String()
    kind_label = fields.String(metadata={"description": "签到 | 签退"})
    starts_at = fields.AwareDateTime()
    ends_at = fields.AwareDateTime()
    from_schedule = fields.Boolean()
    version = fields.Integer()
    checkins = fields.Integer(metadata={"description": "签到人数（含代签）"})
    forced_checkins = fields.Integer(metadata={"description": "其中代签人数"})
    state = fields.String(metadata={
        "description": "before 未开始 | open 进行中 | closed 已结束（含本期取消前已结束的时段） | "
                       "cancelled 活动已取消（本期取消或标记未举办时尚未结束的时段）"})


class WindowListSchema(Schema):
    items = fields.List(fields.Nested(WindowOutSchema))


class CheckinRowSchema(Schema):
    id = fields.Integer()
    window_id = fields.Integer()
    window_title = fields.String()
    window_kind = fields.String()
    window_kind_label = fields.String()
    name = fields.String()
    id_number_masked = fields.String(metadata={"description": "身份证号码（打码）"})
    mobile_masked = fields.String(metadata={"description": "手机号码（打码）"})
    title = fields.String()
    unit = fields.String()
    scanned_at = fields.AwareDateTime()
    recorded_at = fields.AwareDateTime()
    forced = fields.Boolean(metadata={"description": "代签"})
    method = fields.String(metadata={"description": "扫码 | 代签"})
    forced_reason = fields.String(allow_none=True)
    time_note = fields.String(metadata={
        "description": "代签的时间不是代签时刻时的说明（时段结束后补录，或举办机构填写的到场时间）"})
    flags = fields.List(fields.String())
    flag_labels = fields.List(fields.String())


CheckinPageSchema = page_schema(CheckinRowSchema, "CheckinPageSchema")


class ForcedOutSchema(Schema):
    created = fields.Boolean(metadata={"description": "false：该学员在本时段已有签到，未重复记录"})
    checkin = fields.Nested(CheckinRowSchema)


class RefusedOutSchema(Schema):
    id = fields.Integer()
    at = fields.AwareDateTime()
    window_id = fields.Integer(allow_none=True)
    window_title = fields.String()
    reason = fields.String()
    reason_label = fields.String()
    id_number_masked = fields.String(metadata={"description": "填写的身份证号码（脱敏；仅当该号码已登记时）"})


class RefusedListSchema(Schema):
    total = fields.Integer()
    items = fields.List(fields.Nested(RefusedOutSchema))


__all__ = ["FIELD_LABELS", "WindowCreateSchema", "WindowCreateFormSchema", "WindowUpdateSchema",
           "WindowUpdateFormSchema", "ForcedCheckinFormSchema", "ForcedCheckinSchema", "CheckinQuerySchema",
           "CheckinSearchSchema",
           "RefusedQuerySchema", "WindowOutSchema", "WindowListSchema", "CheckinRowSchema", "CheckinPageSchema",
           "ForcedOutSchema", "RefusedOutSchema", "RefusedListSchema"]
