"""Output schemas of the credit terms of an offering."""

from __future__ import annotations

from marshmallow import Schema, fields


class OfferingCreditOutSchema(Schema):
    offering_id = fields.Integer()
    institution_id = fields.Integer()
    project_number = fields.String()
    project_title = fields.String()
    year = fields.Integer()
    credit_class = fields.String(metadata={"description": "学分类别"})
    credit_value = fields.Decimal(as_string=True, metadata={"description": "学分"})
    hours = fields.Decimal(as_string=True, metadata={"description": "学时"})
    starts_on = fields.Date()
    ends_on = fields.Date()
    approved_at = fields.DateTime()
    cancelled_at = fields.DateTime(allow_none=True, metadata={"description": "取消举办 / 标记未举办的时间"})
    cancelled_by = fields.String(allow_none=True, metadata={"description": "institution 举办机构取消举办 / "
                                                                          "committee 委员会标记未举办"})
    cancel_reason = fields.String(allow_none=True)
