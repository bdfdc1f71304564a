"""The committee creates institutions, singly and by Excel import (账号, 机构名称, 初始密码)."""

from __future__ import annotations

import io
import time

import pytest
from alembic import command
from openpyxl import Workbook
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from services.common.auth import COOKIE, Principal, issue_token
from services.common.config import get_settings
from tests.conftest import csrf_for as conftest_csrf_for
from tests.conftest import login_client, session_cookie


def bearer(principal: Principal) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(principal)}"}


def csrf_for(principal: Principal) -> str:
    return conftest_csrf_for(principal)


def workbook(rows: list[list]) -> io.BytesIO:
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    return buf


ROWS = [
    ["账号", "机构名称", "初始密码"],
    ["yl_first", "榆林市第一医院", "Yulin2026!"],
    ["ya", "延安大学附属医院", "Yanan2026!"],  # account too short
    ["xa_first", "西安市第一医院（重复）", "Passw0rd!"],  # already exists
    [None, None, None],  # blank line: skipped
    ["wn_center", "渭南市中心医院", 12345678],  # a numeric password cell: digits only, refused
    ["ak_center", "", "Ankang2026"],  # name missing
    ["YL_first", "榆林市第二医院", "Yulin2026!"],  # the account of row 2 again: not "exists", a clash
    ["sl_center", "", ""],  # name and password missing: one sentence naming both
]


def test_api_import_keeps_good_rows_and_reports_bad_ones(projects_app, inst_a, reviewer):
    c = projects_app.test_client()
    r = c.post("/projects/api/institutions/import", headers=bearer(reviewer[1]),
               data={"file": (workbook(ROWS), "机构.xlsx")}, content_type="multipart/form-data")
    assert r.status_code == 200, r.json
    assert [x["account"] for x in r.json["created"]] == ["yl_first"]
    assert [(x["row"], x["account"]) for x in r.json["existing"]] == [(4, "xa_first")]
    assert "已存在" in r.json["existing"][0]["reason"]
    errors = {e["row"]: e["reason"] for e in r.json["errors"]}
    assert set(errors) == {3, 6, 7, 8, 9}
    assert errors[9] == "机构名称：此项为必填项；初始密码：此项为必填项。"
    assert "账号" in errors[3] and "机构名称" in errors[7]
    assert errors[8] == "账号“YL_first”与第 2 行重复，本行未导入；请为该机构另设账号后再导入本行。"
    assert "密码须同时包含字母和数字" in errors[6]  # 12345678 (the clerk's walk) is no password
    assert not [e for e in errors.values() if "。；" in e or "。。" in e]  # one sentence a row, not 必填项。；…
    # re-import: nothing duplicated, every account reported as existing (the clash as a clash again)
    r = c.post("/projects/api/institutions/import", headers=bearer(reviewer[1]),
               data={"file": (workbook(ROWS), "机构.xlsx")}, content_type="multipart/form-data")
    assert r.json["created"] == [] and {x["account"] for x in r.json["existing"]} == {"yl_first", "xa_first"}
    assert "与第 2 行重复" in {e["row"]: e["reason"] for e in r.json["errors"]}[8]
    listed = c.get("/projects/api/institutions", headers=bearer(reviewer[1])).json
    assert sorted(i["account"] for i in listed) == ["xa_first", "yl_first"]
    # the imported initial password works
    r = c.post("/projects/api/auth/login", json={"kind": "institution", "account": "yl_first",
                                                 "password": "Yulin2026!"})
    assert r.status_code == 200 and r.json["needs_admins"] is True
    # its own 操作记录 starts with its creation, as one made by hand (it said 暂无记录: the first-day walk)
    yl = next(i["id"] for i in listed if i["account"] == "yl_first")
    page = login_client(projects_app.test_client(), reviewer[1]).get(f"/projects/institutions/{yl}")
    assert "（账号 yl_first，Excel 导入）" in page.get_data(as_text=True)


