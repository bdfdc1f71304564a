"""Output schemas of credits' copy of the check-ins (ID number and mobile only masked)."""

from __future__ import annotations

from marshmallow import Schema, fields


class AttendanceRecordOutSchema(Schema):
    checkin_id = fields.Integer()
    offering_id = fields.Integer()
    window_id = fields.Integer()
    window_kind = fields.String(metadata={"description": "sign_in 签到 / sign_out 签退"})
    window_title = fields.String(allow_none=True, metadata={"description": "刷卡周期的标题（旧签到消息无标题时为空）"})
    window_starts_at = fields.DateTime()
    window_ends_at = fields.DateTime()
    name = fields.String(metadata={"description": "姓名"})
    id_masked = fields.String(metadata={"description": "身份证号码（脱敏）"})
    mobile_masked = fields.String(metadata={"description": "手机号码（脱敏）"})
    title = fields.String(metadata={"description": "职称"})
    unit = fields.String(metadata={"description": "单位"})
    scanned_at = fields.DateTime()
    forced = fields.Boolean(metadata={"description": "举办单位代签"})
    flags = fields.List(fields.String(), metadata={"description": "标记代码（见 flag_labels）"})
    flag_labels = fields.List(fields.String(), metadata={"description": "标记的中文说明"})
    received_at = fields.DateTime()


class AttendanceOutSchema(Schema):
    activity_id = fields.Integer()
    institution_id = fields.Integer()
    count = fields.Integer(metadata={"description": "签到记录数"})
    records = fields.List(fields.Nested(AttendanceRecordOutSchema))
