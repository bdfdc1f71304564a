"""Stage 1 login (guide §一): password -> first login adds 机构负责人 (with confirmation) -> pick ->
SMS code from the log inbox -> session; pages and JSON API; reviewer login; no mobile in the logs."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from services.common import clock
from services.common.auth import COOKIE, Principal, issue_token, principal_from_token, read_token
from tests.conftest import csrf_for as conftest_csrf_for
from tests.conftest import session_cookie

NEW_MOBILE = "13712345678"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


# ---- helpers (kept here: tests/projects/conftest.py belongs to another feature)

def bearer(principal: Principal) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(principal)}"}


def csrf_of(page: str) -> str:
    m = CSRF_RE.search(page)
    assert m, "form without csrf token"
    return m.group(1)


def last_code(sms_log: Path, mobile: str) -> str:
    lines = [json.loads(line) for line in sms_log.read_text(encoding="utf-8").splitlines() if line.strip()]
    mine = [m for m in lines if m["mobile"] == mobile]
    assert mine, "no SMS for this mobile"
    assert {"mobile", "text", "time"} <= set(mine[-1])
    return re.search(r"(?<!\d)(\d{6})(?!\d)", mine[-1]["text"]).group(1)


@pytest.fixture
def fresh_inst(projects_db):
    """An institution that never logged in: no 机构负责人 yet."""
    from services.projects.institutions.services import create_institution

    s = projects_db.new_session()
    inst = create_institution(s, "hz_new", "汉中市人民医院", "Start1234")
    s.commit()
    s.close()
    return inst


@pytest.fixture(autouse=True)
def _empty_inbox(sms_log):
    if sms_log.exists():
        sms_log.unlink()
    yield


def api_login(client, kind: str, account: str, password: str):  # type: ignore[no-untyped-def]
    return client.post("/projects/api/auth/login", json={"kind": kind, "account": account, "password": password})


# ---- pages


def test_full_page_flow_first_login(projects_app, fresh_inst, sms_log, caplog):
    caplog.set_level(logging.INFO)
    c = projects_app.test_client()
    page = c.get("/projects/login")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "申办机构" in html and "继续医学教育委员会" in html
    r = c.post("/projects/login", data={"kind": "institution", "account": "hz_new", "password": "Start1234",
                                        "csrf_token": csrf_of(html)})
    assert r.status_code == 302 and r.headers["Location"].endswith("/projects/login/admins")
    assert c.get_cookie("cme_pre", path="/projects") is not None

    # first login: the responsible person, with a confirmation step before saving
    page = c.get("/projects/login/admins").get_data(as_text=True)
    assert "机构负责人" in page
    token = csrf_of(page)
    r = c.post("/projects/login/admins", data={"real_name": "张三", "mobile": "12345", "csrf_token": token})
    assert r.status_code == 422 and "手机号码" in r.get_data(as_text=True)
    assert 'value="张三"' in r.get_data(as_text=True)  # what was typed comes back
    r = c.post("/projects/login/admins", data={"real_name": "张三", "mobile": NEW_MOBILE, "csrf_token": token})
    assert r.status_code == 200 and "确认信息无误" in r.get_data(as_text=True)
    r = c.post("/projects/login/admins", data={"real_name": "张三", "mobile": NEW_MOBILE, "step": "confirm",
                                               "csrf_token": token})
    assert "请勾选" in r.get_data(as_text=True)  # not ticked: nothing saved yet
    r = c.post("/projects/login/admins", data={"real_name": "张三", "mobile": NEW_MOBILE, "step": "confirm",
                                               "confirm": "1", "csrf_token": token})
    assert r.status_code == 302
    page = c.get("/projects/login/admins").get_data(as_text=True)
    assert "添加成功" in page and "137****5678" in page and NEW_MOBILE not in page

    # pick -> send -> read the inbox -> verify
    page = c.get("/projects/login/sms").get_data(as_text=True)
    assert "137****5678" in page and NEW_MOBILE not in page
    assert re.search(r'<option value="\d+" selected>张三', page)  # the only one: already picked
    assert "请选择" not in page  # nothing to choose (the first-day walk)
    admin_id = re.search(r'<option value="(\d+)"', page).group(1)
    r = c.post("/projects/login/sms/send", data={"admin_id": admin_id, "csrf_token": token})
    assert r.status_code == 302
    assert "验证码已发送" in c.get(r.headers["Location"]).get_data(as_text=True)
    code = last_code(sms_log, NEW_MOBILE)
    r = c.post("/projects/login/sms/verify", data={"admin_id": admin_id, "code": code, "csrf_token": token})
    # on the committee's password, the office is first asked to set its own (it may do it later)
    assert r.status_code == 302 and r.headers["Location"].endswith("/projects/password")
    assert 'id="initial"' in c.get("/projects/password").get_data(as_text=True)
    session_cookie = c.get_cookie(COOKIE)
    assert session_cookie is not None
    data = read_token(session_cookie.value)
    assert data["role"] == "institution" and data["name"] == "汉中市人民医院"
    assert data["subject"] == f"inst:{fresh_inst.id}:admin:{admin_id}"
    # the 机构负责人 who took the code is named in the audit trail beside the institution
    assert data["person"] == "张三"
    assert principal_from_token(session_cookie.value).audit_name() == "汉中市人民医院（张三）"
    assert c.get_cookie("cme_pre", path="/projects") is None
    assert c.get("/projects/").headers["Location"].endswith("/projects/filings")

    # the institution's own 机构负责人 page
    page = c.get("/projects/admins")
    assert page.status_code == 200 and "张三" in page.get_data(as_text=True)

    # personal data never reaches the application's logs
    assert NEW_MOBILE not in caplog.text
    assert not re.search(rf"(?<!\d){code}(?!\d)", caplog.text)

    copy = projects_app.test_client()  # the same cookie in another tab, or left on a shared computer
    copy.set_cookie(COOKIE, session_cookie.value, domain="localhost", path="/")
    assert copy.get("/projects/admins").status_code == 200
    r = c.post("/projects/logout", data={"csrf_token": csrf_of(page.get_data(as_text=True))})
    assert r.status_code == 302 and c.get_cookie(COOKIE) is None
    assert copy.get("/projects/admins").headers["Location"].startswith("/projects/login")  # the session ended


def test_pre_login_forms_need_the_csrf_token(projects_app, inst_a):
    c = projects_app.test_client()
    html = c.get("/projects/login").get_data(as_text=True)
    c.post("/projects/login", data={"kind": "institution", "account": "xa_first", "password": "Passw0rd!",
                                    "csrf_token": csrf_of(html)})
    r = c.post("/projects/login/sms/send", data={"admin_id": "1"})
    assert r.status_code == 403 and "页面已过期" in r.get_data(as_text=True)


def test_second_login_skips_admins_and_cannot_add_by_password(projects_app, inst_a):
    c = projects_app.test_client()
    html = c.get("/projects/login").get_data(as_text=True)
    r = c.post("/projects/login", data={"kind": "institution", "account": "xa_first", "password": "Passw0rd!",
                                        "csrf_token": csrf_of(html)})
    assert r.headers["Location"].endswith("/projects/login/sms")
    assert c.get("/projects/login/admins").headers["Location"].endswith("/projects/login/sms")
    # the API refuses too: a password alone must never add a mobile that then receives the codes
    token = api_login(c, "institution", "xa_first", "Passw0rd!").json["login_token"]
    r = c.post("/projects/api/auth/admins", json={"login_token": token, "real_name": "李四",
                                                  "mobile": NEW_MOBILE, "confirm": True})
    assert r.status_code == 403 and r.json["error"]["code"] == "admins_exist"


def test_wrong_password_page_and_api(projects_app, inst_a):
    c = projects_app.test_client()
    html = c.get("/projects/login").get_data(as_text=True)
    r = c.post("/projects/login", data={"kind": "institution", "account": "xa_first", "password": "wrong",
                                        "csrf_token": csrf_of(html)})
    assert r.status_code == 401
    body = r.get_data(as_text=True)
    assert "账号或密码不正确" in body and 'value="xa_first"' in body
    assert c.get_cookie("cme_pre", path="/projects") is None
    for account, password in (("xa_first", "wrong"), ("nobody", "Passw0rd!")):
        r = api_login(c, "institution", account, password)
        assert r.status_code == 401 and r.json["error"]["code"] == "bad_credentials"
        assert "账号或密码不正确" in r.json["error"]["message"]
    # an institution account is not a reviewer account
    assert api_login(c, "reviewer", "xa_first", "Passw0rd!").status_code == 401
    r = c.post("/projects/api/auth/login", json={"kind": "boss", "account": "x", "password": "y", "extra": 1})
    assert r.status_code == 422 and {"kind", "extra"} <= set(r.json["error"]["fields"])


def test_expired_or_forged_login_token(projects_app, inst_a):
    c = projects_app.test_client()
    r = c.post("/projects/api/auth/sms/send", json={"login_token": "forged", "admin_id": 1})
    assert r.status_code == 401 and "登录已过期" in r.json["error"]["message"]
    # a session token is not a pre-login token (different salt)
    r = c.post("/projects/api/auth/sms/send", json={"login_token": issue_token(inst_a[1]), "admin_id": 1})
    assert r.status_code == 401
    assert c.get("/projects/login/sms").headers["Location"].endswith("/projects/login")


# ---- JSON API


def test_api_flow_first_login(projects_app, fresh_inst, sms_log):
    c = projects_app.test_client()
    r = api_login(c, "institution", "hz_new", "Start1234")
    assert r.status_code == 200 and r.json["needs_admins"] is True and r.json["admins"] == []
    token = r.json["login_token"]
    r = c.post("/projects/api/auth/admins", json={"login_token": token, "real_name": "张三", "mobile": NEW_MOBILE,
                                                  "confirm": False})
    assert r.status_code == 422 and "确认" in r.json["error"]["fields"]["confirm"]
    r = c.post("/projects/api/auth/admins", json={"login_token": token, "real_name": "张三", "mobile": "1371234",
                                                  "confirm": True})
    assert r.status_code == 422 and "手机号码" in r.json["error"]["fields"]["mobile"]
    r = c.post("/projects/api/auth/admins", json={"login_token": token, "real_name": "张三", "mobile": NEW_MOBILE,
                                                  "confirm": True})
    assert r.status_code == 200 and r.json["needs_admins"] is False
    r = c.post("/projects/api/auth/admins", json={"login_token": token, "real_name": "王五",
                                                  "mobile": "136 1234 5678", "confirm": True})
    assert r.status_code == 200, r.json  # several persons allowed at first login; a mobile typed in groups
    admins = r.json["admins"]
    assert [a["mobile_masked"] for a in admins] == ["137****5678", "136****5678"]
    r = c.post("/projects/api/auth/admins", json={"login_token": token, "real_name": "张三", "mobile": NEW_MOBILE,
                                                  "confirm": True})
    assert r.status_code == 409  # the same mobile twice
    wang = admins[1]["id"]
    r = c.post("/projects/api/auth/sms/send", json={"login_token": token, "admin_id": wang})
    assert r.status_code == 200 and r.json["mobile_masked"] == "136****5678"
    code = last_code(sms_log, "13612345678")
    r = c.post("/projects/api/auth/sms/verify", json={"login_token": token, "admin_id": wang, "code": code})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "private, no-store"
    who = c.get("/projects/api/admins", headers={"Authorization": f"Bearer {r.json['token']}"})
    assert who.status_code == 200 and len(who.json) == 2
    data = read_token(r.json["token"])
    assert data["admin_id"] == wang and data["institution_id"] == fresh_inst.id


def test_api_flow_existing_institution(projects_app, inst_a, sms_log):
    c = projects_app.test_client()
    r = api_login(c, "institution", "xa_first", "Passw0rd!")
    assert r.json["needs_admins"] is False
    (admin,) = r.json["admins"]
    assert admin["mobile_masked"].count("*") == 4
    token = r.json["login_token"]
    r = c.post("/projects/api/auth/sms/send", json={"login_token": token, "admin_id": admin["id"]})
    assert r.status_code == 200
    mobile = json.loads(sms_log.read_text(encoding="utf-8").splitlines()[-1])["mobile"]
    r = c.post("/projects/api/auth/sms/verify", json={"login_token": token, "admin_id": admin["id"],
                                                      "code": last_code(sms_log, mobile)})
    assert r.status_code == 200 and r.json["role"] == "institution"
    assert read_token(r.json["token"])["subject"] == inst_a[1].subject


def test_reviewer_login_page_and_api(projects_app, reviewer, sms_log):
    c = projects_app.test_client()
    html = c.get("/projects/login").get_data(as_text=True)
    r = c.post("/projects/login", data={"kind": "reviewer", "account": "committee01", "password": "Review0r!",
                                        "csrf_token": csrf_of(html)})
    assert r.headers["Location"].endswith("/projects/login/sms")
    page = c.get("/projects/login/sms").get_data(as_text=True)
    assert "139****0001" in page and "13900000001" not in page
    token = csrf_of(page)
    assert c.post("/projects/login/sms/send", data={"admin_id": "reviewer", "csrf_token": token}).status_code == 302
    code = last_code(sms_log, "13900000001")
    r = c.post("/projects/login/sms/verify", data={"admin_id": "reviewer", "code": code, "csrf_token": token})
    assert r.status_code == 302
    data = read_token(c.get_cookie(COOKIE).value)
    sid, at = data.pop("sid"), data.pop("at")  # the session's own id and issue time (ms), for ending it early
    assert len(sid) == 16 and at > 0
    assert data == {"role": "reviewer", "subject": f"reviewer:{reviewer[0].id}", "name": "审核员甲",
                    "reviewer_id": reviewer[0].id}

    api = projects_app.test_client()
    r = api_login(api, "reviewer", "committee01", "Review0r!")
    assert r.json["needs_admins"] is False and r.json["admins"][0]["id"] == "reviewer"
    tok = r.json["login_token"]
    clock.set_now(clock.now() + dt.timedelta(seconds=61))  # the page login above sent to the same mobile
    assert api.post("/projects/api/auth/sms/send", json={"login_token": tok}).status_code == 200
    r = api.post("/projects/api/auth/sms/verify", json={"login_token": tok, "admin_id": "reviewer",
                                                        "code": last_code(sms_log, "13900000001")})
    assert r.status_code == 200 and r.json["role"] == "reviewer"


# ---- permissions: every endpoint of this feature as anonymous, inst A, inst B and the committee


def _csrf_for(principal: Principal) -> str:
    return conftest_csrf_for(principal)


PAGE_CASES = [
    # method, url, data, expected for anonymous, inst A, inst B, reviewer
    ("GET", "/projects/admins", None, (302, 200, 200, 403)),
    ("POST", "/projects/admins", {"real_name": "赵六", "mobile": "13512345678"}, (401, 200, 200, 403)),
    ("GET", "/projects/institutions", None, (302, 403, 403, 200)),
    ("GET", "/projects/institutions/import-template.xlsx", None, (302, 403, 403, 200)),
    ("POST", "/projects/institutions", {"account": "new_one", "name": "新医院", "password": "Abcdefg123"},
     (401, 403, 403, 302)),
    ("POST", "/projects/institutions/import", {}, (401, 403, 403, 400)),
    ("GET", "/projects/password", None, (302, 200, 200, 403)),
    ("POST", "/projects/password", {}, (401, 422, 422, 403)),
    ("GET", "/projects/login", None, (200, 200, 200, 200)),
    ("GET", "/projects/login/sms", None, (302, 302, 302, 302)),
    ("GET", "/projects/login/admins", None, (302, 302, 302, 302)),
    ("POST", "/projects/logout", {}, (302, 302, 302, 302)),
]


@pytest.mark.parametrize("method,url,data,expected", PAGE_CASES)
def test_page_permissions(projects_app, inst_a, inst_b, reviewer, method, url, data, expected):
    who = [None, inst_a[1], inst_b[1], reviewer[1]]
    for principal, status in zip(who, expected, strict=True):
        c = projects_app.test_client()
        headers = {"Accept": "text/html"}
        if principal is not None:
            c.set_cookie(COOKIE, session_cookie(principal), domain="localhost", path="/")
            headers["X-CSRF-Token"] = _csrf_for(principal)
        r = c.open(url, method=method, data=data, headers=headers)
        assert r.status_code == status, (url, principal and principal.role, r.status_code)


API_CASES = [
    ("GET", "/projects/api/admins", None, (401, 200, 200, 403)),
    ("POST", "/projects/api/admins", {"real_name": "赵六", "mobile": "13512345678", "confirm": True},
     (401, 201, 201, 403)),
    ("POST", "/projects/api/auth/password", {}, (401, 422, 422, 403)),
    ("GET", "/projects/api/institutions", None, (401, 403, 403, 200)),
    ("POST", "/projects/api/institutions", {"account": "new_api", "name": "新医院乙", "password": "Abcdefg123"},
     (401, 403, 403, 201)),
    ("POST", "/projects/api/institutions/import", None, (401, 403, 403, 400)),
    ("POST", "/projects/api/auth/login", {"kind": "institution", "account": "x", "password": "y"},
     (401, 401, 401, 401)),
    ("POST", "/projects/api/auth/admins", {"login_token": "x", "real_name": "张三", "mobile": NEW_MOBILE,
                                           "confirm": True}, (401, 401, 401, 401)),
    ("POST", "/projects/api/auth/sms/send", {"login_token": "x", "admin_id": 1}, (401, 401, 401, 401)),
    ("POST", "/projects/api/auth/sms/verify", {"login_token": "x", "admin_id": 1, "code": "123456"},
     (401, 401, 401, 401)),
]


@pytest.mark.parametrize("method,url,body,expected", API_CASES)
def test_api_permissions(projects_app, inst_a, inst_b, reviewer, method, url, body, expected):
    who = [None, inst_a[1], inst_b[1], reviewer[1]]
    for principal, status in zip(who, expected, strict=True):
        c = projects_app.test_client()
        headers = bearer(principal) if principal else {}
        r = c.open(url, method=method, json=body, headers=headers)
        assert r.status_code == status, (url, principal and principal.role, r.status_code, r.json)


def test_a_form_token_belongs_to_its_session_not_to_the_person(projects_app, inst_a):
    """The security walk: a form's token was an HMAC of the person, so one seen once (a cached page, a screenshot)
    kept working in every later login of that person, even after logout. Each login has its own now."""
    from services.common.auth import issue_token

    def page_token(cookie: str) -> tuple[Any, str]:
        c = projects_app.test_client()
        c.set_cookie(COOKIE, cookie, domain="localhost", path="/")
        return c, csrf_of(c.get("/projects/admins").get_data(as_text=True))

    first, first_token = page_token(issue_token(inst_a[1]))
    second, second_token = page_token(issue_token(inst_a[1]))
    assert first_token != second_token
    url = "/projects/filings/999999/delete"  # any form of the office: the token is checked before anything else
    assert second.post(url, data={"csrf_token": first_token}).status_code == 403
    assert second.post(url, data={"csrf_token": second_token}).status_code == 404
    assert first.post("/projects/logout", data={"csrf_token": first_token}).status_code == 302
    assert second.post(url, data={"csrf_token": first_token}).status_code == 403


def test_institution_sees_only_its_own_admins(projects_app, inst_a, inst_b):
    c = projects_app.test_client()
    a = c.get("/projects/api/admins", headers=bearer(inst_a[1])).json
    b = c.get("/projects/api/admins", headers=bearer(inst_b[1])).json
    assert {x["id"] for x in a}.isdisjoint({x["id"] for x in b})
    c.set_cookie(COOKIE, session_cookie(inst_a[1]), domain="localhost", path="/")
    page = c.get("/projects/admins").get_data(as_text=True)
    assert a[0]["real_name"] in page and b[0]["real_name"] not in page
    # A's login cannot send a code to B's responsible person
    c = projects_app.test_client()
    token = api_login(c, "institution", "xa_first", "Passw0rd!").json["login_token"]
    r = c.post("/projects/api/auth/sms/send", json={"login_token": token, "admin_id": b[0]["id"]})
    assert r.status_code == 404
    r = c.post("/projects/api/auth/sms/verify", json={"login_token": token, "admin_id": b[0]["id"],
                                                      "code": "123456"})
    assert r.status_code == 404


def test_a_page_asked_for_before_logging_in_opens_after_it(projects_app, reviewer, sms_log):
    """A link from an SMS reminder or a colleague, opened without a session: the login says why, and the
    verified SMS code leads to that page rather than the home page. Another site is never a destination."""
    c = projects_app.test_client()
    asked = c.get("/projects/review/filings?state=all")
    assert asked.status_code == 302
    login_url = asked.headers["Location"]
    assert login_url.startswith("/projects/login?next=")
    html = c.get(login_url).get_data(as_text=True)
    assert "请先登录" in html
    r = c.post("/projects/login", data={"kind": "reviewer", "account": "committee01", "password": "Review0r!",
                                        "csrf_token": csrf_of(html)})
    token = csrf_of(c.get("/projects/login/sms").get_data(as_text=True))
    c.post("/projects/login/sms/send", data={"admin_id": "reviewer", "csrf_token": token})
    r = c.post("/projects/login/sms/verify", data={"admin_id": "reviewer", "code": last_code(sms_log, "13900000001"),
                                                    "csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"] == "/projects/review/filings?state=all"
    for outside in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "/etc/passwd"):
        page = projects_app.test_client().get("/projects/login", query_string={"next": outside})
        assert "请先登录" not in page.get_data(as_text=True) and "cme_next" not in page.headers.get("Set-Cookie", "")


def test_hostile_login_bodies_are_refused_in_chinese_never_a_500(projects_app, inst_a):
    """The 500-hunt, anonymous: a password holding a lone surrogate reached argon2, a body nested 2000 deep
    json.loads' recursion limit, a 20-digit admin_id the database's integer."""
    c = projects_app.test_client()
    account = inst_a[0].account
    r = c.post("/projects/api/auth/login", content_type="application/json",
               data=json.dumps({"kind": "institution", "account": account, "password": "x\ud800"}))
    assert r.status_code == 422 and "无法识别的字符" in r.json["error"]["fields"]["password"]
    deep = c.post("/projects/api/auth/login", content_type="application/json", data='{"a":' * 2000 + "1" + "}" * 2000)
    assert deep.status_code == 400 and "JSON" in deep.json["error"]["message"]
    token = api_login(c, "institution", account, "Passw0rd!").json["login_token"]
    for admin_id in ("99999999999999999999", 99999999999999999999, "²", 0, -1, True):
        r = c.post("/projects/api/auth/sms/send", json={"login_token": token, "admin_id": admin_id})
        assert r.status_code == 422 and "请选择接收验证码的负责人" in r.json["error"]["fields"]["admin_id"], admin_id


def test_a_responsible_person_who_left_is_removed_and_signed_out(projects_app, projects_db, inst_a, reviewer):
    """机构负责人 had no 移除: a person who left the hospital kept receiving its login codes on her own phone. Another
    负责人 removes her with a reason: her sessions end, the login no longer offers her, the committee sees it in
    the institution's 办理记录. Nobody removes herself, and a reason refused keeps what was typed."""
    import dataclasses
    import time

    from services.projects.institutions.models import InstitutionAdmin
    from services.projects.institutions.services import add_admin

    inst, me = inst_a
    s = projects_db.new_session()
    leaver = add_admin(s, s.get(type(inst), inst.id), "李调离", "13612345678")
    s.commit()
    her = dataclasses.replace(me, subject=leaver.subject, admin_id=leaver.id)
    leaver_id = leaver.id
    s.close()
    hers = projects_app.test_client()  # her phone, still signed in
    hers.set_cookie(COOKIE, session_cookie(her), domain="localhost", path="/")
    assert hers.get("/projects/admins").status_code == 200
    time.sleep(0.005)  # the sessions' clock counts milliseconds

    c = projects_app.test_client()
    c.set_cookie(COOKIE, session_cookie(me), domain="localhost", path="/")
    page = c.get("/projects/admins").get_data(as_text=True)
    assert f'action="/projects/admins/{leaver_id}/remove"' in page and "当前登录" in page
    assert f'action="/projects/admins/{me.admin_id}/remove"' not in page  # not herself
    r = c.post(f"/projects/admins/{leaver_id}/remove", data={"csrf_token": _csrf_for(me), "reason": "走"})
    assert r.status_code == 422 and 'value="走"' in r.get_data(as_text=True)  # too short: kept to mend
    r = c.post(f"/projects/admins/{leaver_id}/remove", data={"csrf_token": _csrf_for(me), "reason": " "})
    assert r.status_code == 422 and "请填写移除原因" in r.get_data(as_text=True)
    r = c.post(f"/projects/admins/{me.admin_id}/remove", data={"csrf_token": _csrf_for(me), "reason": "交接"})
    text = r.get_data(as_text=True)
    assert r.status_code == 409 and "不能移除当前登录的负责人本人" in text
    r = c.post(f"/projects/admins/{leaver_id}/remove", data={"csrf_token": _csrf_for(me), "reason": "已调离本院"})
    assert r.status_code == 302 and "已移除机构负责人 李调离" in c.get("/projects/admins").get_data(as_text=True)

    s = projects_db.new_session()
    assert [a.real_name for a in s.query(InstitutionAdmin).filter_by(institution_id=inst.id)] == ["负责人1"]
    s.close()
    assert hers.get("/projects/admins").headers["Location"].startswith("/projects/login")  # signed out
    login = projects_app.test_client()
    html = login.get("/projects/login").get_data(as_text=True)
    login.post("/projects/login", data={"kind": "institution", "account": "xa_first", "password": "Passw0rd!",
                                        "csrf_token": csrf_of(html)})
    choices = login.get("/projects/login/sms").get_data(as_text=True)
    assert "李调离" not in choices and "负责人1" in choices
    r = login.post("/projects/login/sms/send", data={"admin_id": str(leaver_id), "csrf_token": csrf_of(choices)})
    assert r.status_code == 404 and "13612345678" not in r.get_data(as_text=True)
    # the committee reads who removed whom and why, the mobile masked
    desk = projects_app.test_client()
    desk.set_cookie(COOKIE, session_cookie(reviewer[1]), domain="localhost", path="/")
    history = desk.get(f"/projects/institutions/{inst.id}").get_data(as_text=True)
    assert "移除机构负责人" in history and "李调离（136****5678）：已调离本院" in history
    assert "13612345678" not in history
    # the API: another institution does not find her; a principal whose own row is gone cannot empty the list
    bearer_me = {"Authorization": f"Bearer {issue_token(me)}"}
    ghost = dataclasses.replace(me, subject=f"inst:{inst.id}:admin:999", admin_id=999)
    r = c.post(f"/projects/api/admins/{me.admin_id}/remove", json={"reason": "已调离本院"},
               headers={"Authorization": f"Bearer {issue_token(ghost)}"})
    assert r.status_code == 409 and r.json["error"]["code"] == "last_admin"
    r = c.post(f"/projects/api/admins/{leaver_id}/remove", json={"reason": "已调离本院"}, headers=bearer_me)
    assert r.status_code == 404


