"""执行情况反馈: the five pages, 提交 naming each page's gaps, lock, delete, 导入 replacing, file checks,
committee approve/return with events in the same transaction, the 14-day deadline, and who may call what."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zipfile
from decimal import Decimal

import pytest
from sqlalchemy import delete, select

from services.common import clock, pii
from services.common.auth import Principal
from services.projects.audit.models import AuditLog
from services.projects.awarded.models import AwardedList, AwardedTrainee
from services.projects.db import outbox
from services.projects.reports import services as report_services
from services.projects.reports.models import ExecutionReport, ReportTrainee
from tests.conftest import bearer, login_client, page_version

AFTER = dt.datetime(2026, 3, 25, 2, 0, tzinfo=dt.UTC)  # the offering ran 2026-03-20..21; report due 2026-04-04
ID_NUMBER = "610102199001011234"

FACTS = {"actual_starts_on": "2026-03-20", "actual_ends_on": "2026-03-21", "venue": "西安市雁塔区会议中心",
         "mode": "线下", "trainees_count": 118, "total_hours": "12.5", "organiser": "西安市第一医院继续教育科",
         "contact_person": "李老师", "contact_phone": "13912345678"}
LECTURERS = {"lecturers": [
    {"name": "张教授", "title": "主任医师", "unit": "西安交通大学第一附属医院", "topic": "心衰诊治新进展",
     "hours": "3"},
    {"name": "王医生", "title": "副主任医师", "unit": "西安市第一医院", "topic": "病例讨论", "hours": "2.5"},
]}
MATERIALS = {"materials": [{"title": "心血管病学", "editor": "葛均波", "publisher": "人民卫生出版社", "year": 2018}],
             "summary": "项目按计划举办，学员全部扫码考勤，授课质量良好。"}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def docx_bytes(macro: bool = False) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document/>")
        if macro:
            zf.writestr("word/vbaProject.bin", b"\x00" * 10)
    return out.getvalue()


def outbox_events(projects_db):
    s = projects_db.new_session()
    try:
        return [json.loads(r.envelope) for r in s.execute(select(outbox).where(outbox.c.name != "projects.decided")
                                                          .order_by(outbox.c.id))]
    finally:
        s.close()


def grant(projects_db, offering_id, institution_id, people, manual=0, as_of=None):
    """What the credits.granted handler keeps: replace the offering's award list."""
    s = projects_db.new_session()
    as_of = as_of or clock.now()
    lst = s.scalar(select(AwardedList).where(AwardedList.offering_id == offering_id))
    if lst is None:
        lst = AwardedList(offering_id=offering_id, institution_id=institution_id, count=0, as_of=as_of)
        s.add(lst)
        s.flush()
    s.execute(delete(AwardedTrainee).where(AwardedTrainee.list_id == lst.id))
    for i in range(people):
        s.add(AwardedTrainee(list_id=lst.id, award_id=100 + i, trainee_key=f"{i:064d}", name=f"学员{i + 1}",
                             id_enc=pii.encrypt(ID_NUMBER[:-4] + f"{i:04d}"), title="主治医师", unit="某县医院",
                             credit_class="Ⅰ类", credit_value=Decimal("10"), activity_date=dt.date(2026, 3, 21),
                             method="manual" if i < manual else "attendance", state="pending"))
    lst.count, lst.as_of = people, as_of
    s.commit()
    s.close()


