"""SMS code rules (expiry, 5 wrong tries, 60 s resend, daily cap) and the provider interface."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from services.common import clock, sms
from services.common.config import get_settings

# A Shanghai noon, so a test moving minutes never crosses the local midnight by accident.
NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=clock.SHANGHAI)


def last_code(sms_log: Path) -> str:
    text = json.loads(sms_log.read_text(encoding="utf-8").splitlines()[-1])["text"]
    return re.search(r"(?<!\d)(\d{6})(?!\d)", text).group(1)


def at(seconds: float) -> None:
    clock.set_now(NOON + dt.timedelta(seconds=seconds))


@pytest.fixture
def started(projects_app, inst_a, sms_log):
    """An institution past its password step: (client, login token, admin id)."""
    if sms_log.exists():
        sms_log.unlink()
    at(0)
    c = projects_app.test_client()
    r = c.post("/projects/api/auth/login", json={"kind": "institution", "account": "xa_first",
                                                 "password": "Passw0rd!"})
    return c, r.json["login_token"], r.json["admins"][0]["id"]


def send(c, token, admin_id):  # type: ignore[no-untyped-def]
    return c.post("/projects/api/auth/sms/send", json={"login_token": token, "admin_id": admin_id})


def verify(c, token, admin_id, code):  # type: ignore[no-untyped-def]
    return c.post("/projects/api/auth/sms/verify", json={"login_token": token, "admin_id": admin_id, "code": code})


def test_code_expires_after_five_minutes(started, sms_log):
    c, token, admin = started
    assert send(c, token, admin).status_code == 200
    code = last_code(sms_log)
    at(5 * 60)
    r = verify(c, token, admin, code)
    assert r.status_code == 400 and r.json["error"]["code"] == "sms_expired"
    assert "已过期" in r.json["error"]["message"]
    at(5 * 60 + 1)  # a new code works again
    assert send(c, token, admin).status_code == 200
    assert verify(c, token, admin, last_code(sms_log)).status_code == 200


def test_login_token_itself_expires_after_fifteen_minutes(started):
    c, token, admin = started
    at(15 * 60 + 1)
    r = send(c, token, admin)
    assert r.status_code == 401 and "重新输入账号和密码" in r.json["error"]["message"]


def test_five_wrong_tries_kill_the_code(started, sms_log):
    c, token, admin = started
    send(c, token, admin)
    code = last_code(sms_log)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for left in (4, 3, 2, 1):
        r = verify(c, token, admin, wrong)
        assert r.status_code == 400 and f"还可以再试 {left} 次" in r.json["error"]["message"]
    r = verify(c, token, admin, wrong)
    assert r.status_code == 429 and "已输错 5 次" in r.json["error"]["message"]
    assert r.headers["Retry-After"] == "60"
    r = verify(c, token, admin, code)  # even the right code is dead now
    assert r.status_code == 429 and "重新获取" in r.json["error"]["message"]
    at(61)
    send(c, token, admin)
    assert verify(c, token, admin, last_code(sms_log)).status_code == 200


def test_code_is_single_use_and_stored_hashed(started, sms_log, projects_db):
    from services.common import pii
    from services.projects.auth.models import SmsCode

    c, token, admin = started
    send(c, token, admin)
    code = last_code(sms_log)
    s = projects_db.new_session()
    row = s.scalar(select(SmsCode))
    assert code not in row.code_hash and len(row.code_hash) == 64
    mobile = json.loads(sms_log.read_text(encoding="utf-8").splitlines()[-1])["mobile"]
    assert row.mobile_hash == pii.mobile_hash(mobile)
    s.close()
    assert verify(c, token, admin, code).status_code == 200
    r = verify(c, token, admin, code)  # typed again (a second tab): she did get a code, it is used
    assert r.status_code == 400 and r.json["error"]["code"] == "sms_used" and "已使用" in r.json["error"]["message"]
    r = verify(c, token, admin, "12ab56")
    assert r.status_code == 422 and "6位数字" in r.json["error"]["fields"]["code"]


def test_no_resend_within_sixty_seconds(started):
    c, token, admin = started
    assert send(c, token, admin).status_code == 200
    at(30)
    r = send(c, token, admin)
    assert r.status_code == 429 and r.json["error"]["code"] == "sms_too_soon"
    assert "30 秒后" in r.json["error"]["message"] or "31 秒后" in r.json["error"]["message"]
    assert f"{r.headers['Retry-After']} 秒后" in r.json["error"]["message"]  # the header says the same wait
    at(60)
    assert send(c, token, admin).status_code == 200


def test_daily_cap_per_mobile(started, monkeypatch):
    monkeypatch.setenv("CME_SMS_DAILY_CAP", "3")
    c, token, admin = started
    for i in range(3):
        at(i * 61)
        assert send(c, token, admin).status_code == 200
    at(3 * 61)
    r = send(c, token, admin)
    assert r.status_code == 429 and r.json["error"]["code"] == "sms_daily_cap"
    assert "今日" in r.json["error"]["message"] and "3 次上限" in r.json["error"]["message"]
    # the Shanghai day turns at 16:00 UTC; the login token must be fresh on the new day
    clock.set_now(dt.datetime(2026, 3, 3, 0, 0, 5, tzinfo=clock.SHANGHAI))
    token = c.post("/projects/api/auth/login", json={"kind": "institution", "account": "xa_first",
                                                     "password": "Passw0rd!"}).json["login_token"]
    assert send(c, token, admin).status_code == 200


def test_page_shows_limit_messages(projects_app, inst_a, sms_log):
    at(0)
    c = projects_app.test_client()
    html = c.get("/projects/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    c.post("/projects/login", data={"kind": "institution", "account": "xa_first", "password": "Passw0rd!",
                                    "csrf_token": csrf})
    page = c.get("/projects/login/sms").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    admin = inst_a[1].admin_id
    assert c.post("/projects/login/sms/send", data={"admin_id": admin, "csrf_token": csrf}).status_code == 302
    r = c.post("/projects/login/sms/send", data={"admin_id": admin, "csrf_token": csrf})
    assert r.status_code == 429 and "秒后再重新获取" in r.get_data(as_text=True)
    assert f"{r.headers['Retry-After']} 秒后" in r.get_data(as_text=True)  # the re-rendered page says it too
    r = c.post("/projects/login/sms/verify", data={"admin_id": admin, "code": "000000" if last_code(sms_log) != "000000"
                                                   else "111111", "csrf_token": csrf})
    assert r.status_code == 400 and "验证码不正确" in r.get_data(as_text=True)
    at(301)
    r = c.post("/projects/login/sms/verify", data={"admin_id": admin, "code": last_code(sms_log), "csrf_token": csrf})
    assert r.status_code == 400 and "已过期" in r.get_data(as_text=True)


# ---- provider interface


def test_log_provider_writes_one_json_line(sms_log):
    if sms_log.exists():
        sms_log.unlink()
    at(0)
    sms.send_sms("13812345678", "验证码123456", ("123456", "5"))
    sms.send_sms("13812345679", "第二条")
    lines = [json.loads(x) for x in sms_log.read_text(encoding="utf-8").splitlines()]
    assert lines[0] == {"mobile": "13812345678", "text": "验证码123456", "time": NOON.astimezone(dt.UTC).isoformat()}
    assert len(lines) == 2


CFG = sms.TencentConfig(secret_id="id", secret_key="key", app_id="1400000000", sign="陕西继教", template_id="123")


def test_tencent_request_is_built_without_network():
    req = sms.build_tencent_request(CFG, "13812345678", ("654321", 5))
    assert req.PhoneNumberSet == ["+8613812345678"]
    assert req.TemplateParamSet == ["654321", "5"]
    assert (req.SmsSdkAppId, req.SignName, req.TemplateId) == ("1400000000", "陕西继教", "123")
    assert json.loads(req.to_json_string())["PhoneNumberSet"] == ["+8613812345678"]


def test_each_kind_of_message_has_its_own_tencent_template():
    cfg = sms.TencentConfig(secret_id="id", secret_key="key", app_id="1400000000", sign="陕西继教", template_id="123",
                            reminder_template_id="456")
    assert sms.build_tencent_request(cfg, "13812345678", ("项目", "2026年12月25日"), "reminder").TemplateId == "456"
    with pytest.raises(sms.SmsError, match="CME_TENCENT_SMS_NOTICE_TEMPLATE_ID"):
        sms.build_tencent_request(cfg, "13812345678", ("a", "b"), "notice")
    with pytest.raises(sms.SmsError, match="unknown kind"):
        sms.send_sms("13812345678", "text", ("a",), template="advert")


def test_tencent_provider_is_selected_by_settings_and_checks_status(monkeypatch):
    sent: list = []

    class FakeClient:
        def __init__(self, code: str):
            self.code = code

        def SendSms(self, req):  # noqa: N802 - the SDK's name
            sent.append(req)
            return SimpleNamespace(SendStatusSet=[SimpleNamespace(Code=self.code)])

    for name, value in (("CME_TENCENT_SECRET_ID", "id"), ("CME_TENCENT_SECRET_KEY", "k"),
                        ("CME_TENCENT_SMS_APP_ID", "1400"), ("CME_TENCENT_SMS_SIGN", "签名"),
                        ("CME_TENCENT_SMS_TEMPLATE_ID", "9")):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sms, "get_settings", lambda: dataclasses.replace(get_settings(), sms_provider="tencent"))
    monkeypatch.setattr(sms.TencentProvider, "client", lambda self: FakeClient("Ok"))
    sms.send_sms("13812345678", "text", ("111111", "5"))
    assert sent[0].PhoneNumberSet == ["+8613812345678"] and sent[0].TemplateParamSet == ["111111", "5"]
    monkeypatch.setattr(sms.TencentProvider, "client", lambda self: FakeClient("LimitExceeded.PhoneNumberDailyLimit"))
    with pytest.raises(sms.SmsError) as err:
        sms.send_sms("13812345678", "text", ("111111", "5"))
    assert "13812345678" not in str(err.value)


def test_tencent_needs_its_configuration(monkeypatch):
    monkeypatch.delenv("CME_TENCENT_SECRET_ID", raising=False)
    with pytest.raises(sms.SmsError, match="CME_TENCENT_SECRET_ID"):
        sms.TencentConfig.from_env()
    with pytest.raises(sms.SmsError):
        sms.get_provider("pigeon")


def test_failed_delivery_logs_why(started, monkeypatch, caplog):
    """The person on call reads what to fix in the log, not only the error's class."""
    c, token, admin = started
    for name in ("CME_TENCENT_SECRET_ID", "CME_TENCENT_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sms, "get_settings", lambda: dataclasses.replace(get_settings(), sms_provider="tencent"))
    with caplog.at_level("WARNING", logger="services.common.sms_codes"):
        assert send(c, token, admin).status_code == 503
    assert "SmsError: Tencent SMS is selected but not configured: CME_TENCENT_SECRET_ID" in caplog.text


def test_failed_delivery_is_reported_and_does_not_block_a_retry(started, monkeypatch):
    c, token, admin = started

    def broken(*_a, **_k):
        raise sms.SmsError("down")

    monkeypatch.setattr(sms, "send_sms", broken)
    r = send(c, token, admin)
    assert r.status_code == 503 and "短信发送失败" in r.json["error"]["message"]
    monkeypatch.undo()
    assert send(c, token, admin).status_code == 200  # the 60 s rule did not count the lost message
