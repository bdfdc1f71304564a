"""Committee review: approve (with the offering.approved event in the same transaction), return with a
reason, correct and resubmit, the audit trail, and who may call which endpoint."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid

import pytest
from sqlalchemy import select

from services.common.events import OfferingApprovedSchema
from services.projects.audit.models import AuditLog
from services.projects.catalogue.models import Project
from services.projects.db import outbox
from tests.conftest import bearer, login_client, page_version


def outbox_rows(projects_db, name: str | None = None):
    """The outbox's rows for the other services (projects.decided, projects' own SMS notice, is asked by name)."""
    s = projects_db.new_session()
    try:
        which = outbox.c.name == name if name else outbox.c.name != "projects.decided"
        return s.execute(select(outbox).where(which)).all()
    finally:
        s.close()


def audit(projects_db, fid):
    s = projects_db.new_session()
    try:
        return [(a.action, a.from_state, a.to_state, a.reason, a.actor)
                for a in s.scalars(select(AuditLog).where(AuditLog.object_type == "filing",
                                                          AuditLog.object_id == fid).order_by(AuditLog.id))]
    finally:
        s.close()


def test_approve_emits_event_once(projects_app, projects_db, inst_a, reviewer, ready_filing, frozen):
    project, fid = ready_filing(*inst_a, mode="线上线下", submit=True)
    c = projects_app.test_client()
    h = bearer(reviewer[1])
    listed = c.get("/projects/api/review/filings", headers=h).get_json()
    assert [i["id"] for i in listed["items"]] == [fid]
    detail = c.get(f"/projects/api/review/filings/{fid}", headers=h).get_json()
    assert detail["contact_phone"] == "139****5678"  # masked for anyone but the owner
    assert {u["kind"] for u in detail["uploads"]} == {"notice", "agenda", "online_supervision"}
    assert outbox_rows(projects_db) == []
    r = c.post(f"/projects/api/review/filings/{fid}/approve", headers=h, json={"version": detail["version"]})
    assert r.status_code == 200 and r.get_json()["state"] == "approved"
    rows = outbox_rows(projects_db)
    assert sorted(r.consumer for r in rows) == ["checkin", "credits"]
    env = json.loads(rows[0].envelope)
    assert env["name"] == "offering.approved" and env["producer"] == "projects"
    payload = OfferingApprovedSchema().load(env["payload"])
    assert payload["project_number"] == project.number and payload["seq"] == 1
    assert payload["institution_name"] == inst_a[0].name and payload["mode"] == "线上线下"
    assert str(payload["starts_on"]) == "2026-03-20" and len(payload["schedule"]) == 2
    assert payload["credit_class"] == "Ⅰ类" and str(payload["credit_value"]) in ("10", "10.0")
    # approving again is refused and emits nothing more
    assert c.post(f"/projects/api/review/filings/{fid}/approve", headers=h, json={}).status_code == 409
    assert len(outbox_rows(projects_db)) == 2
    assert [a[:3] for a in audit(projects_db, fid)] == [("create", None, "draft"), ("submit", "draft", "submitted"),
                                                        ("approve", "submitted", "approved")]


def test_return_correct_resubmit(projects_app, projects_db, inst_a, reviewer, ready_filing, frozen, images):
    project, fid = ready_filing(*inst_a, submit=True)
    c = projects_app.test_client()
    hr, hi = bearer(reviewer[1]), bearer(inst_a[1])
    r = c.post(f"/projects/api/review/filings/{fid}/return", headers=hr, json={"reason": "  "})
    assert r.status_code == 422 and "退回原因" in r.get_json()["error"]["message"]
    r = c.post(f"/projects/api/review/filings/{fid}/return", headers=hr, json={})
    assert r.status_code == 422
    r = c.post(f"/projects/api/review/filings/{fid}/return", headers=hr, json={"reason": "退"})
    assert r.status_code == 422 and "应在 2 到 1000 个字符之间" in r.get_json()["error"]["message"]
    reason = {"reason": "会议日程不清晰，请重新上传。"}
    r = c.post(f"/projects/api/review/filings/{fid}/return", headers=hr, json=reason)
    assert r.status_code == 200 and r.get_json()["state"] == "returned"
    assert outbox_rows(projects_db) == []  # no event after a return
    body = c.get(f"/projects/api/filings/{fid}", headers=hi).get_json()
    assert body["state"] == "returned" and body["return_reason"] == "会议日程不清晰，请重新上传。"
    r = c.post(f"/projects/api/filings/{fid}/uploads/agenda", headers=hi,
               data={"file": (io.BytesIO(images.jpeg((200, 100))), "日程.jpg")}, content_type="multipart/form-data")
    assert r.status_code == 201
    assert c.post(f"/projects/api/filings/{fid}/submit", headers=hi, json={}).status_code == 200
    assert c.post(f"/projects/api/review/filings/{fid}/approve", headers=hr, json={}).status_code == 200
    trail = audit(projects_db, fid)
    assert [a[0] for a in trail] == ["create", "submit", "return", "submit", "approve"]
    assert trail[2] == ("return", "submitted", "returned", "会议日程不清晰，请重新上传。", reviewer[1].describe())
    assert trail[3][4] == inst_a[1].describe()
    assert len(outbox_rows(projects_db)) == 2


def test_stale_version_conflict(projects_app, inst_a, reviewer, ready_filing, frozen):
    project, fid = ready_filing(*inst_a, submit=True)
    c = projects_app.test_client()
    r = c.post(f"/projects/api/review/filings/{fid}/approve", headers=bearer(reviewer[1]), json={"version": 1})
    assert r.status_code == 409


def test_a_double_click_hears_what_happened_not_a_conflict(projects_app, inst_a, reviewer, ready_filing, frozen):
    """The office's walk: a second 上报 or 审批通过 from the same page (same version) said "modified by someone
    else"; it now says the filing is already in that state."""
    project, fid = ready_filing(*inst_a)
    c = projects_app.test_client()
    hi, hr = bearer(inst_a[1]), bearer(reviewer[1])
    version = c.get(f"/projects/api/filings/{fid}", headers=hi).get_json()["version"]
    assert c.post(f"/projects/api/filings/{fid}/submit", headers=hi, json={"version": version}).status_code == 200
    twice = c.post(f"/projects/api/filings/{fid}/submit", headers=hi, json={"version": version})
    assert twice.status_code == 409 and "不能再次上报" in twice.get_json()["error"]["message"]
    version = c.get(f"/projects/api/review/filings/{fid}", headers=hr).get_json()["version"]
    first = c.post(f"/projects/api/review/filings/{fid}/approve", headers=hr, json={"version": version})
    assert first.status_code == 200
    again = c.post(f"/projects/api/review/filings/{fid}/approve", headers=hr, json={"version": version})
    assert again.status_code == 409 and "审批通过" in again.get_json()["error"]["message"]
    assert "不能审批" in again.get_json()["error"]["message"]