def upload(c, rid, kind, data, name, h):
    return c.post(f"/projects/api/reports/{rid}/uploads/{kind}", headers=h,
                  data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


@pytest.fixture
def held(projects_app, reviewer, ready_filing, frozen):
    """An approved (held) offering of the given institution; the clock is moved to after it ended."""

    def make(inst, principal):
        clock.set_now(frozen)  # filed and approved before the offering, as in life
        project, fid = ready_filing(inst, principal, submit=True)
        c = projects_app.test_client()
        r = c.post(f"/projects/api/review/filings/{fid}/approve", headers=bearer(reviewer[1]), json={})
        assert r.status_code == 200, r.get_json()
        clock.set_now(AFTER)
        return r.get_json()["offering_id"]

    return make


@pytest.fixture
def complete(projects_app, projects_db, held, images):
    """A report with all five pages filled in (not submitted); returns (offering_id, report_id)."""

    def make(inst, principal, submit=False):
        oid = held(inst, principal)
        c = projects_app.test_client()
        h = bearer(principal)
        r = c.post(f"/projects/api/reports/offering/{oid}", headers=h)
        assert r.status_code == 201, r.get_json()
        rid = r.get_json()["id"]
        for n, body in ((1, FACTS), (2, LECTURERS), (5, MATERIALS)):
            r = c.put(f"/projects/api/reports/{rid}/pages/{n}", headers=h, json=body)
            assert r.status_code == 200, r.get_json()
        for kind in ("schedule", "notice", "photo", "photo"):
            assert upload(c, rid, kind, images.jpeg(), f"{kind}.jpg", h).status_code == 201
        grant(projects_db, oid, inst.id, 3, manual=1)
        assert c.post(f"/projects/api/reports/{rid}/attendance/import", headers=h).status_code == 200
        if submit:
            r = c.post(f"/projects/api/reports/{rid}/submit", headers=h, json={})
            assert r.status_code == 200, r.get_json()
        return oid, rid

    return make


def test_five_pages_saved_submit_locks(projects_app, projects_db, inst_a, complete, images):
    oid, rid = complete(*inst_a)
    c = projects_app.test_client()
    h = bearer(inst_a[1])
    assert upload(c, rid, "exam", PDF, "试题.pdf", h).status_code == 201
    body = c.get(f"/projects/api/reports/{rid}", headers=h).get_json()
    assert body["state"] == "draft" and body["missing"] == []
    assert body["facts"]["trainees_count"] == 118 and body["facts"]["total_hours"] == "12.5"
    assert body["facts"]["contact_phone"] == "13912345678"
    assert [lec["name"] for lec in body["lecturers"]] == ["张教授", "王医生"]
    assert sorted(u["kind"] for u in body["uploads"]) == ["exam", "notice", "photo", "photo", "schedule"]
    assert body["materials"][0]["publisher"] == "人民卫生出版社" and body["summary"].startswith("项目按计划")
    assert body["attendance"]["count"] == 3 and body["attendance"]["manual_count"] == 1
    assert body["offering"]["due_on"] == "2026-04-04" and body["offering"]["overdue"] is False
    r = c.post(f"/projects/api/reports/{rid}/submit", headers=h, json={"version": body["version"]})
    assert r.status_code == 200 and r.get_json()["state"] == "submitted"
    # locked: no page, file, import, submit or delete any more
    for method, url, kw in [
        ("put", f"/projects/api/reports/{rid}/pages/1", {"json": FACTS}),
        ("put", f"/projects/api/reports/{rid}/pages/2", {"json": LECTURERS}),
        ("put", f"/projects/api/reports/{rid}/pages/5", {"json": MATERIALS}),
        ("post", f"/projects/api/reports/{rid}/attendance/import", {}),
        ("post", f"/projects/api/reports/{rid}/submit", {"json": {}}),
        ("delete", f"/projects/api/reports/{rid}", {"json": {}}),
        ("delete", f"/projects/api/reports/{rid}/uploads/{body['uploads'][0]['id']}", {}),
    ]:
        r = getattr(c, method)(url, headers=h, **kw)
        assert r.status_code == 409, (url, r.status_code)
    r = upload(c, rid, "photo", images.jpeg(), "p.jpg", h)
    assert r.status_code == 409 and "提交后不能修改" in r.get_json()["error"]["message"]
    s = projects_db.new_session()
    rep = s.get(ExecutionReport, rid)
    assert rep.contact_phone_enc != "13912345678" and rep.contact_phone == "13912345678"
    s.close()


def test_submit_names_each_page_and_what_it_lacks(projects_app, projects_db, inst_a, held):
    oid = held(*inst_a)
    c = projects_app.test_client()
    h = bearer(inst_a[1])
    rid = c.post(f"/projects/api/reports/offering/{oid}", headers=h).get_json()["id"]
    r = c.post(f"/projects/api/reports/{rid}/submit", headers=h, json={})
    assert r.status_code == 422
    err = r.get_json()["error"]
    msg = err["message"]
    # page 1 starts from the approved filing and the catalogue's 学时 (培训人数 waits for credits' list); page 3
    # from the filing's 会议通知 and 会议日程; the rest is empty
    assert "第1页（执行情况）：缺少培训人数；" in msg
    assert "第2页（授课情况）：至少填写一位授课专家" in msg
    assert "第3页（资料上传）：至少上传一张会议照片" in msg
    assert "第4页（考勤导入）：尚未导入考勤记录" in msg
    assert "第5页（教材与总结）：缺少执行情况总结" in msg
    assert set(err["fields"]) == {"page1", "page2", "page3", "page4", "page5"}
    body = c.get(f"/projects/api/reports/{rid}", headers=h).get_json()
    assert body["state"] == "draft" and body["facts"]["total_hours"] == "20.0"
    assert sorted(u["kind"] for u in body["uploads"]) == ["notice", "schedule"]  # the filing's, to confirm
    # with credits' award list already here, 培训人数 starts from it
    c.delete(f"/projects/api/reports/{rid}", headers=h, json={})
    grant(projects_db, oid, inst_a[0].id, 3)
    rid = c.post(f"/projects/api/reports/offering/{oid}", headers=h).get_json()["id"]
    assert c.get(f"/projects/api/reports/{rid}", headers=h).get_json()["facts"]["trainees_count"] == 3


def test_page_inputs_checked(projects_app, inst_a, held):
    oid = held(*inst_a)
    c = projects_app.test_client()
    h = bearer(inst_a[1])
    rid = c.post(f"/projects/api/reports/offering/{oid}", headers=h).get_json()["id"]
    r = c.put(f"/projects/api/reports/{rid}/pages/1", headers=h, json={"venue": "x"})
    fields = r.get_json()["error"]["fields"]
    assert r.status_code == 422 and fields["mode"] == "此项为必填项。" and "contact_phone" in fields
    assert "trainees_count" not in fields  # may wait for the award list's 导入 (提交 asks for it)
    blank = {k: v for k, v in FACTS.items() if k != "trainees_count"}
    r = c.put(f"/projects/api/reports/{rid}/pages/1", headers=h, json=blank)
    assert r.status_code == 200 and r.get_json()["facts"]["trainees_count"] is None
    assert any("培训人数" in m["message"] for m in r.get_json()["missing"])
    r = c.put(f"/projects/api/reports/{rid}/pages/1", headers=h, json={**FACTS, "actual_ends_on": "2026-03-19"})
    assert r.status_code == 422 and "结束日期不能早于开始日期" in r.get_json()["error"]["fields"]["actual_ends_on"]
    r = c.put(f"/projects/api/reports/{rid}/pages/1", headers=h, json={**FACTS, "actual_ends_on": "2026-12-01"})
    assert r.status_code == 422 and "不能晚于今天" in r.get_json()["error"]["fields"]["actual_ends_on"]
    r = c.put(f"/projects/api/reports/{rid}/pages/1", headers=h, json={**FACTS, "actual_starts_on": "2020-03-20"})
    assert r.status_code == 422 and r.get_json()["error"]["fields"]["actual_starts_on"] == (
        "本项目为 2026 年度项目（项目目录），实际举办日期须在 2026 年内。")
    assert c.get(f"/projects/api/reports/{rid}", headers=h).get_json()["facts"]["actual_starts_on"] == "2026-03-20"
    r = c.put(f"/projects/api/reports/{rid}/pages/1", headers=h, json={**FACTS, "state": "approved"})
    assert r.status_code == 422  # no mass assignment
    r = c.put(f"/projects/api/reports/{rid}/pages/2", headers=h, json={"lecturers": []})
    assert r.status_code == 422
    bad = {"lecturers": [{**LECTURERS["lecturers"][0], "title": ""}]}
    r = c.put(f"/projects/api/reports/{rid}/pages/2", headers=h, json=bad)
    assert r.status_code == 422 and "第 1 行职称" in r.get_json()["error"]["fields"]["lecturers"]
    book = {"materials": [{**MATERIALS["materials"][0], "title": ""}], "summary": "按计划举办。"}
    r = c.put(f"/projects/api/reports/{rid}/pages/5", headers=h, json=book)
    assert r.status_code == 422 and r.get_json()["error"]["fields"]["materials"] == "第 1 行书名：此项不能为空。"
    r = c.put(f"/projects/api/reports/{rid}/pages/5", headers=h, json={"materials": []})
    assert r.status_code == 422 and "summary" in r.get_json()["error"]["fields"]
    r = c.put(f"/projects/api/reports/{rid}/pages/5", headers=h, json={"summary": "好", "version": 999})
    assert r.status_code == 409


def test_delete_before_submit_then_new(projects_app, projects_db, inst_a, held):
    oid = held(*inst_a)
    c = projects_app.test_client()
    h = bearer(inst_a[1])
    rid = c.post(f"/projects/api/reports/offering/{oid}", headers=h).get_json()["id"]
    r = c.post(f"/projects/api/reports/offering/{oid}", headers=h)
    assert r.status_code == 409 and "已有反馈记录" in r.get_json()["error"]["message"]  # one live report
    assert c.get(f"/projects/api/reports/offering/{oid}", headers=h).get_json()["report"]["id"] == rid
    assert c.delete(f"/projects/api/reports/{rid}", headers=h, json={}).status_code == 204
    assert c.get(f"/projects/api/reports/{rid}", headers=h).status_code == 404
    assert c.get(f"/projects/api/reports/offering/{oid}", headers=h).get_json()["report"] is None
    r = c.post(f"/projects/api/reports/offering/{oid}", headers=h)
    assert r.status_code == 201 and r.get_json()["id"] != rid
    s = projects_db.new_session()
    actions = [a.action for a in s.scalars(select(AuditLog).where(AuditLog.object_id == rid,
                                                                  AuditLog.object_type == "report"))]
    s.close()
    assert actions == ["create", "delete"]


def test_new_clicked_twice_opens_the_record_the_first_click_made(projects_app, projects_db, inst_a, held, csrf):
    oid = held(*inst_a)
    c = login_client(projects_app.test_client(), inst_a[1])
    tok = csrf(inst_a[1])
    first = c.post(f"/projects/reports/offering/{oid}/new", data={"csrf_token": tok})
    rid = int(first.headers["Location"].split("/")[-3])
    second = c.post(f"/projects/reports/offering/{oid}/new", data={"csrf_token": tok})
    assert second.status_code == 302 and second.headers["Location"].endswith(f"/projects/reports/{rid}")
    assert "本期已有反馈记录，已为您打开。" in c.get(second.headers["Location"]).get_data(as_text=True)
    s = projects_db.new_session()
    assert s.scalars(select(ExecutionReport.id).where(ExecutionReport.offering_id == oid)).all() == [rid]
    s.close()


def test_cannot_create_before_the_offering_starts(projects_app, inst_a, held):
    oid = held(*inst_a)
    clock.set_now(dt.datetime(2026, 3, 10, 2, 0, tzinfo=dt.UTC))
    c = projects_app.test_client()
    h = bearer(inst_a[1])
    assert c.get(f"/projects/api/reports/offering/{oid}", headers=h).get_json()["can_create"] is False
    r = c.post(f"/projects/api/reports/offering/{oid}", headers=h)
    assert r.status_code == 409 and "举办后方可新建" in r.get_json()["error"]["message"]


def test_the_imported_list_shows_each_trainee_s_dai_qian_to_the_office_and_the_committee(
        projects_app, projects_db, inst_a, held, reviewer):
    """credits.granted carries each trainee's 代签 count: the real handler keeps it, 导入 copies it, page 4 and
    the committee's review of the report mark it (a list full of 代签 is what the committee should look at)."""
    from services.common.events import make_envelope
    from services.projects.worker import handle_event

    oid = held(*inst_a)
    c = projects_app.test_client()
    h = bearer(inst_a[1])
    rid = c.post(f"/projects/api/reports/offering/{oid}", headers=h).get_json()["id"]
    person = {"credit_class": "Ⅰ类", "credit_value": "10", "activity_date": dt.date(2026, 3, 21),
              "method": "attendance", "state": "pending", "title": "主治医师", "unit": "某县医院"}
    awards = [{**person, "award_id": 1, "trainee_key": "1" * 64, "name": "张伟", "id_enc": pii.encrypt(ID_NUMBER)},
              {**person, "award_id": 2, "trainee_key": "2" * 64, "name": "王芳", "id_enc": pii.encrypt(ID_NUMBER),
               "forced": 2}]
    assert handle_event.run(make_envelope("credits.granted", "credits", {
        "offering_id": oid, "institution_id": inst_a[0].id, "awards": awards})) is True
    att = c.post(f"/projects/api/reports/{rid}/attendance/import", headers=h).get_json()["attendance"]
    assert att["forced_count"] == 1 and [t["forced"] for t in att["trainees"]] == [0, 2]
    page = login_client(projects_app.test_client(), inst_a[1]).get(f"/projects/reports/{rid}/pages/4")
    html = page.get_data(as_text=True)
    assert "王芳 <strong>含代签 2 次</strong>" in html and "1 人含代签" in html and "张伟 <strong>" not in html
    # the date column is the activity date the awards carry (授分名单 calls it 活动日期; it is not the day of 授分),
    # and the credit reads as on the award pages
    assert "<th>活动日期</th>" in html and "授分日期" not in html
    assert "<td>Ⅰ类 10 分</td><td>2026-03-21</td>" in html
    view = login_client(projects_app.test_client(), inst_a[1]).get(f"/projects/reports/{rid}").get_data(as_text=True)
    assert "王芳 <strong>含代签 2 次</strong>" in view  # the report's whole view, as the committee's review shows it


def test_import_replaces_never_doubles(projects_app, projects_db, inst_a, held):
    oid = held(*inst_a)
    c = projects_app.test_client()
    h = bearer(inst_a[1])
    rid = c.post(f"/projects/api/reports/offering/{oid}", headers=h).get_json()["id"]
    body = c.get(f"/projects/api/reports/{rid}", headers=h).get_json()
    assert body["attendance"]["available"] is False
    r = c.post(f"/projects/api/reports/{rid}/attendance/import", headers=h)
    assert r.status_code == 409 and "尚未发来" in r.get_json()["error"]["message"]
    grant(projects_db, oid, inst_a[0].id, 3, manual=1)
    r = c.post(f"/projects/api/reports/{rid}/attendance/import", headers=h)
    att = r.get_json()["attendance"]
    assert r.status_code == 200 and att["count"] == 3 and att["manual_count"] == 1
    # the list came after the report was made: page 1's blank 培训人数 starts from it, once
    assert r.get_json()["facts"]["trainees_count"] == 3
    assert att["trainees"][0]["manual"] is True and att["trainees"][0]["id_masked"] == "6101**********0000"
    assert ID_NUMBER[:10] not in json.dumps(r.get_json())
    r = c.post(f"/projects/api/reports/{rid}/attendance/import", headers=h)
    assert r.get_json()["attendance"]["count"] == 3
    s = projects_db.new_session()
    assert len(s.scalars(select(ReportTrainee).where(ReportTrainee.report_id == rid)).all()) == 3
    s.close()
    # credits sends a newer list (a withdrawal): the report says so, 提交 refuses until 导入 again
    grant(projects_db, oid, inst_a[0].id, 2, as_of=AFTER + dt.timedelta(hours=1))
    body = c.get(f"/projects/api/reports/{rid}", headers=h).get_json()
    assert body["attendance"]["outdated"] is True
    assert any("请重新导入" in m["message"] for m in body["missing"])
    r = c.post(f"/projects/api/reports/{rid}/attendance/import", headers=h)
    assert r.get_json()["attendance"]["count"] == 2 and r.get_json()["attendance"]["outdated"] is False
    # a figure on page 1 is never changed by 导入: the difference is a note for the office and the clerk
    assert r.get_json()["facts"]["trainees_count"] == 3


def test_import_on_the_page_fills_a_blank_trainee_count_and_says_so(projects_app, projects_db, inst_a, held, csrf):
    """The award list came after the report was made: 导入 on page 4 fills page 1's blank 培训人数 and tells the
    office to change it where more people attended than were granted credit."""
    oid = held(*inst_a)
    rid = projects_app.test_client().post(f"/projects/api/reports/offering/{oid}",
                                          headers=bearer(inst_a[1])).get_json()["id"]
    assert _report(projects_db, rid).trainees_count is None
    grant(projects_db, oid, inst_a[0].id, 4)
    c = login_client(projects_app.test_client(), inst_a[1])
    r = c.post(f"/projects/reports/{rid}/pages/4", data={"csrf_token": csrf(inst_a[1])}, follow_redirects=True)
    html = r.get_data(as_text=True)
    assert "已导入本期考勤（授分）记录 4 人。第1页的培训人数尚未填写，已按导入人数填为 4" in html
    assert _report(projects_db, rid).trainees_count == 4


def test_upload_checks(projects_app, inst_a, inst_b, reviewer, held, images):
    oid = held(*inst_a)
    c = projects_app.test_client()
    h = bearer(inst_a[1])
    rid = c.post(f"/projects/api/reports/offering/{oid}", headers=h).get_json()["id"]
    r = upload(c, rid, "photo", images.png(), "照片.jpg", h)  # a PNG renamed .jpg
    assert r.status_code == 422 and "会议照片上传失败" in r.get_json()["error"]["message"]
    assert "PNG" in r.get_json()["error"]["message"]
    r = upload(c, rid, "exam", b"just some text, not a PDF", "试题.pdf", h)  # a text file as PDF
    assert r.status_code == 422 and "PDF、Word" in r.get_json()["error"]["message"]
    assert upload(c, rid, "exam", PDF[:-7], "cut.pdf", h).status_code == 422  # truncated PDF
    assert upload(c, rid, "exam", docx_bytes(macro=True), "宏.docx", h).status_code == 422
    assert upload(c, rid, "exam", b"\xd0\xcf\x11\xe0" + b"\x00" * 100, "old.doc", h).status_code == 422
    assert upload(c, rid, "exam", b"PK\x03\x04broken", "bad.docx", h).status_code == 422
    assert upload(c, rid, "bogus", images.jpeg(), "x.jpg", h).status_code == 404
    r = upload(c, rid, "exam", docx_bytes(), "../试题.docx", h)
    assert r.status_code == 201 and r.get_json()["filename"] == "试题.docx"
    assert r.get_json()["content_type"].endswith("wordprocessingml.document")
    r = upload(c, rid, "exam", PDF, "试题.pdf", h)
    assert r.status_code == 201
    pdf_url = r.get_json()["url"]
    assert upload(c, rid, "exam", images.jpeg(), "试题.jpg", h).status_code == 201
    # 日程 is one file: a second upload replaces the first; photos add up
    upload(c, rid, "schedule", images.jpeg(), "s1.jpg", h)
    upload(c, rid, "schedule", images.jpeg((80, 80)), "s2.jpg", h)
    photo = upload(c, rid, "photo", images.jpeg(exif=True), "p1.jpg", h).get_json()
    upload(c, rid, "photo", images.jpeg(), "p2.jpg", h)
    ups = c.get(f"/projects/api/reports/{rid}", headers=h).get_json()["uploads"]
    assert [u["filename"] for u in ups if u["kind"] == "schedule"] == ["s2.jpg"]
    assert len([u for u in ups if u["kind"] == "photo"]) == 2
    served = c.get(photo["url"], headers=h)
    assert served.status_code == 200 and served.mimetype == "image/jpeg" and b"SecretCam" not in served.data
    served = c.get(pdf_url, headers=h)
    assert served.mimetype == "application/pdf" and served.headers["Content-Disposition"].startswith("attachment")
    # another institution and (before 提交) the committee do not see the files
    assert c.get(photo["url"], headers=bearer(inst_b[1])).status_code == 404
    assert c.get(photo["url"], headers=bearer(reviewer[1])).status_code == 404
    assert c.delete(f"/projects/api/reports/{rid}/uploads/{photo['id']}", headers=h).status_code == 204
    assert c.get(photo["url"], headers=h).status_code == 404


def test_return_resubmit_approve_with_events(projects_app, projects_db, inst_a, inst_b, reviewer, complete):
    oid, rid = complete(*inst_a, submit=True)
    c = projects_app.test_client()
    hr, hi = bearer(reviewer[1]), bearer(inst_a[1])
    events = outbox_events(projects_db)
    submitted = [e for e in events if e["name"] == "report.submitted"]
    assert len(submitted) == 1 and {e["name"] for e in events} == {"offering.approved", "report.submitted"}
    assert submitted[0]["payload"] == {"offering_id": oid, "institution_id": inst_a[0].id, "report_id": rid,
                                       "reason": ""}
    listed = c.get("/projects/api/review/reports", headers=hr).get_json()
    assert [i["id"] for i in listed["items"]] == [rid]
    detail = c.get(f"/projects/api/review/reports/{rid}", headers=hr).get_json()
    assert detail["facts"]["contact_phone"] == "139****5678"
    assert c.get(detail["uploads"][0]["url"], headers=hr).status_code == 200  # the committee sees the files
    r = c.post(f"/projects/api/review/reports/{rid}/return", headers=hr, json={"reason": " "})
    assert r.status_code == 422 and "退回原因" in r.get_json()["error"]["message"]
    r = c.post(f"/projects/api/review/reports/{rid}/return", headers=hr, json={"reason": "否"})
    assert r.status_code == 422 and "应在 2 到 1000 个字符之间" in r.get_json()["error"]["message"]
    r = c.post(f"/projects/api/review/reports/{rid}/return", headers=hr, json={"reason": "会议照片不清晰。"})
    assert r.status_code == 200 and r.get_json()["state"] == "returned"
    returned = [e for e in outbox_events(projects_db) if e["name"] == "report.returned"]
    assert len(returned) == 1 and returned[0]["payload"]["reason"] == "会议照片不清晰。"
    body = c.get(f"/projects/api/reports/{rid}", headers=hi).get_json()
    assert body["state"] == "returned" and body["return_reason"] == "会议照片不清晰。"
    # the office's landing page says so (the return sends no message, and the 14 days run on)
    office = login_client(projects_app.test_client(), inst_a[1])
    landing = office.get("/projects/filings").get_data(as_text=True)
    assert '<a href="/projects/reports?status=returned">执行情况反馈 1 份</a>' in landing
    assert 'id="returned"' not in login_client(projects_app.test_client(), inst_b[1]).get(
        "/projects/filings").get_data(as_text=True)  # another institution has nothing returned
    # returned is not a draft: the institution mends and resubmits it, it cannot make the committee's record vanish
    r = c.delete(f"/projects/api/reports/{rid}", headers=hi, json={})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "not_deletable"
    assert "不能删除" in r.get_json()["error"]["message"]
    assert [i["id"] for i in c.get("/projects/api/review/reports?state=all", headers=hr).get_json()["items"]] == [rid]
    r = c.put(f"/projects/api/reports/{rid}/pages/5", headers=hi, json={**MATERIALS, "summary": "已补充照片。"})
    assert r.status_code == 200
    assert c.post(f"/projects/api/reports/{rid}/submit", headers=hi, json={}).status_code == 200
    r = c.post(f"/projects/api/review/reports/{rid}/approve", headers=hr, json={"version": 1})
    assert r.status_code == 409  # a stale version
    r = c.post(f"/projects/api/review/reports/{rid}/approve", headers=hr, json={})
    assert r.status_code == 200 and r.get_json()["state"] == "approved"
    assert c.post(f"/projects/api/review/reports/{rid}/approve", headers=hr, json={}).status_code == 409
    names = [e["name"] for e in outbox_events(projects_db) if e["name"].startswith("report.")]
    assert names == ["report.submitted", "report.returned", "report.submitted", "report.approved"]
    history = r.get_json()["history"]
    assert [(x["action"], x["to_state"]) for x in history if x["to_state"]] == [
        ("create", "draft"), ("submit", "submitted"), ("return", "returned"), ("submit", "submitted"),
        ("approve", "approved")]
    assert history[-1]["actor_name"] == reviewer[1].name


def test_event_only_with_its_transition(projects_db, inst_a, complete):
    """The event is written in the transition's transaction: rolled back together, committed together."""
    oid, rid = complete(*inst_a)
    before = len(outbox_events(projects_db))
    s = projects_db.new_session()
    report = s.get(ExecutionReport, rid)
    report_services.submit_report(s, inst_a[1], report)
    s.rollback()
    s.close()
    assert len(outbox_events(projects_db)) == before
    s = projects_db.new_session()
    assert s.get(ExecutionReport, rid).state == "draft"
    report_services.submit_report(s, inst_a[1], s.get(ExecutionReport, rid))
    s.commit()
    s.close()
    assert outbox_events(projects_db)[-1]["name"] == "report.submitted"


def test_deadline_and_overdue(projects_app, projects_db, inst_a, inst_b, reviewer, held, complete):
    oid_a = held(*inst_a)
    oid_b, rid_b = complete(*inst_b)
    c = projects_app.test_client()
    h = bearer(inst_a[1])
    row = c.get("/projects/api/reports", headers=h).get_json()["items"][0]
    assert row["due_on"] == "2026-04-04" and row["overdue"] is False and row["report"] is None
    page = login_client(projects_app.test_client(), inst_a[1])
    assert "应于 2026-04-04（含当日）前提交" in page.get("/projects/reports").get_data(as_text=True)
    clock.set_now(dt.datetime(2026, 4, 4, 15, 59, tzinfo=dt.UTC))  # 23:59 on the due day in Shanghai
    assert c.get("/projects/api/reports", headers=h).get_json()["items"][0]["overdue"] is False
    assert c.get("/projects/api/review/reports/overdue", headers=bearer(reviewer[1])).get_json()["items"] == []
    clock.set_now(dt.datetime(2026, 4, 5, 1, 0, tzinfo=dt.UTC))
    assert c.get("/projects/api/reports", headers=h).get_json()["items"][0]["overdue"] is True
    assert c.get("/projects/api/reports?status=overdue", headers=h).get_json()["total"] == 1
    overdue = c.get("/projects/api/review/reports/overdue", headers=bearer(reviewer[1])).get_json()
    assert overdue["total"] == 2 and overdue["page"] == 1 and overdue["pages"] == 1
    assert {(d["offering_id"], d["report_state"]) for d in overdue["items"]} == {(oid_a, None), (oid_b, "draft")}
    html = login_client(projects_app.test_client(), reviewer[1]).get("/projects/review/reports").get_data(
        as_text=True)
    assert "已逾期" in html and inst_a[0].name in html
    s = projects_db.new_session()
    due = report_services.due_reports(s, dt.date(2026, 4, 5))
    assert [(d["offering_id"], d["due_on"], d["overdue"]) for d in due] == [
        (oid_a, dt.date(2026, 4, 4), True), (oid_b, dt.date(2026, 4, 4), True)]
    assert report_services.due_reports(s, dt.date(2026, 3, 20)) == []  # not ended yet: nothing due
    s.close()
    # B submits late: no longer due, and the committee sees it was late
    assert c.post(f"/projects/api/reports/{rid_b}/submit", headers=bearer(inst_b[1]), json={}).status_code == 200
    s = projects_db.new_session()
    assert [d["offering_id"] for d in report_services.due_reports(s, dt.date(2026, 4, 5))] == [oid_a]
    s.close()
    detail = c.get(f"/projects/api/review/reports/{rid_b}", headers=bearer(reviewer[1])).get_json()
    assert detail["submitted_late"] is True


def _total_guard_stops(html: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Five photos of 2.9 MB on page 3 (the office's walk): the form says so and is not sent."""
    from playwright.sync_api import sync_playwright

    from tests.stack.browser import CHROMIUM, CHROMIUM_ARGS

    photos = []
    for n in range(5):
        path = tmp_path / f"照片{n}.jpg"
        path.write_bytes(b"\xff\xd8\xff" + b"\0" * (2_900_000))
        photos.append(str(path))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.route("**/*", lambda route: route.fulfill(status=204))  # nothing may leave the page
            page.set_content(html)
            sent: list[str] = []
            page.on("request", lambda request: sent.append(request.method))
            said: list[str] = []
            page.on("dialog", lambda dialog: (said.append(dialog.message), dialog.accept()))
            page.set_input_files("#f-photo", photos)
            page.click("text=保存本页")
            page.wait_for_timeout(300)
            assert said and "超过一次提交的上限 12 MB" in said[0] and "分几次上传" in said[0], said
            assert "POST" not in sent
        finally:
            browser.close()


def test_pages_flow(projects_app, projects_db, inst_a, reviewer, held, images, csrf, tmp_path):
    oid = held(*inst_a)
    c = login_client(projects_app.test_client(), inst_a[1])
    tok = csrf(inst_a[1])
    html = c.get("/projects/reports").get_data(as_text=True)
    assert "执行情况反馈" in html and "反馈管理" in html and f"/projects/reports/offering/{oid}" in html
    html = c.get(f"/projects/reports/offering/{oid}").get_data(as_text=True)
    assert "新建" in html and "尚无反馈记录" in html
    r = c.post(f"/projects/reports/offering/{oid}/new", data={"csrf_token": tok})
    assert r.status_code == 302
    rid = int(r.headers["Location"].split("/")[-3])
    records = c.get(f"/projects/reports/offering/{oid}").get_data(as_text=True)
    assert "<td>第一期执行情况反馈</td>" in records and f"#{rid}" not in records  # not the suite-wide row number
    html = c.get(f"/projects/reports/{rid}/pages/1").get_data(as_text=True)
    assert "保存本页" in html and "返回列表" in html and "西安市雁塔区会议中心" in html  # prefilled from the filing
    assert 'name="total_hours" value="20"' in html  # the catalogue's 学时, as typed (not 20.0)
    page3 = c.get(f"/projects/reports/{rid}/pages/3").get_data(as_text=True)
    assert "已选择的文件尚未上传" in page3  # 下一页 asks before leaving chosen files behind
    for n in (2, 3, 4, 5):
        assert "None" not in c.get(f"/projects/reports/{rid}/pages/{n}").get_data(as_text=True)
    assert "None" not in html + c.get(f"/projects/reports/{rid}").get_data(as_text=True)
    def v(n):  # the page's hidden version, as the browser sends it
        return re.search(r'name="version" value="(\d+)"', c.get(f"/projects/reports/{rid}/pages/{n}")
                         .get_data(as_text=True)).group(1)

    # page 1: errors in Chinese, what was typed kept
    form = {**FACTS, "trainees_count": "很多", "csrf_token": tok, "version": v(1)}
    r = c.post(f"/projects/reports/{rid}/pages/1", data=form)
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "请输入整数" in html and "很多" in html and "西安市第一医院继续教育科" in html
    typo = {**form, "trainees_count": "118", "actual_starts_on": "2020-03-20", "actual_ends_on": "2020-03-21"}
    r = c.post(f"/projects/reports/{rid}/pages/1", data=typo)
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and html.count("实际举办日期须在 2026 年内") == 3 and 'value="2020-03-21"' in html
    r = c.post(f"/projects/reports/{rid}/pages/1", data={**typo, "contact_phone": ""})  # marked with the others
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "实际举办日期须在 2026 年内" in html and "此项为必填项" in html
    assert "第4页导入授分名单后按导入人数自动填写" in html  # 培训人数 may wait for the list
    r = c.post(f"/projects/reports/{rid}/pages/1", data={**form, "trainees_count": "118", "total_hours": "1e3"})
    assert r.status_code == 422 and "请输入数字（如 2.5）" in r.get_data(as_text=True)  # not 1000 学时
    zenkaku = {"total_hours": "１２．５", "trainees_count": "１１８"}  # typed in a 全角 input mode
    r = c.post(f"/projects/reports/{rid}/pages/1", data={**FACTS, **zenkaku, "csrf_token": tok, "version": v(1),
                                                         "next": "1"})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/projects/reports/{rid}/pages/2")  # 保存并进入
    assert (_report(projects_db, rid).total_hours, _report(projects_db, rid).trainees_count) == (Decimal("12.5"), 118)
    # page 2: rows; a row missing its title is refused with the row named, values kept
    lec = {"lec-count": "3", "csrf_token": tok}
    for i, row in enumerate(LECTURERS["lecturers"]):
        lec.update({f"lec-{i}-{k}": v for k, v in row.items()})
    r = c.post(f"/projects/reports/{rid}/pages/2", data={**lec, "lec-1-title": "", "version": v(2)})
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "第 2 行职称：此项为必填项。" in html and "病例讨论" in html
    assert c.post(f"/projects/reports/{rid}/pages/2", data={**lec, "lec-1-hours": "２．５", "version": v(2)}
                  ).status_code == 302
    reopened = c.get(f"/projects/reports/{rid}/pages/2").get_data(as_text=True)
    assert 'name="lec-0-hours" value="3"' in reopened and 'name="lec-1-hours" value="2.5"' in reopened  # not 3.0
    # another tab saved page 1 meanwhile: this page's rows are kept, and the next 保存本页 saves them
    stale = c.post(f"/projects/reports/{rid}/pages/2", data={**lec, "lec-0-topic": "改过的题目", "version": "1"})
    html = stale.get_data(as_text=True)
    assert stale.status_code == 409 and "刚在其他页面或窗口保存过" in html and "改过的题目" in html
    fresh = re.search(r'name="version" value="(\d+)"', html).group(1)
    assert c.post(f"/projects/reports/{rid}/pages/2",
                  data={**lec, "lec-0-topic": "改过的题目", "version": fresh}).status_code == 302
    assert c.post(f"/projects/reports/{rid}/pages/2", data={**lec, "version": v(2)}).status_code == 302
    # a hidden row count edited away (0, abc) or too low: the rows the form holds are the ones saved
    for count in ("0", "abc", ""):
        r = c.post(f"/projects/reports/{rid}/pages/2", data={**lec, "lec-count": count, "version": v(2)})
        assert r.status_code == 302 and [x.name for x in _report(projects_db, rid).lecturers] == ["张教授", "王医生"]
    third = {f"lec-7-{k}": val for k, val in {**LECTURERS["lecturers"][1], "name": "赵医生"}.items()}
    assert c.post(f"/projects/reports/{rid}/pages/2", data={**lec, **third, "version": v(2)}).status_code == 302
    assert [x.name for x in _report(projects_db, rid).lecturers] == ["张教授", "王医生", "赵医生"]
    # removing a row
    assert c.post(f"/projects/reports/{rid}/pages/2",
                  data={**lec, "lec-1-remove": "1", "version": v(2)}).status_code == 302  # 赵医生 not on the page
    assert [x.name for x in _report(projects_db, rid).lecturers] == ["张教授"]
    # page 3: several files in one form; a wrong one is refused by its name, the good one kept
    files = {"csrf_token": tok, "schedule": (io.BytesIO(images.jpeg()), "日程.jpg"),
             "notice": (io.BytesIO(images.png()), "通知.jpg")}
    r = c.post(f"/projects/reports/{rid}/pages/3", data=files, content_type="multipart/form-data")
    assert r.status_code == 422 and "会议通知上传失败" in r.get_data(as_text=True)
    files = {"csrf_token": tok, "schedule": (io.BytesIO(images.jpeg()), "日程.jpg"),
             "notice": (io.BytesIO(images.jpeg()), "通知.jpg"),
             "photo": [(io.BytesIO(images.jpeg()), "1.jpg"), (io.BytesIO(images.jpeg()), "2.jpg")]}
    r = c.post(f"/projects/reports/{rid}/pages/3", data=files, content_type="multipart/form-data")
    assert r.status_code == 302
    assert len(_report(projects_db, rid).uploads) == 4
    # files over one submit's 12 MB together are stopped in the browser before the gateway's bare 413
    _total_guard_stops(c.get(f"/projects/reports/{rid}/pages/3").get_data(as_text=True), tmp_path)
    # page 4: 导入, with a clear word while credits has sent nothing
    html = c.get(f"/projects/reports/{rid}/pages/4").get_data(as_text=True)
    assert "学分管理尚未发来本期的授分名单" in html
    assert c.post(f"/projects/reports/{rid}/pages/4", data={"csrf_token": tok}).status_code == 409
    grant(projects_db, oid, inst_a[0].id, 2, manual=1)
    assert c.post(f"/projects/reports/{rid}/pages/4", data={"csrf_token": tok}).status_code == 302
    html = c.get(f"/projects/reports/{rid}/pages/4").get_data(as_text=True)
    assert "已导入本期考勤（授分）记录 2 人。" in html and "已按导入人数" not in html  # page 1 says 118
    assert _report(projects_db, rid).trainees_count == 118
    assert "手工录入/非有效学分" in html and "6101**********0001" in html and ID_NUMBER not in html
    # page 5 and 提交 from the overview
    r = c.post(f"/projects/reports/{rid}/pages/5", data={"csrf_token": tok, "mat-count": "3", "summary": "",
                                                        "version": v(5)})
    assert r.status_code == 422 and "此项为必填项" in r.get_data(as_text=True)
    r = c.post(f"/projects/reports/{rid}/pages/5", data={"csrf_token": tok, "mat-count": "3", "mat-0-title": "教材",
                                                        "mat-0-editor": "主编", "mat-0-publisher": "出版社",
                                                        "mat-0-year": "2020", "summary": "顺利举办。",
                                                        "version": v(5)})
    assert r.status_code == 302
    r = c.post(f"/projects/reports/{rid}/submit", data={"csrf_token": tok})
    assert r.status_code == 409 and "页面已过期" in r.get_data(as_text=True)  # a page always sends its version
    r = c.post(f"/projects/reports/{rid}/submit", data={"csrf_token": tok,
                                                       "version": page_version(c, f"/projects/reports/{rid}")})
    assert r.status_code == 302
    html = c.get(f"/projects/reports/{rid}").get_data(as_text=True)
    assert "待审批" in html and "办理记录" in html and "内容已锁定" in html
    html = c.get(f"/projects/reports/{rid}/pages/1").get_data(as_text=True)
    assert "内容已锁定" in html and "保存本页" not in html
    # the committee sees every page and every file, and returns with a reason
    rc = login_client(projects_app.test_client(), reviewer[1])
    rtok = csrf(reviewer[1])
    html = rc.get(f"/projects/review/reports/{rid}").get_data(as_text=True)
    for text in ("第1页 执行情况", "张教授", "会议照片", "6101**********0001", "顺利举办。", "139****5678", "审批通过"):
        assert text in html, text
    for u in _report(projects_db, rid).uploads:
        assert f"/projects/reports/{rid}/uploads/{u.id}" in html
    rtok = {"csrf_token": rtok, "version": page_version(rc, f"/projects/review/reports/{rid}")}
    r = rc.post(f"/projects/review/reports/{rid}/return", data={**rtok, "reason": ""})
    assert r.status_code == 422 and "请填写退回原因" in r.get_data(as_text=True)
    r = rc.post(f"/projects/review/reports/{rid}/return", data={**rtok, "reason": " 退 "})
    assert r.status_code == 422 and "应在 2 到 1000 个字符之间" in r.get_data(as_text=True)
    assert 'required> 退 </textarea>' in r.get_data(as_text=True)  # what was typed, to be lengthened
    r = rc.post(f"/projects/review/reports/{rid}/return", data={**rtok, "reason": "请补充照片"})
    assert r.status_code == 302
    html = c.get(f"/projects/reports/{rid}/pages/1").get_data(as_text=True)
    assert "请补充照片" in html and "保存本页" in html  # editable again
    html = c.get(f"/projects/reports/{rid}").get_data(as_text=True)
    assert "退回修改" in html and "已退回" in html


def _report(projects_db, rid):
    s = projects_db.new_session()
    rep = s.get(ExecutionReport, rid)
    rep.lecturers, rep.uploads  # noqa: B018 - load before closing
    s.close()
    return rep


# ---- who may call what: every endpoint of the execution report -----------------------------------

ROLES = ("anonymous", "trainee", "inst_a", "inst_b", "reviewer")
TRAINEE = Principal(role="trainee", subject="trainee:" + "a" * 64, name="学员甲", trainee_key="a" * 64)


@pytest.fixture
def world(inst_a, inst_b, reviewer, complete):
    oid, rid = complete(*inst_a, submit=True)
    s_uid = _report_upload_id(rid)
    return {"oid": oid, "rid": rid, "uid": s_uid, "inst_a": inst_a[1], "inst_b": inst_b[1],
            "reviewer": reviewer[1], "trainee": TRAINEE}


def _report_upload_id(rid):
    from services.projects.db import db

    s = db.new_session()
    try:
        return s.get(ExecutionReport, rid).uploads[0].id
    finally:
        s.close()


# (method, url, expected status for each role in ROLES); the report is submitted, so edits are 409
ENDPOINTS = [
    ("GET", "/projects/reports", (302, 403, 200, 200, 403)),
    ("GET", "/projects/reports/offering/{oid}", (302, 403, 200, 404, 403)),
    ("POST", "/projects/reports/offering/{oid}/new", (401, 403, 302, 404, 403)),  # opens the existing record
    ("GET", "/projects/reports/{rid}", (302, 403, 200, 404, 403)),
    ("GET", "/projects/reports/{rid}/pages/1", (302, 403, 200, 404, 403)),
    ("POST", "/projects/reports/{rid}/pages/1", (401, 403, 409, 404, 403)),
    ("POST", "/projects/reports/{rid}/uploads/{uid}/delete", (401, 403, 409, 404, 403)),
    ("GET", "/projects/reports/{rid}/uploads/{uid}", (302, 403, 200, 404, 200)),
    ("POST", "/projects/reports/{rid}/submit", (401, 403, 409, 404, 403)),
    ("POST", "/projects/reports/{rid}/delete", (401, 403, 409, 404, 403)),
    ("GET", "/projects/api/reports", (401, 403, 200, 200, 403)),
    ("GET", "/projects/api/reports/offering/{oid}", (401, 403, 200, 404, 403)),
    ("POST", "/projects/api/reports/offering/{oid}", (401, 403, 409, 404, 403)),
    ("GET", "/projects/api/reports/{rid}", (401, 403, 200, 404, 403)),
    ("PUT", "/projects/api/reports/{rid}/pages/1", (401, 403, 409, 404, 403)),
    ("PUT", "/projects/api/reports/{rid}/pages/2", (401, 403, 409, 404, 403)),
    ("PUT", "/projects/api/reports/{rid}/pages/5", (401, 403, 409, 404, 403)),
    ("POST", "/projects/api/reports/{rid}/uploads/photo", (401, 403, 409, 404, 403)),
    ("DELETE", "/projects/api/reports/{rid}/uploads/{uid}", (401, 403, 409, 404, 403)),
    ("POST", "/projects/api/reports/{rid}/attendance/import", (401, 403, 409, 404, 403)),
    ("POST", "/projects/api/reports/{rid}/submit", (401, 403, 409, 404, 403)),
    ("DELETE", "/projects/api/reports/{rid}", (401, 403, 409, 404, 403)),
    ("GET", "/projects/review/reports", (302, 403, 403, 403, 200)),
    ("GET", "/projects/review/reports/{rid}", (302, 403, 403, 403, 200)),
    ("POST", "/projects/review/reports/{rid}/return", (401, 403, 403, 403, 409)),  # no page version
    ("POST", "/projects/review/reports/{rid}/contact", (401, 403, 403, 403, 200)),
    ("GET", "/projects/api/review/reports", (401, 403, 403, 403, 200)),
    ("GET", "/projects/review/reports/overdue", (302, 403, 403, 403, 200)),
    ("GET", "/projects/review/reports/overdue.xlsx", (302, 403, 403, 403, 200)),
    ("GET", "/projects/api/review/reports/overdue", (401, 403, 403, 403, 200)),
    ("GET", "/projects/api/review/reports/{rid}", (401, 403, 403, 403, 200)),
    ("POST", "/projects/api/review/reports/{rid}/return", (401, 403, 403, 403, 422)),
    ("POST", "/projects/review/reports/{rid}/approve", (401, 403, 403, 403, 409)),  # no page version
    ("POST", "/projects/api/review/reports/{rid}/approve", (401, 403, 403, 403, 200)),  # the API may leave it out
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
            if method in ("POST", "PUT", "DELETE") and "/uploads/" not in url:
                kwargs["json"] = {}
        else:
            if principal:
                login_client(c, principal)
            if method == "POST":
                kwargs["data"] = {"csrf_token": csrf(principal)} if principal else {}
        r = c.open(url, method=method, **kwargs)
        assert r.status_code == expected[ROLES.index(role)], (role, method, url, r.status_code)


def test_all_report_endpoints_are_in_the_permission_table(projects_app):
    from services.common.web import endpoint_access

    mine = {k for k in endpoint_access(projects_app) if "/reports" in k}
    listed = {f"{m} " + u.replace("{oid}", "<int:offering_id>").replace("{rid}", "<int:report_id>")
              .replace("{uid}", "<int:upload_id>").replace("/uploads/photo", "/uploads/<kind>")
              .replace("/pages/1", "/pages/<int:page>" if "/api/" not in u else "/pages/1") for m, u, _ in ENDPOINTS}
    assert mine == listed


def test_the_review_page_notes_figures_that_disagree_with_what_is_known(projects_app, projects_db, inst_a,
                                                                       reviewer, complete):
    """总学时 against the catalogue, lecturer hours against 总学时, dates against the filing, 培训人数 against the
    imported list: noted for the clerk (and the office before 提交), never a refusal."""
    oid, rid = complete(*inst_a, submit=True)
    c = login_client(projects_app.test_client(), reviewer[1])
    html = c.get(f"/projects/review/reports/{rid}").get_data(as_text=True)
    assert "核对提示" in html and "总学时 12.5 与项目目录登记的 20 学时不一致。" in html
    assert "实际举办日期" not in html.split("核对提示")[1].split("</ul>")[0]  # the dates are the filing's
    assert "授课学时合计" not in html  # 5.5 of 12.5
    s = projects_db.new_session()
    report = s.get(ExecutionReport, rid)
    report.total_hours, report.actual_ends_on = Decimal("5"), dt.date(2026, 3, 22)
    s.commit()
    s.close()
    html = c.get(f"/projects/review/reports/{rid}").get_data(as_text=True)
    assert "授课学时合计 5.5 超过总学时 5。" in html
    assert "实际举办日期 2026-03-20 至 2026-03-22 与举办前登记的 2026-03-20 至 2026-03-21 不一致。" in html


def test_the_office_is_shown_the_notes_where_it_can_explain_them(projects_app, inst_a, complete):
    """核对提示 asked the office to 说明 with nowhere to write it: page 5 shows the notes above 执行情况总结,
    where the explanation reaches the clerk with the report."""
    _oid, rid = complete(*inst_a)
    c = login_client(projects_app.test_client(), inst_a[1])
    page5 = c.get(f"/projects/reports/{rid}/pages/5").get_data(as_text=True)
    notes = page5.split('id="checks"')[1].split("</ul>")[0]
    assert "总学时 12.5 与项目目录登记的 20 学时不一致。" in notes and "请在总结中说明原因" in notes
    assert page5.index('id="checks"') < page5.index('name="summary"')
    assert "在第5页“执行情况总结”中说明原因" in c.get(f"/projects/reports/{rid}").get_data(as_text=True)
    page1 = c.get(f"/projects/reports/{rid}/pages/1").get_data(as_text=True)
    assert 'id="checks"' not in page1


def test_a_name_corrected_by_the_committee_reaches_an_approved_report(projects_app, projects_db, inst_a, inst_b,
                                                                      reviewer, complete):
    """更正姓名 renamed her awards and certificates, but an approved report's page 4 kept the misspelt name for
    good: the real handler renames her on every report's 考勤导入 and the report's 办理记录 says so."""
    from services.common.events import make_envelope
    from services.projects.worker import handle_event

    oid, rid = complete(*inst_a, submit=True)
    hr = bearer(reviewer[1])
    assert projects_app.test_client().post(f"/projects/api/review/reports/{rid}/approve", headers=hr,
                                           json={}).status_code == 200
    oid_b, rid_b = complete(*inst_b)  # another institution's open report, imported with the same key
    key = f"{1:064d}"  # 学员2 of both lists
    assert handle_event.run(make_envelope("credits.name_corrected", "credits", {"trainee_key": key,
                                                                                "name": "张晓伟"})) is True
    for who, report in ((inst_a[1], rid), (inst_b[1], rid_b)):
        body = projects_app.test_client().get(f"/projects/api/reports/{report}", headers=bearer(who)).get_json()
        names = [t["name"] for t in body["attendance"]["trainees"]]
        assert "张晓伟" in names and "学员2" not in names and "学员1" in names, names
        assert body["history"][-1]["action"] == "name_corrected"
    review = login_client(projects_app.test_client(), reviewer[1]).get(f"/projects/review/reports/{rid}")
    html = review.get_data(as_text=True)
    assert "张晓伟" in html and "更正学员姓名" in html and "学员2 → 张晓伟" in html
    s = projects_db.new_session()
    assert {t.name for t in s.scalars(select(AwardedTrainee).where(AwardedTrainee.trainee_key == key))} == {"张晓伟"}
    s.close()
    # delivered again: nothing more changes, no second note
    assert handle_event.run(make_envelope("credits.name_corrected", "credits", {"trainee_key": key,
                                                                                "name": "张晓伟"})) is True
    body = projects_app.test_client().get(f"/projects/api/reports/{rid}", headers=bearer(inst_a[1])).get_json()
    assert [h["action"] for h in body["history"]].count("name_corrected") == 1


def test_a_damaged_word_file_is_refused_never_a_500():
    """The 500-hunt sent 试题 .docx files with torn deflate data, the "encrypted" flag and compression methods
    Word never writes: zipfile raised zlib.error, RuntimeError and NotImplementedError past the BadZipFile check."""
    from services.common.errors import AppError
    from services.projects.reports.files import clean_file

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>" * 50)
        zf.writestr("word/document.xml", "<w:document>试题内容</w:document>" * 200)
    good = out.getvalue()
    assert clean_file(good, "exam").content_type.endswith("wordprocessingml.document")
    start = good.index(b"word/document.xml") + len("word/document.xml")  # its compressed data follows the name
    torn = good[:start] + bytes(40) + good[start + 40:]
    encrypted = bytearray(good)
    method99 = bytearray(good)
    for sig, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):  # local and central headers
        at = good.find(sig)
        while at != -1:
            encrypted[at + flag_at] |= 1
            method99[at + method_at] = 99
            at = good.find(sig, at + 4)
    for damaged in (torn, bytes(encrypted), bytes(method99)):
        with pytest.raises(AppError) as refused:
            clean_file(damaged, "exam")
        assert refused.value.status == 422 and "Word 文件已损坏" in refused.value.message


def test_a_report_page_without_its_version_is_a_stale_page(projects_app, inst_a, complete, csrf):
    """The 500-hunt: page 5 posted with its version blank, garbled, '²' or 10 digits long saved over what another
    window had saved ('²' was a 500)."""
    _oid, rid = complete(*inst_a)
    c = login_client(projects_app.test_client(), inst_a[1])
    saved = c.get(f"/projects/reports/{rid}/pages/5").get_data(as_text=True)
    for version in (None, "", "abc", "²", "9999999999"):
        form = {"csrf_token": csrf(inst_a[1]), "summary": "我的陈旧总结", "mat-count": "0"}
        if version is not None:
            form["version"] = version
        r = c.post(f"/projects/reports/{rid}/pages/5", data=form)
        html = r.get_data(as_text=True)
        assert r.status_code in (409, 422) and "我的陈旧总结" in html, (version, r.status_code)
        assert "页面已过期" in html or "刚在其他页面或窗口保存过" in html, version
    assert "我的陈旧总结" not in c.get(f"/projects/reports/{rid}/pages/5").get_data(as_text=True)
    assert saved.count("textarea") == c.get(f"/projects/reports/{rid}/pages/5").get_data(as_text=True).count("textarea")


def test_a_bad_file_among_many_on_page_3_refuses_only_itself(projects_app, projects_db, inst_a, held, csrf, images):
    """Ten photos chosen with one PNG among them: the page refused all of them, did not say which file was wrong,
    and the office chose the nine good ones again, guessing which to leave out. The good ones are kept now, and
    the wrong one is named by its file name."""
    oid = held(*inst_a)
    c = login_client(projects_app.test_client(), inst_a[1])
    tok = csrf(inst_a[1])
    rid = int(c.post(f"/projects/reports/offering/{oid}/new", data={"csrf_token": tok}).headers["Location"]
              .split("/")[-3])
    before = {u.id for u in _report(projects_db, rid).uploads}  # the filing's 会议通知 and 日程
    chosen = {"csrf_token": tok, "schedule": (io.BytesIO(images.jpeg()), "日程.jpg"),
              "photo": [(io.BytesIO(images.jpeg()), "合影.jpg"), (io.BytesIO(images.png()), "会场2.jpg"),
                        (io.BytesIO(images.jpeg()), "会场3.jpg")]}
    r = c.post(f"/projects/reports/{rid}/pages/3", data=chosen, content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert "会议照片上传失败（“会场2.jpg”）：只能上传 JPG 格式的图片" in html
    assert "其余 3 个文件已上传，无需重新选择" in html
    uploads = _report(projects_db, rid).uploads
    assert sorted(u.filename for u in uploads if u.kind == "photo") == ["会场3.jpg", "合影.jpg"]
    assert [u.filename for u in uploads if u.kind == "schedule"] == ["日程.jpg"]  # replaced the filing's
    assert len([u for u in uploads if u.id not in before]) == 3
    # every file wrong: nothing is said to be uploaded
    r = c.post(f"/projects/reports/{rid}/pages/3", data={"csrf_token": tok,
                                                        "notice": (io.BytesIO(images.png()), "通知.jpg")},
               content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "会议通知上传失败（“通知.jpg”）" in html and "无需重新选择" not in html


def test_a_locked_report_does_not_ask_the_office_to_mend_it(projects_app, inst_a, complete):
    """Submitted, the report said 已提交，内容已锁定 and, beside its notes, 请核对后修改: the office looked for a
    way to edit what it could not. A locked report shows its notes for reference only."""
    _oid, rid = complete(*inst_a, submit=True)
    html = login_client(projects_app.test_client(), inst_a[1]).get(f"/projects/reports/{rid}").get_data(as_text=True)
    assert "内容已锁定" in html and "与项目目录登记的 20 学时不一致" in html
    assert "请核对后修改" not in html and "核对提示</strong>（已提交，仅供参考）" in html


def test_a_small_upload_shows_its_size_not_0_kb(projects_app, inst_a, held, images):
    """QA: a 200×150 JPG showed as "0 KB" on 第3页 and in the 总览."""
    from services.projects.uploads import file_size

    assert [file_size(n) for n in (0, 812, 1024, 3174, 10 * 1024, 523_000, 3 * 1048576)] == [
        "0 字节", "812 字节", "1.0 KB", "3.1 KB", "10 KB", "511 KB", "3.0 MB"]
    oid = held(*inst_a)
    c = login_client(projects_app.test_client(), inst_a[1])
    h = bearer(inst_a[1])
    rid = c.post(f"/projects/api/reports/offering/{oid}", headers=h).get_json()["id"]
    size = upload(c, rid, "photo", images.jpeg((200, 150)), "小图.jpg", h).get_json()["size"]
    assert 0 < size < 10 * 1024
    shown = file_size(size)
    for url in (f"/projects/reports/{rid}/pages/3", f"/projects/reports/{rid}"):
        body = c.get(url).get_data(as_text=True)
        assert shown in body and " 0 KB" not in body, url
