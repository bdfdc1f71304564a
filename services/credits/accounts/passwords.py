"""The initial password of a trainee: the full pinyin of the name, without tones or separators.

pypinyin reads several surnames with their everyday reading (曾 ceng, 单 dan, 解 jie ...), not the
reading a surname takes, so the surname is read from SURNAMES (compound surnames first), and every
other character may take any of its readings: a trainee who types what they expect gets in.
'ü' is written 'v' (lv) and 'u' (lu) is accepted as well.
"""

from __future__ import annotations

import itertools
import re
import unicodedata

from pypinyin import Style, lazy_pinyin, pinyin

from services.common.inputs import folded

__all__ = ["SURNAMES", "MAX_CANDIDATES", "default_initial_password", "initial_password_candidates",
           "is_initial_password", "normalize_password_input"]

MAX_CANDIDATES = 256

# surname -> its readings as a surname, the canonical one first
SURNAMES: dict[str, tuple[str, ...]] = {
    # compound surnames (复姓)
    "尉迟": ("yuchi",), "万俟": ("moqi",), "长孙": ("zhangsun",), "单于": ("chanyu",), "澹台": ("tantai",),
    "令狐": ("linghu",), "皇甫": ("huangfu",), "欧阳": ("ouyang",), "司马": ("sima",), "上官": ("shangguan",),
    "诸葛": ("zhuge",), "东方": ("dongfang",), "夏侯": ("xiahou",), "宇文": ("yuwen",), "慕容": ("murong",),
    "公孙": ("gongsun",), "闻人": ("wenren",), "司徒": ("situ",), "司空": ("sikong",), "呼延": ("huyan",),
    "赫连": ("helian",), "百里": ("baili",), "东郭": ("dongguo",), "南宫": ("nangong",), "西门": ("ximen",),
    "独孤": ("dugu",), "仲孙": ("zhongsun",), "太叔": ("taishu",), "申屠": ("shentu",), "轩辕": ("xuanyuan",),
    "宰父": ("zaifu",), "谷梁": ("guliang",), "段干": ("duangan",), "亓官": ("qiguan",), "乐正": ("yuezheng",),
    "钟离": ("zhongli",), "拓跋": ("tuoba",), "公冶": ("gongye",), "濮阳": ("puyang",), "淳于": ("chunyu",),
    "端木": ("duanmu",), "巫马": ("wuma",), "漆雕": ("qidiao",), "壤驷": ("rangsi",), "公良": ("gongliang",),
    # single surnames whose surname reading differs from the everyday one, or that have several
    "单": ("shan",), "曾": ("zeng",), "解": ("xie",), "仇": ("qiu",), "区": ("ou",), "查": ("zha",),
    "朴": ("piao",), "翟": ("zhai",), "覃": ("qin",), "缪": ("miao",), "种": ("chong",), "盖": ("ge", "gai"),
    "秘": ("bi",), "乐": ("yue", "le"), "召": ("shao",), "华": ("hua",), "任": ("ren",), "便": ("pian",),
    "繁": ("po",), "尉": ("wei", "yu"), "员": ("yun",), "句": ("gou",), "过": ("guo",), "牟": ("mou", "mu"),
    "隗": ("wei",), "禚": ("zhuo",), "相": ("xiang",), "柏": ("bai",), "重": ("chong",), "沈": ("shen",),
    "薄": ("bo",), "纪": ("ji",), "那": ("na",), "都": ("du",), "阚": ("kan",), "宿": ("su",), "折": ("she",),
    "费": ("fei",), "贲": ("ben",), "逄": ("pang",), "眭": ("sui",), "黑": ("he",), "万": ("wan",),
    "车": ("che",), "石": ("shi",), "藏": ("zang",), "臧": ("zang",), "洗": ("xian",), "冼": ("xian",),
    "角": ("jue",), "長": ("chang",), "长": ("chang",), "降": ("jiang",), "粘": ("nian",), "阿": ("a",),
    "殷": ("yin",), "燕": ("yan",), "叶": ("ye",), "葛": ("ge",), "贾": ("jia",), "蕃": ("pi",), "吕": ("lv",),
}
_COMPOUND_FIRST = sorted(SURNAMES, key=len, reverse=True)
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
    for surname in _COMPOUND_FIRST:
        if clean.startswith(surname) and len(clean) > len(surname):
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