def test_review_pages(projects_app, projects_db, inst_a, inst_b, reviewer, ready_filing, frozen, csrf):
    _, fa = ready_filing(*inst_a, submit=True)
    _, fb = ready_filing(*inst_b, submit=True)
    _, draft = ready_filing(*inst_b)
    c = login_client(projects_app.test_client(), reviewer[1])
    html = c.get("/projects/review/filings").get_data(as_text=True)
    assert inst_a[0].name in html and inst_b[0].name in html
    html = c.get(f"/projects/review/filings?institution_id={inst_a[0].id}").get_data(as_text=True)
    assert f"/projects/review/filings/{fa}" in html and f"/projects/review/filings/{fb}" not in html
    assert c.get(f"/projects/review/filings/{draft}").status_code == 404  # drafts stay with the institution
    html = c.get(f"/projects/review/filings/{fa}").get_data(as_text=True)
    for text in ("会议通知", "会议日程", "西安市雁塔区会议中心", "开幕式与专题讲座", "139****5678", "办理记录",
                 "审批通过"):
        assert text in html, text
    assert "（距举办还有 18 天）" in html  # 2026-03-02 to 2026-03-20
    assert "（2026 年度" in html  # the project's year beside its number: the clerk sees a filing of another year
    # the 联系电话 is masked until the clerk asks for it to call; each look is in the 办理记录
    assert "13912345678" not in html and "显示完整号码" in html
    shown = c.post(f"/projects/review/filings/{fa}/contact", data={"csrf_token": csrf(reviewer[1])})
    text = shown.get_data(as_text=True)
    assert shown.status_code == 200 and "13912345678" in text and "显示完整号码" not in text
    assert f'history.replaceState(null, "", "/projects/review/filings/{fa}")' in text  # a reload is the GET page
    assert "查看完整联系电话" in text and "13912345678" not in c.get(f"/projects/review/filings/{fa}").get_data(
        as_text=True)
    assert "项目目录登记为" not in html
    assert c.get(f"/projects/filings/{fa}/uploads/notice").status_code == 200
    assert c.get(f"/projects/filings/{draft}/uploads/notice").status_code == 404
    # a clerk sees a filing whose start has passed, and a mode the catalogue does not have
    from services.common import clock
    from services.projects.catalogue.models import Project
    from services.projects.filings.models import Filing

    s = projects_db.new_session()
    project = s.get(Project, s.get(Filing, fa).project.id)
    project.mode = "线上"
    s.commit()
    s.close()
    clock.set_now(dt.datetime(2026, 3, 22, 2, 0, tzinfo=dt.UTC))
    late = c.get(f"/projects/review/filings/{fa}").get_data(as_text=True)
    assert "（已于 2 天前开始举办）" in late and "（项目目录登记为“线上”）" in late
    clock.set_now(frozen)
    token = csrf(reviewer[1])
    r = c.post(f"/projects/review/filings/{fa}/return", data={"csrf_token": token, "reason": "地点不详"})
    assert r.status_code == 409 and "页面已过期" in r.get_data(as_text=True)  # a page always sends its version
    token = {"csrf_token": token, "version": page_version(c, f"/projects/review/filings/{fa}")}
    r = c.post(f"/projects/review/filings/{fa}/return", data={**token, "reason": ""})
    assert r.status_code == 422 and "退回原因" in r.get_data(as_text=True)
    r = c.post(f"/projects/review/filings/{fa}/return", data={**token, "reason": " 否 "})
    assert r.status_code == 422 and "应在 2 到 1000 个字符之间" in r.get_data(as_text=True)
    assert 'required> 否 </textarea>' in r.get_data(as_text=True)  # what was typed, to be lengthened
    r = c.post(f"/projects/review/filings/{fa}/return", data={**token, "reason": "地点不详"})
    assert r.status_code == 302
    r = c.post(f"/projects/review/filings/{fb}/approve", data={"csrf_token": token["csrf_token"]})
    assert r.status_code == 409  # not approved without the check that nobody changed it first
    assert c.get(f"/projects/api/review/filings/{fb}", headers=bearer(reviewer[1])).json["state"] == "submitted"
    r = c.post(f"/projects/review/filings/{fb}/approve", data={
        "csrf_token": token["csrf_token"], "version": page_version(c, f"/projects/review/filings/{fb}")})
    assert r.status_code == 302
    assert len(outbox_rows(projects_db)) == 2
    html = c.get("/projects/review/filings?state=all").get_data(as_text=True)
    assert "已退回" in html and "审批通过" in html
    inst_page = login_client(projects_app.test_client(), inst_a[1]).get(f"/projects/filings/{fa}")
    assert "地点不详" in inst_page.get_data(as_text=True)


