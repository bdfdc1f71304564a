"""授分名单 of a large offering is paged as the suite's other lists are: a page of rows, a search by name, the whole
list's counts above every page, the Excel still the whole list; the JSON API in the suite's list shape."""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import insert

from services.common import clock, pii
from services.common.events import make_envelope
from tests.checkin.test_windows_support import INST_A, api_headers, client_for, csrf_for, id_number
from tests.credits.test_offerings import deliver, payload

UTC = dt.UTC
OFFERING = 101
SURNAMES = "赵钱孙李周吴郑王冯"  # 45 trainees: five of each surname


def names() -> list[str]:
    return [f"{SURNAMES[i % 9]}{'一二三四五'[i // 9]}" for i in range(45)]


@pytest.fixture
def listed(databases):
    """An offering with 45 pending awards by attendance, the first one withdrawn."""
    from services.credits.awards.models import CreditAward

    clock.set_now(dt.datetime(2026, 12, 12, 2, 0, tzinfo=UTC))
    deliver(make_envelope("offering.approved", "projects", payload()))
    now = clock.now()
    rows = [{"offering_id": OFFERING, "institution_id": 1, "trainee_key": pii.id_hash(id_number(i + 1)), "name": name,
             "id_enc": pii.encrypt(id_number(i + 1)), "project_number": "2026-01-01-001",
             "project_title": "心血管急危重症诊治进展", "credit_class": "Ⅰ类", "credit_value": Decimal("10"),
             "offering_starts_on": dt.date(2026, 12, 10), "offering_ends_on": dt.date(2026, 12, 11),
             "activity_date": dt.date(2026, 12, 11), "year": 2026, "method": "attendance", "state": "pending",
             "granted_at": now, "granted_by": "inst:1:admin:1",
             **({"state": "withdrawn", "withdrawn_at": now, "withdraw_reason": "核对有误"} if i == 0 else {})}
            for i, name in enumerate(names())]
    s = databases["credits"].new_session()
    s.execute(insert(CreditAward), rows)
    s.commit()
    s.close()
    return rows


def row_names(html: str) -> list[str]:
    return re.findall(r'aria-label="(\S+) 撤销原因"', html)


def test_the_list_is_paged_with_the_whole_list_counted_and_searchable(credits_app, listed):
    c = client_for(credits_app, "inst_a")
    first = c.get(f"/credits/awards/{OFFERING}/list").get_data(as_text=True)
    assert "第 1 / 3 页" in first and len(row_names(first)) == 20
    assert "共 45 条（其中已撤销 1 条，当前授分 44 人）" in first
    third = c.get(f"/credits/awards/{OFFERING}/list?page=3").get_data(as_text=True)
    assert "第 3 / 3 页" in third and "共 45 条（其中已撤销 1 条，当前授分 44 人）" in third
    # 44 current rows carry a 撤销 form; the withdrawn one is the list's last row, on page 3 (4 forms + it)
    assert len(row_names(third)) == 4 and "核对有误" in third
    seen = row_names(first) + row_names(c.get(f"/credits/awards/{OFFERING}/list?page=2").get_data(as_text=True)) \
        + row_names(third)
    assert len(seen) == len(set(seen)) == 44  # every current award once over the three pages
    # a search by name narrows the rows, not the counts, and the pager keeps the search
    found = c.get(f"/credits/awards/{OFFERING}/list?q=王").get_data(as_text=True)
    assert sorted(row_names(found)) == sorted(n for n in names() if n.startswith("王"))
    assert "共 45 条（其中已撤销 1 条，当前授分 44 人）" in found and "姓名含“王”的授分记录 5 条" in found
    small = c.get(f"/credits/awards/{OFFERING}/list?q=李&per_page=2").get_data(as_text=True)
    assert "第 1 / 3 页" in small and "q=%E6%9D%8E" in small and "per_page=2" in small
    nobody = c.get(f"/credits/awards/{OFFERING}/list?q=欧阳").get_data(as_text=True)
    assert "没有姓名含“欧阳”的授分记录" in nobody and not row_names(nobody)
    bad = c.get(f"/credits/awards/{OFFERING}/list?page=abc")
    assert bad.status_code == 422 and "查询条件有误" in bad.get_data(as_text=True)
    # the Excel is the whole list still
    ws = load_workbook(io.BytesIO(c.get(f"/credits/awards/{OFFERING}/awards.xlsx").data)).active
    assert len(list(ws.iter_rows())) == 2 + 45 + 1


