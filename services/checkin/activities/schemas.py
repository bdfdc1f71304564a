"""Input and output schemas of 继教活动 (query arguments in, JSON out)."""

from __future__ import annotations

from marshmallow import Schema

from services.common.paging import PageArgsSchema, page_schema
from services.common.schemas import IdRange, Length, Range, ZhSchema, fields

# Chinese names of the query arguments, for the messages a clerk reads on the page
FIELD_LABELS = {"q": "检索", "year": "年度", "page": "页码", "per_page": "每页条数", "institution_id": "申办机构"}


class ActivityQuerySchema(PageArgsSchema, ZhSchema):
    """Search and paging of 继教活动-项目管理 (the page and the API share it)."""

    q = fields.String(load_default=None, validate=Length(max=100),
                      metadata={"description": "项目编号、项目名称或申办机构名称"})
    year = fields.Integer(load_default=None, validate=Range(2000, 2100), metadata={"description": "年度"})
    institution_id = fields.Integer(load_default=None, validate=IdRange(),
                                    metadata={"description": "申办机构（仅审核员可用）"})


class ScheduleItemOutSchema(Schema):
    date = fields.String()
    start = fields.String()
    end = fields.String()
    title = fields.String()


class ActivityOutSchema(Schema):
    id = fields.Integer()
    offering_id = fields.Integer()
    institution_id = fields.Integer()
    institution_name = fields.String()
    project_id = fields.Integer()
    project_number = fields.String()
    project_title = fields.String()
    year = fields.Integer()
    seq = fields.Integer()
    seq_label = fields.String(metadata={"description": "期次，如 第一期"})
    credit_class = fields.String()
    credit_value = fields.Decimal(as_string=True)
    hours = fields.Decimal(as_string=True)
    starts_on = fields.Date()
    ends_on = fields.Date()
    venue = fields.String()
    mode = fields.String()
    schedule = fields.List(fields.Nested(ScheduleItemOutSchema))
    approved_at = fields.DateTime()
    created_at = fields.DateTime()
    # offering.cancelled: null while the 期 stands; then final (no scan, 代签, window change nor projector)
    cancelled_at = fields.DateTime(allow_none=True, metadata={"description": "取消举办 / 标记未举办的时间"})
    cancelled_by = fields.String(allow_none=True, metadata={
        "description": "institution（举办机构取消举办）或 committee（省继续医学教育委员会标记未举办）"})
    cancel_reason = fields.String(allow_none=True, metadata={"description": "取消举办 / 标记未举办的原因"})
    cancel_label = fields.String(allow_none=True, metadata={"description": "已取消举办 / 已标记未举办；未取消为 null"})


ActivityPageSchema = page_schema(ActivityOutSchema, "ActivityPageSchema")
