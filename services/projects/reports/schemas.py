"""Input and output schemas of 执行情况反馈 (the pages and the JSON API load through the same rules)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, validates_schema

from services.common import clock
from services.common.paging import PageArgsSchema, page_schema
from services.common.schemas import (
    CalendarDate,
    IdRange,
    Length,
    NotBlank,
    OneDecimal,
    OneOf,
    Range,
    ZhFormSchema,
    ZhSchema,
    fields,
    reason_field,
)

from ..catalogue.models import MODES
from ..filings.schemas import HistoryOutSchema, PhoneField

PAGES = {1: "执行情况", 2: "授课情况", 3: "资料上传", 4: "考勤导入", 5: "教材与总结"}
OFFERING_STATUSES = ("none", "draft", "submitted", "returned", "approved", "overdue")
OFFERING_STATUS_LABELS = {"none": "未新建", "draft": "草稿", "submitted": "待审批", "returned": "已退回",
                          "approved": "审批通过", "overdue": "已逾期"}
REVIEW_STATES = ("submitted", "returned", "approved", "all")
REVIEW_STATE_LABELS = {"submitted": "待审批", "returned": "已退回", "approved": "审批通过", "all": "全部（不含草稿）"}
FIELD_LABELS = {
    "actual_starts_on": "实际开始日期", "actual_ends_on": "实际结束日期", "venue": "举办地点", "mode": "举办方式",
    "trainees_count": "培训人数", "total_hours": "总学时", "organiser": "承办单位（组织者）",
    "contact_person": "联系人", "contact_phone": "联系电话",
    "lecturers": "授课情况", "name": "姓名", "title": "职称", "unit": "单位", "topic": "授课题目", "hours": "学时",
    "materials": "教材", "editor": "主编", "publisher": "出版社", "year": "出版年份",
    "summary": "执行情况总结", "version": "版本",
}
# page 5's rows are books: their "title" is the 书名 (a lecturer's is the 职称)
MATERIAL_LABELS = {**FIELD_LABELS, "title": "书名"}
LECTURERS_MAX = 100
MATERIALS_MAX = 30
SUMMARY_MAX = 2000


def _text(max_len: int, required: bool = True) -> fields.String:
    if required:
        return fields.String(required=True, validate=[NotBlank(), Length(max=max_len)])
    return fields.String(load_default="", validate=Length(max=max_len))


# ---- inputs --------------------------------------------------------------------------------------


class _FactsFields:
    actual_starts_on = CalendarDate(required=True)
    actual_ends_on = CalendarDate(required=True)
    venue = _text(200)
    mode = fields.String(required=True, validate=OneOf(MODES))
    # may stay blank in a draft: 导入 of the award list (page 4) fills it; 提交 still asks for it
    trainees_count = fields.Integer(load_default=None, allow_none=True, strict=False, validate=Range(1, 100000))
    total_hours = OneDecimal(required=True, validate=Range(0.5, 9999))
    organiser = _text(200)
    contact_person = _text(50)
    contact_phone = PhoneField(required=True)
    version = fields.Integer(load_default=None, metadata={"description": "读取时的 version；不一致时返回 409"})

    @validates_schema
    def _dates(self, data: dict[str, Any], **_: Any) -> None:
        start, end = data.get("actual_starts_on"), data.get("actual_ends_on")
        if start and end and end < start:
            raise ValidationError("结束日期不能早于开始日期。", "actual_ends_on")
        if end and end > clock.today_local():
            raise ValidationError("实际结束日期不能晚于今天。", "actual_ends_on")


class FactsInSchema(_FactsFields, ZhSchema):
    """第1页 执行情况 (every field but 培训人数 required: 保存本页 replaces the page)."""


class FactsFormSchema(_FactsFields, ZhFormSchema):
    pass


class LecturerInSchema(ZhSchema):
    name = _text(50)
    title = _text(50)
    unit = _text(200)
    topic = _text(200)
    hours = OneDecimal(required=True, validate=Range(0.5, 999))


class LecturersInSchema(ZhSchema):
    """第2页 授课情况: the whole list of lecturers and sessions (replaces the page)."""

    lecturers = fields.List(fields.Nested(LecturerInSchema), required=True,
                            validate=Length(min=1, max=LECTURERS_MAX))
    version = fields.Integer(load_default=None)


class MaterialInSchema(ZhSchema):
    title = _text(200)
    editor = _text(100)
    publisher = _text(200)
    year = fields.Integer(load_default=None, allow_none=True, strict=False, validate=Range(1900, 2100))


class MaterialsInSchema(ZhSchema):
    """第5页 教材与总结: teaching materials (optional, several) and the summary (required)."""

    materials = fields.List(fields.Nested(MaterialInSchema), load_default=list, validate=Length(max=MATERIALS_MAX))
    summary = _text(SUMMARY_MAX)
    version = fields.Integer(load_default=None)


class VersionSchema(ZhSchema):
    version = fields.Integer(load_default=None)


class OfferingsQuerySchema(PageArgsSchema, ZhSchema):
    q = fields.String(load_default=None, validate=Length(max=100), metadata={"description": "项目编号或名称"})
    year = fields.Integer(load_default=None, validate=Range(2000, 2100))
    status = fields.String(load_default=None, validate=OneOf(OFFERING_STATUSES, OFFERING_STATUS_LABELS),
                           metadata={"description": "none 未新建 / draft / submitted / returned / approved / "
                                                    "overdue 已逾期未提交"})


class ReportReviewQuerySchema(PageArgsSchema, ZhSchema):
    state = fields.String(load_default="submitted", validate=OneOf(REVIEW_STATES, REVIEW_STATE_LABELS))
    year = fields.Integer(load_default=None, validate=Range(2000, 2100))
    institution_id = fields.Integer(load_default=None, validate=IdRange())
    q = fields.String(load_default=None, validate=Length(max=100), metadata={"description": "项目编号、名称或主办单位"})


class OverdueQuerySchema(PageArgsSchema, ZhSchema):
    """已逾期未提交: the committee's filters of 执行情况反馈审批 (年度, 申办机构, 检索), and the page."""
    year = fields.Integer(load_default=None, validate=Range(2000, 2100))
    institution_id = fields.Integer(load_default=None, validate=IdRange())
    q = fields.String(load_default=None, validate=Length(max=100), metadata={"description": "项目编号、名称或主办单位"})


