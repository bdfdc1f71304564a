"""A trainee's identity: 姓名, 身份证号码, 手机号码, 职称, 单位 (checkin's first-scan form, credits' 手工录入学分).

Loaded only through :class:`TraineeIdentitySchema` (a ``ZhFormSchema``: the browser's extra
fields are ignored); every refusal is a Chinese sentence meant to stand next to its field.
Values come out normalised: full-width characters folded (phones type them easily), spaces and
dashes dropped from numbers, the ID number's check letter upper-case, a "+86" prefix removed,
look-alike dots in a name made the middle dot "·".

Each check is also a plain function returning the message or None, for the JSON API and tests.
The values are personal data: never log them (DESIGN §5).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from marshmallow import pre_load, validate
from stdnum import numdb
from stdnum.cn import ric
from stdnum.exceptions import ValidationError as StdnumError

from . import clock, pii
from .schemas import ValidationError, ZhFormSchema, fields

__all__ = [
    "TITLES", "FIELD_LABELS", "TraineeIdentitySchema",
    "normalise_id_number", "id_number_error", "normalise_mobile", "mobile_error",
    "mobile_field", "name_field", "valid_id_number", "TRAINEE_KEY",
    "normalise_name", "name_error", "title_error",
    "ID_LENGTH", "ID_FORMAT", "ID_CHECKSUM", "ID_BIRTH_DATE", "ID_PLACE",
]

TITLES = (
    "主任医师", "副主任医师", "主治医师", "住院医师", "医师", "医士",
    "主任护师", "副主任护师", "主管护师", "护师", "护士",
    "主任药师", "副主任药师", "主管药师", "药师", "药士",
    "主任技师", "副主任技师", "主管技师", "技师", "技士",
    "其他",
)

FIELD_LABELS = {"name": "姓名", "id_number": "身份证号码", "mobile": "手机号码", "title": "职称", "unit": "单位"}

# ---------------------------------------------------------------- 身份证号码

ID_LENGTH = "身份证号码应为 18 位，请核对（现为 {n} 位）。"
ID_FORMAT = "身份证号码前 17 位应为数字，最后一位为数字或字母 X。"
ID_CHECKSUM = "身份证号码校验位不正确，请逐位核对是否输错。"
ID_BIRTH_DATE = "身份证号码中的出生日期（第 7 至 14 位）不正确，请核对。"
ID_PLACE = "身份证号码前 6 位的地区代码不存在，请核对。"

_ID_SHAPE = re.compile(r"^\d{17}[\dX]$")


def normalise_id_number(value: str) -> str:
    """Full-width folded, spaces and dashes removed, check letter upper-case."""
    return re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", value or "")).upper()


def id_number_error(value: str) -> str | None:
    """None for a valid resident ID number; otherwise the message for the field.

    Checked in this order: length, shape, check digit, birth date (a real date, not before
    1900, not in the future), place (the 6-digit area code is known and not retired before the birth).
    """
    number = normalise_id_number(value)
    if len(number) != 18:
        return ID_LENGTH.format(n=len(number))
    if not _ID_SHAPE.match(number):
        return ID_FORMAT
    if number[-1] != ric.calc_check_digit(number):
        return ID_CHECKSUM
    try:
        born = ric.get_birth_date(number)
    except StdnumError:
        return ID_BIRTH_DATE
    if born.year < 1900 or born > clock.today_local():
        return ID_BIRTH_DATE
    if not _place_existed(number[:6], born.year):
        return ID_PLACE
    return None


@lru_cache(maxsize=8192)
def _place_existed(area: str, year: int) -> bool:
    """The area code is in stdnum's table of places and was not already retired when the person was born.

    Not "existed in the year of birth" (stdnum's own check): the code is where the number was issued, and a
    county renamed or regrouped later reissued its people's numbers under the new code (澄城县 610525 since
    1994, 长安区 610116 since 2002, for trainees born decades earlier). A code retired before the birth year
    cannot have been given to the person (a year's grace for the table's dates). Remembered per code and year:
    a lecture hall's trainees share a few of those."""
    counties = [props["county"] for _, props in numdb.get("cn/loc").info(area) if "county" in props]
    for county in ",".join(counties).split(",") if counties else ():
        if not county.startswith("["):
            return True
        end = county[1:].split("]", 1)[0].split("-", 1)[1]
        if not end or year <= int(end) + 1:
            return True
    return False


# ---------------------------------------------------------------- 手机号码

MOBILE_INVALID = "请输入 11 位中国大陆手机号码，如 13800000000。"


