"""The gateway in front of the running suite: routing, health, OpenAPI, request ids, body cap, rate limits."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.stack

SERVICES = ("projects", "checkin", "credits", "certs")


@pytest.mark.parametrize("name", SERVICES)
def test_healthz_through_gateway(stack, name):
    resp = stack.http.get(stack.url(f"/{name}/healthz"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["checks"] == {"database": "ok", "redis": "ok"}


def test_the_browsers_favicon_request_is_answered_without_an_error(stack):
    resp = stack.http.get(stack.url("/favicon.ico"))
    assert resp.status_code == 204 and not resp.content


@pytest.mark.parametrize("name", SERVICES)
def test_metrics_on_the_service_port_only(stack, name):
    """The scraper reads each service on its own port; through the gateway the public gets a 404."""
    resp = stack.http.get(stack.url(f"/{name}/metrics"))
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    port = stack.stack.service_ports[name][0]
    text = stack.http.get(f"http://127.0.0.1:{port}/{name}/metrics").text
    assert f'cme_database_up{{service="{name}"}} 1' in text and f'cme_redis_up{{service="{name}"}} 1' in text
    assert f'cme_queue_length{{service="{name}",queue="{name}"}}' in text
    assert f'cme_outbox_unsent{{service="{name}"}}' in text


@pytest.mark.parametrize("name", SERVICES)
def test_openapi_through_gateway(stack, name):
    resp = stack.http.get(stack.url(f"/{name}/api/openapi.json"))
    assert resp.status_code == 200
    assert resp.json()["openapi"].startswith("3.")


def test_root_redirects_to_projects(stack):
    resp = stack.http.get(stack.url("/"), allow_redirects=False)
    assert resp.status_code in (301, 302)
    assert resp.headers["Location"].endswith("/projects/")


def test_unknown_prefix_is_json_404(stack):
    resp = stack.http.get(stack.url("/nowhere"))
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"


def test_a_browser_gets_a_chinese_page_for_a_path_nobody_serves_or_cannot_be_read(stack):
    """/certs/verify/..%2F..%2Fetc%2Fpasswd became /etc/passwd (bare JSON in the browser); /certs/verify/%00
    was nginx's own English '400 Bad Request' page, then the suite's JSON (nginx had read no Accept header)."""
    html = {"Accept": "text/html"}
    nowhere = stack.http.get(stack.url("/certs/verify/..%2F..%2Fetc%2Fpasswd"), headers=html)
    assert nowhere.status_code == 404 and "页面不存在" in nowhere.text and "nginx" not in nowhere.text
    assert f"请求编号 {nowhere.headers['X-Request-ID']}" in nowhere.text and "<!--#" not in nowhere.text
    # nginx refuses a NUL in the path before it reads the headers: the request line decides
    unreadable = stack.http.get(stack.url("/certs/verify/%00"), headers=html)
    assert unreadable.status_code == 400 and "请求有误" in unreadable.text and "nginx" not in unreadable.text
    assert f"请求编号 {unreadable.headers['X-Request-ID']}" in unreadable.text
    # an API address keeps the JSON
    api = stack.http.get(stack.url("/certs/api/verify/%00"), headers=html)
    assert api.status_code == 400 and api.json()["error"]["message"] == "请求有误，请检查地址后重试。"
    # whatever the client accepts: nginx has not read it (a page for a page's address, JSON for the API's)
    assert "请求有误" in stack.http.get(stack.url("/certs/verify/%00"), headers={"Accept": "application/json"}).text
    # a service's own 404 is its own (the certificate page says what was not found)
    assert "未找到证书编号" in stack.http.get(stack.url("/certs/verify/2027AAAAAAAAAAAA"), headers=html).text


def test_request_id_set_by_gateway_reaches_service_log(stack):
    resp = stack.http.get(stack.url("/checkin/healthz"))
    rid = resp.headers.get("X-Request-ID", "")
    assert len(rid) == 32 and rid.isalnum(), rid  # nginx's $request_id
    log = stack.log_path("web-checkin")
    stack.wait_until(lambda: rid in log.read_text(errors="replace"), 10, what="the request id in the checkin log")
    # nginx buffers its access log lines briefly
    stack.wait_until(lambda: rid in stack.log_path("nginx-access").read_text(errors="replace"), 10,
                     what="the request id in the gateway's access log")


def test_query_strings_never_reach_the_gateway_log(stack):
    """A search by a full ID number or mobile in a URL (?q=…), or the Referer of the page after it, is logged
    as its path only (DESIGN: personal data never logged)."""
    secret_id, secret_mobile = "610102198503120011", "13912345678"
    resp = stack.http.get(stack.url(f"/projects/healthz?q={secret_id}"),
                          headers={"Referer": f"http://example.test/checkin/activities/1/checkins?q={secret_mobile}"})
    rid = resp.headers["X-Request-ID"]
    log = stack.log_path("nginx-access")
    stack.wait_until(lambda: rid in log.read_text(errors="replace"), 10, what="the request in the access log")
    [line] = [ln for ln in log.read_text(errors="replace").splitlines() if rid in ln]
    assert '"GET /projects/healthz HTTP/1.1"' in line and '"http://example.test/checkin/activities/1/checkins"' in line
    assert secret_id not in line and secret_mobile not in line and "?q=" not in line


def test_well_formed_client_request_id_is_kept_and_bad_one_replaced(stack):
    good = "client-req-0001abcd"
    resp = stack.http.get(stack.url("/projects/healthz"), headers={"X-Request-ID": good})
    assert resp.headers["X-Request-ID"] == good
    stack.wait_until(lambda: good in stack.log_path("web-projects").read_text(errors="replace"), 10)
    bad = "<script>alert(1)</script>"
    resp = stack.http.get(stack.url("/projects/healthz"), headers={"X-Request-ID": bad})
    assert resp.headers["X-Request-ID"] != bad
    assert resp.headers["X-Request-ID"].isalnum()


def test_upload_over_cap_is_413(stack):
    body = b"\0" * (12 * 1024 * 1024 + 1024)
    resp = stack.http.post(stack.url("/projects/api/anything"), data=body,
                           headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 413
    error = resp.json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["request_id"] == resp.headers["X-Request-ID"]
    page = stack.http.post(stack.url("/projects/filings/1"), data=body, headers={"Accept": "text/html"})
    assert page.status_code == 413
    assert "太大" in page.text


def test_long_query_is_answered_in_json_whatever_its_length(stack):
    """A search of 6 KB reaches the service (gunicorn no longer answers it with its own HTML page); one of
    9 KB is refused by the gateway with the suite's JSON error."""
    resp = stack.http.get(stack.url("/projects/api/reports"), params={"q": "心" * 700})  # 6,300 bytes encoded
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "login_required", resp.text[:200]
    resp = stack.http.get(stack.url("/projects/api/reports"), params={"q": "心" * 1000})
    assert resp.status_code == 414, resp.text[:200]
    error = resp.json()["error"]
    assert error["code"] == "uri_too_long" and "太长" in error["message"]
    assert error["request_id"] == resp.headers["X-Request-ID"]


