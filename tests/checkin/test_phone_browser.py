"""The scan pages in Chromium as a phone on a hall's slow network shows them."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from tests.checkin.test_phone import (  # noqa: F401 - fixtures
    checkins,
    env,
    fake_base,
    hall,
    identity,
    nonce_of,
    open_code,
    phone,
    submit,
    token_for,
)

BACK_FROM_CACHE = "() => window.dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))"


def test_a_form_brought_back_by_the_back_button_can_be_sent_again(checkin_app, phone, hall):  # noqa: F811
    """The submit took long on the hall's network (here: an answer that leaves the page where it is); she pressed
    back and forward, and the phone's back/forward cache brought the form back as she had left it: its button
    disabled and saying 正在提交… for good, so it could not be sent again. Now the button says 正在提交… while
    the form is on its way and is 提交签到 again on a page the cache brings back; sent again, she is checked
    in once."""
    from tests.stack.browser import PHONE, served_page

    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    posts: list[str] = []

    def answer(route: Any) -> None:
        posts.append(route.request.post_data or "")
        if len(posts) == 1:
            route.fulfill(status=204)  # nothing came back: the page stays
            return
        resp = phone.post("/checkin/scan", data=dict(parse_qsl(posts[-1])))
        route.fulfill(status=resp.status_code, content_type="text/html; charset=utf-8", body=resp.data)

    who = identity(1)
    with served_page(page.get_data(as_text=True), "/checkin/scan", answer, device=PHONE,
                     static_from=checkin_app.test_client()) as p:
        for name in ("name", "id_number", "mobile", "unit"):
            p.fill(f"#f-{name}", who[name])
        p.select_option("#f-title", who["title"])
        button = p.locator("form button[type=submit]")
        button.click()
        p.wait_for_function("() => document.querySelector('form button[type=submit]').disabled")
        assert button.inner_text() == "正在提交…" and len(posts) == 1
        p.evaluate(BACK_FROM_CACHE)
        assert button.inner_text() == "提交签到" and button.is_enabled()
        assert p.input_value("#f-id_number") == who["id_number"]
        button.click()
        p.wait_for_selector("text=已签到")
    assert len(posts) == 2 and f"nonce={nonce_of(page)}" in posts[1]
    assert len(checkins()) == 1


def test_the_one_tap_page_too(checkin_app, phone, hall):  # noqa: F811
    """The later scans' 确认签到 page had the same stuck button after the back button."""
    from tests.stack.browser import PHONE, served_page

    assert submit(phone, nonce_of(open_code(phone, token_for(hall["a"], hall["w1"]))), identity(1)).status_code == 200
    tap = open_code(phone, token_for(hall["a"], hall["w2"]))
    posts: list[str] = []
    with served_page(tap.get_data(as_text=True), "/checkin/scan", lambda route: posts.append("x") or
                     route.fulfill(status=204), device=PHONE, static_from=checkin_app.test_client()) as p:
        button = p.locator("form button[type=submit]")
        assert button.inner_text() == "确认签退"
        button.click()
        p.wait_for_function("() => document.querySelector('form button[type=submit]').disabled")
        assert button.inner_text() == "正在提交…"
        p.evaluate(BACK_FROM_CACHE)
        assert button.inner_text() == "确认签退" and button.is_enabled()
        button.click()
        p.wait_for_function("() => document.querySelector('form button[type=submit]').disabled")
    assert len(posts) == 2
