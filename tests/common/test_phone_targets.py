"""A finger's targets on a 360 px phone (cme.css): QA measured the front door's 密码找回 58×21, the pager's 上一页,
a list's 查看登记 and a bare "7" (8×21) in a table cell, and 13×13 checkboxes (删除此行). On a phone each link gets
a box of at least 40 px, a checkbox 22 px, and a finger anywhere in that box presses it; the desk keeps them as
they were. A narrow table marked compact keeps its rows on a phone instead of one card per row."""

from __future__ import annotations

from typing import Any

# the real pager macro and a table.responsive the way the suite writes them, with the suite's stylesheet and script
PAGE = """<!doctype html><html><head><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/projects/static/cme.css"><script src="/projects/static/table-labels.js" defer></script>
</head><body><main><div class="card"><table class="responsive" id="list">
<thead><tr><th>项目名称</th><th>授分人次</th><th>操作</th><th>删除</th></tr></thead>
<tbody><tr><td>基层心血管病诊治进展</td><td><a id="seven" href="#n">7</a></td>
<td><a id="view" href="#v">查看登记</a> · <a id="edit" href="#e">修改</a></td>
<td><label><input type="checkbox" id="drop" name="drop"> 删除此行</label></td></tr></tbody></table>
{{ pager(2, 3, {"q": "心血管"}) }}
<p><label><input type="radio" name="kind" id="kind" value="a"> 申办机构</label></p>
<table class="responsive compact" id="months"><thead><tr><th>月份</th><th>授分人次</th><th>学分合计</th></tr></thead>
<tbody>{% for m in range(1, 13) %}<tr><td><a href="#m">2026年{{ m }}月</a></td><td><a href="#m">{{ m * 3 }}</a></td>
<td><a href="#m">{{ m * 7.5 }}</a></td></tr>{% endfor %}</tbody></table></div></main></body></html>"""

# the box of the element and whether a tap near each of its edges lands on it (a finger is not a pixel)
TARGET = """(el) => {
  const r = el.getBoundingClientRect();
  const at = (x, y) => { const hit = document.elementFromPoint(x, y); return hit === el || el.contains(hit); };
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  const line = Math.max(...Array.from(el.getClientRects()).map(q => q.height));  /* one line's piece of a link */
  return {w: r.width, h: r.height, line: line,
          taps: [at(x, r.top + 2), at(x, r.bottom - 2), at(r.left + 2, y), at(r.right - 2, y)]};
}"""


def _no_post(route: Any) -> None:
    raise AssertionError(f"nothing is sent in this test: {route.request.url}")


def _page(app: Any) -> str:
    with app.test_request_context():
        return app.jinja_env.from_string('{% from "_macros.html" import pager %}' + PAGE).render()


def _target(page: Any, selector: str) -> dict[str, Any]:
    page.wait_for_load_state()
    return page.locator(selector).first.evaluate(TARGET)


LINKS = ["#seven", "#view", "#edit", '.pager a:text("上一页")', '.pager a:text("下一页")']


def test_a_phone_s_links_and_boxes_are_a_finger_s_size(projects_app):
    from tests.stack.browser import PHONE, served_page

    with served_page(_page(projects_app), "/list", _no_post, device=PHONE, static_from=projects_app.test_client()) \
            as page:
        for selector in LINKS:
            t = _target(page, selector)
            assert t["h"] >= 40 and t["w"] >= 40 and all(t["taps"]), (selector, t)  # 7 was 8×21
        for selector in ("#drop", "#kind"):
            t = _target(page, selector)
            assert t["h"] >= 22 and t["w"] >= 22 and all(t["taps"]), (selector, t)  # 13×13
        # the labels still stand beside their values, the page no wider than the phone
        assert page.locator("#seven").evaluate("a => getComputedStyle(a.parentElement, '::before').content") \
            == '"授分人次"'
        assert page.evaluate("document.documentElement.scrollWidth") <= 360


