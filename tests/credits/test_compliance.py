"""达标情况查询: yearly sums by class and state, the configured requirement, printable dates, the phone page, the JSON
API and who may see what."""

from __future__ import annotations

import datetime as dt
import json
import re
from contextlib import contextmanager
from decimal import Decimal

import pytest
from sqlalchemy import event

from services.common import clock, pii
from services.common.auth import Principal
from tests.conftest import bearer, login_client
from tests.credits.conftest import new_account
from tests.credits.test_offerings import INST_A, INST_B, REVIEWER

ID_NUMBER = "11010519491231002X"
NEIGHBOUR_ID = "610102198502024321"
MOBILE = "13912345678"
PAGE = "/credits/compliance"
API = "/credits/api/me/compliance"
# 2026-12-10 10:00 in Shanghai
T0 = dt.datetime(2026, 12, 10, 2, 0, tzinfo=dt.UTC)


@contextmanager
def statements_on(*engines):  # noqa: ANN001, ANN201
    """The SQL statements sent on these engines while the block runs."""
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # noqa: ANN001
        statements.append(statement)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)


@pytest.fixture
def make_account(databases):
    def make(name="曾小明", id_number=ID_NUMBER, password="Neues2026pw"):
        return new_account(databases, name, id_number, password, MOBILE)

    return make


_OFFERING = {"n": 100}


def insert_award(databases, id_number=ID_NUMBER, *, credit_class="Ⅰ类", value="5", method="attendance",
                 state="effective", ends_on=dt.date(2026, 6, 12), title=None, institution_id=1, offering_id=None):
    """Insert one CreditAward row straight into the credits database (its own offering unless one is given);
    returns its id."""
    from services.credits.awards.models import CreditAward

    _OFFERING["n"] += 1
    n = offering_id or _OFFERING["n"]
    s = databases["credits"].new_session()
    award = CreditAward(
        offering_id=n, institution_id=institution_id, trainee_key=pii.id_hash(id_number), name="曾小明",
        id_enc=pii.encrypt(id_number), project_number=f"{ends_on.year}-01-01-{n:03d}",
        project_title=title or f"测试项目{n}", institution_name="西安市第一医院", credit_class=credit_class,
        credit_value=Decimal(value), offering_starts_on=ends_on - dt.timedelta(days=1), offering_ends_on=ends_on,
        activity_date=ends_on, year=ends_on.year, method=method, state=state, granted_by="inst:1:admin:1",
        effective_at=T0 if state == "effective" else None,
        withdrawn_at=T0 if state == "withdrawn" else None,
        withdraw_reason="重复授分" if state == "withdrawn" else None)
    s.add(award)
    s.commit()
    award_id = award.id
    s.close()
    return award_id


@pytest.fixture
def add_award(databases):
    """Insert CreditAward rows straight into the credits database."""

    def add(*args, **kwargs):
        return insert_award(databases, *args, **kwargs)

    return add


@pytest.fixture
def requirements_env(monkeypatch):
    """Set CME_CREDIT_REQUIREMENTS for one test; the cached rule is dropped before and after."""
    from services.credits.compliance import requirements

    def set_value(value):
        if value is None:
            monkeypatch.delenv(requirements.SETTING, raising=False)
        else:
            monkeypatch.setenv(requirements.SETTING, value if isinstance(value, str) else json.dumps(value))
        requirements.get_requirements.cache_clear()

    yield set_value
    monkeypatch.delenv(requirements.SETTING, raising=False)
    requirements.get_requirements.cache_clear()


def summary(databases, id_number=ID_NUMBER, today=dt.date(2026, 12, 10), year=None):
    from services.credits.compliance.services import yearly_summary

    s = databases["credits"].new_session()
    try:
        return {y.year: y for y in yearly_summary(s, pii.id_hash(id_number), today, year=year)}
    finally:
        s.close()


# ---------------------------------------------------------------- sums, met, missing


