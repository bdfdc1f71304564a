"""Every phone page's typing boxes: 16 px text at least (a phone zooms the page in on smaller) and a finger's
height, within 360 px."""

from __future__ import annotations

import pytest

from tests.checkin.test_phone import env, fake_base, hall, open_code, phone, token_for  # noqa: F401 - fixtures

BOXES = ("main input:not([type=hidden]):not([type=checkbox]):not([type=radio]), main select, main textarea, "
         "main button")
MEASURE = """() => [...document.querySelectorAll('""" + BOXES + """')].map(e => ({
    name: e.name || e.tagName + ':' + e.textContent.trim(),
    font: parseFloat(getComputedStyle(e).fontSize), h: e.getBoundingClientRect().height,
    w: e.getBoundingClientRect().width}))"""


def measured(html: str, path: str, client) -> tuple[list[dict], int]:
    from tests.stack.browser import PHONE, served_page

    with served_page(html, path, lambda route: route.fulfill(status=204), device=PHONE, static_from=client) as page:
        return page.evaluate(MEASURE), page.evaluate("document.documentElement.scrollWidth")


def fits(boxes: list[dict], wide: int) -> None:
    assert boxes and wide <= 360
    for box in boxes:
        assert box["font"] >= 16 and box["h"] >= 40 and box["w"] <= 360, box


@pytest.mark.parametrize("path", ["/credits/login", "/credits/password/forgot", "/certs/verify"])
def test_trainee_pages(credits_app, certs_app, path):
    client = (certs_app if path.startswith("/certs") else credits_app).test_client()
    fits(*measured(client.get(path).get_data(as_text=True), path, client))


def test_scan_form(checkin_app, phone, hall):  # noqa: F811
    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    boxes, wide = measured(page.get_data(as_text=True), "/checkin/scan", checkin_app.test_client())
    assert {b["name"] for b in boxes} >= {"name", "id_number", "mobile", "title", "unit"}
    fits(boxes, wide)
