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


FITS = "document.documentElement.scrollWidth"


def _height(page: Any, selector: str) -> list[float]:
    loc = page.locator(selector)
    return [loc.nth(i).bounding_box()["height"] for i in range(loc.count())]


def test_the_desk_pages_next_steps_and_ticks_are_a_finger_s_size_on_a_phone(credits_app, granted):  # noqa: F811
    """授分情况's 授分 · 授分名单, the method page's 考勤分析 · 有效人员明细 · 授分名单 · 返回 and 授分名单's 授分 ·
    导出 · 返回 were 21 px lines of text; 手工录入's 我已知晓 box was 13 px and only the box itself ticked it."""
    from tests.stack.browser import PHONE, served_page

    c = granted
    to_list = f'a[href="/credits/awards/{OFFERING}/list"]'
    for url, links, least in (("/credits/awards", "table.responsive tbody td a", 2),
                              (f"/credits/awards/{OFFERING}", to_list, 1),
                              (f"/credits/awards/{OFFERING}/list", 'a[href="/credits/awards"]:text-is("返回")', 1),
                              (f"/credits/awards/{OFFERING}/attendees", to_list, 1)):
        with served_page(c.get(url).get_data(as_text=True), url, _no_post, device=PHONE, static_from=c) as page:
            page.wait_for_load_state()
            assert page.evaluate(FITS) <= 360, url
            heights = _height(page, f"main {links}")
            assert len(heights) >= least and min(heights) >= 32, (url, heights)
            if url != "/credits/awards":  # the way back, 项目参加者授分 › …, is a target too
                assert _height(page, 'main p.muted a[href="/credits/awards"]')[0] >= 32, url
            if url.endswith("/attendees"):  # 未达到规则的签到人员 opens with a tap on its line
                assert _height(page, "details.short > summary")[0] >= 32

    desk = client_for(credits_app, "reviewer")  # 年度统计's drill-downs: the way back to the year and 查看登记
    for url in ("/credits/statistics/cancelled?year=2026", "/credits/statistics/unseen?year=2026"):
        with served_page(desk.get(url).get_data(as_text=True), url, _no_post, device=PHONE, static_from=desk) as page:
            page.wait_for_load_state()
            assert page.evaluate(FITS) <= 360, url
            assert min(_height(page, 'main a[href^="/credits/statistics?year="], main td a')) >= 32, url

    url = f"/credits/awards/{OFFERING}/manual"
    with served_page(c.get(url).get_data(as_text=True), url, _no_post, device=PHONE, static_from=c) as page:
        page.wait_for_load_state()
        assert page.evaluate(FITS) <= 360
        box = page.locator('input[name="confirm_invalid"]')
        box.scroll_into_view_if_needed()
        assert box.bounding_box()["width"] >= 24
        label = page.locator('label:has(input[name="confirm_invalid"])').bounding_box()
        assert label["height"] >= 32
        page.touchscreen.tap(label["x"] + label["width"] - 20, label["y"] + label["height"] / 2)
        assert box.is_checked()


def test_the_account_desk_s_history_is_labelled_on_a_phone(credits_app, databases):
    """学员账号's 操作记录 had five columns in a plain table: at 360 px each value now says 时间, 操作人, 操作 …"""
    from services.common import pii
    from tests.checkin.test_windows_support import REVIEWER, csrf_for
    from tests.credits.conftest import new_account
    from tests.stack.browser import PHONE, served_page

    id_number, old, new = "11010519491231002X", "13912345678", "13687654321"
    new_account(databases, "曾小明", id_number, "Neues2026pw", old)
    desk = client_for(credits_app, "reviewer")
    token = csrf_for(REVIEWER)
    done = desk.post("/credits/accounts/mobile", follow_redirects=True,
                     data={"csrf_token": token, "trainee_key": pii.id_hash(id_number), "mobile": new,
                           "reason": "本人持身份证申请，原号码已停用"})
    assert done.status_code == 200 and "已更新登记的手机号码" in done.get_data(as_text=True)
    with served_page(done.get_data(as_text=True), "/credits/accounts", _no_post, device=PHONE,
                     static_from=desk) as page:
        page.wait_for_load_state()
        assert page.evaluate(FITS) <= 360
        history = page.locator(".card", has_text="操作记录").locator("table")
        assert history.evaluate("t => t.classList.contains('responsive')")
        labels = history.locator("tbody td").evaluate_all("tds => tds.map(td => td.getAttribute('data-label'))")
        assert labels == ["时间", "操作人", "操作", "变化", "原因"]
        cells = history.locator("tbody td").evaluate_all(
            "tds => tds.map(td => getComputedStyle(td, '::before').content.replace(/^\"|\"$/g, ''))")
        assert cells == labels