def test_the_committee_sees_who_added_a_responsible_person(projects_app, fresh_inst, inst_a, reviewer):
    """A 机构负责人 receives the institution's login codes. The committee's 操作记录 named every 移除 but no 新增:
    a mobile added by the office (at its first login with the password alone, or later) was not to be seen there,
    so a clerk asked "who put this number here, and when" had no answer."""
    c = projects_app.test_client()
    html = c.get("/projects/login").get_data(as_text=True)
    c.post("/projects/login", data={"kind": "institution", "account": "hz_new", "password": "Start1234",
                                    "csrf_token": csrf_of(html)})
    token = csrf_of(c.get("/projects/login/admins").get_data(as_text=True))
    r = c.post("/projects/login/admins", data={"real_name": "张三", "mobile": NEW_MOBILE, "step": "confirm",
                                               "confirm": "1", "csrf_token": token})
    assert r.status_code == 302
    office = projects_app.test_client()
    office.set_cookie(COOKIE, session_cookie(inst_a[1]), domain="localhost", path="/")
    r = office.post("/projects/admins", data={"real_name": "李新任", "mobile": "13612340000", "step": "confirm",
                                              "confirm": "1", "csrf_token": _csrf_for(inst_a[1])})
    assert r.status_code == 302

    committee = projects_app.test_client()
    committee.set_cookie(COOKIE, session_cookie(reviewer[1]), domain="localhost", path="/")
    first = committee.get(f"/projects/institutions/{fresh_inst.id}").get_data(as_text=True).split("操作记录")[-1]
    assert "新增机构负责人" in first and "张三（137****5678）" in first and "首次登录" in first
    assert NEW_MOBILE not in first
    later = committee.get(f"/projects/institutions/{inst_a[0].id}").get_data(as_text=True).split("操作记录")[-1]
    assert "新增机构负责人" in later and "李新任（136****0000）" in later and "13612340000" not in later
    assert "<td>西安市第一医院" in later  # who did it: the office


