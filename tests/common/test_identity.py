"""The first-scan identity form: Chinese messages next to each field, normalised values out."""

from __future__ import annotations

import datetime as dt

import pytest

from services.common import clock, identity
from services.common.identity import TITLES, TraineeIdentitySchema
from services.common.schemas import ValidationError, load_form

VALID_ID = "610102198501011233"  # 西安市新城区, born 1985-01-01
VALID_ID_X = "11010519491231002X"  # check "digit" X
GOOD = {"name": "张三", "id_number": VALID_ID, "mobile": "13800000000", "title": "主治医师", "unit": "西安市第一医院"}


def load(**changes):
    return load_form(TraineeIdentitySchema(), {**GOOD, **changes})


def test_valid_form_loads_normalised():
    data, errors = load(name=" 买买提•艾力 ", id_number="11010519491231002x", mobile="+86 138-0000-0000",
                        unit="  西安市  第一医院 ", csrf_token="abc", submit="签到")
    assert errors == {}
    assert data == {"name": "买买提·艾力", "id_number": VALID_ID_X, "mobile": "13800000000", "title": "主治医师",
                    "unit": "西安市 第一医院"}


def test_full_width_input_is_folded():
    data, errors = load(id_number="６１０１０２１９８５０１０１１２３３", mobile="１３８００００００００")
    assert errors == {}
    assert (data["id_number"], data["mobile"]) == (VALID_ID, "13800000000")


@pytest.mark.parametrize("value, message", [
    ("61010219850101123", identity.ID_LENGTH.format(n=17)),
    ("6101021985010112334", identity.ID_LENGTH.format(n=19)),
    ("610102850101123", identity.ID_LENGTH.format(n=15)),  # old 15-digit numbers are not accepted
    ("61010219850101123A", identity.ID_FORMAT),
    ("6101021985O1011233", identity.ID_FORMAT),
    ("610102198501011234", identity.ID_CHECKSUM),
    ("610102198501021233", identity.ID_CHECKSUM),  # one digit of the date mistyped
    ("610102198513011238", identity.ID_BIRTH_DATE),  # month 13, check digit right
    ("610102198502301234", identity.ID_BIRTH_DATE),  # 30 February
    ("999999198501011232", identity.ID_PLACE),  # no such area code
])
def test_id_number_failures_have_their_own_message(value, message):
    from stdnum.cn import ric

    # the cases after the checksum one carry a right check digit, so the later checks are reached
    if message in (identity.ID_BIRTH_DATE, identity.ID_PLACE):
        value = value[:-1] + ric.calc_check_digit(value)
    assert identity.id_number_error(value) == message
    data, errors = load(id_number=value)
    assert data is None and errors == {"id_number": message}


def test_an_area_code_newer_than_the_person_is_accepted_and_a_retired_one_is_not():
    from stdnum.cn import ric

    def number(area: str, year: int) -> str:
        body = f"{area}{year}0101123"
        return body + ric.calc_check_digit(body + "0")

    # the code is where the number was issued: 澄城县 610525 (since 1994), 临渭区 610502 (1994), 长安区 610116
    # (2002), 房山区 110111 (1986) are held by people born long before; checked twice, as the look-up is
    # remembered per code and year
    for _ in range(2):
        for area, year in (("610525", 1975), ("610502", 1988), ("610116", 1992), ("110111", 1980),
                           ("610525", 1999)):
            assert identity.id_number_error(number(area, year)) is None, (area, year)
            data, errors = load(id_number=number(area, year))
            assert errors == {}, (area, year)
        # 华阴县's old code 612125 was retired in 1990: a number of someone born in 1995 never had it
        assert identity.id_number_error(number("612125", 1995)) == identity.ID_PLACE
        assert identity.id_number_error(number("612125", 1985)) is None
        assert identity.id_number_error(number("999999", 1985)) == identity.ID_PLACE


def test_id_number_birth_date_in_the_future_refused():
    from stdnum.cn import ric

    clock.set_now(dt.datetime(2026, 5, 12, 2, 0, tzinfo=dt.UTC))
    future = "61010220260513123"
    assert identity.id_number_error(future + ric.calc_check_digit(future + "0")) == identity.ID_BIRTH_DATE
    today = "61010220260512123"
    assert identity.id_number_error(today + ric.calc_check_digit(today + "0")) is None


@pytest.mark.parametrize("value", ["13800000000", "19912345678", "8613800000000", "0086 138 0000 0000"])
def test_mobile_valid(value):
    assert identity.mobile_error(value) is None


@pytest.mark.parametrize("value", ["1380000000", "23800000000", "12800000000", "138000000001", "1380000000a",
                                   "+1 4155550100"])
def test_mobile_invalid(value):
    data, errors = load(mobile=value)
    assert errors == {"mobile": identity.MOBILE_INVALID}


@pytest.mark.parametrize("value", ["张三", "欧阳娜娜", "阿依古丽·买买提", "爱新觉罗·溥仪", "𠮷野", "王〇"])
def test_name_valid(value):
    assert identity.name_error(value) is None


@pytest.mark.parametrize("value, message", [
    ("张", identity.NAME_INVALID),
    ("Zhang San", identity.NAME_INVALID),
    ("张3", identity.NAME_INVALID),
    ("张" * 31, identity.NAME_INVALID),
    ("·张三", identity.NAME_DOTS),
    ("张三·", identity.NAME_DOTS),
    ("阿依··古丽", identity.NAME_DOTS),
    ("张·", identity.NAME_INVALID),
])
def test_name_invalid(value, message):
    data, errors = load(name=value)
    assert errors == {"name": message}


def test_titles():
    assert len(TITLES) == 22 and TITLES[-1] == "其他" and "住院医师" in TITLES  # the demo's doctors call themselves so
    for title in TITLES:
        assert load(title=title)[1] == {}
    assert load(title="教授")[1] == {"title": identity.TITLE_INVALID}


def test_missing_fields_each_get_a_chinese_message():
    data, errors = load_form(TraineeIdentitySchema(), {"name": "", "id_number": " ", "title": ""})
    assert data is None
    assert errors == {"name": "请填写姓名。", "id_number": "请填写身份证号码。", "mobile": "请填写手机号码。",
                      "title": "请选择职称。", "unit": "请填写单位。"}


def test_unit_length_and_blank():
    assert load(unit="医" * 101)[1] == {"unit": identity.UNIT_INVALID}
    with pytest.raises(ValidationError) as exc:
        TraineeIdentitySchema().load({**GOOD, "unit": "   "})
    assert exc.value.messages == {"unit": [identity.UNIT_INVALID]}


def test_non_string_values_refused_in_chinese():
    with pytest.raises(ValidationError) as exc:
        TraineeIdentitySchema().load({**GOOD, "id_number": 610102198501011233})
    assert exc.value.messages == {"id_number": ["身份证号码应为文字。"]}


def test_labels_cover_every_field():
    assert set(identity.FIELD_LABELS) == set(TraineeIdentitySchema().fields)
