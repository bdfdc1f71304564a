"""Input of the login steps, for the JSON API (ZhSchema: unknown keys refused) and the pages (ZhFormSchema)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, validate, validates_schema

from services.common.identity import mobile_field
from services.common.inputs import id_or_none
from services.common.schemas import MAX_ID, Length, OneOf, Regexp, ZhFormSchema, ZhSchema, fields, reason_field

from ..institutions.schemas import PASSWORD, REAL_NAME
from .services import KIND_LABELS, KINDS


def admin_id_validator(value: Any) -> None:
    # institutions send the id of a 机构负责人; a reviewer's only mobile is addressed as "reviewer"
    if value == "reviewer":
        return
    if isinstance(value, bool) or not (isinstance(value, int) and 1 <= value <= MAX_ID or id_or_none(value)):
        raise ValidationError("请选择接收验证码的负责人。")


_code = Regexp(r"^\d{6}$", "验证码为6位数字。")
_real_name = REAL_NAME


class LoginSchema(ZhSchema):
    kind = fields.String(required=True, validate=OneOf(KINDS, KIND_LABELS))
    account = fields.String(required=True, validate=Length(min=1, max=64))
    password = fields.String(required=True, validate=Length(min=1, max=128), load_only=True)


class LoginForm(ZhFormSchema):
    kind = fields.String(required=True, validate=OneOf(KINDS, KIND_LABELS))
    account = fields.String(required=True, validate=Length(min=1, max=64))
    password = fields.String(required=True, validate=Length(min=1, max=128))


class AdminSchema(ZhSchema):
    login_token = fields.String(required=True, validate=Length(min=1, max=1000))
    real_name = fields.String(required=True, validate=_real_name)
    mobile = mobile_field()  # "137 0077 0777", +86 and 全角 digits read as the number
    confirm = fields.Boolean(required=True, validate=validate.Equal(True, error="请确认信息无误后再提交。"))


class AdminForm(ZhFormSchema):
    real_name = fields.String(required=True, validate=_real_name)
    mobile = mobile_field()  # "137 0077 0777", +86 and 全角 digits read as the number
    confirm = fields.String(load_default="")  # "1" once the person ticked 确认信息无误


class OwnAdminSchema(ZhSchema):
    real_name = fields.String(required=True, validate=_real_name)
    mobile = mobile_field()  # "137 0077 0777", +86 and 全角 digits read as the number
    confirm = fields.Boolean(required=True, validate=validate.Equal(True, error="请确认信息无误后再提交。"))


REMOVE_REASON = "请填写移除原因（如 已调离本院），记入操作日志。"


class AdminRemoveForm(ZhFormSchema):
    reason = reason_field(REMOVE_REASON, max_length=200)


class AdminRemoveSchema(ZhSchema):
    reason = reason_field(REMOVE_REASON, max_length=200)


class OwnPasswordSchema(ZhSchema):
    """修改密码 (the office): the password it was given, and its own."""

    old_password = fields.String(required=True, validate=Length(max=128), load_only=True,
                                 error_messages={"required": "请输入原密码。"})
    new_password = fields.String(required=True, validate=PASSWORD, load_only=True,
                                 error_messages={"required": "请输入新密码。"})


class OwnPasswordForm(OwnPasswordSchema, ZhFormSchema):
    new_password2 = fields.String(required=True, error_messages={"required": "请再次输入新密码。"})

    @validates_schema
    def _same(self, data: dict[str, Any], **_: Any) -> None:
        if "new_password" in data and data["new_password"] != data.get("new_password2"):
            raise ValidationError("两次输入的新密码不一致。", "new_password2")


class SmsSendSchema(ZhSchema):
    login_token = fields.String(required=True, validate=Length(min=1, max=1000))
    admin_id = fields.Raw(load_default="reviewer", validate=admin_id_validator)


class SmsVerifySchema(SmsSendSchema):
    code = fields.String(required=True, validate=_code)


class SmsSendForm(ZhFormSchema):
    admin_id = fields.String(load_default="reviewer", validate=admin_id_validator)


class SmsVerifyForm(SmsSendForm):
    code = fields.String(required=True, validate=_code)


# ---- responses (OpenAPI documentation and the dump of each answer)


class ChoiceOut(ZhSchema):
    id = fields.Raw()
    real_name = fields.String()
    mobile_masked = fields.String()


class LoginOut(ZhSchema):
    login_token = fields.String()
    needs_admins = fields.Boolean()
    admins = fields.List(fields.Nested(ChoiceOut))


class SentOut(ZhSchema):
    sent = fields.Boolean()
    mobile_masked = fields.String()
    expires_at = fields.DateTime()


class TokenOut(ZhSchema):
    token = fields.String()
    role = fields.String()
    name = fields.String()
