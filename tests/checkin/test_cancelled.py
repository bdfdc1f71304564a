"""offering.cancelled: an approved 期 that will not be (取消举办) or was not (标记未举办) held.

The consumer (idempotent, either order with offering.approved, final), and what a cancelled activity refuses through
the real views: the phone's scan (the form and the one-tap JSON path), 代签, 刷卡周期 changes and the projector;
while its check-ins stay listed and exportable and the pages and the API say the state."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from services.common import clock
from services.common.events import make_envelope
from tests.checkin.test_phone import (  # noqa: F401 - fixtures
    env,
    fake_base,
    hall,
    nonce_of,
    open_code,
    phone,
    submit,
    token_for,
)
from tests.checkin.test_phone import identity as phone_identity
from tests.checkin.test_windows_support import (
    INST_A,
    OPEN_AT,
    api_headers,
    approve,
    client_for,
    csrf_for,
    identity,
    make_activity,
    scan,
)

UTC = dt.UTC
CANCELLED_AT = dt.datetime(2026, 12, 5, 2, 0, tzinfo=UTC)  # 10:00 on 12-05 in Shanghai
REASON = "授课专家因故无法到场，本期取消。"


@pytest.fixture
def cdb(databases):
    return databases["checkin"]


def deliver(envelope) -> bool:
    from services.checkin.worker import handle_event

    return handle_event.run(envelope)


def cancelled_env(offering_id: int = 101, by: str = "institution", reason: str = REASON,
                  at: dt.datetime = CANCELLED_AT, institution_id: int = 1):
    return make_envelope("offering.cancelled", "projects", {
        "offering_id": offering_id, "institution_id": institution_id, "cancelled_at": at, "by": by,
        "reason": reason})


def cancel(**over):
    envelope = cancelled_env(**over)
    assert deliver(envelope) is True
    return envelope


def activity_of(cdb, offering_id: int = 101):
    from services.checkin.activities.models import Activity

    s = cdb.new_session()
    try:
        return s.scalars(select(Activity).where(Activity.offering_id == offering_id)).first()
    finally:
        s.close()


def windows_of(cdb, activity_id: int) -> list[int]:
    from services.checkin.windows.models import CheckinWindow

    s = cdb.new_session()
    try:
        return list(s.scalars(select(CheckinWindow.id).where(CheckinWindow.activity_id == activity_id)))
    finally:
        s.close()


def checkin_count(cdb) -> int:
    from services.checkin.scans.models import Checkin

    s = cdb.new_session()
    try:
        return len(s.scalars(select(Checkin.id)).all())
    finally:
        s.close()


def refusals(cdb) -> list[str]:
    from services.checkin.scans.models import RefusedScan

    s = cdb.new_session()
    try:
        return list(s.scalars(select(RefusedScan.reason).order_by(RefusedScan.id)))
    finally:
        s.close()


# ---- the consumer --------------------------------------------------------------------------------

def test_cancellation_of_an_activity_is_kept_once_and_never_cleared(cdb):
    aid, wids = make_activity(cdb)
    envelope = cancel()
    a = activity_of(cdb)
    assert (a.cancelled_at, a.cancelled_by, a.cancel_reason) == (CANCELLED_AT, "institution", REASON)
    assert a.cancel_label == "已取消举办"
    assert deliver(envelope) is False  # the same envelope again: nothing
    # another cancellation of it (the committee's, later): the first one stands
    cancel(by="committee", reason="未举办", at=CANCELLED_AT + dt.timedelta(days=9))
    a = activity_of(cdb)
    assert (a.cancelled_by, a.cancel_reason, a.cancelled_at) == ("institution", REASON, CANCELLED_AT)
    # a catalogue correction resent afterwards, whatever its envelope's time: the fields follow, the state stays
    clock.set_now(dt.datetime(2027, 1, 5, tzinfo=UTC))
    approve(project_title="心血管急危重症诊治进展（更正）")
    a = activity_of(cdb)
    assert a.project_title == "心血管急危重症诊治进展（更正）"
    assert (a.cancelled_at, a.cancelled_by, a.cancel_reason) == (CANCELLED_AT, "institution", REASON)
    assert sorted(windows_of(cdb, aid)) == sorted(wids)  # its windows stay, as history


def test_a_cancellation_before_the_approval_makes_the_activity_cancelled_without_windows(cdb):
    from services.checkin.activities.models import CancelledOffering

    cancel(offering_id=202, by="committee", reason="该期未举办。")
    assert activity_of(cdb, 202) is None
    s = cdb.new_session()
    try:
        assert s.get(CancelledOffering, 202).cancelled_by == "committee"
    finally:
        s.close()
    cancel(offering_id=202, by="institution", reason="重复的取消")  # another one before the approval: the first stays
    aid, wids = make_activity(cdb, offering_id=202)
    a = activity_of(cdb, 202)
    assert (a.cancelled_by, a.cancel_reason, a.cancel_label) == ("committee", "该期未举办。", "已标记未举办")
    assert wids == []  # a 期 not held has no sessions
    # its approval delivered again later (a new envelope) neither opens it nor adds windows
    clock.set_now(dt.datetime(2026, 12, 20, tzinfo=UTC))
    approve(offering_id=202)
    assert activity_of(cdb, 202).cancelled_by == "committee"
    assert windows_of(cdb, aid) == []


def test_an_approval_handled_while_its_cancellation_is_in_flight_waits_for_it(cdb):
    """Two workers at once: the cancellation finds no activity and notes it; the approval, had it not waited for
    that transaction, would find no note yet and make an open activity."""
    import threading

    from services.checkin.activities.handlers import on_offering_approved, on_offering_cancelled
    from services.common.events import schema_of
    from tests.checkin.test_windows_support import payload

    clock.set_now(dt.datetime(2026, 11, 20, 2, 0, tzinfo=UTC))
    cancelled = cancelled_env(offering_id=303)
    approved = make_envelope("offering.approved", "projects", payload(offering_id=303))
    first = cdb.new_session()
    on_offering_cancelled(first, schema_of("offering.cancelled").load(cancelled["payload"]), cancelled)
    done = threading.Event()

    def approve_meanwhile() -> None:
        second = cdb.new_session()
        try:
            on_offering_approved(second, schema_of("offering.approved").load(approved["payload"]), approved)
            second.commit()
        finally:
            second.close()
            done.set()

    worker = threading.Thread(target=approve_meanwhile)
    worker.start()
    try:
        assert not done.wait(1.0)  # it waits for the cancellation's transaction
    finally:
        first.commit()
        first.close()
        worker.join(timeout=10)
    assert done.is_set()
    a = activity_of(cdb, 303)
    assert a.cancelled_by == "institution" and windows_of(cdb, a.id) == []


def test_the_database_refuses_a_cancellation_without_its_reason_or_who(cdb):
    from services.checkin.activities.models import Activity

    make_activity(cdb)
    s = cdb.new_session()
    try:
        for values in ({"cancelled_at": CANCELLED_AT},
                       {"cancelled_at": CANCELLED_AT, "cancelled_by": "institution"},
                       {"cancelled_at": CANCELLED_AT, "cancelled_by": "someone", "cancel_reason": "x"}):
            with pytest.raises(IntegrityError):
                s.execute(update(Activity).values(**values))
            s.rollback()
    finally:
        s.close()


# ---- the phone -----------------------------------------------------------------------------------

def test_the_qr_url_of_a_cancelled_activity_is_refused_with_its_reason(cdb, phone, hall):  # noqa: F811
    cancel(offering_id=1, by="committee", reason="未按计划举办")
    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    html = page.get_data(as_text=True)
    assert page.status_code == 403, html
    assert "本期已标记未举办（2026-12-05），不能签到。" in html and "activity_cancelled" in html
    assert refusals(cdb) == ["activity_cancelled"]
    assert checkin_count(cdb) == 0
    # the other activity of the hall takes scans as ever
    assert open_code(phone, token_for(hall["b"], hall["wb"]), user="bob").status_code == 200


def test_a_form_opened_before_the_cancellation_is_refused_when_sent(cdb, phone, hall):  # noqa: F811
    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    assert page.status_code == 200
    cancel(offering_id=1)
    done = submit(phone, nonce_of(page), phone_identity(1))
    html = done.get_data(as_text=True)
    assert done.status_code == 403 and "本期已取消举办（2026-12-05），不能签到。" in html
    assert checkin_count(cdb) == 0
    assert refusals(cdb) == ["activity_cancelled"]


def test_a_form_stored_before_the_cancellation_sent_again_says_checked_in(cdb, phone, hall):  # noqa: F811
    """The phone's retry of a submit stored before the 期 was cancelled (the answer was lost on the hall's network):
    已签到 with the stored time, as the check-in exists, on the page, its reload and the JSON; only a new check-in
    is refused, with the cancellation's own sentence."""
    page = open_code(phone, token_for(hall["a"], hall["w1"]))
    nonce = nonce_of(page)
    clock.set_now(clock.now() + dt.timedelta(seconds=30))
    assert submit(phone, nonce, phone_identity(1)).status_code == 200
    cancel(offering_id=1)
    clock.set_now(clock.now() + dt.timedelta(seconds=30))  # the ticket is still live
    again = submit(phone, nonce, phone_identity(1))
    html = again.get_data(as_text=True)
    assert again.status_code == 200, html
    assert "✓ 已签到" in html and "您此前已在本时段签到（2026-12-10 08:35）" in html and "未能签到" not in html
    reload = phone.get("/checkin/scan")
    assert reload.status_code == 200 and "✓ 已签到" in reload.get_data(as_text=True)
    r = phone.post("/checkin/api/scan", json={"nonce": nonce, **phone_identity(1)})
    assert r.status_code == 200 and r.get_json()["status"] == "已签到" and r.get_json()["created"] is False
    assert checkin_count(cdb) == 1 and refusals(cdb) == []
    # a new check-in (the 签退 code, one tap) is refused with the cancellation's sentence, on the page and the JSON
    refused = open_code(phone, token_for(hall["a"], hall["w2"]))
    assert refused.status_code == 403 and "本期已取消举办（2026-12-05），不能签退。" in refused.get_data(as_text=True)
    assert checkin_count(cdb) == 1 and refusals(cdb) == ["activity_cancelled"]


