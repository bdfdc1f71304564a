"""Input and output of the phone flow's JSON API (the pages use identity.TraineeIdentitySchema directly)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from marshmallow import Schema

from services.common.errors import ErrorDetailSchema
from services.common.schemas import Length, NotBlank, ZhSchema, fields

from ..windows.models import KINDS

if TYPE_CHECKING:
    from ..scans.services import ScanResult

IDENTITY_FIELDS = ("name", "id_number", "mobile", "title", "unit")


class PhoneScanSchema(ZhSchema):
    """POST /checkin/api/scan: the ticket's nonce, and the identity on a first scan (nothing for one tap).

    The identity fields are checked by identity.TraineeIdentitySchema once any of them is given.
    """

    nonce = fields.String(required=True, validate=[NotBlank(), Length(max=64)],
                          error_messages={"required": "缺少表单编号（nonce），请重新扫码。"},
                          metadata={"description": "扫码凭证中的表单编号（GET /checkin/api/scan 返回）"})
    name = fields.String(validate=Length(max=60), metadata={"description": "姓名"})
    id_number = fields.String(validate=Length(max=40), metadata={"description": "身份证号码"})
    mobile = fields.String(validate=Length(max=30), metadata={"description": "手机号码"})
    title = fields.String(validate=Length(max=30), metadata={"description": "职称"})
    unit = fields.String(validate=Length(max=200), metadata={"description": "单位"})


class CheckinOutSchema(Schema):
    id = fields.Integer()
    scanned_at = fields.DateTime(metadata={"description": "首次打开二维码链接的时间（UTC）"})
    window_id = fields.Integer()
    forced = fields.Boolean()


class PhoneScanResultSchema(Schema):
    status = fields.String(metadata={"description": "已签到 | 已签退（签退时段）"})
    created = fields.Boolean(metadata={"description": "false：此前已签到（重复提交或同一时段再次扫码）"})
    checkin = fields.Nested(CheckinOutSchema)


def dump_scan_result(r: ScanResult) -> dict[str, Any]:
    """What PhoneScanResultSchema().dump gives for a scans.services.ScanResult, without marshmallow: the scan
    answers a lecture hall at once, and the dump with jsonify's checks was several per cent of its Python time."""
    return {"status": f"已{KINDS[r.kind]}", "created": r.created,
            "checkin": {"id": r.checkin_id, "scanned_at": r.scanned_at.isoformat(), "window_id": r.window_id,
                        "forced": r.forced}}


class IdentityOutSchema(Schema):
    name = fields.String()
    masked_id = fields.String(metadata={"description": "身份证号码（脱敏）"})
    title = fields.String()
    unit = fields.String()


class TicketOutSchema(Schema):
    """GET /checkin/api/scan: what the live ticket is for, and whether this WeChat account is bound."""

    activity_id = fields.Integer()
    activity_title = fields.String()
    window_id = fields.Integer()
    window_title = fields.String()
    window_kind = fields.String(metadata={"description": "签到 / 签退"})
    nonce = fields.String()
    scanned_at = fields.DateTime()
    expires_at = fields.DateTime()
    bound = fields.Boolean(metadata={"description": "true：此微信号已绑定身份，一键签到即可"})
    identity = fields.Nested(IdentityOutSchema, allow_none=True)


class ScanRefusalDetailSchema(ErrorDetailSchema):
    hint = fields.String(metadata={"description": "学员可以怎么做（与手机上的拒绝页面所示相同，如签退时段的时间）；"
                                                  "输入有误（invalid_input 等，见 fields）时没有此项"})


class ScanRefusalSchema(Schema):
    """A refused scan of the phone API: the common error shape, in the refused page's words (签退时段 on a 签退
    window, which of 取消举办 / 标记未举办 and since when) and with the page's hint."""

    error = fields.Nested(ScanRefusalDetailSchema, required=True)
