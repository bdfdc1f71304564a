"""签到名单: search by name or a full ID number, window filter, masked values, refused scans, Excel export."""

from __future__ import annotations

import datetime as dt
import io
from urllib.parse import unquote

import pytest

from services.common import clock, pii
from tests.checkin.test_windows_support import (
    INST_A,
    NAMES,
    OPEN_AT,
    WHO,
    api_headers,
    audit_entries,
    client_for,
    csrf_for,
    id_number,
    identity,
    make_activity,
    scan,
)


@pytest.fixture
def cdb(databases):
    return databases["checkin"]


@pytest.fixture
def filled(cdb):
    aid, wids = make_activity(cdb)
    for serial in (1, 2, 3):
        scan(cdb, wids[0], serial)
    scan(cdb, wids[1], 1, at=OPEN_AT + dt.timedelta(hours=6))
    return aid, wids


def test_list_shows_masked_values_and_window_filter(checkin_app, filled):
    aid, wids = filled
    c = client_for(checkin_app, "inst_a")
    html = c.get(f"/checkin/activities/{aid}/checkins").get_data(as_text=True)
    assert "共 4 条，最近的在前" in html and NAMES[1] in html and "扫码" in html  # the Excel: in order
    assert id_number(1) not in html and "13912340001" not in html
    assert "6101**********" + id_number(1)[-4:] in html and "139****0001" in html
    assert "2026-12-10 08:35:00" in html  # Shanghai time
    html = c.get(f"/checkin/activities/{aid}/checkins?window_id={wids[1]}").get_data(as_text=True)
    assert "共 1 条" in html
    page = checkin_app.test_client().get(f"/checkin/api/activities/{aid}/checkins?per_page=2",
                                         headers=api_headers("reviewer")).get_json()
    assert (page["total"], page["pages"], len(page["items"])) == (4, 2, 2)


def test_search_by_name_and_by_full_id_number(checkin_app, filled):
    aid, _ = filled
    c = client_for(checkin_app, "inst_a")
    html = c.get(f"/checkin/activities/{aid}/checkins?q={NAMES[2]}").get_data(as_text=True)
    assert "共 1 条" in html and NAMES[2] in html and NAMES[3] not in html
    # the form posts: a full ID number is searched by its keyed hash and never put into a URL
    r = c.post(f"/checkin/activities/{aid}/checkins", data={"csrf_token": csrf_for(INST_A), "q": id_number(3)})
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "共 1 条" in html and NAMES[3] in html and id_number(3) not in html
    # pasted from a Word document in 全角 digits: the same number (the committee told a caller he never came)
    wide = "".join(chr(ord(ch) + 0xFEE0) for ch in id_number(3))
    r = c.post(f"/checkin/activities/{aid}/checkins", data={"csrf_token": csrf_for(INST_A), "q": f" {wide}"})
    assert r.status_code == 200 and "共 1 条" in r.get_data(as_text=True)
    r = c.post(f"/checkin/activities/{aid}/checkins", data={"csrf_token": csrf_for(INST_A), "q": NAMES[1]})
    assert r.status_code == 302 and "q=" in r.headers["Location"]
    # part of an ID number matches nothing (only the hash of a full one is stored)
    r = c.post(f"/checkin/activities/{aid}/checkins", data={"csrf_token": csrf_for(INST_A), "q": id_number(3)[:10]})
    assert r.status_code == 200 and "没有符合条件的签到记录" in r.get_data(as_text=True)
    # a number written into the address (the security walk's crafted link) is refused, not searched for, page
    # and Excel alike: no page may teach that an ID number belongs in the browser's history
    for q in (id_number(3), "13912340003", id_number(3)[:10]):
        for path in ("checkins", "checkins.xlsx"):
            r = c.get(f"/checkin/activities/{aid}/{path}", query_string={"q": q})
            text = r.get_data(as_text=True)
            assert r.status_code == 422 and "检索框中输入" in text and NAMES[3] not in text, (q, path)
    api = checkin_app.test_client()
    body = api.post(f"/checkin/api/activities/{aid}/checkins/search", json={"q": id_number(1).lower()},
                    headers=api_headers("inst_a")).get_json()
    assert body["total"] == 2 and {i["name"] for i in body["items"]} == {NAMES[1]}