def test_a_withdrawal_on_page_2_of_a_search_comes_back_there(credits_app, listed, databases):
    from services.credits.awards.models import CreditAward

    c = client_for(credits_app, "inst_a")
    page2 = c.get(f"/credits/awards/{OFFERING}/list?page=2").get_data(as_text=True)
    award_id = re.findall(r'action="/credits/awards/award/(\d+)/withdraw"', page2)[0]
    s = databases["credits"].new_session()
    version = s.get(CreditAward, int(award_id)).version
    s.close()
    # refused (no reason): the same page again, the row's form on it
    refused = c.post(f"/credits/awards/award/{award_id}/withdraw",
                     data={"csrf_token": csrf_for(INST_A), "reason": " ", "version": str(version), "page": "2"})
    assert refused.status_code == 422 and "第 2 / 3 页" in refused.get_data(as_text=True)
    done = c.post(f"/credits/awards/award/{award_id}/withdraw",
                  data={"csrf_token": csrf_for(INST_A), "reason": "身份核对有误", "version": str(version),
                        "page": "2", "q": ""})
    assert done.status_code == 302 and done.headers["Location"] == f"/credits/awards/{OFFERING}/list?page=2"
    assert "已撤销" in c.get(done.headers["Location"]).get_data(as_text=True)


def test_the_api_answers_a_page_in_the_suite_s_list_shape(credits_app, listed):
    api = credits_app.test_client()
    for who in ("inst_a", "reviewer"):
        body = api.get(f"/credits/api/offerings/{OFFERING}/awards?page=3", headers=api_headers(who)).json
        assert (body["total"], body["page"], body["pages"], body["per_page"]) == (45, 3, 3, 20)
        assert len(body["items"]) == 5 and body["items"][-1]["state"] == "withdrawn"
        assert body["counts"] == {"total": 45, "withdrawn": 1, "current": 44, "attendance": 44, "manual": 0,
                                  "pending": 44}
    found = api.get(f"/credits/api/offerings/{OFFERING}/awards?q=王", headers=api_headers("inst_a")).json
    assert found["total"] == 5 and {a["name"][0] for a in found["items"]} == {"王"} and found["counts"]["total"] == 45
    bad = api.get(f"/credits/api/offerings/{OFFERING}/awards?per_page=1000", headers=api_headers("inst_a"))
    assert bad.status_code == 422


def test_the_pager_s_links_are_clean_query_strings_keeping_the_search(credits_app, listed):
    """下一页 of the whole list is ?page=2 (it was ?&page=2, a stray &); of a search it keeps the name searched."""
    c = client_for(credits_app, "inst_a")
    first = c.get(f"/credits/awards/{OFFERING}/list").get_data(as_text=True)
    assert re.findall(r'<a href="([^"]*)">下一页</a>', first) == ["?page=2"] and "?&" not in first
    second = c.get(f"/credits/awards/{OFFERING}/list?page=2").get_data(as_text=True)
    links = re.findall(r'<a href="([^"]*)">(上一页|下一页)</a>', second)
    assert links == [("?page=1", "上一页"), ("?page=3", "下一页")]
    searched = c.get(f"/credits/awards/{OFFERING}/list?q=李&per_page=2").get_data(as_text=True)
    assert re.findall(r'<a href="([^"]*)">下一页</a>', searched) == ["?q=%E6%9D%8E&amp;per_page=2&page=2"]
