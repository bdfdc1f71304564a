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