def test_sums_by_class_and_state_with_pending_manual_and_withdrawn_apart(databases, add_award):
    add_award(credit_class="Ⅰ类", value="6")
    add_award(credit_class="Ⅰ类", value="4")
    add_award(credit_class="Ⅱ类", value="8.5")
    add_award(credit_class="Ⅰ类", value="3", state="pending")
    add_award(credit_class="Ⅱ类", value="2", state="pending")
    add_award(credit_class="Ⅰ类", value="10", method="manual", state="pending")
    add_award(credit_class="Ⅰ类", value="5", state="withdrawn")
    add_award(credit_class="Ⅰ类", value="7", ends_on=dt.date(2025, 3, 2))
    add_award(NEIGHBOUR_ID, credit_class="Ⅰ类", value="20")  # someone else's

    years = summary(databases)
    assert list(years) == [2026, 2025]
    y = years[2026]
    assert (y.effective.class1, y.effective.class2, y.effective.total) == (10, Decimal("8.5"), Decimal("18.5"))
    assert (y.pending.class1, y.pending.class2, y.pending.total, y.pending.count) == (3, 2, 5, 2)
    assert (y.manual.total, y.manual.count) == (10, 1)  # apart, and never in effective
    assert (y.withdrawn.total, y.withdrawn.count) == (5, 1)
    assert not y.met and y.missing_class1 == 0 and y.missing_total == Decimal("6.5")
    assert y.missing_text == "还差 总学分 6.5 分"
    assert len(y.awards) == 7
    manual = next(a for a in y.awards if a.method == "manual")
    assert not manual.counted and "非有效学分" in manual.status_text and "不计入达标" in manual.status_text
    assert manual.state_label == "手工录入（非有效学分）"
    withdrawn = next(a for a in y.awards if a.state == "withdrawn")
    assert not withdrawn.counted and withdrawn.state_label == "已撤销" and not withdrawn.printable
    assert withdrawn.status_text == "已撤销（原因：重复授分），不计入达标"  # she need not call to ask why
    assert sum(a.counted for a in y.awards) == 3
    assert years[2025].effective.class1 == 7 and len(years[2025].awards) == 1


def test_manual_credit_never_makes_a_year_met(databases, add_award):
    add_award(credit_class="Ⅰ类", value="9")
    add_award(credit_class="Ⅱ类", value="15")
    for _ in range(3):
        add_award(credit_class="Ⅰ类", value="10", method="manual", state="pending")
    y = summary(databases)[2026]
    assert y.manual.total == 30 and y.effective.total == 24
    assert not y.met and y.missing_text == "还差 Ⅰ类 1 分、总学分 1 分"


@pytest.mark.parametrize(("class1", "class2", "met", "text"), [
    ("7", "13", False, "还差 Ⅰ类 3 分、总学分 5 分"),
    ("7", "18", False, "还差 Ⅰ类 3 分"),
    ("12", "8", False, "还差 总学分 5 分"),
    ("10", "15", True, ""),
    ("25", "0", True, ""),
])
def test_met_or_what_is_missing(databases, add_award, class1, class2, met, text):
    add_award(credit_class="Ⅰ类", value=class1)
    add_award(credit_class="Ⅱ类", value=class2)
    y = summary(databases)[2026]
    assert y.met is met and y.missing_text == text
    assert y.status_text == ("已达标" if met else f"未达标，{text}")


def test_a_trainee_without_awards_sees_this_year_unmet(databases):
    years = summary(databases)
    assert list(years) == [2026]
    y = years[2026]
    assert y.effective.total == 0 and y.awards == [] and y.missing_text == "还差 Ⅰ类 10 分、总学分 25 分"


def test_asking_for_one_year_makes_only_its_lines_in_one_query(databases, add_award):
    from services.credits.compliance.services import yearly_summary

    for year in (2024, 2025, 2026):
        for _ in range(5):
            add_award(value="2", ends_on=dt.date(year, 5, 10))
    s = databases["credits"].new_session()
    try:
        with statements_on(s.get_bind()) as statements:
            result = yearly_summary(s, pii.id_hash(ID_NUMBER), dt.date(2026, 12, 10), year=2025)
            again = yearly_summary(s, pii.id_hash(ID_NUMBER), dt.date(2026, 12, 10))
    finally:
        s.close()
    assert len(statements) == 2  # one query per call, none per row
    assert [y.year for y in result] == [2026, 2025, 2024]
    assert [y.awards is not None for y in result] == [False, True, False]
    assert len(result[1].awards) == 5 and all(y.effective.total == 10 for y in result)
    assert [len(y.awards) for y in again] == [5, 5, 5]


