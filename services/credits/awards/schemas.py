"""Input and output of 项目参加者授分 (the pages and the JSON API load the same schemas)."""

from __future__ import annotations

from marshmallow import post_load, validate, validates_schema

from services.common.identity import TRAINEE_KEY, TraineeIdentitySchema
from services.common.paging import PageArgsSchema, page_schema
from services.common.schemas import (
    Length,
    LocalDateTime,
    OneOf,
    Range,
    ValidationError,
    ZhFormSchema,
    ZhSchema,
    fields,
    reason_field,
)

FIELD_LABELS = {"windows": "刷卡周期", "rule_mode": "考勤规则", "rule_n": "至少签到周期数",
                "pairs_required": "签到签退须成对", "include_forced": "计入代签", "activity_date": "活动日期",
                "reason": "原因", "trainee_key": "学员", "name": "姓名", "id_number": "身份证号码",
                "mobile": "手机号码", "title": "职称", "unit": "单位", "q": "检索", "year": "年度",
                "window_id": "刷卡周期", "from_ts": "开始时间", "to_ts": "结束时间"}



class OfferingQuerySchema(PageArgsSchema, ZhFormSchema):
    q = fields.String(validate=Length(max=100), metadata={"description": "项目编号或项目名称"})
    year = fields.Integer(validate=Range(2000, 2100), metadata={"description": "年度"})


class WindowPickSchema(ZhSchema):
    window_id = fields.Integer(required=True, validate=validate.Range(  # as any other unknown window
        1, 2**31 - 1, error="所选刷卡周期不属于本活动、已在二维码考勤中删除，或学分系统尚未收到该刷卡周期。"))
    from_ts = LocalDateTime(load_default=None, metadata={"description": "开始时间（默认为刷卡周期开始时间）"})
    to_ts = LocalDateTime(load_default=None, metadata={"description": "结束时间（默认为刷卡周期结束时间）"})


RULE_MODE_LABELS = {"all": "须在全部所选刷卡周期内签到", "at_least": "至少在若干个所选刷卡周期内签到"}


class AnalysisSchema(ZhSchema):
    """考勤分析: the ticked windows (each range within the window), the rule, forced check-ins in or out."""

    windows = fields.List(fields.Nested(WindowPickSchema), required=True,
                          validate=validate.Length(min=1, max=50, error="请至少勾选一个刷卡周期（最多 50 个）。"),
                          error_messages={"required": "请至少勾选一个刷卡周期。"})
    rule_mode = fields.String(load_default="all", validate=OneOf(["all", "at_least"], RULE_MODE_LABELS),
                              metadata={"description": "all：全部所选周期；at_least：至少 rule_n 个"})
    rule_n = fields.Integer(load_default=None, validate=Range(1, 50))
    pairs_required = fields.Boolean(load_default=False)
    include_forced = fields.Boolean(load_default=False)

    @post_load
    def _n_only_for_at_least(self, data: dict, **kwargs: object) -> dict:
        return {**data, "rule_n": None} if data.get("rule_mode") == "all" else data


class GrantSchema(ZhFormSchema):
    activity_date = fields.Date(required=True, error_messages={"required": "请选择活动日期。"})


class ActivityDateSchema(ZhFormSchema):
    activity_date = fields.Date(required=True, error_messages={"required": "请选择活动日期。"})
    reason = reason_field("请填写更正原因。")


class ExclusionSchema(ZhFormSchema):
    trainee_key = fields.String(required=True, validate=TRAINEE_KEY)
    reason = reason_field("请填写不授分的原因。")


class IncludeSchema(ZhFormSchema):
    trainee_key = fields.String(required=True, validate=TRAINEE_KEY)


class WithdrawSchema(ZhFormSchema):
    reason = reason_field("请填写撤销原因。")
    version = fields.Integer(load_default=None, validate=Range(1, 2**31 - 1))


class RegrantSchema(ZhFormSchema):
    reason = reason_field("请填写恢复授分的原因。")


class RestoreSchema(ZhFormSchema):
    """恢复 of an effective award the committee withdrew by mistake: why (audit-logged)."""

    reason = reason_field("请填写恢复原因。")


class ManualEntrySchema(TraineeIdentitySchema):
    """手工录入学分: the trainee as on the check-in form, and the 活动日期."""

    activity_date = fields.Date(required=True, error_messages={"required": "请选择活动日期。"})
    confirm_invalid = fields.Boolean(load_default=False)

    @validates_schema
    def _confirmed(self, data: dict, **kwargs: object) -> None:
        if not data.get("confirm_invalid"):
            raise ValidationError("请确认已知晓：手工录入学分为非有效学分。", "confirm_invalid")


# ---- output --------------------------------------------------------------------------------------

class OfferingRowSchema(ZhSchema):
    offering_id = fields.Integer()
    project_number = fields.String()
    project_title = fields.String()
    seq = fields.Integer(allow_none=True, metadata={"description": "期次序号（审批早于记录期次时为空）"})
    seq_label = fields.String(metadata={"description": "期次，如 第一期"})
    institution_name = fields.String()
    year = fields.Integer()
    credit_class = fields.String()
    credit_value = fields.Decimal(as_string=True)
    starts_on = fields.Date()
    ends_on = fields.Date()
    award_count = fields.Integer()
    analysed = fields.Boolean()
    status = fields.String()
    cancelled = fields.Boolean(metadata={"description": "本期已取消举办或已标记未举办：不能再授分，已有授分不会生效"})
    cancelled_by = fields.String(allow_none=True, metadata={"description": "institution 举办机构取消举办 / "
                                                                          "committee 委员会标记未举办"})
    cancel_reason = fields.String(allow_none=True)


