"""学员账号, the committee's desk: find a trainee's account by the full ID number (posted), record her new mobile
or put the initial password back, with a reason, audit-logged, her open sessions ended; nobody else may."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from services.common import pii
from tests.checkin.test_windows_support import csrf_for
from tests.conftest import bearer, login_client
from tests.credits.conftest import new_account
from tests.credits.test_offerings import INST_A, REVIEWER

ID_NUMBER = "11010519491231002X"
OLD_MOBILE, NEW_MOBILE = "13912345678", "13687654321"


@pytest.fixture
def trainee(databases):
    return new_account(databases, "曾小明", ID_NUMBER, "Neues2026pw", OLD_MOBILE)


def _account(databases):
    from services.credits.accounts.models import TraineeAccount

    s = databases["credits"].new_session()
    try:
        return s.scalar(select(TraineeAccount).where(TraineeAccount.trainee_key == pii.id_hash(ID_NUMBER)))
    finally:
        s.close()


def _audit(databases):
    from services.credits.audit import AuditLog

    s = databases["credits"].new_session()
    try:
        return s.scalars(select(AuditLog).where(AuditLog.object_type == "trainee_account").order_by(AuditLog.id)).all()
    finally:
        s.close()


def _desk(credits_app):
    return login_client(credits_app.test_client(), REVIEWER)


def _post(client, path, **data):
    """A form of the desk sent, and a change's redirect to its result page followed (as the browser does)."""
    return client.post(path, data={"csrf_token": csrf_for(REVIEWER), **data}, follow_redirects=True)


def test_the_committee_records_a_new_mobile_and_the_reset_code_goes_there(credits_app, databases, trainee):
    desk = _desk(credits_app)
    assert "学员账号" in desk.get("/credits/accounts").get_data(as_text=True)
    # a wrong check digit is a typo to mend, kept in the box, not "no such account"
    typo = _post(desk, "/credits/accounts", id_number=ID_NUMBER[:-1] + "1")
    assert typo.status_code == 422 and "校验" in typo.get_data(as_text=True)
    assert f'value="{ID_NUMBER[:-1]}1"' in typo.get_data(as_text=True)
    found = _post(desk, "/credits/accounts", id_number=ID_NUMBER.lower())
    html = found.get_data(as_text=True)
    assert found.status_code == 200 and "曾小明" in html and "139****5678" in html
    assert ID_NUMBER not in html and OLD_MOBILE not in html and pii.mask_id(ID_NUMBER) in html
    key = pii.id_hash(ID_NUMBER)
    old_session = bearer(trainee)
    assert credits_app.test_client().get("/credits/api/me/compliance", headers=old_session).status_code == 200
    time.sleep(0.01)  # the session was issued a moment before the change

    # no reason: refused in that form, the typed mobile kept
    refused = _post(desk, "/credits/accounts/mobile", trainee_key=key, mobile=NEW_MOBILE, reason="")
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "请填写原因" in text and f'value="{NEW_MOBILE}"' in text
    assert _post(desk, "/credits/accounts/mobile", trainee_key=key, mobile="12345", reason="换号").status_code == 422
    same = _post(desk, "/credits/accounts/mobile", trainee_key=key, mobile=OLD_MOBILE, reason="本人申请")
    assert same.status_code == 409 and "无需修改" in same.get_data(as_text=True)
    assert pii.decrypt(_account(databases).mobile_enc) == OLD_MOBILE

    done = _post(desk, "/credits/accounts/mobile", trainee_key=key, mobile=f"+86 {NEW_MOBILE}",
                 reason="本人持身份证申请，原号码已停用")
    assert done.status_code == 200 and "已更新登记的手机号码" in done.get_data(as_text=True)
    assert "136****4321" in done.get_data(as_text=True)
    account = _account(databases)
    assert pii.decrypt(account.mobile_enc) == NEW_MOBILE and account.mobile_hash == pii.mobile_hash(NEW_MOBILE)
    [entry] = _audit(databases)
    assert (entry.action, entry.from_state, entry.to_state, entry.reason) == (
        "mobile_changed", "139****5678", "136****4321", "本人持身份证申请，原号码已停用")
    assert entry.actor == REVIEWER.describe()
    # a phone signed in as her before must sign in again; 忘记密码 now texts the new mobile
    assert credits_app.test_client().get("/credits/api/me/compliance", headers=old_session).status_code == 401
    forgot = credits_app.test_client().post("/credits/api/auth/forgot", json={"id_number": ID_NUMBER})
    assert forgot.status_code == 200 and forgot.json["mobile_masked"] == "136****4321"


