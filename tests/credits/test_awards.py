"""学分管理 → 项目参加者授分: 考勤分析 saved, 有效人员明细, 筛选授分人员 with reasons, 授分, 撤销, 手工录入学分,
the award list and its Excel export, credits.granted and projects' copy of the list, and who may do what."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from decimal import Decimal
from urllib.parse import quote

import pytest
from openpyxl import load_workbook
from sqlalchemy import insert, select

from services.common import clock, pii
from services.common.events import make_envelope
from tests.checkin.test_windows_support import (
    INST_A,
    INST_B,
    REVIEWER,
    TRAINEE,
    WHO,
    api_headers,
    client_for,
    csrf_for,
    id_number,
)
from tests.credits.test_offerings import deliver, payload

UTC = dt.UTC
DAY1 = dt.datetime(2026, 12, 10, 0, 30, tzinfo=UTC)  # 08:30 Shanghai
DAY2 = DAY1 + dt.timedelta(days=1)
WINDOWS = {1: ("sign_in", DAY1), 2: ("sign_out", DAY1 + dt.timedelta(hours=8)),
           3: ("sign_in", DAY2), 4: ("sign_out", DAY2 + dt.timedelta(hours=8))}
ACTIVITY, OFFERING = 7, 101
# trainee serial -> windows scanned (minutes after the window opened); "f" marks a forced check-in
PEOPLE = {1: {1: 5, 2: 5, 3: 5, 4: 5}, 2: {1: 5, 2: 5, 3: 5}, 3: {1: 50, 2: 5, 3: 5, 4: 5},
          4: {1: "f", 2: 5, 3: 5, 4: 5}}
NAMES = {1: "吴倩", 2: "张伟", 3: "李娜", 4: "王芳"}


def key(serial: int) -> str:
    return pii.id_hash(id_number(serial))


@pytest.fixture
def cdb(databases):
    return databases["credits"]


@pytest.fixture
def seeded(cdb):
    from services.credits.attendance.models import AttendanceRecord

    clock.set_now(dt.datetime(2026, 12, 12, 2, 0, tzinfo=UTC))
    deliver(make_envelope("offering.approved", "projects", payload()))
    rows, n = [], 0
    for serial, scans in PEOPLE.items():
        for window_id, minutes in scans.items():
            n += 1
            kind, starts = WINDOWS[window_id]
            rows.append({
                "checkin_id": n, "activity_id": ACTIVITY, "offering_id": OFFERING, "institution_id": 1,
                "window_id": window_id, "window_kind": kind, "window_starts_at": starts,
                "window_ends_at": starts + dt.timedelta(hours=1), "trainee_key": key(serial),
                "name": NAMES[serial], "id_enc": pii.encrypt(id_number(serial)),
                "mobile_enc": pii.encrypt(f"1380000000{serial}"), "title": "主治医师", "unit": "西安市第一医院",
                "scanned_at": starts + dt.timedelta(minutes=5 if minutes == "f" else minutes),
                "forced": minutes == "f", "flags": []})
    s = cdb.new_session()
    s.execute(insert(AttendanceRecord), rows)
    s.commit()
    s.close()
    return rows


def form(principal, **fields) -> dict:
    return {"csrf_token": csrf_for(principal), **fields}


def analysis_form(*window_ids, **extra) -> dict:
    data = form(INST_A, window=[str(w) for w in window_ids], **extra)
    return data


def awards(cdb):
    from services.credits.awards.models import CreditAward

    s = cdb.new_session()
    try:
        return s.scalars(select(CreditAward).order_by(CreditAward.id)).all()
    finally:
        s.close()


def audit(cdb, action):
    from services.credits.audit import AuditLog

    s = cdb.new_session()
    try:
        return s.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)).all()
    finally:
        s.close()


def granted_events(cdb):
    from services.credits.db import outbox

    s = cdb.new_session()
    try:
        rows = s.execute(select(outbox.c.envelope).where(outbox.c.name == "credits.granted")
                         .order_by(outbox.c.id)).scalars().all()
        return [json.loads(r) for r in rows]
    finally:
        s.close()


# ---- the flow through the pages ------------------------------------------------------------------

def test_flow_analyse_exclude_grant_through_the_pages(credits_app, seeded, cdb):
    c = client_for(credits_app, "inst_a")
    listing = c.get("/credits/awards").get_data(as_text=True)
    assert "项目参加者授分" in listing and "心血管急危重症诊治进展" in listing and "未授分" in listing
    assert "<th>期次</th>" in listing and '<td class="nowrap">第一期</td>' in listing

    step1 = c.get(f"/credits/awards/{OFFERING}").get_data(as_text=True)
    assert "根据会场考勤授分" in step1 and "请勿选择手工录入学分，手工录入学分为非有效学分" in step1

    page = c.get(f"/credits/awards/{OFFERING}/analysis").get_data(as_text=True)
    # the windows that had QR check-in, each range pre-filled with the window's own start and end
    assert page.count('type="checkbox" id="w-') == 4
    assert 'value="2026-12-10T08:30"' in page and 'value="2026-12-10T09:30"' in page

    # 考勤分析 (preview) with every window, forced check-ins excluded: 吴倩 and 李娜 (50 min is in range)
    preview = c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="preview"))
    text = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "有效人员 <strong>2</strong> 人" in text
    valid = text.split('id="short"')[0]  # after it: who falls short of the rule
    assert "吴倩" in valid and "李娜" in valid and "张伟" not in valid and "须在全部 4 个刷卡周期内签到" in text
    assert awards(cdb) == [] and audit(cdb, "analyse") == []  # a preview saves nothing

    # narrowing window 1 to its first 30 minutes drops 李娜's 50-minute scan; at least 3 of 4 brings 张伟 in,
    # and 王芳 too (her forced check-in does not count, her other three scans do)
    narrowed = analysis_form(1, 2, 3, 4, action="save", rule_mode="at_least", rule_n="3",
                             from_1="2026-12-10T08:30", to_1="2026-12-10T09:00")
    saved = c.post(f"/credits/awards/{OFFERING}/analysis", data=narrowed)
    assert saved.status_code == 302 and saved.headers["Location"].endswith(f"/credits/awards/{OFFERING}/attendees")
    [entry] = audit(cdb, "analyse")
    assert "至少 3 个" in entry.reason and "有效人员 4 人" in entry.reason

    detail = c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)
    assert "有效人员明细" in detail and "有效人员 <strong>4</strong> 人" in detail
    assert all(name in detail for name in NAMES.values())
    assert pii.mask_id(id_number(1)) in detail and id_number(1) not in detail
    assert "12-10 08:35" in detail  # scan times per window
    assert 'value="2026-12-11"' in detail  # 活动日期 defaults to the last day

    # 筛选授分人员: untick 张伟 with a reason (audit-logged); a blank reason is refused
    blank = c.post(f"/credits/awards/{OFFERING}/exclusions", data=form(INST_A, trainee_key=key(2), reason=""))
    assert blank.status_code == 400 and "请填写不授分的原因。" in blank.get_data(as_text=True)
    # a one-letter reason is refused in 张伟's own row, with what was typed still in it
    short = c.post(f"/credits/awards/{OFFERING}/exclusions", data=form(INST_A, trainee_key=key(2), reason="走"))
    text = short.get_data(as_text=True)
    assert short.status_code == 400 and "不授分原因：" in text and 'value="走" aria-invalid="true"' in text
    row_form = text.split(f'name="trainee_key" value="{key(2)}"')[1].split("</form>")[0]
    assert 'value="走"' in row_form and text.count('value="走"') == 1
    assert audit(cdb, "exclude") == []
    c.post(f"/credits/awards/{OFFERING}/exclusions", data=form(INST_A, trainee_key=key(2), reason="中途离场"))
    [ex] = audit(cdb, "exclude")
    assert ex.reason == "张伟：中途离场" and ex.actor == INST_A.describe()
    detail = c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)
    assert "已排除：中途离场" in detail

    granted = c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    assert granted.status_code == 302 and granted.headers["Location"].endswith("/list")
    rows = awards(cdb)
    assert sorted(a.name for a in rows) == ["吴倩", "李娜", "王芳"]
    a = rows[0]
    assert (a.method, a.state, a.credit_class, a.credit_value, a.activity_date, a.year) == (
        "attendance", "pending", "Ⅰ类", Decimal("10.00"), dt.date(2026, 12, 11), 2026)
    assert (a.project_number, a.institution_name) == ("2026-01-01-001", "西安市第一医院")
    assert pii.decrypt(a.id_enc) in (id_number(1), id_number(3), id_number(4))
    listing = c.get(f"/credits/awards/{OFFERING}/list").get_data(as_text=True)
    assert "待生效" in listing and "吴倩" in listing


def test_windows_are_named_by_their_title_on_the_pages_and_in_the_excel(credits_app, seeded, cdb):
    """The office names its 刷卡周期 in checkin ("第一天上午 签到"); 考勤分析 showed only times and kinds. The title
    now comes with the check-ins and with a rename; copies made before it travelled are named by their time."""
    titles = {1: "第一天上午 签到", 2: "第一天下午 签退", 3: "第二天上午 签到"}  # window 4: old copies, no title
    for window_id, title in titles.items():
        kind, starts = WINDOWS[window_id]
        assert deliver(make_envelope("checkin.window_changed", "checkin", {
            "activity_id": ACTIVITY, "offering_id": OFFERING, "window_id": window_id, "window_kind": kind,
            "window_starts_at": starts, "window_ends_at": starts + dt.timedelta(hours=1),
            "window_title": title})) is True
    c = client_for(credits_app, "inst_a")
    page = c.get(f"/credits/awards/{OFFERING}/analysis").get_data(as_text=True)
    labels = re.findall(r'<label for="w-\d+">([^<]*)</label>', page)
    assert labels == ["第一天上午 签到 · 2026-12-10 08:30 至 09:30（签到）",
                      "第一天下午 签退 · 2026-12-10 16:30 至 17:30（签退）",
                      "第二天上午 签到 · 2026-12-11 08:30 至 09:30（签到）",
                      "2026-12-11 16:30 至 17:30（签退）"]
    # a range outside its window is refused naming the window as the page does
    wider = c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(
        1, action="preview", from_1="2026-12-10T08:00", to_1="2026-12-10T09:30"))
    assert wider.status_code == 422
    assert "刷卡周期 第一天上午 签到 · 2026-12-10 08:30 至 09:30（签到） 的时间范围" in wider.get_data(as_text=True)
    api = credits_app.test_client().get(f"/credits/api/offerings/{OFFERING}/windows", headers=api_headers("inst_a"))
    assert [(w["window_id"], w["title"]) for w in api.json] == [
        (1, "第一天上午 签到"), (2, "第一天下午 签退"), (3, "第二天上午 签到"), (4, None)]

    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save", include_forced="1"))
    detail = c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)
    head = detail.split("<thead><tr><th>姓名</th>")[1].split("</tr>")[0]
    assert "<th>第一天上午 签到 · 2026-12-10 08:30 至 09:30（签到）</th>" in head
    assert "<th>2026-12-11 16:30 至 17:30（签退）</th>" in head
    c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    ws = load_workbook(io.BytesIO(c.get(f"/credits/awards/{OFFERING}/awards.xlsx").data)).active
    marks = {r[1]: r[13] for r in list(ws.iter_rows(min_row=3, values_only=True))[:-1]}
    assert marks["王芳"] == "有（1 次：第一天上午 签到 · 2026-12-10 08:30 至 09:30（签到））"


def test_a_name_corrected_at_the_desk_reaches_her_awards_the_report_and_certs(credits_app, seeded, cdb, databases):
    """李娜's ID number was scanned under a misspelt name: the committee corrects it at 学员账号, and her awards
    (the 授分名单, the report's 导入 through credits.granted, and certs through credits.name_corrected) show hers."""
    from services.credits.db import outbox
    from tests.credits.conftest import new_account

    new_account(databases, "李娜", id_number(3))
    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    assert sorted(a.name for a in awards(cdb)) == ["吴倩", "李娜"]
    sent = len(granted_events(cdb))
    desk = client_for(credits_app, "reviewer")
    done = desk.post("/credits/accounts/name",
                     data=form(REVIEWER, trainee_key=key(3), name="李纳", reason="核对身份证"), follow_redirects=True)
    assert done.status_code == 200 and "学分证书上的姓名随之更正" in done.get_data(as_text=True)
    assert sorted(a.name for a in awards(cdb)) == ["吴倩", "李纳"]
    assert "李纳" in c.get(f"/credits/awards/{OFFERING}/list").get_data(as_text=True)
    events = granted_events(cdb)
    assert len(events) == sent + 1 and sorted(a["name"] for a in events[-1]["payload"]["awards"]) == ["吴倩", "李纳"]
    s = cdb.new_session()
    try:
        told = sorted((consumer, json.loads(e)["payload"]) for consumer, e in s.execute(
            select(outbox.c.consumer, outbox.c.envelope).where(outbox.c.name == "credits.name_corrected")))
    finally:
        s.close()
    # certs for her certificates, projects for the reports' 考勤导入 (approved ones too), checkin for 签到名单
    assert told == [("certs", {"trainee_key": key(3), "name": "李纳"}),
                    ("checkin", {"trainee_key": key(3), "name": "李纳"}),
                    ("projects", {"trainee_key": key(3), "name": "李纳"})]


def test_an_award_made_after_the_desk_corrected_her_name_carries_the_corrected_one(credits_app, seeded, cdb,
                                                                                  databases):
    """李娜's check-ins carry the misspelt name typed at the scan; the committee corrected her account before the
    office's 授分: the attendees page, the award, the 授分名单 and credits.granted all say 李纳."""
    from tests.credits.conftest import new_account

    new_account(databases, "李娜", id_number(3))
    desk = client_for(credits_app, "reviewer")
    renamed = desk.post("/credits/accounts/name", data=form(REVIEWER, trainee_key=key(3), name="李纳",
                                                             reason="核对身份证"), follow_redirects=True)
    assert renamed.status_code == 200 and "已更正姓名" in renamed.get_data(as_text=True)
    c = client_for(credits_app, "inst_a")
    preview = c.post(f"/credits/awards/{OFFERING}/analysis",
                     data=analysis_form(1, 2, 3, 4, action="preview")).get_data(as_text=True)
    # the preview tells two people of one name apart by the masked ID number
    assert "<td>李纳</td>" in preview and "李娜" not in preview and pii.mask_id(id_number(3)) in preview
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    attendees = c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)
    assert "<td>李纳</td>" in attendees and "李娜" not in attendees
    done = c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    assert done.status_code == 302
    assert sorted(a.name for a in awards(cdb)) == ["吴倩", "李纳"]
    assert "李纳" in c.get(f"/credits/awards/{OFFERING}/list").get_data(as_text=True)
    assert sorted(a["name"] for a in granted_events(cdb)[-1]["payload"]["awards"]) == ["吴倩", "李纳"]