class ReportReturnSchema(ZhSchema):
    reason = reason_field("请填写退回原因。", max_length=1000)
    version = fields.Integer(load_default=None)


class ReportReturnFormSchema(ZhFormSchema):
    reason = reason_field("请填写退回原因。", max_length=1000)
    version = fields.Integer(load_default=None)


# ---- outputs -------------------------------------------------------------------------------------


class FactsOutSchema(Schema):
    actual_starts_on = fields.Date(allow_none=True)
    actual_ends_on = fields.Date(allow_none=True)
    venue = fields.String()
    mode = fields.String(allow_none=True)
    trainees_count = fields.Integer(allow_none=True)
    total_hours = fields.Decimal(as_string=True, allow_none=True)
    organiser = fields.String()
    contact_person = fields.String()
    contact_phone = fields.String(metadata={"description": "本机构可见完整号码，委员会看到掩码"})


class LecturerOutSchema(Schema):
    name = fields.String()
    title = fields.String()
    unit = fields.String()
    topic = fields.String()
    hours = fields.Decimal(as_string=True)


class ReportUploadOutSchema(Schema):
    id = fields.Integer()
    kind = fields.String()
    label = fields.String()
    filename = fields.String()
    content_type = fields.String()
    size = fields.Integer()
    width = fields.Integer(allow_none=True)
    height = fields.Integer(allow_none=True)
    sha256 = fields.String()
    url = fields.String()