def normalise_mobile(value: str) -> str:
    digits = re.sub(r"[\s\-()]", "", unicodedata.normalize("NFKC", value or ""))
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            return digits[len(prefix):]
    return digits


def mobile_error(value: str) -> str | None:
    return None if pii.is_mainland_mobile(normalise_mobile(value)) else MOBILE_INVALID


# ---------------------------------------------------------------- 姓名

NAME_INVALID = "姓名应为 2 到 30 个汉字；少数民族姓名可用间隔号“·”分隔，如 买买提·艾力。"
NAME_DOTS = "姓名中的间隔号“·”只能用在两个汉字之间。"

_DOT = "\u00b7"
# dots that phones and IMEs type instead of the middle dot
_DOT_LOOKALIKES = dict.fromkeys(map(ord, "\u2022\u2027\u2219\u22c5\u30fb\uff65\u0387\u16eb\u2e31"), _DOT)
_HAN = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_NAME_CHARS = re.compile(f"^[{_HAN}{_DOT}]+$")


def normalise_name(value: str) -> str:
    folded = unicodedata.normalize("NFKC", value or "").translate(_DOT_LOOKALIKES)
    return re.sub(r"\s+", "", folded)


def name_error(value: str) -> str | None:
    name = normalise_name(value)
    if not 2 <= len(name) <= 30 or not _NAME_CHARS.match(name) or len(name.replace(_DOT, "")) < 2:
        return NAME_INVALID
    if name.startswith(_DOT) or name.endswith(_DOT) or _DOT * 2 in name:
        return NAME_DOTS
    return None


# ---------------------------------------------------------------- 职称

TITLE_INVALID = "请从列表中选择职称；列表中没有的请选“其他”。"


def title_error(value: str) -> str | None:
    return None if value in TITLES else TITLE_INVALID


# ---------------------------------------------------------------- the schema

UNIT_INVALID = "单位名称应为 1 到 100 个字符。"


class _Checked(fields.String):
    """A string field normalised, then checked by a function returning a message or None."""

    def __init__(self, normalise: Any, check: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._normalise, self._check = normalise, check

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = self._normalise(super()._deserialize(value, attr, data, **kwargs))
        message = self._check(text)
        if message:
            raise ValidationError(message)
        return text


def _required(label: str, verb: str = "填写") -> dict[str, str]:
    return {"required": f"请{verb}{label}。", "null": f"请{verb}{label}。", "invalid": f"{label}应为文字。"}


# a trainee's key in every service (pii.id_hash of the ID number), as a page's hidden field carries it
TRAINEE_KEY = validate.Regexp(r"^[0-9a-f]{64}$", error="学员标识不正确，请刷新页面后重试。")


def valid_id_number(**kwargs: Any) -> fields.Field:
    """A 身份证号码 checked whole (length, check digit, birth date, place), e.g. for 忘记密码: a number that cannot
    exist is refused next to the field instead of "sending" a code (which tells nothing about accounts)."""
    return _Checked(normalise_id_number, id_number_error, **kwargs)


def name_field(**kwargs: Any) -> fields.Field:
    """A 姓名 as the first-scan form reads it (Han characters, the middle dot of minority names)."""
    return _Checked(normalise_name, name_error, required=True, error_messages=_required("姓名"),
                    metadata={"label": "姓名"}, **kwargs)


def mobile_field(**kwargs: Any) -> fields.Field:
    """A mainland mobile as the first-scan form reads it (spaces, +86 and full-width digits folded)."""
    options = {"required": True, "error_messages": _required("手机号码"), "metadata": {"label": "手机号码"}, **kwargs}
    return _Checked(normalise_mobile, mobile_error, **options)


class TraineeIdentitySchema(ZhFormSchema):
    """The first-scan form. Field names are the code names; FIELD_LABELS gives the Chinese labels."""

    name = name_field()
    id_number = _Checked(normalise_id_number, id_number_error, required=True,
                         error_messages=_required("身份证号码"), metadata={"label": "身份证号码"})
    mobile = mobile_field()
    title = _Checked(lambda v: v.strip(), title_error, required=True, error_messages=_required("职称", "选择"),
                     metadata={"label": "职称", "choices": TITLES})
    unit = fields.String(required=True, validate=validate.Length(min=1, max=100, error=UNIT_INVALID),
                         error_messages=_required("单位"),
                         metadata={"label": "单位", "description": "工作单位全称，如 西安市第一医院"})

    @pre_load
    def _tidy_unit(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("unit"), str):
            data = {**data, "unit": re.sub(r"\s+", " ", data["unit"]).strip()}
        return data
