"""学分证书导出 (the institution office's list of its offerings and the per-offering export): a year at a time, this
year's by default, paged; an export asked for again while the offering's is on its way is that export."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import insert, update

from services.common import clock
from tests.certs.conftest import INST_A, INST_B, PRINTABLE_DAY, at, award_row, slow_issue, twice_at_once
from tests.certs.test_certificates import client, export_jobs, run_jobs
from tests.checkin.test_windows_support import csrf_for
from tests.conftest import bearer


def add_offerings(certs_db, year: int, count: int, first_id: int, institution_id: int = 1, last_day: int = 300):
    """`count` offerings of `year` (one award each), ending a day apart, the last one on day `last_day` of it."""
    from services.certs.awards.models import EffectiveAward

    rows = []
    for i in range(count):
        ends = dt.date(year, 1, 1) + dt.timedelta(days=last_day - 1 - i)
        rows.append(award_row(first_id + i, first_id + i, "王芳", offering_id=first_id + i,
                              institution_id=institution_id, ends_on=ends,
                              project_title=f"{year}年第{i + 1:02d}期培训", project_number=f"{year}-01-01-{i + 1:03d}"))
    s = certs_db.new_session()
    s.execute(insert(EffectiveAward), rows)
    s.commit()
    s.close()


def titles(html: str) -> list[str]:
    return re.findall(r"<td>(\d{4}年第\d\d期培训)</td>", html)


def test_the_offerings_are_listed_a_year_at_a_time_and_a_page_at_a_time(certs_app, certs_db):
    """An office of many years' offerings had them all on one page: it sees this year's (Beijing time) unless it
    picks another year, 20 a page, latest ended first; in January it is told where last December's are."""
    add_offerings(certs_db, 2026, 25, 1000, last_day=340)  # ending 6 December, 5, 4, 3, …: 3 print from 2027
    add_offerings(certs_db, 2025, 3, 2000)
    add_offerings(certs_db, 2027, 2, 3000, last_day=5)  # 2027-01-05 and 04
    add_offerings(certs_db, 2026, 4, 4000, institution_id=2)  # another institution's: never listed here
    clock.set_now(dt.datetime(2026, 12, 31, 16, 30, tzinfo=dt.UTC))  # 00:30 on 1 January 2027 in Beijing
    c = client(certs_app, INST_A)

    html = c.get("/certs/institution/offerings").get_data(as_text=True)
    assert titles(html) == ["2027年第01期培训", "2027年第02期培训"]
    assert '<option value="2027" selected>2027 年度（2 期）</option>' in html
    assert '<option value="2026">2026 年度（25 期）</option>' in html and "2025 年度（3 期）" in html
    assert "2026 年度有 3 期项目于年末结束，其证书自 2027 年起可打印" in html
    assert 'href="/certs/institution/offerings?year=2026">查看 2026 年度</a>' in html

    first = c.get("/certs/institution/offerings?year=2026").get_data(as_text=True)
    assert "2026 年度共 25 期" in first and "第 1 / 2 页" in first and "2026 年度有" not in first
    assert titles(first) == [f"2026年第{i:02d}期培训" for i in range(1, 21)]  # latest ended first
    nxt = re.search(r'<a href="\?([^"]+)">下一页</a>', first).group(1).replace("&amp;", "&")
    second = c.get(f"/certs/institution/offerings?{nxt}").get_data(as_text=True)
    assert titles(second) == [f"2026年第{i:02d}期培训" for i in range(21, 26)] and "第 2 / 2 页" in second
    assert 'href="?year=2026&page=1">上一页</a>' in second
    assert "没有第" not in first + second
    # a page past the last shows the last one, the pager saying which, and a sentence saying why
    past = c.get("/certs/institution/offerings?year=2026&page=999").get_data(as_text=True)
    assert titles(past) == titles(second) and "第 2 / 2 页" in past
    assert "没有第 999 页：2026 年度共 2 页，以下是最后一页（第 2 页）。" in past
    assert 'href="?year=2026&page=1">上一页</a>' in past and "下一页" not in past
    assert "没有第" not in c.get("/certs/institution/offerings?year=2024&page=9").get_data(as_text=True)  # empty year
    assert titles(c.get("/certs/institution/offerings?year=2025").get_data(as_text=True)) == [
        f"2025年第{i:02d}期培训" for i in range(1, 4)]
    # an offering's page leads back to its year's list
    assert 'href="/certs/institution/offerings?year=2026">返回列表</a>' in c.get(
        "/certs/institution/offerings/1000").get_data(as_text=True)

    empty = c.get("/certs/institution/offerings?year=2024").get_data(as_text=True)
    assert "2024 年度暂无已生效的授分" in empty
    assert 'href="/certs/institution/offerings?year=2026">2026 年度（25 期）' in empty
    for bad in ("abc", "1999"):
        refused = c.get(f"/certs/institution/offerings?year={bad}")
        assert refused.status_code == 422 and "年度" in refused.get_data(as_text=True)
    assert c.get("/certs/institution/offerings?page=0").status_code == 422

    # the JSON equivalent: the same year, the same pages
    api = certs_app.test_client()
    body = api.get("/certs/api/institution/offerings?year=2026&page=2", headers=bearer(INST_A)).json
    assert (body["total"], body["page"], body["pages"], body["per_page"]) == (25, 2, 2, 20)
    assert [o["project_title"] for o in body["items"]] == titles(second)
    past = api.get("/certs/api/institution/offerings?year=2026&page=999", headers=bearer(INST_A)).json
    assert (past["page"], past["pages"]) == (2, 2) and [o["project_title"] for o in past["items"]] == titles(second)
    assert body["items"][0]["count"] == 1 and body["items"][0]["printable_from"] == "2026-12-14"
    default = api.get("/certs/api/institution/offerings", headers=bearer(INST_A)).json
    assert [o["project_title"] for o in default["items"]] == ["2027年第01期培训", "2027年第02期培训"]
    refused = api.get("/certs/api/institution/offerings?year=abc", headers=bearer(INST_A))
    assert refused.status_code == 422 and "year" in refused.json["error"]["fields"]

    clock.set_now(at(dt.date(2027, 3, 1)))  # by March last December's have long been exported: no more hint
    assert "2026 年度有" not in c.get("/certs/institution/offerings").get_data(as_text=True)


