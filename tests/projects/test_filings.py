"""项目举办前登记 by the institution: the 第N期未登记 button, drafts, JPG checks, 保存并上报 rules, isolation."""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

from PIL import Image
from sqlalchemy import select

from services.common import clock, pii
from services.common.formats import cn_number, seq_label
from services.projects.filings.models import Filing, FilingUpload
from tests.conftest import bearer, login_client, page_version


def post_file(c, fid, kind, data, name, h):
    return c.post(f"/projects/api/filings/{fid}/uploads/{kind}", headers=h,
                  data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def test_chinese_ordinals():
    assert [cn_number(n) for n in (1, 2, 9, 10, 11, 20, 21, 99)] == ["一", "二", "九", "十", "十一", "二十", "二十一",
                                                                     "九十九"]
    assert seq_label(3) == "第三期"


def test_row_button_names_first_unfiled_offering(projects_app, inst_a, make_project, ready_filing, frozen):
    inst, principal = inst_a
    project, fid = ready_filing(inst, principal, offerings_count=3)
    c = projects_app.test_client()
    h = bearer(principal)
    rows = c.get("/projects/api/filings", headers=h).get_json()["items"]
    assert rows[0]["next_label"] == "第一期未登记" and rows[0]["next_filing_id"] == fid  # still a draft
    assert c.post(f"/projects/api/filings/{fid}/submit", headers=h, json={}).status_code == 200
    row = c.get("/projects/api/filings", headers=h).get_json()["items"][0]
    assert row["next_label"] == "第二期未登记" and row["next_filing_id"] is None
    assert row["offerings"] == [{"seq": 1, "label": "第一期", "filing_id": fid, "state": "submitted",
                                 "state_label": "待审批"}]
    # the page shows the same button, and pressing it opens the second offering's draft
    page = login_client(projects_app.test_client(), principal)
    html = page.get("/projects/filings").get_data(as_text=True)
    assert "第二期未登记" in html and "待审批" in html
    r = c.post(f"/projects/api/projects/{project.id}/offerings", headers=h)
    assert r.status_code == 201 and r.get_json()["seq_label"] == "第二期"
    again = c.post(f"/projects/api/projects/{project.id}/offerings", headers=h).get_json()
    assert again["id"] == r.get_json()["id"]  # the same draft, not a third offering


def test_all_filed_project_has_no_button(projects_app, inst_a, ready_filing, frozen):
    project, fid = ready_filing(*inst_a, offerings_count=1, submit=True)
    c = projects_app.test_client()
    h = bearer(inst_a[1])
    assert c.get("/projects/api/filings", headers=h).get_json()["items"][0]["next_label"] is None
    r = c.post(f"/projects/api/projects/{project.id}/offerings", headers=h)
    assert r.status_code == 409 and "均已登记" in r.get_json()["error"]["message"]



def test_a_returned_offering_is_not_said_to_be_all_filed(projects_app, inst_a, reviewer, ready_filing, frozen):
    """The committee returned the only 期 of a project: the office's list said 已全部登记 where the next step is
    to mend and send it again, and the project looked done."""
    project, fid = ready_filing(*inst_a, offerings_count=1, submit=True)
    c = projects_app.test_client()
    assert c.post(f"/projects/api/review/filings/{fid}/return", headers=bearer(reviewer[1]),
                  json={"reason": "会议日程不清晰，请重新上传。"}).status_code == 200
    html = login_client(projects_app.test_client(), inst_a[1]).get("/projects/filings").get_data(as_text=True)
    row = html[html.index(project.number):]
    row = row[:row.index("</tr>")]
    assert "已全部登记" not in row
    assert f'<a class="button" href="/projects/filings/{fid}">第一期已退回，修改后重新上报</a>' in row
    # sent again: waiting for the committee, nothing for the office to do
    assert c.post(f"/projects/api/filings/{fid}/submit", headers=bearer(inst_a[1]), json={}).status_code == 200
    html = login_client(projects_app.test_client(), inst_a[1]).get("/projects/filings").get_data(as_text=True)
    assert "已全部登记" in html and "修改后重新上报" not in html

def test_filters_and_paging(projects_app, inst_a, make_project, ready_filing, frozen):
    for _ in range(3):
        make_project(inst_a[0])
    make_project(inst_a[0], year=2025, title="去年的项目")
    ready_filing(*inst_a, submit=True)
    c = projects_app.test_client()
    h = bearer(inst_a[1])
    get = lambda q: c.get("/projects/api/filings" + q, headers=h).get_json()  # noqa: E731
    assert get("")["total"] == 5
    assert get("?year=2025")["items"][0]["project"]["title"] == "去年的项目"
    assert get("?status=submitted")["total"] == 1
    assert get("?status=unfiled")["total"] == 4
    assert get("?number=2026-01-01-002")["total"] == 1
    assert get("?q=去年")["total"] == 1
    p = get("?per_page=2&page=3")
    assert (p["page"], p["pages"], len(p["items"])) == (3, 3, 1)
    assert c.get("/projects/api/filings?status=bogus", headers=h).status_code == 422


def test_draft_save_and_submit(projects_app, projects_db, inst_a, ready_filing, frozen):
    project, fid = ready_filing(*inst_a)
    c = projects_app.test_client()
    h = bearer(inst_a[1])
    body = c.get(f"/projects/api/filings/{fid}", headers=h).get_json()
    assert body["state"] == "draft" and body["missing"] == [] and body["contact_phone"] == "13912345678"
    assert [s["title"] for s in body["schedule"]] == ["开幕式与专题讲座", "病例讨论"]
    r = c.post(f"/projects/api/filings/{fid}/submit", headers=h, json={})
    assert r.status_code == 200 and r.get_json()["state"] == "submitted"
    assert [x["action"] for x in r.get_json()["history"]] == ["create", "submit"]
    # a submitted filing cannot be changed or submitted again
    assert c.put(f"/projects/api/filings/{fid}", headers=h, json={"venue": "别处"}).status_code == 409
    assert c.post(f"/projects/api/filings/{fid}/submit", headers=h, json={}).status_code == 409
    s = projects_db.new_session()
    f = s.get(Filing, fid)
    assert f.contact_phone_enc != "13912345678" and pii.decrypt(f.contact_phone_enc) == "13912345678"
    s.close()


def test_a_draft_opened_by_mistake_is_deleted_and_the_row_says_unfiled_again(
        projects_app, projects_db, inst_a, inst_b, make_project, ready_filing, frozen, csrf, images):
    """The guide: 提交前可以进行修改和删除. Pressing 第一期未登记 opens a draft at once (its JPGs need a place);
    one opened on the wrong row, or for a 期 filed another day, can be deleted until it is 上报."""
    project = make_project(inst_a[0], offerings_count=2)
    c = login_client(projects_app.test_client(), inst_a[1])
    token = csrf(inst_a[1])
    url = c.post(f"/projects/filings/projects/{project.id}/offerings", data={"csrf_token": token}).headers["Location"]
    fid = int(url.rsplit("/", 1)[1])
    assert c.post(f"/projects/api/filings/{fid}/uploads/notice", headers=bearer(inst_a[1]),
                  data={"file": (io.BytesIO(images.jpeg()), "n.jpg")},
                  content_type="multipart/form-data").status_code == 201
    # the list shows the draft once, on its button, not again as a 登记 beside it
    row = re.search(rf"<tr>\s*<td>2026</td><td>{project.number}</td>.*?</tr>",
                    c.get("/projects/filings").get_data(as_text=True), re.S).group(0)
    assert "第一期未登记" in row and "已存草稿，未上报" in row and "草稿</span>" not in row
    form = c.get(url).get_data(as_text=True)
    assert "删除草稿" in form and "confirm(" in form
    version = re.search(rf'action="/projects/filings/{fid}/delete".*?name="version" value="(\d+)"', form,
                        re.S).group(1)
    # a stale page (the draft saved since in another tab) is refused, nothing is lost; so is one without a version
    for stale_version in (str(int(version) - 1), None, "abc"):
        data = {"csrf_token": token} | ({} if stale_version is None else {"version": stale_version})
        stale = c.post(f"/projects/filings/{fid}/delete", data=data)
        assert stale.status_code == 409 and c.get(url).status_code == 200, stale_version
    # another institution cannot delete it, nor can it be deleted without the page's token
    assert c.post(f"/projects/filings/{fid}/delete", data={"version": version}).status_code == 403
    other = projects_app.test_client().delete(f"/projects/api/filings/{fid}", headers=bearer(inst_b[1]), json={})
    assert other.status_code == 404
    r = c.post(f"/projects/filings/{fid}/delete", data={"csrf_token": token, "version": version})
    assert r.status_code == 302 and r.headers["Location"] == "/projects/filings"
    html = c.get("/projects/filings").get_data(as_text=True)
    assert f"已删除 {project.number} 第一期的登记草稿" in html and "已存草稿" not in html and "第一期未登记" in html
    assert c.get(url).status_code == 404
    # a tab still showing the deleted draft saves into nothing: the answer says why and where to go
    late = c.post(url, data={"csrf_token": token, "version": version, "venue": "西安", "mode": "线下"},
                  content_type="multipart/form-data")
    assert late.status_code == 404 and "草稿可能已在其他页面删除" in late.get_data(as_text=True)
    s = projects_db.new_session()
    assert s.scalar(select(Filing).where(Filing.id == fid)) is None
    assert s.scalars(select(FilingUpload).where(FilingUpload.filing_id == fid)).all() == []
    s.close()
    # opening again gives the first 期 a fresh draft
    again = c.post(f"/projects/filings/projects/{project.id}/offerings", data={"csrf_token": token})
    assert "第一期" in c.get(again.headers["Location"]).get_data(as_text=True)


def test_a_new_draft_given_a_deleted_drafts_id_has_a_history_of_its_own(projects_db, inst_a):
    """The embedded SQLite hands a deleted row's id to the next new row: its 办理记录 starts after the delete."""
    from services.projects.audit.models import history_of, record

    s = projects_db.new_session()
    for action in ("create", "delete", "create", "submit"):
        record(s, inst_a[1], "filing", 77, action)
    s.flush()
    assert [h.action for h in history_of(s, "filing", 77)] == ["create", "submit"]
    s.rollback()
    s.close()


def test_only_a_draft_never_sent_can_be_deleted(projects_app, inst_a, reviewer, ready_filing, frozen):
    _project, fid = ready_filing(*inst_a, submit=True)
    c = projects_app.test_client()
    h = bearer(inst_a[1])
    r = c.delete(f"/projects/api/filings/{fid}", headers=h, json={})
    assert r.status_code == 409 and "待审批" in r.get_json()["error"]["message"]
    assert "删除草稿" not in login_client(projects_app.test_client(), inst_a[1]).get(
        f"/projects/filings/{fid}").get_data(as_text=True)
    assert c.post(f"/projects/api/review/filings/{fid}/return", headers=bearer(reviewer[1]),
                  json={"reason": "日程不全"}).status_code == 200
    r = c.delete(f"/projects/api/filings/{fid}", headers=h, json={})
    assert r.status_code == 409 and "退回" in r.get_json()["error"]["message"]
    assert c.get(f"/projects/api/filings/{fid}", headers=h).get_json()["return_reason"] == "日程不全"
    # a draft through the API: its version is checked, then it goes
    _p2, draft = ready_filing(*inst_a)
    version = c.get(f"/projects/api/filings/{draft}", headers=h).get_json()["version"]
    assert c.delete(f"/projects/api/filings/{draft}", headers=h, json={"version": version + 1}).status_code == 409
    assert c.delete(f"/projects/api/filings/{draft}", headers=h, json={"version": version}).status_code == 204
    assert c.get(f"/projects/api/filings/{draft}", headers=h).status_code == 404
    assert c.delete(f"/projects/api/filings/{draft}", headers=h, json={}).status_code == 404


def test_seven_day_rule(projects_app, inst_a, ready_filing, frozen):
    project, fid = ready_filing(*inst_a)  # starts 2026-03-20; today is 2026-03-02
    c = projects_app.test_client()
    h = bearer(inst_a[1])
    clock.set_now(dt.datetime(2026, 3, 14, 2, 0, tzinfo=dt.UTC))  # 6 days before
    r = c.post(f"/projects/api/filings/{fid}/submit", headers=h, json={})
    assert r.status_code == 422
    msg = r.get_json()["error"]["message"]
    assert "7 天" in msg and "2026-03-21" in msg  # the earliest date it could be held if sent today
    clock.set_now(dt.datetime(2026, 3, 13, 2, 0, tzinfo=dt.UTC))  # exactly 7 days before
    assert c.post(f"/projects/api/filings/{fid}/submit", headers=h, json={}).status_code == 200


def test_submit_refused_when_incomplete(projects_app, inst_a, make_project, frozen, filled, images):
    project = make_project(inst_a[0], mode="线上")
    c = projects_app.test_client()
    h = bearer(inst_a[1])
    fid = c.post(f"/projects/api/projects/{project.id}/offerings", headers=h).get_json()["id"]
    r = c.post(f"/projects/api/filings/{fid}/submit", headers=h, json={})
    assert r.status_code == 422 and "举办开始日期" in r.get_json()["error"]["message"]
    c.put(f"/projects/api/filings/{fid}", headers=h, json={**filled, "mode": "线上"})
    post_file(c, fid, "notice", images.jpeg(), "n.jpg", h)
    post_file(c, fid, "agenda", images.jpeg(), "a.jpg", h)
    r = c.post(f"/projects/api/filings/{fid}/submit", headers=h, json={})
    assert r.status_code == 422 and "线上学员授予学分监管说明" in r.get_json()["error"]["message"]
    post_file(c, fid, "online_supervision", images.jpeg(), "s.jpg", h)
    assert c.post(f"/projects/api/filings/{fid}/submit", headers=h, json={}).status_code == 200


def test_dates_and_schedule_checked(projects_app, inst_a, make_project, frozen, filled):
    project = make_project(inst_a[0])
    c = projects_app.test_client()
    h = bearer(inst_a[1])
    fid = c.post(f"/projects/api/projects/{project.id}/offerings", headers=h).get_json()["id"]
    r = c.put(f"/projects/api/filings/{fid}", headers=h, json={**filled, "ends_on": "2026-03-19"})
    assert r.status_code == 422 and "ends_on" in r.get_json()["error"]["fields"]
    bad = {**filled, "schedule": [{"date": "2026-03-25", "start": "08:00", "end": "09:00", "title": "x"}]}
    r = c.put(f"/projects/api/filings/{fid}", headers=h, json=bad)
    assert r.status_code == 422 and "不在举办起止日期" in r.get_json()["error"]["message"]
    # the row named is the row as typed (the office's walk: numbers came from the rows sorted by date)
    typed = {**filled, "schedule": [{"date": "2026-03-21", "start": "08:00", "end": "09:00", "title": "第二天"},
                                    {"date": "2026-03-30", "start": "08:00", "end": "09:00", "title": "错日期"},
                                    {"date": "2026-03-20", "start": "08:00", "end": "09:00", "title": "第一天"}]}
    r = c.put(f"/projects/api/filings/{fid}", headers=h, json=typed)
    assert r.status_code == 422 and "日程安排第 2 行的日期" in r.get_json()["error"]["message"]
    # a 期 of a year is a typo
    r = c.put(f"/projects/api/filings/{fid}", headers=h, json={**filled, "ends_on": "2027-03-21"})
    assert r.status_code == 422 and "不能超过 92 天" in r.get_json()["error"]["fields"]["ends_on"]
    # a project of the 2026 catalogue is held in 2026 (its credits count for that year)
    r = c.put(f"/projects/api/filings/{fid}", headers=h, json={**filled, "starts_on": "2025-12-29",
                                                                "ends_on": "2025-12-30", "schedule": []})
    assert r.status_code == 422 and r.get_json()["error"]["fields"]["starts_on"] == (
        "本项目为 2026 年度项目（项目目录），举办日期须在 2026 年内。")
    bad = {**filled, "schedule": [{"date": "2026-03-20", "start": "10:00", "end": "09:00", "title": "x"}]}
    r = c.put(f"/projects/api/filings/{fid}", headers=h, json=bad)
    assert r.status_code == 422 and "结束时间应晚于开始时间" in r.get_json()["error"]["fields"]["schedule"]
    # a phone typed in 全角 digits or in groups is the number
    r = c.put(f"/projects/api/filings/{fid}", headers=h, json={"contact_phone": "１３９ １２３４ ５６７８"})
    assert r.status_code == 200 and r.get_json()["contact_phone"] == "13912345678"
    r = c.put(f"/projects/api/filings/{fid}", headers=h, json={"contact_phone": "12345", "state": "approved"})
    assert r.status_code == 422  # unknown keys (no mass assignment) and a bad phone are refused
    r = c.put(f"/projects/api/filings/{fid}", headers=h, json={"version": 999, "venue": "x"})
    assert r.status_code == 409
    # a year no one means (and a report due 14 days after 9999-12-31 Python cannot hold): refused, the draft kept
    before = c.get(f"/projects/api/filings/{fid}", headers=h).get_json()
    far = {"starts_on": "9999-12-30", "ends_on": "9999-12-31",
           "schedule": [{"date": "0202-03-20", "start": "08:00", "end": "09:00", "title": "x"}]}
    r = c.put(f"/projects/api/filings/{fid}", headers=h, json=far)
    assert r.status_code == 422
    fields = r.get_json()["error"]["fields"]
    assert fields["starts_on"] == fields["ends_on"] == "日期超出范围（年份应在 2000 至 2099 之间）。"
    assert "日期超出范围" in str(fields["schedule"])
    after = c.get(f"/projects/api/filings/{fid}", headers=h).get_json()
    assert (after["starts_on"], after["ends_on"], after["version"]) == (
        before["starts_on"], before["ends_on"], before["version"])


def test_jpg_checks(projects_app, projects_db, inst_a, make_project, frozen, images):
    project = make_project(inst_a[0])
    c = projects_app.test_client()
    h = bearer(inst_a[1])
    fid = c.post(f"/projects/api/projects/{project.id}/offerings", headers=h).get_json()["id"]
    r = post_file(c, fid, "notice", images.png(), "通知.jpg", h)  # a PNG renamed to .jpg
    assert r.status_code == 422 and "PNG" in r.get_json()["error"]["message"]
    r = post_file(c, fid, "notice", b"%PDF-1.4 not an image", "通知.jpg", h)
    assert r.status_code == 422 and "JPG" in r.get_json()["error"]["message"]
    truncated = images.jpeg((300, 300))[:400]
    assert post_file(c, fid, "notice", truncated, "t.jpg", h).status_code == 422
    assert post_file(c, fid, "bogus", images.jpeg(), "x.jpg", h).status_code == 404
    original = images.jpeg(exif=True)
    assert b"SecretCam" in original
    r = post_file(c, fid, "notice", original, "../../通知.jpg", h)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["filename"] == "通知.jpg"
    served = c.get(f"/projects/filings/{fid}/uploads/notice", headers=h)
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    assert b"SecretCam" not in served.data and not Image.open(io.BytesIO(served.data)).getexif()
    # a second upload of the same kind replaces the first
    post_file(c, fid, "notice", images.jpeg((80, 80)), "n2.jpg", h)
    s = projects_db.new_session()
    ups = s.scalars(select(FilingUpload).where(FilingUpload.filing_id == fid)).all()
    assert [(u.kind, u.width) for u in ups] == [("notice", 80)]
    s.close()


def test_oversized_and_bomb_refused():
    import pytest

    from services.common.errors import AppError
    from services.projects import uploads

    with pytest.raises(AppError) as exc:
        uploads.clean_jpeg(b"\xff\xd8" + b"0" * (uploads.MAX_BYTES + 1), "notice")
    assert "MB" in exc.value.message
    img = Image.new("L", (9000, 5000))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=1)
    with pytest.raises(AppError) as exc:
        uploads.clean_jpeg(out.getvalue(), "notice")
    assert "像素" in exc.value.message