def test_the_api_json_written_by_hand_is_what_the_schema_dumps(databases, add_award):
    """dump_compliance (the API's fast path) gives exactly ComplianceOut().dump: awards of every kind, odd
    values, a year with its lines and years without (None), a printable date and none."""
    from services.credits.compliance.schemas import ComplianceOut, dump_compliance
    from services.credits.compliance.services import yearly_summary

    add_award(credit_class="Ⅰ类", value="7.5", title="心血管急危重症诊治进展")
    add_award(credit_class="Ⅱ类", value="13", ends_on=dt.date(2026, 11, 30))  # printable only from a later day
    add_award(credit_class="Ⅰ类", value="2", state="pending")
    add_award(credit_class="Ⅰ类", value="4", method="manual", state="pending")
    add_award(credit_class="Ⅱ类", value="0.25", state="withdrawn")
    add_award(value="10", ends_on=dt.date(2024, 5, 20))
    s = databases["credits"].new_session()
    try:
        every = yearly_summary(s, pii.id_hash(ID_NUMBER), dt.date(2026, 12, 10))
        one = yearly_summary(s, pii.id_hash(ID_NUMBER), dt.date(2026, 12, 10), year=2024)
    finally:
        s.close()
    for years in (every, one):
        data = {"trainee": {"name": "曾小明", "id_number_masked": "1101**********002X"},
                "today": dt.date(2026, 12, 10), "years": years}
        assert dump_compliance(data) == ComplianceOut().dump(data)
    assert any(y.awards is None for y in one) and any(a.printable_from is None for y in every for a in y.awards)


def test_the_page_and_the_api_read_the_database_twice(credits_app, databases, make_account, add_award):
    """The account and its awards in one statement, her check-ins without an award in one more, with no
    transaction or ping around them."""
    from services.credits.db import db

    clock.set_now(T0)
    for year in (2025, 2026):
        add_award(value="2", ends_on=dt.date(year, 5, 10))
    principal = make_account()
    client = login_client(credits_app.test_client(), principal)
    client.get(PAGE)  # the pools connect
    with statements_on(db.engine, db.autocommit_engine) as statements:
        page = client.get(PAGE)
        api = credits_app.test_client().get(API, headers=bearer(principal))
    assert page.status_code == 200 and "2026年度达标情况" in page.get_data(as_text=True)
    assert api.status_code == 200 and [y["year"] for y in api.json["years"]] == [2026, 2025]
    assert len(statements) == 4, statements
    assert sum("attendance_records" in st for st in statements) == 2, statements


# ---------------------------------------------------------------- the requirement is configuration


def test_requirement_from_configuration_per_year(databases, add_award, requirements_env):
    from services.credits.compliance.requirements import Requirement, requirement_for

    add_award(credit_class="Ⅰ类", value="5", ends_on=dt.date(2025, 4, 1))
    add_award(credit_class="Ⅱ类", value="15", ends_on=dt.date(2025, 4, 1))
    add_award(credit_class="Ⅰ类", value="5", ends_on=dt.date(2026, 4, 1))
    add_award(credit_class="Ⅱ类", value="15", ends_on=dt.date(2026, 4, 1))

    requirements_env(None)
    assert requirement_for(2025) == Requirement(Decimal(25), Decimal(10))
    before = summary(databases)
    assert not before[2025].met and not before[2026].met

    requirements_env({"default": {"total": 25, "class1": 10}, "2025": {"total": 20, "class1": 5}})
    assert requirement_for(2025) == Requirement(Decimal(20), Decimal(5))
    assert requirement_for(2026) == Requirement(Decimal(25), Decimal(10))
    after = summary(databases)
    assert after[2025].met and after[2025].requirement_text == "总学分不少于 20 分，其中Ⅰ类学分不少于 5 分"
    assert not after[2026].met and after[2026].missing_text == "还差 Ⅰ类 5 分、总学分 5 分"

    requirements_env({"default": {"total": "30", "class1": 12.5}})
    assert requirement_for(2019) == Requirement(Decimal(30), Decimal("12.5"))


@pytest.mark.parametrize("raw", [
    "{not json", "[]", "{}", '{"default": 25}', '{"default": {"total": 25}}',
    '{"default": {"total": 25, "class1": 10, "class2": 5}}', '{"default": {"total": -1, "class1": 0}}',
    '{"default": {"total": "x", "class1": 0}}', '{"default": {"total": true, "class1": 0}}',
    '{"default": {"total": 10, "class1": 20}}', '{"2025年": {"total": 25, "class1": 10}}',
    '{"25": {"total": 25, "class1": 10}}', '{"default": {"total": NaN, "class1": 1}}',
    '{"default": {"total": 25.123, "class1": 1}}',
])
def test_malformed_configuration_is_refused(raw):
    from services.credits.compliance.requirements import RequirementsConfigError, parse_requirements

    with pytest.raises(RequirementsConfigError, match="CME_CREDIT_REQUIREMENTS is not valid"):
        parse_requirements(raw)