def test_import_refuses_a_non_workbook_and_missing_columns(projects_app, reviewer):
    c = projects_app.test_client()
    r = c.post("/projects/api/institutions/import", headers=bearer(reviewer[1]),
               data={"file": (io.BytesIO(b"not a zip"), "x.xlsx")}, content_type="multipart/form-data")
    assert r.status_code == 400 and "Excel" in r.json["error"]["message"]
    r = c.post("/projects/api/institutions/import", headers=bearer(reviewer[1]),
               data={"file": (workbook([["账号", "名称"], ["a1b", "x"]]), "x.xlsx")},
               content_type="multipart/form-data")
    assert r.status_code == 400 and "机构名称" in r.json["error"]["message"]
    # a title row above the header is read past; row numbers stay the sheet's own
    titled = workbook([["2026年新增举办机构"], ["账号", "机构名称", "初始密码"], ["hz_center", "汉中市中心医院", "x"]])
    r = c.post("/projects/api/institutions/import", headers=bearer(reviewer[1]),
               data={"file": (titled, "x.xlsx")}, content_type="multipart/form-data")
    assert r.status_code == 200 and [e["row"] for e in r.json["errors"]] == [3], r.json
    r = c.post("/projects/api/institutions/import", headers=bearer(reviewer[1]))
    assert r.status_code == 400 and r.json["error"]["code"] == "file_required"
    # more rows than one request hashes in time: refused before any is saved, saying how to go on
    many = [["账号", "机构名称", "初始密码"]] + [[f"county_{n}", f"第{n}县医院", "Abcdefg123"] for n in range(101)]
    r = c.post("/projects/api/institutions/import", headers=bearer(reviewer[1]),
               data={"file": (workbook(many), "x.xlsx")}, content_type="multipart/form-data")
    assert r.status_code == 400 and "一次最多导入 100 行" in r.json["error"]["message"]
    assert "分批导入" in r.json["error"]["message"]


def test_api_create_validates_and_refuses_duplicates(projects_app, inst_a, reviewer):
    c = projects_app.test_client()
    r = c.post("/projects/api/institutions", headers=bearer(reviewer[1]),
               json={"account": "a b", "name": "x", "password": "short"})
    assert r.status_code == 422 and {"account", "name", "password"} <= set(r.json["error"]["fields"])
    r = c.post("/projects/api/institutions", headers=bearer(reviewer[1]),
               json={"account": "xa_first", "name": "别的医院", "password": "Abcdefg123"})
    assert r.status_code == 409 and "已存在" in r.json["error"]["message"]
    r = c.post("/projects/api/institutions", headers=bearer(reviewer[1]),
               json={"account": "sl_center", "name": "商洛市中心医院", "password": "Abcdefg123"})
    assert r.status_code == 201 and r.json["account"] == "sl_center" and "password" not in r.json
    # a name that differs only in the width of its brackets, or a space, is the same institution
    r = c.post("/projects/api/institutions", headers=bearer(reviewer[1]),
               json={"account": "xy_branch", "name": "西安市第一医院（西院区）", "password": "Abcdefg123"})
    assert r.status_code == 201
    for twin in ("西安市第一医院(西院区)", "西安市第一医院 （西院区）", "商洛市 中心医院"):
        r = c.post("/projects/api/institutions", headers=bearer(reviewer[1]),
                   json={"account": "twin_one", "name": twin, "password": "Abcdefg123"})
        assert r.status_code == 409 and "已存在" in r.json["error"]["message"], twin
    rows = [["账号", "机构名称", "初始密码"], ["twin_two", "西安市第一医院(西院区)", "Abcdefg123"]]
    r = c.post("/projects/api/institutions/import", headers=bearer(reviewer[1]),
               data={"file": (workbook(rows), "x.xlsx")}, content_type="multipart/form-data")
    assert "机构“西安市第一医院（西院区）”已存在" in r.json["errors"][0]["reason"], r.json


