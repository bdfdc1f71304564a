"""offering.cancelled: an approved 期 that will not be, or was not, held (the office's 取消举办, the committee's
标记未举办). Credits keeps it for good, in whatever order the events come; 授分 and 手工录入 are refused, 撤销 is not;
the pending awards say they will never take effect (award list, 达标情况查询, 学员账号); 年度统计 counts the 期 apart
from 已举办 and from the chase list."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from services.common import clock
from services.common.events import make_envelope
from tests.checkin.test_windows_support import INST_A, REVIEWER, api_headers, client_for, id_number
from tests.conftest import login_client
from tests.credits.conftest import new_account
from tests.credits.test_awards import (  # noqa: F401  (cdb and seeded: the fixtures of test_awards)
    NAMES,
    OFFERING,
    analysis_form,
    awards,
    cdb,
    form,
    key,
    seeded,
)
from tests.credits.test_offerings import deliver, payload

UTC = dt.UTC
OFFICE_REASON = "授课专家因故无法到场"


def cancelled(offering_id: int = OFFERING, by: str = "institution", reason: str = OFFICE_REASON,
              institution_id: int = 1, at: dt.datetime | None = None) -> dict:
    return make_envelope("offering.cancelled", "projects", {
        "offering_id": offering_id, "institution_id": institution_id, "cancelled_at": at or clock.now(), "by": by,
        "reason": reason})


def offering_row(databases, offering_id: int = OFFERING):
    from services.credits.offerings.models import OfferingCredit

    s = databases["credits"].new_session()
    try:
        return s.scalars(select(OfferingCredit).where(OfferingCredit.offering_id == offering_id)).first()
    finally:
        s.close()


def notes(databases) -> list[int]:
    from services.credits.offerings.models import CancelledOffering

    s = databases["credits"].new_session()
    try:
        return list(s.scalars(select(CancelledOffering.offering_id)))
    finally:
        s.close()


# ---- the handler ---------------------------------------------------------------------------------

def test_a_cancellation_is_kept_once_and_no_later_approval_clears_it(databases):
    clock.set_now(dt.datetime(2026, 11, 20, 2, 0, tzinfo=UTC))
    assert deliver(make_envelope("offering.approved", "projects", payload())) is True
    clock.set_now(dt.datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    first = cancelled()
    assert deliver(first) is True
    assert deliver(first) is False  # a redelivery of the same event
    row = offering_row(databases)
    assert (row.cancelled_by, row.cancel_reason, row.cancelled_at) == ("institution", OFFICE_REASON, clock.now())
    assert row.cancelled_label == "本期已取消举办"
    # another cancellation under a new id (the committee's, later): the first one recorded stands
    clock.set_now(dt.datetime(2026, 12, 20, 2, 0, tzinfo=UTC))
    assert deliver(cancelled(by="committee", reason="未见举办记录")) is True
    row = offering_row(databases)
    assert (row.cancelled_by, row.cancel_reason) == ("institution", OFFICE_REASON)
    # a newer approval (a catalogue correction) takes its terms, never the cancellation away; an older one nothing
    assert deliver(make_envelope("offering.approved", "projects", payload(credit_value="6"))) is True
    clock.set_now(dt.datetime(2026, 11, 1, 2, 0, tzinfo=UTC))
    assert deliver(make_envelope("offering.approved", "projects", payload(credit_value="2"))) is True
    row = offering_row(databases)
    assert (str(row.credit_value), row.cancelled_by, row.cancel_reason) == ("6.00", "institution", OFFICE_REASON)
    assert notes(databases) == []


@pytest.mark.parametrize("approval_time", ["older", "newer"])
def test_a_cancellation_before_its_approval_makes_the_offering_arrive_cancelled(databases, approval_time):
    """The approval failed and is retried (or is delivered again) after the cancellation: whatever its own time,
    the offering arrives cancelled, and the note is gone once it has."""
    clock.set_now(dt.datetime(2026, 12, 20, 2, 0, tzinfo=UTC))
    assert deliver(cancelled(by="committee", reason="经核实未举办")) is True
    assert offering_row(databases) is None and notes(databases) == [OFFERING]
    assert deliver(cancelled(by="committee", reason="经核实未举办")) is True  # resent: one note
    assert notes(databases) == [OFFERING]
    clock.set_now(dt.datetime(2026, 11, 20, 2, 0, tzinfo=UTC) if approval_time == "older"
                  else dt.datetime(2026, 12, 21, 2, 0, tzinfo=UTC))
    assert deliver(make_envelope("offering.approved", "projects", payload())) is True
    row = offering_row(databases)
    assert (row.cancelled_by, row.cancel_reason, row.cancelled_at) == (
        "committee", "经核实未举办", dt.datetime(2026, 12, 20, 2, 0, tzinfo=UTC))
    assert row.cancelled_label == "本期已标记未举办" and notes(databases) == []
    # and a re-approval after that still does not open it
    clock.set_now(dt.datetime(2026, 12, 22, 2, 0, tzinfo=UTC))
    deliver(make_envelope("offering.approved", "projects", payload()))
    assert offering_row(databases).cancelled_by == "committee"


def test_the_database_keeps_a_cancellation_whole(databases):
    from sqlalchemy.exc import IntegrityError

    from services.credits.offerings.models import OfferingCredit

    clock.set_now(dt.datetime(2026, 11, 20, 2, 0, tzinfo=UTC))
    deliver(make_envelope("offering.approved", "projects", payload()))
    for values in ({"cancelled_at": clock.now()}, {"cancelled_at": clock.now(), "cancelled_by": "someone",
                                                   "cancel_reason": "x"}):
        s = databases["credits"].new_session()
        row = s.scalars(select(OfferingCredit)).one()
        for name, value in values.items():
            setattr(row, name, value)
        with pytest.raises(IntegrityError):
            s.commit()
        s.close()


# ---- 授分 refused, 撤销 not ------------------------------------------------------------------------

@pytest.fixture
def granted_then_cancelled(credits_app, seeded, databases):  # noqa: F811
    """吴倩 and 李娜 granted (pending), then the office cancels the 期 (in tests the dates do not stop it)."""
    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    assert sorted(a.name for a in awards(databases["credits"])) == ["吴倩", "李娜"]
    assert deliver(cancelled()) is True
    return c


NOT_HELD = "本期已取消举办，不能再授分或手工录入学分"


def test_the_pages_refuse_grant_and_manual_entry_and_offer_no_button(credits_app, databases,
                                                                     granted_then_cancelled):
    c, credits_db = granted_then_cancelled, databases["credits"]
    before = [(a.id, a.state) for a in awards(credits_db)]
    # 授分 (a stale page's button): refused, said on the attendees page, nothing granted
    refused = c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"),
                     follow_redirects=True)
    assert NOT_HELD in refused.get_data(as_text=True)
    person = {"name": "赵磊", "id_number": id_number(8), "mobile": "13900000008", "title": "主治医师",
              "unit": "西安市第一医院", "activity_date": "2026-12-11", "confirm_invalid": "1"}
    manual = c.post(f"/credits/awards/{OFFERING}/manual", data=form(INST_A, **person))
    assert manual.status_code == 409 and NOT_HELD in manual.get_data(as_text=True)
    save = c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    assert save.status_code == 409 and NOT_HELD in save.get_data(as_text=True)
    unticked = c.post(f"/credits/awards/{OFFERING}/exclusions",
                      data=form(INST_A, trainee_key=key(1), reason="中途离场"), follow_redirects=True)
    assert NOT_HELD in unticked.get_data(as_text=True)
    fix = c.post(f"/credits/awards/{OFFERING}/activity-date",
                 data=form(INST_A, activity_date="2026-12-10", reason="选错了日期"))
    assert fix.status_code == 409 and NOT_HELD in fix.get_data(as_text=True)
    assert [(a.id, a.state) for a in awards(credits_db)] == before

    # the analysis stays readable (history), with no 确定; no 授分 button, no manual form to fill
    analysis = c.get(f"/credits/awards/{OFFERING}/analysis").get_data(as_text=True)
    assert "本期已取消举办（2026-12-12，原因：授课专家因故无法到场）" in analysis and 'value="save"' not in analysis
    # nor are the times and the rule left open to be changed with no button to use them (the walk)
    assert "<fieldset disabled>" in analysis and 'aria-label="开始时间" disabled' in analysis
    attendees = c.get(f"/credits/awards/{OFFERING}/attendees").get_data(as_text=True)
    assert "有效人员明细" in attendees and f'action="/credits/awards/{OFFERING}/grant"' not in attendees
    assert f'action="/credits/awards/{OFFERING}/exclusions"' not in attendees
    method = c.get(f"/credits/awards/{OFFERING}").get_data(as_text=True)
    assert f'href="/credits/awards/{OFFERING}/manual"' not in method and "考勤分析" in method
    assert "<fieldset disabled>" in c.get(f"/credits/awards/{OFFERING}/manual").get_data(as_text=True)

    # the award list: the pending awards say they never take effect; 撤销 stays, 更正活动日期 does not
    listing = c.get(f"/credits/awards/{OFFERING}/list").get_data(as_text=True)
    assert listing.count("不会生效（本期已取消举办）") == 2 and "待生效" not in listing.split("<table")[1]
    assert "/withdraw" in listing and "更正活动日期</h2>" not in listing
    first = awards(credits_db)[0]
    withdrawn = c.post(f"/credits/awards/award/{first.id}/withdraw",
                       data=form(INST_A, reason="本期取消举办，清理授分", version=str(first.version)))
    assert withdrawn.status_code == 302 and awards(credits_db)[0].state == "withdrawn"
    sheet = load_workbook(io.BytesIO(c.get(f"/credits/awards/{OFFERING}/awards.xlsx").data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert "本期已取消举办（2026-12-12，原因：授课专家因故无法到场）" in rows[0][0]
    assert [r[10] for r in rows[2:4]] == ["不会生效（本期已取消举办）", "已撤销"]
    assert rows[-1][0].startswith("合计：根据会场考勤授分（不会生效） 1 人")

    # 项目参加者授分's list: the state with its reason, for the office and for the committee
    mine = c.get("/credits/awards").get_data(as_text=True)
    assert "本期已取消举办（2026-12-12，原因：授课专家因故无法到场）；已有授分 1 人，不会生效" in mine
    assert "查看考勤" in mine
    committee = client_for(credits_app, "reviewer").get("/credits/awards").get_data(as_text=True)
    assert "本期已取消举办（2026-12-12，原因：授课专家因故无法到场）" in committee


def test_a_long_reason_is_cut_in_the_list_and_whole_on_its_pages(credits_app, databases, seeded):  # noqa: F811
    """A 500-character reason squeezed 项目参加者授分's other columns to one character wide (the walk)."""
    reason = "因承办医院会议中心改造，原定场地无法使用，经与授课专家协商后决定本期不再举办" * 12
    assert deliver(cancelled(by="committee", reason=reason[:500])) is True
    c = client_for(credits_app, "inst_a")
    listed = c.get("/credits/awards").get_data(as_text=True)
    assert f"本期已标记未举办（2026-12-12，原因：{reason[:40]}…）" in listed and reason[:41] + "…" not in listed
    assert f'title="{reason[:500]}"' in listed  # the whole on hover
    assert f"原因：{reason[:500]}）" in c.get(f"/credits/awards/{OFFERING}/list").get_data(as_text=True)


