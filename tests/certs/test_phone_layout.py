"""学分证书导出 on a 360 px phone (an office's clerk away from the desk): the per-offering certificates were a
541 px wide page whose 姓名 and 学分 broke one character a line and whose 打印 column was off the screen; the
offerings' list broke 项目名称 one character a line, its 查看 a 33 px word at the far right. Both stack a row as
labelled values now (table.responsive), and what is pressed is a finger's target; the desk keeps its columns."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert

from services.common import clock, pii
from tests.certs.conftest import INST_A, PRINTABLE_DAY, REVIEWER, at, award_row, blank_pages
from tests.certs.test_certificates import certificates, client, run_jobs
from tests.certs.test_offerings import add_offerings
from tests.checkin.test_windows_support import csrf_for, id_number
from tests.common.test_phone_layout import CELLS

LONG_NAME = "阿卜杜热合曼·艾买提"  # a long name of one word: no space to break at
LONG_TITLE = "基层医疗卫生机构心血管急危重症规范化诊治与转诊新进展培训班"

# the element a finger on the centre of `el` lands on is `el` (or inside it): nothing covers it, it is on screen
HIT = """el => { el.scrollIntoView({block: "center"}); const b = el.getBoundingClientRect();
  const at = document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2);
  return !!at && (at === el || el.contains(at)) && b.left >= 0 && b.right <= window.innerWidth; }"""
# how many lines a cell's text takes (its rendered text box's height over its line height)
# each <dt> of a page's details beside its <dd>, on its line, as a stacked table's label beside its value
DL_BESIDE = """() => Array.from(document.querySelectorAll("main dt")).map(dt => {
  const dd = dt.nextElementSibling, a = dt.getBoundingClientRect(), b = dd.getBoundingClientRect();
  return [dt.textContent, b.left >= a.right && Math.abs(b.top - a.top) < 4]; })"""
LINES = """td => { const r = document.createRange(); r.selectNodeContents(td);
  return Math.round(r.getBoundingClientRect().height / parseFloat(getComputedStyle(td).lineHeight)); }"""


def _no_post(route: Any) -> None:
    raise AssertionError(f"nothing is sent in this test: {route.request.url}")


def _rows(page: Any) -> list[dict[str, str]]:
    """Each row of the page's table as the phone shows it: {label: value}, every label beside its value."""
    rows = []
    for i in range(page.locator("table.responsive tbody tr").count()):
        cells = page.evaluate(CELLS, [i])
        assert all(clear for label, _, clear in cells if label), cells  # no label drawn over its value
        rows.append({label: value for label, value, _ in cells if label})  # 查看's column has no header
    return rows


def _tappable(page: Any, locator: Any) -> None:
    assert locator.is_visible(), locator
    box = locator.bounding_box()
    assert box["height"] >= 40 and box["width"] >= 40, (locator, box)
    assert locator.evaluate(HIT), locator


def test_an_offering_s_certificates_fit_a_phone_with_each_value_labelled(certs_app, awards, queued, certs_db,
                                                                          monkeypatch):
    from services.certs.awards.models import EffectiveAward
    from services.certs.certificates import render
    from tests.stack.browser import DESK, PHONE, served_page

    s = certs_db.new_session()
    s.execute(insert(EffectiveAward), [award_row(9, 9, LONG_NAME)])  # a third trainee of offering A
    s.commit()
    s.close()
    monkeypatch.setattr(render, "render_document", blank_pages)
    clock.set_now(at(PRINTABLE_DAY))
    office = client(certs_app, INST_A)
    r = office.post("/certs/institution/offerings/101/exports", data={"csrf_token": csrf_for(INST_A)})
    assert r.status_code == 303 and run_jobs(queued) == ["done"]  # numbered: 证书编号 holds 16 characters
    numbers = certificates(certs_db)
    url = "/certs/institution/offerings/101"
    html = office.get(url).get_data(as_text=True)

    with served_page(html, url, _no_post, device=PHONE, static_from=office) as page:
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        assert not page.locator("table.responsive thead").is_visible()
        rows = {row["姓名"]: row for row in _rows(page)}
        assert set(rows) == {"张伟", "李娜", LONG_NAME}
        assert rows["张伟"] == {"姓名": "张伟", "身份证号码": pii.mask_id(id_number(1)), "学分": "Ⅰ类 10 分",
                               "活动日期": "2026-12-11", "证书编号": numbers[1][0], "打印": "可打印"}
        assert rows[LONG_NAME]["证书编号"] == numbers[9][0]
        # the name and the credit on one line each, not a character a line
        first = page.locator("table.responsive tbody tr").first
        for col in (0, 2):
            assert first.locator("td").nth(col).evaluate(LINES) == 1
        # each row's 打印 on the screen, and the page's print control a finger's target
        for i in range(3):
            cell = page.locator("table.responsive tbody tr").nth(i).locator("td").nth(5)
            cell.scroll_into_view_if_needed()
            box = cell.bounding_box()
            assert cell.is_visible() and box["x"] >= 0 and box["x"] + box["width"] <= 360
        _tappable(page, page.get_by_role("button", name="导出全部可打印学分证书（3 张）"))
        _tappable(page, page.get_by_role("link", name="返回列表"))

    with served_page(html, url, _no_post, device=DESK, static_from=office) as page:  # the desk: its columns
        assert page.locator("table.responsive thead").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280