# ---- who may call what: every endpoint of catalogue, filings and reviews ---------------------------

ROLES = ("anonymous", "inst_a", "inst_b", "reviewer")


@pytest.fixture
def world(projects_db, inst_a, inst_b, reviewer, ready_filing, frozen):
    from services.projects.catalogue import exports, imports
    from services.projects.catalogue.tasks import run_export_job, run_import_job
    from services.projects.filings.models import Filing
    from tests.projects.test_catalogue import row, workbook

    project, fid = ready_filing(*inst_a, submit=True)
    s = projects_db.new_session()
    oid = s.scalar(select(Filing.offering_id).where(Filing.id == fid))
    job = imports.create_import(s, reviewer[1], "目录.xlsx", workbook([row("2026-07-01-001", "无此机构")]), 2026)
    s.commit()
    job_id = job.id
    s.close()
    assert run_import_job(job_id) == "done"  # one row in error: its list can be downloaded
    s = projects_db.new_session()
    export = exports.create_export(s, reviewer[1], {"year": 2026}, 1)  # a long list's export, done: its file kept
    s.commit()
    export_id = export.id
    s.close()
    assert run_export_job(export_id) == "done"
    return {"pid": project.id, "fid": fid, "oid": oid, "job": job_id, "export": export_id, "inst_a": inst_a[1],
            "inst_b": inst_b[1], "reviewer": reviewer[1]}


