"""The execution report's life reaches credits: report.submitted locks the award list, report.returned
unlocks it, report.approved makes pending awards by attendance effective (never manual ones) and emits
credits.effective, which certs keeps award by award. Redelivery and repeats change nothing."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from services.common import clock, pii
from services.common.events import make_envelope
from tests.checkin.test_windows_support import INST_A, api_headers, client_for, csrf_for, id_number
from tests.credits.test_awards import OFFERING, analysis_form, awards, form, granted_events, key, seeded  # noqa: F401
from tests.credits.test_offerings import deliver

UTC = dt.UTC


def report_event(name: str, report_id: int = 5, offering_id: int = OFFERING, reason: str = ""):
    return make_envelope(name, "projects", {"offering_id": offering_id, "institution_id": 1, "report_id": report_id,
                                            "reason": reason})


def effective_events(cdb):
    from services.credits.db import outbox

    s = cdb.new_session()
    try:
        return [json.loads(e) for e in s.scalars(select(outbox.c.envelope).where(outbox.c.name == "credits.effective")
                                                 .order_by(outbox.c.id))]
    finally:
        s.close()


@pytest.fixture
def granted(credits_app, seeded, cdb):  # noqa: F811
    c = client_for(credits_app, "inst_a")
    c.post(f"/credits/awards/{OFFERING}/analysis", data=analysis_form(1, 2, 3, 4, action="save"))
    c.post(f"/credits/awards/{OFFERING}/grant", data=form(INST_A, activity_date="2026-12-11"))
    person = {"name": "赵磊", "id_number": id_number(8), "mobile": "13900000008", "title": "主治医师",
              "unit": "西安市第一医院", "activity_date": "2026-12-11", "confirm_invalid": "1"}
    c.post(f"/credits/awards/{OFFERING}/manual", data=form(INST_A, **person))
    assert sorted((a.name, a.method) for a in awards(cdb)) == [("吴倩", "attendance"), ("李娜", "attendance"),
                                                               ("赵磊", "manual")]
    return c


@pytest.fixture
def cdb(databases):
    return databases["credits"]


def test_submitted_report_locks_the_list_and_returned_unlocks_it(credits_app, granted, cdb):
    c = granted
    clock.set_now(dt.datetime(2026, 12, 13, 2, 0, tzinfo=UTC))
    assert deliver(report_event("report.submitted")) is True
    first = awards(cdb)[0]
    r = c.post(f"/credits/awards/award/{first.id}/withdraw", data=form(INST_A, reason="核对有误",
                                                                        version=str(first.version)))
    assert r.status_code == 409 and awards(cdb)[0].state == "pending"
    assert "执行情况反馈已提交，授分名单已锁定" in r.get_data(as_text=True)
    api = credits_app.test_client()
    resp = api.post(f"/credits/api/awards/{first.id}/withdraw", json={"reason": "核对有误"},
                    headers=api_headers("inst_a"))
    assert resp.status_code == 409 and "执行情况反馈已提交" in resp.json["error"]["message"]
    grant = api.post(f"/credits/api/offerings/{OFFERING}/grant", json={"activity_date": "2026-12-11"},
                     headers=api_headers("inst_a"))
    assert grant.status_code == 409
    page = c.get(f"/credits/awards/{OFFERING}/list").get_data(as_text=True)
    assert "授分名单已锁定" in page and "撤销原因" not in page  # no withdraw buttons while locked
    manual = c.get(f"/credits/awards/{OFFERING}/manual").get_data(as_text=True)
    assert "<fieldset disabled>" in manual  # nothing typed there could be saved
    listing = c.get("/credits/awards").get_data(as_text=True)
    assert "执行情况反馈已提交，授分名单已锁定（3 人，含手工录入 1 人（非有效学分））" in listing

    clock.set_now(dt.datetime(2026, 12, 14, 2, 0, tzinfo=UTC))
    assert deliver(report_event("report.returned", reason="照片不清晰")) is True
    resp = api.post(f"/credits/api/awards/{first.id}/withdraw", json={"reason": "核对有误"},
                    headers=api_headers("inst_a"))
    assert resp.status_code == 200 and awards(cdb)[0].state == "withdrawn"
    assert "<fieldset>" in c.get(f"/credits/awards/{OFFERING}/manual").get_data(as_text=True)  # open again


def test_an_older_report_event_changes_nothing(credits_app, granted, cdb):
    clock.set_now(dt.datetime(2026, 12, 13, 2, 0, tzinfo=UTC))
    older = report_event("report.submitted")
    clock.set_now(dt.datetime(2026, 12, 14, 2, 0, tzinfo=UTC))
    assert deliver(report_event("report.returned")) is True
    assert deliver(older) is True  # recorded as processed, but the newer state stays
    from services.credits.offerings.models import OfferingCredit
    s = cdb.new_session()
    assert s.scalar(select(OfferingCredit.report_state)) == "returned"
    s.close()


def test_approval_makes_attendance_awards_effective_and_tells_certs(credits_app, granted, cdb, databases):
    from services.certs.awards.models import EffectiveAward
    from services.certs.worker import handle_event as certs_handle

    clock.set_now(dt.datetime(2026, 12, 20, 2, 0, tzinfo=UTC))
    approval = report_event("report.approved")
    assert deliver(approval) is True
    states = {a.name: (a.state, a.effective_at is not None) for a in awards(cdb)}
    assert states == {"吴倩": ("effective", True), "李娜": ("effective", True), "赵磊": ("pending", False)}
    [event] = effective_events(cdb)
    body = event["payload"]
    assert body["offering_id"] == OFFERING and sorted(a["name"] for a in body["awards"]) == ["吴倩", "李娜"]
    one = next(a for a in body["awards"] if a["name"] == "吴倩")
    assert (one["project_number"], one["project_title"], one["institution_name"], one["credit_class"],
            one["credit_value"], one["activity_date"], one["starts_on"], one["ends_on"]) == (
        "2026-01-01-001", "心血管急危重症诊治进展", "西安市第一医院", "Ⅰ类", "10.00", "2026-12-11", "2026-12-10",
        "2026-12-11")
    assert pii.decrypt(one["id_enc"]) == id_number(1) and one["trainee_key"] == key(1)

    # redelivery of the same envelope: nothing; the same approval re-sent under a new id: nothing more effective
    assert deliver(approval) is False
    assert deliver(report_event("report.approved")) is True
    assert [a.state for a in awards(cdb)].count("effective") == 2
    # an approved offering's list is final
    api = credits_app.test_client()
    manual = api.post(f"/credits/api/offerings/{OFFERING}/manual-awards", headers=api_headers("inst_a"), json={
        "name": "黄敏", "id_number": id_number(9), "mobile": "13900000009", "title": "主治医师", "unit": "某医院",
        "activity_date": "2026-12-11", "confirm_invalid": True})
    assert manual.status_code == 409 and "已审核通过" in manual.json["error"]["message"]
    # the pages say what took effect: two by attendance; the 手工录入 never does, and never reads 待生效
    c = granted
    listing = c.get("/credits/awards").get_data(as_text=True)
    assert "授分已生效（2 人；手工录入 1 人为非有效学分，不生效）" in listing
    page = c.get(f"/credits/awards/{OFFERING}/list").get_data(as_text=True)
    assert page.count("已生效</td>") == 2 and "不生效（非有效学分）" in page and "待生效</td>" not in page

    # certs keeps each award once, whatever the repeats
    for envelope in effective_events(cdb):
        assert certs_handle.run(envelope) is True
    assert certs_handle.run(effective_events(cdb)[0]) is False
    s = databases["certs"].new_session()
    kept = s.scalars(select(EffectiveAward).order_by(EffectiveAward.award_id)).all()
    assert [(k.name, k.project_title, str(k.credit_value)) for k in kept] == [
        ("吴倩", "心血管急危重症诊治进展", "10.00"), ("李娜", "心血管急危重症诊治进展", "10.00")]
    s.close()


def test_report_before_the_offering_is_known_is_retried(databases):
    from celery.exceptions import Retry

    from services.credits.worker import handle_event

    with pytest.raises(Retry):
        handle_event.apply(args=[report_event("report.approved", offering_id=4242)], throw=True)
    assert csrf_for(INST_A)  # (the page helpers above come from the same support module)


def test_committee_withdraws_an_effective_award_and_certs_revokes_it(credits_app, granted, cdb, databases):
    from services.certs.awards.models import EffectiveAward
    from services.certs.worker import handle_event as certs_handle
    from services.credits.db import outbox

    clock.set_now(dt.datetime(2026, 12, 20, 2, 0, tzinfo=UTC))
    deliver(report_event("report.approved"))
    effective = next(a for a in awards(cdb) if a.state == "effective")
    api = credits_app.test_client()
    by_inst = api.post(f"/credits/api/awards/{effective.id}/withdraw", json={"reason": "冒名顶替"},
                       headers=api_headers("inst_a"))
    assert by_inst.status_code == 409 and "联系继续医学教育委员会" in by_inst.json["error"]["message"]
    by_committee = api.post(f"/credits/api/awards/{effective.id}/withdraw", json={"reason": "经核查为冒名顶替"},
                            headers=api_headers("reviewer"))
    assert by_committee.status_code == 200
    row = next(a for a in awards(cdb) if a.id == effective.id)
    assert (row.state, row.withdraw_reason, row.effective_at is not None) == ("withdrawn", "经核查为冒名顶替", True)
    s = cdb.new_session()
    [withdrawn] = [json.loads(e) for e in s.scalars(select(outbox.c.envelope)
                                                    .where(outbox.c.name == "credits.withdrawn"))]
    s.close()
    assert withdrawn["payload"]["award_id"] == effective.id and withdrawn["payload"]["reason"] == "经核查为冒名顶替"
    for envelope in effective_events(cdb):
        certs_handle.run(envelope)
    s = databases["certs"].new_session()
    assert s.scalar(select(EffectiveAward.award_id).where(EffectiveAward.award_id == effective.id)) == effective.id
    s.close()


def test_the_trainee_sees_where_the_report_her_pending_credit_waits_for_stands(credits_app, granted, cdb,
                                                                               databases):
    """At year end she asks whether last month's course will count: 待生效 now says whether the institution has
    not sent its 执行情况反馈 yet, sent it to the committee, or had it returned, which tells her whom to ask."""
    from tests.conftest import bearer, login_client
    from tests.credits.conftest import new_account
    from tests.credits.test_awards import NAMES

    trainee = new_account(databases, NAMES[1], id_number(1), "Neues2026pw")
    phone = login_client(credits_app.test_client(), trainee)

    def said():
        page = phone.get("/credits/compliance?year=2026").get_data(as_text=True)
        [line] = credits_app.test_client().get("/credits/api/me/compliance?year=2026",
                                               headers=bearer(trainee)).json["years"][0]["awards"]
        return page, line["status_text"]

    page, text = said()
    assert "举办机构尚未提交执行情况反馈" in page and text == "待生效：举办机构尚未提交执行情况反馈，审核通过后计入"
    clock.set_now(dt.datetime(2026, 12, 13, 2, 0, tzinfo=UTC))
    deliver(report_event("report.submitted"))
    page, text = said()
    assert "执行情况反馈已提交，待委员会审核" in page
    assert text == "待生效：执行情况反馈已提交，待委员会审核，审核通过后计入"
    clock.set_now(dt.datetime(2026, 12, 14, 2, 0, tzinfo=UTC))
    deliver(report_event("report.returned", reason="照片不清晰"))
    page, text = said()
    assert "执行情况反馈已退回举办机构修改" in page