def test_the_api_refuses_grant_and_manual_entry_and_says_the_state(credits_app, databases, granted_then_cancelled):
    api, headers = credits_app.test_client(), api_headers("inst_a")
    grant = api.post(f"/credits/api/offerings/{OFFERING}/grant", json={"activity_date": "2026-12-11"},
                     headers=headers)
    assert grant.status_code == 409 and grant.json["error"]["code"] == "offering_cancelled"
    assert NOT_HELD in grant.json["error"]["message"]
    manual = api.post(f"/credits/api/offerings/{OFFERING}/manual-awards", headers=headers, json={
        "name": "赵磊", "id_number": id_number(8), "mobile": "13900000008", "title": "主治医师",
        "unit": "西安市第一医院", "activity_date": "2026-12-11", "confirm_invalid": True})
    assert manual.status_code == 409 and NOT_HELD in manual.json["error"]["message"]
    save = api.post(f"/credits/api/offerings/{OFFERING}/analyses", headers=headers, json={
        "windows": [{"window_id": 1}], "rule_mode": "all"})
    assert save.status_code == 409 and NOT_HELD in save.json["error"]["message"]
    assert len(awards(databases["credits"])) == 2
    listing = api.get(f"/credits/api/offerings/{OFFERING}/awards", headers=headers).json
    assert listing["cancelled"] == "本期已取消举办（2026-12-12，原因：授课专家因故无法到场）"
    assert {a["state_label"] for a in listing["items"]} == {"不会生效（本期已取消举办）"}
    [row] = api.get("/credits/api/grant/offerings", headers=headers).json["items"]
    assert (row["cancelled"], row["cancelled_by"], row["cancel_reason"]) == (True, "institution", OFFICE_REASON)
    assert api.get(f"/credits/api/offerings/{OFFERING}", headers=headers).json["cancelled_by"] == "institution"
    award_id = listing["items"][0]["id"]
    withdrawn = api.post(f"/credits/api/awards/{award_id}/withdraw", json={"reason": "本期取消举办，清理授分"},
                         headers=headers)
    assert withdrawn.status_code == 200 and withdrawn.json["awards"][0]["state"] == "withdrawn"