def test_one_tap_through_the_json_api_is_refused_by_the_scan_function(cdb, phone, hall):  # noqa: F811
    # alice checks in to the morning window; her sign-out code is open when the 期 is cancelled
    first = open_code(phone, token_for(hall["a"], hall["w1"]))
    assert submit(phone, nonce_of(first), phone_identity(1)).status_code == 200
    phone.get(f"/checkin/s/{token_for(hall['a'], hall['w2'])}")
    nonce = phone.get("/checkin/api/scan").get_json()["nonce"]
    cancel(offering_id=1)
    r = phone.post("/checkin/api/scan", json={"nonce": nonce})
    body = r.get_json()
    assert r.status_code == 403 and body["error"]["code"] == "activity_cancelled", body
    # which of the two ended it and when, for the 签退 window she scanned (as the page says it)
    assert body["error"]["message"] == "本期已取消举办（2026-12-05），不能签退。"
    assert body["error"]["hint"] == "本期活动不再签到，已有的签到记录仍然保留；如有疑问，请联系举办单位。"
    assert checkin_count(cdb) == 1  # hers from before stays
    assert refusals(cdb) == ["activity_cancelled"]
    # the ticket's own API says it as well (it said 本期已取消举办或已标记未举办，不能签到)
    ticket = phone.get("/checkin/api/scan")
    assert ticket.status_code == 403
    assert ticket.get_json()["error"]["message"] == "本期已取消举办（2026-12-05），不能签退。"
    assert refusals(cdb) == ["activity_cancelled", "activity_cancelled"]