def test_the_desk_answers_i_attended_but_my_credits_do_not_show(credits_app, seeded, cdb, databases):
    """A trainee calls the committee: 学员账号 shows each offering she checked in at, how often, and where her
    credit stands (not yet granted, granted to others but not to her, waiting for the report, effective)."""
    from tests.credits.conftest import new_account

    for serial in (1, 2, 3, 4):
        new_account(databases, NAMES[serial], id_number(serial))
    desk = client_for(credits_app, "reviewer")

    def row(serial):
        page = desk.post("/credits/accounts", data=form(REVIEWER, id_number=id_number(serial)))
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and "签到与授分" in html and id_number(serial) not in html
        return html.split("签到与授分")[1].split("</table>")[0]

    before = row(2)
    assert "2026-01-01-001 心血管急危重症诊治进展 第一期" in before and "西安市第一医院" in before
    # her 签到 and 签退 apart (3 scans read 3 次, as if three 签到)
    assert "签到 2 次、签退 1 次" in before and "未授分：举办机构尚未授分" in before
    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    c.post(f"/credits/awards/{OFFERING}/exclusions", data=form(INST_A, trainee_key=key(1), reason="未完成课后考核"))
    c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    assert "未授分：举办机构已授分，本人不在授分名单中（签到未达到" in row(2)  # missed a window
    assert "已授分 Ⅰ类 10 分，待生效：举办机构尚未提交执行情况反馈" in row(3)
    assert "签到 2 次、签退 2 次（含代签 1 次）" in row(4)
    # the report on its way: the clerk reads her the sentence her 达标情况查询 shows
    from sqlalchemy import update

    from services.credits.offerings.models import OfferingCredit

    s = cdb.new_session()
    s.execute(update(OfferingCredit).where(OfferingCredit.offering_id == OFFERING).values(report_state="submitted"))
    s.commit()
    s.close()
    assert "已授分 Ⅰ类 10 分，待生效：执行情况反馈已提交，待委员会审核" in row(3)
    assert "未授分：举办机构在筛选授分人员时未授予，原因：未完成课后考核" in row(1)  # valid, but unticked


def test_a_check_in_from_another_wechat_account_is_marked_before_grant(credits_app, seeded, cdb):
    """checkin flags a check-in made on a WeChat account bound beside the trainee's own (a new phone, or someone
    scanning for her); 有效人员明细 marks it where it counted, so the office looks before 授分."""
    from sqlalchemy import update

    from services.credits.attendance.models import AttendanceRecord

    s = cdb.new_session()
    s.execute(update(AttendanceRecord).where(AttendanceRecord.trainee_key == key(1), AttendanceRecord.window_id == 3)
              .values(flags=["id_on_new_wechat"]))
    s.commit()
    s.close()
    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    detail = c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)
    mine = detail.split("<td>吴倩</td>")[1].split("</tr>")[0]
    assert mine.count("另一微信号") == 1 and "另一微信号" not in detail.split("<td>李娜</td>")[1].split("</tr>")[0]


