"""继教活动: the consumer of "offering.approved", the 继教活动-项目管理 pages and the JSON API."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from services.common import clock
from services.common.auth import Principal
from services.common.events import make_envelope
from tests.conftest import bearer, login_client

INST_A = Principal(role="institution", subject="inst:1:admin:1", name="西安市第一医院", institution_id=1, admin_id=1)
INST_B = Principal(role="institution", subject="inst:2:admin:2", name="宝鸡市中心医院", institution_id=2, admin_id=2)
REVIEWER = Principal(role="reviewer", subject="reviewer:1", name="审核员甲", reviewer_id=1)
TRAINEE = Principal(role="trainee", subject="trainee:x", trainee_key="x")
NAMES = {"anonymous": None, "inst_a": INST_A, "inst_b": INST_B, "reviewer": REVIEWER, "trainee": TRAINEE}


def payload(**over):
    base = {
        "offering_id": 101, "institution_id": 1, "institution_name": "西安市第一医院", "project_id": 11,
        "project_number": "2026-01-01-001", "project_title": "心血管急危重症诊治进展", "year": 2026, "seq": 1,
        "credit_class": "Ⅰ类", "credit_value": "10", "hours": "20", "starts_on": dt.date(2026, 12, 10),
        "ends_on": dt.date(2026, 12, 11), "venue": "西安市雁塔区会议中心", "mode": "线下",
        "schedule": [{"date": dt.date(2026, 12, 10), "start": dt.time(8, 30), "end": dt.time(12, 0),
                      "title": "开幕式与专题讲座"}],
    }
    base.update(over)
    return base


def deliver(envelope) -> bool:
    """The real consume path: the Celery task the checkin worker registers, run in-process."""
    from services.checkin.worker import handle_event

    return handle_event.run(envelope)


def approve(**over):
    env = make_envelope("offering.approved", "projects", payload(**over))
    assert deliver(env) is True
    return env


@pytest.fixture
def cdb(databases):
    return databases["checkin"]


def activities(cdb):
    from services.checkin.activities.models import Activity

    s = cdb.new_session()
    try:
        return s.scalars(select(Activity).order_by(Activity.id)).all()
    finally:
        s.close()


def client_for(app, who):
    client = app.test_client()
    principal = NAMES[who]
    if principal is not None:
        login_client(client, principal)
    return client


def api_headers(who):
    principal = NAMES[who]
    return bearer(principal) if principal is not None else {}


# ---- the event consumer ------------------------------------------------------------------------

def test_approved_offering_becomes_an_activity_once(cdb):
    from services.checkin.db import processed_events

    clock.set_now(dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC))
    env = make_envelope("offering.approved", "projects", payload())
    assert deliver(env) is True
    assert deliver(env) is False  # the same envelope again: nothing changes
    rows = activities(cdb)
    assert len(rows) == 1
    a = rows[0]
    assert (a.offering_id, a.institution_id, a.project_number, a.seq, a.mode) == (101, 1, "2026-01-01-001", 1, "线下")
    assert a.credit_value == Decimal("10") and a.hours == Decimal("20")
    assert (a.starts_on, a.ends_on) == (dt.date(2026, 12, 10), dt.date(2026, 12, 11))
    assert a.schedule == [{"date": "2026-12-10", "start": "08:30:00", "end": "12:00:00", "title": "开幕式与专题讲座"}]
    assert a.approved_at == dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)
    assert a.seq_label == "第一期"
    s = cdb.new_session()
    assert s.scalar(select(func.count()).select_from(processed_events)) == 1
    s.close()


def test_reapproval_updates_and_an_older_one_does_not_overwrite(cdb):
    clock.set_now(dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC))
    first = make_envelope("offering.approved", "projects", payload())
    clock.set_now(dt.datetime(2026, 11, 22, 2, 0, tzinfo=dt.UTC))
    second = make_envelope("offering.approved", "projects", payload(venue="宝鸡市会展中心", mode="线上线下"))
    assert deliver(second) is True
    assert deliver(first) is True  # arrives late: recorded, but the newer approval stands
    rows = activities(cdb)
    assert len(rows) == 1
    assert (rows[0].venue, rows[0].mode) == ("宝鸡市会展中心", "线上线下")
    clock.set_now(dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC))
    approve(venue="西安曲江国际会议中心", ends_on=dt.date(2026, 12, 12))
    rows = activities(cdb)
    assert len(rows) == 1
    assert (rows[0].venue, rows[0].ends_on) == ("西安曲江国际会议中心", dt.date(2026, 12, 12))


def test_offering_ending_before_it_starts_is_refused_without_retrying(cdb):
    env = make_envelope("offering.approved", "projects",
                        payload(starts_on=dt.date(2026, 12, 11), ends_on=dt.date(2026, 12, 10)))
    assert deliver(env) is True
    assert activities(cdb) == []


def test_database_keeps_the_rules(cdb):
    from services.checkin.activities.models import Activity

    def row(**over):
        values = dict(offering_id=1, institution_id=1, institution_name="甲", project_id=1, project_number="N",
                      project_title="T", year=2026, seq=1, credit_class="Ⅰ类", credit_value=Decimal("5"),
                      hours=Decimal("10"), starts_on=dt.date(2026, 1, 2), ends_on=dt.date(2026, 1, 2), venue="V",
                      mode="线下", schedule=[], approved_at=clock.now())
        values.update(over)
        return Activity(**values)

    for bad in ({"ends_on": dt.date(2026, 1, 1)}, {"mode": "函授"}, {"seq": 0}, {"credit_value": Decimal("-1")},
                {"venue": None}):
        s = cdb.new_session()
        s.add(row(**bad))
        with pytest.raises(IntegrityError):
            s.commit()
        s.rollback()
        s.close()
    s = cdb.new_session()
    s.add(row())
    s.commit()
    s.add(row())
    with pytest.raises(IntegrityError):  # one activity per offering
        s.commit()
    s.rollback()
    s.close()


# ---- pages -------------------------------------------------------------------------------------

def test_list_page_shows_own_activities_with_chinese_columns(checkin_app):
    approve()
    approve(offering_id=202, institution_id=2, institution_name="宝鸡市中心医院", project_number="2026-02-03-009",
            project_title="基层糖尿病规范化管理", seq=2)
    page = client_for(checkin_app, "inst_a").get("/checkin/activities")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for label in ("继教活动-项目管理", "项目编号", "项目名称", "期次", "举办时间", "举办地点", "举办方式", "学分"):
        assert label in html
    assert "心血管急危重症诊治进展" in html and "第一期" in html
    assert "2026-12-10 至 2026-12-11" in html and "Ⅰ类 10 分" in html and "西安市雁塔区会议中心" in html
    assert "基层糖尿病规范化管理" not in html

    html_b = client_for(checkin_app, "inst_b").get("/checkin/activities").get_data(as_text=True)
    assert "基层糖尿病规范化管理" in html_b and "第二期" in html_b
    assert "心血管急危重症诊治进展" not in html_b

    html_r = client_for(checkin_app, "reviewer").get("/checkin/activities").get_data(as_text=True)
    assert "心血管急危重症诊治进展" in html_r and "基层糖尿病规范化管理" in html_r and "申办机构" in html_r


def test_empty_state(checkin_app):
    html = client_for(checkin_app, "inst_a").get("/checkin/activities").get_data(as_text=True)
    assert "暂无继教活动" in html
    approve()
    html = client_for(checkin_app, "inst_a").get("/checkin/activities?q=不存在的项目").get_data(as_text=True)
    assert "没有符合条件的继教活动" in html


def test_search_year_filter_and_paging(checkin_app):
    approve()
    approve(offering_id=102, project_number="2025-09-01-777", project_title="儿科护理新进展", year=2025,
            starts_on=dt.date(2025, 6, 1), ends_on=dt.date(2025, 6, 1))
    client = client_for(checkin_app, "inst_a")

    def shown(query):
        return client.get(f"/checkin/activities{query}").get_data(as_text=True)

    html = shown("?q=2025-09")
    assert "儿科护理新进展" in html and "心血管急危重症诊治进展" not in html
    html = shown("?q=２０２５-０９")  # typed in 全角 digits
    assert "儿科护理新进展" in html and "心血管急危重症诊治进展" not in html
    html = shown("?q=心血管")
    assert "心血管急危重症诊治进展" in html and "儿科护理新进展" not in html
    html = shown("?year=2025")
    assert "儿科护理新进展" in html and "心血管急危重症诊治进展" not in html
    html = shown("?q=&year=")  # an untouched form: no filter
    assert "儿科护理新进展" in html and "心血管急危重症诊治进展" in html
    html = shown("?q=%25")  # wildcards are searched literally
    assert "暂无继教活动" not in html and "没有符合条件的继教活动" in html

    for n in range(3, 26):
        approve(offering_id=100 + n, project_number=f"2026-01-01-{n:03d}", project_title=f"系列讲座{n}")
    first = shown("?year=2026")
    assert "第 1 / 2 页" in first and "下一页" in first
    second = shown("?year=2026&page=2")
    assert "第 2 / 2 页" in second and "上一页" in second
    assert shown("?year=2026&page=99").count("<tr>") == second.count("<tr>")  # past the end: the last page


def test_the_committee_finds_activities_by_their_host_and_narrows_to_one_host(checkin_app):
    """The QA walk typed a hospital's name into 检索 and got 没有符合条件的继教活动 (the 审批 lists gave 243), and
    the committee had no 申办机构 box as on its other lists."""
    approve()  # 西安市第一医院: 心血管急危重症诊治进展
    approve(offering_id=102, project_number="2026-01-01-002", project_title="儿科护理新进展")
    approve(offering_id=202, institution_id=2, institution_name="宝鸡市中心医院", project_number="2026-02-03-009",
            project_title="基层糖尿病规范化管理")
    approve(offering_id=301, institution_id=3, institution_name="延安大学附属医院", project_number="2026-05-01-001",
            project_title="心血管疾病康复")
    clock.set_now(clock.now() + dt.timedelta(hours=1))  # later: the host was renamed since its first approval
    approve(offering_id=203, institution_id=2, institution_name="宝鸡市人民医院", project_number="2026-02-03-010",
            project_title="老年医学进展")
    committee = client_for(checkin_app, "reviewer")

    def titles(query):
        html = committee.get(f"/checkin/activities{query}").get_data(as_text=True)
        return sorted(t for t in ("心血管急危重症诊治进展", "儿科护理新进展", "基层糖尿病规范化管理", "心血管疾病康复",
                                  "老年医学进展") if t in html)

    # 检索 finds a 期 by its host's name (as it was approved under), whole or in part
    assert titles("?q=西安市第一医院") == ["儿科护理新进展", "心血管急危重症诊治进展"]
    assert titles("?q=宝鸡市") == ["基层糖尿病规范化管理", "老年医学进展"]
    assert titles("?q=延安") == ["心血管疾病康复"]
    assert titles("?q=心血管") == ["心血管急危重症诊治进展", "心血管疾病康复"]  # titles as before
    # the 申办机构 box: every host once, by its latest name, in pinyin order (宝 bao, 西 xi, 延 yan; by character
    # code 延 came before 西), the chosen one selected
    html = committee.get("/checkin/activities?institution_id=2").get_data(as_text=True)
    box = html.split('<select name="institution_id">', 1)[1].split("</select>", 1)[0]
    assert re.findall(r'<option value="(\d*)"[^>]*>([^<]*)</option>', box) == [
        ("", "全部"), ("2", "宝鸡市人民医院"), ("1", "西安市第一医院"), ("3", "延安大学附属医院")]
    assert '<option value="2" selected>' in box and "宝鸡市中心医院" not in box
    assert titles("?institution_id=2") == ["基层糖尿病规范化管理", "老年医学进展"]
    assert titles("?institution_id=1&q=心血管") == ["心血管急危重症诊治进展"]
    assert "清除条件" in html and "项目编号、项目名称或申办机构" in html
    # a host with no activity (an old link): said in the box, and the list is empty
    stale = committee.get("/checkin/activities?institution_id=99").get_data(as_text=True)
    assert '<option value="99" selected>申办机构 99（暂无继教活动）</option>' in stale
    assert "没有符合条件的继教活动" in stale
    # the API searches alike
    found = checkin_app.test_client().get("/checkin/api/activities?q=宝鸡市中心", headers=bearer(REVIEWER)).json
    assert [i["offering_id"] for i in found["items"]] == [202]

    # an office has no 申办机构 box, and a host's name finds nothing of another host
    own = client_for(checkin_app, "inst_a")
    html = own.get("/checkin/activities").get_data(as_text=True)
    assert 'name="institution_id"' not in html and "项目编号或项目名称" in html
    assert "没有符合条件的继教活动" in own.get("/checkin/activities?q=宝鸡").get_data(as_text=True)
    assert "儿科护理新进展" in own.get("/checkin/activities?q=西安市").get_data(as_text=True)


@pytest.mark.parametrize("query", ["page=abc", "year=二〇二六", "per_page=1000", "page=0", "q=" + "长" * 101])
def test_bad_query_is_a_chinese_4xx(checkin_app, query):
    client = client_for(checkin_app, "inst_a")
    page = client.get(f"/checkin/activities?{query}")
    assert page.status_code == 422
    assert "查询条件有误" in page.get_data(as_text=True)
    api = checkin_app.test_client().get(f"/checkin/api/activities?{query}", headers=bearer(INST_A))
    assert api.status_code == 422
    assert api.json["error"]["code"] == "invalid_input"
    assert api.json["error"]["message"] == "提交的内容有误，请按提示修改。"
    assert api.json["error"]["fields"]


def test_detail_page_for_owner_and_reviewer_only(checkin_app):
    approve()
    [a] = activities(checkin_app.extensions["cme_db"])
    html = client_for(checkin_app, "inst_a").get(f"/checkin/activities/{a.id}").get_data(as_text=True)
    assert "心血管急危重症诊治进展（第一期）" in html and "开幕式与专题讲座" in html and "08:30–12:00" in html
    assert client_for(checkin_app, "reviewer").get(f"/checkin/activities/{a.id}").status_code == 200
    other = client_for(checkin_app, "inst_b").get(f"/checkin/activities/{a.id}")
    assert other.status_code == 404 and "不存在" in other.get_data(as_text=True)
    assert client_for(checkin_app, "inst_a").get(f"/checkin/activities/{a.id + 999}").status_code == 404


# ---- JSON API ----------------------------------------------------------------------------------

def test_api_list_and_detail(checkin_app):
    approve()
    approve(offering_id=202, institution_id=2, institution_name="宝鸡市中心医院", project_number="2026-02-03-009",
            project_title="基层糖尿病规范化管理", year=2027, starts_on=dt.date(2027, 3, 1), ends_on=dt.date(2027, 3, 2))
    client = checkin_app.test_client()
    body = client.get("/checkin/api/activities", headers=bearer(INST_A)).json
    assert body["total"] == 1 and body["page"] == 1 and body["pages"] == 1
    item = body["items"][0]
    assert item["project_number"] == "2026-01-01-001" and item["seq_label"] == "第一期"
    assert item["credit_value"] == "10.00" and item["starts_on"] == "2026-12-10"
    assert item["schedule"][0]["start"] == "08:30:00"

    everyone = client.get("/checkin/api/activities", headers=bearer(REVIEWER)).json
    assert everyone["total"] == 2
    assert client.get("/checkin/api/activities?year=2027", headers=bearer(REVIEWER)).json["total"] == 1
    assert client.get("/checkin/api/activities?institution_id=1", headers=bearer(REVIEWER)).json["total"] == 1
    # an institution cannot widen its scope with institution_id
    assert client.get("/checkin/api/activities?institution_id=2", headers=bearer(INST_A)).json["total"] == 1
    found = client.get("/checkin/api/activities?q=糖尿病", headers=bearer(REVIEWER)).json
    assert [i["offering_id"] for i in found["items"]] == [202]
    paged = client.get("/checkin/api/activities?per_page=1&page=2", headers=bearer(REVIEWER)).json
    assert paged["pages"] == 2 and len(paged["items"]) == 1

    own_id = item["id"]
    detail = client.get(f"/checkin/api/activities/{own_id}", headers=bearer(INST_A))
    assert detail.status_code == 200 and detail.json["offering_id"] == 101
    hidden = client.get(f"/checkin/api/activities/{own_id}", headers=bearer(INST_B))
    assert hidden.status_code == 404 and hidden.json["error"]["code"] == "not_found"


# ---- who may call what -------------------------------------------------------------------------

ENDPOINTS = {
    "GET /checkin/activities": "/checkin/activities",
    "GET /checkin/activities/<int:activity_id>": "/checkin/activities/{id}",
    "GET /checkin/api/activities": "/checkin/api/activities",
    "GET /checkin/api/activities/<int:activity_id>": "/checkin/api/activities/{id}",
}
EXPECTED = {"anonymous": None, "inst_a": 200, "inst_b": None, "reviewer": 200, "trainee": 403}


def test_permission_tables_cover_every_endpoint_of_the_service(checkin_app):
    """Each feature keeps its own table; together they must name every endpoint checkin has."""
    import importlib

    from services.common.web import endpoint_access

    windows = importlib.import_module("tests.checkin.test_windows_permissions")
    phone = importlib.import_module("tests.checkin.test_phone_api")
    tables = set(ENDPOINTS) | {f"{method} {rule}" for method, rule, *_ in windows.TABLE} | set(phone.PHONE_ENDPOINTS)
    ours = {rule for rule in endpoint_access(checkin_app)
            if not rule.endswith(("/healthz", "/metrics")) and "openapi" not in rule}  # common: the matrix
    assert ours == tables


@pytest.mark.parametrize("rule", sorted(ENDPOINTS))
@pytest.mark.parametrize("who", sorted(NAMES))
def test_permissions(checkin_app, rule, who):
    approve()  # an activity of institution A
    [a] = activities(checkin_app.extensions["cme_db"])
    url = ENDPOINTS[rule].format(id=a.id)
    is_api = "/api/" in url
    client = client_for(checkin_app, who) if not is_api else checkin_app.test_client()
    resp = client.get(url, headers=api_headers(who) if is_api else {"Accept": "text/html"})
    expected = EXPECTED[who]
    if who == "anonymous":
        expected = 401 if is_api else 302
    elif who == "inst_b":
        expected = 404 if "{id}" in ENDPOINTS[rule] else 200
    assert resp.status_code == expected, resp.get_data(as_text=True)[:300]
    if resp.status_code == 200 and who == "inst_b":
        body = resp.json if is_api else resp.get_data(as_text=True)
        assert (body["total"] == 0) if is_api else ("心血管急危重症诊治进展" not in body)
    if resp.status_code in (401, 403, 404) and is_api:
        assert resp.json["error"]["message"]
    if resp.status_code == 302:
        assert "/projects/login" in resp.headers["Location"]