def test_malformed_configuration_stops_the_app(databases, requirements_env):
    from services.credits.app import create_app
    from services.credits.compliance.requirements import RequirementsConfigError

    requirements_env('{"default": {"total": 25, "class1": 30}}')
    with pytest.raises(RequirementsConfigError, match="class1"):
        create_app({"TESTING": True})
    requirements_env("")  # empty means the default
    assert create_app({"TESTING": True}) is not None


# ---------------------------------------------------------------- printable dates


def test_printable_dates_and_texts(databases, add_award):
    ends = dt.date(2026, 11, 26)  # + 4 weeks = 2026-12-24
    add_award(title="已生效项目", state="effective", ends_on=ends)
    add_award(title="待生效项目", state="pending", ends_on=ends)
    add_award(title="手工项目", method="manual", state="pending", ends_on=ends)
    add_award(title="撤销项目", state="withdrawn", ends_on=ends)

    def lines(today):
        return {a.project_title: a for a in summary(databases, today=today)[2026].awards}

    before = lines(dt.date(2026, 12, 23))
    assert (before["已生效项目"].printable, before["已生效项目"].printable_text) == (False, "2026-12-24 起可打印")
    assert before["已生效项目"].printable_from == dt.date(2026, 12, 24)
    assert before["待生效项目"].printable_text == "执行情况反馈审核通过后，且 2026-12-24 起可打印"
    assert before["手工项目"].printable_text == "手工录入学分，不生成学分证书"
    assert before["手工项目"].printable_from is None and not before["手工项目"].printable
    assert not before["撤销项目"].printable and before["撤销项目"].printable_from is None

    on = lines(dt.date(2026, 12, 24))
    assert (on["已生效项目"].printable, on["已生效项目"].printable_text) == (True, "可打印学分证书")
    assert not on["待生效项目"].printable and on["待生效项目"].printable_text == "执行情况反馈审核通过后即可打印"
    assert not on["手工项目"].printable


def test_the_page_reads_the_shanghai_day_of_the_moved_clock(credits_app, make_account, add_award):
    add_award(title="已生效项目", ends_on=dt.date(2026, 11, 26))
    client = login_client(credits_app.test_client(), make_account())
    clock.set_now(dt.datetime(2026, 12, 23, 15, 59, tzinfo=dt.UTC))  # 23:59 on the 23rd in Shanghai
    api = client.get(API).json
    [award] = api["years"][0]["awards"]
    assert api["today"] == "2026-12-23" and award["printable"] is False
    assert "2026-12-24 起可打印" in client.get(PAGE).get_data(as_text=True)
    clock.set_now(dt.datetime(2026, 12, 23, 16, 0, tzinfo=dt.UTC))  # midnight of the 24th in Shanghai
    [award] = client.get(API).json["years"][0]["awards"]
    assert award["printable"] is True and award["printable_text"] == "可打印学分证书"
    assert "学分证书：可打印学分证书" in client.get(PAGE).get_data(as_text=True)


# ---------------------------------------------------------------- page and API


def test_a_year_with_nothing_effective_offers_no_big_export_button(credits_app, make_account, add_award):
    """A doctor with only a pending award (or none) was shown the big 导出学分证书 leading to an empty list (QA
    walk): the page says nothing of that year prints yet and only links to her certificates."""
    clock.set_now(T0)
    add_award(title="待审项目", credit_class="Ⅰ类", value="2", state="pending")
    html = login_client(credits_app.test_client(), make_account()).get(PAGE).get_data(as_text=True)
    assert "导出学分证书</a>" not in html and "2026年度暂无已生效的学分，尚无可导出的学分证书。" in html
    assert '<a class="button secondary" href="/certs/my?year=2026">查看学分证书</a>' in html