def test_granting_again_adds_only_who_is_new(credits_app, seeded, cdb):
    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    assert len(awards(cdb)) == 2
    again = c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    assert again.status_code == 302 and len(awards(cdb)) == 2
    # a new analysis that also counts forced check-ins brings 王芳 in; the two granted are not granted twice
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save", include_forced="1"))
    resp = c.post(f"/credits/api/offerings/{OFFERING}/grant", json={"activity_date": "2026-12-10"},
                  headers=api_headers("inst_a"))
    assert resp.status_code == 200 and resp.json == {"added": 1, "already": 2, "excluded": 0, "withdrawn": 0}
    assert sorted(a.name for a in awards(cdb)) == ["吴倩", "李娜", "王芳"]
    # 王芳 counts through her 代签 in window 1: marked where it counted, in the list and in its export
    detail = c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)
    row = detail.split("<td>王芳</td>")[1].split("</tr>")[0]
    assert row.count("<strong>代签</strong>") == 1 and "代签" not in detail.split("<td>吴倩</td>")[1].split("</tr>")[0]
    listing = c.get(f"/credits/awards/{OFFERING}/list").get_data(as_text=True)
    assert listing.count("含代签 1 次") == 1 and "含代签 1 次" in listing.split("王芳")[1].split("</tr>")[0]
    ws = load_workbook(io.BytesIO(c.get(f"/credits/awards/{OFFERING}/awards.xlsx").data)).active
    marks = {r[1]: r[13] for r in list(ws.iter_rows(min_row=3, values_only=True))[:-1]}  # the last: the totals
    # the window of her 代签 named by its time (these copies came without the window's 标题)
    assert marks == {"吴倩": None, "李娜": None, "王芳": "有（1 次：2026-12-10 08:30 至 09:30（签到））"}
    assert "不在本次考勤分析的有效人员中" not in detail
    # narrowing the analysis after 授分 leaves none of the three granted valid, and the page says so
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(
        1, 2, 3, 4, action="save", include_forced="1", from_1="2026-12-10T08:30", to_1="2026-12-10T08:31"))
    narrowed = c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)
    assert "已授分的 3 人不在本次考勤分析的有效人员中（吴倩、李娜、王芳）" in narrowed
    preview = c.post(f"/credits/awards/{OFFERING}/analysis",
                     data=analysis_form(1, 2, 3, 4, action="preview", include_forced="1")).get_data(as_text=True)
    assert "王芳 <strong>含代签</strong>" in preview and preview.count("<strong>含代签</strong>") == 1
    # every grant announced the whole current list
    last = granted_events(cdb)[-1]["payload"]
    assert last["offering_id"] == OFFERING and sorted(a["name"] for a in last["awards"]) == ["吴倩", "李娜", "王芳"]
    # with each one's 代签, for the report's 考勤导入 (the committee sees them there)
    assert {a["name"]: a["forced"] for a in last["awards"]} == {"吴倩": 0, "李娜": 0, "王芳": 1}


def test_an_attendance_award_withdrawn_by_mistake_can_be_granted_again(credits_app, seeded, cdb):
    """The office withdrew 吴倩's award by mistake: 授分 skips her for good (a withdrawal is a decision it must not
    undo), so her row offers 恢复授分 with a reason, while the saved analysis still finds her valid."""
    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    wu = next(a for a in awards(cdb) if a.name == "吴倩")
    c.post(f"/credits/awards/award/{wu.id}/withdraw", data=form(INST_A, reason="误操作", version=str(wu.version)))
    c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    assert sorted((a.name, a.state) for a in awards(cdb)) == [("吴倩", "withdrawn"), ("李娜", "pending")]
    page = c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)
    row = page.split("<td>吴倩</td>")[1].split("</tr>")[0]
    assert "已撤销" in row and f'/credits/awards/award/{wu.id}/regrant' in row and "恢复授分" in row

    no_reason = c.post(f"/credits/awards/award/{wu.id}/regrant", data=form(INST_A, reason=""))
    assert no_reason.status_code == 422 and len(awards(cdb)) == 2
    assert "恢复原因" in no_reason.get_data(as_text=True)
    # a reason refused as too short comes back in her row's box (it was lost on the redirect)
    short = c.post(f"/credits/awards/award/{wu.id}/regrant", data=form(INST_A, reason="误"))
    text = short.get_data(as_text=True)
    assert short.status_code == 422 and "恢复原因：" in text and len(awards(cdb)) == 2
    row = text.split("<td>吴倩</td>")[1].split("</tr>")[0]
    assert 'value="误" aria-invalid="true"' in row and f"/credits/awards/award/{wu.id}/regrant" in row
    done = c.post(f"/credits/awards/award/{wu.id}/regrant", data=form(INST_A, reason="误撤销，学员全程参加"))
    assert done.status_code == 302
    assert sorted((a.name, a.state, a.method) for a in awards(cdb)) == [
        ("吴倩", "pending", "attendance"), ("吴倩", "withdrawn", "attendance"), ("李娜", "pending", "attendance")]
    [entry] = audit(cdb, "regrant")
    assert "吴倩：误撤销，学员全程参加" in entry.reason
    assert sorted(a["name"] for a in granted_events(cdb)[-1]["payload"]["awards"]) == ["吴倩", "李娜"]
    again = c.post(f"/credits/awards/award/{wu.id}/regrant", data=form(INST_A, reason="再次恢复"))
    assert again.status_code == 409 and "无需恢复" in again.get_data(as_text=True)
    assert len(awards(cdb)) == 3

    # one the saved analysis no longer finds valid is not granted back
    li = next(a for a in awards(cdb) if a.name == "李娜")
    c.post(f"/credits/awards/award/{li.id}/withdraw", data=form(INST_A, reason="核对有误", version=str(li.version)))
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(
        1, 2, 3, 4, action="save", from_1="2026-12-10T08:30", to_1="2026-12-10T09:00"))
    refused = c.post(f"/credits/awards/award/{li.id}/regrant", data=form(INST_A, reason="恢复"))
    assert "不是有效人员" in refused.get_data(as_text=True)
    assert [a.state for a in awards(cdb) if a.name == "李娜"] == ["withdrawn"]


def test_a_wrong_activity_date_is_corrected_and_the_counts_add_up(credits_app, seeded, cdb):
    """The office's walk: 授分 on the first day instead of the last; withdrawing one to grant again said 新授分 0,
    此前已授分 5 against a list of 4 granted and 1 withdrawn, with the button still offering 0 people, and 恢复授分
    brought the wrong day back. The day is now asked about, 更正活动日期 mends every pending award, and the counts
    say what became of whom."""
    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    page = c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)
    assert "不是活动的最后一天" in page and "请选择活动的最后一天（2026-12-11" in page
    c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-10"))
    wu = next(a for a in awards(cdb) if a.name == "吴倩")
    c.post(f"/credits/awards/award/{wu.id}/withdraw", data=form(INST_A, reason="活动日期选错", version=str(wu.version)))
    again = c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    said = c.get(again.headers["Location"]).get_data(as_text=True)
    assert "新授分 0 人；此前已授分 1 人；排除 0 人；已撤销 1 人" in said and "恢复授分" in said
    attendees = c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)
    assert '<button type="submit" disabled>授分</button>' in attendees and "没有待授分人员" in attendees

    listing = c.get(f"/credits/awards/{OFFERING}/list").get_data(as_text=True)
    assert "更正活动日期" in listing and "共 2 条（其中已撤销 1 条，当前授分 1 人）" in listing
    sent = len(granted_events(cdb))
    for bad, said in (({"activity_date": "2026-12-12", "reason": "选错"}, "活动日期"),
                      ({"activity_date": "2026-12-11", "reason": ""}, "请填写更正原因")):
        r = c.post(f"/credits/awards/{OFFERING}/activity-date", data=form(INST_A, **bad))
        assert r.status_code == 422 and said in r.get_data(as_text=True), bad
        # what was typed is still in the form, to mend
        fix = r.get_data(as_text=True).split('action="/credits/awards/101/activity-date"')[1].split("</form>")[0]
        assert f'value="{bad["activity_date"]}"' in fix and f'value="{bad["reason"]}"' in fix, bad
    done = c.post(f"/credits/awards/{OFFERING}/activity-date",
                  data=form(INST_A, activity_date="2026-12-11", reason="应为活动最后一天"))
    told = c.get(done.headers["Location"]).get_data(as_text=True)
    assert "已将 1 条待生效授分记录的活动日期更正为 2026-12-11" in told
    assert {(a.name, a.state, str(a.activity_date)) for a in awards(cdb)} == {
        ("吴倩", "withdrawn", "2026-12-10"), ("李娜", "pending", "2026-12-11")}
    assert "应为活动最后一天" in audit(cdb, "activity_date")[0].reason
    assert len(granted_events(cdb)) == sent + 1  # the report's 导入 shows the new day
    assert {str(a["activity_date"]) for a in granted_events(cdb)[-1]["payload"]["awards"]} == {"2026-12-11"}
    nothing = c.post(f"/credits/awards/{OFFERING}/activity-date",
                     data=form(INST_A, activity_date="2026-12-11", reason="再次"))
    assert nothing.status_code == 409 and "无需更正" in nothing.get_data(as_text=True)
    # 恢复授分 then gives 吴倩 her award back on the corrected day the others now carry, not her withdrawn one's
    c.post(f"/credits/awards/award/{wu.id}/regrant", data=form(INST_A, reason="误撤销"))
    assert {(a.name, str(a.activity_date)) for a in awards(cdb) if a.state == "pending"} == {
        ("吴倩", "2026-12-11"), ("李娜", "2026-12-11")}


