"""The local runner's fake WeChat, and check-ins reaching credits (issue 3, "Events" and "Done when").

Every service of the stack is pointed at the fake WeChat OAuth server that the runner supervises;
a check-in stored while Redis is down reaches credits' copy once Redis is back, exactly once.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from sqlalchemy import inspect

from services.common import clock
from services.common.auth import Principal, issue_token

pytestmark = pytest.mark.stack


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def test_fake_wechat_is_supervised_and_every_service_uses_it(stack):
    status = stack.stack.status()
    assert status.get("fake-wechat"), status
    for name in ("web-projects", "web-checkin", "web-credits", "web-certs", "worker-checkin"):
        env = _environ(status[name])
        assert env["CME_WECHAT_API_BASE"] == stack.wechat_url, name
        assert env["CME_WECHAT_OPEN_BASE"] == stack.wechat_url, name
        assert env["CME_WECHAT_UA_REQUIRED"] == "0", name
        assert env["CME_PUBLIC_BASE_URL"] == stack.base_url, name
    back = stack.base_url + "/checkin/wechat/back"
    r = requests.get(stack.wechat_url + "connect/oauth2/authorize?" + urlencode({
        "appid": "wx-fake-appid", "redirect_uri": back, "response_type": "code", "scope": "snsapi_base",
        "state": "s1"}), allow_redirects=False, timeout=5)
    assert r.status_code == 302
    target = urlsplit(r.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == back and parse_qs(target.query)["code"]


def _store_checkin(stack) -> int:
    """An activity with an open window in the stack's checkin database, and one check-in through
    record_checkin (the one place that stores them and emits checkin.recorded)."""
    from services.checkin import models  # noqa: F401 - the whole schema is known
    from services.checkin.activities.models import Activity
    from services.checkin.scans.services import record_checkin
    from services.checkin.windows.models import CheckinWindow

    now = clock.now()
    today = clock.today_local()  # the activity's day is Beijing's (UTC is still on yesterday before 08:00)
    s = stack.session("checkin")
    try:
        a = Activity(offering_id=990001, institution_id=990001, institution_name="测试医院", project_id=1,
                     project_number=f"{today.year}-99-001", project_title="签到消息测试", year=today.year, seq=1,
                     credit_class="Ⅰ类", credit_value=1, hours=2, starts_on=today, ends_on=today,
                     venue="西安", mode="线下", schedule=[], approved_at=now)
        s.add(a)
        s.flush()
        w = CheckinWindow(activity_id=a.id, title="上午", kind="sign_in", starts_at=now - dt.timedelta(minutes=5),
                          ends_at=now + dt.timedelta(hours=1))
        s.add(w)
        s.flush()
        identity = {"name": "赵六", "id_number": "11010519491231002X", "mobile": "13912340001", "title": "主治医师",
                    "unit": "测试医院"}
        record_checkin(s, w, nonce="stack-nonce-1", scanned_at=now, identity=identity, openid="o-stack-test-1",
                       address="127.0.0.9")
        s.commit()
        return a.id
    finally:
        s.close()


def test_checkin_reaches_credits_after_redis_comes_back(stack):
    assert inspect(stack.engine("credits")).has_table("attendance_records"), (
        "the credits database has no `attendance_records` table after `deploy.manage upgrade`: "
        "services/credits/migrations needs a revision for it")
    reviewer = {"Authorization": "Bearer " + issue_token(Principal(role="reviewer", subject="reviewer:stack",
                                                                   reviewer_id=1))}

    def attendance(activity_id: int):
        r = stack.http.get(stack.url(f"/credits/api/activities/{activity_id}/attendance"), headers=reviewer)
        return r.json() if r.status_code == 200 else None

    stack.stop_process("redis")
    try:
        activity_id = _store_checkin(stack)
        time.sleep(2)  # the relay tries and fails meanwhile
        assert attendance(activity_id) is None
    finally:
        stack.start_process("redis")
    stack.wait_healthy(60)
    body = stack.wait_until(lambda: attendance(activity_id), 60, what="credits to record the check-in")
    assert body["count"] == 1
    [rec] = body["records"]
    assert (rec["name"], rec["id_masked"], rec["mobile_masked"]) == ("赵六", "1101**********002X", "139****0001")
