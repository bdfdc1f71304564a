"""marshmallow in Chinese: every input is loaded through a schema with explicit fields, and the
messages a clerk sees next to a field are Chinese. Field classes get Chinese defaults here, once.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, pre_load, validate

from . import clock

_ZH = {
    fields.Field: {"required": "此项为必填项。", "null": "此项不能为空。", "validator_failed": "填写的内容不正确。"},
    fields.String: {"invalid": "请输入文字。", "invalid_utf8": "文字编码不正确。"},
    fields.Integer: {"invalid": "请输入整数。"},
    fields.Number: {"invalid": "请输入数字。", "too_large": "数字太大。"},
    fields.Decimal: {"special": "请输入有效的数字。"},
    fields.Float: {"special": "请输入有效的数字。"},
    fields.Date: {"invalid": "日期格式不正确（应为 年-月-日，如 2026-05-01）。", "format": "日期格式不正确。"},
    fields.DateTime: {"invalid": "时间格式不正确。", "invalid_awareness": "时间格式不正确。",
                      "format": "时间格式不正确。"},
    fields.Time: {"invalid": "时刻格式不正确（应为 时:分，如 08:30）。", "invalid_awareness": "时刻格式不正确。",
                  "format": "时刻格式不正确。"},
    fields.Boolean: {"invalid": "请选择是或否。"},
    fields.List: {"invalid": "应为列表。"},
    fields.Nested: {"type": "格式不正确。"},
    fields.Dict: {"invalid": "格式不正确。"},
}
for _cls, _messages in _ZH.items():
    _cls.default_error_messages = {**_cls.default_error_messages, **_messages}


NUL_MESSAGE = "不能包含空字符（\\0）。"
SURROGATE_MESSAGE = "含有无法识别的字符，请删除后重新输入。"
CONTROL_MESSAGE = "含有不可见的控制字符（如改变文字方向的字符），请删除后重新输入。"
# what no typed text holds and a page must never show: C0 controls but tab and line breaks, DEL, and the
# bidirectional overrides and isolates that reorder every character after them (the walk's U+202E scrambled
# an institution's 操作记录)
_CONTROLS = frozenset(map(chr, [*range(0x01, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F,
                                *range(0x202A, 0x202F), *range(0x2066, 0x206A)]))


def _bad_text(value: Any) -> str | None:
    """Why a text cannot be stored, or None. A NUL PostgreSQL refuses; a lone surrogate (JSON's "\\ud800")
    is no character at all, and neither the database, argon2 nor an answer can encode it."""
    if not isinstance(value, str):
        return None
    if "\x00" in value:
        return NUL_MESSAGE
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE_MESSAGE
    if not _CONTROLS.isdisjoint(value):
        return CONTROL_MESSAGE
    return None


def one_line_name(value: str) -> None:
    """A name shown in lists and matched exactly (an institution's): no line break, tab or invisible character,
    so that two names that look the same are the same (the walk's 陕西省人民\\u200b医院 passed as new)."""
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value):  # rare 生僻字 (Co, Cn) stay
        raise ValidationError("名称不能包含换行、制表符或不可见的字符。")


class ZhSchema(Schema):
    """Base for every input schema: unknown keys are refused in Chinese, and so is text holding a NUL character
    or a lone surrogate (neither can be stored: the refusal would otherwise name no field, or be a 500)."""

    error_messages = {"type": "提交的数据格式不正确。", "unknown": "不允许的字段。"}

    class Meta:
        unknown = RAISE

    @pre_load
    def _no_nul(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, Mapping):  # a dict, or webargs' view of a query string or form
            bad = {}
            for key, value in data.items():
                why = next(filter(None, map(_bad_text, value)), None) if isinstance(value, list) else _bad_text(value)
                if why:
                    bad[key] = [why]
            if bad:
                raise ValidationError(bad)
        return data


class ZhFormSchema(ZhSchema):
    """For HTML forms: browsers add fields of their own (csrf token, buttons), so extra keys are ignored."""

    class Meta:
        unknown = EXCLUDE


# The years a typed date or time may name. Outside them it is a slip of the keyboard, and one a day's arithmetic
# could not survive: 0001-01-01 in Shanghai is before year 1 in UTC, 9999-12-31 plus the 14 days a report is
# given is past year 9999 (Python holds neither: a 500 instead of an answer).
YEARS = (2000, 2099)
YEARS_MESSAGE = f"超出范围（年份应在 {YEARS[0]} 至 {YEARS[1]} 之间）。"


def _in_years(field: fields.Field, value: Any) -> Any:
    """The date or time loaded by `field`, or its "range" error when its year is outside YEARS."""
    if not YEARS[0] <= value.year <= YEARS[1]:
        raise field.make_error("range")
    return value


# 全角 letters, digits and signs (and the ideographic space) as their ASCII selves: an ID number or a project
# number pasted from a Word document or typed in a Chinese input method's 全角 mode found nothing. Only these:
# NFKC would also turn the catalogue's Ⅰ类 into I类.
_HALF_WIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def half_width(text: str) -> str:
    return text.translate(_HALF_WIDTH)


_DAY_SHAPE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T].*)?")