def test_a_window_edited_after_the_analysis_is_named_on_the_attendees_page(credits_app, seeded, cdb):
    """The office's walk: a 刷卡周期 narrowed after 考勤分析 left the saved analysis counting scans outside it, with
    no word; the page now names the window and asks for a new analysis."""
    from services.credits.awards.services import windows_of

    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    assert "时间在本次考勤分析之后修改过" not in c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)
    s = cdb.new_session()
    [w1] = [w for w in windows_of(s, OFFERING) if w.window_id == 1]
    s.close()
    assert deliver(make_envelope("checkin.window_changed", "checkin", {
        "activity_id": ACTIVITY, "offering_id": OFFERING, "window_id": 1, "window_kind": "sign_in",
        "window_starts_at": w1.starts_at + dt.timedelta(minutes=10), "window_ends_at": w1.ends_at})) is True
    page = c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)
    assert "时间在本次考勤分析之后修改过" in page and "12-10 08:40" in page.split("修改过")[0]
    # a new analysis takes the window's new times and the warning goes
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    assert "时间在本次考勤分析之后修改过" not in c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)


def test_granting_before_the_last_day_is_said_and_asked_again(credits_app, seeded, cdb):
    """授分 on the first evening of a two-day offering: the analysis knew only the first day's windows, so under
    全部刷卡周期 someone who came on day one only got the credit, with no word. The 授分 section says the activity
    has not ended and the button asks once more; from its last day on, nothing is said."""
    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    clock.set_now(dt.datetime(2026, 12, 10, 12, 0, tzinfo=UTC))  # 20:00 in Shanghai on the first day
    page = c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)
    assert 'id="not-ended"' in page and "活动尚未结束（最后一天 2026-12-11）" in page
    assert "确定现在授分吗" in page.split('action="/credits/awards/')[-1].split(">")[0]
    clock.set_now(dt.datetime(2026, 12, 10, 16, 30, tzinfo=UTC))  # 00:30 on the last day, Shanghai time
    page = c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)
    assert "活动尚未结束" not in page and "确定现在授分吗" not in page


def test_grant_needs_a_saved_analysis_and_a_date_in_the_offering(credits_app, seeded, cdb):
    h = api_headers("inst_a")
    c = credits_app.test_client()
    none = c.post(f"/credits/api/offerings/{OFFERING}/grant", json={"activity_date": "2026-12-11"}, headers=h)
    assert none.status_code == 409 and "请先完成考勤分析" in none.json["error"]["message"]
    c.post(f"/credits/api/offerings/{OFFERING}/analyses", json={"windows": [{"window_id": 1}]}, headers=h)
    late = c.post(f"/credits/api/offerings/{OFFERING}/grant", json={"activity_date": "2026-12-20"}, headers=h)
    assert late.status_code == 422 and "活动日期" in late.json["error"]["message"]
    bad = c.post(f"/credits/api/offerings/{OFFERING}/grant", json={"activity_date": "12/11"}, headers=h)
    assert bad.status_code == 422 and "日期格式不正确" in json.dumps(bad.json, ensure_ascii=False)
    assert awards(cdb) == []


def test_analysis_input_is_checked(credits_app, seeded):
    h, c = api_headers("inst_a"), credits_app.test_client()
    url = f"/credits/api/offerings/{OFFERING}/analysis/preview"

    def msg(body):
        resp = c.post(url, json=body, headers=h)
        assert resp.status_code == 422, resp.json
        return json.dumps(resp.json, ensure_ascii=False)

    assert "请至少勾选一个刷卡周期" in msg({"windows": []}) and "长度" not in msg({"windows": []})
    assert "不属于本活动" in msg({"windows": [{"window_id": 99}]})
    assert "不属于本活动" in msg({"windows": [{"window_id": 0}]}) and "2147483647" not in msg(
        {"windows": [{"window_id": 0}]})
    wider = {"windows": [{"window_id": 1, "from_ts": "2026-12-10T08:00", "to_ts": "2026-12-10T09:30"}]}
    assert "只能在周期的开始与结束时间之内" in msg(wider)
    assert "不能多于所选刷卡周期数" in msg({"windows": [{"window_id": 1}], "rule_mode": "at_least", "rule_n": 2})
    assert "请填写至少需要签到的刷卡周期数" in msg({"windows": [{"window_id": 1}], "rule_mode": "at_least"})
    assert "不允许的字段" in msg({"windows": [{"window_id": 1}], "admin": True})
    tampered = msg({"windows": [{"window_id": 1}], "rule_mode": "most"})
    assert "须在全部所选刷卡周期内签到" in tampered and "at_least" not in tampered  # the choices as the page says them
    ok = c.post(url, json={"windows": [{"window_id": 1}, {"window_id": 2}], "pairs_required": True}, headers=h)
    assert ok.status_code == 200 and "签到与签退须成对" in ok.json["rule"]
    assert sorted(a["name"] for a in ok.json["attendees"]) == ["吴倩", "张伟", "李娜"]
    # the page keeps what was typed and says what is wrong
    page = client_for(credits_app, "inst_a").post(
        f"/credits/awards/{OFFERING}/analysis",
        data=analysis_form(1, action="save", rule_mode="at_least", rule_n="3"))
    assert page.status_code == 422 and "不能多于所选刷卡周期数" in page.get_data(as_text=True)


def test_manual_entry_is_marked_invalid_everywhere(credits_app, seeded, cdb):
    c = client_for(credits_app, "inst_a")
    page = c.get(f"/credits/awards/{OFFERING}/manual").get_data(as_text=True)
    assert "手工录入学分为非有效学分" in page
    person = {"name": "赵磊", "id_number": id_number(8), "mobile": "13900000008", "title": "主治医师",
              "unit": "西安市第一医院", "activity_date": "2026-12-11"}
    unconfirmed = c.post(f"/credits/awards/{OFFERING}/manual", data=form(INST_A, **person))
    assert unconfirmed.status_code == 422 and "非有效学分" in unconfirmed.get_data(as_text=True)
    assert 'value="赵磊"' in unconfirmed.get_data(as_text=True)  # nothing typed is lost
    wrong_id = c.post(f"/credits/awards/{OFFERING}/manual",
                      data=form(INST_A, **{**person, "id_number": "610102199001011234"}, confirm_invalid="1"))
    assert wrong_id.status_code == 422 and "校验位" in wrong_id.get_data(as_text=True)
    ok = c.post(f"/credits/awards/{OFFERING}/manual", data=form(INST_A, **person, confirm_invalid="1"))
    assert ok.status_code == 302
    [award] = awards(cdb)
    assert (award.method, award.state, award.name) == ("manual", "pending", "赵磊")
    listing = c.get(f"/credits/awards/{OFFERING}/list").get_data(as_text=True)
    assert "手工录入学分" in listing and "非有效学分" in listing
    api = credits_app.test_client().get(f"/credits/api/offerings/{OFFERING}/awards", headers=api_headers("inst_a"))
    assert api.json["items"][0]["valid_credit"] is False and api.json["items"][0]["method"] == "manual"
    twice = c.post(f"/credits/awards/{OFFERING}/manual", data=form(INST_A, **person, confirm_invalid="1"))
    assert twice.status_code == 409 and "已有授分记录" in twice.get_data(as_text=True)
    assert len(awards(cdb)) == 1
    # the trainee gets an account on first sight here too
    from services.credits.accounts.models import TraineeAccount
    s = cdb.new_session()
    assert s.scalar(select(TraineeAccount.name).where(TraineeAccount.trainee_key == key(8))) == "赵磊"
    s.close()
    # the database refuses a manual award made effective
    from sqlalchemy.exc import IntegrityError

    from services.credits.awards.models import CreditAward
    s = cdb.new_session()
    row = s.get(CreditAward, award.id)
    row.state, row.effective_at = "effective", clock.now()
    with pytest.raises(IntegrityError):
        s.commit()
    s.close()