def test_refused_scans_are_listed_with_reasons(checkin_app, cdb, filled):
    from services.checkin.scans.models import RefusedScan

    aid, wids = filled
    s = cdb.new_session()
    s.add(RefusedScan(at=clock.now(), activity_id=aid, window_id=wids[0], reason="token_expired"))
    s.add(RefusedScan(at=clock.now(), activity_id=aid, window_id=wids[0], reason="id_name_mismatch",
                      trainee_key=pii.id_hash(id_number(1))))
    s.commit()
    s.close()
    html = client_for(checkin_app, "inst_a").get(f"/checkin/activities/{aid}/checkins").get_data(as_text=True)
    assert "未通过的扫码" in html and "二维码已过期" in html
    body = checkin_app.test_client().get(f"/checkin/api/activities/{aid}/refused-scans",
                                         headers=api_headers("inst_a")).get_json()
    assert body["total"] == 2 and {i["reason"] for i in body["items"]} == {"token_expired", "id_name_mismatch"}
    # the API gives the typed number masked, as the page does, where it is one on record
    assert {i["id_number_masked"] for i in body["items"]} == {"", pii.mask_id(id_number(1))}


def test_export_opens_with_openpyxl_masked_only_and_is_audited(checkin_app, filled):
    from openpyxl import load_workbook

    aid, wids = filled
    r = client_for(checkin_app, "inst_a").get(f"/checkin/activities/{aid}/checkins.xlsx")
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    # saved under its Chinese name (the ASCII one for an old browser), never kept by a shared browser
    disposition = r.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="checkins.xlsx"; filename*=UTF-8\'\'')
    assert unquote(disposition.split("''", 1)[1]).startswith("签到名单-")
    assert r.headers["Cache-Control"] == "private, no-store"
    ws = load_workbook(io.BytesIO(r.data)).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[2][:4] == ("序号", "姓名", "身份证号码", "手机号码") and "方式" in rows[2]
    data = rows[3:]
    assert len(data) == 4
    text = repr(rows)
    for serial in (1, 2, 3):
        assert id_number(serial) not in text and f"1391234{serial:04d}" not in text
    assert "6101**********" + id_number(1)[-4:] in text and "139****0001" in text
    (entry,) = audit_entries(checkin_app.extensions["cme_db"], "checkins_exported")
    assert entry.object_id == aid and entry.actor == INST_A.describe() and "4 条" in entry.reason
    # a reviewer may export too, and is logged as well; another institution may not
    assert client_for(checkin_app, "reviewer").get(f"/checkin/activities/{aid}/checkins.xlsx").status_code == 200
    assert client_for(checkin_app, "inst_b").get(f"/checkin/activities/{aid}/checkins.xlsx").status_code == 404
    assert len(audit_entries(checkin_app.extensions["cme_db"], "checkins_exported")) == 2
    # one 时段's list: 办理记录 names the window as the office knows it, not by its id
    r = client_for(checkin_app, "inst_a").get(f"/checkin/activities/{aid}/checkins.xlsx?window_id={wids[0]}")
    assert r.status_code == 200
    entry = audit_entries(checkin_app.extensions["cme_db"], "checkins_exported")[-1]
    assert "时段“开幕式与专题讲座” 签到 2026-12-10 08:30~" in entry.reason and f"时段 {wids[0]}" not in entry.reason


def test_export_keeps_typed_text_as_text_never_a_formula(checkin_app, cdb):
    """A 单位 typed on the phone as =HYPERLINK(…) must not become a live link in the office's file."""
    import zipfile

    from openpyxl import load_workbook

    from services.checkin.scans.services import record_checkin
    from services.checkin.windows.models import CheckinWindow

    aid, wids = make_activity(cdb)
    planted = '=HYPERLINK("http://evil.example/","点我")'
    s = cdb.new_session()
    w = s.get(CheckinWindow, wids[0])
    record_checkin(s, w, nonce="formula-1", scanned_at=w.starts_at + dt.timedelta(minutes=5),
                   identity=identity(5, unit=planted), openid="openid-formula", address="10.0.0.9")
    s.commit()
    s.close()
    r = client_for(checkin_app, "inst_a").get(f"/checkin/activities/{aid}/checkins.xlsx")
    sheet = zipfile.ZipFile(io.BytesIO(r.data)).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet  # no formula anywhere in the file
    ws = load_workbook(io.BytesIO(r.data)).active
    [cell] = [c for row in ws.iter_rows(min_row=4) for c in row if c.value == planted]
    assert cell.data_type == "s"


def _sealed(html: str) -> str:
    import re

    return re.search(r'name="q_sealed" value="([^"]+)"', html).group(1)


