"""The error page a browser gets (services.common.errors): sentences a person can read, in the layout of whoever
reads it, with 首页 leading back to their own pages."""

from __future__ import annotations

from services.common.errors import page_items
from tests.conftest import login_client
from tests.credits.conftest import new_account

HTML = {"Accept": "text/html"}


def test_the_page_lists_sentences_not_marshmallows_lists():
    fields = {"year": ["年份应为四位数字，如2026。"], "_schema": ["请至少选择一项。"],
              "awards": {"0": {"credit_value": ["请输入数字。", "请输入数字。"]}}}
    assert page_items(fields, "年份应为四位数字，如2026。") == [("", "请至少选择一项。"),
                                                            ("awards.0.credit_value", "请输入数字。")]
    assert page_items(None, "x") == [] and page_items({"page": "请输入整数。"}, "x") == [("page", "请输入整数。")]


def test_a_trainee_gets_the_phone_page_leading_home(databases, credits_app):
    trainee = new_account(databases, "曾小明", "11010519491231002X", "Neues2026pw", "13912345678")
    client = login_client(credits_app.test_client(), trainee)
    r = client.get("/credits/compliance?year=abc", headers=HTML)
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    assert page.count("年份应为四位数字") == 1 and "['" not in page  # the headline, not a list's repr below it
    assert 'viewport-fit=cover' in page and 'action="/credits/logout"' in page  # the trainee's phone layout
    assert '<a href="/credits/">首页</a>' in page and "/projects/" not in page


def test_an_institution_gets_the_desk_page(projects_app, inst_a):
    _inst, principal = inst_a
    r = login_client(projects_app.test_client(), principal).get("/projects/filings/999999", headers=HTML)
    page = r.get_data(as_text=True)
    assert r.status_code == 404
    assert '<a href="/projects/">首页</a>' in page and 'action="/projects/logout"' in page


def test_someone_checking_a_certificate_is_led_to_the_verification(certs_app):
    r = certs_app.test_client().get("/certs/no-such-page", headers=HTML)
    page = r.get_data(as_text=True)
    assert r.status_code == 404 and '<a href="/certs/verify">首页</a>' in page


def test_a_form_sent_after_the_login_ended_offers_to_log_in_again_and_come_back(databases, credits_app, certs_app,
                                                                               projects_app, inst_a):
    """修改密码 sent after she logged out elsewhere answered a bare 请先登录 whose only link led home: the page now
    says her login ended and leads to the trainees' login, back to the page the form came from."""
    from services.common.auth import COOKIE

    phone = credits_app.test_client()
    phone.set_cookie(COOKIE, "a-login-that-ended", domain="localhost", path="/")
    r = phone.post("/credits/password", data={"old_password": "x"},
                   headers={**HTML, "Referer": "http://localhost/credits/password"})
    page = r.get_data(as_text=True)
    assert r.status_code == 401 and "登录已失效，请重新登录。" in page
    assert 'href="/credits/login?next=%2Fcredits%2Fpassword">重新登录</a>' in page
    # a referrer of another site is not followed back
    r = credits_app.test_client().post("/credits/password", data={},
                                       headers={**HTML, "Referer": "https://evil.example/x"})
    assert r.status_code == 401 and "请先登录。" in r.get_data(as_text=True)
    assert 'href="/credits/login">重新登录</a>' in r.get_data(as_text=True)
    # the office's forms lead to the institutions' login
    r = projects_app.test_client().post("/projects/filings/projects/1/offerings", data={},
                                        headers={**HTML, "Referer": "http://localhost/projects/filings"})
    assert r.status_code == 401 and 'href="/projects/login?next=%2Fprojects%2Ffilings">重新登录</a>' in r.get_data(
        as_text=True)
    # an API client keeps its JSON
    r = certs_app.test_client().post("/certs/api/exports", json={})
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "login_required"


def test_phone_pages_send_a_form_once_too(certs_app):
    """导出学分证书 clicked twice made two export jobs: the phone layout now has the desk layout's guard (once)."""
    from flask import render_template_string

    from tests.stack.browser import served_page

    with certs_app.test_request_context("/certs/my"):
        html = render_template_string('{% extends "phone_base.html" %}{% block content %}<form method="post" '
                                      'action="/certs/exports"><button type="submit">导出学分证书</button></form>'
                                      '{% endblock %}')
    assert html.count("document.addEventListener(\"submit\"") == 1
    sent: list[str] = []  # the POST is left unanswered: rendering takes a while
    with served_page(html, "/certs/my", lambda route: sent.append(route.request.url)) as page:
        page.eval_on_selector("button", "b => { b.click(); setTimeout(() => b.click(), 150); }")
        page.wait_for_timeout(800)
    assert sent == ["http://cme.test/certs/exports"]


def test_a_refusal_with_a_wait_answers_retry_after_and_the_same_body(certs_app):
    """AppError's retry_after becomes the Retry-After header, on the JSON shape and on the page alike; the body is
    byte for byte the one without it (clients reading the body see no change)."""
    from flask import g

    from services.common.errors import AppError, with_retry_after

    def answer(accept: str, retry_after: int | None):
        with certs_app.test_request_context("/certs/verify", headers={"Accept": accept}):
            g.request_id = "rid-1234"
            resp = certs_app.make_response(certs_app.handle_user_exception(
                AppError(429, "too_many_requests", "证书验证过于频繁，请一分钟后再试。", retry_after=retry_after)))
            return with_retry_after(resp)

    for accept in ("application/json", "text/html"):
        plain, waiting = answer(accept, None), answer(accept, 42)
        assert (plain.status_code, waiting.status_code) == (429, 429)
        assert "Retry-After" not in plain.headers and waiting.headers["Retry-After"] == "42"
        assert waiting.get_data() == plain.get_data() and "一分钟后再试" in waiting.get_data(as_text=True)
    assert answer("application/json", 0).headers["Retry-After"] == "1"  # a positive number even at the edge


def test_a_page_that_renders_its_own_429_gets_retry_after_too(certs_app):
    """Login pages catch the refusal and re-render their form with its status: the after-request hook adds the
    header from the refusal raised during the request."""
    from flask import g

    from services.common.errors import AppError, with_retry_after

    with certs_app.test_request_context("/certs/verify"):
        try:
            raise AppError(429, "sms_too_soon", "验证码已发送，请 30 秒后再重新获取。", retry_after=30)
        except AppError as exc:
            resp = certs_app.make_response(("form again", exc.status))
        assert with_retry_after(resp).headers["Retry-After"] == "30"
        assert "retry_after" in g
        ok = with_retry_after(certs_app.make_response(("fine", 200)))
        assert "Retry-After" not in ok.headers  # only a 429 says it