def test_record_checkin_refuses_a_scan_and_a_forced_one(cdb):
    from services.checkin.scans.services import ScanRefused, record_checkin
    from services.checkin.windows.models import CheckinWindow
    from services.common.errors import AppError

    aid, wids = make_activity(cdb)
    cancel()
    with pytest.raises(ScanRefused) as refused:
        scan(cdb, wids[0], 1)
    assert refused.value.code == "activity_cancelled"
    s = cdb.new_session()
    try:
        w = s.get(CheckinWindow, wids[0])
        with pytest.raises(AppError) as exc:
            record_checkin(s, w, nonce="forced:x", scanned_at=w.starts_at, identity=identity(2), forced=True,
                           forced_reason="手机没电")
        assert (exc.value.status, exc.value.code) == (409, "activity_cancelled")
    finally:
        s.close()
    assert checkin_count(cdb) == 0


# ---- the institution's pages and API -------------------------------------------------------------

@pytest.fixture
def held_then_cancelled(checkin_app, cdb):
    """An activity with one scan and one 代签 in its first window, then cancelled by its office."""
    aid, wids = make_activity(cdb)
    clock.set_now(OPEN_AT + dt.timedelta(minutes=20))
    scan(cdb, wids[0], 1)
    c = client_for(checkin_app, "inst_a")
    r = c.post(f"/checkin/api/activities/{aid}/windows/{wids[0]}/forced", headers=api_headers("inst_a"),
               json={**identity(2), "reason": "手机没电"})
    assert r.status_code == 201, r.get_json()
    cancel()
    return aid, wids