def test_a_manual_entry_never_moves_a_trainee_s_login(credits_app, seeded, cdb, databases):
    """An institution's 手工录入 typing another name and mobile for a doctor who has an account leaves the account
    as it was: the mobile on record is where a password reset's code goes (typed over, the institution could
    reset the doctor's password and read her records)."""
    from services.credits.accounts.models import TraineeAccount
    from tests.credits.conftest import new_account

    new_account(databases, name="吴倩", id_number=id_number(1), mobile="13900000001", password="Wuqian2026x")
    c = client_for(credits_app, "inst_a")
    person = {"name": "吴倩倩", "id_number": id_number(1), "mobile": "13700000007", "title": "主治医师",
              "unit": "西安市第一医院", "activity_date": "2026-12-11"}
    other_name = c.post(f"/credits/awards/{OFFERING}/manual", data=form(INST_A, **person, confirm_invalid="1"))
    assert other_name.status_code == 422 and "姓名不一致" in other_name.get_data(as_text=True)
    assert awards(cdb) == []
    person["name"] = "吴倩"  # her name, another mobile: entered, and the mobile on record stays hers
    assert c.post(f"/credits/awards/{OFFERING}/manual", data=form(INST_A, **person, confirm_invalid="1")) \
        .status_code == 302
    s = cdb.new_session()
    account = s.scalars(select(TraineeAccount).where(TraineeAccount.trainee_key == key(1))).one()
    assert account.name == "吴倩" and pii.decrypt(account.mobile_enc) == "13900000001"
    s.close()
    forgot = credits_app.test_client().post("/credits/api/auth/forgot", json={"id_number": id_number(1)})
    assert forgot.status_code == 200 and forgot.json["mobile_masked"] == "139****0001"


def test_a_withdrawn_manual_entry_no_longer_blocks_valid_credit(credits_app, seeded, cdb):
    """吴倩 was entered by hand (非有效学分) before the analysis showed her valid; 授分 skips her while that award
    stands, and grants her once it is withdrawn: the withdrawn row stays as history beside the new award."""
    c = client_for(credits_app, "inst_a")
    person = {"name": "吴倩", "id_number": id_number(1), "mobile": "13800000001", "title": "主治医师",
              "unit": "西安市第一医院", "activity_date": "2026-12-11"}
    assert c.post(f"/credits/awards/{OFFERING}/manual", data=form(INST_A, **person, confirm_invalid="1")) \
        .status_code == 302
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    mine = [a for a in awards(cdb) if a.name == "吴倩"]
    assert [(a.method, a.state) for a in mine] == [("manual", "pending")]  # 授分 skipped her: she had an award
    (manual,) = mine
    r = c.post(f"/credits/awards/award/{manual.id}/withdraw", data=form(INST_A, reason="有考勤记录，改为按考勤授分",
                                                                         version="1"))
    assert r.status_code == 302
    from services.credits.awards.services import attendee_rows, latest_analysis
    from services.credits.offerings.models import OfferingCredit

    s = cdb.new_session()
    offering = s.scalars(select(OfferingCredit).where(OfferingCredit.offering_id == OFFERING)).one()
    status = {r.name: r.status for r in attendee_rows(s, offering, latest_analysis(s, OFFERING))}
    s.close()
    assert status["吴倩"] == "to_grant"  # 有效人员明细 shows her as waiting for 授分 again
    c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    rows = [(a.method, a.state) for a in awards(cdb) if a.name == "吴倩"]
    assert rows == [("manual", "withdrawn"), ("attendance", "pending")], rows
    api = credits_app.test_client().get(f"/credits/api/offerings/{OFFERING}/awards", headers=api_headers("inst_a"))
    current = [a for a in api.json["items"] if a["state"] != "withdrawn" and a["name"] == "吴倩"]
    assert [(a["method"], a["valid_credit"]) for a in current] == [("attendance", True)]
    # and a third award for her is still refused: one current award per trainee and offering
    again = c.post(f"/credits/awards/{OFFERING}/manual", data=form(INST_A, **person, confirm_invalid="1"))
    assert again.status_code == 409


def test_withdraw_with_a_reason(credits_app, seeded, cdb):
    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    first = awards(cdb)[0]
    no_reason = c.post(f"/credits/awards/award/{first.id}/withdraw", data=form(INST_A, reason=" ", version="1"))
    assert no_reason.status_code == 422 and awards(cdb)[0].state == "pending"
    assert "撤销原因：" in no_reason.get_data(as_text=True)
    for tampered in ("0", "abc", ""):  # a hand-edited page: said as a stale page, not as a missing reason
        r = c.post(f"/credits/awards/award/{first.id}/withdraw",
                   data=form(INST_A, reason="身份核对有误", version=tampered))
        page = r.get_data(as_text=True)
        assert awards(cdb)[0].state == "pending" and "页面已过期" in page and "请填写撤销原因" not in page, tampered
        # the reason written out stays in that row's form, which now carries the row's current version
        row = page.split(f'action="/credits/awards/award/{first.id}/withdraw"')[1].split("</form>")[0]
        assert 'value="身份核对有误"' in row and 'name="version" value="1"' in row, tampered
    c.post(f"/credits/awards/award/{first.id}/withdraw", data=form(INST_A, reason="身份核对有误", version="1"))
    row = awards(cdb)[0]
    assert (row.state, row.withdraw_reason) == ("withdrawn", "身份核对有误")
    [entry] = audit(cdb, "withdraw")
    assert (entry.from_state, entry.to_state, entry.object_id) == ("pending", "withdrawn", first.id)
    again = credits_app.test_client().post(f"/credits/api/awards/{first.id}/withdraw", json={"reason": "再次撤销"},
                                           headers=api_headers("inst_a"))
    assert again.status_code == 409 and "已撤销" in again.json["error"]["message"]
    # the announced list no longer has the withdrawn award; granting again does not bring it back
    assert [a["name"] for a in granted_events(cdb)[-1]["payload"]["awards"]] == [awards(cdb)[1].name]
    c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    assert [a.state for a in awards(cdb)] == ["withdrawn", "pending"]
    listing = c.get(f"/credits/awards/{OFFERING}/list").get_data(as_text=True)
    assert "已撤销" in listing and "身份核对有误" in listing


def test_award_list_exports_to_excel_with_masked_ids(credits_app, seeded, cdb):
    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    resp = c.get(f"/credits/awards/{OFFERING}/awards.xlsx")
    assert resp.status_code == 200
    assert quote("授分名单-2026-01-01-001-第一期.xlsx") in resp.headers["Content-Disposition"]
    ws = load_workbook(io.BytesIO(resp.data)).active
    values = [[c.value for c in row] for row in ws.iter_rows()]
    assert values[0][0] == "2026-01-01-001 心血管急危重症诊治进展 第一期（2026-12-10 至 2026-12-11）"
    assert values[1][:3] == ["序号", "姓名", "身份证号码"]
    assert ws.freeze_panes == "A3" and ws.column_dimensions["C"].width >= 20  # an 18-character ID shows whole
    names = {r[1]: r for r in values[2:-1]}
    assert set(names) == {"吴倩", "李娜"}
    assert names["吴倩"][2] == pii.mask_id(id_number(1)) and names["吴倩"][9] == "是"
    # withdrawn is no valid credit, and the last row counts what the page counts
    wu = next(a for a in awards(cdb) if a.name == "吴倩")
    c.post(f"/credits/awards/award/{wu.id}/withdraw", data=form(INST_A, reason="核对有误", version=str(wu.version)))
    values = [[c.value for c in row] for row in load_workbook(io.BytesIO(
        c.get(f"/credits/awards/{OFFERING}/awards.xlsx").data)).active.iter_rows()]
    assert {r[1]: r[9] for r in values[2:-1]} == {"吴倩": "否（已撤销）", "李娜": "是"}
    assert values[-1][0] == "合计：有效学分 1 人；手工录入（非有效学分）0 人；已撤销 1 条"


def test_projects_keeps_the_latest_award_list(databases, seeded, credits_app, cdb):
    from services.projects.awarded.models import AwardedList, AwardedTrainee
    from services.projects.worker import handle_event

    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    clock.set_now(clock.now() + dt.timedelta(minutes=5))
    one = awards(cdb)[0]
    c.post(f"/credits/awards/award/{one.id}/withdraw",
           data=form(INST_A, reason="身份核对有误", version=str(one.version)))
    first, second = granted_events(cdb)
    assert handle_event.run(second) is True
    assert handle_event.run(first) is True  # an older list arriving late is recorded as processed, not applied
    assert handle_event.run(second) is False  # redelivery changes nothing
    s = databases["projects"].new_session()
    [lst] = s.scalars(select(AwardedList)).all()
    names = s.scalars(select(AwardedTrainee.name).where(AwardedTrainee.list_id == lst.id)).all()
    assert (lst.offering_id, lst.count, names) == (OFFERING, 1, [awards(cdb)[1].name])
    s.close()


# ---- who may do what -----------------------------------------------------------------------------