class TraineeOutSchema(Schema):
    name = fields.String()
    id_masked = fields.String(metadata={"description": "掩码后的身份证号码"})
    title = fields.String()
    unit = fields.String()
    credit_class = fields.String()
    credit_value = fields.Decimal(as_string=True)
    activity_date = fields.Date()
    method = fields.String(metadata={"description": "attendance 根据会场考勤授分 / manual 手工录入"})
    manual = fields.Boolean(metadata={"description": "手工录入：非有效学分"})
    forced = fields.Integer(metadata={"description": "本期次的代签（机构补录）次数"})
    state = fields.String()


class ReportAttendanceOutSchema(Schema):
    imported_at = fields.DateTime(allow_none=True)
    as_of = fields.DateTime(allow_none=True, metadata={"description": "导入的授分名单的时间"})
    count = fields.Integer()
    manual_count = fields.Integer()
    forced_count = fields.Integer(metadata={"description": "含代签的人数"})
    available = fields.Boolean(metadata={"description": "学分管理是否已同步授分名单"})
    available_count = fields.Integer(allow_none=True)
    outdated = fields.Boolean(metadata={"description": "导入后授分名单又有变化，需要重新导入"})
    trainees = fields.List(fields.Nested(TraineeOutSchema))


class MaterialOutSchema(Schema):
    title = fields.String()
    editor = fields.String()
    publisher = fields.String()
    year = fields.Integer(allow_none=True)


class MissingOutSchema(Schema):
    page = fields.Integer()
    page_label = fields.String()
    items = fields.List(fields.String())
    message = fields.String()


class OfferingInfoOutSchema(Schema):
    offering_id = fields.Integer()
    seq = fields.Integer()
    seq_label = fields.String()
    project_id = fields.Integer()
    project_number = fields.String()
    project_title = fields.String()
    year = fields.Integer()
    institution_id = fields.Integer()
    institution_name = fields.String()
    starts_on = fields.Date(allow_none=True)
    ends_on = fields.Date(allow_none=True)
    due_on = fields.Date(allow_none=True, metadata={"description": "应提交日期 = 结束日期 + 14 天"})
    overdue = fields.Boolean()


class ReportOutSchema(Schema):
    id = fields.Integer()
    offering = fields.Nested(OfferingInfoOutSchema)
    state = fields.String()
    state_label = fields.String()
    version = fields.Integer()
    facts = fields.Nested(FactsOutSchema)
    lecturers = fields.List(fields.Nested(LecturerOutSchema))
    uploads = fields.List(fields.Nested(ReportUploadOutSchema))
    attendance = fields.Nested(ReportAttendanceOutSchema)
    materials = fields.List(fields.Nested(MaterialOutSchema))
    summary = fields.String()
    missing = fields.List(fields.Nested(MissingOutSchema), metadata={"description": "提交前各页尚缺的内容"})
    return_reason = fields.String(allow_none=True)
    created_at = fields.DateTime()
    submitted_at = fields.DateTime(allow_none=True)
    submitted_late = fields.Boolean(metadata={"description": "晚于应提交日期提交"})
    decided_at = fields.DateTime(allow_none=True)
    history = fields.List(fields.Nested(HistoryOutSchema))


class ReportBriefOutSchema(Schema):
    id = fields.Integer()
    state = fields.String()
    state_label = fields.String()
    version = fields.Integer()
    created_at = fields.DateTime()
    submitted_at = fields.DateTime(allow_none=True)
    return_reason = fields.String(allow_none=True)


class OfferingRowOutSchema(OfferingInfoOutSchema):
    mode = fields.String()
    venue = fields.String()
    report = fields.Nested(ReportBriefOutSchema, allow_none=True)
    can_create = fields.Boolean(metadata={"description": "可以新建反馈记录（尚无记录且本期已开始）"})


class DueReportOutSchema(OfferingInfoOutSchema):
    report_id = fields.Integer(allow_none=True)
    report_state = fields.String(allow_none=True)


OfferingRowPageSchema = page_schema(OfferingRowOutSchema, "ReportOfferingRowPageSchema")
ReviewPageSchema = page_schema(ReportOutSchema, "ReportReviewPageSchema")
OverduePageSchema = page_schema(DueReportOutSchema, "ReportOverduePageSchema")