def test_forced_checkin_is_refused_on_the_page_and_the_api(checkin_app, cdb, held_then_cancelled):
    aid, wids = held_then_cancelled
    c = client_for(checkin_app, "inst_a")
    url = f"/checkin/activities/{aid}/windows/{wids[0]}/forced"
    r = c.get(url)
    assert r.status_code == 409 and "本期已取消举办（2026-12-05），不能代签。" in r.get_data(as_text=True)
    r = c.post(url, data={"csrf_token": csrf_for(INST_A), **identity(3), "reason": "迟到", "nonce": "b" * 32})
    assert r.status_code == 409 and "不能代签" in r.get_data(as_text=True)
    r = c.post(f"/checkin/api{url.removeprefix('/checkin')}", headers=api_headers("inst_a"),
               json={**identity(3), "reason": "迟到"})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "activity_cancelled"
    assert checkin_count(cdb) == 2


def test_windows_cannot_be_created_edited_or_deleted(checkin_app, cdb, held_then_cancelled):
    aid, wids = held_then_cancelled
    c = client_for(checkin_app, "inst_a")
    h = api_headers("inst_a")
    api = f"/checkin/api/activities/{aid}/windows"
    new = {"title": "补充签到", "kind": "sign_in", "starts_at": "2026-12-10T10:00:00+08:00",
           "ends_at": "2026-12-10T11:00:00+08:00"}
    r = c.post(api, headers=h, json=new)
    assert r.status_code == 409 and "不能新建刷卡周期" in r.get_json()["error"]["message"]
    r = c.put(f"{api}/{wids[1]}", headers=h, json={"title": "改名"})
    assert r.status_code == 409 and "不能修改刷卡周期" in r.get_json()["error"]["message"]
    r = c.delete(f"{api}/{wids[1]}", headers=h)
    assert r.status_code == 409 and "不能删除刷卡周期" in r.get_json()["error"]["message"]
    assert sorted(windows_of(cdb, aid)) == sorted(wids)
    # the pages: no form to fill in, and a form sent anyway is refused with the sentence
    pages = f"/checkin/activities/{aid}/windows"
    assert c.get(f"{pages}/new").status_code == 409
    assert c.get(f"{pages}/{wids[1]}/edit").status_code == 409
    r = c.post(pages, data={"csrf_token": csrf_for(INST_A), "title": "补充签到", "kind": "sign_in",
                            "starts_at": "2026-12-10T10:00", "ends_at": "2026-12-10T11:00"})
    assert r.status_code == 409 and "本期已取消举办（2026-12-05），不能新建刷卡周期。" in r.get_data(as_text=True)
    r = c.post(f"{pages}/{wids[1]}/delete", data={"csrf_token": csrf_for(INST_A)}, follow_redirects=True)
    assert "不能删除刷卡周期" in r.get_data(as_text=True)
    assert sorted(windows_of(cdb, aid)) == sorted(wids)


def test_the_projector_is_not_opened_and_one_on_the_wall_stops(checkin_app, cdb):
    from tests.checkin.test_projector import ptoken_of

    aid, wids = make_activity(cdb)
    clock.set_now(OPEN_AT + dt.timedelta(minutes=5))
    c = client_for(checkin_app, "inst_a")
    page = c.get(f"/checkin/activities/{aid}/windows/{wids[0]}/projector")
    ptoken = ptoken_of(page.get_data(as_text=True))
    anon = checkin_app.test_client()
    svg_url = anon.get(f"/checkin/projector/{ptoken}/live").get_json()["svg_url"]
    assert anon.get(svg_url).status_code == 200
    cancel()
    r = anon.get(f"/checkin/projector/{ptoken}/live")  # the page's script shows the sentence and stops
    body = r.get_json()
    assert r.status_code == 403 and body["error"]["code"] == "activity_cancelled"
    assert body["error"]["message"] == "本期已取消举办（2026-12-05），二维码已停止显示。"
    assert anon.get(svg_url).status_code == 403
    r = c.get(f"/checkin/activities/{aid}/windows/{wids[0]}/projector")
    assert r.status_code == 409 and "微信二维码考勤不能打开" in r.get_data(as_text=True)
    r = c.get(f"/checkin/api/activities/{aid}/windows/{wids[0]}/projector", headers=api_headers("inst_a"))
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "activity_cancelled"


