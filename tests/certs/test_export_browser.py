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