def no_such_day(typed: str) -> str | None:
    """What is wrong with a date written the right way that the calendar has not (2026-02-30, 2026-13-01), said
    as such: "格式不正确（应为 年-月-日）" sends the clerk looking at the dashes she typed correctly."""
    found = _DAY_SHAPE.fullmatch(typed)
    if found is None:
        return None
    year, month, day = (int(part) for part in found.groups())
    if not 1 <= month <= 12:
        return f"没有 {month} 月，月份应为 1–12，请核对日期。"
    last = calendar.monthrange(year, month)[1] if year >= 1 else 31
    if not 1 <= day <= last:
        return f"{year} 年 {month} 月没有 {day} 日（该月共 {last} 天），请核对日期。"
    return None


def _as_a_day(load: Callable[..., Any], value: Any, *args: Any, **kwargs: Any) -> Any:
    """`load(value, …)`, its refusal of a day the calendar has not said as no_such_day says it."""
    try:
        return load(value, *args, **kwargs)
    except ValidationError:
        said = no_such_day(value) if isinstance(value, str) else None
        if said is None:
            raise
        raise ValidationError(said) from None


class CalendarDate(fields.Date):
    """A date typed in a form or a body (2026-12-10), in YEARS."""

    default_error_messages = {"range": "日期" + YEARS_MESSAGE}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dt.date:
        if isinstance(value, str):  # ２０２６－１２－１０ typed in 全角 mode is the same day
            value = half_width(value).strip()
        loaded = _as_a_day(super()._deserialize, value, attr, data, **kwargs)
        return _in_years(self, loaded)


class LocalDateTime(fields.DateTime):
    """A time typed as Shanghai wall-clock (2026-12-10T08:30 or 2026-12-10 08:30), or an aware ISO time, in YEARS;
    always loaded as aware UTC."""

    default_error_messages = {"invalid": "时间格式不正确（应为 年-月-日 时:分，如 2026-12-10 08:30）。",
                              "range": "时间" + YEARS_MESSAGE}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dt.datetime:
        if isinstance(value, str):
            value = half_width(value).strip().replace("/", "-")
        loaded = _as_a_day(super()._deserialize, value, attr, data, **kwargs)
        result = _in_years(self, loaded)
        if result.tzinfo is None:
            result = result.replace(tzinfo=clock.SHANGHAI)
        return result.astimezone(clock.UTC)


_PLAIN_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


