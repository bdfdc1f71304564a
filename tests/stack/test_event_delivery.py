"""No event is lost while delivery is down, and none is applied twice (issue 2, "The spine").

The committee approves an offering while the checkin worker and Redis are down; the activity must
not appear; once they are back it appears exactly once, and a relay re-sending the same event
changes nothing (the consumer is idempotent). The office then cancels the 期 (取消举办): checkin closes the
activity and credits refuses 授分.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import inspect, select, update

from .flows import api_file_offering, api_login, client_from

pytestmark = pytest.mark.stack


def prepare_submitted_filing(stack, demo) -> tuple[dict[str, str], dict[str, str], int]:
    """The demo institution without responsible persons logs in for the first time (adds one), files an
    offering and submits it; a second committee member is added for the approval. Fresh mobiles keep
    the 60-second SMS rule of the other tests out of the way. Returns (institution, committee, filing id)."""
    from services.projects.institutions.services import create_reviewer

    base = stack.base_url
    inst = next(i for i in demo["institutions"] if i["account"] == "sxsrmyy")
    office = client_from("127.0.0.31")
    inst_auth = api_login(base, office, stack.sms_log, "institution", inst["account"], inst["password"],
                          "13700009999", first_admin="王科长")
    filing_id = api_file_offering(base, office, inst_auth)
    session = stack.session("projects")
    try:
        create_reviewer(session, "committee02", "审核员乙", "Review2@2026", "13900000002")
        session.commit()
    finally:
        session.close()
    rev_auth = api_login(base, client_from("127.0.0.32"), stack.sms_log, "reviewer", "committee02",
                         "Review2@2026", "13900000002")
    return inst_auth, rev_auth, filing_id


def approve(stack, rev_auth: dict[str, str], filing_id: int) -> int:
    """The committee approves through the API; returns the offering id."""
    r = stack.http.post(stack.url(f"/projects/api/review/filings/{filing_id}/approve"), headers=rev_auth, json={})
    assert r.status_code == 200, r.text
    return r.json()["offering_id"]


def activities_of(stack, inst_auth: dict[str, str], offering_id: int) -> list[dict]:
    """The institution's activities for this offering, as 继教活动-项目管理 lists them."""
    resp = stack.http.get(stack.url("/checkin/api/activities"), params={"per_page": 100}, headers=inst_auth)
    assert resp.status_code == 200, resp.text
    return [item for item in resp.json()["items"] if item["offering_id"] == offering_id]


def _log_mentions(stack, name: str, needle: str) -> int:
    path = stack.log_path(name)
    return path.read_text(errors="replace").count(needle) if path.exists() else 0


def test_activity_appears_exactly_once_after_delivery_returns(stack, demo):
    from services.projects.db import outbox

    assert inspect(stack.engine("checkin")).has_table("activities"), (
        "the checkin database has no `activities` table after `deploy.manage upgrade`: "
        "services/checkin/migrations needs a revision for it")
    inst_auth, rev_auth, filing_id = prepare_submitted_filing(stack, demo)

    stack.stop_process("worker-checkin")
    stack.stop_process("redis")
    try:
        offering_id = approve(stack, rev_auth, filing_id)
        time.sleep(3)  # the relay tries and fails meanwhile
        assert activities_of(stack, inst_auth, offering_id) == []
        with stack.engine("projects").connect() as conn:
            rows = conn.execute(select(outbox).where(outbox.c.name == "offering.approved")
                                .order_by(outbox.c.id.desc()).limit(2)).fetchall()
        event_id = rows[0].event_id
        assert {r.event_id for r in rows} == {event_id}
        assert {r.consumer for r in rows} == {"checkin", "credits"}
        assert all(r.sent_at is None for r in rows), "nothing can be sent while Redis is down"
    finally:
        stack.start_process("redis")
        stack.start_process("worker-checkin")

    found = stack.wait_until(lambda: activities_of(stack, inst_auth, offering_id), 60,
                             what="the activity after delivery came back")
    assert len(found) == 1

    def credits_record():
        r = stack.http.get(stack.url(f"/credits/api/offerings/{offering_id}"), headers=inst_auth)
        return r.json() if r.status_code == 200 else None

    record = stack.wait_until(credits_record, 30, what="credits to record the offering's credit")
    assert record["credit_class"] and float(record["credit_value"]) > 0
    stack.wait_until(lambda: _log_mentions(stack, "worker-checkin", f"{event_id} applied"), 20)

    # The relay sends the same event again (as after a crash between send and mark): nothing changes.
    with stack.engine("projects").begin() as conn:
        conn.execute(update(outbox).where(outbox.c.event_id == event_id, outbox.c.consumer == "checkin")
                     .values(sent_at=None))
    stack.wait_until(lambda: _log_mentions(stack, "worker-checkin", f"{event_id} skipped"), 60,
                     what="the redelivered event to be skipped")
    assert len(activities_of(stack, inst_auth, offering_id)) == 1
    assert _log_mentions(stack, "worker-checkin", f"{event_id} applied") == 1

    # 取消举办 before it starts: the same relay and workers close the activity and stop 授分, exactly once
    r = stack.http.post(stack.url(f"/projects/api/filings/{filing_id}/cancel"), headers=inst_auth,
                        json={"reason": "会场改作他用"})
    assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
    [closed] = stack.wait_until(lambda: [a for a in activities_of(stack, inst_auth, offering_id)
                                         if a.get("cancelled_at")], 60, what="checkin to close the activity")
    assert (closed["cancelled_by"], closed["cancel_reason"]) == ("institution", "会场改作他用")
    record = stack.wait_until(lambda: (credits_record() or {}).get("cancelled_at") and credits_record(), 60,
                              what="credits to record the cancellation")
    assert record["cancelled_by"] == "institution"
    r = stack.http.post(stack.url(f"/credits/api/offerings/{offering_id}/grant"), headers=inst_auth,
                        json={"activity_date": record["ends_on"]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "offering_cancelled", r.text



def test_a_stopped_relay_says_why_at_the_end_of_its_log(stack):
    """README: the reason a process ended is at the end of var/log/<process>.log (a relay's used to end with its
    start-up lines)."""
    stack.stop_process("relay-certs")
    try:
        last = stack.log_path("relay-certs").read_text(errors="replace").strip().splitlines()[-2:]
        assert "relay for certs stopping on SIGTERM" in last[0], last
        assert last[1].endswith("relay for certs stopped"), last
    finally:
        stack.start_process("relay-certs")
