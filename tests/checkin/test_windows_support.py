"""Shared helpers of the 二维码考勤 tests (刷卡周期, 投影页, 代签, 签到名单); no tests here."""

from __future__ import annotations

import datetime as dt

from stdnum.cn import ric

from services.common import clock
from services.common.auth import Principal
from services.common.events import make_envelope
from tests.conftest import bearer, login_client
from tests.conftest import csrf_for as conftest_csrf_for

UTC = dt.UTC
INST_A = Principal(role="institution", subject="inst:1:admin:1", name="西安市第一医院", institution_id=1, admin_id=1)
INST_B = Principal(role="institution", subject="inst:2:admin:2", name="宝鸡市中心医院", institution_id=2, admin_id=2)
REVIEWER = Principal(role="reviewer", subject="reviewer:1", name="审核员甲", reviewer_id=1)
TRAINEE = Principal(role="trainee", subject="trainee:x", trainee_key="x")
WHO = {"anonymous": None, "inst_a": INST_A, "inst_b": INST_B, "reviewer": REVIEWER, "trainee": TRAINEE}

DAY1, DAY2 = dt.date(2026, 12, 10), dt.date(2026, 12, 11)
SCHEDULE = [
    {"date": DAY1, "start": dt.time(8, 30), "end": dt.time(12, 0), "title": "开幕式与专题讲座"},
    {"date": DAY1, "start": dt.time(14, 0), "end": dt.time(17, 30), "title": ""},
    {"date": DAY2, "start": dt.time(8, 30), "end": dt.time(12, 0), "title": "病例讨论"},
]
# 08:30 Shanghai on day 1 = 00:30 UTC
OPEN_AT = dt.datetime(2026, 12, 10, 0, 30, tzinfo=UTC)


def payload(**over):
    base = {
        "offering_id": 101, "institution_id": 1, "institution_name": "西安市第一医院", "project_id": 11,
        "project_number": "2026-01-01-001", "project_title": "心血管急危重症诊治进展", "year": 2026, "seq": 1,
        "credit_class": "Ⅰ类", "credit_value": "10", "hours": "20", "starts_on": DAY1, "ends_on": DAY2,
        "venue": "西安市雁塔区会议中心", "mode": "线下", "schedule": SCHEDULE,
    }
    base.update(over)
    return base


def approve(**over):
    """offering.approved through the real consumer (the checkin worker's task, run in-process)."""
    from services.checkin.worker import handle_event

    env = make_envelope("offering.approved", "projects", payload(**over))
    assert handle_event.run(env) is True
    return env


def make_activity(cdb, **over):
    """Approve an offering (at a fixed time before it) and return (activity id, [window ids by start])."""
    from sqlalchemy import select

    from services.checkin.activities.models import Activity
    from services.checkin.windows.models import CheckinWindow

    saved = clock._override
    if saved is None:
        clock.set_now(dt.datetime(2026, 11, 20, 2, 0, tzinfo=UTC))
    approve(**over)
    clock.set_now(saved)
    s = cdb.new_session()
    try:
        a = s.scalars(select(Activity).where(Activity.offering_id == over.get("offering_id", 101))).one()
        wids = s.scalars(select(CheckinWindow.id).where(CheckinWindow.activity_id == a.id)
                         .order_by(CheckinWindow.starts_at)).all()
        return a.id, list(wids)
    finally:
        s.close()


def id_number(serial: int) -> str:
    body = f"610102199001{serial:02d}123"[:17]
    return body + ric.calc_check_digit(body + "0")  # stdnum expects the number with a check digit


NAMES = ("吴倩", "张伟", "李娜", "王芳", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周杰")


def identity(serial: int = 1, **over):
    return {"name": NAMES[serial % 10],
            "id_number": id_number(serial), "mobile": f"1391234{serial:04d}", "title": "主治医师",
            "unit": "西安市第一医院", **over}


def scan(cdb, window_id: int, serial: int, at: dt.datetime | None = None):
    """A trainee's scan stored through record_checkin (as the phone flow does)."""
    from services.checkin.scans.services import record_checkin
    from services.checkin.windows.models import CheckinWindow

    s = cdb.new_session()
    try:
        w = s.get(CheckinWindow, window_id)
        r = record_checkin(s, w, nonce=f"scan-{window_id}-{serial}",
                           scanned_at=at or w.starts_at + dt.timedelta(minutes=5), identity=identity(serial),
                           openid=f"openid-{serial}", address=f"10.0.0.{serial}")
        s.commit()
        return r.checkin.id
    finally:
        s.close()


ANON_VISITOR = "test-visitor"  # the cme_csrf cookie a test client without a session sends (services.common.auth)


def csrf_for(principal: Principal | None) -> str:
    return conftest_csrf_for(principal, ANON_VISITOR)


def client_for(app, who: str):
    client = app.test_client()
    if WHO[who] is not None:
        login_client(client, WHO[who])
    return client


def api_headers(who: str) -> dict[str, str]:
    return bearer(WHO[who]) if WHO[who] is not None else {}


def audit_entries(cdb, action: str | None = None):
    from sqlalchemy import select

    from services.checkin.windows.models import AuditLog

    s = cdb.new_session()
    try:
        stmt = select(AuditLog).order_by(AuditLog.id)
        if action:
            stmt = stmt.where(AuditLog.action == action)
        return s.scalars(stmt).all()
    finally:
        s.close()
