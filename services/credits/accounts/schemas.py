"""Input and output of the trainee login and password change (pages and JSON API)."""

from __future__ import annotations

from typing import Any

from services.common.identity import TRAINEE_KEY, mobile_field, name_field, valid_id_number
from services.common.schemas import Length, Regexp, ZhFormSchema, ZhSchema, fields, half_width, reason_field

PASSWORD_LENGTH = Length(min=1, max=128)
# ASCII digits only: \d also passes other scripts' digits, which no code equals (a try lost on a typo)
CODE = Regexp(r"^[0-9]{6}$", "验证码为6位数字。")


class SmsCodeField(fields.String):
    """The SMS code as typed: ７５３０６１ from a Chinese keyboard's 全角 mode is 753061 (it was checked as typed,
    refused as wrong and cost a try)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return half_width(super()._deserialize(value, attr, data, **kwargs)).strip()


# The login checks the ID number whole, as 忘记密码 does: a mistyped digit is said next to the field before any
# password check, so it costs no try (every account's number passed the same check when it was opened).
class LoginSchema(ZhSchema):
    id_number = valid_id_number(required=True, load_only=True)
    password = fields.String(required=True, validate=PASSWORD_LENGTH, load_only=True)


class LoginForm(ZhFormSchema):
    id_number = valid_id_number(required=True, error_messages={"required": "请输入身份证号码。"})
    password = fields.String(required=True, validate=PASSWORD_LENGTH, error_messages={"required": "请输入密码。"})


class PasswordSchema(ZhSchema):
    old_password = fields.String(required=True, validate=PASSWORD_LENGTH, load_only=True)
    new_password = fields.String(required=True, validate=PASSWORD_LENGTH, load_only=True)


class PasswordForm(ZhFormSchema):
    old_password = fields.String(required=True, validate=PASSWORD_LENGTH, error_messages={"required": "请输入原密码。"})
    new_password = fields.String(required=True, validate=PASSWORD_LENGTH, error_messages={"required": "请输入新密码。"})
    repeat_password = fields.String(required=True, validate=PASSWORD_LENGTH,
                                    error_messages={"required": "请再次输入新密码。"})


class TokenOut(ZhSchema):
    token = fields.String()
    must_change = fields.Boolean()


class PasswordOut(ZhSchema):
    changed = fields.Boolean()
    must_change = fields.Boolean()


class ForgotSchema(ZhSchema):
    id_number = valid_id_number(required=True, load_only=True)


class ForgotForm(ZhFormSchema):
    id_number = valid_id_number(required=True, error_messages={"required": "请输入身份证号码。"})
    # 已收到验证码 on the refusal page: open the reset form with this ID number, send nothing
    have_code = fields.Boolean(load_default=False)


class ResetSchema(ZhSchema):
    id_number = valid_id_number(required=True, load_only=True)
    code = SmsCodeField(required=True, validate=CODE, load_only=True)
    new_password = fields.String(required=True, validate=PASSWORD_LENGTH, load_only=True)


class ResetForm(ZhFormSchema):
    # checked whole, as on the login and 忘记密码 forms: a mistyped digit is said, not 请先获取验证码
    id_number = valid_id_number(required=True, error_messages={"required": "请输入身份证号码。"})
    code = SmsCodeField(required=True, validate=CODE, error_messages={"required": "请输入短信验证码。"})
    new_password = fields.String(required=True, validate=PASSWORD_LENGTH, error_messages={"required": "请输入新密码。"})
    repeat_password = fields.String(required=True, validate=PASSWORD_LENGTH,
                                    error_messages={"required": "请再次输入新密码。"})


class ForgotOut(ZhSchema):
    sent = fields.Boolean()
    mobile_masked = fields.String()
    expires_in = fields.Integer()


class ResetOut(ZhSchema):
    reset = fields.Boolean()
    must_change = fields.Boolean()


# ---- the committee's 学员账号 desk: a trainee who changed her mobile, or whose account someone else opened

class AccountLookupForm(ZhFormSchema):
    # checked whole: a wrong check digit is a typo to point out, not "no such account"
    id_number = valid_id_number(required=True, error_messages={"required": "请输入学员的身份证号码。"})


class AccountMobileForm(ZhFormSchema):
    trainee_key = fields.String(required=True, validate=TRAINEE_KEY)
    mobile = mobile_field()
    reason = reason_field("请填写原因（如：学员本人持身份证申请，原手机号已停用）。")


class AccountNameForm(ZhFormSchema):
    trainee_key = fields.String(required=True, validate=TRAINEE_KEY)
    name = name_field()
    reason = reason_field("请填写原因（如：首次签到时姓名录入有误，已核对身份证）。")


class AccountResetForm(ZhFormSchema):
    trainee_key = fields.String(required=True, validate=TRAINEE_KEY)
    reason = reason_field("请填写原因（如：学员本人持身份证申请）。")


# the token of a change's result page (accounts/desk.py, RESULT_PREFIX): what secrets.token_urlsafe gives, whole
# (\Z, not $: a newline after it is not a token)
RESULT_TOKEN = Regexp(r"[A-Za-z0-9_-]{16,64}\Z", "结果页链接不正确。")


class DeskResultQuery(ZhFormSchema):
    """GET /credits/accounts?r=<token>: the result of a change just made; without r, the desk. Other keys are
    ignored (EXCLUDE), as on every page."""

    r = fields.String(load_default=None, validate=RESULT_TOKEN)