def test_pages_create_and_import(projects_app, inst_a, reviewer):
    c = projects_app.test_client()
    c.set_cookie(COOKIE, session_cookie(reviewer[1]), domain="localhost", path="/")
    page = c.get("/projects/institutions").get_data(as_text=True)
    assert "西安市第一医院" in page and "Excel 导入" in page and "初始密码" in page
    token = csrf_for(reviewer[1])
    r = c.post("/projects/institutions", data={"account": "x", "name": "铜川市人民医院", "password": "Abcdefg123",
                                               "csrf_token": token})
    assert r.status_code == 422
    body = r.get_data(as_text=True)
    assert 'value="铜川市人民医院"' in body and "长度应在" in body
    r = c.post("/projects/institutions", data={"account": "tc_people", "name": "铜川市人民医院",
                                               "password": "Ａｂｃ１２３４５６", "csrf_token": token})
    body = r.get_data(as_text=True)  # it has letters and digits: the input mode is what is wrong
    assert r.status_code == 422 and 'field-error">密码中有全角字符' in body and "密码须同时包含" not in body
    r = c.post("/projects/institutions", data={"account": "tc_people", "name": "铜川市人民医院",
                                               "password": "Abcdefg123", "csrf_token": token})
    assert r.status_code == 302
    assert "已创建申办机构" in c.get("/projects/institutions").get_data(as_text=True)
    r = c.post("/projects/institutions/import", data={"file": (workbook(ROWS), "机构.xlsx"), "csrf_token": token},
               content_type="multipart/form-data")
    assert r.status_code == 200
    body = r.get_data(as_text=True)
    assert "第 3 行" in body and "第 4 行" in body and "榆林市第一医院" in body
    # without the form's token the post is refused
    r = c.post("/projects/institutions", data={"account": "hz_x", "name": "汉中X", "password": "Abcdefg123"})
    assert r.status_code == 403


def test_accounts_ignore_case(projects_app, inst_a, reviewer):
    """'XA_FIRST' beside 'xa_first' would be two logins nobody can tell apart: refused; and the account logs in
    however its letters are typed."""
    c = projects_app.test_client()
    r = c.post("/projects/api/institutions", headers=bearer(reviewer[1]),
               json={"account": "XA_First", "name": "另一家医院", "password": "Abcdefg123"})
    assert r.status_code == 409 and "不区分大小写" in r.json["error"]["message"]
    r = c.post("/projects/api/institutions/import", headers=bearer(reviewer[1]),
               data={"file": (workbook([["账号", "机构名称", "初始密码"], ["XA_FIRST", "再一家医院", "Abcdefg123"]]),
                              "机构.xlsx")}, content_type="multipart/form-data")
    assert r.json["created"] == [] and [x["account"] for x in r.json["existing"]] == ["XA_FIRST"]
    r = c.post("/projects/api/auth/login", json={"kind": "institution", "account": "XA_First", "password": "Passw0rd!"})
    assert r.status_code == 200, r.json


def test_the_database_refuses_an_account_differing_only_in_case(databases, inst_a, reviewer):
    """Two clerks saving XA_FIRST and xa_first at the same moment both pass the service's look-up; the unique
    index on lower(account) keeps the second out (institutions and reviewers alike)."""
    from services.projects.institutions.models import Institution, Reviewer

    s = databases["projects"].new_session()
    try:
        s.add(Institution(account="XA_FIRST", name="同名不同写法的医院", password_hash="x"))  # inst_a is xa_first
        with pytest.raises(IntegrityError, match="uq_institutions_account_ci"):
            s.flush()
        s.rollback()
        taken = s.query(Reviewer).first().account
        s.add(Reviewer(account=taken.swapcase(), name="另一审核员", password_hash="x", mobile_enc="x", mobile_hash="x"))
        with pytest.raises(IntegrityError, match="uq_reviewers_account_ci"):
            s.flush()
    finally:
        s.rollback()
        s.close()