def test_an_offering_s_export_asked_for_again_while_on_its_way_is_the_same_job(certs_app, awards, queued, certs_db):
    """A double click on 导出全部可打印学分证书 (the page's guard aside: a second tab, the API) made a second job
    rendering the whole offering again: while one of the offering is queued or running, it is the answer, sent to
    the render queue once; a finished one, or one killed past the task's time limit, is no reason to refuse a new
    one."""
    from services.certs.certificates.models import ExportJob
    from services.certs.certificates.tasks import RENDER_TIME_LIMIT

    clock.set_now(at(PRINTABLE_DAY))
    c = client(certs_app, INST_A)
    form = {"csrf_token": csrf_for(INST_A)}
    first, second = (c.post("/certs/institution/offerings/101/exports", data=form) for _ in range(2))
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    [(job_id, ids)] = export_jobs(certs_db)
    assert sorted(ids) == [1, 3] and queued == [job_id]
    page = c.get(second.headers["Location"]).get_data(as_text=True)
    assert "该期项目的学分证书已在导出中" in page and "无需再次导出" in page
    api = certs_app.test_client().post("/certs/api/institution/offerings/101/exports", headers=bearer(INST_A))
    assert api.status_code == 202 and api.json["id"] == job_id and queued == [job_id]

    # queued long (the render worker down): the page says that exporting again comes back here, not a new export
    clock.set_now(at(PRINTABLE_DAY) + dt.timedelta(minutes=5))
    slow = c.get(first.headers["Location"]).get_data(as_text=True)
    assert "排队时间较长" in slow and "在本期学分证书页再次点击导出，即回到本次导出" in slow
    queued.clear()  # the page sent it again (its message may have been lost)
    queued.append(job_id)

    s = certs_db.new_session()  # the render task has started it: still the same export
    s.execute(update(ExportJob).values(state="running", started_at=at(PRINTABLE_DAY) + dt.timedelta(minutes=5)))
    s.commit()
    s.close()
    clock.set_now(at(PRINTABLE_DAY) + dt.timedelta(minutes=10))
    again = c.post("/certs/institution/offerings/101/exports", data=form)
    assert again.headers["Location"] == first.headers["Location"] and len(export_jobs(certs_db)) == 1
    # running past the task's hard time limit: killed with its worker, it never ends; a new export is made
    clock.set_now(at(PRINTABLE_DAY) + dt.timedelta(minutes=5, seconds=RENDER_TIME_LIMIT + 60))
    queued.clear()  # the killed run's message is gone with it
    fresh = c.post("/certs/institution/offerings/101/exports", data=form)
    assert fresh.status_code == 303 and fresh.headers["Location"] != first.headers["Location"]
    assert len(export_jobs(certs_db)) == 2
    # and the killed one's own page says it stopped and offers 重新导出, instead of 正在生成 for good
    killed = c.get(first.headers["Location"]).get_data(as_text=True)
    assert "证书生成中途停止" in killed and "生成失败" in killed and "重新导出</a>" in killed
    assert "data-refresh" not in killed
    api_job = certs_app.test_client().get(f"/certs/api/exports/{job_id}", headers=bearer(INST_A)).json
    assert api_job["state"] == "failed"
    assert run_jobs(queued) == ["done"]
    # finished: exporting the same certificates again opens that file, saying so (a second job assembled the same
    # pages into a second PDF); 重新生成 on that page asks for a new one, and gets it
    later = c.post("/certs/institution/offerings/101/exports", data=form)
    assert later.headers["Location"] == fresh.headers["Location"] + "?existing=1" and len(export_jobs(certs_db)) == 2
    page = c.get(later.headers["Location"]).get_data(as_text=True)
    assert "已有相同的导出文件" in page and "该期项目的学分证书已在导出中" not in page
    assert f'href="{fresh.headers["Location"]}.pdf"' in page
    assert 'action="/certs/institution/offerings/101/exports"' in page and 'name="new" value="1"' in page
    api = certs_app.test_client().post("/certs/api/institution/offerings/101/exports", headers=bearer(INST_A))
    assert api.status_code == 202 and api.json["existing"] is True and api.json["state"] == "done"
    assert api.json["download_url"] == fresh.headers["Location"] + ".pdf" and queued == []
    renewed = c.post("/certs/institution/offerings/101/exports", data={**form, "new": "1"})
    assert renewed.headers["Location"] not in (first.headers["Location"], fresh.headers["Location"])
    assert "?" not in renewed.headers["Location"] and len(export_jobs(certs_db)) == 3 and len(queued) == 1
    # a second tap of 重新生成 while it is on its way is that export
    assert c.post("/certs/institution/offerings/101/exports", data={**form, "new": "1"}).headers["Location"] == \
        renewed.headers["Location"]
    assert run_jobs(queued) == ["done"]
    api = certs_app.test_client().post("/certs/api/institution/offerings/101/exports?new=true", headers=bearer(INST_A))
    assert api.status_code == 202 and api.json["existing"] is False and api.json["state"] == "queued"
    assert len(export_jobs(certs_db)) == 4
    queued.clear()