K = "{key}"
ENDPOINTS = {
    # rule: (method, url, body, kind) — kind "read" lets the committee look; "write" is the institution's only
    "GET /credits/awards": ("GET", "/credits/awards", None, "list"),
    "GET /credits/awards/<int:offering_id>": ("GET", f"/credits/awards/{OFFERING}", None, "read"),
    "GET /credits/awards/<int:offering_id>/analysis": ("GET", f"/credits/awards/{OFFERING}/analysis", None, "read"),
    "POST /credits/awards/<int:offering_id>/analysis": (
        "POST", f"/credits/awards/{OFFERING}/analysis", {"window": "1", "action": "preview"}, "write"),
    "GET /credits/awards/<int:offering_id>/attendees": (
        "GET", f"/credits/awards/{OFFERING}/attendees", None, "read_redirect"),
    "POST /credits/awards/<int:offering_id>/exclusions": (
        "POST", f"/credits/awards/{OFFERING}/exclusions", {"trainee_key": K, "reason": "中途离场"}, "write_redirect"),
    "POST /credits/awards/<int:offering_id>/exclusions/include": (
        "POST", f"/credits/awards/{OFFERING}/exclusions/include", {"trainee_key": K}, "write_redirect"),
    "POST /credits/awards/<int:offering_id>/grant": (
        "POST", f"/credits/awards/{OFFERING}/grant", {"activity_date": "2026-12-11"}, "write_redirect"),
    "GET /credits/awards/<int:offering_id>/list": ("GET", f"/credits/awards/{OFFERING}/list", None, "read"),
    "GET /credits/awards/<int:offering_id>/awards.xlsx": (
        "GET", f"/credits/awards/{OFFERING}/awards.xlsx", None, "read"),
    "POST /credits/awards/award/<int:award_id>/withdraw": (
        "POST", "/credits/awards/award/999/withdraw", {"reason": "核对有误"}, "both_missing"),
    "POST /credits/awards/<int:offering_id>/activity-date": (
        "POST", f"/credits/awards/{OFFERING}/activity-date", {"activity_date": "2026-12-11", "reason": "选错日期"},
        "write_conflict"),  # nothing granted yet: said on the list, with what was typed
    "POST /credits/awards/award/<int:award_id>/regrant": (
        "POST", "/credits/awards/award/999/regrant", {"reason": "误撤销"}, "write_missing"),
    "GET /credits/awards/<int:offering_id>/manual": ("GET", f"/credits/awards/{OFFERING}/manual", None, "write"),
    "POST /credits/awards/<int:offering_id>/manual": (
        "POST", f"/credits/awards/{OFFERING}/manual", {"name": "赵磊"}, "write_invalid"),
    "GET /credits/api/grant/offerings": ("GET", "/credits/api/grant/offerings", None, "list"),
    "GET /credits/api/offerings/<int:offering_id>/windows": (
        "GET", f"/credits/api/offerings/{OFFERING}/windows", None, "read"),
    "POST /credits/api/offerings/<int:offering_id>/analysis/preview": (
        "POST", f"/credits/api/offerings/{OFFERING}/analysis/preview", {"windows": [{"window_id": 1}]}, "write"),
    "POST /credits/api/offerings/<int:offering_id>/analyses": (
        "POST", f"/credits/api/offerings/{OFFERING}/analyses", {"windows": [{"window_id": 1}]}, "write_created"),
    "GET /credits/api/offerings/<int:offering_id>/attendees": (
        "GET", f"/credits/api/offerings/{OFFERING}/attendees", None, "read_conflict"),
    "POST /credits/api/offerings/<int:offering_id>/exclusions": (
        "POST", f"/credits/api/offerings/{OFFERING}/exclusions", {"trainee_key": K, "reason": "中途离场"}, "write"),
    "POST /credits/api/offerings/<int:offering_id>/exclusions/include": (
        "POST", f"/credits/api/offerings/{OFFERING}/exclusions/include", {"trainee_key": K}, "write_missing"),
    "POST /credits/api/offerings/<int:offering_id>/grant": (
        "POST", f"/credits/api/offerings/{OFFERING}/grant", {"activity_date": "2026-12-11"}, "write_conflict"),
    "POST /credits/api/offerings/<int:offering_id>/manual-awards": (
        "POST", f"/credits/api/offerings/{OFFERING}/manual-awards", {"name": "赵磊"}, "write_invalid"),
    "GET /credits/api/offerings/<int:offering_id>/awards": (
        "GET", f"/credits/api/offerings/{OFFERING}/awards", None, "read"),
    "POST /credits/api/awards/<int:award_id>/withdraw": (
        "POST", "/credits/api/awards/999/withdraw", {"reason": "核对有误"}, "both_missing"),
    # 恢复 of an effective award withdrawn by mistake: the committee's only
    "POST /credits/awards/award/<int:award_id>/restore": (
        "POST", "/credits/awards/award/999/restore", {"reason": "误撤销"}, "committee_missing"),
    "POST /credits/api/awards/<int:award_id>/restore": (
        "POST", "/credits/api/awards/999/restore", {"reason": "误撤销"}, "committee_missing"),
}
OWNER_STATUS = {"list": 200, "read": 200, "read_redirect": 302, "read_conflict": 409, "write": 200,
                "write_redirect": 302, "write_missing": 404, "write_created": 201, "write_invalid": 422,
                "write_conflict": 409, "both_missing": 404, "committee_missing": 404}


def expected(kind: str, who: str, api: bool) -> int:
    owner = OWNER_STATUS[kind]
    if who == "anonymous":
        return 401 if api else 302  # pages send a browser to the login page
    if who == "trainee":
        return 403
    if kind.startswith("committee"):  # an institution is refused before any award is looked up
        return owner if who == "reviewer" else 403
    if who == "inst_b":
        return 200 if kind == "list" else 404  # another institution's offering is "not found"
    if who == "reviewer":  # the committee looks at everything; of the changes it may only withdraw
        return owner if kind.startswith(("list", "read", "both")) else 403
    return owner


@pytest.mark.parametrize("rule", sorted(ENDPOINTS))
@pytest.mark.parametrize("who", sorted(WHO))
def test_permissions(credits_app, seeded, rule, who):
    method, url, body, kind = ENDPOINTS[rule]
    api = url.startswith("/credits/api/")
    principal = WHO[who]
    if body is not None:
        body = {k: (key(1) if v == K else v) for k, v in body.items()}
    if api:
        headers = api_headers(who) if principal else {}
        resp = credits_app.test_client().open(url, method=method, json=body, headers=headers)
    else:
        c = client_for(credits_app, who)
        data = {**(body or {}), "csrf_token": csrf_for(principal)} if method == "POST" else None
        resp = c.open(url, method=method, data=data)
    want = expected(kind, who, api)
    if who == "anonymous" and not api and method == "POST":
        want = 401  # a form post without a session is refused, not redirected
    assert resp.status_code == want, (rule, who, resp.status_code, resp.get_data(as_text=True)[:300])


def test_committee_sees_every_institution_and_institutions_only_their_own(credits_app, seeded):
    deliver(make_envelope("offering.approved", "projects", payload(offering_id=202, institution_id=2,
                                                                   institution_name="宝鸡市中心医院")))
    a = credits_app.test_client().get("/credits/api/grant/offerings", headers=api_headers("inst_a")).json
    b = credits_app.test_client().get("/credits/api/grant/offerings", headers=api_headers("inst_b")).json
    r = credits_app.test_client().get("/credits/api/grant/offerings", headers=api_headers("reviewer")).json
    assert [i["offering_id"] for i in a["items"]] == [OFFERING]
    assert [i["offering_id"] for i in b["items"]] == [202]
    assert sorted(i["offering_id"] for i in r["items"]) == [OFFERING, 202]
    # the committee finds an institution's offerings by its name (the clerk's search for 西安交通 found nothing)
    found = credits_app.test_client().get("/credits/api/grant/offerings?q=宝鸡市", headers=api_headers("reviewer")).json
    assert [i["offering_id"] for i in found["items"]] == [202]
    assert INST_B and REVIEWER and TRAINEE  # the principals the permission table uses


def test_digits_that_are_not_ascii_or_too_large_are_refused_never_a_500(credits_app, seeded, cdb):
    """The 500-hunt: '²'.isdigit() is true and int('²') fails; a 20-digit id overflowed the database."""
    c = client_for(credits_app, "inst_a")
    for bad in ("²", "99999999999999999999", "٣"):
        r = c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, action="preview") | {"window": bad})
        assert r.status_code == 422 and "所选刷卡周期不正确" in r.get_data(as_text=True), (bad, r.status_code)
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    for page in ("²", "99999999999999999999", "-1", "abc"):
        r = c.get(f"/credits/awards/{OFFERING}/attendees?page={page}")
        assert r.status_code == 200 and "第 1 /" in r.get_data(as_text=True), (page, r.status_code)


def test_the_analysis_names_who_checked_in_but_falls_short_of_the_rule(credits_app, seeded, cdb):
    """The office's walk: the preview and 有效人员明细 listed only the valid, so "why did 张伟 get no credit?" had no
    answer on any page. Both now list who checked in within the ranges but meets too few windows, with how many."""
    c = client_for(credits_app, "inst_a")
    preview = c.post(f"/credits/awards/{OFFERING}/analysis",
                     data=analysis_form(1, 2, 3, 4, action="preview")).get_data(as_text=True)
    short = preview.split('id="short"')[1].split("</details>")[0]
    assert "未达到规则的签到人员 2 人" in short and "代签（强制签到）记录不计入" in short
    assert "<td>张伟</td><td>6101**********1237</td><td>3 / 4</td>" in short and "<td>王芳</td>" in short
    assert "吴倩" not in short and "李娜" not in short  # the valid are not repeated
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    attendees = c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)
    assert "<td>张伟</td><td>6101**********1237</td><td>3 / 4</td>" in attendees.split('id="short"')[1]
    # with at least 3 of 4 windows everyone is valid: no such list
    c.post(f"/credits/awards/{OFFERING}/analysis",
           data=analysis_form(1, 2, 3, 4, action="save", rule_mode="at_least", rule_n="3"))
    assert 'id="short"' not in c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)