def test_upgrade_stops_on_accounts_differing_only_in_case(monkeypatch, tmp_path):
    """Migration e3b7c9d1a4f6 names the clashing accounts instead of failing inside CREATE INDEX; once one is
    renamed it goes through."""
    import services.projects.models  # noqa: F401 - the whole schema is known
    from services.projects.db import db as pdb

    monkeypatch.setenv("CME_PROJECTS_DATABASE_URL", f"sqlite:///{tmp_path / 'projects.db'}")
    get_settings.cache_clear()
    pdb.reset()
    try:
        cfg = pdb.alembic_config()
        command.upgrade(cfg, "80a9d2b5bbfd")
        with pdb.engine.begin() as conn:
            for account, name in (("hz_center", "汉中市中心医院"), ("HZ_Center", "汉中市中心医院分院")):
                conn.execute(text("INSERT INTO institutions (account, name, password_hash, active, created_at) "
                                  "VALUES (:a, :n, 'x', true, '2026-11-27 00:00:00')"), {"a": account, "n": name})
        with pytest.raises(RuntimeError, match=r"institutions: accounts differing only in case: hz_center \(2\)"):
            command.upgrade(cfg, "head")
        with pdb.engine.begin() as conn:
            conn.execute(text("UPDATE institutions SET account = 'hz_branch' WHERE account = 'HZ_Center'"))
        command.upgrade(cfg, "head")
        with pdb.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM institutions")).scalar() == 2
    finally:
        pdb.reset()
        monkeypatch.delenv("CME_PROJECTS_DATABASE_URL")
        get_settings.cache_clear()


def test_the_list_is_searched_and_paged(projects_app, inst_a, reviewer):
    """A province has hundreds of institutions: the clerk finds one by any part of its account or name, newest
    first, twenty a page, and a stopped one by its state."""
    from services.projects.db import db
    from services.projects.institutions.services import create_institution

    s = db.new_session()
    try:
        for n in range(24):
            made = create_institution(s, f"county_{n:02d}", f"第{n:02d}县人民医院", "Abcdefg123")
            made.active = n != 5
        s.commit()
    finally:
        s.close()
    c = projects_app.test_client()
    c.set_cookie(COOKIE, session_cookie(reviewer[1]), domain="localhost", path="/")
    first = c.get("/projects/institutions").get_data(as_text=True)
    assert "机构列表（25）" in first and "第23县人民医院" in first and "第04县人民医院" in first
    assert "第03县人民医院" not in first and "西安市第一医院" not in first
    second = c.get("/projects/institutions?page=2").get_data(as_text=True)
    assert "第03县人民医院" in second and "西安市第一医院" in second and "第23县人民医院" not in second
    found = c.get("/projects/institutions?q=COUNTY_1").get_data(as_text=True)
    assert "机构列表（10）" in found and "第17县人民医院" in found and "第07县人民医院" not in found
    assert "机构列表（1）" in c.get("/projects/institutions?q=西安市").get_data(as_text=True)
    stopped = c.get("/projects/institutions?state=inactive").get_data(as_text=True)
    assert "机构列表（1）" in stopped and "第05县人民医院" in stopped and "清除条件" in stopped
    none = c.get("/projects/institutions?q=不存在的医院").get_data(as_text=True)
    assert "没有符合条件的申办机构" in none
    bad = c.get("/projects/institutions?state=gone")
    assert bad.status_code == 422 and "请从以下选项中选择" in bad.get_data(as_text=True)