def test_two_concurrent_exports_of_one_offering_make_one_job(certs_app, awards, queued, certs_db, monkeypatch):
    """Both clicks in flight at once (a read then an insert alone would let each find no job): the offering's
    exports take turns, so the second finds the first's job."""
    slow_issue(monkeypatch)
    clock.set_now(at(PRINTABLE_DAY))
    answers = twice_at_once(lambda: client(certs_app, INST_A).post(
        "/certs/institution/offerings/101/exports", data={"csrf_token": csrf_for(INST_A)}))
    [(job_id, _ids)] = export_jobs(certs_db)
    assert answers == [f"303 /certs/exports/{job_id}"] * 2 and queued == [job_id]
    queued.clear()


def test_an_offering_s_trainees_are_listed_by_pinyin_with_numbers_in_order(certs_app, certs_db, queued):
    """学分证书导出's offering listed its trainees by character code: 学员1337 before 学员282, 学员 (xue) before 安娜
    (an). It lists them as a Chinese directory does, numbers by value, a surname in its surname reading (曾 zeng,
    单 shan, 仇 qiu, where their everyday ceng, dan, chou misplaced them); the API and the offering's PDF alike."""
    from services.certs.awards.models import EffectiveAward

    names = ["学员1337", "赵六", "学员282", "张三", "安娜", "学员9", "章三", "张三",
             "曾小明", "单田芳", "仇英", "陈大", "丁一"]
    s = certs_db.new_session()
    s.execute(insert(EffectiveAward), [award_row(500 + i, 500 + i, name, offering_id=105)
                                       for i, name in enumerate(names)])
    s.commit()
    s.close()
    # an, chen, ding, qiu, shan, xue, zeng, zhang, zhao
    expected = ["安娜", "陈大", "丁一", "仇英", "单田芳", "学员9", "学员282", "学员1337",
                "曾小明", "张三", "张三", "章三", "赵六"]
    clock.set_now(at(PRINTABLE_DAY))
    c = client(certs_app, INST_A)
    html = c.get("/certs/institution/offerings/105").get_data(as_text=True)
    assert re.findall(r"<tr><td>([^<]+)</td><td>", html) == expected
    api = certs_app.test_client().get("/certs/api/institution/offerings/105/certificates", headers=bearer(INST_A))
    items = api.json["items"]
    assert [i["name"] for i in items] == expected
    assert [i["award_id"] for i in items if i["name"] == "张三"] == [503, 507]  # one name's rows in a steady order
    # the offering's PDF has its pages in the list's order
    assert c.post("/certs/institution/offerings/105/exports", data={"csrf_token": csrf_for(INST_A)}).status_code == 303
    [(_job_id, ids)] = export_jobs(certs_db)
    assert ids == [i["award_id"] for i in items]
    queued.clear()