def test_export_after_a_search_by_full_number_exports_that_search(checkin_app, filled):
    """The desk searched a caller's ID number and pressed 导出 Excel: the file holds her rows, not everyone's,
    and the number is in neither the page nor an address."""
    from openpyxl import load_workbook

    aid, wids = filled
    c = client_for(checkin_app, "inst_a")
    html = c.post(f"/checkin/activities/{aid}/checkins",
                  data={"csrf_token": csrf_for(INST_A), "q": id_number(1)}).get_data(as_text=True)
    assert "共 2 条" in html and id_number(1) not in html and 'form="export"' in html
    sealed = _sealed(html)
    r = c.post(f"/checkin/activities/{aid}/checkins.xlsx", data={"csrf_token": csrf_for(INST_A), "q_sealed": sealed})
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    rows = list(load_workbook(io.BytesIO(r.data)).active.iter_rows(min_row=4, values_only=True))
    assert [row[1] for row in rows] == [NAMES[1], NAMES[1]]
    # with the 时段 the search had, and by name from the form as the GET page shows it
    r = c.post(f"/checkin/activities/{aid}/checkins.xlsx",
               data={"csrf_token": csrf_for(INST_A), "q_sealed": sealed, "window_id": str(wids[1])})
    assert len(list(load_workbook(io.BytesIO(r.data)).active.iter_rows(min_row=4))) == 1
    r = c.post(f"/checkin/activities/{aid}/checkins.xlsx", data={"csrf_token": csrf_for(INST_A), "q": NAMES[2]})
    assert [row[1] for row in load_workbook(io.BytesIO(r.data)).active.iter_rows(min_row=4, values_only=True)] \
        == [NAMES[2]]
    # a sealed search altered, or from a page left open since yesterday: asked to search again, nothing exported
    r = c.post(f"/checkin/activities/{aid}/checkins.xlsx",
               data={"csrf_token": csrf_for(INST_A), "q_sealed": sealed[:-4] + "AAAA"})
    assert r.status_code == 422 and "请重新查询后再导出" in r.get_data(as_text=True)
    clock.set_now(clock.now() + dt.timedelta(days=1))
    r = c.post(f"/checkin/activities/{aid}/checkins.xlsx", data={"csrf_token": csrf_for(INST_A), "q_sealed": sealed})
    assert r.status_code == 422
    # another institution cannot use the form at all
    r = client_for(checkin_app, "inst_b").post(f"/checkin/activities/{aid}/checkins.xlsx",
                                               data={"csrf_token": csrf_for(WHO["inst_b"]), "q_sealed": sealed})
    assert r.status_code == 404


def test_a_window_of_another_activity_is_refused_not_an_empty_list(checkin_app, cdb, filled):
    aid, _ = filled
    _other, other_wids = make_activity(cdb, offering_id=102, project_number="2026-01-01-002")
    c = client_for(checkin_app, "inst_a")
    for path in (f"checkins?window_id={other_wids[0]}", f"checkins.xlsx?window_id={other_wids[0]}"):
        r = c.get(f"/checkin/activities/{aid}/{path}")
        assert r.status_code == 404 and "不属于本活动" in r.get_data(as_text=True), path
    api = checkin_app.test_client()
    for path in ("checkins", "refused-scans"):
        r = api.get(f"/checkin/api/activities/{aid}/{path}?window_id={other_wids[0]}", headers=api_headers("inst_a"))
        assert r.status_code == 404 and "不属于本活动" in r.get_json()["error"]["message"], path


def test_the_export_button_says_the_file_is_on_its_way_and_comes_back(checkin_app, filled):
    """导出 Excel clicked again while the file is being made sends nothing, and the button says why; after a few
    seconds it may be clicked again (the page stays where it is when a file arrives)."""
    from tests.stack.browser import served_page

    aid, _wids = filled
    url = f"/checkin/activities/{aid}/checkins"
    sent: list[str] = []

    def answer(route):  # type: ignore[no-untyped-def]
        sent.append(route.request.url)
        route.fulfill(status=204)  # like the file's answer, it leaves the page where it is

    with served_page(client_for(checkin_app, "inst_a").get(url).get_data(as_text=True), url, answer) as page:
        button = page.locator("button[form=export]")
        button.click()
        page.wait_for_timeout(300)
        assert button.text_content() == "正在导出…" and button.is_disabled()
        button.dispatch_event("click")  # a click on the disabled button sends nothing
        page.wait_for_timeout(300)
        assert sent == [f"http://cme.test{url}.xlsx"]
        page.wait_for_function("() => !document.querySelector('button[form=export]').disabled", timeout=5000)
        assert button.text_content() == "导出 Excel"
        button.click()
        page.wait_for_timeout(300)
        assert len(sent) == 2