def test_page_renders_for_the_phone(credits_app, make_account, add_award):
    clock.set_now(T0)
    add_award(title="心血管急危重症诊治进展", credit_class="Ⅰ类", value="7")
    add_award(title="基层全科医学", credit_class="Ⅱ类", value="13")
    add_award(title="待审项目", credit_class="Ⅰ类", value="2", state="pending")
    add_award(title="手工录入项目", credit_class="Ⅰ类", value="4", method="manual", state="pending")
    add_award(title="往年项目", value="10", ends_on=dt.date(2025, 5, 20))
    client = login_client(credits_app.test_client(), make_account())
    resp = client.get(PAGE)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'name="viewport"' in html and "width=device-width" in html and "<table" not in html
    for label in ("达标情况查询", "2026年度达标情况", "未达标", "还差 Ⅰ类 3 分、总学分 5 分", "Ⅰ类学分", "Ⅱ类学分",
                  "总学分", "待生效学分 2 分", "手工录入学分 4 分", "非有效学分，不计入达标", "心血管急危重症诊治进展",
                  "学分证书：", "总学分不少于 25 分，其中Ⅰ类学分不少于 10 分", "曾小明", "1101**********002X"):
        assert label in html, label
    assert ID_NUMBER not in html
    assert '<a class="button big" href="/certs/my?year=2026">导出学分证书</a>' in html  # that year's, ticked
    assert 'id="no-certs"' not in html
    assert 'href="/credits/compliance?year=2025"' in html and "往年项目" not in html
    older = client.get(f"{PAGE}?year=2025&from=singlemessage").get_data(as_text=True)
    blank = client.get(f"{PAGE}?year=")  # a blank year is the page as opened, ２０２５ is 2025
    assert blank.status_code == 200 and blank.get_data(as_text=True) == html
    assert client.get(f"{PAGE}?year=２０２５").get_data(as_text=True) == client.get(f"{PAGE}?year=2025").get_data(
        as_text=True)
    assert "2025年度达标情况" in older and "往年项目" in older and "心血管急危重症诊治进展" not in older
    home = client.get("/credits/").get_data(as_text=True)
    assert 'href="/credits/compliance"' in home


def test_in_january_the_page_opens_on_last_year_and_says_so(credits_app, make_account, add_award):
    """A doctor opens 达标情况查询 on 5 January for last year's result: this year is still empty (no award, no
    check-in), so the page opens on last year (its result and its printable certificates) and says so, this year
    one tap away; once this year has an award or a check-in, or a year is asked for, it opens as asked."""
    add_award(title="往年项目", credit_class="Ⅰ类", value="10", ends_on=dt.date(2026, 5, 20))
    add_award(title="往年项目二", credit_class="Ⅱ类", value="15", ends_on=dt.date(2026, 9, 20))
    client = login_client(credits_app.test_client(), make_account())
    clock.set_now(dt.datetime(2027, 1, 5, 2, 0, tzinfo=dt.UTC))  # 10:00 on 5 January in Shanghai
    html = client.get(PAGE).get_data(as_text=True)
    assert "今年尚无学分记录，显示 2026 年。" in html
    assert "2026年度达标情况" in html and "已达标" in html and "往年项目二" in html and "未达标" not in html
    assert '<a class="button big" href="/certs/my?year=2026">导出学分证书</a>' in html
    assert 'href="/credits/compliance?year=2027">查看2027年度</a>' in html
    assert 'href="/credits/compliance?year=2026">2026年度</a>' in html
    chips = html.split('aria-label="选择年度"')[1].split("</nav>")[0]
    assert 'href="/credits/compliance?year=2026" class="on"' in chips and ">2027年</a>" in chips
    asked = client.get(f"{PAGE}?year=2027").get_data(as_text=True)
    assert "2027年度达标情况" in asked and "今年尚无学分记录" not in asked
    assert "2026年度：<b>已达标</b>" not in asked  # the year asked for, as asked
    # from April an empty year is news: the page opens on it (未达标) and points to last year's result below
    clock.set_now(dt.datetime(2027, 4, 1, 2, 0, tzinfo=dt.UTC))
    april = client.get(PAGE).get_data(as_text=True)
    assert "2027年度达标情况" in april and "今年尚无学分记录" not in april
    assert "2026年度：<b>已达标</b>" in april and 'href="/credits/compliance?year=2026">查看2026年度学分明细' in april
    # on 31 December (the suite's clock back in 2026) the year is the one with the awards: nothing to say
    clock.set_now(dt.datetime(2026, 12, 31, 2, 0, tzinfo=dt.UTC))
    december = client.get(PAGE).get_data(as_text=True)
    assert "2026年度达标情况" in december and "今年尚无学分记录" not in december
    clock.set_now(dt.datetime(2027, 1, 5, 2, 0, tzinfo=dt.UTC))
    add_award(title="新年项目", credit_class="Ⅰ类", value="2", ends_on=dt.date(2027, 1, 3), state="pending")
    now = client.get(PAGE).get_data(as_text=True)
    assert "2027年度达标情况" in now and "今年尚无学分记录" not in now and "2026年度：" not in now


