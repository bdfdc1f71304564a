"""The yearly credit requirement (达标要求) is configuration, not code.

CME_CREDIT_REQUIREMENTS is a JSON object: "default" and/or four-digit years, each {"total": n, "class1": n}, e.g.
``{"default": {"total": 25, "class1": 10}, "2025": {"total": 25, "class1": 10}}``. A year without an entry takes
"default"; without "default" (or without the setting) the rule is total >= 25 credits of which >= 10 are Ⅰ类.
A malformed value stops the credits service at start-up (check_configuration, called when the compliance
blueprint is registered) instead of silently falling back to the default.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from services.common.config import env, get_settings

SETTING = "CME_CREDIT_REQUIREMENTS"
YEAR_RE = re.compile(r"^\d{4}$")
MAX_CREDITS = Decimal("1000")


class RequirementsConfigError(RuntimeError):
    """CME_CREDIT_REQUIREMENTS is malformed; raised at start-up so a wrong rule is never served."""


@dataclass(frozen=True)
class Requirement:
    total: Decimal
    class1: Decimal


DEFAULT = Requirement(total=Decimal("25"), class1=Decimal("10"))


@dataclass(frozen=True)
class Requirements:
    default: Requirement
    by_year: dict[int, Requirement]

    def for_year(self, year: int) -> Requirement:
        return self.by_year.get(year, self.default)


def _fail(detail: str) -> RequirementsConfigError:
    return RequirementsConfigError(
        f"{SETTING} is not valid: {detail}. Expected JSON such as "
        '{"default": {"total": 25, "class1": 10}, "2025": {"total": 25, "class1": 10}}')


def _credits(key: str, name: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise _fail(f'"{key}".{name} must be a number, got {value!r}')
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _fail(f'"{key}".{name} must be a number, got {value!r}') from None
    if not number.is_finite() or not Decimal(0) <= number <= MAX_CREDITS:
        raise _fail(f'"{key}".{name} must be between 0 and {MAX_CREDITS}, got {value!r}')
    if number != number.quantize(Decimal("0.01")):
        raise _fail(f'"{key}".{name} may have at most 2 decimal places, got {value!r}')
    return number.quantize(Decimal("0.01"))


def _requirement(key: str, value: Any) -> Requirement:
    if not isinstance(value, dict):
        raise _fail(f'"{key}" must be an object with "total" and "class1", got {value!r}')
    if set(value) != {"total", "class1"}:
        raise _fail(f'"{key}" must have exactly the keys "total" and "class1", got {sorted(value)}')
    req = Requirement(total=_credits(key, "total", value["total"]), class1=_credits(key, "class1", value["class1"]))
    if req.class1 > req.total:
        raise _fail(f'"{key}".class1 ({req.class1}) cannot exceed "{key}".total ({req.total})')
    return req


def parse_requirements(raw: str | None) -> Requirements:
    """Parse the setting's text; empty or unset means the built-in default (25, of which 10 Ⅰ类)."""
    if raw is None or not raw.strip():
        return Requirements(default=DEFAULT, by_year={})
    try:
        data = json.loads(raw, parse_float=Decimal)
    except ValueError as exc:
        raise _fail(f"not JSON ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise _fail("must be a non-empty JSON object")
    default = DEFAULT
    by_year: dict[int, Requirement] = {}
    for key, value in data.items():
        if key == "default":
            default = _requirement(key, value)
        elif YEAR_RE.match(key) and 2000 <= int(key) <= 2100:
            by_year[int(key)] = _requirement(key, value)
        else:
            raise _fail(f'keys must be "default" or a year between 2000 and 2100, got {key!r}')
    return Requirements(default=default, by_year=by_year)


@lru_cache(maxsize=1)
def get_requirements() -> Requirements:
    get_settings()  # loads the env file, as every setting
    return parse_requirements(env(SETTING))


def check_configuration() -> Requirements:
    """Read the setting afresh; raises RequirementsConfigError when it is malformed (app start-up)."""
    get_requirements.cache_clear()
    return get_requirements()


def requirement_for(year: int) -> Requirement:
    return get_requirements().for_year(year)