def test_sign_out_rows_are_not_called_sign_ins(checkin_app, cdb):
    """A day with 签退 windows: the list, the Excel and the windows' page name the time and the count of either
    kind, not 签到时间 / 签到人数 over a 签退's rows; the windows' page says the projector follows the day."""
    from io import BytesIO

    from openpyxl import load_workbook
    from sqlalchemy import update

    from services.checkin.windows.models import CheckinWindow

    aid, wids = make_activity(cdb)
    with cdb.engine.begin() as conn:
        conn.execute(update(CheckinWindow).where(CheckinWindow.id == wids[1]).values(kind="sign_out"))
    scan(cdb, wids[1], 1, at=OPEN_AT + dt.timedelta(hours=6))
    c = client_for(checkin_app, "inst_a")
    html = c.get(f"/checkin/activities/{aid}/checkins").get_data(as_text=True)
    assert "<th>签到/签退时间</th>" in html and "<th>签到时间</th>" not in html and "（签退）" in html
    ws = load_workbook(BytesIO(c.get(f"/checkin/activities/{aid}/checkins.xlsx").data)).active
    header = next(ws.iter_rows(min_row=3, max_row=3, values_only=True))
    assert "签到/签退时间" in header and "签到时间" not in header
    html = c.get(f"/checkin/activities/{aid}/windows").get_data(as_text=True)
    assert "<th>签到/签退人数</th>" in html and "自动显示本活动的下一个刷卡周期" in html


def test_an_export_of_many_rows_per_trainee_keeps_each_row_hers_and_the_sheet_as_it_was(checkin_app, cdb):
    """The export is written row by row (a 期 of 2,000 trainees over four windows is ~8,000 rows) and decrypts each
    trainee's number once for all her rows: every row still shows its own trainee's masked ID number and mobile,
    the sheet keeps its bold header frozen under the title lines and its widths, and an empty cell is empty."""
    from openpyxl import load_workbook

    aid, wids = make_activity(cdb)
    for wid in wids:
        for serial in range(1, 8):
            scan(cdb, wid, serial, at=None)
    book = load_workbook(io.BytesIO(client_for(checkin_app, "inst_a").get(
        f"/checkin/activities/{aid}/checkins.xlsx").data))
    ws = book.active
    assert ws.title == "签到名单" and ws.freeze_panes == "A4"
    assert ws["B3"].value == "姓名" and ws["B3"].font.b and ws.column_dimensions["F"].width == 28
    assert f"共 {7 * len(wids)} 条" in ws["A2"].value
    rows = list(ws.iter_rows(min_row=4, values_only=True))
    assert [r[0] for r in rows] == list(range(1, 7 * len(wids) + 1))
    for row in rows:
        serial = NAMES.index(row[1])
        assert row[2] == "6101**********" + id_number(serial)[-4:] and row[3] == f"139****{serial:04d}", row
        assert row[9] == "扫码" and row[10] is None and row[11] is None


def test_a_long_list_is_paged_with_its_search_kept_and_a_stale_page_shows_the_last(checkin_app, cdb):
    """A big 期's list is never shown whole (a phone at the desk would load thousands of rows): 20 a page, the
    count of all, 上一页 / 下一页 links that keep the search and the 时段, and a page past the end is the last."""
    from urllib.parse import quote

    aid, wids = make_activity(cdb)
    for wid in wids:
        for serial in range(1, 16):
            scan(cdb, wid, serial)
    c = client_for(checkin_app, "inst_a")

    def rows(html: str) -> int:
        return html.split("<tbody>", 1)[1].split("</tbody>", 1)[0].count("<tr>")

    first = c.get(f"/checkin/activities/{aid}/checkins").get_data(as_text=True)
    assert "共 45 条" in first and "第 1 / 3 页" in first and rows(first) == 20
    assert 'page=2">下一页' in first and "上一页" not in first
    last = c.get(f"/checkin/activities/{aid}/checkins?page=99").get_data(as_text=True)
    assert "第 3 / 3 页" in last and rows(last) == 5 and 'page=2">上一页' in last and "下一页" not in last
    unit = quote("西安")
    searched = c.get(f"/checkin/activities/{aid}/checkins?q={unit}&window_id={wids[0]}").get_data(as_text=True)
    assert "共 15 条" in searched and rows(searched) == 15 and "下一页" not in searched
    searched = c.get(f"/checkin/activities/{aid}/checkins?q={unit}").get_data(as_text=True)
    assert "共 45 条" in searched and f'?q={unit}&page=2">下一页' in searched
