"""How every service orders Chinese text a clerk scans by eye (trainee names, host names): by pinyin, as a Chinese
directory or Excel's 按拼音排序 does, with numbers in natural order (学员282 before 学员1337). Ordering by character
code put 学员1337 before 学员282, and Chinese characters by their Unicode position, which no reader knows."""

from __future__ import annotations

import re
from functools import lru_cache

from pypinyin import Style, lazy_pinyin

from .schemas import half_width

__all__ = ["zh_sort_key"]

_DIGITS = re.compile(r"(\d+)")

# a part of a key: (0, number, digits) for a run of digits, (1, pinyin, character) for anything else; digit runs come
# before letters and characters, as in Excel, and the tuples never compare a number with a text
Part = tuple[int, int | str, str]


@lru_cache(maxsize=8192)
def _reading(ch: str) -> str:
    """A character's most common reading with its tone (zhang1), so 张 and 章 stay together and apart from 赵; a
    letter or sign as itself, in lower case (Li among 李)."""
    return lazy_pinyin(ch, style=Style.TONE3, neutral_tone_with_five=True)[0].lower()


def zh_sort_key(text: str | None) -> tuple[Part, ...]:
    """The key that orders `text` by pinyin, digit runs by their value; equal readings by character, so one
    name's rows stay together. 全角 digits and letters read as their half-width selves."""
    parts: list[Part] = []
    for i, chunk in enumerate(_DIGITS.split(half_width(text or ""))):
        if i % 2:  # a run of digits (re.split keeps them at the odd places)
            parts.append((0, int(chunk), chunk))
        else:
            parts.extend((1, _reading(ch), ch) for ch in chunk)
    return tuple(parts)
