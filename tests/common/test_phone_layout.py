"""The desk pages on a 360 px phone (base.html, cme.css, table-labels.js): a table.responsive hides its header row,
so each value must say which column it is (项目举办前登记's bare "2" and "线下", 授课情况's five unlabelled boxes);
the main menu folds under one 菜单 line instead of taking 300 px above every page."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import login_client
from tests.projects.conftest import filled, frozen, images, make_project, ready_filing  # noqa: F401 - fixtures
from tests.projects.test_reports import complete, held  # noqa: F401 - fixtures

# each body cell of the first table.responsive's row `row` as the phone shows it: the label drawn before it (its
# ::before content, quotes taken off), its value (text, or the value of its one form control), and whether the
# label sits beside the value (the control or text starts right of the label, on the label's line)
CELLS = """([row]) => {
  const tr = document.querySelectorAll("table.responsive tbody tr")[row];
  return Array.from(tr.cells).map(td => {
    const before = getComputedStyle(td, "::before");
    const shown = before.content !== "none" && before.display !== "none" && before.visibility !== "hidden";
    const label = shown ? before.content.replace(/^"|"$/g, "") : "";
    const control = td.querySelector("input:not([type=hidden]), select, textarea");
    const value = control ? (control.type === "checkbox" ? "☐" : control.value) : td.innerText.trim();
    const range = document.createRange();
    range.selectNodeContents(td);
    const content = control ? control.getBoundingClientRect() : range.getBoundingClientRect();
    const box = td.getBoundingClientRect(), style = getComputedStyle(td);
    const clear = content.left >= box.left + parseFloat(style.paddingLeft)  /* right of the label */
      && content.top < box.top + parseFloat(style.paddingTop) + parseFloat(before.height);  /* on its line */
    return [label, value, clear];
  });
}"""


def _cells(page: Any, row: int = 0) -> list[tuple[str, str, bool]]:
    return [tuple(c) for c in page.evaluate(CELLS, [row])]


def _no_post(route: Any) -> None:
    raise AssertionError(f"nothing is sent in this test: {route.request.url}")


def test_a_phone_list_names_each_value_by_its_column(projects_app, inst_a, make_project, frozen):  # noqa: F811
    """项目举办前登记 on a phone: the row's "2" says 举办期数 and "线下" says 举办方式; the header row stays hidden."""
    from tests.stack.browser import PHONE, served_page

    make_project(inst_a[0], offerings_count=2, mode="线下", title="基层心血管病诊治进展")
    c = login_client(projects_app.test_client(), inst_a[1])
    html = c.get("/projects/filings").get_data(as_text=True)
    with served_page(html, "/projects/filings", _no_post, device=PHONE, static_from=c) as page:
        assert not page.locator("table.responsive thead").is_visible()
        cells = _cells(page)
        labels = {label: value for label, value, _ in cells}
        assert labels["项目名称"] == "基层心血管病诊治进展"
        assert labels["举办期数"] == "2" and labels["举办方式"] == "线下"
        assert labels["学分"] == "Ⅰ类 10 分"
        assert all(clear for label, _, clear in cells if label), cells  # no label is drawn over its value


def test_a_phone_form_table_names_each_box(projects_app, inst_a, complete):  # noqa: F811
    """执行情况反馈 第2页 授课情况 on a phone: each box of a lecturer's row says what it is, and the row's checkbox
    says 删除此行; the empty rows for more lecturers say the same."""
    from tests.stack.browser import PHONE, served_page

    _, rid = complete(*inst_a)
    c = login_client(projects_app.test_client(), inst_a[1])
    url = f"/projects/reports/{rid}/pages/2"
    with served_page(c.get(url).get_data(as_text=True), url, _no_post, device=PHONE, static_from=c) as page:
        first = _cells(page, 0)
        assert [(label.rstrip(" *"), value) for label, value, _ in first] == [
            ("姓名", "张教授"), ("职称", "主任医师"), ("单位", "西安交通大学第一附属医院"),
            ("授课题目", "心衰诊治新进展"), ("学时", "3"), ("删除此行", "☐")]
        assert all(label.endswith("*") for label, _, _ in first[:5])  # 必填, as the desk's header says
        assert all(clear for _, _, clear in first), first
        blank = _cells(page, page.locator("table.responsive tbody tr").count() - 1)
        assert [label.rstrip(" *") for label, _, _ in blank] == ["姓名", "职称", "单位", "授课题目", "学时", "删除此行"]


