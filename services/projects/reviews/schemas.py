"""Schemas of the committee's review (query arguments, the return reason)."""

from __future__ import annotations

from services.common.paging import PageArgsSchema, page_schema
from services.common.schemas import IdRange, Length, NotBlank, OneOf, Range, ZhFormSchema, ZhSchema, fields

from ..filings.schemas import FilingOutSchema

REVIEW_STATES = ("submitted", "returned", "approved", "all")
REVIEW_STATE_LABELS = {"submitted": "待审批", "returned": "已退回", "approved": "审批通过", "all": "全部（不含草稿）"}


class ReviewQuerySchema(PageArgsSchema, ZhSchema):
    state = fields.String(load_default="submitted", validate=OneOf(REVIEW_STATES, REVIEW_STATE_LABELS))
    year = fields.Integer(load_default=None, validate=Range(2000, 2100))
    institution_id = fields.Integer(load_default=None, validate=IdRange())
    q = fields.String(load_default=None, validate=Length(max=100), metadata={"description": "项目编号、名称或主办单位"})


class ApproveSchema(ZhSchema):
    version = fields.Integer(load_default=None)


class ReturnSchema(ZhSchema):
    reason = fields.String(required=True, validate=[NotBlank(), Length(max=1000)])
    version = fields.Integer(load_default=None)


class ReturnFormSchema(ZhFormSchema):
    reason = fields.String(required=True, validate=[NotBlank(), Length(max=1000)],
                           error_messages={"required": "请填写退回原因。"})
    version = fields.Integer(load_default=None)


class ApproveFormSchema(ZhFormSchema):
    version = fields.Integer(load_default=None)


ReviewPageSchema = page_schema(FilingOutSchema, "ReviewPageSchema")