def test_the_trainee_and_the_desk_are_told_why_the_credit_will_not_take_effect(credits_app, databases,
                                                                               granted_then_cancelled):
    trainee = new_account(databases, NAMES[1], id_number(1), "Neues2026pw")
    html = login_client(credits_app.test_client(), trainee).get("/credits/compliance").get_data(as_text=True)
    line = html.split("心血管急危重症诊治进展")[1].split('class="award')[0]
    assert "不会生效（本期已取消举办）" in line and "本期已取消举办，不会提交执行情况反馈，学分不会生效" in line
    assert '<span class="badge withdrawn">不会生效' in line  # not the yellow of a credit on its way
    assert "学分证书：不生成学分证书" in line and "待生效学分" not in html
    assert "所属期次已取消举办或已标记未举办的授分 10 分（1 条）" in html
    api = credits_app.test_client().get("/credits/api/me/compliance", headers=api_headers_for(trainee)).json
    year = api["years"][0]
    assert year["not_held"]["count"] == 1 and year["pending"]["count"] == 0
    assert year["awards"][0]["status_text"] == ("不会生效：本期已取消举办，不会提交执行情况反馈，学分不会生效，"
                                               "不计入达标")

    desk = client_for(credits_app, "reviewer")
    rows = desk.post("/credits/accounts", data=form(REVIEWER, id_number=id_number(1))).get_data(as_text=True)
    assert "已授分 Ⅰ类 10 分，不会生效：本期已取消举办，不会提交执行情况反馈，学分不会生效" in rows
    new_account(databases, NAMES[2], id_number(2))  # checked in, not granted
    rows = desk.post("/credits/accounts", data=form(REVIEWER, id_number=id_number(2))).get_data(as_text=True)
    assert "未授分：本期已取消举办，不再授分" in rows