def test_the_desk_keeps_its_links_and_boxes(projects_app):
    from tests.stack.browser import DESK, served_page

    with served_page(_page(projects_app), "/list", _no_post, device=DESK, static_from=projects_app.test_client()) \
            as page:
        for selector in LINKS:
            t = _target(page, selector)
            assert t["line"] < 30, (selector, t)  # one line of text, as before
        assert _target(page, "#drop")["h"] == 13 and _target(page, "#kind")["h"] == 13


def test_the_front_door_s_text_links(projects_app):
    """密码找回 and 证书验证 on the login page: 58×21 on a phone, now a finger's height; the desk as before."""
    from tests.stack.browser import DESK, PHONE, served_page

    c = projects_app.test_client()
    html = c.get("/projects/login").get_data(as_text=True)
    for device, tall in ((PHONE, True), (DESK, False)):
        with served_page(html, "/projects/login", _no_post, device=device, static_from=c) as page:
            for name in ("密码找回", "证书验证"):
                t = page.get_by_role("link", name=name).evaluate(TARGET)
                assert (t["h"] >= 40 and all(t["taps"])) if tall else t["line"] < 30, (name, device, t)
            assert page.evaluate("document.documentElement.scrollWidth") <= device["viewport"]["width"]


def test_a_compact_table_keeps_its_rows_on_a_phone(projects_app):
    """近 12 个月授予学分's three short columns: twelve rows under their header, not twelve cards of three lines."""
    from tests.stack.browser import PHONE, served_page

    with served_page(_page(projects_app), "/list", _no_post, device=PHONE, static_from=projects_app.test_client()) \
            as page:
        page.wait_for_load_state()
        assert page.locator("#months thead").is_visible()
        row = page.locator("#months tbody tr").first
        cells = [row.locator("td").nth(i).bounding_box() for i in range(3)]
        assert cells[0]["y"] == cells[1]["y"] == cells[2]["y"]  # side by side
        assert cells[0]["x"] < cells[1]["x"] < cells[2]["x"]
        assert row.locator("td").first.evaluate("td => getComputedStyle(td, '::before').content") == "none"
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        # the ordinary responsive table beside it is still cards with labels
        assert not page.locator("#list thead").is_visible()


# 年度统计's filter line as credits/statistics/year.html writes it
FILTERS = """<!doctype html><html><head><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/projects/static/cme.css"></head><body><main><div class="card">
<form class="filters" method="get" action="/credits/statistics">
<label>年度 <select name="year"><option>2026</option></select></label>
<label>申办机构 <input type="search" name="q" value="" maxlength="100" size="20"
placeholder="机构名称（现名）的一部分"></label>
<button type="submit">查询</button></form></div></main></body></html>"""

# the room for text inside the box against the width of its hint in the box's own font
HINT_FITS = """(el) => {
  const s = getComputedStyle(el), ctx = document.createElement("canvas").getContext("2d");
  ctx.font = s.fontSize + " " + s.fontFamily;
  const room = el.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
  return [room, ctx.measureText(el.placeholder).width];
}"""


def test_a_search_box_shows_its_whole_hint(projects_app):
    """年度统计's 申办机构 box read "机构名称（现名）的一…" at 360 px: its size="20" counts Latin letters, and the
    suite's box style left type=search out. The whole hint shows, on a phone and on the desk."""
    from tests.stack.browser import DESK, PHONE, served_page

    for device in (PHONE, DESK):
        with served_page(FILTERS, "/year", _no_post, device=device, static_from=projects_app.test_client()) as page:
            page.wait_for_load_state()
            room, hint = page.locator('input[type="search"]').evaluate(HINT_FITS)
            assert room >= hint, (device["viewport"], room, hint)
            # in the suite's box style, as large as the 年度 box beside it: unstyled it was 13 px text in a box
            # sized for 20 Latin letters, 171 px of room for a 160 px hint here and cut off on QA's phone
            sizes = [page.locator(box).evaluate("e => getComputedStyle(e).fontSize") for box in ("select", "input")]
            assert sizes[0] == sizes[1], sizes
            assert page.evaluate("document.documentElement.scrollWidth") <= device["viewport"]["width"]
