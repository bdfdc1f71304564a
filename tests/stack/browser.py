"""Headless Chromium for the stack tests: the pages as people click them, screenshots kept per run.

Launch with the system's Chromium (never `playwright install`); desks are 1280x800, phones 360x740 with an
ordinary Android Chrome (the stack sets CME_WECHAT_UA_REQUIRED=0)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .flows import last_code

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PHONE_UA = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/130.0.0.0 Mobile Safari/537.36")
DESK = {"viewport": {"width": 1280, "height": 800}, "locale": "zh-CN", "timezone_id": "Asia/Shanghai",
        "accept_downloads": True}
PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True, "user_agent": PHONE_UA,
         "locale": "zh-CN", "timezone_id": "Asia/Shanghai", "accept_downloads": True}
REPO = Path(__file__).resolve().parents[2]


@contextmanager
def served_page(html: str, path: str, on_post: Callable[[Any], None], *, device: dict[str, Any] | None = None,
                static_from: Any = None) -> Iterator[Any]:
    """A Chromium page showing `html` (a page the test client rendered) at http://cme.test<path>; every GET of
    that site answers the same page, every other request goes to on_post(route), which answers it or not.
    `device` (PHONE, DESK) sets the viewport; with `static_from` (a Flask test client) the page's stylesheets and
    scripts under /static/ come from that app, so the page looks as it does in the suite."""
    from playwright.sync_api import sync_playwright

    def answer(route: Any) -> None:
        request = route.request
        local = request.url.removeprefix("http://cme.test")
        if request.method == "GET" and static_from is not None and "/static/" in local:
            resp = static_from.get(local)
            route.fulfill(status=resp.status_code, content_type=resp.mimetype, body=resp.data)
        elif request.method == "GET":
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)
        else:
            on_post(route)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(**(device or {}))
            page.route("http://cme.test/**", answer)
            page.goto(f"http://cme.test{path}")
            yield page
        finally:
            browser.close()


def run_id() -> str:
    """The test run's id (tests/conftest.py names its databases cmet_<run>), else the time."""
    found = re.search(r"cmet_([0-9a-f]+)$", os.environ.get("DATABASE_URL", "").rstrip("/"))
    return found.group(1) if found else time.strftime("%Y%m%d-%H%M%S")


def output_dir(name: str) -> Path:
    """CME_TEST_OUTPUT if set, else <repo>/test-output/<run id>/<name>/ (git-ignored)."""
    base = os.environ.get("CME_TEST_OUTPUT")
    out = Path(base) / name if base else REPO / "test-output" / run_id() / name
    out.mkdir(parents=True, exist_ok=True)
    return out


class Shots:
    """Numbered full-page screenshots of a walkthrough: 01-catalogue-import.png, ..."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.taken: list[Path] = []

    def __call__(self, page: Any, name: str, full_page: bool = True) -> Path:
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        self.taken.append(path)
        print(f"screenshot: {path}")
        return path


def decode_qr(*pngs: Path) -> list[str]:
    """What a phone's camera reads: zbar on images (one line per symbol found)."""
    r = subprocess.run(["zbarimg", "--raw", "-q", *map(str, pngs)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip(), f"zbar found no QR code in {pngs}: {r.stderr}"
    return r.stdout.strip().splitlines()


def flash_ok(page: Any) -> str:
    return page.locator(".flash.ok").first.inner_text() if page.locator(".flash.ok").count() else ""


def search(page: Any, q: str) -> None:
    """The list's 检索 box, then 查询 (lists are paged; a busy list need not show the row on page 1)."""
    form = page.locator('form[role="search"]')
    form.locator('input[name="q"]').fill(q)
    form.get_by_role("button", name="查询").click()
    page.wait_for_load_state()


def reload_until(page: Any, url: str, check: Any, timeout: float = 60.0, what: str = "") -> None:
    """Open `url` again and again (as a clerk presses F5) until check(page) is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        if check(page):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or url}")
        time.sleep(1.0)


LIMITED = "操作太频繁"  # the gateway's 429 page (login POSTs and SMS sends per client address)


def press_until_let_through(page: Any, press: Any, wait: float = 12.0, tries: int = 10) -> None:
    """Fill and press a form whose POST the gateway rate-limits per address; every browser of the test (and the
    other stack tests' plain clients) comes from 127.0.0.1, so on 操作太频繁 do as the page says: wait, again."""
    for _ in range(tries):
        press()
        page.wait_for_load_state()
        if LIMITED not in page.content():
            return
        time.sleep(wait)
    raise AssertionError(f"the gateway still refused after {tries} tries: {LIMITED}")


def desk_login(page: Any, base: str, sms_log: Path, kind: str, account: str, password: str, mobile: str,
               first_admin: str | None = None, shots: Shots | None = None) -> None:
    """继续医学教育管理系统登录: password, (first login: 新增机构负责人 → 确定), pick the person, 获取验证码,
    type the code from the SMS log, 登录."""
    def password_step() -> None:
        page.goto(f"{base}/projects/login")
        page.locator(f'input[name="kind"][value="{kind}"]').check()
        page.fill("#f-account", account)
        page.fill("#f-password", password)
        page.get_by_role("button", name="登录").click()

    press_until_let_through(page, password_step)
    if "/projects/login/admins" in page.url:
        assert first_admin, "a first login must add a responsible person"
        page.fill("#f-real_name", first_admin)
        page.fill("#f-mobile", mobile)
        page.get_by_role("button", name="确认").click()
        page.locator('input[name="confirm"]').check()
        page.get_by_role("button", name="确定").click()
        assert f"添加成功：{first_admin}" in page.content()
        if shots:
            shots(page, "first-login-responsible-person")
        page.get_by_role("link", name="选择机构负责人并获取验证码").click()
    assert "/projects/login/sms" in page.url, page.url
    sms_page = page.url

    def sms_step() -> None:
        if page.url != sms_page:  # back from the gateway's 429 page
            page.goto(sms_page)
        options = page.locator("#f-admin_id option")
        value = next(options.nth(i).get_attribute("value") for i in range(options.count())
                     if options.nth(i).inner_text().endswith(f"{mobile[-4:]}）"))
        page.select_option("#f-admin_id", value)
        page.get_by_role("button", name="获取验证码").click()

    press_until_let_through(page, sms_step)
    assert "验证码已发送" in page.content(), page.content()[:2000]
    page.fill("#f-code", last_code(sms_log, mobile))
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_load_state()
    # an office on the committee's password lands on 修改密码 first (the caller sets its own or goes on)
    assert page.url.rstrip("/").endswith(("/projects/filings", "/projects/review", "/projects/password")), page.url
