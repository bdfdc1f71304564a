"""Schemas of the committee's review (query arguments, the return reason)."""

from __future__ import annotations

from services.common.errors import AppError
from services.common.paging import PageArgsSchema, page_schema
from services.common.schemas import IdRange, Length, OneOf, Range, ZhFormSchema, ZhSchema, fields, reason_field

from ..filings.schemas import FilingOutSchema

REVIEW_STATES = ("submitted", "returned", "approved", "cancelled", "all")
REVIEW_STATE_LABELS = {"submitted": "待审批", "returned": "已退回", "approved": "审批通过", "cancelled": "未举办",
                       "all": "全部（不含草稿）"}


class ReviewQuerySchema(PageArgsSchema, ZhSchema):
    state = fields.String(load_default="submitted", validate=OneOf(REVIEW_STATES, REVIEW_STATE_LABELS))
    year = fields.Integer(load_default=None, validate=Range(2000, 2100))
    institution_id = fields.Integer(load_default=None, validate=IdRange())
    q = fields.String(load_default=None, validate=Length(max=100), metadata={"description": "项目编号、名称或主办单位"})


class ApproveSchema(ZhSchema):
    version = fields.Integer(load_default=None)


class ReturnSchema(ZhSchema):
    reason = reason_field("请填写退回原因。", max_length=1000)
    version = fields.Integer(load_default=None)


class ReturnFormSchema(ZhFormSchema):
    reason = reason_field("请填写退回原因。", max_length=1000)
    version = fields.Integer(load_default=None)


def return_refused(exc: AppError) -> AppError:
    """The API's sentence for a refused 退回原因: a missing one is asked for, a too short or too long one is said so
    (the page shows the same words next to the field)."""
    said = exc.fields["reason"]
    if said.startswith(("至少", "不能超过", "长度应在")):
        return AppError(422, "invalid_input", f"退回原因{said}", exc.fields)
    return AppError(422, "invalid_input", "退回时必须填写退回原因。", exc.fields)


ReviewPageSchema = page_schema(FilingOutSchema, "ReviewPageSchema")