def test_the_api_says_why_a_year_is_empty_and_where_to_look_as_the_page_does(certs_app, certs_db):
    """/certs/api/institution/offerings gave total 0 for the current year with no word, where the page said that
    nothing is effective yet that year and listed the other years: the API carries the same hint, the years and,
    in January and February, how many of last year's print only from this year."""
    from tests.certs.test_certificates import shown

    add_offerings(certs_db, 2026, 25, 1000, last_day=340)  # the last 3 end in December: printable from 2027
    add_offerings(certs_db, 2025, 3, 2000)
    clock.set_now(dt.datetime(2026, 12, 31, 16, 30, tzinfo=dt.UTC))  # 00:30 on 1 January 2027 in Beijing
    api = certs_app.test_client()

    def listed(query="", who=INST_A):
        return api.get(f"/certs/api/institution/offerings{query}", headers=bearer(who)).json

    empty = "2027 年度暂无已生效的授分。其他年度：2026 年度（25 期）、2025 年度（3 期）。"
    body = listed()
    assert body["total"] == 0 and body["items"] == [] and body["year"] == 2027
    assert body["hint"] == empty + "2026 年度有 3 期项目于年末结束，其证书自 2027 年起可打印，请查看 2026 年度。"
    assert body["years"] == [{"year": 2026, "count": 25}, {"year": 2025, "count": 3}]
    assert body["last_year_printable"] == 3
    page = shown(client(certs_app, INST_A).get("/certs/institution/offerings").get_data(as_text=True))
    assert empty in page and "2026 年度有 3 期项目于年末结束，其证书自 2027 年起可打印" in page  # the page says it too

    full = listed("?year=2026")
    assert full["total"] == 25 and full["hint"] is None and full["last_year_printable"] == 0 and full["year"] == 2026
    assert listed("?year=2024")["hint"] == empty.replace("2027", "2024")
    # an office with no effective award at all: said, with no other year to try
    nothing = listed(who=INST_B)
    assert nothing["hint"] == "2027 年度暂无已生效的授分。" and nothing["years"] == []
    clock.set_now(at(dt.date(2027, 3, 1)))  # by March: the empty year's hint alone
    assert listed()["hint"] == empty and listed()["last_year_printable"] == 0

    spec = api.get("/certs/api/openapi.json").get_json()
    answer = spec["paths"]["/certs/api/institution/offerings"]["get"]["responses"]["200"]["content"]
    schema = spec["components"]["schemas"][answer["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert {"hint", "year", "years", "last_year_printable", "items", "total"} <= set(schema["properties"])
    assert "暂无已生效的授分" in schema["properties"]["hint"]["description"]