def test_the_pages_and_the_api_say_the_state_and_keep_the_check_ins(checkin_app, cdb, held_then_cancelled):
    aid, wids = held_then_cancelled
    make_activity(cdb, offering_id=102, seq=2)  # another 期, still held
    for who in ("inst_a", "reviewer"):
        c = client_for(checkin_app, who)
        listing = c.get("/checkin/activities").get_data(as_text=True)
        assert listing.count('<span class="badge returned">已取消举办</span>') == 1  # that row only
        assert REASON in listing and "2026-12-05" in listing
        assert f'href="/checkin/activities/{aid}/windows"' not in listing  # no 二维码考勤 for it
        assert f'href="/checkin/activities/{aid}/checkins"' in listing
        detail = c.get(f"/checkin/activities/{aid}").get_data(as_text=True)
        assert "已取消举办" in detail and "举办机构取消举办" in detail and REASON in detail
        assert "微信二维码考勤</a>" not in detail
        body = c.get(f"/checkin/api/activities/{aid}", headers=api_headers(who)).get_json()
        assert (body["cancelled_by"], body["cancel_reason"], body["cancel_label"]) == ("institution", REASON,
                                                                                       "已取消举办")
        assert dt.datetime.fromisoformat(body["cancelled_at"]) == CANCELLED_AT
        # the check-ins are history: listed and exported as before
        names = c.get(f"/checkin/api/activities/{aid}/checkins", headers=api_headers(who)).get_json()
        assert {r["name"] for r in names["items"]} == {identity(1)["name"], identity(2)["name"]}
        checkins_page = c.get(f"/checkin/activities/{aid}/checkins").get_data(as_text=True)
        assert identity(1)["name"] in checkins_page and "已取消举办" in checkins_page
        sheet = c.get(f"/checkin/activities/{aid}/checkins.xlsx")
        assert sheet.status_code == 200
        book = load_workbook(io.BytesIO(sheet.data)).active
        # the sheet, kept apart from the pages, still says the 期 was not held, when and why
        assert f"本期已取消举办（2026-12-05），原因：{REASON}" in book["A2"].value
        rows = list(book.iter_rows(min_row=4, values_only=True))
        assert {r[1] for r in rows} == {identity(1)["name"], identity(2)["name"]}
    other = client_for(checkin_app, "inst_a").get("/checkin/api/activities", headers=api_headers("inst_a"))
    held = [a for a in other.get_json()["items"] if a["offering_id"] == 102]
    assert held and held[0]["cancelled_at"] is None and held[0]["cancel_label"] is None
    # the windows page lists them with their counts, without the actions a cancelled 期 refuses
    page = client_for(checkin_app, "inst_a").get(f"/checkin/activities/{aid}/windows").get_data(as_text=True)
    assert "已取消举办" in page and "新建刷卡周期" not in page
    assert "/projector" not in page and "/forced" not in page and "/edit" not in page
    assert "进行中" not in page and page.count("活动已取消") == len(wids)  # its first window's times are now
    listed = client_for(checkin_app, "reviewer").get(f"/checkin/api/activities/{aid}/windows",
                                                     headers=api_headers("reviewer")).get_json()["items"]
    assert [(w["state"], w["checkins"]) for w in listed][:1] == [("cancelled", 2)]


