"""Trainee login (学员登录) pages and JSON API: pinyin initial password, forced change, lock-out, CSRF, permissions,
and the account opened by the first check-in credits hears of."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time

import pytest
from sqlalchemy import func, select

from services.common import clock, pii
from services.common.auth import COOKIE, Principal
from tests.conftest import bearer, login_client
from tests.credits.conftest import new_account
from tests.credits.test_attendance import event
from tests.credits.test_offerings import INST_A, REVIEWER, deliver

ID_NUMBER = "11010519491231002X"
SHAN_ID = "610102198001011237"
NEIGHBOUR_ID = "610102198502024327"  # a valid number (check digit) without an account
MOBILE = "13912345678"
NEW_PASSWORD = "Neues2026pw"
T0 = dt.datetime(2026, 12, 10, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai


@pytest.fixture
def make_account(databases):
    def make(name="曾小明", id_number=ID_NUMBER, password=None):
        return new_account(databases, name, id_number, password, MOBILE)

    return make


def accounts(databases):
    from services.credits.accounts.models import TraineeAccount

    s = databases["credits"].new_session()
    try:
        return s.scalars(select(TraineeAccount).order_by(TraineeAccount.id)).all()
    finally:
        s.close()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def page_login(client, id_number, password):
    token = csrf_of(client.get("/credits/login").get_data(as_text=True))
    return client.post("/credits/login", data={"csrf_token": token, "id_number": id_number, "password": password})


def has_session_cookie(resp) -> bool:
    return any(h.startswith(f"{COOKIE}=") and "Max-Age=0" not in h and "expires=Thu, 01 Jan 1970" not in h
               for h in resp.headers.getlist("Set-Cookie"))


# ---------------------------------------------------------------- pages


def test_login_page_is_phone_first_and_explains_the_initial_password(credits_app, databases):
    resp = credits_app.test_client().get("/credits/login")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'name="viewport"' in html and "width=device-width" in html
    assert "身份证号码" in html and "张三" in html and "zhangsan" in html
    assert 'name="id_number"' in html and 'type="password"' in html and 'name="csrf_token"' in html
    assert '如忘记密码，可点击 <a href="/credits/password/forgot">密码找回</a> 进行密码重置' in html


@pytest.mark.parametrize(("name", "id_number", "typed"), [
    ("张三", ID_NUMBER, "zhangsan"), ("曾小明", ID_NUMBER, "zengxiaoming"), ("曾小明", ID_NUMBER, "Zeng Xiaoming"),
    ("单雄信", SHAN_ID, "shanxiongxin"), ("单雄信", SHAN_ID.lower(), "danxiongxin"),
])
def test_pinyin_login_forces_the_change_first(credits_app, make_account, name, id_number, typed):
    make_account(name=name, id_number=id_number.upper())
    client = credits_app.test_client()
    resp = page_login(client, id_number, typed)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/credits/password")
    assert has_session_cookie(resp)
    for path in ("/credits/", "/credits/login"):  # every other trainee page sends the trainee to the change
        follow = client.get(path, follow_redirects=True)
        assert follow.request.path == "/credits/password"
    html = client.get("/credits/password").get_data(as_text=True)
    assert "初始密码" in html and "请先设置新密码" in html and name in html


def test_changed_password_goes_straight_home(credits_app, make_account):
    make_account(password=NEW_PASSWORD)
    client = credits_app.test_client()
    resp = page_login(client, ID_NUMBER, NEW_PASSWORD)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/credits/")
    home = client.get("/credits/")
    html = home.get_data(as_text=True)
    assert home.status_code == 200
    assert "达标情况查询" in html and "曾小明" in html and "1101**********002X" in html
    assert ID_NUMBER not in html
    assert 'href="/credits/compliance"' in html  # the way to 达标情况查询


def test_the_login_goes_back_to_the_page_she_was_sent_from(credits_app, make_account):
    """Her certificate export's page sends her here with ?next=: she comes back to it, not to the home page; a
    next of another site is not followed."""
    make_account(password=NEW_PASSWORD)
    client = credits_app.test_client()
    page = client.get("/credits/login?next=/certs/exports/7").get_data(as_text=True)
    assert '<input type="hidden" name="next" value="/certs/exports/7">' in page
    form = {"csrf_token": csrf_of(page), "next": "/certs/exports/7", "id_number": ID_NUMBER}
    wrong = client.post("/credits/login", data={**form, "password": "Wrong2026pw"})
    assert 'name="next" value="/certs/exports/7"' in wrong.get_data(as_text=True)  # kept through a mistake
    resp = client.post("/credits/login", data={**form, "password": NEW_PASSWORD})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/certs/exports/7")
    assert client.get("/credits/login?next=/certs/my").headers["Location"].endswith("/certs/my")  # signed in
    other = credits_app.test_client()
    page = other.get("/credits/login?next=https://evil.example/").get_data(as_text=True)
    assert 'name="next"' not in page
    resp = other.post("/credits/login", data={"csrf_token": csrf_of(page), "next": "//evil.example/",
                                              "id_number": ID_NUMBER, "password": NEW_PASSWORD})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/credits/")


def test_wrong_password_and_unknown_id_are_refused_alike(credits_app, make_account):
    make_account()
    client = credits_app.test_client()
    wrong = page_login(client, ID_NUMBER, "zhangsan")
    unknown = page_login(client, NEIGHBOUR_ID, "zengxiaoming")
    for resp in (wrong, unknown):
        assert resp.status_code == 401 and "身份证号或密码不正确" in resp.get_data(as_text=True)
        # how many tries are left, said alike whether the number has an account or not
        assert "还可以再试 4 次；再输错将锁定 15 分钟" in resp.get_data(as_text=True)
        assert not has_session_cookie(resp)
    assert ID_NUMBER in wrong.get_data(as_text=True)  # the typed username stays in the form
    empty = client.post("/credits/login", data={"csrf_token": csrf_of(client.get("/credits/login").get_data(
        as_text=True))})
    assert empty.status_code == 422 and "请输入身份证号码" in empty.get_data(as_text=True)


def test_the_id_number_is_read_as_the_check_in_form_reads_it(credits_app, make_account):
    """Typed on a Chinese keyboard (full-width digits), grouped with spaces, or with a small x, it is the same
    number; too short is said next to the field rather than as a wrong password."""
    make_account()
    full_width = ID_NUMBER[:-1].translate(str.maketrans("0123456789", "０１２３４５６７８９")) + "x"
    for typed in (full_width, " ".join([ID_NUMBER[:6], ID_NUMBER[6:14], ID_NUMBER[14:]])):
        resp = page_login(credits_app.test_client(), typed, "zengxiaoming")
        assert resp.status_code == 302 and has_session_cookie(resp), typed
    short = page_login(credits_app.test_client(), "123", "zengxiaoming")
    html = short.get_data(as_text=True)
    assert short.status_code == 422 and "身份证号码应为 18 位" in html and 'id="e-id_number"' in html
    api = credits_app.test_client().post("/credits/api/auth/login", json={"id_number": "１２３", "password": "x"})
    assert api.status_code == 422 and "身份证号码应为 18 位" in str(api.json["error"]["fields"]["id_number"])


BAD_CHECK_DIGIT = "610102199001010037"  # 610102199001010036 with its last digit mistyped


def test_a_wrong_check_digit_is_said_at_the_field_and_costs_no_try(credits_app, make_account, databases):
    """The QA walk: one mistyped digit answered "身份证号或密码不正确，还可以再试 4 次" and, five tries on, "locked",
    where 忘记密码 says the check digit is wrong. Now the login says what 忘记密码 says, before any password check."""
    make_account(id_number=BAD_CHECK_DIGIT[:-1] + "6")
    client = credits_app.test_client()
    for _ in range(6):
        resp = page_login(client, BAD_CHECK_DIGIT, "zengxiaoming")
        html = resp.get_data(as_text=True)
        assert resp.status_code == 422 and 'id="e-id_number"' in html
        assert "身份证号码校验位不正确，请逐位核对是否输错。" in html
        assert "还可以再试" not in html and "锁定" not in html
        assert f'value="{BAD_CHECK_DIGIT}"' in html  # what she typed stays, to be corrected
    api = client.post("/credits/api/auth/login", json={"id_number": BAD_CHECK_DIGIT, "password": "zengxiaoming"})
    assert api.status_code == 422 and "校验位不正确" in str(api.json["error"]["fields"]["id_number"])
    [account] = accounts(databases)
    assert account.failed_attempts == 0 and account.locked_until is None
    # the right number logs in at once: nothing was counted against it
    resp = page_login(client, BAD_CHECK_DIGIT[:-1] + "6", "zengxiaoming")
    assert resp.status_code == 302 and has_session_cookie(resp)
    # a valid number without an account still gets a wrong password's answer (who has one is not told)
    unknown = page_login(credits_app.test_client(), NEIGHBOUR_ID, "zengxiaoming")
    assert unknown.status_code == 401 and "身份证号或密码不正确，还可以再试 4 次" in unknown.get_data(as_text=True)


def test_signed_in_pages_are_not_kept_by_the_phone(credits_app, make_account):
    """A shared phone's Back button or a proxy must not show one doctor's pages to the next."""
    make_account(password=NEW_PASSWORD)
    client = credits_app.test_client()
    assert page_login(client, ID_NUMBER, NEW_PASSWORD).status_code == 302
    for path in ("/credits/", "/credits/compliance"):
        resp = client.get(path)
        assert resp.status_code == 200 and resp.headers["Cache-Control"] == "private, no-store", path


def test_lockout_says_until_when(credits_app, make_account, databases):
    clock.set_now(T0)
    make_account()
    client = credits_app.test_client()
    for _ in range(4):
        assert page_login(client, ID_NUMBER, "wrong").status_code == 401
    locked = page_login(client, ID_NUMBER, "wrong")
    assert locked.status_code == 429
    assert locked.headers["Retry-After"] == str(15 * 60)  # the lock lifts in 15 minutes
    assert "2026-12-10 10:15" in locked.get_data(as_text=True) and "北京时间" in locked.get_data(as_text=True)
    api = client.post("/credits/api/auth/login", json={"id_number": ID_NUMBER, "password": "zengxiaoming"})
    assert api.status_code == 429 and api.json["error"]["code"] == "account_locked"
    assert "2026-12-10 10:15" in api.json["error"]["message"]
    assert api.json["error"]["fields"]["locked_until"].startswith("2026-12-10T02:15")
    assert api.headers["Retry-After"] == str(15 * 60)
    clock.set_now(T0 + dt.timedelta(minutes=5))
    assert page_login(client, ID_NUMBER, "zengxiaoming").headers["Retry-After"] == str(10 * 60)
    clock.set_now(T0 + dt.timedelta(minutes=15))
    assert page_login(client, ID_NUMBER, "zengxiaoming").status_code == 302


def test_parallel_wrong_passwords_are_each_counted(credits_app, make_account):
    """Twelve wrong passwords at once (the security walk's race) get no more than the allowed tries: the count
    is read under the account row's lock, so each request sees the one before it."""
    from concurrent.futures import ThreadPoolExecutor

    clock.set_now(T0)
    make_account()

    def attempt(_: int) -> str:
        r = credits_app.test_client().post("/credits/api/auth/login",
                                           json={"id_number": ID_NUMBER, "password": "wrong-password"})
        return r.json["error"]["code"]

    with ThreadPoolExecutor(max_workers=12) as pool:
        codes = list(pool.map(attempt, range(12)))
    assert codes.count("bad_credentials") == 4 and codes.count("account_locked") == 8


def test_an_id_number_without_an_account_locks_alike(credits_app, databases):
    """Otherwise the lock message would tell which ID numbers have an account."""
    clock.set_now(T0)
    client = credits_app.test_client()
    for _ in range(4):
        assert page_login(client, NEIGHBOUR_ID, "wrong").status_code == 401
    locked = page_login(client, NEIGHBOUR_ID, "wrong")
    assert locked.status_code == 429 and "2026-12-10 10:15" in locked.get_data(as_text=True)
    assert locked.headers["Retry-After"] == str(15 * 60)  # as an account's lock answers
    api = client.post("/credits/api/auth/login", json={"id_number": NEIGHBOUR_ID, "password": "x"})
    assert api.headers["Retry-After"] == str(15 * 60)
    assert api.status_code == 429 and api.json["error"]["fields"]["locked_until"].startswith("2026-12-10T02:15")
    clock.set_now(T0 + dt.timedelta(minutes=15))
    assert page_login(client, NEIGHBOUR_ID, "wrong").status_code == 401  # the lock ran out, counting starts again


def test_change_password_on_the_page_then_only_the_new_one_works(credits_app, make_account, databases):
    make_account()
    client = credits_app.test_client()
    page_login(client, ID_NUMBER, "zengxiaoming")
    token = csrf_of(client.get("/credits/password").get_data(as_text=True))

    def post(old, new, repeat):
        return client.post("/credits/password", data={"csrf_token": token, "old_password": old,
                                                      "new_password": new, "repeat_password": repeat})

    mismatch = post("zengxiaoming", NEW_PASSWORD, NEW_PASSWORD + "x")
    assert mismatch.status_code == 422 and "两次输入的新密码不一致" in mismatch.get_data(as_text=True)
    weak = post("zengxiaoming", "zengxiaoming1990", "zengxiaoming1990")
    html = weak.get_data(as_text=True)
    assert weak.status_code == 422 and "姓名拼音" in html and 'id="e-new_password"' in html
    bad_old = post("wrong", NEW_PASSWORD, NEW_PASSWORD)
    assert bad_old.status_code == 400 and 'id="e-old_password"' in bad_old.get_data(as_text=True)
    assert accounts(databases)[0].must_change is True

    done = post("zengxiaoming", NEW_PASSWORD, NEW_PASSWORD)
    assert done.status_code == 302 and done.headers["Location"].endswith("/credits/")
    home = client.get("/credits/")
    assert home.status_code == 200 and "密码已修改" in home.get_data(as_text=True)
    assert accounts(databases)[0].must_change is False

    # the change handed back a new session: the old page's token is dead, the new page's works
    assert client.post("/credits/logout", data={"csrf_token": token}).status_code == 403
    out = client.post("/credits/logout", data={"csrf_token": csrf_of(home.get_data(as_text=True))})
    assert out.status_code == 302 and out.headers["Location"].endswith("/credits/login")
    assert client.get("/credits/").headers["Location"].endswith("/credits/login")
    assert page_login(client, ID_NUMBER, "zengxiaoming").status_code == 401
    assert page_login(client, ID_NUMBER, NEW_PASSWORD).headers["Location"].endswith("/credits/")


def test_wrong_old_passwords_are_counted_and_lock_as_wrong_logins(credits_app, make_account, databases):
    """The QA walk: /credits/password allowed any number of wrong 原密码, so a session left open on a shared phone
    let anyone guess the password without limit. They count with the login's wrong passwords now."""
    clock.set_now(T0)
    make_account(password=NEW_PASSWORD)
    client = credits_app.test_client()
    assert page_login(client, ID_NUMBER, "wrong-once").status_code == 401  # one wrong login: 4 left
    assert page_login(client, ID_NUMBER, NEW_PASSWORD).status_code == 302  # a right one starts the count again
    token = csrf_of(client.get("/credits/password").get_data(as_text=True))

    def post(old):
        return client.post("/credits/password", data={"csrf_token": token, "old_password": old,
                                                      "new_password": "Anderes2027pw",
                                                      "repeat_password": "Anderes2027pw"})

    for left in (4, 3, 2, 1):
        wrong = post("guess")
        html = wrong.get_data(as_text=True)
        assert wrong.status_code == 400 and 'id="e-old_password"' in html
        assert f"原密码不正确，还可以再试 {left} 次；再输错将锁定 15 分钟" in html
    locked = post("guess")
    html = locked.get_data(as_text=True)
    assert locked.status_code == 429 and 'id="locked"' in html
    assert locked.headers["Retry-After"] == str(15 * 60)
    assert "账号已锁定至 2026-12-10 10:15" in html
    assert '<a href="/credits/password/forgot">密码找回</a>' in html
    # while locked even the right 原密码 changes nothing, and the page says why before she types
    assert post(NEW_PASSWORD).status_code == 429
    again = client.get("/credits/password").get_data(as_text=True)
    assert "账号已锁定至 2026-12-10 10:15" in again
    [account] = accounts(databases)
    assert account.locked_until is not None and account.password_changed_at is not None
    assert page_login(credits_app.test_client(), ID_NUMBER, NEW_PASSWORD).status_code == 429  # the login's lock
    # the JSON API counts alike: the lock ran out, five more wrong 原密码 lock it again
    clock.set_now(T0 + dt.timedelta(minutes=15))
    client = credits_app.test_client()  # no cookie: the bearer token alone
    auth = {"Authorization": "Bearer " + client.post("/credits/api/auth/login", json={
        "id_number": ID_NUMBER, "password": NEW_PASSWORD}).json["token"]}
    for left in (4, 3, 2, 1):
        r = client.post("/credits/api/auth/password", headers=auth, json={"old_password": "guess",
                                                                          "new_password": "Anderes2027pw"})
        assert r.status_code == 400 and f"还可以再试 {left} 次" in r.json["error"]["message"]
    r = client.post("/credits/api/auth/password", headers=auth, json={"old_password": "guess",
                                                                      "new_password": "Anderes2027pw"})
    assert r.status_code == 429 and r.json["error"]["code"] == "account_locked"
    assert int(r.headers["Retry-After"]) == 15 * 60


def test_cookie_forms_need_their_csrf_token(credits_app, make_account):
    principal = make_account()
    anonymous = credits_app.test_client()
    no_token = anonymous.post("/credits/login", data={"id_number": ID_NUMBER, "password": "zengxiaoming"})
    assert no_token.status_code == 403 and not has_session_cookie(no_token)
    client = login_client(credits_app.test_client(), principal)
    form = {"old_password": "zengxiaoming", "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD}
    assert client.post("/credits/password", data=form).status_code == 403
    assert client.post("/credits/password", data={**form, "csrf_token": "0" * 32}).status_code == 403
    assert client.post("/credits/logout").status_code == 403
    # the JSON API through the cookie needs the header; a bearer token does not
    api = client.post("/credits/api/auth/password", json={"old_password": "zengxiaoming",
                                                          "new_password": NEW_PASSWORD})
    assert api.status_code == 403 and api.json["error"]["code"] == "csrf_failed"


def test_api_login_and_change_with_bearer(credits_app, make_account, databases):
    make_account()
    client = credits_app.test_client()
    resp = client.post("/credits/api/auth/login", json={"id_number": ID_NUMBER, "password": "zengxiaoming"})
    assert resp.status_code == 200 and resp.json["must_change"] is True and resp.json["token"]
    assert set(resp.json) == {"token", "must_change"}
    assert resp.headers["Cache-Control"] == "private, no-store"  # a 12-hour token stays out of every cache
    assert not has_session_cookie(resp)
    auth = {"Authorization": f"Bearer {resp.json['token']}"}
    weak = client.post("/credits/api/auth/password", headers=auth,
                       json={"old_password": "zengxiaoming", "new_password": "short1"})
    assert weak.status_code == 422 and "new_password" in weak.json["error"]["fields"]
    wrong_old = client.post("/credits/api/auth/password", headers=auth,
                            json={"old_password": "nope", "new_password": NEW_PASSWORD})
    assert wrong_old.status_code == 400 and wrong_old.json["error"]["code"] == "wrong_old_password"
    ok = client.post("/credits/api/auth/password", headers=auth,
                     json={"old_password": "zengxiaoming", "new_password": NEW_PASSWORD})
    assert ok.status_code == 200 and ok.json == {"changed": True, "must_change": False}
    old = client.post("/credits/api/auth/login", json={"id_number": ID_NUMBER, "password": "zengxiaoming"})
    assert old.status_code == 401 and old.json["error"]["code"] == "bad_credentials"
    new = client.post("/credits/api/auth/login", json={"id_number": ID_NUMBER, "password": NEW_PASSWORD})
    assert new.status_code == 200 and new.json["must_change"] is False
    # the bearer token opens the pages too (the forced change is done, so home shows)
    assert client.get("/credits/", headers={"Authorization": f"Bearer {new.json['token']}"}).status_code == 200


def test_a_password_change_is_refused_while_her_other_sessions_cannot_be_ended(credits_app, make_account,
                                                                               monkeypatch):
    """Redis (where ended sessions are kept) is down: the change would leave a stolen session good for hours once
    Redis is back, so it is refused with a Chinese sentence, nothing changed; once Redis answers it goes through
    and the old session ends."""
    from services.common import auth as cauth
    from services.common.config import redis_client_for

    make_account(password=NEW_PASSWORD)
    client = credits_app.test_client()
    stolen = client.post("/credits/api/auth/login", json={"id_number": ID_NUMBER, "password": NEW_PASSWORD})
    auth = {"Authorization": f"Bearer {stolen.json['token']}"}
    working = cauth._ends
    monkeypatch.setattr(cauth, "_ends", lambda: redis_client_for("redis://127.0.0.1:1/0", 0.5))
    change = {"old_password": NEW_PASSWORD, "new_password": "Anders2026pw"}
    refused = client.post("/credits/api/auth/password", headers=auth, json=change)
    assert refused.status_code == 503 and "本次未做任何修改" in refused.json["error"]["message"]
    page = login_client(credits_app.test_client(), Principal(role="trainee", subject="trainee:1", name="曾小明",
                                                             trainee_key=pii.id_hash(ID_NUMBER)))
    form = page.get("/credits/password").get_data(as_text=True)
    on_page = page.post("/credits/password", data={"csrf_token": csrf_of(form), "old_password": NEW_PASSWORD,
                                                   "new_password": "Anders2026pw", "repeat_password": "Anders2026pw"})
    assert on_page.status_code == 503 and "本次未做任何修改" in on_page.get_data(as_text=True)
    monkeypatch.setattr(cauth, "_ends", working)
    still = client.post("/credits/api/auth/login", json={"id_number": ID_NUMBER, "password": NEW_PASSWORD})
    assert still.status_code == 200  # the password did not change
    assert client.post("/credits/api/auth/password", headers=auth, json=change).status_code == 200
    assert client.get("/credits/api/me/compliance", headers=auth).status_code == 401


def test_api_login_input_is_checked(credits_app, databases):
    client = credits_app.test_client()
    missing = client.post("/credits/api/auth/login", json={"id_number": ID_NUMBER})
    assert missing.status_code == 422 and "password" in missing.json["error"]["fields"]
    extra = client.post("/credits/api/auth/login", json={"id_number": ID_NUMBER, "password": "x", "role": "admin"})
    assert extra.status_code == 422


def test_a_token_without_its_account_must_log_in_again(credits_app, databases):
    ghost = Principal(role="trainee", subject="trainee:999", name="无名", trainee_key="x" * 64)
    api = credits_app.test_client().post("/credits/api/auth/password", headers=bearer(ghost),
                                         json={"old_password": "a", "new_password": "b"})
    assert api.status_code == 401
    page = login_client(credits_app.test_client(), ghost).get("/credits/")
    assert page.status_code == 302 and page.headers["Location"].endswith("/credits/login")


def test_logs_hold_neither_id_numbers_nor_passwords(credits_app, make_account, caplog):
    make_account()
    caplog.set_level(logging.DEBUG)
    client = credits_app.test_client()
    page_login(client, ID_NUMBER, "wrongpass")
    page_login(client, ID_NUMBER, "zengxiaoming")
    client.post("/credits/api/auth/login", json={"id_number": ID_NUMBER, "password": "zengxiaoming"})
    text = caplog.text
    assert caplog.records
    for secret in (ID_NUMBER, ID_NUMBER.lower(), "zengxiaoming", "wrongpass"):
        assert secret not in text


# ---------------------------------------------------------------- first sight from checkin.recorded


def test_first_checkin_opens_the_account_once(credits_app, databases):
    from services.credits.accounts.models import TraineeAccount

    assert deliver(event(checkin_id=1, window_id=3)) is True
    assert deliver(event(checkin_id=2, window_id=4, name="张三丰", mobile_enc=pii.encrypt("13800001111"))) is True
    [account] = accounts(databases)
    assert account.trainee_key == pii.id_hash(ID_NUMBER) and pii.decrypt(account.id_enc) == ID_NUMBER
    assert account.name == "张三"  # the first sight opens the account; a later check-in does not change it
    assert account.mobile_hash == pii.mobile_hash("13912345678") and pii.decrypt(account.mobile_enc) == "13912345678"
    assert (account.must_change, account.password_hash) == (True, None)
    s = databases["credits"].new_session()
    assert s.scalar(select(func.count()).select_from(TraineeAccount)) == 1
    s.close()
    resp = page_login(credits_app.test_client(), ID_NUMBER, "zhangsan")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/credits/password")


def test_a_later_checkin_never_resets_a_changed_password(credits_app, make_account, databases):
    make_account(name="张三", password=NEW_PASSWORD)
    assert deliver(event(checkin_id=5)) is True
    [account] = accounts(databases)
    assert account.must_change is False and account.password_hash is not None
    assert page_login(credits_app.test_client(), ID_NUMBER, NEW_PASSWORD).headers["Location"].endswith("/credits/")


# ---------------------------------------------------------------- permissions

ENDPOINTS = {
    "GET,POST /credits/login": ("public",), "GET /credits/": ("trainee", "institution", "reviewer"),
    "GET,POST /credits/password": ("trainee",),
    "POST /credits/logout": ("public",), "POST /credits/api/auth/login": ("public",),
    "POST /credits/api/auth/password": ("trainee",),
    "GET,POST /credits/password/forgot": ("public",), "GET,POST /credits/password/reset": ("public",),
    "POST /credits/api/auth/forgot": ("public",), "POST /credits/api/auth/reset": ("public",),
    "GET /credits/accounts": ("reviewer",), "POST /credits/accounts": ("reviewer",),
    "POST /credits/accounts/mobile": ("reviewer",), "POST /credits/accounts/reset": ("reviewer",),
    "POST /credits/accounts/name": ("reviewer",),
}


def test_every_new_endpoint_declares_its_access(credits_app):
    from services.common.web import endpoint_access

    table = endpoint_access(credits_app)
    for rule, roles in ENDPOINTS.items():
        assert table[rule] == roles, rule


@pytest.fixture
def people(make_account):
    return {"anonymous": None, "trainee": make_account(password=NEW_PASSWORD),
            "neighbour": make_account(name="单雄信", id_number=NEIGHBOUR_ID, password="Andere2026pw"),
            "institution": INST_A, "reviewer": REVIEWER}


WHO = ("anonymous", "trainee", "neighbour", "institution", "reviewer")


def _client(credits_app, principal):
    client = credits_app.test_client()
    return login_client(client, principal) if principal else client


@pytest.mark.parametrize("who", WHO)
def test_page_permissions(credits_app, people, who):
    principal = people[who]
    client = _client(credits_app, principal)
    login_page = client.get("/credits/login")
    home = client.get("/credits/")
    password = client.get("/credits/password")
    if who == "anonymous":
        assert login_page.status_code == 200
        assert home.status_code == 302 and home.headers["Location"].endswith("/credits/login")
        assert password.status_code == 302 and password.headers["Location"].endswith("/credits/login")
        assert client.post("/credits/password", data={}).status_code == 401
        assert client.post("/credits/logout").status_code == 302
        return
    if who in ("institution", "reviewer"):
        assert login_page.status_code == 200  # public: another role may log in as a trainee
        token = csrf_of(login_page.get_data(as_text=True))
        # the credits home sends the office and the committee on to their award lists (学分管理)
        assert home.status_code == 302 and home.headers["Location"].endswith("/credits/awards")
        assert password.status_code == 403
        assert client.post("/credits/password", data={"csrf_token": token}).status_code == 403
        assert client.post("/credits/logout", data={"csrf_token": token}).status_code == 302
        return
    own, other = ("曾小明", "单雄信") if who == "trainee" else ("单雄信", "曾小明")
    assert login_page.status_code == 302 and login_page.headers["Location"].endswith("/credits/")
    html = home.get_data(as_text=True)
    assert home.status_code == 200 and own in html and other not in html
    assert password.status_code == 200
    token = csrf_of(password.get_data(as_text=True))
    assert client.post("/credits/password", data={"csrf_token": token}).status_code == 422
    assert client.post("/credits/logout", data={"csrf_token": token}).status_code == 302


@pytest.mark.parametrize("who", WHO)
def test_api_permissions(credits_app, people, databases, who):
    principal = people[who]
    headers = bearer(principal) if principal else {}
    client = credits_app.test_client()
    login = client.post("/credits/api/auth/login", headers=headers, json={"id_number": ID_NUMBER,
                                                                          "password": NEW_PASSWORD})
    assert login.status_code == 200  # public
    # the trainee's own password: only the trainee's token may change it, and only the trainee's account changes
    change = client.post("/credits/api/auth/password", headers=headers,
                         json={"old_password": NEW_PASSWORD, "new_password": "Zweites2027pw"})
    expected = {"anonymous": 401, "trainee": 200, "neighbour": 400, "institution": 403, "reviewer": 403}[who]
    assert change.status_code == expected
    if expected != 200:
        assert change.json["error"]["message"]
    still = client.post("/credits/api/auth/login", json={"id_number": ID_NUMBER, "password": NEW_PASSWORD})
    assert still.status_code == (401 if who == "trainee" else 200)
    neighbour = client.post("/credits/api/auth/login", json={"id_number": NEIGHBOUR_ID, "password": "Andere2026pw"})
    assert neighbour.status_code == 200


def test_each_visitor_s_login_form_has_its_own_token(credits_app, make_account):
    """With one CSRF token for every visitor, a hostile page could post the login form and sign a victim's
    browser into the attacker's account (the security walk did it with curl): the token is bound to a random
    SameSite cookie of the visitor's own."""
    make_account(password=NEW_PASSWORD)
    mine, theirs = credits_app.test_client(), credits_app.test_client()
    page = mine.get("/credits/login")
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("cme_csrf=") and "SameSite=Lax" in cookie and "HttpOnly" in cookie
    token = csrf_of(page.get_data(as_text=True))
    assert token != csrf_of(theirs.get("/credits/login").get_data(as_text=True))
    assert token == csrf_of(mine.get("/credits/login").get_data(as_text=True))  # stable for the same visitor
    forged = credits_app.test_client().post("/credits/login", data={
        "csrf_token": token, "id_number": ID_NUMBER, "password": NEW_PASSWORD})  # the token, not the cookie
    assert forged.status_code == 403 and not has_session_cookie(forged)
    assert page_login(mine, ID_NUMBER, NEW_PASSWORD).status_code == 302


def test_a_password_typed_in_full_width_is_the_same_password(credits_app, make_account, databases):
    """A phone keyboard in 全角 mode types abc１２３４５６: set that way, abc123456 logs in, and the other way round."""
    from services.credits.accounts.services import change_password, find_account

    make_account(password="Neues2026pw")
    s = databases["credits"].new_session()
    change_password(s, find_account(s, ID_NUMBER), "Neues2026pw", "abc１２３４５６")
    s.commit()
    s.close()
    client = credits_app.test_client()
    for typed in ("abc123456", "abc１２３４５６", "ａｂｃ123456"):
        r = client.post("/credits/api/auth/login", json={"id_number": ID_NUMBER, "password": typed})
        assert r.status_code == 200, typed
    assert client.post("/credits/api/auth/login", json={"id_number": ID_NUMBER,
                                                        "password": "abc12345"}).status_code == 401


def test_a_phone_whose_login_was_ended_elsewhere_is_told_why(credits_app, make_account):
    """Her password changed on another phone: this one lands on the login page with a sentence saying the login
    ended, not a bare form; a first visit or a logout shows none."""
    make_account(password=NEW_PASSWORD)
    mine, other = credits_app.test_client(), credits_app.test_client()
    assert page_login(mine, ID_NUMBER, NEW_PASSWORD).status_code == 302
    assert page_login(other, ID_NUMBER, NEW_PASSWORD).status_code == 302
    assert "登录已失效" not in credits_app.test_client().get("/credits/login").get_data(as_text=True)
    time.sleep(0.01)  # the change comes after both logins
    token = csrf_of(mine.get("/credits/password").get_data(as_text=True))
    changed = mine.post("/credits/password", data={"csrf_token": token, "old_password": NEW_PASSWORD,
                                                   "new_password": "Anders2026pw", "repeat_password": "Anders2026pw"})
    assert changed.status_code == 302
    sent_back = other.get("/credits/compliance")
    assert sent_back.status_code == 302 and sent_back.headers["Location"].endswith("/credits/login")
    assert "登录已失效（可能已在其他设备修改了密码" in other.get("/credits/login").get_data(as_text=True)


def test_a_doctor_without_an_account_yet_is_told_when_accounts_open(credits_app, make_account):
    """A doctor who never checked in at a provincial project types her ID number and pinyin: refused as a wrong
    password is (nothing says whose account exists), on a page that says when a trainee's account opens, so she
    does not try every spelling, get locked, and wait for a 忘记密码 SMS that cannot come."""
    make_account()
    client = credits_app.test_client()
    for resp in (client.get("/credits/login"), page_login(client, NEIGHBOUR_ID, "zengxiaoming"),
                 page_login(client, ID_NUMBER, "zhangsan")):
        html = resp.get_data(as_text=True)
        assert "学员账号在您首次参加省级继续医学教育项目扫码签到（或举办机构为您录入学分）后自动开通" in html
    assert page_login(client, NEIGHBOUR_ID, "zengxiaoming").get_data(as_text=True).count("身份证号或密码不正确") == 1