class OneDecimal(fields.Decimal):
    """A credit value or hours (学分, 学时): at most one decimal place, refused rather than rounded (2.25 is a
    typo or another rule, and a silently stored 2.2 would be a wrong award)."""

    default_error_messages = {"places": "最多保留一位小数（如 2.5）。", "too_large": "数字太大。",
                              "plain": "请输入数字（如 2.5）。"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):  # １．５ typed in 全角 mode (Decimal reads the digits but not the ．)
            value = half_width(value).strip()
            if not _PLAIN_DECIMAL.fullmatch(value):  # 1e3 is a thousand to Decimal, a typo to a clerk
                raise self.make_error("plain")
        result = super()._deserialize(value, attr, data, **kwargs)
        try:
            exact = result.quantize(Decimal("0.1")) == result
        except InvalidOperation:  # 1e309: more digits than a quantize may make
            raise self.make_error("too_large") from None
        if not exact:
            raise self.make_error("places")
        return result


def Length(min: int | None = None, max: int | None = None) -> validate.Length:  # noqa: A002
    if min and max:
        msg = f"长度应在 {min} 到 {max} 个字符之间。"
    elif max:
        msg = f"不能超过 {max} 个字符。"
    else:
        msg = f"至少 {min} 个字符。"
    return validate.Length(min=min, max=max, error=msg)


def NotBlank() -> validate.Length:
    return validate.Length(min=1, error="此项不能为空。")


def reason_field(required: str | dict[str, str], max_length: int = 500, **kwargs: Any) -> fields.String:
    """The reason of an audit-logged change (不授分, 撤销, 代签, 退回, the committee's desks): 2 to `max_length`
    characters; `required` is the sentence (or the error messages) when it is missing."""
    messages = {"required": required} if isinstance(required, str) else required
    return fields.String(required=True, validate=[NotBlank(), Length(min=2, max=max_length)],
                         error_messages=messages, **kwargs)


def Range(min: Any = None, max: Any = None) -> validate.Range:  # noqa: A002
    if min is not None and max is not None:
        msg = f"应在 {min} 到 {max} 之间。"
    elif min is not None:
        msg = f"不能小于 {min}。"
    else:
        msg = f"不能大于 {max}。"
    return validate.Range(min=min, max=max, error=msg)


MAX_ID = 2**31 - 1  # ids are PostgreSQL integer columns


def IdRange() -> validate.Range:
    """An id given in a body or a query: beyond the integer ids it names nothing (422, not a database error)."""
    return validate.Range(min=1, max=MAX_ID, error="编号不正确。")


def OneOf(choices: list[str] | tuple[str, ...], labels: Mapping[str, str] | None = None) -> validate.OneOf:
    """One of `choices`; the refusal lists them by their Chinese `labels` where the stored values are codes."""
    shown = [labels.get(c, c) for c in choices] if labels else list(map(str, choices))
    return validate.OneOf(choices, error="请从以下选项中选择：" + "、".join(shown) + "。")


def Regexp(pattern: str, message: str) -> validate.Regexp:
    return validate.Regexp(pattern, error=message)


def strip_blank(data: dict[str, Any]) -> dict[str, Any]:
    """HTML forms send empty strings for untouched inputs; treat them as missing."""
    return {k: v for k, v in data.items() if not (isinstance(v, str) and v.strip() == "")}


class PageVersionForm(ZhFormSchema):
    """The hidden version a page's form always sends (the version of what the page showed)."""

    version = fields.Integer(required=True, validate=IdRange())


def load_form(schema: Schema, form: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Load a browser form; returns (data, errors) so the page can re-render with what was typed."""
    raw = {k: (v.strip() if isinstance(v, str) else v) for k, v in form.items()}
    try:
        return schema.load(strip_blank(raw)), {}
    except ValidationError as exc:
        errs = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        return None, {k: (v[0] if isinstance(v, list) and v and isinstance(v[0], str) else v)
                      for k, v in errs.items()}


STALE_PAGE = "页面已过期，请刷新页面后重试。"


__all__ = ["ZhSchema", "ZhFormSchema", "CalendarDate", "LocalDateTime", "Length", "NotBlank", "Range", "IdRange",
           "MAX_ID", "OneDecimal", "OneOf", "Regexp", "STALE_PAGE", "fields", "load_form", "reason_field",
           "one_line_name", "strip_blank", "ValidationError"]
