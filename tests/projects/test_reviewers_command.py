"""The committee's accounts from the operator's command: a new installation has no 审核员, and only the committee
creates institutions, so without it nobody could start (python -m services.projects.institutions.reviewers)."""

from __future__ import annotations

import io
import re
import time

import pytest

from services.common.auth import issue_token
from services.projects.institutions.reviewers import main


def login(app, account: str, password: str):  # type: ignore[no-untyped-def]
    return app.test_client().post("/projects/api/auth/login",
                                  json={"kind": "reviewer", "account": account, "password": password})


def run(monkeypatch, capsys, *argv: str, stdin: str = "") -> str:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    main(list(argv))
    return capsys.readouterr().out


def test_the_operator_adds_the_first_reviewer_and_keeps_her_account(projects_app, projects_db, monkeypatch,
                                                                    capsys, caplog):
    from services.common.auth import Principal
    from services.projects.audit.models import AuditLog

    out = run(monkeypatch, capsys, "add", "committee01", "审核员甲", "139 0000 1234", "--password-stdin",
              stdin="Review2026\n")
    assert "已新增审核员 committee01（审核员甲）" in out
    assert re.search(r"可在 https?://\S+/projects/login 选择", out)  # the whole address, not a path to guess
    answer = login(projects_app, "committee01", "Review2026")
    assert answer.status_code == 200 and answer.json["admins"][0]["mobile_masked"] == "139****1234"
    listed = run(monkeypatch, capsys, "list")
    assert "committee01\t审核员甲\t139****1234\t启用" in listed and "13900001234" not in listed + caplog.text

    # refused, nothing saved: a weak password, a taken account (any case), a bad mobile
    for argv, stdin, said in ((("add", "committee02", "审核员乙", "13900001235", "--password-stdin"), "12345678\n",
                               "密码须同时包含字母和数字"),
                              (("add", "COMMITTEE01", "审核员乙", "13900001235", "--password-stdin"), "Review2026\n",
                               "已存在"),
                              (("add", "committee02", "审核员乙", "1390000", "--password-stdin"), "Review2026\n",
                               "手机号码")):
        with pytest.raises(SystemExit) as refused:
            run(monkeypatch, capsys, *argv, stdin=stdin)
        assert said in str(refused.value) and "未做任何修改" in str(refused.value)
    assert login(projects_app, "committee02", "Review2026").status_code == 401

    # her phone changed and she forgot the password: a new mobile and password end her open sessions
    from services.projects.institutions.models import Reviewer

    s = projects_db.new_session()
    rid = s.query(Reviewer).filter_by(account="committee01").one().id
    s.close()
    token = issue_token(Principal(role="reviewer", subject=f"reviewer:{rid}", name="审核员甲", reviewer_id=rid))
    her = {"Authorization": f"Bearer {token}"}
    assert projects_app.test_client().get("/projects/api/institutions", headers=her).status_code == 200
    time.sleep(0.01)
    out = run(monkeypatch, capsys, "set", "Committee01", "--mobile", "13900005678", "--password-stdin",
              stdin="Newpass2026\n")
    assert "手机号码（139****5678）、密码" in out
    assert projects_app.test_client().get("/projects/api/institutions", headers=her).status_code == 401
    assert login(projects_app, "committee01", "Review2026").status_code == 401
    assert login(projects_app, "committee01", "Newpass2026").json["admins"][0]["mobile_masked"] == "139****5678"
    with pytest.raises(SystemExit) as same:
        run(monkeypatch, capsys, "set", "committee01", "--mobile", "13900005678")
    assert "未做任何修改" in str(same.value)
    # she left: disabled, she cannot log in
    run(monkeypatch, capsys, "set", "committee01", "--disable")
    assert login(projects_app, "committee01", "Newpass2026").status_code in (401, 403)
    s = projects_db.new_session()
    reasons = [a.reason for a in s.query(AuditLog).filter_by(object_type="reviewer", object_id=rid)
               .order_by(AuditLog.id)]
    s.close()
    assert reasons == ["运维命令新增审核员 审核员甲（139****1234）", "运维命令修改：手机号码（139****5678）、密码",
                       "运维命令修改：停用"]
    with pytest.raises(SystemExit) as unknown:
        run(monkeypatch, capsys, "set", "nobody", "--disable")
    assert "没有审核员账号“nobody”" in str(unknown.value)


def test_before_the_database_exists_it_says_so_in_one_line(tmp_path):
    """The first-day walk: run before make up (or with .env naming another database) it left an empty SQLite file
    and a traceback ending in 'no such table', or 'database … does not exist'."""
    import os
    import subprocess
    import sys

    def command(url: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "CME_PROJECTS_DATABASE_URL": url, "CME_ENV_FILE": str(tmp_path / "none.env")}
        return subprocess.run([sys.executable, "-m", "services.projects.institutions.reviewers", "list"], env=env,
                              capture_output=True, text=True, timeout=60)

    missing = tmp_path / "projects.db"
    answer = command(f"sqlite:///{missing}")
    assert answer.returncode == 1 and "Traceback" not in answer.stderr
    assert "projects 的数据库还不存在" in answer.stderr and "请先运行 make up" in answer.stderr
    assert not missing.exists()  # asking did not create it
    answer = command("postgresql+psycopg://root:secret@127.0.0.1:5432/cmet_no_such_database_here")
    assert answer.returncode == 1 and "Traceback" not in answer.stderr
    assert "projects 的数据库无法连接" in answer.stderr and "secret" not in answer.stderr  # the password hidden