# (method, url, who may: expected status for each role in ROLES)
ENDPOINTS = [
    ("GET", "/projects/catalogue", (302, 403, 403, 200)),
    ("GET", "/projects/catalogue.xlsx", (302, 403, 403, 200)),
    ("POST", "/projects/catalogue/import", (401, 403, 403, 422)),
    ("GET", "/projects/api/catalogue", (401, 200, 200, 200)),
    ("POST", "/projects/api/catalogue/import", (401, 403, 403, 422)),
    ("GET", "/projects/catalogue/import", (302, 403, 403, 303)),  # the result page's address: back to the list
    ("GET", "/projects/catalogue/imports/{job}", (302, 403, 403, 200)),
    ("GET", "/projects/catalogue/imports/{job}/report.xlsx", (302, 403, 403, 200)),
    ("GET", "/projects/api/catalogue/imports/{job}", (401, 403, 403, 200)),
    ("POST", "/projects/catalogue/exports", (401, 403, 403, 200)),  # the whole (short) list: the file at once
    ("GET", "/projects/catalogue/exports", (302, 403, 403, 303)),  # the export form's address: back to the list
    ("GET", "/projects/catalogue/exports/{export}", (302, 403, 403, 200)),
    ("GET", "/projects/catalogue/exports/{export}.xlsx", (302, 403, 403, 200)),
    ("POST", "/projects/api/catalogue/export", (401, 403, 403, 202)),  # always a job, whatever the count
    ("GET", "/projects/api/catalogue/exports/{export}", (401, 403, 403, 200)),
    ("GET", "/projects/api/catalogue/exports/{export}.xlsx", (401, 403, 403, 200)),
    ("POST", "/projects/catalogue/{pid}/delete", (401, 403, 403, 409)),  # a 期次 was started: not deleted
    ("GET", "/projects/filings", (302, 200, 200, 403)),
    ("POST", "/projects/filings/projects/{pid}/offerings", (401, 409, 404, 403)),
    ("GET", "/projects/filings/{fid}", (302, 200, 404, 403)),
    ("POST", "/projects/filings/{fid}", (401, 409, 404, 403)),
    ("GET", "/projects/filings/{fid}/uploads/notice", (302, 200, 404, 200)),
    ("GET", "/projects/api/filings", (401, 200, 200, 403)),
    ("POST", "/projects/api/projects/{pid}/offerings", (401, 409, 404, 403)),
    ("GET", "/projects/api/filings/{fid}", (401, 200, 404, 403)),
    ("PUT", "/projects/api/filings/{fid}", (401, 409, 404, 403)),
    ("POST", "/projects/api/filings/{fid}/uploads/notice", (401, 422, 404, 403)),
    ("POST", "/projects/api/filings/{fid}/submit", (401, 409, 404, 403)),
    ("POST", "/projects/filings/{fid}/delete", (401, 409, 404, 403)),  # submitted: no longer deleted
    ("DELETE", "/projects/api/filings/{fid}", (401, 409, 404, 403)),
    ("GET", "/projects/review/filings", (302, 403, 403, 200)),
    ("GET", "/projects/review/filings/{fid}", (302, 403, 403, 200)),
    ("POST", "/projects/review/filings/{fid}/return", (401, 403, 403, 409)),  # no page version: a stale page
    ("POST", "/projects/review/filings/{fid}/contact", (401, 403, 403, 200)),
    ("GET", "/projects/review/offerings/{oid}", (302, 403, 403, 302)),  # on to its filing
    ("GET", "/projects/api/review/filings", (401, 403, 403, 200)),
    ("GET", "/projects/api/review/filings/{fid}", (401, 403, 403, 200)),
    ("POST", "/projects/api/review/filings/{fid}/return", (401, 403, 403, 422)),
    ("POST", "/projects/filings/{fid}/cancel", (401, 409, 404, 403)),  # no page version
    ("POST", "/projects/api/filings/{fid}/cancel", (401, 422, 404, 403)),  # no reason
    ("POST", "/projects/review/filings/{fid}/unheld", (401, 403, 403, 409)),  # no page version
    ("POST", "/projects/api/review/filings/{fid}/unheld", (401, 403, 403, 422)),  # no reason
    ("POST", "/projects/review/filings/{fid}/approve", (401, 403, 403, 409)),  # no page version
    ("POST", "/projects/api/review/filings/{fid}/approve", (401, 403, 403, 200)),  # the API may leave it out
]


