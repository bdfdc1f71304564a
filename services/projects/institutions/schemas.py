"""Input of the committee's institution pages and API."""

from __future__ import annotations

from marshmallow import EXCLUDE, ValidationError

from services.common.identity import mobile_field
from services.common.paging import PageArgsSchema, page_schema
from services.common.schemas import (
    Length,
    OneOf,
    Range,
    Regexp,
    ZhFormSchema,
    ZhSchema,
    fields,
    half_width,
    one_line_name,
    reason_field,
)

_account = [Length(min=3, max=64), Regexp(r"^[A-Za-z0-9_.-]+$", "账号只能包含字母、数字、下划线、点和连字符。")]
_name = [Length(min=2, max=200), one_line_name]
# a 机构负责人's real name (the login's own pages and the committee's institution page)
REAL_NAME = [Length(min=2, max=50), Regexp(r"^[^\d<>\"'&]+$", "请输入真实姓名（不含数字和特殊符号）。")]


def _half_width_only(value: str) -> None:
    """Ａｂｃ１２３４５６ was told it lacked letters and digits: say what is wrong (the login compares as typed)."""
    if half_width(value) != value:
        raise ValidationError("密码中有全角字符，请切换到英文（半角）输入法后重新输入。")


# 12345678 was accepted (the clerk's walk): an institution's password has letters and digits
_password = [Length(min=8, max=128), _half_width_only,
             Regexp(r"^(?=.*[A-Za-z])(?=.*\d).+$", "密码须同时包含字母和数字。")]


ACCOUNT, PASSWORD = _account, _password  # the operator's command for the committee's accounts uses them too


class InstitutionSchema(ZhSchema):
    account = fields.String(required=True, validate=_account)
    name = fields.String(required=True, validate=_name)
    password = fields.String(required=True, validate=_password, load_only=True)


class InstitutionForm(ZhFormSchema):
    account = fields.String(required=True, validate=_account)
    name = fields.String(required=True, validate=_name)
    password = fields.String(required=True, validate=_password)


class InstitutionOut(ZhSchema):
    id = fields.Integer()
    account = fields.String()
    name = fields.String()
    active = fields.Boolean()
    admins = fields.Integer()
    created_at = fields.DateTime()


InstitutionPageOut = page_schema(InstitutionOut, "InstitutionPageOut")


class ImportRowOut(ZhSchema):
    row = fields.Integer()
    account = fields.String()
    name = fields.String()
    reason = fields.String()


class ImportOut(ZhSchema):
    created = fields.List(fields.Nested(ImportRowOut))
    existing = fields.List(fields.Nested(ImportRowOut))
    errors = fields.List(fields.Nested(ImportRowOut))
    skipped = fields.List(fields.Nested(ImportRowOut),
                          metadata={"description": "跳过的行：下载导入模板中自带的示例行（不是错误）"})


_LABELS = {"account": "账号", "name": "机构名称", "password": "初始密码"}


def validate_import_row(raw: dict[str, str]) -> dict[str, str] | str:
    """One Excel row through the same schema as the form; a bad row becomes one Chinese reason."""
    try:
        return InstitutionForm().load({k: v for k, v in raw.items() if v != ""})
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"": exc.messages}
        parts = []
        for key, msgs in messages.items():
            text = msgs[0] if isinstance(msgs, list) and msgs else str(msgs)
            parts.append(f"{_LABELS.get(str(key), str(key))}：{text.rstrip('。')}")
        return "；".join(parts) + "。"  # one sentence: 此项为必填项。；初始密码… read doubled


class InstitutionActiveForm(ZhFormSchema):
    active = fields.Boolean(required=True)
    reason = reason_field("请填写原因（记入操作日志）。")


class InstitutionRenameForm(ZhFormSchema):
    name = fields.String(required=True, validate=_name, error_messages={"required": "请输入新的机构名称。"})
    reason = reason_field("请填写原因（记入操作日志）。")


class InstitutionPasswordForm(ZhFormSchema):
    password = fields.String(required=True, validate=_password, error_messages={"required": "请输入新密码。"})
    reason = reason_field("请填写原因（记入操作日志）。")


class InstitutionAdminAddForm(ZhFormSchema):
    """The committee adds a 机构负责人 for an office that can no longer log in (every one of its people gone)."""

    real_name = fields.String(required=True, validate=REAL_NAME, error_messages={"required": "请输入真实姓名。"})
    mobile = mobile_field()
    reason = reason_field("请填写原因（记入操作日志）。")


class InstitutionAdminRemoveForm(ZhFormSchema):
    reason = reason_field("请填写原因（记入操作日志）。")


class InstitutionQuerySchema(PageArgsSchema, ZhSchema):
    """The list's search box (账号 or 机构名称, any part) and state."""

    q = fields.String(load_default=None, validate=Length(max=100))
    state = fields.String(load_default=None,
                          validate=OneOf(("active", "inactive"), {"active": "启用", "inactive": "停用"}))


class InstitutionApiQuerySchema(ZhSchema):
    """GET /projects/api/institutions: without page or per_page the whole list as before (an array); with either,
    one page ({items, total, page, pages, per_page}). q and state narrow either."""

    class Meta:
        unknown = EXCLUDE  # the endpoint took no arguments: a caller's stray one must not start failing

    page = fields.Integer(load_default=None, validate=Range(1, 100000), metadata={"description": "页码（给出即分页）"})
    per_page = fields.Integer(load_default=None, validate=Range(1, 100),
                              metadata={"description": "每页条数（给出即分页，默认 20）"})
    q = fields.String(load_default=None, validate=Length(max=100),
                      metadata={"description": "账号或机构名称（含曾用名称）"})
    state = fields.String(load_default=None,
                          validate=OneOf(("active", "inactive"), {"active": "启用", "inactive": "停用"}),
                          metadata={"description": "active 启用 / inactive 停用"})