def test_the_committee_disables_enables_and_resets_an_institution(projects_app, inst_a, reviewer, csrf):
    """The clerk's walk: once created, an institution could not be looked at, disabled or given a new password."""
    from services.common.auth import COOKIE

    inst, office = inst_a
    c = projects_app.test_client()
    c.set_cookie(COOKIE, session_cookie(reviewer[1]), domain="localhost", path="/")
    token = csrf(reviewer[1])
    listing = c.get("/projects/institutions").get_data(as_text=True)
    assert f'<a href="/projects/institutions/{inst.id}">{inst.name}</a>' in listing
    page = c.get(f"/projects/institutions/{inst.id}").get_data(as_text=True)
    assert inst.account in page and "机构负责人（1）" in page and "****" in page and "停用账号" in page
    assert c.get("/projects/institutions/999999").status_code == 404

    no_reason = c.post(f"/projects/institutions/{inst.id}/active", data={"csrf_token": token, "active": "false"})
    assert no_reason.status_code == 422 and "请填写原因" in no_reason.get_data(as_text=True)
    for edited in ("zzz", ""):  # the hidden 停用/启用 value edited by hand: said, not a silent 422
        r = c.post(f"/projects/institutions/{inst.id}/active",
                   data={"csrf_token": token, "active": edited, "reason": "合并"})
        assert r.status_code == 422 and "页面已过期" in r.get_data(as_text=True)
    office_api = bearer(office)
    assert projects_app.test_client().get("/projects/api/filings", headers=office_api).status_code == 200
    time.sleep(0.01)
    # Redis, where ended sessions are kept, is down: 停用 would leave the office signed in once it is back
    from services.common import auth as cauth
    from services.common.config import redis_client_for

    working = cauth._ends
    cauth._ends = lambda: redis_client_for("redis://127.0.0.1:1/0", 0.5)
    try:
        refused = c.post(f"/projects/institutions/{inst.id}/active",
                         data={"csrf_token": token, "active": "false", "reason": "机构撤并"})
    finally:
        cauth._ends = working
    assert refused.status_code == 503 and "本次未做任何修改" in refused.get_data(as_text=True)
    assert "机构撤并" in refused.get_data(as_text=True)  # the reason typed is kept
    assert "停用账号" in c.get(f"/projects/institutions/{inst.id}").get_data(as_text=True)  # still active
    off = c.post(f"/projects/institutions/{inst.id}/active",
                 data={"csrf_token": token, "active": "false", "reason": "机构撤并"})
    assert off.status_code == 302
    ended = projects_app.test_client().get("/projects/api/filings", headers=office_api)
    assert ended.status_code == 401  # its sessions ended
    login = projects_app.test_client().post("/projects/api/auth/login", json={
        "kind": "institution", "account": inst.account, "password": "Passw0rd!"})
    assert login.status_code == 403 and login.json["error"]["code"] == "account_disabled"
    again = c.post(f"/projects/institutions/{inst.id}/active",
                   data={"csrf_token": token, "active": "false", "reason": "重复"})
    assert again.status_code == 409
    assert c.post(f"/projects/institutions/{inst.id}/active",
                  data={"csrf_token": token, "active": "true", "reason": "恢复办学"}).status_code == 302

    weak = c.post(f"/projects/institutions/{inst.id}/password",
                  data={"csrf_token": token, "password": "12345678", "reason": "遗失密码"})
    assert weak.status_code == 422 and "字母和数字" in weak.get_data(as_text=True)
    reset = c.post(f"/projects/institutions/{inst.id}/password",
                   data={"csrf_token": token, "password": "Newpass2026", "reason": "遗失密码"})
    assert reset.status_code == 302
    for password, status in (("Passw0rd!", 401), ("Newpass2026", 200)):
        r = projects_app.test_client().post("/projects/api/auth/login", json={
            "kind": "institution", "account": inst.account, "password": password})
        assert r.status_code == status
    history = c.get(f"/projects/institutions/{inst.id}").get_data(as_text=True)
    for shown in ("停用", "机构撤并", "启用", "恢复办学", "重置密码", "遗失密码"):
        assert shown in history, shown
    assert "Newpass2026" not in history