def test_a_year_with_a_check_in_only_opens_on_itself_and_points_to_last_year(credits_app, databases, make_account,
                                                                             add_award):
    """A check-in of this year without an award yet is something of this year: the page opens on it (its 已签到
    line), and says last year's result first, as before."""
    from sqlalchemy import insert

    from services.credits.attendance.models import AttendanceRecord

    add_award(title="往年项目", credit_class="Ⅰ类", value="10", ends_on=dt.date(2026, 5, 20))
    add_award(title="往年项目二", credit_class="Ⅱ类", value="15", ends_on=dt.date(2026, 9, 20))
    client = login_client(credits_app.test_client(), make_account())
    at = dt.datetime(2027, 1, 4, 1, 0, tzinfo=dt.UTC)
    s = databases["credits"].new_session()
    s.execute(insert(AttendanceRecord), [{
        "checkin_id": 1, "activity_id": 1, "offering_id": 999, "institution_id": 1, "window_id": 1,
        "window_kind": "sign_in", "window_starts_at": at, "window_ends_at": at + dt.timedelta(hours=1),
        "trainee_key": pii.id_hash(ID_NUMBER), "name": "曾小明", "id_enc": pii.encrypt(ID_NUMBER),
        "mobile_enc": pii.encrypt(MOBILE), "title": "主治医师", "unit": "西安市第一医院",
        "scanned_at": at + dt.timedelta(minutes=5), "forced": False, "flags": []}])
    s.commit()
    s.close()
    clock.set_now(dt.datetime(2027, 1, 5, 2, 0, tzinfo=dt.UTC))
    html = client.get(PAGE).get_data(as_text=True)
    assert "2027年度达标情况" in html and "今年尚无学分记录" not in html and 'id="checkins"' in html
    assert "2026年度：<b>已达标</b>" in html and 'href="/credits/compliance?year=2026">查看2026年度学分明细' in html


def test_each_award_says_its_state_once(credits_app, make_account, add_award):
    """The QA walk: the badge 已生效 was followed at once by 已生效，计入达标 (and 待生效 by 待生效：…)."""
    clock.set_now(T0)
    add_award(title="已生效项目", value="7")
    add_award(title="待审项目", value="2", state="pending")
    html = login_client(credits_app.test_client(), make_account()).get(PAGE).get_data(as_text=True)
    assert html.count('<span class="badge effective">已生效</span>') == 1 and "计入达标" in html
    assert "已生效，计入达标" not in html
    assert html.count('<span class="badge pending">待生效</span>') == 1 and "待生效：" not in html
    assert "执行情况反馈审核通过后计入" in html


def test_last_year_is_always_a_year_chip(credits_app, make_account, add_award):
    """The QA walk: the chips listed only years with awards and this year, so last year (without awards) was
    reachable only by editing the URL."""
    clock.set_now(T0)
    add_award(title="前年项目", value="10", ends_on=dt.date(2024, 5, 20))
    client = login_client(credits_app.test_client(), make_account())
    html = client.get(PAGE).get_data(as_text=True)
    chips = html.split('aria-label="选择年度"')[1].split("</nav>")[0]
    assert [int(y) for y in re.findall(r'\?year=(\d{4})"', chips)] == [2026, 2025, 2024]
    assert ">2025年</a>" in chips
    older = client.get(f"{PAGE}?year=2024").get_data(as_text=True)  # asked for another year, last year stays
    assert 'href="/credits/compliance?year=2025"' in older.split("</nav>")[0]


def test_home_links_to_the_certificates(credits_app, make_account):
    """The QA walk: the trainee's home had no way to her 学分证书 but through 达标情况查询."""
    client = login_client(credits_app.test_client(), make_account())
    home = client.get("/credits/")
    assert home.status_code == 200
    assert '<a class="button big secondary" href="/certs/my">导出学分证书</a>' in home.get_data(as_text=True)


