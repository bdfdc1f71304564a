"""How a Chinese surname is read: pypinyin gives several surnames their everyday reading (曾 ceng, 单 dan, 仇 chou,
解 jie ...), not the one a surname takes (zeng, shan, qiu, xie). One table for the suite: credits' initial password
(the name's full pinyin) and the pinyin order of person names (services.common.sorting) both read it."""

from __future__ import annotations

__all__ = ["SURNAMES", "listed_surname"]

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


def listed_surname(name: str) -> str:
    """The surname of the table `name` begins with (a compound one before its first character), "" for none; a name
    that is only the surname (欧阳 alone) is read as an everyday name, as no one is named by a surname alone."""
    for surname in _COMPOUND_FIRST:
        if name.startswith(surname) and len(name) > len(surname):
            return surname
    return ""
