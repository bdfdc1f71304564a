"""达标情况查询 tells a doctor about the offerings she checked in to that have no award of hers: the office has still
to grant (已签到，待举办机构授分), granted without her (已签到，未获授分：请联系举办机构) or did not hold the 期
(项目未举办); on the page and in the JSON API, for the selected year, read in one more query."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from sqlalchemy import insert

from services.common import clock, pii
from tests.conftest import bearer, login_client
from tests.credits.test_compliance import (
    API,
    ID_NUMBER,
    NEIGHBOUR_ID,
    PAGE,
    T0,
    insert_award,
    make_account,  # noqa: F401  (the fixture)
    statements_on,
)

UTC = dt.UTC
_ids = itertools.count(5000)
SECTION = "年度已签到、尚无授分的项目"


def offering(databases, offering_id: int, *, title: str, number: str, starts_on: dt.date = dt.date(2026, 6, 11),
             ends_on: dt.date = dt.date(2026, 6, 12), report_state: str = "none", cancelled_by: str | None = None,
             institution_name: str = "西安市第一医院") -> None:
    """An approved offering as credits keeps it (offering.approved, and offering.cancelled when ``cancelled_by``)."""
    from services.credits.offerings.models import OfferingCredit

    s = databases["credits"].new_session()
    s.add(OfferingCredit(
        offering_id=offering_id, institution_id=1, institution_name=institution_name, project_number=number,
        project_title=title, seq=1, year=starts_on.year, credit_class="Ⅰ类", credit_value=Decimal("5"),
        hours=Decimal("10"), starts_on=starts_on, ends_on=ends_on, approved_at=T0, report_state=report_state,
        cancelled_at=T0 if cancelled_by else None, cancelled_by=cancelled_by,
        cancel_reason="授课专家因故无法到场" if cancelled_by else None))
    s.commit()
    s.close()


def checkin(databases, offering_id: int, id_number: str = ID_NUMBER, *, day: dt.date = dt.date(2026, 6, 11),
            window: int | None = None, forced: bool = False, kind: str = "sign_in") -> None:
    """One check-in of credits' copy (checkin.recorded), at 08:35 Shanghai time of ``day``."""
    from services.credits.attendance.models import AttendanceRecord

    starts = dt.datetime(day.year, day.month, day.day, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai
    s = databases["credits"].new_session()
    s.execute(insert(AttendanceRecord), [{
        "checkin_id": next(_ids), "activity_id": offering_id, "offering_id": offering_id, "institution_id": 1,
        "window_id": window or next(_ids), "window_kind": kind, "window_starts_at": starts,
        "window_ends_at": starts + dt.timedelta(hours=1), "trainee_key": pii.id_hash(id_number), "name": "曾小明",
        "id_enc": pii.encrypt(id_number), "mobile_enc": pii.encrypt("13912345678"), "title": "主治医师",
        "unit": "西安市第一医院", "scanned_at": starts + dt.timedelta(minutes=5), "forced": forced, "flags": []}])
    s.commit()
    s.close()


def section(html: str) -> str:
    """The page's section of check-ins without an award ("" when there is none)."""
    return html.split('id="checkins"')[1].split("返回首页")[0] if 'id="checkins"' in html else ""


def test_the_three_states_with_the_number_of_check_ins(credits_app, databases, make_account):  # noqa: F811
    clock.set_now(T0)
    offering(databases, 201, title="待授分项目", number="2026-01-01-201")
    checkin(databases, 201)
    checkin(databases, 201, day=dt.date(2026, 6, 12), forced=True)  # 代签 counts as a check-in
    offering(databases, 202, title="已授分他人项目", number="2026-01-01-202")
    checkin(databases, 202)
    insert_award(databases, NEIGHBOUR_ID, offering_id=202)  # the list exists, she is not on it
    offering(databases, 203, title="已提交反馈项目", number="2026-01-01-203", report_state="submitted")
    checkin(databases, 203)
    offering(databases, 204, title="已取消项目", number="2026-01-01-204", cancelled_by="institution")
    checkin(databases, 204)
    offering(databases, 205, title="标记未举办项目", number="2026-01-01-205", cancelled_by="committee")
    checkin(databases, 205)
    principal = make_account()

    html = login_client(credits_app.test_client(), principal).get(PAGE).get_data(as_text=True)
    part = section(html)
    assert "2026" + SECTION in part
    awaiting = part.split("待授分项目")[1].split('class="award"')[0]
    assert "项目编号 2026-01-01-201 · 西安市第一医院" in awaiting
    assert "举办日期 2026-06-11 至 2026-06-12 · 签到 2 次（含代签 1 次）" in awaiting and "签退" not in awaiting
    assert '<span class="badge awaiting">已签到，待举办机构授分</span>' in awaiting
    listed = part.split("已授分他人项目")[1].split('class="award"')[0]
    assert "已签到，未获授分：请联系举办机构" in listed and "签到 1 次" in listed and "代签" not in listed
    assert "授分名单中没有您" in listed and "请联系西安市第一医院" in listed
    reported = part.split("已提交反馈项目")[1].split('class="award"')[0]
    assert "已签到，未获授分：请联系举办机构" in reported and "执行情况反馈已提交" in reported
    cancelled = part.split("已取消项目")[1].split('class="award"')[0]
    assert "项目未举办" in cancelled and "本期已取消举办，不会授分" in cancelled
    assert "本期已标记未举办，不会授分" in part.split("标记未举办项目")[1]
    # the award sums are not touched by check-ins
    assert "2026年度暂无授分记录；已签到的项目及其授分进度见下方" in html and "待生效学分" not in html

    body = credits_app.test_client().get(f"{API}?year=2026", headers=bearer(principal)).json
    lines = {c["project_title"]: c for c in body["years"][0]["checkins_without_award"]}
    assert {t: c["state"] for t, c in lines.items()} == {
        "待授分项目": "awaiting", "已授分他人项目": "not_awarded", "已提交反馈项目": "not_awarded",
        "已取消项目": "not_held", "标记未举办项目": "not_held"}
    assert lines["待授分项目"] | {"note": ""} == {
        "offering_id": 201, "project_number": "2026-01-01-201", "project_title": "待授分项目",
        "institution_name": "西安市第一医院", "starts_on": "2026-06-11", "ends_on": "2026-06-12",
        "first_scan_on": "2026-06-11", "last_scan_on": "2026-06-12", "checkins": 2, "forced": 1, "sign_outs": 0,
        "state": "awaiting",
        "state_label": "已签到，待举办机构授分", "note": ""}
    assert lines["已取消项目"]["state_label"] == "项目未举办"


def test_an_award_of_hers_in_any_state_leaves_no_such_line(credits_app, databases, make_account):  # noqa: F811
    """Her award (effective, withdrawn, manual) is a line of 学分明细 already: the offering is not said twice."""
    clock.set_now(T0)
    for offering_id, title, state, method in ((211, "已授分项目", "effective", "attendance"),
                                              (212, "已撤销项目", "withdrawn", "attendance"),
                                              (213, "手工录入项目", "pending", "manual")):
        offering(databases, offering_id, title=title, number=f"2026-01-01-{offering_id}")
        checkin(databases, offering_id)
        insert_award(databases, offering_id=offering_id, state=state, method=method, title=title)
    offering(databases, 214, title="待授分项目", number="2026-01-01-214")
    checkin(databases, 214)
    principal = make_account()
    html = login_client(credits_app.test_client(), principal).get(PAGE).get_data(as_text=True)
    part = section(html)
    assert "待授分项目" in part
    for title in ("已授分项目", "已撤销项目", "手工录入项目"):
        assert title in html and title not in part, title
    body = credits_app.test_client().get(API, headers=bearer(principal)).json
    assert [c["offering_id"] for y in body["years"] for c in y["checkins_without_award"]] == [214]


def test_another_doctors_check_ins_never_show(credits_app, databases, make_account):  # noqa: F811
    clock.set_now(T0)
    offering(databases, 221, title="邻居签到的项目", number="2026-01-01-221")
    checkin(databases, 221, NEIGHBOUR_ID)
    checkin(databases, 221, NEIGHBOUR_ID, day=dt.date(2026, 6, 12))
    mine = make_account()
    neighbour = make_account(name="单雄信", id_number=NEIGHBOUR_ID, password="Andere2026pw")
    html = login_client(credits_app.test_client(), mine).get(PAGE).get_data(as_text=True)
    assert "邻居签到的项目" not in html and SECTION not in html
    body = credits_app.test_client().get(API, headers=bearer(mine)).json
    assert all(y["checkins_without_award"] == [] for y in body["years"])
    theirs = login_client(credits_app.test_client(), neighbour).get(PAGE).get_data(as_text=True)
    assert "邻居签到的项目" in section(theirs) and "签到 2 次" in section(theirs)


def test_the_page_loads_with_no_check_ins(credits_app, make_account):  # noqa: F811
    clock.set_now(T0)
    principal = make_account()
    page = login_client(credits_app.test_client(), principal).get(PAGE)
    assert page.status_code == 200 and "2026年度达标情况" in page.get_data(as_text=True)
    assert SECTION not in page.get_data(as_text=True)
    body = credits_app.test_client().get(API, headers=bearer(principal)).json
    assert [y["checkins_without_award"] for y in body["years"]] == [[]]  # this year only


def test_a_check_in_shows_in_its_offerings_year_only(credits_app, databases, make_account):  # noqa: F811
    """The year is the offering's last day's (as an award's activity date); that year becomes a chip of its own."""
    clock.set_now(T0)
    offering(databases, 231, title="前年项目", number="2024-01-01-231", starts_on=dt.date(2024, 12, 31),
             ends_on=dt.date(2025, 1, 1))
    checkin(databases, 231, day=dt.date(2024, 12, 31))
    checkin(databases, 232, day=dt.date(2023, 5, 6))  # its offering.approved has not reached credits yet
    client = login_client(credits_app.test_client(), make_account())
    html = client.get(PAGE).get_data(as_text=True)
    # nothing in 2026, but it is December: the page opens on this year (last year's first only until March)
    assert SECTION not in html and "今年尚无学分记录" not in html and 'href="/credits/compliance?year=2023"' in html
    last_year = section(client.get(f"{PAGE}?year=2025").get_data(as_text=True))
    assert "前年项目" in last_year and "举办日期 2024-12-31 至 2025-01-01" in last_year
    assert SECTION not in client.get(f"{PAGE}?year=2024").get_data(as_text=True)
    unknown = section(client.get(f"{PAGE}?year=2023").get_data(as_text=True))
    assert "项目信息待更新" in unknown and "签到日期 2023-05-06 · 签到 1 次" in unknown
    assert "已签到，待举办机构授分" in unknown


def test_a_cancellation_that_came_before_the_offering_says_not_held(credits_app, databases,
                                                                    make_account):  # noqa: F811
    from services.credits.offerings.models import CancelledOffering

    clock.set_now(T0)
    s = databases["credits"].new_session()
    s.add(CancelledOffering(offering_id=241, cancelled_at=T0, cancelled_by="committee", cancel_reason="未举办"))
    s.commit()
    s.close()
    checkin(databases, 241, day=dt.date(2026, 9, 1))
    html = login_client(credits_app.test_client(), make_account()).get(PAGE).get_data(as_text=True)
    assert "项目未举办" in section(html) and "本期已标记未举办，不会授分" in section(html)


def test_the_page_reads_check_ins_in_one_statement_however_many(credits_app, databases, make_account):  # noqa: F811
    from services.credits.db import db

    clock.set_now(T0)
    for n in range(6):
        offering(databases, 251 + n, title=f"项目{n}", number=f"2026-01-01-{251 + n}")
        checkin(databases, 251 + n)
        checkin(databases, 251 + n, day=dt.date(2026, 6, 12))
    insert_award(databases, NEIGHBOUR_ID, offering_id=251)
    client = login_client(credits_app.test_client(), make_account())
    client.get(PAGE)  # the pools connect
    with statements_on(db.engine, db.autocommit_engine) as statements:
        html = client.get(PAGE).get_data(as_text=True)
    assert section(html).count('class="award"') == 6
    assert len(statements) == 2 and "attendance_records" in statements[1], statements


def test_the_api_json_written_by_hand_is_what_the_schema_dumps(databases):
    from services.credits.compliance.schemas import ComplianceOut, dump_compliance
    from services.credits.compliance.services import checkins_without_award, summarise

    offering(databases, 261, title="待授分项目", number="2026-01-01-261")
    checkin(databases, 261, forced=True)
    checkin(databases, 262, day=dt.date(2025, 3, 1))  # no offering: dates None
    lines = databases["credits"].retry_dropped(lambda conn: checkins_without_award(conn, pii.id_hash(ID_NUMBER), ()))
    assert len(lines) == 2
    for year in (None, 2026):
        data = {"trainee": {"name": "曾小明", "id_number_masked": "1101**********002X"},
                "today": dt.date(2026, 12, 10), "years": summarise([], dt.date(2026, 12, 10), year=year,
                                                                   checkins=lines)}
        assert dump_compliance(data) == ComplianceOut().dump(data)


def test_a_sign_in_and_its_sign_out_read_as_one_of_each(credits_app, databases, make_account):  # noqa: F811
    """A 签到 and its 签退 were read as 签到 2 次 (QA walk): each is counted by its window's kind, page and API."""
    clock.set_now(T0)
    offering(databases, 211, title="签到签退项目", number="2026-01-01-211")
    checkin(databases, 211)
    checkin(databases, 211, kind="sign_out")
    checkin(databases, 211, day=dt.date(2026, 6, 12), kind="sign_out", forced=True)
    principal = make_account()
    part = section(login_client(credits_app.test_client(), principal).get(PAGE).get_data(as_text=True))
    assert "签到 1 次、签退 2 次（含代签 1 次）" in part
    body = credits_app.test_client().get(f"{API}?year=2026", headers=bearer(principal)).json
    line = next(c for y in body["years"] if y["checkins_without_award"] for c in y["checkins_without_award"])
    assert (line["checkins"], line["sign_outs"], line["forced"]) == (3, 2, 1)
