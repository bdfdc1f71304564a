"""The projects pages a QA walk read at 360 px (Chromium phone): every table that lists rows is a table.responsive
with a header, so each value says its column; no page is wider than the phone; a label–value table leaves room for
its values; 项目目录 folds its low-value columns; 申办机构 shows its list before its two forms."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import login_client
from tests.projects.conftest import filled, frozen, images, make_project, ready_filing  # noqa: F401 - fixtures
from tests.projects.test_reports import complete, held  # noqa: F401 - fixtures

# what the phone shows: the page's width, each table of <main> (responsive or a label–value table) and the body
# cells that carry a value but no label
SEEN = """() => {
  const tables = Array.from(document.querySelectorAll("main table")).map(t => ({
    responsive: t.classList.contains("responsive"), kv: t.classList.contains("kv"), head: !!t.tHead,
    // a compact table (首页's 月份 · 授分人次 · 学分合计) keeps its header row on a phone instead of labels
    compact: t.classList.contains("compact"), headShown: !!t.tHead && getComputedStyle(t.tHead).display !== "none",
    unlabelled: Array.from(t.querySelectorAll("tbody td")).filter(td => td.colSpan === 1
      && td.innerText.trim() && getComputedStyle(td).display !== "none"
      && getComputedStyle(td, "::before").content === "none").map(td => td.innerText.trim())}));
  return {width: document.documentElement.scrollWidth, tables};
}"""


def _no_post(route: Any) -> None:
    raise AssertionError(f"nothing is sent in this test: {route.request.url}")


def _check(c: Any, url: str, need_table: bool = True) -> None:
    from tests.stack.browser import PHONE, served_page

    r = c.get(url)
    assert r.status_code == 200, (url, r.status_code)
    with served_page(r.get_data(as_text=True), url, _no_post, device=PHONE, static_from=c) as page:
        page.wait_for_load_state()
        seen = page.evaluate(SEEN)
        assert seen["width"] <= 360, (url, seen["width"])
        assert seen["tables"] or not need_table, url
        for t in seen["tables"]:
            assert t["kv"] or (t["responsive"] and t["head"]), (url, t)
            if t["compact"]:
                assert t["headShown"], url
            elif t["responsive"]:
                assert not t["unlabelled"], (url, t["unlabelled"])
        if page.locator("table.kv").count():  # the value column is the wider: 2026-02-03-003 on one line
            th, td = page.locator("table.kv th").first, page.locator("table.kv td").first
            assert td.bounding_box()["width"] > th.bounding_box()["width"], url
            lines = page.evaluate("""() => { const r = document.createRange();
                r.selectNodeContents(document.querySelector("table.kv td").firstChild);
                return new Set(Array.from(r.getClientRects()).map(b => Math.round(b.top))).size; }""")
            assert lines == 1, (url, td.inner_text())


def test_report_filing_and_institution_pages_label_every_table_at_360_px(projects_app, inst_a, reviewer,
                                                                         complete):  # noqa: F811
    """执行情况反馈 第3页's 已上传, 总览 (授课情况, 教材, 办理记录), 反馈记录管理, the filing detail's 日程安排 and
    办理记录 for office and committee, the committee's report page, 机构负责人 on an institution's page."""
    oid, rid = complete(*inst_a, submit=True)
    office = login_client(projects_app.test_client(), inst_a[1])
    committee = login_client(projects_app.test_client(), reviewer[1])
    fid = re.search(r"/filings/(\d+)$", committee.get(f"/projects/review/offerings/{oid}").headers["Location"])[1]
    for url in (f"/projects/reports/{rid}", f"/projects/reports/{rid}/pages/3", f"/projects/reports/{rid}/pages/2",
                f"/projects/reports/offering/{oid}", f"/projects/filings/{fid}"):
        _check(office, url)
    for url in (f"/projects/review/reports/{rid}", f"/projects/review/filings/{fid}",
                f"/projects/institutions/{inst_a[0].id}"):
        _check(committee, url)


def test_the_catalogue_on_a_phone_shows_the_columns_a_clerk_needs(projects_app, inst_a, reviewer,
                                                                  make_project, ready_filing):  # noqa: F811
    """项目目录: each project was a 14-row card (8 projects, 5,219 px) and its last column had no header, so 删除
    and 已开始登记 carried no label; now the low-value columns fold on a phone (the desk keeps all 14)."""
    from tests.stack.browser import DESK, PHONE, served_page

    for k in range(7):
        make_project(inst_a[0], title=f"目录项目{k}")
    ready_filing(inst_a[0], inst_a[1])  # an 8th project, its first 期 filed: 已开始登记
    c = login_client(projects_app.test_client(), reviewer[1])
    html = c.get("/projects/catalogue").get_data(as_text=True)
    assert "已开始登记，不能删除" in html
    with served_page(html, "/projects/catalogue", _no_post, device=PHONE, static_from=c) as page:
        page.wait_for_load_state()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        table = page.locator("table.responsive").last
        assert table.locator("tbody tr").count() == 8
        assert table.bounding_box()["height"] < 8 * 330  # about 5,200 px before
        labels = page.evaluate("""Array.from(Array.from(document.querySelectorAll("table.responsive")).pop().rows[1]
            .cells).filter(td => getComputedStyle(td).display !== "none").map(td => td.getAttribute("data-label"))""")
        assert labels == ["年度", "项目编号", "项目名称", "主办单位", "期次审批情况", "操作"]
        actions = page.evaluate("""Array.from(Array.from(document.querySelectorAll("table.responsive")).pop()
            .querySelectorAll("tbody td:last-child")).map(td => getComputedStyle(td, "::before").content)""")
        assert set(actions) == {'"操作"'}
    with served_page(html, "/projects/catalogue", _no_post, device=DESK, static_from=c) as page:
        page.wait_for_load_state()
        shown = page.evaluate("""Array.from(Array.from(document.querySelectorAll("table.responsive")).pop()
            .tHead.rows[0].cells).filter(th => getComputedStyle(th).display !== "none").length""")
        assert shown == 14


def test_institutions_on_a_phone_show_the_list_first(projects_app, inst_a, reviewer):
    """申办机构: the 机构列表 sat some 1,100 px down, below 新建 and Excel 导入; on a phone it comes first, the desk
    keeps its order."""
    from tests.stack.browser import DESK, PHONE, served_page

    c = login_client(projects_app.test_client(), reviewer[1])
    html = c.get("/projects/institutions").get_data(as_text=True)
    with served_page(html, "/projects/institutions", _no_post, device=PHONE, static_from=c) as page:
        page.wait_for_load_state()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        listed = page.locator("#institution-list").bounding_box()["y"]
        create = page.get_by_role("heading", name="新建申办机构").bounding_box()["y"]
        assert listed < create and listed < 400
        assert page.get_by_text(inst_a[0].name).first.is_visible()
    with served_page(html, "/projects/institutions", _no_post, device=DESK, static_from=c) as page:
        page.wait_for_load_state()
        assert (page.get_by_role("heading", name="新建申办机构").bounding_box()["y"]
                < page.locator("#institution-list").bounding_box()["y"])





def test_the_lists_and_home_pages_fit_a_phone(projects_app, inst_a, reviewer, complete):  # noqa: F811
    """The rest of the projects pages a clerk opens, for the office and the committee: none wider than 360 px,
    every table labelled."""
    complete(*inst_a, submit=True)
    office = login_client(projects_app.test_client(), inst_a[1])
    committee = login_client(projects_app.test_client(), reviewer[1])
    for url in ("/projects/filings", "/projects/reports", "/projects/admins"):
        _check(office, url, need_table=False)
    for url in ("/projects/review", "/projects/review/filings?state=approved", "/projects/review/reports",
                "/projects/review/reports?state=submitted", "/projects/institutions"):
        _check(committee, url, need_table=False)


# each tab of 第1页 … 第5页 · 总览与提交: its box, its text's lines, and the element at its centre
TABS = """() => Array.from(document.querySelectorAll("nav.pager > *")).map(el => {
  const b = el.getBoundingClientRect(), r = document.createRange();
  r.selectNodeContents(el);
  const at = document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2);
  return {text: el.innerText.trim(), link: el.tagName === "A", width: b.width, height: b.height, top: Math.round(b.top),
          lines: new Set(Array.from(r.getClientRects()).map(x => Math.round(x.top))).size,
          hit: !!at && (at === el || el.contains(at))};
})"""


def test_the_report_page_tabs_read_on_one_line_each_at_360_px(projects_app, inst_a, complete):  # noqa: F811
    """QA at 360 px: the five page tabs and 总览与提交 sat in one row that could not wrap, so each label was squeezed
    into a narrow column of two lines (第1页 / 执行情况). Now the row wraps: each tab one line, a finger's target;
    the desk keeps them in one row."""
    from tests.stack.browser import DESK, PHONE, served_page

    oid, rid = complete(*inst_a)
    office = login_client(projects_app.test_client(), inst_a[1])
    for url in (f"/projects/reports/{rid}/pages/1", f"/projects/reports/{rid}/pages/5", f"/projects/reports/{rid}"):
        html = office.get(url).get_data(as_text=True)
        with served_page(html, url, _no_post, device=PHONE, static_from=office) as page:
            page.wait_for_load_state()
            tabs = page.evaluate(TABS)
            assert len(tabs) == 6 and page.evaluate("document.documentElement.scrollWidth") <= 360, url
            for t in tabs:
                assert t["lines"] == 1, (url, t)
                if t["link"]:
                    assert t["height"] >= 40 and t["width"] >= 40 and t["hit"], (url, t)
            assert len({t["top"] for t in tabs}) > 1, url  # the row wrapped rather than squeezed
        with served_page(html, url, _no_post, device=DESK, static_from=office) as page:
            page.wait_for_load_state()
            tabs = page.evaluate(TABS)
            assert all(t["lines"] == 1 for t in tabs) and len({t["top"] for t in tabs}) == 1, (url, tabs)
