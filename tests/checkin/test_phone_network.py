"""The scan pages in Chromium on a hall's flaky network: offline before and during the submit, an answer lost on
its way back, a reload while the answer is on its way, a gateway's 502 and the retry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl

import pytest

from tests.checkin.test_phone import (  # noqa: F401 - fixtures
    checkins,
    env,
    fake_base,
    hall,
    identity,
    nonce_of,
    open_code,
    phone,
    token_for,
)


def _fill(p: Any, who: dict[str, str]) -> None:
    for name in ("name", "id_number", "mobile", "unit"):
        p.fill(f"#f-{name}", who[name])
    p.select_option("#f-title", who["title"])


class Hall:
    """The hall's network between the phone and the service: POSTs go to the test client unless it is down
    (Playwright's set_offline does not stop routed requests: a down network aborts them here). With
    `first_answer`, the first POST is stored by the service but that is what comes back instead of its answer
    (the network dropped on the way back, the gateway's 502)."""

    def __init__(self, client: Any, first_answer: Callable[[Any], None] | None = None):
        self.phone, self.down, self.posts, self.first_answer = client, False, [], first_answer

    def __call__(self, route: Any) -> None:
        if self.down:
            route.abort("internetdisconnected")
            return
        self.posts.append(route.request.post_data or "")
        resp = self.phone.post("/checkin/scan", data=dict(parse_qsl(self.posts[-1])))
        if self.first_answer is not None and len(self.posts) == 1:
            self.first_answer(route)
            return
        route.fulfill(status=resp.status_code, content_type="text/html; charset=utf-8", body=resp.data)

    def set(self, page: Any, *, online: bool) -> None:
        self.down = not online
        page.context.set_offline(not online)


class ScanForm:
    """The morning window's scan form as the test client got it (its nonce), shown in a Chromium phone whose
    POSTs go through a Hall."""

    def __init__(self, checkin_app: Any, page: Any):
        self.app, self.html, self.nonce = checkin_app, page.get_data(as_text=True), nonce_of(page)

    @contextmanager
    def shown(self, net: Hall) -> Iterator[Any]:
        from tests.stack.browser import PHONE, served_page

        with served_page(self.html, "/checkin/scan", net, device=PHONE, static_from=self.app.test_client()) as p:
            yield p


@pytest.fixture
def form(checkin_app, phone, hall) -> ScanForm:  # noqa: F811
    return ScanForm(checkin_app, open_code(phone, token_for(hall["a"], hall["w1"])))


def test_offline_before_the_submit_keeps_the_form_and_one_tap_online_checks_in(phone, form):  # noqa: F811
    """The form loaded, she typed, the phone lost the network, she tapped 提交签到: Chromium's own error page (a
    dinosaur, ERR_INTERNET_DISCONNECTED) and what she typed was gone. Now the page stays, says the network is
    down and nothing was sent, keeps what she typed; back online, one tap checks her in once."""
    net = Hall(phone)
    who = identity(1)
    with form.shown(net) as p:
        _fill(p, who)
        assert not p.is_visible("text=网络已断开")
        net.set(p, online=False)
        p.wait_for_selector("text=网络已断开")  # said as soon as the phone knows, before she taps
        button = p.locator("form button[type=submit]")
        button.click()
        p.wait_for_timeout(300)
        assert p.url == "http://cme.test/checkin/scan"
        assert p.is_visible("text=网络已断开，尚未提交")
        assert p.input_value("#f-id_number") == who["id_number"] and p.input_value("#f-title") == who["title"]
        assert button.inner_text() == "提交签到" and button.is_enabled()
        net.set(p, online=True)
        p.wait_for_selector("text=网络已恢复")
        assert not p.is_visible("text=网络已断开")
        button.click()
        p.wait_for_selector("h1:has-text('已签到')")
        assert "签到时间" in p.inner_text("body")
    assert len(net.posts) == 1 and f"nonce={form.nonce}" in net.posts[0]
    assert len(checkins()) == 1


def test_network_lost_during_the_submit_keeps_the_form_and_says_so(phone, form):  # noqa: F811
    """Online at the tap, the network dropped while the form was on its way: that was Chromium's own error page
    (a dinosaur, in English) and what she typed was gone. Now the page stays with the form as typed and says
    网络中断，请重新提交; back online, one tap checks her in once."""
    net = Hall(phone)
    who = identity(1)
    with form.shown(net) as p:
        _fill(p, who)
        net.down = True  # the phone still believes it is online: the tap goes out and is lost
        button = p.locator("form button[type=submit]")
        button.click()
        p.wait_for_selector("text=网络中断，请重新提交")
        assert p.url == "http://cme.test/checkin/scan"
        assert p.input_value("#f-id_number") == who["id_number"] and p.input_value("#f-title") == who["title"]
        assert button.inner_text() == "提交签到" and button.is_enabled()
        assert checkins() == []
        net.down = False
        button.click()
        p.wait_for_selector("h1:has-text('已签到')")
        assert "签到时间" in p.inner_text("body") and not p.is_visible("text=网络中断")
    assert len(net.posts) == 1 and f"nonce={form.nonce}" in net.posts[0]
    assert len(checkins()) == 1


def test_an_answer_lost_on_its_way_back_then_the_retry_says_already_checked_in(phone, form):  # noqa: F811
    """The form reached the service and was stored, but the network dropped before its answer came back: the page
    says 网络中断，请重新提交; the retry (the same nonce) says 已签到 with the time, once."""
    net = Hall(phone, first_answer=lambda route: route.abort("internetdisconnected"))
    with form.shown(net) as p:
        _fill(p, identity(1))
        p.locator("form button[type=submit]").click()
        p.wait_for_selector("text=网络中断，请重新提交")
        assert len(checkins()) == 1
        p.locator("form button[type=submit]").click()
        p.wait_for_selector("h1:has-text('已签到')")
        body = p.inner_text("body")
    assert len(net.posts) == 2 and len(checkins()) == 1
    assert "签到时间" in body and "您此前已在本时段签到" in body


@contextmanager
def proxied(client: Any, first: str = "/checkin/scan") -> Iterator[tuple[Any, list[Any]]]:
    """A Chromium phone whose every request of http://cme.test goes to the test client (its cookies are the
    scan's): a reload reloads the real page. The first POST is stored by the service but its answer does not
    come back (held)."""
    from playwright.sync_api import sync_playwright

    from tests.stack.browser import CHROMIUM, CHROMIUM_ARGS, PHONE

    held: list[Any] = []

    def answer(route: Any) -> None:
        request = route.request
        local = request.url.removeprefix("http://cme.test")
        if request.method == "POST":
            resp = client.post(local, data=dict(parse_qsl(request.post_data or "")))
            if hold_next:
                hold_next.pop()
                held.append(route)  # stored; no answer comes back (204: the page stays where it is)
                route.fulfill(status=204)
                return
        else:
            resp = client.get(local)
        route.fulfill(status=resp.status_code, content_type=resp.content_type, body=resp.data,
                      headers={k: v for k, v in resp.headers if k.lower() == "location"})

    hold_next: list[bool] = [True]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(**PHONE)
            page.route("http://cme.test/**", answer)
            page.goto(f"http://cme.test{first}")
            yield page, held
        finally:
            browser.close()


def test_a_reload_while_the_form_is_on_its_way_says_checked_in(phone, form):  # noqa: F811
    """The form was stored but its answer was slow to come; she reloaded. The reloaded page was 确认签到 (her
    WeChat account now bound) asking her to confirm what was done. Now it says 已签到 with the time; and sent
    again (a second tab's form, the same nonce) it is still one check-in."""
    with proxied(phone) as (p, held):  # the code opened (form); this phone loads /checkin/scan itself
        _fill(p, identity(1))
        p.locator("form button[type=submit]").click()
        p.wait_for_function("() => document.querySelector('form button[type=submit]').disabled")
        assert p.locator("form button[type=submit]").inner_text() == "正在提交…"
        for _ in range(100):  # the button is disabled as the POST leaves: its handler may not have stored it yet
            if held:
                break
            p.wait_for_timeout(50)  # pumps the route handler
        assert len(held) == 1 and len(checkins()) == 1
        p.reload()
        p.wait_for_selector("h1:has-text('已签到')")
        body = p.inner_text("body")
        assert "签到时间" in body and "确认签到" not in body and "张一明" in body
    assert len(checkins()) == 1


def test_a_gateway_502_on_the_first_try_then_the_retry_is_one_checkin(phone, form):  # noqa: F811
    """The form reached the service and was stored, but the gateway answered 502 (its upstream timed out): the page
    keeps the form and says 网络中断，请重新提交 (it was the gateway's bare 502 page); the retry sends the same form
    (the same nonce) again: one check-in, and the page says 已签到 with the time and that she had already checked
    in."""
    net = Hall(phone, first_answer=lambda route: route.fulfill(status=502, content_type="text/plain; charset=utf-8",
                                                               body="502 Bad Gateway"))
    with form.shown(net) as p:
        _fill(p, identity(1))
        p.locator("form button[type=submit]").click()
        p.wait_for_selector("text=网络中断，请重新提交")
        assert not p.is_visible("text=502 Bad Gateway") and p.input_value("#f-name") == identity(1)["name"]
        p.locator("form button[type=submit]").click()
        p.wait_for_selector("h1:has-text('已签到')")
        body = p.inner_text("body")
    assert len(net.posts) == 2 and len(checkins()) == 1
    assert "签到时间" in body and "您此前已在本时段签到" in body


def test_an_answer_with_errors_takes_the_page_and_its_form_is_sent_again(phone, form):  # noqa: F811
    """A form sent by the page's script: the service's 422 (a mobile it refuses) takes the page's place as a
    navigation would, with the field marked; corrected there, it is sent once more and checks in once."""
    net = Hall(phone)
    with form.shown(net) as p:
        _fill(p, identity(1, mobile="1391234"))
        p.locator("form button[type=submit]").click()
        p.wait_for_selector("#e-mobile")
        assert "请输入 11 位中国大陆手机号码" in p.inner_text("#e-mobile") and p.title().startswith("填写签到信息")
        assert p.input_value("#f-name") == identity(1)["name"] and checkins() == []
        p.fill("#f-mobile", identity(1)["mobile"])
        button = p.locator("form button[type=submit]")
        assert button.is_enabled() and button.inner_text() == "提交签到"
        button.click()
        p.wait_for_selector("h1:has-text('已签到')")
    assert len(net.posts) == 2 and len(checkins()) == 1
