"""学分证书 in Chromium as her phone on a slow network shows it: 导出学分证书 says it is on its way."""

from __future__ import annotations

from typing import Any

from services.common import clock
from tests.certs.conftest import PRINTABLE_DAY, TRAINEE_1, at
from tests.conftest import login_client

BUSY = "() => document.querySelector('form[action=\"/certs/exports\"] button[type=submit]').disabled"


def test_export_says_it_is_on_its_way_and_comes_back_from_the_back_button(certs_app, awards):
    """She ticked her certificate and pressed 导出学分证书 on a slow network: for seconds nothing on the page
    changed, so she pressed again (or thought it broken). Now the button says 正在提交导出… while it is on its
    way and cannot be pressed twice; a page the back button brings back from the cache can be sent again."""
    from tests.stack.browser import PHONE, served_page

    clock.set_now(at(PRINTABLE_DAY))
    c = login_client(certs_app.test_client(), TRAINEE_1)
    html = c.get("/certs/my").get_data(as_text=True)
    posts: list[str] = []

    def answer(route: Any) -> None:
        posts.append(route.request.post_data or "")
        route.fulfill(status=204)  # nothing came back yet: the page stays

    with served_page(html, "/certs/my", answer, device=PHONE, static_from=c) as p:
        p.locator('input[name="award_id"][value="1"]').check()
        button = p.locator('form[action="/certs/exports"] button[type=submit]')
        assert button.inner_text() == "导出学分证书"
        button.click()
        p.wait_for_function(BUSY)
        assert button.inner_text() == "正在提交导出…"
        p.evaluate("() => window.dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))")
        assert button.inner_text() == "导出学分证书" and button.is_enabled()
    assert len(posts) == 1 and "award_id=1" in posts[0]


def test_her_recent_exports_are_a_finger_s_target(certs_app, awards, queued):
    """最近一周的导出: each export's link was the text's 21 px tall on her phone, too small for a finger between
    two lines; now it is about 44 px tall like the page's other links (WCAG 2.5.5)."""
    from tests.checkin.test_windows_support import csrf_for
    from tests.stack.browser import PHONE, served_page

    clock.set_now(at(PRINTABLE_DAY))
    c = login_client(certs_app.test_client(), TRAINEE_1)
    assert c.post("/certs/exports", data={"csrf_token": csrf_for(TRAINEE_1), "award_id": ["1"]}).status_code == 303
    html = c.get("/certs/my").get_data(as_text=True)
    with served_page(html, "/certs/my", lambda route: route.fulfill(status=204), device=PHONE, static_from=c) as p:
        links = p.locator("#recent-exports li a")
        assert links.count() == 1 and "导出的 1 张" in links.first.inner_text()
        box = links.first.bounding_box()
        assert box["height"] >= 40 and p.evaluate("document.documentElement.scrollWidth") <= 360


def test_the_progress_page_rides_out_a_dropped_network(certs_app, awards, queued):
    """The export's page reloaded itself every 2 s with a <meta> refresh: on a phone whose network dropped for a
    moment the browser's own error page took its place and never tried again, and she took the export for failed.
    Now the page asks for itself, says the network is down while it is, keeps trying, and shows the download link
    once the export is done."""
    from tests.certs.test_certificates import run_jobs
    from tests.checkin.test_windows_support import csrf_for
    from tests.stack.browser import PHONE, served_page

    clock.set_now(at(PRINTABLE_DAY))
    c = login_client(certs_app.test_client(), TRAINEE_1)
    r = c.post("/certs/exports", data={"csrf_token": csrf_for(TRAINEE_1), "award_id": ["1"]})
    url = r.headers["Location"]
    waiting = c.get(url).get_data(as_text=True)
    assert "排队中" in waiting
    assert run_jobs(queued) == ["done"]
    done = c.get(url).get_data(as_text=True)
    assert "下载学分证书" in done

    with served_page(waiting, url, lambda route: route.fulfill(status=204), device=PHONE, static_from=c) as p:
        p.route(f"http://cme.test{url}", lambda route: route.abort("internetdisconnected"))
        p.wait_for_selector("#offline", state="visible", timeout=8000)
        assert "网络连接中断" in p.inner_text("#offline") and "排队中" in p.inner_text("#export")
        assert p.url.endswith(url)  # still her page, not the browser's error page
        p.unroute(f"http://cme.test{url}")
        p.route(f"http://cme.test{url}", lambda route: route.fulfill(
            status=200, content_type="text/html; charset=utf-8", body=done))
        p.wait_for_selector("text=下载学分证书（PDF）", timeout=8000)
        assert p.locator("#offline").is_hidden() and p.locator("#export[data-refresh]").count() == 0


def test_a_long_number_said_back_stays_inside_her_phone(certs_app):
    """证书验证 says back what was typed, up to 200 characters: one long run of letters (a link pasted twice, a
    finger on a key) widened the page to 412-578 px on a 360 px phone, the box and 验证 off the screen. It wraps."""
    from tests.stack.browser import PHONE, served_page

    anon = certs_app.test_client()
    for path in ("/certs/verify/" + "A" * 200, "/certs/verify?number=" + "W" * 199):
        page = anon.get(path, follow_redirects=True)  # the form's ?number= goes to the number's address
        html = page.get_data(as_text=True)
        assert page.status_code == 404 and "格式不正确" in html
        with served_page(html, "/certs/verify", lambda route: route.fulfill(status=204), device=PHONE,
                         static_from=anon) as p:
            assert p.evaluate("document.documentElement.scrollWidth") <= 360, path
            assert p.locator("#result").bounding_box()["width"] <= 360


def test_a_long_number_said_back_stays_inside_the_committee_s_lookup(certs_app):
    """证书查询 said a 200-character number back on one line: the committee's page was 2,797 px wide at 1,280."""
    from tests.certs.conftest import REVIEWER
    from tests.stack.browser import DESK, served_page

    c = login_client(certs_app.test_client(), REVIEWER)
    page = c.get("/certs/lookup?number=" + "W" * 200)
    html = page.get_data(as_text=True)
    assert page.status_code == 404 and "未找到证书编号" in html
    with served_page(html, "/certs/lookup", lambda route: route.fulfill(status=204), device=DESK, static_from=c) as p:
        assert p.evaluate("document.documentElement.scrollWidth") <= 1280