def test_the_committee_puts_the_initial_password_back_and_unlocks(credits_app, databases, trainee):
    from services.credits.accounts.models import TraineeAccount

    client = credits_app.test_client()
    for _ in range(5):
        client.post("/credits/api/auth/login", json={"id_number": ID_NUMBER, "password": "wrong-password"})
    assert _account(databases).locked_until is not None
    desk = _desk(credits_app)
    locked = _post(desk, "/credits/accounts", id_number=ID_NUMBER).get_data(as_text=True)
    assert "锁定至" in locked and "已修改" in locked
    key = pii.id_hash(ID_NUMBER)
    assert _post(desk, "/credits/accounts/reset", trainee_key=key, reason="").status_code == 422
    assert _post(desk, "/credits/accounts/reset", trainee_key="f" * 64, reason="本人申请").status_code == 404
    assert _post(desk, "/credits/accounts/reset", trainee_key="../x", reason="本人申请").status_code == 422
    done = _post(desk, "/credits/accounts/reset", trainee_key=key, reason="本人持身份证申请，忘记密码")
    assert done.status_code == 200 and "已恢复初始密码" in done.get_data(as_text=True)
    account: TraineeAccount = _account(databases)
    assert (account.password_hash, account.must_change, account.locked_until, account.failed_attempts) == (
        None, True, None, 0)
    login = client.post("/credits/api/auth/login", json={"id_number": ID_NUMBER, "password": "zengxiaoming"})
    assert login.status_code == 200 and login.json["must_change"] is True
    assert [e.action for e in _audit(databases)] == ["password_reset"]


@pytest.mark.parametrize("who", ["anonymous", "trainee", "institution"])
def test_nobody_but_the_committee_may_use_the_desk(credits_app, databases, trainee, who):
    principal = {"anonymous": None, "trainee": trainee, "institution": INST_A}[who]
    client = login_client(credits_app.test_client(), principal) if principal else credits_app.test_client()
    token = csrf_for(principal)
    page = client.get("/credits/accounts")
    assert page.status_code == (302 if who == "anonymous" else 403)
    key = pii.id_hash(ID_NUMBER)
    for path, data in (("/credits/accounts", {"id_number": ID_NUMBER}),
                       ("/credits/accounts/mobile", {"trainee_key": key, "mobile": NEW_MOBILE, "reason": "夺号"}),
                       ("/credits/accounts/reset", {"trainee_key": key, "reason": "重置"})):
        resp = client.post(path, data={"csrf_token": token, **data})
        assert resp.status_code == (401 if who == "anonymous" else 403), path
        assert "登记的手机号码" not in resp.get_data(as_text=True)  # no account shown
    account = _account(databases)
    assert pii.decrypt(account.mobile_enc) == OLD_MOBILE and account.password_hash is not None
    assert _audit(databases) == []


def test_an_account_opened_under_another_name_gets_hers_and_her_initial_password(credits_app, databases, trainee):
    """Someone typed her ID number first as 张三: the clerk corrects the name from her ID card, restores the initial
    password, and she logs in with the pinyin of her own name (the trainee's second walk)."""
    desk = _desk(credits_app)
    key = pii.id_hash(ID_NUMBER)
    bad = _post(desk, "/credits/accounts/name", trainee_key=key, name="Zeng", reason="核对身份证")
    assert bad.status_code == 422 and 'value="Zeng"' in bad.get_data(as_text=True)
    same = _post(desk, "/credits/accounts/name", trainee_key=key, name="曾小明", reason="核对身份证")
    assert same.status_code == 409
    done = _post(desk, "/credits/accounts/name", trainee_key=key, name="单丽华", reason="账号被他人以其身份证号开通")
    assert done.status_code == 200 and "已更正姓名" in done.get_data(as_text=True)
    assert _post(desk, "/credits/accounts/reset", trainee_key=key, reason="本人持身份证申请").status_code == 200
    login = credits_app.test_client().post("/credits/api/auth/login",
                                           json={"id_number": ID_NUMBER, "password": "shanlihua"})
    assert login.status_code == 200 and _account(databases).name == "单丽华"
    page = _post(desk, "/credits/accounts", id_number=ID_NUMBER).get_data(as_text=True)
    record = page.split("操作记录")[1]
    assert "更正姓名" in record and "曾小明 → 单丽华" in record and "恢复初始密码" in record
    assert [e.action for e in _audit(databases)] == ["name_changed", "password_reset"]


