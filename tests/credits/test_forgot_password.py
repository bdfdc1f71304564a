"""忘记密码 of trainees: a code to the mobile on record with the institution codes' limits (5 minutes, 5 wrong
tries, 60 s resend, daily cap), reset then login, the same answer for an unknown ID number (and no SMS), and
who may use the endpoints."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from services.common import clock, pii
from tests.conftest import bearer, login_client
from tests.credits.test_offerings import INST_A, REVIEWER
from tests.credits.test_trainee_login import (  # noqa: F401 - make_account is a fixture
    ID_NUMBER,
    MOBILE,
    NEIGHBOUR_ID,
    NEW_PASSWORD,
    accounts,
    csrf_of,
    make_account,
    page_login,
)

NOON = dt.datetime(2026, 12, 10, 12, 0, tzinfo=clock.SHANGHAI)  # far from the Shanghai midnight
RESET_PASSWORD = "Vergessen2026"
MASK = re.compile(r"^1\d\d\*{4}\d{4}$")


def at(seconds: float) -> None:
    clock.set_now(NOON + dt.timedelta(seconds=seconds))


def inbox(sms_log: Path) -> list[dict]:
    if not sms_log.exists():
        return []
    return [json.loads(line) for line in sms_log.read_text(encoding="utf-8").splitlines() if line.strip()]


def last_code(sms_log: Path, mobile: str = MOBILE) -> str:
    text = [m for m in inbox(sms_log) if m["mobile"] == mobile][-1]["text"]
    return re.search(r"(?<!\d)(\d{6})(?!\d)", text).group(1)


@pytest.fixture
def trainee(make_account, sms_log):  # noqa: F811 - the fixture imported above
    if sms_log.exists():
        sms_log.unlink()
    at(0)
    return make_account()


def forgot(client, id_number=ID_NUMBER, **kw):
    return client.post("/credits/api/auth/forgot", json={"id_number": id_number}, **kw)


def reset(client, code, password=RESET_PASSWORD, id_number=ID_NUMBER, **kw):
    return client.post("/credits/api/auth/reset", json={"id_number": id_number, "code": code,
                                                        "new_password": password}, **kw)


def sms_rows(databases) -> int:
    from services.credits.accounts.models import SmsCode

    s = databases["credits"].new_session()
    try:
        return s.scalar(select(func.count()).select_from(SmsCode))
    finally:
        s.close()


# ---------------------------------------------------------------- the flow


def test_api_reset_then_login_with_the_new_password(credits_app, trainee, sms_log, databases):
    client = credits_app.test_client()
    resp = forgot(client)
    assert resp.status_code == 200
    assert resp.json == {"sent": True, "mobile_masked": "139****5678", "expires_in": 300}
    [message] = inbox(sms_log)
    assert message["mobile"] == MOBILE and "重置密码" in message["text"] and "5分钟" in message["text"]
    from services.credits.accounts.models import SmsCode

    s = databases["credits"].new_session()
    row = s.scalar(select(SmsCode))
    code = last_code(sms_log)
    assert row.purpose == "reset" and code not in row.code_hash and row.mobile_hash == pii.mobile_hash(MOBILE)
    s.close()
    weak = reset(client, code, password="short1")
    assert weak.status_code == 422 and "new_password" in weak.json["error"]["fields"]
    ok = reset(client, code)  # the refused password did not use the code up
    assert ok.status_code == 200 and ok.json == {"reset": True, "must_change": False}
    again = reset(client, code)  # she did get a code: it is spent, not "never asked for"
    assert again.status_code == 400 and again.json["error"]["code"] == "sms_used"
    assert client.post("/credits/api/auth/login", json={"id_number": ID_NUMBER,
                                                        "password": "zengxiaoming"}).status_code == 401
    login = client.post("/credits/api/auth/login", json={"id_number": ID_NUMBER, "password": RESET_PASSWORD})
    assert login.status_code == 200 and login.json["must_change"] is False
    [account] = accounts(databases)
    assert account.must_change is False and account.failed_attempts == 0 and account.locked_until is None


def test_reset_clears_a_lock(credits_app, trainee, sms_log, databases):
    client = credits_app.test_client()
    for _ in range(5):
        client.post("/credits/api/auth/login", json={"id_number": ID_NUMBER, "password": "wrong"})
    assert accounts(databases)[0].locked_until is not None
    forgot(client)
    assert reset(client, last_code(sms_log)).status_code == 200
    assert accounts(databases)[0].locked_until is None
    assert client.post("/credits/api/auth/login", json={"id_number": ID_NUMBER,
                                                        "password": RESET_PASSWORD}).status_code == 200


def test_page_flow_from_the_login_link(credits_app, trainee, sms_log, databases):
    client = credits_app.test_client()
    assert '<a href="/credits/password/forgot">密码找回</a>' in client.get("/credits/login").get_data(as_text=True)
    page = client.get("/credits/password/forgot")
    # the guide's label (如忘记密码可点击密码找回进行密码重置) is the page's title and heading
    assert page.status_code == 200 and "<title>密码找回" in page.get_data(as_text=True)
    assert "<h1>密码找回</h1>" in page.get_data(as_text=True)
    token = csrf_of(page.get_data(as_text=True))
    empty = client.post("/credits/password/forgot", data={"csrf_token": token})
    assert empty.status_code == 422 and 'id="e-id_number"' in empty.get_data(as_text=True)
    assert "请输入身份证号码" in empty.get_data(as_text=True)
    short = client.post("/credits/password/forgot", data={"csrf_token": token, "id_number": "123"})
    assert short.status_code == 422 and "应为 18 位" in short.get_data(as_text=True) and inbox(sms_log) == []
    sent = client.post("/credits/password/forgot", data={"csrf_token": token, "id_number": ID_NUMBER})
    html = sent.get_data(as_text=True)
    assert sent.status_code == 200 and "139****5678" in html and MOBILE not in html
    assert 'action="/credits/password/reset"' in html and ID_NUMBER in html  # the typed ID number stays
    code = last_code(sms_log)
    token = csrf_of(html)

    def post(**form):
        return client.post("/credits/password/reset", data={"csrf_token": token, "id_number": ID_NUMBER, **form})

    mismatch = post(code=code, new_password=RESET_PASSWORD, repeat_password=RESET_PASSWORD + "x")
    assert mismatch.status_code == 422 and "两次输入的新密码不一致" in mismatch.get_data(as_text=True)
    assert f'value="{code}"' in mismatch.get_data(as_text=True)  # the SMS code typed stays in its field
    # a mistyped check digit is said at the field (it said 请先获取验证码), and costs no try of the code
    typo = ID_NUMBER[:-1] + ("0" if ID_NUMBER[-1] != "0" else "1")
    slip = client.post("/credits/password/reset", data={"csrf_token": token, "id_number": typo, "code": code,
                                                         "new_password": RESET_PASSWORD,
                                                         "repeat_password": RESET_PASSWORD})
    assert slip.status_code == 422 and "校验位不正确" in slip.get_data(as_text=True)
    bad_code = post(code="12ab56", new_password=RESET_PASSWORD, repeat_password=RESET_PASSWORD)
    assert bad_code.status_code == 422 and "6位数字" in bad_code.get_data(as_text=True)
    wrong = post(code=f"{(int(code) + 1) % 10**6:06d}", new_password=RESET_PASSWORD, repeat_password=RESET_PASSWORD)
    html = wrong.get_data(as_text=True)
    assert wrong.status_code == 400 and "还可以再试 4 次" in html and 'id="e-code"' in html
    weak = post(code=code, new_password="zengxiaoming1", repeat_password="zengxiaoming1")
    assert weak.status_code == 422 and 'id="e-new_password"' in weak.get_data(as_text=True)
    done = post(code=code, new_password=RESET_PASSWORD, repeat_password=RESET_PASSWORD)
    assert done.status_code == 302 and done.headers["Location"].endswith("/credits/login")
    assert "密码已重置" in client.get("/credits/login").get_data(as_text=True)
    resp = page_login(client, ID_NUMBER, RESET_PASSWORD)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/credits/")


def test_forms_need_their_csrf_token(credits_app, trainee, sms_log):
    client = credits_app.test_client()
    assert client.post("/credits/password/forgot", data={"id_number": ID_NUMBER}).status_code == 403
    assert client.post("/credits/password/reset", data={"id_number": ID_NUMBER, "code": "123456",
                                                        "new_password": RESET_PASSWORD,
                                                        "repeat_password": RESET_PASSWORD}).status_code == 403
    assert inbox(sms_log) == []


# ---------------------------------------------------------------- unknown ID numbers


def test_unknown_id_gets_the_same_answer_and_no_sms(credits_app, trainee, sms_log, databases):
    client = credits_app.test_client()
    unknown = forgot(client, NEIGHBOUR_ID)
    assert unknown.status_code == 200
    assert set(unknown.json) == {"sent", "mobile_masked", "expires_in"}
    assert unknown.json["sent"] is True and unknown.json["expires_in"] == 300
    assert MASK.match(unknown.json["mobile_masked"])
    # asking again within 60 s meets the same wait as an account with a mobile would: no tell-tale 200
    again = forgot(client, NEIGHBOUR_ID)
    assert again.status_code == 429 and again.json["error"]["code"] == "sms_too_soon"
    at(61)
    assert forgot(client, NEIGHBOUR_ID).json == unknown.json  # stable: asking later shows the same
    assert inbox(sms_log) == [] and sms_rows(databases) == 0
    known = forgot(client)
    assert set(known.json) == set(unknown.json) and MASK.match(known.json["mobile_masked"])
    assert len(inbox(sms_log)) == 1
    # reset for the unknown ID: the same refusal as an account's wrong code
    refused = reset(client, "123456", id_number=NEIGHBOUR_ID)
    assert refused.status_code == 400 and refused.json["error"]["code"] == "sms_wrong_code"
    at(130)
    token = csrf_of(client.get("/credits/password/forgot").get_data(as_text=True))
    page = client.post("/credits/password/forgot", data={"csrf_token": token, "id_number": NEIGHBOUR_ID})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and unknown.json["mobile_masked"] in html and "验证码已发送至" in html
    assert len(inbox(sms_log)) == 1


def test_the_reset_step_answers_an_unknown_id_number_as_it_would_an_account(credits_app, trainee, sms_log,
                                                                            monkeypatch):
    """The security walk: the reset step said 请先获取验证码 to an ID number without an account where an account
    said 验证码不正确, and an account whose code was used up said so days later: two requests told who is a
    doctor in the province. Both walk the same answers now, through the 60 s rule, the daily cap, five wrong
    tries, the five minutes and the day after which a code asked for is forgotten."""
    monkeypatch.setenv("CME_SMS_DAILY_CAP", "3")
    client = credits_app.test_client()

    def walk(id_number: str, start: float) -> list[tuple[int, str]]:
        said: list[tuple[int, str]] = []

        def step(seconds: float, r) -> None:  # type: ignore[no-untyped-def]
            said.append((seconds, r.status_code, (r.json.get("error") or {}).get("message", "")))

        def wrong() -> str:  # never the code an account was really sent
            sent = [m for m in inbox(sms_log) if m["mobile"] == MOBILE]
            return "000000" if not sent or last_code(sms_log) != "000000" else "111111"

        for seconds, ask in ((0, "reset"), (0, "forgot"), (1, "reset"), (2, "reset"), (3, "reset"), (4, "reset"),
                             (5, "reset"), (6, "reset"), (30, "forgot"), (61, "forgot"), (62, "reset"),
                             (61 + 300, "reset"), (122, "forgot"), (183, "forgot"), (183 + 86400, "reset")):
            at(start + seconds)
            step(seconds, forgot(client, id_number) if ask == "forgot" else reset(client, wrong(), id_number=id_number))
        return said

    known = walk(ID_NUMBER, 0)
    unknown = walk(NEIGHBOUR_ID, 2 * 86400)
    assert [s[1] for s in known] == [400, 200, 400, 400, 400, 400, 429, 429, 429, 200, 400, 400, 200, 429, 400]
    assert "还可以再试 4 次" in known[2][2] and "已过期" in known[11][2] and "3 次上限" in known[13][2]
    assert unknown == known


def test_an_account_without_mobile_is_answered_alike(credits_app, databases, sms_log):
    from services.credits.accounts.services import ensure_account

    if sms_log.exists():
        sms_log.unlink()
    s = databases["credits"].new_session()
    ensure_account(s, pii.id_hash(ID_NUMBER), pii.encrypt(ID_NUMBER), "张三", None, None)
    s.commit()
    s.close()
    resp = forgot(credits_app.test_client())
    assert resp.status_code == 200 and MASK.match(resp.json["mobile_masked"])
    assert inbox(sms_log) == [] and sms_rows(databases) == 0


# ---------------------------------------------------------------- the limits, once each


def test_code_expires_after_five_minutes(credits_app, trainee, sms_log):
    client = credits_app.test_client()
    forgot(client)
    code = last_code(sms_log)
    at(5 * 60)
    r = reset(client, code)
    assert r.status_code == 400 and r.json["error"]["code"] == "sms_expired" and "已过期" in r.json["error"]["message"]
    forgot(client)
    assert reset(client, last_code(sms_log)).status_code == 200


def test_five_wrong_tries_kill_the_code(credits_app, trainee, sms_log):
    client = credits_app.test_client()
    forgot(client)
    code = last_code(sms_log)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for left in (4, 3, 2, 1):
        r = reset(client, wrong)
        assert r.status_code == 400 and f"还可以再试 {left} 次" in r.json["error"]["message"]
        assert r.json["error"]["fields"]["code"] == "验证码不正确。"
    r = reset(client, wrong)
    assert r.status_code == 429 and "已输错 5 次" in r.json["error"]["message"]
    assert r.headers["Retry-After"] == "60"  # a new code, after the 60 s rule at most
    r = reset(client, code)  # even the right code is dead now
    assert r.status_code == 429 and "重新获取" in r.json["error"]["message"]
    assert r.headers["Retry-After"] == "60"
    at(61)
    forgot(client)
    assert reset(client, last_code(sms_log)).status_code == 200


def test_no_resend_within_sixty_seconds(credits_app, trainee, sms_log):
    client = credits_app.test_client()
    assert forgot(client).status_code == 200
    at(30)
    r = forgot(client)
    assert r.status_code == 429 and r.json["error"]["code"] == "sms_too_soon"
    assert "30 秒后" in r.json["error"]["message"] or "31 秒后" in r.json["error"]["message"]
    # the header says the seconds the message says
    assert f"{r.headers['Retry-After']} 秒后" in r.json["error"]["message"]
    token = csrf_of(client.get("/credits/password/forgot").get_data(as_text=True))
    page = client.post("/credits/password/forgot", data={"csrf_token": token, "id_number": ID_NUMBER})
    assert page.status_code == 429 and "秒后再重新获取" in page.get_data(as_text=True)
    assert f"{page.headers['Retry-After']} 秒后" in page.get_data(as_text=True)
    assert len(inbox(sms_log)) == 1
    at(60)
    assert forgot(client).status_code == 200 and len(inbox(sms_log)) == 2


def test_daily_cap_per_mobile(credits_app, trainee, sms_log, monkeypatch):
    monkeypatch.setenv("CME_SMS_DAILY_CAP", "3")
    client = credits_app.test_client()
    for i in range(3):
        at(i * 61)
        assert forgot(client).status_code == 200
    at(3 * 61)
    r = forgot(client)
    assert r.status_code == 429 and r.json["error"]["code"] == "sms_daily_cap"
    assert "今日" in r.json["error"]["message"] and "3 次上限" in r.json["error"]["message"]
    # the cap lifts at the Shanghai midnight
    midnight = dt.datetime(2026, 12, 11, tzinfo=clock.SHANGHAI)
    assert int(r.headers["Retry-After"]) == math.ceil((midnight - clock.now()).total_seconds())
    clock.set_now(dt.datetime(2026, 12, 11, 0, 0, 5, tzinfo=clock.SHANGHAI))  # the Shanghai day turns
    assert forgot(client).status_code == 200


def test_failed_delivery_does_not_block_a_retry(credits_app, trainee, sms_log, monkeypatch, databases):
    from services.common import sms

    def broken(*_a, **_k):
        raise sms.SmsError("down")

    monkeypatch.setattr(sms, "send_sms", broken)
    client = credits_app.test_client()
    r = forgot(client)
    assert r.status_code == 503 and "短信发送失败" in r.json["error"]["message"]
    assert sms_rows(databases) == 0
    monkeypatch.undo()
    assert forgot(client).status_code == 200


def test_logs_hold_neither_id_numbers_nor_mobiles_nor_codes(credits_app, trainee, sms_log, caplog):
    caplog.set_level(logging.DEBUG)
    client = credits_app.test_client()
    forgot(client)
    forgot(client, NEIGHBOUR_ID)
    code = last_code(sms_log)
    reset(client, code)
    assert caplog.records
    for secret in (ID_NUMBER, NEIGHBOUR_ID, MOBILE, code, RESET_PASSWORD):
        assert secret not in caplog.text


# ---------------------------------------------------------------- permissions

WHO = ("anonymous", "trainee", "institution", "reviewer")


@pytest.mark.parametrize("who", WHO)
def test_forgot_and_reset_are_public(credits_app, make_account, sms_log, databases, who):  # noqa: F811
    if sms_log.exists():
        sms_log.unlink()
    at(0)
    principal = {"anonymous": None, "trainee": make_account(password=NEW_PASSWORD), "institution": INST_A,
                 "reviewer": REVIEWER}[who]
    if who != "trainee":
        make_account()  # the account whose password is reset
    headers = bearer(principal) if principal else {}
    client = credits_app.test_client()
    sent = forgot(client, headers=headers)
    assert sent.status_code == 200 and sent.json["mobile_masked"] == "139****5678"
    wrong = reset(client, "000000" if last_code(sms_log) != "000000" else "111111", headers=headers)
    assert wrong.status_code == 400 and wrong.json["error"]["code"] == "sms_wrong_code"
    assert reset(client, last_code(sms_log), headers=headers).status_code == 200
    # the pages, with the principal's cookie (or none)
    browser = login_client(credits_app.test_client(), principal) if principal else credits_app.test_client()
    for path in ("/credits/password/forgot", "/credits/password/reset"):
        assert browser.get(path).status_code == 200
    token = csrf_of(browser.get("/credits/password/forgot").get_data(as_text=True))
    at(61)
    page = browser.post("/credits/password/forgot", data={"csrf_token": token, "id_number": ID_NUMBER})
    assert page.status_code == 200 and "139****5678" in page.get_data(as_text=True)
    done = browser.post("/credits/password/reset", data={"csrf_token": token, "id_number": ID_NUMBER,
                                                         "code": last_code(sms_log), "new_password": "Drittes2028pw",
                                                         "repeat_password": "Drittes2028pw"})
    assert done.status_code == 302
    login = credits_app.test_client().post("/credits/api/auth/login", json={"id_number": ID_NUMBER,
                                                                            "password": "Drittes2028pw"})
    assert login.status_code == 200


def test_a_number_that_cannot_be_an_id_number_is_refused_at_the_field(credits_app, trainee, sms_log):
    """One digit off (a wrong check digit) used to "send" a code to a made-up number (the trainee's walk)."""
    client = credits_app.test_client()
    r = forgot(client, ID_NUMBER[:-1] + ("0" if ID_NUMBER[-1] != "0" else "1"))
    assert r.status_code == 422 and "id_number" in r.json["error"]["fields"]
    assert inbox(sms_log) == []


FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def test_a_code_typed_in_full_width_digits_is_the_code(credits_app, trainee, sms_log, databases):
    """The QA walk: ７５３０６１ typed in a Chinese keyboard's 全角 mode was refused as wrong and used a try."""
    from services.credits.accounts.models import SmsCode

    client = credits_app.test_client()
    token = csrf_of(client.get("/credits/password/forgot").get_data(as_text=True))
    client.post("/credits/password/forgot", data={"csrf_token": token, "id_number": ID_NUMBER})
    typed = last_code(sms_log).translate(FULL_WIDTH)
    done = client.post("/credits/password/reset", data={"csrf_token": token, "id_number": ID_NUMBER, "code": typed,
                                                        "new_password": RESET_PASSWORD,
                                                        "repeat_password": RESET_PASSWORD})
    assert done.status_code == 302 and done.headers["Location"].endswith("/credits/login")
    assert "密码已重置" in client.get("/credits/login").get_data(as_text=True)
    s = databases["credits"].new_session()
    try:
        assert [row.attempts for row in s.scalars(select(SmsCode))] == [0]  # no try was used up
    finally:
        s.close()
    at(61)  # the JSON API reads it alike
    forgot(client)
    assert reset(client, last_code(sms_log).translate(FULL_WIDTH), password="Zweites2027pw").status_code == 200


def test_a_used_code_is_said_to_be_used_not_never_asked_for(credits_app, trainee, sms_log):
    """The QA walk: typing the code again after the reset answered 请先点击"获取验证码" though she had one."""
    client = credits_app.test_client()
    token = csrf_of(client.get("/credits/password/reset").get_data(as_text=True))

    def post(code: str, password: str = RESET_PASSWORD):
        return client.post("/credits/password/reset", data={"csrf_token": token, "id_number": ID_NUMBER,
                                                            "code": code, "new_password": password,
                                                            "repeat_password": password})

    never = post("123456")  # no code asked for yet: the existing sentence stands
    assert never.status_code == 400 and "请先点击“获取验证码”" in never.get_data(as_text=True)
    forgot(client)
    code = last_code(sms_log)
    assert post(code).status_code == 302
    at(30)
    again = post(code, "Nochmal2027pw")
    html = again.get_data(as_text=True)
    assert again.status_code == 400 and "验证码已使用或已过期，请重新获取验证码。" in html
    assert "请先点击" not in html and 'id="e-code"' in html and f'value="{code}"' in html
    # a day on, the spent code is forgotten as any code asked for is
    at(86400 + 60)
    assert "请先点击“获取验证码”" in post(code, "Nochmal2027pw").get_data(as_text=True)


def test_already_received_after_the_wait_keeps_the_id_number_out_of_the_url(credits_app, trainee, sms_log):
    """The QA walk: after 验证码已发送，请 N 秒后再重新获取 the link 已收到验证码 opened an empty form, so the ID number
    had to be typed again. It goes along now, in a posted hidden field (never in a URL), and no SMS is sent."""
    client = credits_app.test_client()
    token = csrf_of(client.get("/credits/password/forgot").get_data(as_text=True))
    client.post("/credits/password/forgot", data={"csrf_token": token, "id_number": ID_NUMBER})
    at(30)
    wait = client.post("/credits/password/forgot", data={"csrf_token": token, "id_number": ID_NUMBER})
    html = wait.get_data(as_text=True)
    assert wait.status_code == 429 and "秒后再重新获取" in html and "已收到验证码" in html
    assert not re.search(r'(href|action)="[^"]*' + ID_NUMBER, html)  # in no URL of the page
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html.split("已收到验证码")[0]
                             .rsplit("<form", 1)[1]))
    assert hidden["id_number"] == ID_NUMBER and hidden["have_code"] == "1"
    opened = client.post("/credits/password/forgot", data=hidden)
    page = opened.get_data(as_text=True)
    assert opened.status_code == 200 and 'action="/credits/password/reset"' in page
    assert f'id="f-id_number" name="id_number" type="text" value="{ID_NUMBER}"' in page
    assert "验证码已发送至" not in page and len(inbox(sms_log)) == 1  # nothing sent again
    done = client.post("/credits/password/reset", data={"csrf_token": csrf_of(page), "id_number": ID_NUMBER,
                                                        "code": last_code(sms_log), "new_password": RESET_PASSWORD,
                                                        "repeat_password": RESET_PASSWORD})
    assert done.status_code == 302 and done.headers["Location"].endswith("/credits/login")
    # before anything is typed the plain link stays
    fresh = client.get("/credits/password/forgot").get_data(as_text=True)
    assert 'href="/credits/password/reset">已收到验证码' in fresh