def test_another_service_s_list_too(checkin_app, databases):
    """checkin's 刷卡周期 on a phone: its two times and its "0" say 开始时间, 结束时间 and 签到/签退人数 (the same
    script and stylesheet, from checkin's own static folder)."""
    from tests.checkin.test_windows_support import client_for, make_activity
    from tests.stack.browser import PHONE, served_page

    aid, _ = make_activity(databases["checkin"])
    c = client_for(checkin_app, "inst_a")
    url = f"/checkin/activities/{aid}/windows"
    with served_page(c.get(url).get_data(as_text=True), url, _no_post, device=PHONE, static_from=c) as page:
        cells = _cells(page)
        labels = {label: value for label, value, _ in cells}
        assert labels["开始时间"] == "2026-12-10 08:30" and labels["结束时间"] == "2026-12-10 12:00"
        assert labels["签到/签退人数"] == "0"
        assert all(clear for label, _, clear in cells if label), cells


RULES_PAGE = """<!doctype html><html><head><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/projects/static/cme.css"><script src="/projects/static/table-labels.js" defer></script>
</head><body><table class="responsive">
<thead><tr><th rowspan="2">姓名</th><th colspan="2">第一天</th><th></th><th>备注</th></tr>
<tr><th>上午</th><th>下午</th></tr></thead>
<tbody><tr><td>张三</td><td>✓</td><td>✗</td><td><a href="#">修改</a></td><td data-label="说明">迟到</td></tr>
<tr><th>合计</th><td>1</td><td>0</td><td></td><td></td></tr>
<tr><td colspan="5">暂无更多</td></tr><tr><td colspan="2">跨两列</td><td colspan="3"></td></tr>
</tbody></table></body></html>"""


def test_the_labels_follow_the_header_s_shape(projects_app):
    """A grouped header names both levels, a row header is labelled too, a message across the row, a cell across
    differently labelled columns and a column without a header text stay unlabelled, a template's own label stays."""
    from tests.stack.browser import PHONE, served_page

    with served_page(RULES_PAGE, "/rules", _no_post, device=PHONE, static_from=projects_app.test_client()) as page:
        page.wait_for_load_state()
        rows = page.evaluate("""Array.from(document.querySelectorAll("tbody tr"))
            .map(tr => Array.from(tr.cells).map(c => c.getAttribute("data-label")))""")
    assert rows == [["姓名", "第一天 上午", "第一天 下午", None, "说明"],
                    ["姓名", "第一天 上午", "第一天 下午", None, "备注"], [None], [None, None]]


def test_the_desk_keeps_its_header_row_and_draws_no_labels(projects_app, inst_a, complete):  # noqa: F811
    from tests.stack.browser import DESK, served_page

    _, rid = complete(*inst_a)
    c = login_client(projects_app.test_client(), inst_a[1])
    url = f"/projects/reports/{rid}/pages/2"
    with served_page(c.get(url).get_data(as_text=True), url, _no_post, device=DESK, static_from=c) as page:
        assert page.locator("table.responsive thead").is_visible()
        assert [label for label, _, _ in _cells(page)] == [""] * 6


def test_the_phone_menu_is_one_line_until_opened(projects_app, inst_a, make_project):  # noqa: F811
    """An office's seven menu links took about 300 px of a 740 px phone above every page. Folded, the menu is one
    菜单 line naming the page's own item; opened, it shows all seven; the desk shows them as before, unfolded."""
    from tests.stack.browser import DESK, PHONE, served_page

    make_project(inst_a[0])
    c = login_client(projects_app.test_client(), inst_a[1])
    html = c.get("/projects/filings").get_data(as_text=True)
    links = 'nav[aria-label="主菜单"] a'
    with served_page(html, "/projects/filings", _no_post, device=PHONE, static_from=c) as page:
        menu = page.locator('nav[aria-label="主菜单"]')
        assert menu.bounding_box()["height"] <= 48  # 208 px unfolded
        assert page.locator("header.top").bounding_box()["height"] <= 140  # brand, name with 退出, 菜单
        assert page.locator(links).count() == 7
        assert not any(page.locator(links).nth(i).is_visible() for i in range(7))
        fold = menu.get_by_text("菜单", exact=False).first
        assert fold.is_visible() and "项目举办前登记" in menu.inner_text()
        assert page.locator("h1").bounding_box()["y"] < 260  # the page's own title is in sight
        fold.click()
        shown = [page.locator(links).nth(i) for i in range(7)]
        assert all(link.is_visible() for link in shown)
        assert [link.inner_text() for link in shown][:2] == ["省级项目申报 · 项目举办前登记",
                                                             "省级项目申报 · 执行情况反馈"]
        assert all(link.bounding_box()["height"] >= 32 for link in shown)  # a finger's target, one link a line
    # the desk: the links as before the fold, in the same place (the page without the fold's line is the before)
    boxes = []
    for markup in (html, re.sub(r'<details class="menu-fold">.*?</details>', "", html, flags=re.S)):
        with served_page(markup, "/projects/filings", _no_post, device=DESK, static_from=c) as page:
            assert all(page.locator(links).nth(i).is_visible() for i in range(7))
            assert not page.get_by_text("菜单", exact=True).is_visible()
            boxes.append([page.locator(links).nth(i).bounding_box() for i in range(7)])
    assert "menu-fold" in html and boxes[0] == boxes[1]