def test_login_posts_are_rate_limited(stack):
    codes = [stack.http.post(stack.url("/projects/api/auth/login"), json={}).status_code for _ in range(15)]
    assert 429 in codes, codes
    first = codes.index(429)
    assert first >= 3, codes  # the burst lets a few through
    assert all(c == 429 for c in codes[first:]), codes
    resp = stack.http.post(stack.url("/projects/login"), data={})
    assert resp.status_code == 429  # the page form shares the login zone
    # so does an office's 修改密码 (its 原密码 guessed like a login's password), page and API
    assert stack.http.post(stack.url("/projects/password"), data={}).status_code == 429
    assert stack.http.post(stack.url("/projects/api/auth/password"), json={}).status_code == 429
    assert resp.json()["error"]["code"] == "too_many_requests"
    # reading the login page is never limited
    assert stack.http.get(stack.url("/projects/login"), allow_redirects=False).status_code != 429


def test_trainee_logins_are_rate_limited_per_address_more_loosely(stack):
    """A lecture hall's doctors log in from the hospital's one address: the trainees' zone lets a few dozen
    through before 429, the page form and 忘记密码 share it, and another address is not held up."""
    from tests.stack.flows import client_from

    hall = client_from("127.0.0.51")
    codes = [hall.post(stack.url("/credits/api/auth/login"), json={}).status_code for _ in range(45)]
    assert 429 in codes, codes
    first = codes.index(429)
    assert first >= 20 and set(codes[:first]) == {422}, codes
    for path in ("/credits/login", "/credits/password/forgot", "/credits/api/auth/reset"):
        assert hall.post(stack.url(path), data={}).status_code == 429, path
    assert hall.get(stack.url("/credits/login")).status_code == 200  # reading the page is never limited
    assert client_from("127.0.0.52").post(stack.url("/credits/api/auth/login"), json={}).status_code == 422