@pytest.mark.parametrize("role", ROLES)
def test_permissions(projects_app, world, role, csrf):
    """Pages with the cookie (and its CSRF token), the API with the bearer header, in order."""
    principal = world.get(role)
    for method, template, expected in ENDPOINTS:
        url = template.format(**world)
        c = projects_app.test_client()
        kwargs: dict = {}
        if "/api/" in url:
            if principal:
                kwargs["headers"] = bearer(principal)
            if method in ("POST", "PUT") and not url.endswith("/import") and "/uploads/" not in url:
                kwargs["json"] = {}
        else:
            if principal:
                login_client(c, principal)
            if method == "POST":
                kwargs["data"] = {"csrf_token": csrf(principal)} if principal else {}
        r = c.open(url, method=method, **kwargs)
        assert r.status_code == expected[ROLES.index(role)], (role, method, url, r.status_code)


def test_all_my_endpoints_are_in_the_permission_table(projects_app):
    from services.common.web import endpoint_access

    mine = {k for k in endpoint_access(projects_app)
            if any(p in k for p in ("/catalogue", "/filings", "/offerings"))}
    listed = {f"{m} " + u.replace("{pid}", "<int:project_id>").replace("{fid}", "<int:filing_id>")
              .replace("{oid}", "<int:offering_id>").replace("/uploads/notice", "/uploads/<kind>")
              .replace("{job}", "<int:job_id>").replace("{export}", "<int:job_id>")
              for m, u, _ in ENDPOINTS}
    assert mine == listed