def test_the_committee_gives_a_locked_out_office_a_new_responsible_person(projects_app, inst_a, reviewer, csrf):
    """Every 机构负责人 of an office gone (the only one left and took her phone): no code reaches anyone, so nobody
    can log in to add one, and the first-login form is closed once one exists. The committee adds a person and
    removes the one who left; each with a reason in 操作记录, the removed one's sessions ended."""
    from services.common.auth import COOKIE

    inst, gone = inst_a
    c = projects_app.test_client()
    c.set_cookie(COOKIE, session_cookie(reviewer[1]), domain="localhost", path="/")
    token = csrf(reviewer[1])
    page = c.get(f"/projects/institutions/{inst.id}").get_data(as_text=True)
    assert "新增机构负责人" in page and "须至少保留一名" in page  # the last one is not offered for removal
    r = c.post(f"/projects/institutions/{inst.id}/admins/{gone.admin_id}/remove",
               data={"csrf_token": token, "reason": "已调离本院"})
    assert r.status_code == 409 and "至少须保留一名负责人" in r.get_data(as_text=True)
    typed = {"csrf_token": token, "real_name": "周新任", "mobile": "138 0000 9999", "reason": "原负责人调离，机构来函"}
    r = c.post(f"/projects/institutions/{inst.id}/admins", data={**typed, "mobile": "1380000"})
    text = r.get_data(as_text=True)
    assert r.status_code == 422 and 'value="周新任"' in text and "原负责人调离，机构来函" in text
    assert c.post(f"/projects/institutions/{inst.id}/admins", data=typed).status_code == 302
    page = c.get(f"/projects/institutions/{inst.id}").get_data(as_text=True)
    assert "机构负责人（2）" in page and "周新任" in page and "13800009999" not in page and "138****9999" in page
    r = c.post(f"/projects/institutions/{inst.id}/admins", data=typed)  # the same mobile again
    assert r.status_code == 409 and "该手机号码已登记" in r.get_data(as_text=True)

    office_api = bearer(gone)
    assert projects_app.test_client().get("/projects/api/filings", headers=office_api).status_code == 200
    time.sleep(0.01)
    r = c.post(f"/projects/institutions/{inst.id}/admins/{gone.admin_id}/remove",
               data={"csrf_token": token, "reason": "已调离本院"})
    assert r.status_code == 302
    assert projects_app.test_client().get("/projects/api/filings", headers=office_api).status_code == 401
    page = c.get(f"/projects/institutions/{inst.id}").get_data(as_text=True)
    people = page.split("<h3>新增机构负责人</h3>")[0].split("机构负责人（1）")[1]
    assert "周新任" in people and "负责人1" not in people
    history = page.split("操作记录")[-1]
    assert "新增机构负责人 周新任（138****9999）：原负责人调离，机构来函" in history
    assert "移除机构负责人 负责人1（138****0001）：已调离本院" in history
    # the new person is the one the login offers
    login = projects_app.test_client().post("/projects/api/auth/login", json={
        "kind": "institution", "account": inst.account, "password": "Passw0rd!"})
    assert [a["real_name"] for a in login.json["admins"]] == ["周新任"]