@pytest.mark.parametrize("key", [None, "", "../x", "f" * 64])
def test_a_change_whose_account_is_not_named_keeps_what_the_clerk_typed(credits_app, databases, trainee, key):
    """The form came back without its account (its hidden key lost or from an old page): nothing is changed, the
    page says to look the account up again, and the lookup brings that form back filled in as typed."""
    desk = _desk(credits_app)
    typed = {"mobile": NEW_MOBILE, "reason": "本人持身份证申请，原号码已停用"}
    refused = _post(desk, "/credits/accounts/mobile", **typed, **({} if key is None else {"trainee_key": key}))
    text = refused.get_data(as_text=True)
    assert refused.status_code in (404, 422) and "请重新输入身份证号码查询" in text
    assert pii.decrypt(_account(databases).mobile_enc) == OLD_MOBILE and _audit(databases) == []
    kept = dict(re.findall(r'<input type="hidden" name="(kept_\w+)" value="([^"]*)"', text))
    assert kept == {"kept_which": "mobile", "kept_mobile": NEW_MOBILE, "kept_reason": typed["reason"]}
    found = _post(desk, "/credits/accounts", id_number=ID_NUMBER, **kept).get_data(as_text=True)
    mobile_form = found.split('action="/credits/accounts/mobile"')[1].split("</form>")[0]
    assert f'value="{NEW_MOBILE}"' in mobile_form and f'value="{typed["reason"]}"' in mobile_form
    reset_form = found.split('action="/credits/accounts/reset"')[1].split("</form>")[0]
    assert typed["reason"] not in reset_form  # only the form it was typed in
    # a typo in the ID number keeps them too, for the next try
    typo = _post(desk, "/credits/accounts", id_number=ID_NUMBER[:-1] + "1", **kept).get_data(as_text=True)
    assert dict(re.findall(r'<input type="hidden" name="(kept_\w+)" value="([^"]*)"', typo)) == kept


def test_the_name_form_comes_back_filled_after_its_account_was_lost(credits_app, databases, trainee):
    desk = _desk(credits_app)
    refused = _post(desk, "/credits/accounts/name", name="单丽华", reason="核对身份证").get_data(as_text=True)
    kept = dict(re.findall(r'<input type="hidden" name="(kept_\w+)" value="([^"]*)"', refused))
    found = _post(desk, "/credits/accounts", id_number=ID_NUMBER, **kept).get_data(as_text=True)
    name_form = found.split('action="/credits/accounts/name"')[1].split("</form>")[0]
    assert 'value="单丽华"' in name_form and 'value="核对身份证"' in name_form
    assert _account(databases).name == "曾小明"


def test_a_change_s_result_page_shown_again_never_runs_the_change_twice(credits_app, databases, trainee):
    """F5 on the page a 恢复初始密码 answered sent the form again: the reset ran twice (a second audit entry, her
    sessions ended again). A change now answers with a redirect to a GET page naming a short-lived token, never the
    ID number; reloading it shows the result again, for the clerk who made it only."""
    from services.credits.accounts import desk as desk_module

    desk = _desk(credits_app)
    key = pii.id_hash(ID_NUMBER)
    answer = desk.post("/credits/accounts/reset",
                       data={"csrf_token": csrf_for(REVIEWER), "trainee_key": key, "reason": "本人持身份证申请"})
    assert answer.status_code == 303
    location = answer.headers["Location"]
    assert re.fullmatch(r"/credits/accounts\?r=[A-Za-z0-9_-]{16,64}", location)
    assert ID_NUMBER not in location and key not in location
    for _ in range(2):  # the page, and F5 on it
        page = desk.get(location)
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and "已恢复初始密码并解除锁定" in html and "曾小明" in html
        assert ID_NUMBER not in html
    assert [e.action for e in _audit(databases)] == ["password_reset"]

    other = login_client(credits_app.test_client(), REVIEWER.__class__(
        role="reviewer", subject="reviewer:2", name="审核员乙", reviewer_id=2))
    assert "已恢复初始密码并解除锁定" in desk.get(location + "&from=singlemessage").get_data(as_text=True)
    for client, url in ((other, location), (desk, "/credits/accounts?r=not-a-token"),
                        (desk, "/credits/accounts?r=" + "A" * 32), (desk, location + "%0A"),
                        (desk, "/credits/accounts?r="), (desk, "/credits/accounts?r=%00" + "A" * 20),
                        (desk, "/credits/accounts?r=" + "A" * 65)):
        page = client.get(url)
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and desk_module.RESULT_GONE in html and "曾小明" not in html, url
    # past its few minutes the token is gone: said so, nothing run
    from services.common.config import redis_client

    redis_client().delete(desk_module.RESULT_PREFIX + location.split("r=")[1])
    html = desk.get(location).get_data(as_text=True)
    assert desk_module.RESULT_GONE in html and "已恢复初始密码" not in html
    assert [e.action for e in _audit(databases)] == ["password_reset"]