def test_the_offerings_list_fits_a_phone_and_its_links_are_a_finger_s_target(certs_app, certs_db):
    from services.certs.awards.models import EffectiveAward
    from tests.stack.browser import DESK, PHONE, served_page

    add_offerings(certs_db, 2026, 21, 1000)  # two pages: the pager too
    s = certs_db.new_session()
    s.execute(insert(EffectiveAward), [award_row(1100, 1100, "张伟", offering_id=1100, project_title=LONG_TITLE,
                                                 ends_on=dt.date(2026, 12, 1))])
    s.commit()
    s.close()
    clock.set_now(at(dt.date(2026, 12, 10)))
    office = client(certs_app, INST_A)
    url = "/certs/institution/offerings?year=2026"
    html = office.get(url).get_data(as_text=True)

    with served_page(html, url, _no_post, device=PHONE, static_from=office) as page:
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        assert not page.locator("table.responsive thead").is_visible()
        rows = _rows(page)
        assert len(rows) == 20
        assert rows[0] == {"项目编号": "2026-01-01-001", "项目名称": LONG_TITLE, "举办日期": "2026-11-30 至 2026-12-01",
                           "已生效授分": "1", "可打印": "2026-12-29 起"}
        assert rows[1]["项目名称"] == "2026年第01期培训" and rows[1]["可打印"] == "1"
        # the long title wraps in lines of many characters, not one character a line; the dates break at 至 only
        title = page.locator("table.responsive tbody tr").first.locator("td").nth(1)
        assert title.evaluate(LINES) <= 3 and title.bounding_box()["width"] >= 200
        dates = page.locator("table.responsive tbody tr").first.locator("td").nth(2).locator("span")
        assert dates.count() == 2 and all(dates.nth(i).evaluate("s => s.getClientRects().length") == 1 for i in (0, 1))
        for i in (0, 19):  # the first row's 查看 and the last's, each its own row's
            link = page.locator("table.responsive tbody tr").nth(i).get_by_role("link", name="查看")
            _tappable(page, link)
        assert page.locator("table.responsive tbody tr").nth(19).get_by_role("link", name="查看").get_attribute(
            "href") == "/certs/institution/offerings/1018"
        _tappable(page, page.get_by_role("link", name="下一页"))
        _tappable(page, page.get_by_role("button", name="查询"))

    with served_page(html, url, _no_post, device=DESK, static_from=office) as page:
        assert page.locator("table.responsive thead").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280


def test_the_other_office_pages_fit_a_phone_and_are_pressed_with_a_finger(certs_app, awards, queued, certs_db,
                                                                          monkeypatch):
    """An empty year's list (the years to try), an offering's export page done and asked for again (重新生成,
    返回本期学分证书) and the committee's 证书查询 (查询, 查看完整号码): 360 px wide, each control at least 40 px,
    the details' labels (证书数量, 身份证号码) beside their values, not each a line above its value."""
    from services.certs.certificates import render
    from tests.stack.browser import PHONE, served_page

    monkeypatch.setattr(render, "render_document", blank_pages)
    clock.set_now(at(PRINTABLE_DAY))
    office = client(certs_app, INST_A)
    form = {"csrf_token": csrf_for(INST_A)}
    assert office.post("/certs/institution/offerings/101/exports", data=form).status_code == 303
    assert run_jobs(queued) == ["done"]
    again = office.post("/certs/institution/offerings/101/exports", data=form).headers["Location"]
    number = certificates(certs_db)[1][0]
    committee = client(certs_app, REVIEWER)
    pages = [(office, "/certs/institution/offerings?year=2025", [("link", "2026 年度（1 期）")], 0),
             (office, again, [("link", "下载学分证书（PDF）"), ("button", "重新生成"),
                              ("link", "返回本期学分证书")], 4),
             (committee, f"/certs/lookup?number={number}", [("button", "查询"), ("button", "查看完整号码")], 8)]
    for c, url, controls, details in pages:
        html = c.get(url).get_data(as_text=True)
        with served_page(html, url.split("?")[0], _no_post, device=PHONE, static_from=c) as page:
            assert page.evaluate("document.documentElement.scrollWidth") <= 360, url
            for role, name in controls:
                _tappable(page, page.get_by_role(role, name=name, exact=True))
            beside = page.evaluate(DL_BESIDE)
            assert len(beside) == details and all(ok for _, ok in beside), (url, beside)