def test_the_institutions_api_pages_on_request_and_keeps_its_array_by_default(projects_app, projects_db, reviewer,
                                                                              inst_a):
    """GET /projects/api/institutions returned every institution in one array (hundreds in a province); the page
    is paged. With page or per_page it answers one page in the shape of the other list APIs; without, the array
    as before, so an existing caller sees no change."""
    from services.projects.institutions.models import Institution

    s = projects_db.new_session()
    s.add_all(Institution(account=f"pg{i:03d}", name=f"分页医院{i:03d}", password_hash="x", active=i % 10 != 0)
              for i in range(44))
    s.commit()
    s.close()
    c = projects_app.test_client()
    h = bearer(reviewer[1])
    whole = c.get("/projects/api/institutions", headers=h)
    assert whole.status_code == 200 and isinstance(whole.json, list) and len(whole.json) == 45
    ids = [i["id"] for i in whole.json]
    assert ids == sorted(ids)

    first = c.get("/projects/api/institutions?per_page=20", headers=h).json
    assert (first["total"], first["page"], first["pages"], first["per_page"]) == (45, 1, 3, 20)
    assert [i["id"] for i in first["items"]] == ids[:20]
    assert set(first["items"][0]) == set(whole.json[0])  # the same fields a row, admins counted
    assert first["items"][0]["admins"] == 1 and first["items"][0]["account"] == "xa_first"
    walked = [i["id"] for p in (1, 2, 3)
              for i in c.get(f"/projects/api/institutions?page={p}&per_page=20", headers=h).json["items"]]
    assert walked == ids  # page by page: the array, in its order, nothing twice or missing
    last = c.get("/projects/api/institutions?page=3", headers=h).json  # page alone: 20 a page
    assert last["per_page"] == 20 and len(last["items"]) == 5
    assert c.get("/projects/api/institutions?page=9", headers=h).json["page"] == 3  # a stale page: the last one

    found = c.get("/projects/api/institutions?page=1&q=分页医院00", headers=h).json
    assert found["total"] == 10 and {i["name"] for i in found["items"]} == {f"分页医院{i:03d}" for i in range(10)}
    stopped = c.get("/projects/api/institutions?state=inactive", headers=h).json  # unpaged, narrowed
    assert sorted(i["account"] for i in stopped) == [f"pg{i:03d}" for i in range(0, 44, 10)]

    bad = c.get("/projects/api/institutions?per_page=500", headers=h)
    assert bad.status_code == 422 and bad.json["error"]["message"]
    assert c.get("/projects/api/institutions?page=abc", headers=h).status_code == 422
    assert c.get("/projects/api/institutions?foo=1", headers=h).json == whole.json  # a stray argument ignored
    assert c.get("/projects/api/institutions?page=1", headers=bearer(inst_a[1])).status_code == 403

    spec = c.get("/projects/api/openapi.json").json["paths"]["/projects/api/institutions"]["get"]
    assert "分页" in spec["summary"] and "{items, total, page, pages, per_page}" in spec["summary"]
    assert {p["name"] for p in spec["parameters"]} >= {"page", "per_page", "q", "state"}
    shapes = spec["responses"]["200"]["content"]["application/json"]["schema"]["oneOf"]  # both, for API checkers
    assert [s["type"] for s in shapes] == ["array", "object"] and set(shapes[1]["required"]) == set(first)


def _template(projects_app, reviewer) -> bytes:
    r = login_client(projects_app.test_client(), reviewer[1]).get("/projects/institutions/import-template.xlsx")
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    assert "filename*=UTF-8''%E7%94%B3%E5%8A%9E%E6%9C%BA%E6%9E%84" in r.headers["Content-Disposition"]  # 申办机构…
    return r.get_data()


def _import(projects_app, reviewer, data: bytes) -> dict:
    r = projects_app.test_client().post(
        "/projects/api/institutions/import", headers=bearer(reviewer[1]),
        data={"file": (io.BytesIO(data), "申办机构导入模板.xlsx")}, content_type="multipart/form-data")
    assert r.status_code == 200, r.json
    return r.json