def test_sms_sends_are_rate_limited(stack):
    codes = [stack.http.post(stack.url("/projects/login/sms/send"), data={}).status_code for _ in range(10)]
    assert 429 in codes, codes
    page = stack.http.post(stack.url("/projects/api/auth/sms/send"), json={}, headers={"Accept": "text/html"})
    assert page.status_code == 429
    assert "操作太频繁" in page.text


def test_service_down_is_502_json(stack):
    stack.stop_process("web-certs")
    try:
        resp = stack.http.get(stack.url("/certs/healthz"))
        assert resp.status_code == 502
        assert resp.json()["error"]["code"] == "service_unavailable"
        # a browser's page says the request id (the person on call finds the request by it) and the way in
        # for trainees
        page = stack.http.get(stack.url("/certs/my"), headers={"Accept": "text/html"})
        rid = page.headers["X-Request-ID"]
        assert page.status_code == 502 and "服务暂时不可用" in page.text
        assert f"请求编号 {rid}" in page.text and "<!--#" not in page.text and 'href="/credits/"' in page.text
    finally:
        stack.start_process("web-certs")
        stack.wait_healthy()


def test_a_doctor_scanning_while_checkin_is_down_is_told_what_to_do_and_retry_reaches_it(stack):
    """In the lecture hall: the check-in service restarts while she scans. Her phone says the check-in is not
    recorded and what to do (retry, scan again, ask for 代签), fits 360 px, and 重试 opens the same link again
    once the service is back; the desk's pages and the JSON API keep their own answers."""
    from playwright.sync_api import sync_playwright

    from .browser import CHROMIUM, CHROMIUM_ARGS, PHONE

    link = stack.url("/checkin/s/not-a-real-token")
    stack.stop_process("web-checkin")
    try:
        for method, path in (("GET", "/checkin/s/x"), ("GET", "/checkin/scan"), ("POST", "/checkin/scan"),
                             ("GET", "/checkin/wechat/callback?code=c&state=s")):
            page = stack.http.request(method, stack.url(path), headers={"Accept": "text/html"})
            assert page.status_code == 502 and "签到暂时无法完成" in page.text and "代签" in page.text, path
            assert "还没有" in page.text and "<!--#" not in page.text, path
        desk = stack.http.get(stack.url("/checkin/activities"), headers={"Accept": "text/html"})
        assert desk.status_code == 502 and "服务暂时不可用" in desk.text and "签到暂时无法完成" not in desk.text
        api = stack.http.post(stack.url("/checkin/api/scan"), json={})
        assert api.status_code == 502 and api.json()["error"]["code"] == "service_unavailable"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                phone = browser.new_context(**PHONE).new_page()
                phone.goto(link)
                assert phone.get_by_role("heading").inner_text() == "签到暂时无法完成"
                assert phone.evaluate("document.documentElement.scrollWidth") <= 360
                stack.start_process("web-checkin")
                stack.wait_healthy()
                with phone.expect_navigation():
                    phone.get_by_role("link", name="重试").click()
                assert phone.url == link
                assert "签到暂时无法完成" not in phone.content()  # the service's own answer to this link now
            finally:
                browser.close()
    finally:
        stack.start_process("web-checkin")
        stack.wait_healthy()


def test_redis_down_makes_healthz_503_and_back(stack):
    stack.stop_process("redis")
    try:
        for name in SERVICES:
            resp = stack.http.get(stack.url(f"/{name}/healthz"))
            assert resp.status_code == 503, (name, resp.text)
            assert resp.json()["checks"]["redis"].startswith("error")
            assert resp.json()["checks"]["database"] == "ok"
    finally:
        stack.start_process("redis")
    stack.wait_healthy(30)
    for name in SERVICES:
        assert stack.http.get(stack.url(f"/{name}/healthz")).status_code == 200