def test_correcting_the_day_with_no_pending_award_says_so(credits_app, seeded, cdb):
    c = client_for(credits_app, "inst_a")
    r = c.post(f"/credits/awards/{OFFERING}/activity-date", data=form(INST_A, activity_date="2026-12-11",
                                                                      reason="选错日期"))
    assert r.status_code == 409 and "本期次没有待生效的授分记录" in r.get_data(as_text=True)


def test_half_credits_read_as_the_catalogue_gives_them_on_every_award_page(credits_app, cdb, seeded):
    """A 0.5-credit offering: the office reads "Ⅱ类 0.5 分", as the trainee's 达标情况查询 says it, never "0.50"."""
    deliver(make_envelope("offering.approved", "projects", payload(credit_class="Ⅱ类", credit_value="0.5")))
    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    pages = {"list": c.get("/credits/awards"), "analysis": c.get(f"/credits/awards/{OFFERING}/analysis"),
             "attendees": c.get(f"/credits/awards/{OFFERING}/attendees")}
    c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    pages["awards"] = c.get(f"/credits/awards/{OFFERING}/list")
    for name, page in pages.items():
        text = page.get_data(as_text=True)
        assert page.status_code == 200 and "Ⅱ类 0.5 分" in text and "0.50" not in text, name


def test_a_day_corrected_across_new_year_moves_the_credit_to_that_year(credits_app, cdb, seeded, databases):
    """An offering over New Year granted on its last day, 1 January, then 更正活动日期 to 31 December: the trainee's
    达标情况查询 counts the credit in the year of the day her award now shows, not in the year of the mistaken one."""
    from tests.conftest import bearer
    from tests.credits.conftest import new_account

    deliver(make_envelope("offering.approved", "projects",
                          payload(starts_on=dt.date(2026, 12, 10), ends_on=dt.date(2027, 1, 1))))
    trainee = new_account(databases, NAMES[1], id_number(1), "Neues2026pw")
    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2027-01-01"))
    c.post(f"/credits/awards/{OFFERING}/activity-date",
           data=form(INST_A, activity_date="2026-12-31", reason="应记入2026年度"))
    assert {(str(a.activity_date), a.year) for a in awards(cdb)} == {("2026-12-31", 2026)}
    years = credits_app.test_client().get("/credits/api/me/compliance", headers=bearer(trainee)).json["years"]
    pending = {y["year"]: y["pending"]["total"] for y in years}
    assert pending[2026] == "10.00" and pending.get(2027, "0.00") == "0.00"


def test_who_falls_short_is_told_apart_by_masked_id_and_named_as_on_the_account(credits_app, seeded, cdb, databases):
    """Hundreds in a hall: two 张伟 fall short, and the office must know which one asks "why no credit?"; a name the
    committee corrected (更正姓名) reads as the valid list reads it."""
    from services.credits.attendance.models import AttendanceRecord
    from tests.credits.conftest import new_account

    other = dict(seeded[0], checkin_id=900, trainee_key=key(5), name="张伟", id_enc=pii.encrypt(id_number(5)))
    s = cdb.new_session()
    s.execute(insert(AttendanceRecord), [other])
    s.commit()
    s.close()
    new_account(databases, "王芳芳", id_number(4))  # her account, corrected at the desk after her scans
    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    pages = {"preview": c.post(f"/credits/awards/{OFFERING}/analysis",
                               data=analysis_form(1, 2, 3, 4, action="preview")),
             "attendees": c.get(f"/credits/awards/{OFFERING}/attendees")}
    for which, page in pages.items():
        short = page.get_data(as_text=True).split('id="short"')[1].split("</details>")[0]
        assert "未达到规则的签到人员 3 人" in short, which
        assert f"<td>张伟</td><td>{pii.mask_id(id_number(2))}</td><td>3 / 4</td>" in short, which
        assert f"<td>张伟</td><td>{pii.mask_id(id_number(5))}</td><td>1 / 4</td>" in short, which
        assert f"<td>王芳芳</td><td>{pii.mask_id(id_number(4))}</td><td>3 / 4</td>" in short, which
        assert id_number(2) not in short and id_number(5) not in short


def test_after_untick_or_restore_the_office_stays_on_its_page_of_the_list(credits_app, seeded, cdb, monkeypatch):
    """Hundreds of valid attendees over several pages: 不授分 or 恢复授分 on page 2 (or in a search) came back to
    page 1 of the whole list, and the office had to find its place again after every person."""
    from services.credits.awards import views

    monkeypatch.setattr(views, "ATTENDEES_PER_PAGE", 2)
    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis",
           data=analysis_form(1, 2, 3, 4, action="save", rule_mode="at_least", rule_n="3"))
    page2 = c.get(f"/credits/awards/{OFFERING}/attendees?page=2").get_data(as_text=True)
    assert "第 2 / 2 页" in page2
    keys = re.findall(r'name="trainee_key" value="([0-9a-f]{64})"', page2)
    done = c.post(f"/credits/awards/{OFFERING}/exclusions",
                  data=form(INST_A, trainee_key=keys[0], reason="中途离场", q="", page="2"))
    assert "第 2 / 2 页" in c.get(done.headers["Location"]).get_data(as_text=True)
    back = c.post(f"/credits/awards/{OFFERING}/exclusions/include",
                  data=form(INST_A, trainee_key=keys[0], q="", page="2"))
    assert "第 2 / 2 页" in c.get(back.headers["Location"]).get_data(as_text=True)
    # a search is kept too
    found = c.post(f"/credits/awards/{OFFERING}/exclusions",
                   data=form(INST_A, trainee_key=key(2), reason="中途离场", q="张", page="1"))
    text = c.get(found.headers["Location"]).get_data(as_text=True)
    assert 'name="q" value="张"' in text and "吴倩" not in text.split("筛选授分人员")[1].split("未达到规则")[0]


def test_a_late_forced_check_in_is_counted_and_the_saved_count_says_when_it_was_made(credits_app, seeded, cdb):
    """代签 typed the next morning reach credits after the analysis was saved: 有效人员明细 and 授分 count them under
    the saved rule, and the analysis page's saved count says it is the count of its 确定, not of now."""
    from services.credits.attendance.models import AttendanceRecord

    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save", include_forced="1"))
    late = dict(seeded[0], checkin_id=901, trainee_key=key(2), name=NAMES[2], id_enc=pii.encrypt(id_number(2)),
                window_id=4, window_kind="sign_out", window_starts_at=WINDOWS[4][1],
                window_ends_at=WINDOWS[4][1] + dt.timedelta(hours=1),
                scanned_at=WINDOWS[4][1] + dt.timedelta(hours=1), forced=True)
    s = cdb.new_session()
    s.execute(insert(AttendanceRecord), [late])
    s.commit()
    s.close()
    analysis = c.get(f"/credits/awards/{OFFERING}/analysis").get_data(as_text=True)
    assert "确定时有效人员 3 人" in analysis and "授分时按最新的考勤记录重新计算" in analysis
    assert "有效人员 <strong>4</strong> 人" in c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)
    c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    assert sorted(a.name for a in awards(cdb)) == ["吴倩", "张伟", "李娜", "王芳"]


def test_two_clerks_granting_at_once_are_each_told_what_they_granted(credits_app, seeded, cdb, monkeypatch):
    """Two clerks press 授分 together: nobody is granted twice (the partial unique index), and the second is told
    who was already granted, not a 新授分 count of people the other clerk's 授分 had just taken."""
    from services.credits.awards import services as svc

    real_people = svc.people

    def other_clerk_first(session, offering_id, keys=None):  # the other clerk's 授分 commits 吴倩 meanwhile
        found = real_people(session, offering_id, keys)
        if keys and key(1) in keys:
            other = cdb.new_session()
            offering = other.scalars(select(svc.OfferingCredit)).one()
            other.add(svc.CreditAward(**svc._award_values(offering, INST_A, dt.date(2026, 12, 11), "attendance"),
                                      trainee_key=key(1), name="吴倩", id_enc=pii.encrypt(id_number(1))))
            other.commit()
            other.close()
        return found

    monkeypatch.setattr(svc, "people", other_clerk_first)
    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    done = c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    said = c.get(done.headers["Location"]).get_data(as_text=True)
    assert "授分完成：新授分 1 人；此前已授分 1 人；排除 0 人" in said
    assert sorted(a.name for a in awards(cdb)) == ["吴倩", "李娜"]
    assert "根据会场考勤授分 1 人" in audit(cdb, "grant")[0].reason


