"""The initial password of a trainee: the full pinyin of the name, without tones or separators.

pypinyin reads several surnames with their everyday reading (曾 ceng, 单 dan, 解 jie ...), not the
reading a surname takes, so the surname is read from SURNAMES (services.common.pinyin_names, compound surnames
first), and every other character may take any of its readings: a trainee who types what they expect gets in.
'ü' is written 'v' (lv) and 'u' (lu) is accepted as well.
"""

from __future__ import annotations

import itertools
import re
import unicodedata

from pypinyin import Style, lazy_pinyin, pinyin

from services.common.inputs import folded
from services.common.pinyin_names import SURNAMES, listed_surname

__all__ = ["SURNAMES", "MAX_CANDIDATES", "default_initial_password", "initial_password_candidates",
           "is_initial_password", "normalize_password_input"]

MAX_CANDIDATES = 256

_DROP = re.compile(r"[\s·•・.\-_'’]+")


def _clean_name(name: str) -> str:
    return _DROP.sub("", unicodedata.normalize("NFKC", name or ""))


def _is_han(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" or "\U00020000" <= ch <= "\U0003ffff"


def _readings(ch: str) -> list[str]:
    """Every toneless reading of one character (ü as 'v'), the most common first; a non-Han character as itself."""
    if not _is_han(ch):
        return [ch.lower()] if ch.isalnum() else []
    out: list[str] = []
    for r in pinyin(ch, style=Style.NORMAL, heteronym=True)[0]:
        r = r.lower().replace("ü", "v")
        if r and r not in out:
            out.append(r)
    return out or [ch]


def _split(name: str) -> tuple[tuple[str, ...], str]:
    clean = _clean_name(name)
    if surname := listed_surname(clean):
        return SURNAMES[surname], clean[len(surname):]
    if not clean:
        return (), ""
    return tuple(_readings(clean[0])[:1]), clean[1:]  # an unlisted surname: its most common reading


def _u_variants(spelling: str) -> set[str]:
    return {spelling, spelling.replace("v", "u")} if "v" in spelling else {spelling}


def normalize_password_input(value: str) -> str:
    """What the trainee typed, for comparison with the initial password: lower case, no spaces, ü as v."""
    return folded(value).lower().replace("ü", "v")


def default_initial_password(name: str) -> str:
    """The canonical initial password: the surname's reading as a surname + the first reading of the rest."""
    surname, rest = _split(name)
    head = surname[0] if surname else ""
    return head + "".join((_readings(ch) or [""])[0] for ch in rest)


def initial_password_candidates(name: str, cap: int = MAX_CANDIDATES) -> set[str]:
    """Every accepted spelling of the initial password (at most about `cap`, plus their 'u' for 'ü' forms)."""
    surname, rest = _split(name)
    options: list[list[str]] = [list(surname)] if surname else []
    options += [r for r in (_readings(ch) for ch in rest) if r]
    # keep the product bounded: drop the rarest readings of the character with the most of them
    while options and _product(options) > cap:
        widest = max(options, key=len)
        widest.pop()
    spellings = {"".join(parts) for parts in itertools.product(*options)} if options else set()
    plain = "".join(lazy_pinyin(_clean_name(name), style=Style.NORMAL)).lower().replace("ü", "v")
    if plain:
        spellings.add(plain)
    return set().union(*(_u_variants(s) for s in spellings)) if spellings else set()


def _product(options: list[list[str]]) -> int:
    total = 1
    for o in options:
        total *= len(o)
    return total


def is_initial_password(name: str, typed: str) -> bool:
    typed = normalize_password_input(typed)
    return bool(typed) and typed in initial_password_candidates(name)
