"""学分管理's desk pages on a 360 px phone (Chromium, the suite's cme.css and table-labels.js): 考勤分析's 选择 box is
the page's main action, so a tap on its cell's 选择 label or on the 刷卡周期 name ticks it, the box is a finger's size,
and the windows' table with its date-time boxes stays inside its card; the rule's choices are a finger's target too."""

from __future__ import annotations

from typing import Any

from tests.checkin.test_windows_support import client_for
from tests.credits.test_activation import cdb, granted  # noqa: F401 - fixtures
from tests.credits.test_awards import OFFERING, seeded  # noqa: F401 - fixtures


def _no_post(route: Any) -> None:
    raise AssertionError(f"nothing is sent in this test: {route.request.url}")


def _box(page: Any, selector: str) -> dict[str, float]:
    return page.locator(selector).first.bounding_box()


def test_analysis_on_a_phone_a_tap_on_the_row_s_label_ticks_the_window(credits_app, seeded):  # noqa: F811
    from tests.stack.browser import PHONE, served_page

    c = client_for(credits_app, "inst_a")
    url = f"/credits/awards/{OFFERING}/analysis"
    with served_page(c.get(url).get_data(as_text=True), url, _no_post, device=PHONE, static_from=c) as page:
        page.wait_for_load_state()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        card = page.locator(".card", has=page.locator("form table.responsive")).bounding_box()
        table = _box(page, "form table.responsive")
        assert table["x"] + table["width"] <= card["x"] + card["width"], (table, card)
        for i in range(page.locator('input[type="datetime-local"]').count()):
            when = page.locator('input[type="datetime-local"]').nth(i).bounding_box()
            assert when["x"] + when["width"] <= card["x"] + card["width"] - 8, (when, card)

        box = page.locator("#w-1")
        size = box.bounding_box()
        assert size["width"] >= 24 and size["height"] >= 24, size
        was = box.is_checked()
        # the cell's 选择 label, drawn left of the box: a thumb beside the box, not on it
        cell = page.locator("form table.responsive tbody td").first.bounding_box()
        assert size["x"] - cell["x"] > 60  # the label's column is to the left of the box
        page.touchscreen.tap(cell["x"] + 20, cell["y"] + cell["height"] / 2)
        assert box.is_checked() is not was
        # the 刷卡周期 name ticks it back
        name = page.locator('label[for="w-1"]').bounding_box()
        page.touchscreen.tap(name["x"] + name["width"] - 10, name["y"] + name["height"] / 2)
        assert box.is_checked() is was
        # the element at the cell's own centre is the label that ticks the box
        assert page.evaluate("""() => {
            const r = document.querySelector("form table.responsive tbody td").getBoundingClientRect();
            const el = document.elementFromPoint(r.left + 15, r.top + r.height / 2);
            return el.closest("label") !== null && el.closest("label").control === document.querySelector("#w-1"); }""")

        # 考勤规则: each choice (包含代签 too) a finger's target whose text ticks it
        for value in ("all", "at_least"):
            label = page.locator(f'fieldset label:has(input[name="rule_mode"][value="{value}"])')
            assert label.bounding_box()["height"] >= 32
        forced = page.locator('input[name="include_forced"]')
        forced.scroll_into_view_if_needed()
        label = page.locator('fieldset label:has(input[name="include_forced"])').bounding_box()
        assert label["height"] >= 32 and forced.bounding_box()["width"] >= 24
        before = forced.is_checked()
        page.touchscreen.tap(label["x"] + label["width"] - 30, label["y"] + label["height"] / 2)
        assert forced.is_checked() is not before
        pairs = page.locator('fieldset label:has(input[name="pairs_required"])').bounding_box()
        assert pairs["height"] >= 32


def test_the_menu_names_the_page_as_its_heading_does(credits_app, seeded):  # noqa: F811
    """The committee's menu said 授分情况 over a page headed 项目参加者授分 (the guide's 学分管理 → 项目参加者授分):
    the item marked as the page's own says what the heading says, for the committee as for an office."""
    import re

    for who in ("reviewer", "inst_a"):
        html = client_for(credits_app, who).get("/credits/awards").get_data(as_text=True)
        current = re.findall(r'<a href="/credits/awards" aria-current="page">([^<]*)</a>', html)
        heading = re.findall(r"<h1>([^<]*)</h1>", html)
        assert heading == ["项目参加者授分"] and len(current) == 1, (who, current)
        assert current[0].split(" · ")[-1] == heading[0], (who, current)