def test_the_desk_does_not_blame_her_check_ins_when_she_is_valid_but_not_yet_granted(credits_app, seeded, cdb,
                                                                                      databases):
    """Her last scan reached credits after the office's 授分 (a queue that was down): she meets the saved rule and
    the next 授分 grants her. The desk said her check-ins fell short of the rule, which sent her to argue about
    attendance instead of to the office."""
    from services.credits.attendance.models import AttendanceRecord
    from tests.credits.conftest import new_account

    new_account(databases, NAMES[2], id_number(2))
    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    late = dict(seeded[0], checkin_id=902, trainee_key=key(2), name=NAMES[2], id_enc=pii.encrypt(id_number(2)),
                window_id=4, window_kind="sign_out", window_starts_at=WINDOWS[4][1],
                window_ends_at=WINDOWS[4][1] + dt.timedelta(hours=1),
                scanned_at=WINDOWS[4][1] + dt.timedelta(minutes=5))
    s = cdb.new_session()
    s.execute(insert(AttendanceRecord), [late])
    s.commit()
    s.close()
    desk = client_for(credits_app, "reviewer")
    html = desk.post("/credits/accounts", data=form(REVIEWER, id_number=id_number(2))).get_data(as_text=True)
    status = html.split("签到与授分")[1].split("</table>")[0]
    assert "签到未达到" not in status
    assert "未授分：按举办机构保存的考勤分析为有效人员，举办机构再次点击“授分”即可授予" in status


def test_an_offering_over_new_year_says_which_year_its_credit_counts_in(credits_app, cdb, seeded):
    """授分 of an offering held 30 December to 1 January: the office is told, where it picks the 活动日期, that the
    credit counts in the year of that day, before its trainees find it in next year's 达标情况."""
    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    same_year = c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)
    assert "跨年度" not in same_year
    deliver(make_envelope("offering.approved", "projects",
                          payload(starts_on=dt.date(2026, 12, 10), ends_on=dt.date(2027, 1, 1))))
    page = c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)
    assert "本期次跨年度举办：学分计入活动日期所在年度的达标情况（按最后一天 2027-01-01 授分，计入 2027 年度）" in page


def test_the_grant_api_accounts_for_every_valid_attendee(credits_app, seeded, cdb):
    """The JSON answer of 授分 adds up to the valid attendees, as the page's message does: one whose award the
    office withdrew is counted as withdrawn, not left out."""
    h = api_headers("inst_a")
    c = credits_app.test_client()
    c.post(f"/credits/api/offerings/{OFFERING}/analyses", json={"windows": [{"window_id": w} for w in (1, 2, 3, 4)]},
           headers=h)
    first = c.post(f"/credits/api/offerings/{OFFERING}/grant", json={"activity_date": "2026-12-11"}, headers=h).json
    assert first == {"added": 2, "already": 0, "excluded": 0, "withdrawn": 0}
    wu = next(a for a in awards(cdb) if a.name == "吴倩")
    c.post(f"/credits/api/awards/{wu.id}/withdraw", json={"reason": "核对有误"}, headers=h)
    again = c.post(f"/credits/api/offerings/{OFFERING}/grant", json={"activity_date": "2026-12-11"}, headers=h).json
    assert again == {"added": 0, "already": 1, "excluded": 0, "withdrawn": 1}


def test_unticking_names_her_as_on_her_account(credits_app, seeded, cdb, databases):
    """更正姓名 at the desk made 王芳 王芳芳: 不授分 tells the office, and the audit log keeps, the corrected name that
    the row beside the button shows, not the one typed at her scans."""
    from tests.credits.conftest import new_account

    new_account(databases, "王芳芳", id_number(4))
    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis",
           data=analysis_form(1, 2, 3, 4, action="save", rule_mode="at_least", rule_n="3"))
    done = c.post(f"/credits/awards/{OFFERING}/exclusions", data=form(INST_A, trainee_key=key(4), reason="中途离场"))
    assert "已将 王芳芳 排除出授分人员" in c.get(done.headers["Location"]).get_data(as_text=True)
    assert audit(cdb, "exclude")[0].reason == "王芳芳：中途离场"


def test_the_committee_is_told_before_withdrawing_an_effective_award_that_it_can_restore_it(credits_app, seeded, cdb):
    """撤销 of an effective award by the committee voids the trainee's certificate for good, and the committee can
    恢复 the credit (as a new certificate): its confirmation says both; a pending award's withdrawal by the office
    is not told that."""
    from tests.credits.test_activation import report_event

    def confirm_of(page: str, award_id: int) -> str:
        form_tag = page.split(f'action="/credits/awards/award/{award_id}/withdraw"')[1].split(">")[0]
        return json.loads(re.search(r"return confirm\((.*)\);", form_tag.replace("&#34;", '"')).group(1))

    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    first = awards(cdb)[0]
    assert "证书" not in confirm_of(c.get(f"/credits/awards/{OFFERING}/list").get_data(as_text=True), first.id)
    deliver(report_event("report.approved"))
    page = client_for(credits_app, "reviewer").get(f"/credits/awards/{OFFERING}/list").get_data(as_text=True)
    said = confirm_of(page, first.id)
    assert said.startswith(f"确定撤销{first.name}的授分吗？") and "不能恢复" not in said
    assert "该授分已生效：撤销后学员的学分证书随之作废，原证书编号不再有效" in said
    assert "继续医学教育委员会可在授分名单中恢复（恢复后另发新编号的学分证书）" in said


def test_reopening_the_analysis_shows_what_was_saved_not_the_defaults(credits_app, seeded, cdb):
    """The office's walk: after 确定 (all four windows, window 1 narrowed, at least 3, 计入代签), 重新考勤分析 opened
    on a blank form with 计入代签 unticked; pressing 确定 again after a late 代签 dropped everyone it had counted.
    The form now starts from the saved analysis."""
    c = client_for(credits_app, "inst_a")
    blank = c.get(f"/credits/awards/{OFFERING}/analysis").get_data(as_text=True)
    assert 'value="1" checked' not in blank and 'name="include_forced" value="1" checked' not in blank
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(
        1, 2, 4, action="save", rule_mode="at_least", rule_n="2", include_forced="1", pairs_required="1",
        from_1="2026-12-10T08:30", to_1="2026-12-10T09:00"))

    page = c.get(f"/credits/awards/{OFFERING}/analysis").get_data(as_text=True)
    ticked = set(re.findall(r'id="w-(\d+)" name="window" value="\d+" checked', page))
    assert ticked == {"1", "2", "4"}
    assert 'name="from_1" value="2026-12-10T08:30"' in page and 'name="to_1" value="2026-12-10T09:00"' in page
    assert 'name="to_2" value="2026-12-10T17:30"' in page  # an untouched window keeps its own range
    assert 'value="at_least" checked' in page and 'name="rule_n" value="2"' in page
    assert 'name="pairs_required" value="1" checked' in page and 'name="include_forced" value="1" checked' in page

    # pressing 确定 on the form as it opens saves the same analysis again, with the same count
    from services.credits.awards.models import AttendanceAnalysis

    s = cdb.new_session()
    first = s.scalars(select(AttendanceAnalysis)).one()
    s.close()
    again = {"window": sorted(ticked), "rule_mode": "at_least", "rule_n": "2", "pairs_required": "1",
             "include_forced": "1", "action": "save",
             **dict(re.findall(r'name="((?:from|to)_\d+)" value="([^"]+)"', page))}
    assert c.post(f"/credits/awards/{OFFERING}/analysis", data=form(INST_A, **again)).status_code == 302
    s = cdb.new_session()
    second = s.scalars(select(AttendanceAnalysis).order_by(AttendanceAnalysis.id.desc())).first()
    s.close()
    assert (second.id, second.windows, second.valid_count) == (first.id + 1, first.windows, first.valid_count)


def test_searching_a_name_who_fell_short_finds_her_in_the_short_list(credits_app, seeded, cdb):
    """The office's walk at 300 doctors: searching 有效人员明细 for one who got no credit said only 没有…有效人员,
    above a closed list of 39 who fell short with her at its end. The search now filters that list too, opens it
    and says she is there."""
    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    page = c.get(f"/credits/awards/{OFFERING}/attendees", query_string={"q": "张伟"}).get_data(as_text=True)
    assert "没有姓名含“张伟”的有效人员。姓名含“张伟”的签到人员见下方“未达到规则的签到人员”" in page
    short = page.split('id="short"')[1].split("</details>")[0]
    assert short.startswith(" open>") and "未达到规则的签到人员中姓名含“张伟”的 1 人（共 2 人，不授分）" in short
    assert "<td>张伟</td>" in short and "王芳" not in short

    # a valid one searched for: her row, and no short list in the way
    page = c.get(f"/credits/awards/{OFFERING}/attendees", query_string={"q": "吴倩"}).get_data(as_text=True)
    assert "吴倩" in page.split('id="short"')[0] and 'id="short"' not in page and "见下方" not in page
    # no search: the whole list, closed, as before
    page = c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)
    assert '<details class="short" id="short">' in page and "未达到规则的签到人员 2 人（不授分）" in page
