"""刷卡周期 made and deleted in checkin reach credits' 考勤分析 through the real relay, Redis and workers: the windows
made from the filing's 日程 at approval and one the office adds are listed with 0 scans before anyone scanned in, and
a window deleted at 刷卡周期 is listed no more (checkin.window_changed / checkin.window_deleted)."""

from __future__ import annotations

import datetime as dt

import pytest

from services.common import clock

from .flows import activity_held_today, local_minute

pytestmark = pytest.mark.stack

ADMIN = ("周期同步员", "13700009201")  # fresh mobiles: the other stack tests' 60-second SMS rule stays out of the way
REVIEWER = ("committee92", "审核员周期", "Review92@2026", "13900009203")


def test_windows_made_and_deleted_in_checkin_are_what_credits_lists(stack, demo) -> None:
    base = stack.base_url
    aid, offering_id, auth, office = activity_held_today(
        stack, demo, admin=ADMIN, reviewer=REVIEWER, venue="西安国际会议中心（周期同步）",
        addresses=("127.0.0.92", "127.0.0.93"))
    r = office.get(f"{base}/checkin/api/activities/{aid}/windows", headers=auth)
    assert r.status_code == 200, r.text
    schedule = [w["id"] for w in r.json()["items"]]
    assert len(schedule) == 2, r.json()  # one per session of the filing's 日程

    def listed() -> list[tuple[int, int]]:
        r = office.get(f"{base}/credits/api/offerings/{offering_id}/windows", headers=auth)
        assert r.status_code == 200, r.text
        return [(w["window_id"], w["scans"]) for w in r.json()]

    def until(expected: list[tuple[int, int]], what: str) -> None:
        stack.wait_until(lambda: sorted(listed()) == sorted(expected), 60, what=what)

    until([(w, 0) for w in schedule], "the 日程's windows, nobody scanned in, in credits' 考勤分析")

    starts = clock.local_midnight_utc(clock.today_local()) + dt.timedelta(days=1, hours=1)  # 09:00 tomorrow
    r = office.post(f"{base}/checkin/api/activities/{aid}/windows", headers=auth, json={
        "title": "第二天上午 签到", "kind": "sign_in", "starts_at": local_minute(starts),
        "ends_at": local_minute(starts + dt.timedelta(hours=2))})
    assert r.status_code == 201, r.text
    added = r.json()["id"]
    until([(w, 0) for w in schedule] + [(added, 0)], "the window the office added")

    r = office.delete(f"{base}/checkin/api/activities/{aid}/windows/{schedule[1]}", headers=auth)
    assert r.status_code == 204, r.text
    until([(schedule[0], 0), (added, 0)], "the deleted window gone from credits' 考勤分析")
