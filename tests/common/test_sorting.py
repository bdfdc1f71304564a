"""services.common.sorting: pinyin order of names as a reader expects it, surnames in their surname reading."""

from __future__ import annotations

from services.common.sorting import zh_sort_key


def by_name(texts: list[str]) -> list[str]:
    return sorted(texts, key=lambda t: zh_sort_key(t, name=True))


def test_surnames_sort_by_their_surname_reading():
    """曾 zeng (not ceng), 单 shan (not dan), 仇 qiu (not chou): a class list puts 曾小明 among the z's."""
    names = ["曾小明", "陈大", "单田芳", "丁一", "仇英", "钱二", "沈六", "周三", "崔五", "张三"]
    assert by_name(names) == ["陈大", "崔五", "丁一", "钱二", "仇英", "单田芳", "沈六", "曾小明", "张三", "周三"]
    # compound surnames too: 万俟 is moqi (after 马, before 钱), 单于 chanyu (before 陈)
    names = ["钱二", "万俟卨", "马六", "单于文", "陈大", "王五"]
    assert by_name(names) == ["单于文", "陈大", "马六", "万俟卨", "钱二", "王五"]


def test_the_rest_of_a_name_and_other_text_keep_their_everyday_reading():
    """Only a person's first character(s) are a surname: an institution's 曾 (曾氏医院) and a 曾 inside a name stay
    ceng, a surname alone is no name, and one name's rows still sort together."""
    assert [p[1] for p in zh_sort_key("曾氏医院")][:1] == ["ceng2"]
    assert sorted(["曾氏医院", "陈家诊所"], key=zh_sort_key) == ["曾氏医院", "陈家诊所"]
    assert [p[1] for p in zh_sort_key("李曾", name=True)] == ["li3", "ceng2"]
    assert [p[1] for p in zh_sort_key(" 曾 小明", name=True)][:1] == ["zeng1"]
    assert [p[1] for p in zh_sort_key("曾", name=True)] == ["ceng2"]
    assert by_name(["学员282", "学员1337", "曾二", "曾一"]) == ["学员282", "学员1337", "曾二", "曾一"]
