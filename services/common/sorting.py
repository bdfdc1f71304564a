"""How every service orders Chinese text a clerk scans by eye (trainee names, host names): by pinyin, as a Chinese
directory or Excel's 按拼音排序 does, with numbers in natural order (学员282 before 学员1337). Ordering by character
code put 学员1337 before 学员282, and Chinese characters by their Unicode position, which no reader knows.
A person's name reads its surname as a surname (曾 zeng, 单 shan, 仇 qiu: services.common.pinyin_names), as a
class list does; an institution's name reads every character with its everyday reading."""

from __future__ import annotations

import re
from functools import lru_cache

from pypinyin import Style, lazy_pinyin, pinyin

from .pinyin_names import SURNAMES, listed_surname
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


@lru_cache(maxsize=256)
def _surname_readings(surname: str) -> tuple[str, ...]:
    """Each character of a listed surname with its tone, in its surname reading (曾 zeng1, 万俟 mo4 qi2): the toned
    reading of pypinyin's whose toneless spelling starts what is left of the table's reading, the longest first."""
    left = SURNAMES[surname][0]
    out: list[str] = []
    for ch in surname:
        toned = pinyin(ch, style=Style.TONE3, heteronym=True, neutral_tone_with_five=True)[0]
        fits = [r for r in toned if left.startswith(r.rstrip("012345").replace("ü", "v"))]
        pick = max(fits, key=len) if fits else _reading(ch)
        out.append(pick.lower())
        left = left[len(pick.rstrip("012345")):] if fits else left
    return tuple(out)


def zh_sort_key(text: str | None, name: bool = False) -> tuple[Part, ...]:
    """The key that orders `text` by pinyin, digit runs by their value; equal readings by character, so one
    name's rows stay together. 全角 digits and letters read as their half-width selves. `name`: the text is a
    person's name, its first character(s) read as a surname (曾 as zeng, not ceng)."""
    parts: list[Part] = []
    text = half_width(text or "")
    if name and (surname := listed_surname(text.strip())):
        text = text.strip()[len(surname):]
        parts.extend((1, r, ch) for r, ch in zip(_surname_readings(surname), surname, strict=True))
    for i, chunk in enumerate(_DIGITS.split(text)):
        if i % 2:  # a run of digits (re.split keeps them at the odd places)
            parts.append((0, int(chunk), chunk))
        else:
            parts.extend((1, _reading(ch), ch) for ch in chunk)
    return tuple(parts)