def test_institutions_are_isolated(projects_app, inst_a, inst_b, ready_filing, make_project, frozen, images):
    project, fid = ready_filing(*inst_a)
    c = projects_app.test_client()
    hb = bearer(inst_b[1])
    assert c.get("/projects/api/filings", headers=hb).get_json()["total"] == 0
    for method, url, kw in [
        ("get", f"/projects/api/filings/{fid}", {}),
        ("put", f"/projects/api/filings/{fid}", {"json": {"venue": "B 的地址"}}),
        ("post", f"/projects/api/filings/{fid}/submit", {"json": {}}),
        ("post", f"/projects/api/projects/{project.id}/offerings", {}),
        ("get", f"/projects/filings/{fid}/uploads/notice", {}),
    ]:
        r = getattr(c, method)(url, headers=hb, **kw)
        assert r.status_code == 404, (url, r.status_code)
    r = post_file(c, fid, "notice", images.jpeg(), "x.jpg", hb)
    assert r.status_code == 404
    page = login_client(projects_app.test_client(), inst_b[1])
    assert page.get(f"/projects/filings/{fid}").status_code == 404
    assert project.number not in page.get("/projects/filings").get_data(as_text=True)


def test_pages_save_and_submit(projects_app, inst_a, make_project, frozen, csrf, images):
    project = make_project(inst_a[0])
    c = login_client(projects_app.test_client(), inst_a[1])
    token = csrf(inst_a[1])
    r = c.post(f"/projects/filings/projects/{project.id}/offerings", data={"csrf_token": token})
    assert r.status_code == 302
    url = r.headers["Location"]
    html = c.get(url).get_data(as_text=True)
    assert "保存并上报" in html and "2026-03-09" in html  # the earliest allowed start date is shown
    form = {"csrf_token": token, "starts_on": "2026-03-20", "ends_on": "2026-03-20", "venue": "西安",
            "mode": "线下", "expected_trainees": "80", "contact_person": "李老师", "contact_phone": "029-85323000",
            "sched_date": ["2026-03-20", ""], "sched_start": ["08:30", ""], "sched_end": ["11:30", ""],
            "sched_title": ["专题讲座", ""], "action": "save"}
    def current(data):  # the page's hidden version, as the browser sends it
        html = c.get(url).get_data(as_text=True)
        return {**data, "version": re.search(r'name="version" value="(\d+)"', html).group(1)}

    r = c.post(url, data={**current(form), "notice": (io.BytesIO(images.jpeg()), "n.jpg")},
               content_type="multipart/form-data")
    assert r.status_code == 302
    # 保存并上报 without the agenda: refused, but what was typed is kept as a draft
    r = c.post(url, data={**current(form), "action": "submit", "venue": "西安市新址"},
               content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "会议日程" in html and "未能上报" in html
    assert "西安市新址" in c.get(url).get_data(as_text=True)
    # a PNG as the agenda: the whole save is refused with the reason next to the field
    r = c.post(url, data={**current(form), "action": "submit", "agenda": (io.BytesIO(images.png()), "a.jpg")},
               content_type="multipart/form-data")
    assert r.status_code == 422 and "只能上传 JPG" in r.get_data(as_text=True)
    bad = {**form, "ends_on": "2026-03-01"}
    r = c.post(url, data=current(bad), content_type="multipart/form-data")
    assert r.status_code == 422 and "结束日期不能早于开始日期" in r.get_data(as_text=True)
    # a wrong date beside a newly chosen JPG: the file is kept (a browser cannot put it back in the form), the
    # date refused; the form comes back with the draft's new version, so mending the date saves at once
    typed_version = re.search(r'name="version" value="(\d+)"', c.get(url).get_data(as_text=True)).group(1)
    clock.set_now(clock.now() + dt.timedelta(minutes=3))  # the office mends the form a little later
    r = c.post(url, data={**bad, "version": typed_version, "notice": (io.BytesIO(images.jpeg()), "新通知.jpg")},
               content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "已保存所选附件（会议通知），无需重新选择" in html and "新通知.jpg" in html
    assert "结束日期不能早于开始日期" in html and 'value="2026-03-01"' in html
    version = re.search(r'name="version" value="(\d+)"', html).group(1)
    assert version != typed_version  # the upload changed the draft
    assert c.post(url, data={**form, "version": version}, content_type="multipart/form-data").status_code == 302
    clicked = current(form)
    r = c.post(url, data={**clicked, "action": "submit", "agenda": (io.BytesIO(images.jpeg()), "a.jpg")},
               content_type="multipart/form-data")
    assert r.status_code == 302
    # the same click arriving twice (a double click) hears what the first did, not "待审批，不能修改"
    twice = c.post(url, data={**clicked, "action": "submit", "agenda": (io.BytesIO(images.jpeg()), "a.jpg")},
                   content_type="multipart/form-data")
    assert twice.status_code == 302 and "已保存并上报" in c.get(url).get_data(as_text=True)
    clock.set_now(clock.now() + dt.timedelta(minutes=1))  # not a moment later: the state is said again
    assert c.post(url, data={**clicked, "action": "submit"}, content_type="multipart/form-data").status_code == 409
    html = c.get(url).get_data(as_text=True)
    assert "待审批" in html and "保存并上报" in html  # read-only view with its history
    assert 'name="starts_on"' not in html
    # Back to the form and 保存 again: the state is the reason, not a field to correct
    again = c.post(url, data={**form, "version": version}, content_type="multipart/form-data")
    html = again.get_data(as_text=True)
    assert again.status_code == 409 and "待审批" in html and "提交的内容有误" not in html


def test_text_with_a_nul_character_is_refused_by_the_field(projects_app, inst_a, make_project, frozen):
    """PostgreSQL cannot store a NUL character: without this check the refusal named no field."""
    project = make_project(inst_a[0])
    c, h = projects_app.test_client(), bearer(inst_a[1])
    fid = c.post(f"/projects/api/projects/{project.id}/offerings", headers=h).get_json()["id"]
    r = c.put(f"/projects/api/filings/{fid}", headers=h, json={"venue": "西安\x00会议室", "contact_person": "王"})
    assert r.status_code == 422 and r.get_json()["error"]["fields"] == {"venue": "不能包含空字符（\\0）。"}
    assert c.get(f"/projects/api/filings/{fid}", headers=h).get_json()["contact_person"] == ""  # nothing kept
    r = c.get("/projects/api/filings", headers=h, query_string={"q": "a\x00b"})
    assert r.status_code == 422 and r.get_json()["error"]["fields"] == {"q": "不能包含空字符（\\0）。"}


def test_a_file_over_the_limit_is_refused_in_the_browser_before_anything_is_sent(
        projects_app, inst_a, make_project, frozen, csrf, tmp_path):
    """A 14 MB photo went to the gateway, which refused it with a page of its own: everything typed in the
    form was gone. The browser now says so when the file is chosen, and keeps the form."""
    from playwright.sync_api import sync_playwright

    from tests.stack.browser import CHROMIUM, CHROMIUM_ARGS

    project = make_project(inst_a[0])
    c = login_client(projects_app.test_client(), inst_a[1])
    url = c.post(f"/projects/filings/projects/{project.id}/offerings",
                 data={"csrf_token": csrf(inst_a[1])}).headers["Location"]
    page_file = tmp_path / "form.html"
    page_file.write_text(c.get(url).get_data(as_text=True), encoding="utf-8")
    big = tmp_path / "大照片.jpg"
    big.write_bytes(b"\xff\xd8" + b"\0" * (6 * 1024 * 1024))
    small = tmp_path / "通知.jpg"
    small.write_bytes(b"\xff\xd8" + b"\0" * 1024)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            said: list[str] = []
            page.on("dialog", lambda d: (said.append(d.message), d.accept()))
            page.goto(page_file.as_uri())
            page.fill("#f-venue", "西安市会议中心")
            page.set_input_files("#f-notice", str(small))
            assert page.eval_on_selector("#f-notice", "e => e.files.length") == 1 and said == []
            page.set_input_files("#f-agenda", str(big))
            assert said and "大照片.jpg" in said[0] and "超过 5 MB" in said[0]
            assert page.eval_on_selector("#f-agenda", "e => e.files.length") == 0
            assert page.input_value("#f-venue") == "西安市会议中心"  # nothing typed is lost
        finally:
            browser.close()


def test_a_double_click_on_save_and_submit_sends_the_form_once(projects_app, inst_a, make_project, frozen, csrf):
    """The office's double click on 保存并上报 sent two forms; the second answered 不能修改 to a filing the first
    had just sent. The page sends the first only, with the button's action."""
    from tests.stack.browser import served_page

    project = make_project(inst_a[0])
    c = login_client(projects_app.test_client(), inst_a[1])
    url = c.post(f"/projects/filings/projects/{project.id}/offerings",
                 data={"csrf_token": csrf(inst_a[1])}).headers["Location"]
    sent: list[str] = []
    # the POST is left unanswered: the server is slow today
    with served_page(c.get(url).get_data(as_text=True), url, lambda route: sent.append(route.request.post_data or "")
                     ) as page:
        # the second click of a double click comes once the first form is on its way
        page.eval_on_selector("button[value=submit]", "b => { b.click(); setTimeout(() => b.click(), 150); }")
        page.wait_for_timeout(800)
        assert len(sent) == 1 and "保存并上报" not in sent[0]
        assert 'name="action"' in sent[0] and "\r\n\r\nsubmit\r\n" in sent[0], sent


def test_the_form_shows_its_mistakes_together(projects_app, inst_a, make_project, frozen, csrf):
    """A wrong phone, an end before the start and a session ending before it begins: one answer names all three."""
    project = make_project(inst_a[0])
    c = login_client(projects_app.test_client(), inst_a[1])
    token = csrf(inst_a[1])
    url = c.post(f"/projects/filings/projects/{project.id}/offerings", data={"csrf_token": token}).headers["Location"]
    form = {"csrf_token": token, "starts_on": "2026-03-21", "ends_on": "2026-03-20", "venue": "西安", "mode": "线下",
            "expected_trainees": "80", "contact_person": "李老师", "contact_phone": "12345",
            "sched_date": ["2026-03-20"], "sched_start": ["11:30"], "sched_end": ["08:30"], "sched_title": ["讲座"],
            "action": "save", "version": re.search(r'name="version" value="(\d+)"',
                                                   c.get(url).get_data(as_text=True)).group(1)}
    html = c.post(url, data=form, content_type="multipart/form-data").get_data(as_text=True)
    for message in ("结束日期不能早于开始日期", "请填写手机号码或带区号的固定电话", "结束时间应晚于开始时间"):
        assert message in html, message
    # 保存并上报 with a start too soon: the 7-day rule is named with the other mistakes, not in a second round
    soon = {**form, "action": "submit", "starts_on": "2026-03-05", "ends_on": "2026-03-06",
            "sched_date": ["2026-03-05"]}
    html = c.post(url, data=soon, content_type="multipart/form-data").get_data(as_text=True)
    assert "请填写手机号码或带区号的固定电话" in html and "今天上报最早可选 2026-03-09" in html
    # a session dated outside the days, and a row with only its 内容: named in the same answer, plainly
    rows = {**form, "starts_on": "2026-03-20", "ends_on": "2026-03-21", "sched_date": ["2026-03-20", "2026-03-25", ""],
            "sched_start": ["08:30", "08:30", ""], "sched_end": ["11:30", "11:30", ""],
            "sched_title": ["讲座", "讲座", "茶歇"]}
    html = c.post(url, data=rows, content_type="multipart/form-data").get_data(as_text=True)
    assert "请填写手机号码或带区号的固定电话" in html and "日程安排第 2 行的日期不在举办起止日期" in html
    assert "第 3 行日期：未填写" in html and "日期格式不正确" not in html
    assert "今天上报最早可选" not in c.post(url, data={**soon, "action": "save"},
                                           content_type="multipart/form-data").get_data(as_text=True)


def test_hostile_filing_bodies_are_refused_and_nothing_saved_is_lost(projects_app, inst_a, ready_filing, frozen, csrf):
    """The 500-hunt: a schedule title holding a lone surrogate was saved, answered 500, and the filing could not
    be opened again; a body nested 2000 deep was a 500; a stale form without its version saved blindly."""
    _project, fid = ready_filing(*inst_a)
    c = projects_app.test_client()
    h = bearer(inst_a[1])
    before = c.get(f"/projects/api/filings/{fid}", headers=h).get_json()
    r = c.put(f"/projects/api/filings/{fid}", headers=h, content_type="application/json", data=(
        '{"schedule": [{"date": "2026-03-20", "start": "08:30", "end": "09:30", "title": "x\\ud800"}]}'))
    assert r.status_code == 422 and "无法识别的字符" in r.get_json()["error"]["fields"]["schedule"]
    r = c.put(f"/projects/api/filings/{fid}", headers=h, content_type="application/json",
              data='{"venue":' * 2000 + '"x"' + "}" * 2000)
    assert r.status_code == 400 and "不是有效的 JSON" in r.get_json()["error"]["message"]
    truncated = c.put(f"/projects/api/filings/{fid}", headers=h, content_type="application/json", data='{"venue": "新')
    assert truncated.status_code == 400
    for hidden in ("铃\x07声", "反\u202e向"):  # a bell, a direction override: nothing a person types or should see
        r = c.put(f"/projects/api/filings/{fid}", headers=h, json={"note": hidden})
        assert r.status_code == 422 and "控制字符" in r.get_json()["error"]["fields"]["note"]
    assert c.put(f"/projects/api/filings/{fid}", headers=h, json={"note": "第一行\n\t第二行"}).status_code == 200
    after = c.get(f"/projects/api/filings/{fid}", headers=h)
    assert after.status_code == 200 and after.get_json()["schedule"] == before["schedule"]
    assert after.get_json()["version"] == before["version"] + 1  # only the plain note was saved
    before = after.get_json()
    # the page's form without its hidden version: shown again as typed, nothing saved
    page = login_client(projects_app.test_client(), inst_a[1])
    form = {"csrf_token": csrf(inst_a[1]), "starts_on": "2026-03-20", "ends_on": "2026-03-21", "venue": "陈旧的地点",
            "mode": "线下", "expected_trainees": "80", "contact_person": "李老师", "contact_phone": "029-85323000",
            "action": "save"}
    for version in (None, "", "abc", "²"):
        data = form if version is None else {**form, "version": version}
        r = page.post(f"/projects/filings/{fid}", data=data, content_type="multipart/form-data")
        html = r.get_data(as_text=True)
        assert r.status_code == 409 and "页面已过期" in html and "陈旧的地点" in html, (version, r.status_code)
    assert c.get(f"/projects/api/filings/{fid}", headers=h).get_json()["venue"] == before["venue"]


def test_catalogue_period_reads_the_months_the_text_names():
    from services.projects.filings.services import catalogue_period

    d = dt.date
    assert catalogue_period("2026年5月—2026年10月", 2026) == (d(2026, 5, 1), d(2026, 10, 31))
    assert catalogue_period("2026年5-10月", 2026) == (d(2026, 5, 1), d(2026, 10, 31))
    assert catalogue_period("9月", 2027) == (d(2027, 9, 1), d(2027, 9, 30))
    assert catalogue_period("2026年12月至2027年2月", 2026) == (d(2026, 12, 1), d(2027, 2, 28))
    assert catalogue_period("全年", 2026) is None and catalogue_period("", 2026) is None
    assert catalogue_period("2026年13月", 2026) is None
    # dates as clerks type them, and an Excel date cell as the import writes it
    assert catalogue_period("2027.3.1-2027.6.30", 2027) == (d(2027, 3, 1), d(2027, 6, 30))
    assert catalogue_period("2027/10/1～2027/10/3", 2027) == (d(2027, 10, 1), d(2027, 10, 3))
    assert catalogue_period("2027.03-2027.06", 2027) == (d(2027, 3, 1), d(2027, 6, 30))
    assert catalogue_period("2027-03-01", 2027) == (d(2027, 3, 1), d(2027, 3, 1))
    assert catalogue_period("２０２７年３月１日至６月３０日", 2027) == (d(2027, 3, 1), d(2027, 6, 30))
    assert catalogue_period("2027.2.30", 2027) is None  # no such day
    # a range whose end leaves out the year and month it shares with the start
    assert catalogue_period("2027年3月10日—12日", 2027) == (d(2027, 3, 10), d(2027, 3, 12))
    assert catalogue_period("2027年10月1日至3日", 2027) == (d(2027, 10, 1), d(2027, 10, 3))
    assert catalogue_period("2027/3/1-6/30", 2027) == (d(2027, 3, 1), d(2027, 6, 30))
    assert catalogue_period("2027.3.1—6.30", 2027) == (d(2027, 3, 1), d(2027, 6, 30))
    assert catalogue_period("2027.3-6", 2027) == (d(2027, 3, 1), d(2027, 6, 30))
    assert catalogue_period("2027-03-01-2027-06-30", 2027) == (d(2027, 3, 1), d(2027, 6, 30))
    assert catalogue_period("2026年5月、9月", 2026) == (d(2026, 5, 1), d(2026, 9, 30))


def test_a_date_outside_the_catalogue_period_is_noted_and_the_office_can_explain(
        projects_app, projects_db, inst_a, reviewer, ready_filing, frozen, csrf):
    """The office's walk filed 12-08 against a catalogue saying 2026年5月—2026年10月, and nothing said so to either
    side; the committee asked for an explanation and the filing had nowhere to write one."""
    _project, fid = ready_filing(*inst_a)  # starts 2026-03-20; the test catalogue says 2026年5月
    c = projects_app.test_client()
    h = bearer(inst_a[1])
    body = c.get(f"/projects/api/filings/{fid}", headers=h).get_json()
    assert body["checks"] == ["举办日期 2026-03-20 至 2026-03-21 不在项目目录的举办时间（2026年5月）内。"]
    office = login_client(projects_app.test_client(), inst_a[1])
    form = office.get(f"/projects/filings/{fid}").get_data(as_text=True)
    assert 'id="checks"' in form and 'name="note"' in form and "在下方“说明”中写明原因" in form
    assert "项目目录举办时间 2026年5月" in form  # what the dates are checked against, before 上报
    bad_row = c.put(f"/projects/api/filings/{fid}", headers=h, json={"schedule": [
        {"date": "2026-03-20", "start": "08:30", "end": "09:30", "title": "讲座"}] * 201})
    assert bad_row.get_json()["error"]["fields"]["schedule"] == "日程最多填写 200 行。"
    no_title = c.put(f"/projects/api/filings/{fid}", headers=h, json={"schedule": [
        {"date": "2026-03-20", "start": "08:30", "end": "09:30", "title": "x" * 201}]})
    assert "第 1 行内容" in no_title.get_json()["error"]["fields"]["schedule"]  # not 第 1 行title
    too_long = c.put(f"/projects/api/filings/{fid}", headers=h, json={"note": "长" * 501})
    assert too_long.status_code == 422 and "500" in too_long.get_json()["error"]["fields"]["note"]
    assert c.put(f"/projects/api/filings/{fid}", headers=h,
                 json={"note": "经委员会同意提前至3月举办。"}).status_code == 200
    assert c.post(f"/projects/api/filings/{fid}/submit", headers=h, json={}).status_code == 200
    review = login_client(projects_app.test_client(), reviewer[1]).get(f"/projects/review/filings/{fid}")
    html = review.get_data(as_text=True)
    assert "申办机构说明" in html and "经委员会同意提前至3月举办。" in html and "不影响审批" in html
    assert "写明原因" not in html  # the committee is not told what the office should do
    queue = login_client(projects_app.test_client(), reviewer[1]).get("/projects/review/filings")
    assert "有核对提示" in queue.get_data(as_text=True)  # the queue marks it before the filing is opened
    # inside the period: no note
    s = projects_db.new_session()
    f = s.get(Filing, fid)
    f.offering.project.period_text = "2026年3月"
    s.commit()
    s.close()
    assert c.get(f"/projects/api/filings/{fid}", headers=h).get_json()["checks"] == []
    queue = login_client(projects_app.test_client(), reviewer[1]).get("/projects/review/filings")
    assert "有核对提示" not in queue.get_data(as_text=True)


def test_a_refused_first_save_keeps_the_typed_fields_that_were_right_with_the_files(
        projects_app, inst_a, make_project, frozen, csrf, images):
    """The office's first 保存 of a new filing, with both JPGs and one mistyped phone: the JPGs were kept but
    not the dates, venue and schedule typed beside them, so an office that closed the page (the page had said
    附件 were saved) found a draft with files and nothing else, and typed it all again."""
    project = make_project(inst_a[0])
    c = login_client(projects_app.test_client(), inst_a[1])
    token = csrf(inst_a[1])
    url = c.post(f"/projects/filings/projects/{project.id}/offerings", data={"csrf_token": token}).headers["Location"]
    form = {"csrf_token": token, "starts_on": "2026-03-20", "ends_on": "2026-03-21", "venue": "西安市曲江会展中心",
            "mode": "线下", "expected_trainees": "150", "contact_person": "赵老师", "contact_phone": "12345",
            "sched_date": ["2026-03-20", ""], "sched_start": ["08:30", ""], "sched_end": ["11:30", ""],
            "sched_title": ["专题讲座", ""], "action": "save", "version": page_version(c, url),
            "notice": (io.BytesIO(images.jpeg()), "通知.jpg"), "agenda": (io.BytesIO(images.jpeg()), "日程.jpg")}
    r = c.post(url, data=form, content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "请填写手机号码或带区号的固定电话" in html
    assert "已保存所选附件（会议通知、会议日程），无需重新选择，填写正确的其他内容也已保存" in html
    assert 'value="12345"' in html  # the wrong phone is shown as typed, to be mended
    # the office closes the page and comes back: what was right is in the draft, only the phone is to type
    saved = c.get(f"/projects/api/filings/{url.rsplit('/', 1)[1]}", headers=bearer(inst_a[1])).get_json()
    assert (saved["starts_on"], saved["ends_on"], saved["venue"], saved["expected_trainees"],
            saved["contact_person"], saved["contact_phone"]) == (
        "2026-03-20", "2026-03-21", "西安市曲江会展中心", 150, "赵老师", "")
    assert saved["schedule"] == [{"date": "2026-03-20", "start": "08:30", "end": "11:30", "title": "专题讲座"}]
    assert saved["missing"] == ["联系电话"]
    assert "上报前尚缺（按已保存的内容，不含本次未能保存的修改）：联系电话" in html


def test_a_refused_save_keeps_no_field_tied_to_the_refused_one(projects_app, inst_a, make_project, frozen, csrf,
                                                              images):
    """An end date before the start refuses both dates and the schedule checked against them (which of the two
    is wrong is the office's to say); a save refused as stale keeps no typed field at all."""
    project = make_project(inst_a[0])
    c = login_client(projects_app.test_client(), inst_a[1])
    token = csrf(inst_a[1])
    url = c.post(f"/projects/filings/projects/{project.id}/offerings", data={"csrf_token": token}).headers["Location"]
    fid = url.rsplit("/", 1)[1]
    form = {"csrf_token": token, "starts_on": "2026-03-21", "ends_on": "2026-03-20", "venue": "西安市曲江会展中心",
            "mode": "线下", "contact_person": "赵老师", "sched_date": ["2026-03-20"], "sched_start": ["08:30"],
            "sched_end": ["11:30"], "sched_title": ["专题讲座"], "action": "save", "version": page_version(c, url)}
    r = c.post(url, data={**form, "notice": (io.BytesIO(images.jpeg()), "通知.jpg")},
               content_type="multipart/form-data")
    assert r.status_code == 422 and "结束日期不能早于开始日期" in r.get_data(as_text=True)
    saved = c.get(f"/projects/api/filings/{fid}", headers=bearer(inst_a[1])).get_json()
    assert (saved["starts_on"], saved["ends_on"], saved["schedule"]) == (None, None, [])
    assert (saved["venue"], saved["contact_person"]) == ("西安市曲江会展中心", "赵老师")
    # a page older than the draft: the files are kept as before, the typed fields are not
    r = c.post(url, data={**form, "ends_on": "2026-03-2x", "venue": "旧页面的地点", "contact_person": "旧页面",
                          "agenda": (io.BytesIO(images.jpeg()), "日程.jpg")}, content_type="multipart/form-data")
    assert r.status_code == 422
    saved = c.get(f"/projects/api/filings/{fid}", headers=bearer(inst_a[1])).get_json()
    assert (saved["venue"], saved["contact_person"]) == ("西安市曲江会展中心", "赵老师")


def test_a_filing_already_sent_shows_its_notes_for_reference(projects_app, inst_a, reviewer, ready_filing, frozen):
    """Sent and approved, the office's filing still said 核对提示（不影响上报）: there is nothing left to 上报 (the
    form, while the filing can be edited, has notes of its own)."""
    _project, fid = ready_filing(*inst_a, submit=True)  # its dates are outside the catalogue's 2026年5月
    c = login_client(projects_app.test_client(), inst_a[1])
    assert "核对提示</strong>（仅供参考）" in c.get(f"/projects/filings/{fid}").get_data(as_text=True)  # 待审批
    assert projects_app.test_client().post(f"/projects/api/review/filings/{fid}/approve", headers=bearer(reviewer[1]),
                                           json={}).status_code == 200
    html = c.get(f"/projects/filings/{fid}").get_data(as_text=True)
    assert "不在项目目录的举办时间" in html and "不影响上报" not in html and "核对提示</strong>（仅供参考）" in html


def test_a_project_whose_year_is_over_offers_no_new_offering(projects_app, inst_a, make_project, ready_filing,
                                                             frozen, csrf):
    """At the turn of the year the office's list still offered 第一期未登记 on last year's projects: the draft it
    opened could never be sent (a 2025 project is held in 2025, and 上报 needs a start 7 days ahead)."""
    from services.common import clock

    old = make_project(inst_a[0], year=2025, offerings_count=2)
    late = make_project(inst_a[0], year=2026)
    page = login_client(projects_app.test_client(), inst_a[1])
    html = page.get("/projects/filings").get_data(as_text=True)
    row = html[html.index(old.number):]
    row = row[:row.index("</tr>")]
    assert "未登记</button>" not in row and "2025 年度已结束，不能再登记新的期次" in row
    c, h = projects_app.test_client(), bearer(inst_a[1])
    rows = {r["project"]["number"]: r for r in c.get("/projects/api/filings", headers=h).get_json()["items"]}
    assert rows[old.number]["next_label"] is None and rows[old.number]["year_closed"] is True
    assert rows[late.number]["next_label"] == "第一期未登记" and rows[late.number]["year_closed"] is False
    r = c.post(f"/projects/api/projects/{old.id}/offerings", headers=h)
    assert r.status_code == 409 and "2025 年度已结束" in r.get_json()["error"]["message"]
    r = page.post(f"/projects/filings/projects/{old.id}/offerings", data={"csrf_token": csrf(inst_a[1])})
    assert r.status_code == 409
    # 28 December: a 2026 project can no longer be filed 7 days ahead within 2026
    clock.set_now(dt.datetime(2026, 12, 28, 2, 0, tzinfo=dt.UTC))
    rows = {r["project"]["number"]: r for r in c.get("/projects/api/filings", headers=h).get_json()["items"]}
    assert rows[late.number]["year_closed"] is True and rows[late.number]["next_label"] is None
    clock.set_now(frozen)
    filed, _ = ready_filing(*inst_a, submit=True)
    clock.set_now(dt.datetime(2027, 1, 5, 2, 0, tzinfo=dt.UTC))  # a project all of whose 期 were filed is just that
    html = page.get("/projects/filings").get_data(as_text=True)
    row = html[html.index(filed.number):]
    row = row[:row.index("</tr>")]
    assert "已全部登记" in row and "年度已结束" not in row


def test_a_mobile_typed_with_dashes_or_86_is_the_number(projects_app, inst_a, make_project, frozen):
    """138-0000-0000 (as printed on many business cards) and +86 139 1234 5678 were refused as 联系电话, though
    138 0000 0000 was read."""
    project = make_project(inst_a[0])
    c, h = projects_app.test_client(), bearer(inst_a[1])
    fid = c.post(f"/projects/api/projects/{project.id}/offerings", headers=h).get_json()["id"]
    for typed in ("138-0000-0000", "+86 138 0000 0000", "0086-13800000000", "138－0000－0000"):
        r = c.put(f"/projects/api/filings/{fid}", headers=h, json={"contact_phone": typed})
        assert r.status_code == 200 and r.get_json()["contact_phone"] == "13800000000", typed
    r = c.put(f"/projects/api/filings/{fid}", headers=h, json={"contact_phone": "029-85323000"})
    assert r.get_json()["contact_phone"] == "029-85323000"  # a landline keeps its area code's dash
    r = c.put(f"/projects/api/filings/{fid}", headers=h, json={"contact_phone": "138-0000-000"})
    assert r.status_code == 422  # a digit short is still refused


def test_the_form_fits_a_phone_and_its_buttons_take_their_taps(projects_app, inst_a, make_project, frozen, csrf):
    """At 360 px the 日程安排 table made the page 543 px wide: the browser shrank the whole form, and on a 线上
    project a tap at 保存并上报 landed on the 线上学员授予学分监管说明 label. The rows stack; the page fits."""
    from tests.stack.browser import PHONE, served_page

    project = make_project(inst_a[0], mode="线上")
    c = login_client(projects_app.test_client(), inst_a[1])
    token = csrf(inst_a[1])
    url = c.post(f"/projects/filings/projects/{project.id}/offerings", data={"csrf_token": token}).headers["Location"]
    version = re.search(r'name="version" value="(\d+)"', c.get(url).get_data(as_text=True)).group(1)
    # the 422 answer of 保存并上报 with nothing uploaded: every field's mistake shown, the longest the form gets
    answer = c.post(url, data={"csrf_token": token, "version": version, "action": "submit", "mode": "线上",
                               "venue": "西安市雁塔区小寨东路某某会议中心三楼第一报告厅", "sched_title": ["讲座"],
                               "sched_date": ["2026-03-20"], "sched_start": ["08:30"], "sched_end": ["11:30"]},
                    content_type="multipart/form-data")
    assert answer.status_code == 422
    for html in (c.get(url).get_data(as_text=True), answer.get_data(as_text=True)):
        with served_page(html, url, lambda route: route.abort(), device=PHONE, static_from=c) as page:
            assert page.evaluate("document.documentElement.scrollWidth") <= 360
            # a schedule row's inputs are each as wide as the phone allows, one under another
            boxes = [page.locator(f"input[name={n}]").first.bounding_box()
                     for n in ("sched_date", "sched_start", "sched_end", "sched_title")]
            assert all(b["x"] >= 0 and b["x"] + b["width"] <= 360 for b in boxes), boxes
            assert boxes[0]["y"] < boxes[3]["y"]
            for button in ("button[value=submit]", "button[value=save]"):
                page.locator(button).scroll_into_view_if_needed()
                hit = page.eval_on_selector(button, """b => { const r = b.getBoundingClientRect();
                    return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === b; }""")
                assert hit, button


def test_a_missing_online_supervision_upload_is_said_next_to_its_field(projects_app, inst_a, make_project, frozen,
                                                                        csrf, images, filled):
    """保存并上报 of a 线上 offering without the 线上学员授予学分监管说明 named it only in 上报前尚缺, away from its
    field; with a mistake elsewhere it was not named beside any field at all."""
    project = make_project(inst_a[0], mode="线上")
    c = login_client(projects_app.test_client(), inst_a[1])
    token = csrf(inst_a[1])
    url = c.post(f"/projects/filings/projects/{project.id}/offerings", data={"csrf_token": token}).headers["Location"]
    rows = filled["schedule"]
    form = {"csrf_token": token, "action": "submit", **{k: str(filled[k]) for k in (
        "starts_on", "ends_on", "venue", "expected_trainees", "contact_person", "contact_phone")}, "mode": "线上",
        "sched_date": [r["date"] for r in rows], "sched_start": [r["start"] for r in rows],
        "sched_end": [r["end"] for r in rows], "sched_title": [r["title"] for r in rows]}
    beside = re.compile(r'<input id="f-online_supervision"[^\n]*\n\s*<div class="field-error">([^<]+)</div>')

    def send(**over: Any) -> tuple[int, str]:
        version = page_version(c, url)
        files = {k: (io.BytesIO(images.jpeg()), f"{k}.jpg") for k in ("notice", "agenda")}
        r = c.post(url, data={**form, **files, "version": version, **over}, content_type="multipart/form-data")
        return r.status_code, r.get_data(as_text=True)

    # a mistake in the phone: refused by the form; the missing upload is named beside its field all the same
    status, html = send(contact_phone="12345")
    assert status == 422 and "请填写手机号码或带区号的固定电话" in html
    found = beside.search(html)
    assert found and "线上学员授予学分监管说明" in found.group(1), html
    assert '<div class="field-error">上报前须上传会议通知' not in html  # the JPGs chosen with it were kept
    # all else right: saved as a draft, not sent, and the missing upload is said beside its field
    status, html = send()
    assert status == 422 and "已保存为草稿，但未能上报" in html
    found = beside.search(html)
    assert found and "线上学员授予学分监管说明" in found.group(1), html
    # the API says it by the field too
    fid = int(url.rsplit("/", 1)[1])
    r = c.post(f"/projects/api/filings/{fid}/submit", headers=bearer(inst_a[1]), json={})
    fields = r.get_json()["error"]["fields"]
    assert r.status_code == 422 and fields["missing"] == "线上学员授予学分监管说明"
    assert set(fields) == {"missing", "online_supervision"}


def test_submit_refused_for_a_missing_field_says_one_thing(projects_app, inst_a, make_project, frozen, csrf,
                                                           images, filled):
    """QA: 保存并上报 refused for a missing JPG showed the red 提交的内容有误 over 已保存为草稿，但未能上报, the
    核对提示 (不影响上报) was as red as an error, and 上报前尚缺 said 不含本次未能保存的修改 when all was saved."""
    project = make_project(inst_a[0], mode="线下")  # the office types 线上: a 核对提示, which blocks nothing
    c = login_client(projects_app.test_client(), inst_a[1])
    url = c.post(f"/projects/filings/projects/{project.id}/offerings",
                 data={"csrf_token": csrf(inst_a[1])}).headers["Location"]
    rows = filled["schedule"]
    form = {"csrf_token": csrf(inst_a[1]), "action": "submit", "version": page_version(c, url),
            **{k: str(filled[k]) for k in ("starts_on", "ends_on", "venue", "expected_trainees", "contact_person",
                                           "contact_phone")}, "mode": "线上",
            "sched_date": [r["date"] for r in rows], "sched_start": [r["start"] for r in rows],
            "sched_end": [r["end"] for r in rows], "sched_title": [r["title"] for r in rows],
            "notice": (io.BytesIO(images.jpeg()), "通知.jpg"), "agenda": (io.BytesIO(images.jpeg()), "日程.jpg")}
    r = c.post(url, data=form, content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    said = re.findall(r'<div class="flash error"[^>]*>(.*?)</div>', html, flags=re.S)
    assert len(said) == 1
    assert said[0].startswith("已保存为草稿，但未能上报：尚有必填内容未完成：线上学员授予学分监管说明")
    assert "提交的内容有误" not in html and "不含本次未能保存的修改" not in html
    assert "上报前尚缺：线上学员授予学分监管说明" in html
    assert re.search(r"<input id=\"f-online_supervision\"[^\n]*\n\s*<div class=\"field-error\">[^<]*上报前须上传", html)
    assert '<div class="flash note" id="checks"><strong>核对提示</strong>（不影响上报' in html
    assert '"flash error" id="checks"' not in html
    saved = c.get(f"/projects/api/filings/{url.rsplit('/', 1)[1]}", headers=bearer(inst_a[1])).get_json()
    assert saved["state"] == "draft" and saved["mode"] == "线上" and saved["missing"] == ["线上学员授予学分监管说明"]