def test_api_gives_every_year_or_the_one_asked_for(credits_app, make_account, add_award):
    clock.set_now(T0)
    add_award(credit_class="Ⅰ类", value="10")
    add_award(credit_class="Ⅱ类", value="15.5")
    add_award(value="3", ends_on=dt.date(2024, 5, 20))
    headers = bearer(make_account())
    client = credits_app.test_client()
    body = client.get(API, headers=headers).json
    assert body["trainee"] == {"name": "曾小明", "id_number_masked": "1101**********002X"}
    assert [y["year"] for y in body["years"]] == [2026, 2024]
    this = body["years"][0]
    assert this["effective"] == {"class1": "10.00", "class2": "15.50", "total": "25.50", "count": 2}
    assert this["met"] is True and this["missing_text"] == "" and this["status_text"] == "已达标"
    assert this["requirement"] == {"total": "25.00", "class1": "10.00"}
    assert len(this["awards"]) == 2 and {"id_enc", "trainee_key", "name"}.isdisjoint(this["awards"][0])
    one = client.get(f"{API}?year=2024", headers=headers).json
    assert [y["year"] for y in one["years"]] == [2024]
    assert one["years"][0]["missing_text"] == "还差 Ⅰ类 7 分、总学分 22 分"
    empty = client.get(f"{API}?year=2019", headers=headers).json
    assert empty["years"][0]["awards"] == [] and empty["years"][0]["effective"]["total"] == "0.00"


@pytest.mark.parametrize("bad", ["abc", "1999", "2028", "20.5"])  # a blank one: the default year
def test_bad_year_is_refused_in_chinese(credits_app, make_account, bad):
    clock.set_now(T0)
    principal = make_account()
    page = login_client(credits_app.test_client(), principal).get(f"{PAGE}?year={bad}")
    api = credits_app.test_client().get(f"{API}?year={bad}", headers=bearer(principal))
    assert page.status_code == 422 and "年份" in page.get_data(as_text=True)
    assert api.status_code == 422 and api.json["error"]["code"] == "invalid_input"
    assert "年份" in api.json["error"]["fields"]["year"]


def test_the_initial_password_must_be_changed_first(credits_app, make_account):
    principal = make_account(password=None)
    page = login_client(credits_app.test_client(), principal).get(PAGE)
    assert page.status_code == 302 and page.headers["Location"].endswith("/credits/password")
    api = credits_app.test_client().get(API, headers=bearer(principal))
    assert api.status_code == 403 and api.json["error"]["code"] == "password_change_required"
    assert "修改密码" in api.json["error"]["message"]


def test_a_token_without_its_account_must_log_in_again(credits_app, databases):
    ghost = Principal(role="trainee", subject="trainee:999", name="无名", trainee_key=pii.id_hash(ID_NUMBER))
    page = login_client(credits_app.test_client(), ghost).get(PAGE)
    assert page.status_code == 302 and page.headers["Location"].endswith("/credits/login")
    assert credits_app.test_client().get(API, headers=bearer(ghost)).status_code == 401


def test_a_token_naming_another_trainees_account_must_log_in_again(credits_app, make_account):
    """The account id of the token must carry the token's trainee key (the account is not someone else's)."""
    mine = make_account()
    crossed = Principal(role="trainee", subject=mine.subject, name="邻居", trainee_key=pii.id_hash(NEIGHBOUR_ID))
    page = login_client(credits_app.test_client(), crossed).get(PAGE)
    assert page.status_code == 302 and page.headers["Location"].endswith("/credits/login")
    api = credits_app.test_client().get(API, headers=bearer(crossed))
    assert api.status_code == 401 and "重新登录" in api.json["error"]["message"]


# ---------------------------------------------------------------- permissions


# this feature's permission table (tests/credits/test_offerings.py joins the tables of every feature)
ENDPOINTS = {f"GET {PAGE}": ("trainee",), f"GET {API}": ("trainee",)}


def test_endpoints_declare_trainee_access(credits_app):
    from services.common.web import endpoint_access

    table = endpoint_access(credits_app)
    for rule, roles in ENDPOINTS.items():
        assert table[rule] == roles, rule


WHO = ("anonymous", "trainee", "neighbour", "inst_a", "inst_b", "reviewer")


@pytest.fixture
def people(make_account, add_award):
    add_award(title="本人的项目", institution_id=1)
    add_award(NEIGHBOUR_ID, title="邻居的项目", institution_id=2)
    return {"anonymous": None, "trainee": make_account(),
            "neighbour": make_account(name="单雄信", id_number=NEIGHBOUR_ID, password="Andere2026pw"),
            "inst_a": INST_A, "inst_b": INST_B, "reviewer": REVIEWER}