OfferingPageSchema = page_schema(OfferingRowSchema, "CreditOfferingPage")


class WindowOutSchema(ZhSchema):
    window_id = fields.Integer()
    title = fields.String(allow_none=True, metadata={"description": "刷卡周期的标题（签到消息早于标题随附时为空）"})
    kind = fields.String()
    starts_at = fields.AwareDateTime()
    ends_at = fields.AwareDateTime()
    scans = fields.Integer(metadata={"description": "签到人数；0 为该刷卡周期无人扫码签到"})
    forced = fields.Integer()
    label = fields.String()


class AnalysisOutSchema(ZhSchema):
    id = fields.Integer(allow_none=True)
    rule = fields.String()
    windows = fields.List(fields.Nested(WindowPickSchema))
    valid_count = fields.Integer()
    attendees = fields.List(fields.Dict())


class AttendeeOutSchema(ZhSchema):
    trainee_key = fields.String()
    name = fields.String()
    id_masked = fields.String()
    title = fields.String()
    unit = fields.String()
    scans = fields.Dict(keys=fields.String(), values=fields.AwareDateTime())
    status = fields.String(metadata={"description": "to_grant 待授分 / granted 已授分 / withdrawn 已撤销 / "
                                                    "excluded 已排除"})
    exclusion_reason = fields.String(allow_none=True)
    award_id = fields.Integer(allow_none=True)


class AttendeesOutSchema(ZhSchema):
    analysis_id = fields.Integer()
    rule = fields.String()
    windows = fields.List(fields.Nested(WindowOutSchema))
    attendees = fields.List(fields.Nested(AttendeeOutSchema))


class GrantOutSchema(ZhSchema):
    added = fields.Integer(metadata={"description": "本次新授分人数"})
    already = fields.Integer(metadata={"description": "此前已授分人数"})
    excluded = fields.Integer(metadata={"description": "筛选授分人员时排除的人数"})
    withdrawn = fields.Integer(metadata={"description": "授分已被撤销、本次不再授分的人数（误撤销的用恢复授分）"})


class CreditAwardOutSchema(ZhSchema):
    id = fields.Integer()
    offering_id = fields.Integer()
    name = fields.String()
    id_masked = fields.String()
    title = fields.String()
    unit = fields.String()
    project_number = fields.String()
    project_title = fields.String()
    credit_class = fields.String()
    credit_value = fields.Decimal(as_string=True)
    activity_date = fields.Date()
    method = fields.String(metadata={"description": "attendance 根据会场考勤授分 / manual 手工录入学分（非有效学分）"})
    valid_credit = fields.Boolean()
    state = fields.String(metadata={"description": "pending 待生效 / effective 已生效 / withdrawn 已撤销"})
    granted_at = fields.AwareDateTime()
    withdrawn_at = fields.AwareDateTime(allow_none=True)
    withdraw_reason = fields.String(allow_none=True)
    version = fields.Integer()
    state_label = fields.String(metadata={"description": "状态，如 待生效；取消举办的期次的待生效授分为 不会生效"})


class AwardQuerySchema(PageArgsSchema, ZhFormSchema):
    """授分名单's page and API: ?q= (a name) &page= &per_page=."""

    q = fields.String(validate=Length(max=50), metadata={"description": "姓名（包含即可）"})


class AwardCountsSchema(ZhSchema):
    total = fields.Integer(metadata={"description": "授分记录总数（含已撤销）"})
    withdrawn = fields.Integer(metadata={"description": "已撤销"})
    current = fields.Integer(metadata={"description": "当前授分人数"})
    attendance = fields.Integer(metadata={"description": "其中根据会场考勤授分"})
    manual = fields.Integer(metadata={"description": "其中手工录入（非有效学分）"})
    pending = fields.Integer(metadata={"description": "待生效"})


class AwardPageSchema(page_schema(CreditAwardOutSchema, "CreditAwardPageBase")):  # type: ignore[misc]
    """One page of 授分名单 in the suite's list shape; `total` counts the records the search found, `counts` the
    whole list's."""

    offering_id = fields.Integer()
    counts = fields.Nested(AwardCountsSchema)
    cancelled = fields.String(allow_none=True, metadata={
        "description": "期次已取消举办或已标记未举办时的说明（含原因）；否则为空"})


class AwardListOutSchema(ZhSchema):
    offering_id = fields.Integer()
    count = fields.Integer()
    awards = fields.List(fields.Nested(CreditAwardOutSchema))
    cancelled = fields.String(allow_none=True, metadata={
        "description": "期次已取消举办或已标记未举办时的说明（含原因）；否则为空"})


class ExclusionOutSchema(ZhSchema):
    trainee_key = fields.String()
    excluded = fields.Boolean()