def test_the_committee_corrects_an_institution_s_name(projects_app, projects_db, inst_a, inst_b, reviewer,
                                                      ready_filing, frozen, csrf):
    """An institution's name could not be corrected (a typo at creation, a hospital renamed): 更正名称 renames it,
    keeps the old name for catalogue spreadsheets that still say it, and offerings approved afterwards carry the
    new name; the reason goes into its 操作记录."""
    from tests.projects.test_catalogue import row, upload, workbook

    inst, _office = inst_a
    old = inst.name
    project, fid = ready_filing(*inst_a, submit=True)
    c = login_client(projects_app.test_client(), reviewer[1])
    token = csrf(reviewer[1])
    url = f"/projects/institutions/{inst.id}/name"
    page = c.get(f"/projects/institutions/{inst.id}").get_data(as_text=True)
    assert "更正机构名称" in page and f'value="{old}"' in page
    for form, status, said in (({"name": "西安医院"}, 422, "请填写原因"),
                               ({"name": "", "reason": "笔误"}, 422, "请输入新的机构名称"),
                               ({"name": old, "reason": "笔误"}, 409, "新名称与现名称相同"),
                               ({"name": inst_b[0].name, "reason": "笔误"}, 409, f"机构“{inst_b[0].name}”已存在")):
        r = c.post(url, data={"csrf_token": token, **form})
        assert r.status_code == status and said in r.get_data(as_text=True), (form, r.status_code)
    r = c.post(url, data={"csrf_token": token, "name": "西安交通大学第一附属医院（新）", "reason": "机构更名"})
    assert r.status_code == 302
    page = c.get(f"/projects/institutions/{inst.id}").get_data(as_text=True)
    assert f"已将“{old}”更正为“西安交通大学第一附属医院（新）”" in page and "更正名称" in page
    assert f"{old} → 西安交通大学第一附属医院（新）；机构更名" in page and "曾用名称" in page
    # the clerk looking for last year's name on paper finds the institution under its new one
    found = c.get("/projects/institutions", query_string={"q": old[2:8]}).get_data(as_text=True)
    assert "机构列表（1）" in found and "西安交通大学第一附属医院（新）" in found and f"曾用名称：{old}" in found
    assert "机构列表（0）" in c.get("/projects/institutions?q=\\u897f").get_data(as_text=True)
    # the catalogue shows the new name; a spreadsheet still saying the old one updates the same project
    hr = bearer(reviewer[1])
    listed = c.get(f"/projects/api/catalogue?q={project.number}", headers=hr).get_json()["items"][0]
    assert listed["host_name"] == "西安交通大学第一附属医院（新）"
    body = upload(projects_app.test_client(), workbook([row(project.number, old, offerings=1),
                                                        row("2026-01-01-900", old, offerings=1)]), hr).get_json()
    assert body["errors"] == [] and body["created"] == 1, body
    assert all("主办单位" not in u["changed"] for u in body["updates"]), body["updates"]
    s = projects_db.new_session()
    assert {p.host_name for p in s.scalars(select(Project).where(Project.institution_id == inst.id))} == {
        "西安交通大学第一附属医院（新）"}
    s.close()
    # an offering approved after the correction carries the new name to the other services
    assert c.post(f"/projects/review/filings/{fid}/approve", data={
        "csrf_token": token, "version": page_version(c, f"/projects/review/filings/{fid}")}).status_code == 302
    payload = json.loads(outbox_rows(projects_db)[0].envelope)["payload"]
    assert payload["institution_name"] == "西安交通大学第一附属医院（新）"
    # the second walk: a look-alike with a zero-width space, a line break, a direction override were taken;
    # the old name given to another institution would have moved the catalogue rows that still say it
    other = f"/projects/institutions/{inst_b[0].id}/name"
    for name, said in ((inst_b[0].name[:3] + "\u200b" + inst_b[0].name[3:], "不可见的字符"),
                       ("宝鸡市\n中心医院", "换行"), ("宝鸡\u202e市中心医院", "控制字符"),
                       (old, "曾用名称")):
        r = c.post(other, data={"csrf_token": token, "name": name, "reason": "测试"})
        assert r.status_code in (409, 422) and said in r.get_data(as_text=True), (name, r.status_code)
    created = c.post("/projects/institutions", data={"csrf_token": token, "account": "newone", "name": old,
                                                     "password": "Passw0rd2026"})
    assert created.status_code == 409 and "曾用名称" in created.get_data(as_text=True)


def test_each_decision_is_told_to_the_institution_by_sms(projects_app, projects_db, inst_a, reviewer, ready_filing,
                                                         frozen, sms_log):
    """The office's walk: 退回 and 审批通过 sent nothing; the office found out at its next login while a returned
    filing's deadline ran on. Each decision leaves a projects.decided event with it (only if it commits), and
    projects' own worker texts every 机构负责人."""
    from services.projects.worker import handle_event

    project, fid = ready_filing(*inst_a, submit=True)
    c = projects_app.test_client()
    hr = bearer(reviewer[1])
    refused = c.post(f"/projects/api/review/filings/{fid}/return", headers=hr, json={"reason": " "})
    assert refused.status_code == 422 and outbox_rows(projects_db, "projects.decided") == []  # nothing decided
    assert c.post(f"/projects/api/review/filings/{fid}/return", headers=hr,
                  json={"reason": "日程不全"}).status_code == 200
    [row] = outbox_rows(projects_db, "projects.decided")
    envelope = json.loads(row.envelope)
    assert row.consumer == "projects" and envelope["payload"] == {
        "kind": "filing", "decision": "returned", "object_id": fid, "offering_id": envelope["payload"]["offering_id"],
        "institution_id": inst_a[0].id}
    before = sms_log.read_text(encoding="utf-8") if sms_log.exists() else ""
    assert handle_event.run(envelope) is True
    sent = (sms_log.read_text(encoding="utf-8"))[len(before):]
    assert f"您单位“{project.title}”第一期的项目举办前登记已被退回" in sent and "修改后重新上报" in sent
    assert "日程不全" not in sent  # the reason is read in the system, not spread by SMS
    assert handle_event.run(envelope) is False  # delivered again: known as processed, not sent again
    assert sms_log.read_text(encoding="utf-8")[len(before):] == sent