def api_headers_for(principal) -> dict[str, str]:
    from tests.conftest import bearer

    return bearer(principal)


# ---- 年度统计 ---------------------------------------------------------------------------------------

def test_a_cancelled_offering_leaves_the_chase_list_for_a_column_of_its_own(credits_app, databases):
    from tests.credits.test_compliance import insert_award
    from tests.credits.test_statistics import OTHER_ID, _world

    _world(databases)  # 宝鸡: 202 over with no trace (chased), 303 next January's, one pending award elsewhere
    c = login_client(credits_app.test_client(), REVIEWER)

    def baoji() -> str:
        html = c.get("/credits/statistics?year=2026").get_data(as_text=True)
        return html.split("<td>宝鸡市中心医院</td>")[1].split("</tr>")[0]

    unseen_link = '<td><a href="/credits/statistics/unseen?year=2026&amp;institution_id=2">1</a></td>'
    assert baoji().startswith("<td>0</td><td>0</td><td>2</td><td>0</td>" + unseen_link + "<td>0</td>")
    chase = c.get("/credits/statistics/unseen?year=2026").get_data(as_text=True)
    assert "2026-02-01-001" in chase
    assert '<a href="/projects/review/offerings/202">查看登记</a>' in chase  # where 标记未举办 is
    deliver(cancelled(offering_id=202, institution_id=2, by="committee", reason="经核实未举办"))
    deliver(cancelled(offering_id=303, institution_id=2, reason="场地无法落实"))  # not due yet: counted all the same
    # 审批通过 2, 已举办 0, 未见举办记录 0, 已取消/未举办 2; 待生效 stays the one of another 期
    cancelled_link = '<td><a href="/credits/statistics/cancelled?year=2026&amp;institution_id=2">2</a></td>'
    assert baoji() == ("<td>0</td><td>0</td><td>2</td><td>0</td><td>0</td>" + cancelled_link + "<td>0</td><td>1</td>"
                       "<td>5</td><td>1</td><td>0</td>")
    html = c.get("/credits/statistics?year=2026").get_data(as_text=True)
    assert ("<th>合计</th><th>0</th><th>0</th><th>3</th><th>1</th><th>0</th>"
            '<th><a href="/credits/statistics/cancelled?year=2026">2</a></th>') in html
    # the figure opens its 期: which, by whom, why, and the way to the filing (the walk found it opened nothing)
    ended = c.get("/credits/statistics/cancelled?year=2026&institution_id=2").get_data(as_text=True)
    assert "共 2 期" in ended and "省继续医学教育委员会标记未举办" in ended and "举办机构取消举办" in ended
    assert "经核实未举办" in ended and "场地无法落实" in ended and '/projects/review/offerings/202">查看登记' in ended
    assert "共 0 期" in c.get("/credits/statistics/cancelled?year=2026&institution_id=1").get_data(as_text=True)
    assert c.get("/credits/statistics/cancelled?year=abc").status_code == 422
    assert login_client(credits_app.test_client(), INST_A).get("/credits/statistics/cancelled").status_code == 403
    chase = c.get("/credits/statistics/unseen?year=2026").get_data(as_text=True)
    assert "共 0 期" in chase and "2026-02-01-001" not in chase
    sheet = list(load_workbook(io.BytesIO(c.get("/credits/statistics/unseen.xlsx?year=2026").data)).active
                 .iter_rows(values_only=True))
    assert "共 0 期" in sheet[0][0] and len(sheet) == 2
    rows = list(load_workbook(io.BytesIO(c.get("/credits/statistics.xlsx?year=2026").data)).active
                .iter_rows(values_only=True))
    assert ("宝鸡市中心医院", 0, 0, 2, 0, 0, 2, 0, 1, 5, 1, 0) in rows
    assert rows[-1] == ("合计", 0, 0, 3, 1, 0, 2, 0, 3, 30, 1, 1)

    # a pending award of a cancelled 期 waits for no report: not among 待生效人次
    insert_award(databases, OTHER_ID, value="5", state="pending", ends_on=dt.date(2026, 3, 2), institution_id=2,
                 offering_id=202)
    assert baoji().endswith("<td>1</td><td>5</td><td>1</td><td>0</td>")


def test_a_report_approval_never_makes_a_cancelled_offering_s_awards_effective(credits_app, databases,
                                                                               granted_then_cancelled, caplog):
    """Projects never approves a report of a 期 not held; if such an event came anyway, nothing takes effect."""
    assert deliver(make_envelope("report.approved", "projects", {"offering_id": OFFERING, "institution_id": 1,
                                                                 "report_id": 9})) is True
    assert {a.state for a in awards(databases["credits"])} == {"pending"}
    assert "report.approved" in caplog.text and "refused" in caplog.text