def test_the_site_front_door_serves_doctors_and_verifiers_too(projects_app):
    """Guide §五 sends doctors to the site's address: / (gateway) -> /projects/ -> the login page, which must
    offer the trainee login (with 密码找回) and the public 证书验证 beside the institution/committee login."""
    from flask import Flask

    from services.certs.certificates.views import pages as certs_pages
    from services.credits.accounts.views import pages as credits_pages

    conf = (Path(__file__).resolve().parents[2] / "gateway" / "nginx.conf.template").read_text(encoding="utf-8")
    assert re.search(r"location = / \{\s*return 302 /projects/;", conf)
    c = projects_app.test_client()
    r = c.get("/projects/", follow_redirects=True)
    assert r.status_code == 200 and r.request.path == "/projects/login"
    html = r.get_data(as_text=True)
    assert "专业技术人员（学员）：学分查询及证书打印" in html
    hrefs = {m.group(2): m.group(1) for m in re.finditer(r'<a [^>]*href="([^"]+)"[^>]*>([^<]+)</a>', html)}
    assert hrefs.get("学员登录") == "/credits/login"
    assert hrefs.get("密码找回") == "/credits/password/forgot"
    assert hrefs.get("证书验证") == "/certs/verify"
    # the doctor's way in comes before the institution's form, so a phone shows it without scrolling
    assert html.index("学员登录") < html.index('action="/projects/login"')
    # the institution/committee login is unchanged
    assert 'value="institution"' in html and 'value="reviewer"' in html
    # the links are real pages of the other services (read from their blueprints, not guessed)
    other = Flask("front_door_links")
    other.register_blueprint(credits_pages)
    other.register_blueprint(certs_pages)
    routes = {(rule.rule, m) for rule in other.url_map.iter_rules() for m in rule.methods or ()}
    assert {("/credits/login", "GET"), ("/credits/password/forgot", "GET"), ("/certs/verify", "GET")} <= routes