def test_windows_that_ended_before_the_cancellation_read_ended_with_their_counts(checkin_app, cdb):
    """The morning was held and its window ended; the office cancelled the rest of the 期 at 13:00. The morning's
    window ended normally: 已结束 with its check-ins, not 不再签到; the afternoon's and the next day's read
    活动已取消 (state cancelled in the JSON)."""
    aid, wids = make_activity(cdb)
    clock.set_now(OPEN_AT + dt.timedelta(minutes=20))
    scan(cdb, wids[0], 1)
    scan(cdb, wids[0], 2)
    at = dt.datetime(2026, 12, 10, 5, 0, tzinfo=UTC)  # 13:00 in Shanghai, after the morning's 12:00
    clock.set_now(at)
    cancel(at=at)
    clock.set_now(at + dt.timedelta(days=2))  # the office looks at it afterwards
    page = client_for(checkin_app, "inst_a").get(f"/checkin/activities/{aid}/windows").get_data(as_text=True)
    rows = page[page.index("<tbody>"):].split("</tr>")[:3]
    assert "<td>已结束</td>" in rows[0] and f'?window_id={wids[0]}">2</a>' in rows[0]
    assert all("<td>活动已取消</td>" in row for row in rows[1:]) and "不再签到" not in page
    listed = client_for(checkin_app, "reviewer").get(f"/checkin/api/activities/{aid}/windows",
                                                     headers=api_headers("reviewer")).get_json()["items"]
    assert [(w["id"], w["state"], w["checkins"]) for w in listed] == [
        (wids[0], "closed", 2), (wids[1], "cancelled", 0), (wids[2], "cancelled", 0)]


def keep_refusal(cdb, activity_id: int, window_id: int) -> None:
    """A scan refused as the phone's pages keep it (activity_cancelled), committed."""
    from services.checkin.scans.services import refuse

    s = cdb.new_session()
    try:
        refuse(s, "activity_cancelled", activity_id=activity_id, window_id=window_id, openid="openid-late",
               address="10.0.0.9")
        s.commit()
    finally:
        s.close()


@pytest.mark.parametrize(("by", "said"), [("institution", "本期已取消举办，不能签到。"),
                                          ("committee", "本期已标记未举办，不能签到。")])
def test_the_refused_scans_of_a_cancelled_activity_say_which_ended_it(checkin_app, cdb, by, said):
    aid, wids = make_activity(cdb)
    cancel(by=by)
    keep_refusal(cdb, aid, wids[0])
    page = client_for(checkin_app, "inst_a").get(f"/checkin/activities/{aid}/checkins").get_data(as_text=True)
    refused = page[page.index("未通过的扫码"):]
    assert said in refused and "本期已取消举办或已标记未举办" not in refused
    listed = client_for(checkin_app, "reviewer").get(f"/checkin/api/activities/{aid}/refused-scans",
                                                     headers=api_headers("reviewer"))
    assert listed.status_code == 200, listed.get_json()
    assert [r["reason_label"] for r in listed.get_json()["items"]] == [said]  # the JSON says the same


def test_the_windows_page_of_a_cancelled_activity_no_longer_says_they_can_be_changed(checkin_app, cdb):
    aid, _ = make_activity(cdb)
    held, _ = make_activity(cdb, offering_id=102, seq=2)
    c = client_for(checkin_app, "inst_a")
    assert "可修改" in c.get(f"/checkin/activities/{held}/windows").get_data(as_text=True)
    cancel()
    page = c.get(f"/checkin/activities/{aid}/windows").get_data(as_text=True)
    assert "已取消举办" in page and "时间均为北京时间" in page
    assert "可修改" not in page and "修改须填写原因" not in page


def test_a_long_reason_is_cut_short_in_the_list_and_whole_on_the_activity(checkin_app, cdb):
    long_reason = "经与申办机构核实，主讲专家临时出差、会场改建、报名人数不足，" * 12  # 360 characters
    aid, _ = make_activity(cdb)
    cancel(by="committee", reason=long_reason)
    for who in ("inst_a", "reviewer"):
        c = client_for(checkin_app, who)
        listing = c.get("/checkin/activities").get_data(as_text=True)
        # the row says the start of it, so that the table's other columns keep their width
        assert f"2026-12-05，原因：{long_reason[:39]}…</span>" in listing
        assert listing.count(long_reason) == 1 and f'title="{long_reason}"' in listing  # whole only on hover
        detail = c.get(f"/checkin/activities/{aid}").get_data(as_text=True)
        assert f"原因：{long_reason}" in detail
    short = make_activity(cdb, offering_id=102, seq=2)[0]
    cancel(offering_id=102, reason="讲者因公出国")
    listing = client_for(checkin_app, "inst_a").get("/checkin/activities").get_data(as_text=True)
    assert short and "原因：讲者因公出国</span>" in listing  # a short one whole
