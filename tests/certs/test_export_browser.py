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


def test_a_verifier_s_phone_reads_the_verdict_at_a_glance(certs_app, awards, queued, certs_db):
    """证书验证 on a 360 px phone, for a valid, a revoked, a revoked-then-restored and an unknown number: the verdict
    was one line of body text among the details (证书有效 as small as 举办单位), a restored credit's old paper read
    as a credit lost, and an unknown number broke in the middle of its 16 characters. Now the verdict is a tinted
    box above the details, a revoked one says what it means (and, restored, that a newer certificate exists,
    without its number), and a number of 16 stays on one line."""
    import datetime as dt

    from tests.certs.conftest import TRAINEE_2
    from tests.certs.test_certificates import _effective_payload, _event, certificates, export_as_trainee, withdraw
    from tests.stack.browser import PHONE, served_page

    clock.set_now(at(PRINTABLE_DAY))
    export_as_trainee(certs_app, queued, [1])
    export_as_trainee(certs_app, queued, [3], TRAINEE_2)
    assert withdraw(1, dt.datetime(2027, 1, 9, 2, 0, tzinfo=dt.UTC)) is True  # 张伟's, then restored as award 11
    assert _event("credits.effective", _effective_payload([dict(awards[0], award_id=11)])) is True
    assert withdraw(3, dt.datetime(2027, 1, 9, 3, 0, tzinfo=dt.UTC)) is True  # 李娜's, withdrawn for good
    export_as_trainee(certs_app, queued, [11])
    numbers = certificates(certs_db)
    cases = {"valid": (numbers[11][0], "证书有效", None),
             "revoked": (numbers[3][0], "证书已撤销（2027-01-09 起），不再有效", "已撤销的证书不能作为学分证明"),
             "restored": (numbers[1][0], "证书已撤销（2027-01-09 起），不再有效",
                          "持证人该期学分已恢复，并换发了新编号的证书"),
             "unknown": ("2026ABCDEFGHJKLM", "未找到证书编号 2026ABCDEFGHJKLM", None)}
    anon = certs_app.test_client()
    for name, (number, verdict, note) in cases.items():
        html = anon.get(f"/certs/verify/{number}").get_data(as_text=True)
        assert numbers[11][0] not in html or name == "valid"  # the restored one's new number is never named
        with served_page(html, f"/certs/verify/{number}", lambda route: route.fulfill(status=204), device=PHONE,
                         static_from=anon) as p:
            assert p.evaluate("document.documentElement.scrollWidth") <= 360, name
            result = p.locator("#result")
            assert result.inner_text().replace("\n", "") == verdict, name
            size = float(result.evaluate("e => getComputedStyle(e).fontSize").removesuffix("px"))
            body = float(p.evaluate("getComputedStyle(document.body).fontSize").removesuffix("px"))
            assert size >= body * 1.15 and result.evaluate("e => getComputedStyle(e).borderTopStyle") == "solid", name
            if name != "unknown":  # above the details, not among them
                assert result.bounding_box()["y"] < p.locator("dl").bounding_box()["y"]
            if note:
                assert note in p.inner_text("#revoked-note"), name
            else:
                assert p.locator("#revoked-note").count() == 0, name
            if name == "unknown":
                line = p.evaluate("parseFloat(getComputedStyle(document.querySelector('#result')).lineHeight)")
                assert p.locator("#result .num").bounding_box()["height"] < line * 1.5  # one line