def test_a_resubmission_tells_the_committee_what_the_office_changed(projects_app, inst_a, reviewer, ready_filing,
                                                                    frozen):
    """After 退回 the clerk could not see what was changed before the filing came back (a replaced 会议通知 simply
    replaced): the 上报 names it in 办理记录, on both sides; a 上报 with nothing changed says so."""
    from tests.projects.conftest import jpeg_bytes

    _project, fid = ready_filing(*inst_a, submit=True)
    c = projects_app.test_client()
    h, hr = bearer(inst_a[1]), bearer(reviewer[1])
    back = f"/projects/api/review/filings/{fid}/return"
    assert c.post(back, headers=hr, json={"reason": "通知不清晰"}).status_code == 200
    assert c.put(f"/projects/api/filings/{fid}", headers=h, json={"venue": "西安市雁塔区新会议中心"}).status_code == 200
    r = c.post(f"/projects/api/filings/{fid}/uploads/notice", headers=h, content_type="multipart/form-data",
               data={"file": (io.BytesIO(jpeg_bytes(color="gray")), "新通知.jpg")})
    assert r.status_code == 201
    assert c.post(f"/projects/api/filings/{fid}/submit", headers=h, json={}).status_code == 200
    page = login_client(projects_app.test_client(), reviewer[1]).get(f"/projects/review/filings/{fid}")
    assert "与上次上报相比修改了：举办地点、会议通知（重新上传）。" in page.get_data(as_text=True)
    assert c.post(back, headers=hr, json={"reason": "再核对"}).status_code == 200
    assert c.post(f"/projects/api/filings/{fid}/submit", headers=h, json={}).status_code == 200
    history = c.get(f"/projects/api/filings/{fid}", headers=h).get_json()["history"]
    sent = [entry["reason"] for entry in history if entry["action"] == "submit"]
    assert len(sent) == 3 and not sent[0]  # the first 上报 compares with nothing
    assert sent[1].startswith("与上次上报相比修改了") and sent[2] == "与上次上报相比未作修改。"


def test_a_retried_decision_notice_texts_only_who_was_not_reached(projects_app, projects_db, inst_a, reviewer,
                                                                  ready_filing, frozen, monkeypatch):
    """Two 机构负责人; the SMS to the second fails once: the retry texts the second, not the first again."""
    from services.common import sms
    from services.projects.institutions.models import Institution
    from services.projects.institutions.services import add_admin
    from services.projects.reminders import handlers

    monkeypatch.setattr(handlers, "SENT_PREFIX", f"cme:decision-sms:test-{uuid.uuid4().hex}:")
    s = projects_db.new_session()
    add_admin(s, s.get(Institution, inst_a[0].id), "第二负责人", "13900001111")
    s.commit()
    s.close()
    _project, fid = ready_filing(*inst_a, submit=True)
    c = projects_app.test_client()
    approved = c.post(f"/projects/api/review/filings/{fid}/approve", headers=bearer(reviewer[1]), json={})
    assert approved.status_code == 200
    envelope = json.loads(outbox_rows(projects_db, "projects.decided")[0].envelope)
    texted: list[str] = []
    failures = {"13900001111": 1}

    def flaky(mobile, *_args, **_kwargs):
        if failures.get(mobile):
            failures[mobile] -= 1
            raise sms.SmsError("Tencent SMS error InternalError")
        texted.append(mobile)

    monkeypatch.setattr(sms, "send_sms", flaky)
    s = projects_db.new_session()
    try:
        with pytest.raises(sms.SmsError):
            handlers.on_decided(s, envelope["payload"], envelope)
        handlers.on_decided(s, envelope["payload"], envelope)
    finally:
        s.close()
    assert texted == ["13800000001", "13900001111"]


