"""Who may call each endpoint of 二维码考勤 (刷卡周期, 投影页, 代签, 签到名单): one row per endpoint and caller."""

from __future__ import annotations

import datetime as dt

import pytest

from services.common import clock
from services.common.web import endpoint_access
from tests.checkin.test_windows_support import (
    INST_A,
    OPEN_AT,
    WHO,
    api_headers,
    client_for,
    csrf_for,
    identity,
    make_activity,
)

A = "/checkin/activities/{a}"
API = "/checkin/api/activities/{a}"
WINDOW_FORM = {"title": "开幕式与专题讲座", "kind": "sign_in", "starts_at": "2026-12-10T08:30",
               "ends_at": "2026-12-10T12:00", "version": "1"}
NEW_WINDOW = {"title": "签退", "kind": "sign_out", "starts_at": "2026-12-10T17:00", "ends_at": "2026-12-10T17:30"}
FORCED = {**identity(7), "reason": "手机没电"}

# expected status for: anonymous, inst_a (owner), inst_b, reviewer, trainee
PAGE_READ = (302, 200, 404, 200, 403)
PAGE_OWNER = (302, 200, 404, 403, 403)
API_READ = (401, 200, 404, 200, 403)
PUBLIC = (200, 200, 200, 200, 200)

# (method, rule as the app declares it, url template, body kind, body, expected statuses)
TABLE = [
    ("GET", "/checkin/activities/<int:activity_id>/windows", A + "/windows", None, None, PAGE_READ),
    ("GET", "/checkin/activities/<int:activity_id>/windows/new", A + "/windows/new", None, None, PAGE_OWNER),
    ("POST", "/checkin/activities/<int:activity_id>/windows", A + "/windows", "form", NEW_WINDOW,
     (401, 302, 404, 403, 403)),
    ("GET", "/checkin/activities/<int:activity_id>/windows/<int:window_id>/edit", A + "/windows/{w}/edit", None, None,
     PAGE_OWNER),
    ("POST", "/checkin/activities/<int:activity_id>/windows/<int:window_id>/edit", A + "/windows/{w}/edit", "form",
     WINDOW_FORM, (401, 302, 404, 403, 403)),
    ("POST", "/checkin/activities/<int:activity_id>/windows/<int:window_id>/delete", A + "/windows/{w2}/delete",
     "form", {}, (401, 302, 404, 403, 403)),
    ("GET", "/checkin/activities/<int:activity_id>/windows/<int:window_id>/forced", A + "/windows/{w}/forced", None,
     None, PAGE_OWNER),
    ("POST", "/checkin/activities/<int:activity_id>/windows/<int:window_id>/forced", A + "/windows/{w}/forced",
     "form", FORCED, (401, 302, 404, 403, 403)),
    ("GET", "/checkin/activities/<int:activity_id>/windows/<int:window_id>/projector", A + "/windows/{w}/projector",
     None, None, PAGE_OWNER),
    ("GET", "/checkin/activities/<int:activity_id>/checkins", A + "/checkins", None, None, PAGE_READ),
    ("POST", "/checkin/activities/<int:activity_id>/checkins", A + "/checkins", "form", {"q": "张伟"},
     (401, 302, 404, 302, 403)),
    ("GET", "/checkin/activities/<int:activity_id>/checkins.xlsx", A + "/checkins.xlsx", None, None, PAGE_READ),
    ("POST", "/checkin/activities/<int:activity_id>/checkins.xlsx", A + "/checkins.xlsx", "form", {"q": "张伟"},
     (401, 200, 404, 200, 403)),
    ("GET", "/checkin/projector/<ptoken>/live", "/checkin/projector/{p}/live", None, None, PUBLIC),
    ("GET", "/checkin/projector/<ptoken>/qr.svg", "/checkin/projector/{p}/qr.svg", None, None, PUBLIC),
    ("GET", "/checkin/api/activities/<int:activity_id>/windows", API + "/windows", None, None, API_READ),
    ("POST", "/checkin/api/activities/<int:activity_id>/windows", API + "/windows", "json", NEW_WINDOW,
     (401, 201, 404, 403, 403)),
    ("GET", "/checkin/api/activities/<int:activity_id>/windows/<int:window_id>", API + "/windows/{w}", None, None,
     API_READ),
    ("PUT", "/checkin/api/activities/<int:activity_id>/windows/<int:window_id>", API + "/windows/{w}", "json",
     {"title": "新名称"}, (401, 200, 404, 403, 403)),
    ("DELETE", "/checkin/api/activities/<int:activity_id>/windows/<int:window_id>", API + "/windows/{w2}", None, None,
     (401, 204, 404, 403, 403)),
    ("POST", "/checkin/api/activities/<int:activity_id>/windows/<int:window_id>/forced", API + "/windows/{w}/forced",
     "json", FORCED, (401, 201, 404, 403, 403)),
    ("GET", "/checkin/api/activities/<int:activity_id>/windows/<int:window_id>/projector",
     API + "/windows/{w}/projector", None, None, (401, 200, 404, 403, 403)),
    ("GET", "/checkin/api/activities/<int:activity_id>/checkins", API + "/checkins", None, None, API_READ),
    ("POST", "/checkin/api/activities/<int:activity_id>/checkins/search", API + "/checkins/search", "json",
     {"q": "张伟"}, API_READ),
    ("GET", "/checkin/api/activities/<int:activity_id>/refused-scans", API + "/refused-scans", None, None, API_READ),
]
CALLERS = ("anonymous", "inst_a", "inst_b", "reviewer", "trainee")


def test_the_table_covers_every_endpoint_of_this_feature(checkin_app):
    mine = {rule for rule in endpoint_access(checkin_app)
            if any(part in rule for part in ("/windows", "/checkins", "/projector", "/refused-scans"))}
    assert mine == {f"{method} {rule}" for method, rule, *_ in TABLE}


@pytest.mark.parametrize("who", CALLERS)
@pytest.mark.parametrize("row", TABLE, ids=[f"{r[0]} {r[2]}" for r in TABLE])
def test_permissions(checkin_app, databases, row, who):
    from services.checkin.projector.services import issue_ptoken
    from services.checkin.windows.models import CheckinWindow

    method, _rule, template, kind, body, expected = row
    aid, wids = make_activity(databases["checkin"])
    clock.set_now(OPEN_AT + dt.timedelta(minutes=10))
    s = databases["checkin"].new_session()
    ptoken = issue_ptoken(s.get(CheckinWindow, wids[0]), INST_A)
    s.close()
    url = template.format(a=aid, w=wids[0], w2=wids[1], p=ptoken)
    is_api = "/api/" in url
    if is_api:
        client = checkin_app.test_client()
        kwargs = {"headers": api_headers(who)}
        if kind == "json":
            kwargs["json"] = body
    else:
        client = client_for(checkin_app, who)
        kwargs = {"data": {**body, "csrf_token": csrf_for(WHO[who])}} if kind == "form" else {}
    r = client.open(url, method=method, **kwargs)
    status = expected[CALLERS.index(who)]
    assert r.status_code == status, (who, url, r.get_data(as_text=True)[:300])
    if status == 302 and who == "anonymous":
        assert "/projects/login" in r.headers["Location"]