def test_the_import_template_holds_the_header_an_example_and_the_notes(projects_app, reviewer):
    """下载导入模板: a clerk had to guess the columns. The file's header row is the import's, its example row is
    marked as one, and each column says what it takes."""
    from openpyxl import load_workbook

    from services.projects.institutions.services import IMPORT_COLUMNS

    wb = load_workbook(io.BytesIO(_template(projects_app, reviewer)))
    ws = wb["申办机构"]
    rows = [list(r) for r in ws.iter_rows(max_row=4, max_col=3, values_only=True)]
    assert rows[2] == list(IMPORT_COLUMNS.values()) == ["账号", "机构名称", "初始密码"]
    assert rows[3][0] == "example_hospital" and rows[3][1].startswith("【示例】")
    # the note's row numbers are the sheet's own: the header is row 3 and the example row 4 (rows[2], rows[3])
    assert "请从第 5 行起" in rows[1][0] and "第 3 行为表头，第 4 行为示例，导入时跳过" in rows[1][0]
    comments = {c.value: c.comment.text for c in ws[3]}
    assert "必填" in comments["账号"] and "字母、数字" in comments["账号"]
    assert "同时包含英文字母和数字" in comments["初始密码"] and "半角" in comments["初始密码"]
    notes = {r[0]: r[1] for r in wb["填写说明"].iter_rows(min_row=2, values_only=True)}
    assert set(notes) >= {"账号", "机构名称", "初始密码", "示例行"} and "最多导入 100 行" in notes["行数"]
    assert ws.column_dimensions["C"].number_format == "@"  # a password of digits typed below stays text
    # the committee's only: an office (or anyone signed out) gets no file
    r = projects_app.test_client().get("/projects/institutions/import-template.xlsx")
    assert r.status_code == 302 and "/projects/login" in r.headers["Location"]


def test_the_template_imported_back_creates_nothing_and_filled_in_it_imports(projects_app, inst_a, reviewer):
    from openpyxl import load_workbook

    data = _template(projects_app, reviewer)
    out = _import(projects_app, reviewer, data)
    assert (out["created"], out["existing"], out["errors"]) == ([], [], [])
    assert [s["row"] for s in out["skipped"]] == [4] and "示例行" in out["skipped"][0]["reason"]
    listed = projects_app.test_client().get("/projects/api/institutions", headers=bearer(reviewer[1])).json
    assert [i["account"] for i in listed] == ["xa_first"]  # the example was not created

    # filled in below the example (left in place), and a row typed over the example's name only: still the example
    wb = load_workbook(io.BytesIO(data))
    ws = wb["申办机构"]
    ws.append(["yl_first", "榆林市第一医院", "Yulin2026a"])
    ws.append(["ya_center", "延安市人民医院", "12345678"])  # a text cell of digits: the password rule's refusal
    ws.append(["hz_center", "【示例】汉中市中心医院", "Hanzhong2026"])
    buf = io.BytesIO()
    wb.save(buf)
    out = _import(projects_app, reviewer, buf.getvalue())
    assert [(c["row"], c["account"]) for c in out["created"]] == [(5, "yl_first")]
    assert [e["row"] for e in out["errors"]] == [6] and "密码须同时包含字母和数字" in out["errors"][0]["reason"]
    assert (out["errors"][0]["account"], out["errors"][0]["name"]) == ("ya_center", "延安市人民医院")
    assert [s["row"] for s in out["skipped"]] == [4, 7]
    r = projects_app.test_client().post("/projects/api/auth/login", json={
        "kind": "institution", "account": "yl_first", "password": "Yulin2026a"})
    assert r.status_code == 200

    # the example typed over with a real institution is a real row; the page says what was skipped
    ws["A4"], ws["B4"] = "ak_center", "安康市中心医院"
    buf = io.BytesIO()
    wb.save(buf)
    c = login_client(projects_app.test_client(), reviewer[1])
    page = c.post("/projects/institutions/import", data={
        "file": (io.BytesIO(buf.getvalue()), "x.xlsx"), "csrf_token": csrf_for(reviewer[1])},
        content_type="multipart/form-data").get_data(as_text=True)
    assert "新增 1 个，已存在 1 个，错误 1 行，跳过示例行 1 行。" in page
    assert "第 7 行</td><td></td><td>模板自带的示例行" in page
    assert "第 6 行</td><td>ya_center / 延安市人民医院</td><td>" in page  # a refused row named as typed
    assert 'href="/projects/institutions/import-template.xlsx"' in c.get("/projects/institutions").get_data(
        as_text=True)