def test_a_decision_notice_is_retried_when_the_sms_fails_but_not_when_no_template_is_set(
        projects_app, projects_db, inst_a, reviewer, ready_filing, frozen, monkeypatch):
    from services.common import sms
    from services.projects.reminders.handlers import on_decided

    _project, fid = ready_filing(*inst_a, submit=True)
    c = projects_app.test_client()
    approved = c.post(f"/projects/api/review/filings/{fid}/approve", headers=bearer(reviewer[1]), json={})
    assert approved.status_code == 200
    envelope = json.loads(outbox_rows(projects_db, "projects.decided")[0].envelope)

    def down(*_args, **_kwargs):
        raise sms.SmsError("Tencent SMS error InternalError")

    def unset(*_args, **_kwargs):
        raise sms.SmsNotConfigured("no Tencent SMS template for notice messages")

    s = projects_db.new_session()
    try:
        monkeypatch.setattr(sms, "send_sms", down)
        with pytest.raises(sms.SmsError):  # the event fails and is delivered again later
            on_decided(s, envelope["payload"], envelope)
        monkeypatch.setattr(sms, "send_sms", unset)
        assert on_decided(s, envelope["payload"], envelope) is None  # said in the log; retrying cannot help
    finally:
        s.close()


def test_the_clerk_is_told_when_a_return_leaves_too_few_days_to_file_again(projects_app, inst_a, reviewer,
                                                                            ready_filing, frozen):
    """Returned four days before the start, the filing could only be sent again with new dates (the 7-day rule
    holds for every 上报): the clerk's page said nothing of it, and the office heard it only when refused."""
    from services.common import clock

    project, fid = ready_filing(*inst_a, submit=True)  # starts 2026-03-20
    page = login_client(projects_app.test_client(), reviewer[1])
    assert "退回后" not in page.get(f"/projects/review/filings/{fid}").get_data(as_text=True)  # 18 days ahead
    clock.set_now(frozen + dt.timedelta(days=14))  # 2026-03-16
    html = page.get(f"/projects/review/filings/{fid}").get_data(as_text=True)
    assert "距举办已不足 7 天：退回后，申办机构须把举办日期改到 2026-03-23 或以后才能重新上报。" in html
    c = projects_app.test_client()
    assert c.post(f"/projects/api/review/filings/{fid}/return", headers=bearer(reviewer[1]),
                  json={"reason": "日程不清晰"}).status_code == 200
    r = c.post(f"/projects/api/filings/{fid}/submit", headers=bearer(inst_a[1]), json={})
    assert r.status_code == 422 and "2026-03-23" in r.get_json()["error"]["message"]  # as the clerk was told


def test_the_waiting_list_says_how_soon_each_offering_starts(projects_app, inst_a, inst_b, reviewer, ready_filing,
                                                             frozen):
    """Hundreds of filings wait in December, listed by when they were sent: which of them starts tomorrow (or began
    while it waited) was told only on its own page. Each waiting row says it."""
    from services.common import clock

    ready_filing(*inst_a, submit=True)  # 2026-03-20 to 21, sent on 2026-03-02
    c = login_client(projects_app.test_client(), reviewer[1])
    assert "距举办 18 天" in c.get("/projects/review/filings").get_data(as_text=True)
    clock.set_now(dt.datetime(2026, 3, 20, 1, 0, tzinfo=dt.UTC))
    assert "今天开始举办" in c.get("/projects/review/filings").get_data(as_text=True)
    clock.set_now(dt.datetime(2026, 3, 22, 1, 0, tzinfo=dt.UTC))
    assert "已于 2 天前开始举办" in c.get("/projects/review/filings").get_data(as_text=True)