@pytest.mark.parametrize("who", WHO)
def test_page_permissions(credits_app, people, who):
    principal = people[who]
    client = credits_app.test_client()
    if principal:
        login_client(client, principal)
    resp = client.get(PAGE)
    html = resp.get_data(as_text=True)
    if who == "anonymous":
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/credits/login")
        return
    if who in ("inst_a", "inst_b", "reviewer"):
        assert resp.status_code == 403 and "仅供学员本人使用" in html
        assert "本人的项目" not in html and "邻居的项目" not in html
        return
    own, other = ("本人的项目", "邻居的项目") if who == "trainee" else ("邻居的项目", "本人的项目")
    assert resp.status_code == 200 and own in html and other not in html
    # the trainee key comes from the session, never from the request
    assert other not in client.get(f"{PAGE}?trainee_key={pii.id_hash(NEIGHBOUR_ID)}").get_data(as_text=True)


@pytest.mark.parametrize("who", WHO)
def test_api_permissions(credits_app, people, who):
    principal = people[who]
    resp = credits_app.test_client().get(API, headers=bearer(principal) if principal else {})
    expected = {"anonymous": 401, "trainee": 200, "neighbour": 200, "inst_a": 403, "inst_b": 403,
                "reviewer": 403}[who]
    assert resp.status_code == expected
    if expected != 200:
        assert resp.json["error"]["message"] and "项目" not in json.dumps(resp.json, ensure_ascii=False)
        return
    titles = {a["project_title"] for y in resp.json["years"] for a in y["awards"]}
    assert titles == ({"本人的项目"} if who == "trainee" else {"邻居的项目"})


def test_a_withdrawal_undone_by_regranting_is_not_shown_beside_the_new_award(databases, add_award):
    """恢复授分 makes a new award of the same offering: 达标情况查询 showed the mistaken withdrawal (and counted
    it under 已撤销) beside it; only the standing award is shown now. A withdrawal that stands is still shown."""
    first = add_award(state="withdrawn", value="10", title="心血管急危重症诊治进展")
    s = databases["credits"].new_session()
    try:
        from services.credits.awards.models import CreditAward

        offering = s.get(CreditAward, first).offering_id
    finally:
        s.close()
    add_award(state="pending", value="10", title="心血管急危重症诊治进展", offering_id=offering)
    add_award(state="withdrawn", value="3", title="另一个项目")
    year = summary(databases)[2026]
    titles = [(a.project_title, a.state) for a in year.awards]
    assert titles.count(("心血管急危重症诊治进展", "withdrawn")) == 0
    assert ("心血管急危重症诊治进展", "pending") in titles and ("另一个项目", "withdrawn") in titles
    assert (year.withdrawn.count, year.pending.count) == (1, 1)


def test_a_certificate_withdrawn_after_it_took_effect_is_said_to_be_void(credits_app, databases, make_account):
    """The committee withdrew an award that had taken effect and whose certificate she printed: her 达标情况查询 says
    that certificate is void (not "no certificate is made", which reads as if she never had one); an award the
    office withdrew before it took effect still says none is made."""
    from sqlalchemy import update

    from services.credits.awards.models import CreditAward

    trainee = make_account()
    insert_award(databases, state="withdrawn", title="审核前撤销的项目")
    after = insert_award(databases, state="withdrawn", title="生效后撤销的项目")
    s = databases["credits"].new_session()
    s.execute(update(CreditAward).where(CreditAward.id == after).values(effective_at=T0 - dt.timedelta(days=30)))
    s.commit()
    s.close()
    clock.set_now(T0)
    html = login_client(credits_app.test_client(), trainee).get(PAGE).get_data(as_text=True)
    void = html.split("生效后撤销的项目")[1].split('class="award')[0]
    never = html.split("审核前撤销的项目")[1].split('class="award')[0]
    assert "学分证书：已撤销，原学分证书作废" in void and "学分证书：已撤销，不生成学分证书" in never
    lines = {a["project_title"]: a["printable_text"] for a in credits_app.test_client().get(
        API, headers=bearer(trainee)).json["years"][0]["awards"]}
    assert lines == {"生效后撤销的项目": "已撤销，原学分证书作废", "审核前撤销的项目": "已撤销，不生成学分证书"}
