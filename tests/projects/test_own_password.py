"""修改密码: an office replaces the password the committee typed (新建, 重置密码) with its own. Found walking a first
day on a fresh install: the committee's password stayed for good, known to whoever typed or carried it."""

from __future__ import annotations

from sqlalchemy import select

from services.projects.audit.models import AuditLog
from services.projects.institutions.models import Institution
from services.projects.institutions.services import verify_password
from tests.conftest import bearer, login_client
from tests.projects.conftest import csrf_for


def institution(projects_db, inst_id: int) -> Institution:
    s = projects_db.new_session()
    try:
        return s.get(Institution, inst_id)
    finally:
        s.close()


def test_the_office_sets_its_own_password_on_the_page(projects_app, projects_db, inst_a, reviewer):
    inst, principal = inst_a
    c = login_client(projects_app.test_client(), principal)
    page = c.get("/projects/password").get_data(as_text=True)
    assert 'id="initial"' in page and "初始密码" in page  # the committee's password, until changed
    token = csrf_for(principal)

    def send(old: str, new: str, again: str):  # type: ignore[no-untyped-def]
        return c.post("/projects/password", data={"csrf_token": token, "old_password": old, "new_password": new,
                                                  "new_password2": again})

    wrong = send("Wrong0000", "Mine2026xa", "Mine2026xa")
    assert wrong.status_code == 422 and "原密码不正确。" in wrong.get_data(as_text=True)
    weak = send("Passw0rd!", "12345678", "12345678")
    assert weak.status_code == 422 and "密码须同时包含字母和数字" in weak.get_data(as_text=True)
    differ = send("Passw0rd!", "Mine2026xa", "Mine2026xb")
    assert differ.status_code == 422 and "两次输入的新密码不一致。" in differ.get_data(as_text=True)
    same = send("Passw0rd!", "Passw0rd!", "Passw0rd!")
    assert same.status_code == 422 and "新密码不能与原密码相同。" in same.get_data(as_text=True)
    assert "Mine2026xa" not in differ.get_data(as_text=True)  # a password is never typed back into a page
    assert institution(projects_db, inst.id).password_initial is True  # nothing changed by a refusal

    done = send("Passw0rd!", "Mine2026xa", "Mine2026xa")
    assert done.status_code == 302 and done.headers["Location"] == "/projects/admins"
    stored = institution(projects_db, inst.id)
    assert verify_password(stored.password_hash, "Mine2026xa") and not verify_password(stored.password_hash,
                                                                                        "Passw0rd!")
    assert stored.password_initial is False
    assert 'id="initial"' not in c.get("/projects/password").get_data(as_text=True)
    # the committee sees it in the institution's 操作记录 (who, not the password)
    s = projects_db.new_session()
    [entry] = s.scalars(select(AuditLog).where(AuditLog.object_type == "institution", AuditLog.object_id == inst.id,
                                               AuditLog.action == "password_changed")).all()
    s.close()
    assert "修改了登录密码" in entry.reason and "Mine2026xa" not in entry.reason
    committee = login_client(projects_app.test_client(), reviewer[1])
    assert "修改密码" in committee.get(f"/projects/institutions/{inst.id}").get_data(as_text=True)

    # the committee's 重置密码 makes it the committee's password again
    r = committee.post(f"/projects/institutions/{inst.id}/password",
                       data={"csrf_token": csrf_for(reviewer[1]), "password": "Reset2026ab", "reason": "遗失密码"})
    assert r.status_code == 302
    assert institution(projects_db, inst.id).password_initial is True


def test_the_api_changes_it_too_and_only_for_its_own_institution(projects_app, projects_db, inst_a, inst_b):
    c = projects_app.test_client()
    r = c.post("/projects/api/auth/password", headers=bearer(inst_a[1]),
               json={"old_password": "Passw0rd!", "new_password": "short"})
    assert r.status_code == 422
    r = c.post("/projects/api/auth/password", headers=bearer(inst_a[1]),
               json={"old_password": "Passw0rd!", "new_password": "Mine2026xa"})
    assert r.status_code == 204
    assert verify_password(institution(projects_db, inst_a[0].id).password_hash, "Mine2026xa")
    assert verify_password(institution(projects_db, inst_b[0].id).password_hash, "Passw0rd!")  # B's untouched
