"""The one place that stores check-ins: idempotency, binding, windows, flags and the event."""

import datetime as dt
import json

import pytest
from sqlalchemy import func, select
from stdnum.cn import ric

from services.common import clock
from services.common.auth import Principal

UTC = dt.UTC
START = dt.datetime(2026, 12, 10, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai


def id_number(serial: int) -> str:
    body = f"610102199001{serial:02d}123"[:17]
    return body + ric.calc_check_digit(body + "0")  # stdnum wants a placeholder check digit


def identity(serial: int = 1, **over):
    return {"name": f"张{serial}", "id_number": id_number(serial), "mobile": f"1391234{serial:04d}",
            "title": "主治医师", "unit": "西安市第一医院", **over}


@pytest.fixture
def window(databases):
    from services.checkin.activities.models import Activity
    from services.checkin.db import db
    from services.checkin.windows.models import CheckinWindow

    s = db.new_session()
    a = Activity(offering_id=1, institution_id=1, institution_name="西安市第一医院", project_id=1,
                 project_number="2026-01-001", project_title="心血管进展", year=2026, seq=1, credit_class="Ⅰ类",
                 credit_value=10, hours=20, starts_on=START.date(), ends_on=START.date(), venue="西安", mode="线下",
                 schedule=[], approved_at=START)
    s.add(a)
    s.flush()
    w = CheckinWindow(activity_id=a.id, title="上午", kind="sign_in", starts_at=START,
                      ends_at=START + dt.timedelta(hours=4))
    s.add(w)
    s.commit()
    yield s, w
    s.close()


def _count(s, model):
    return s.scalar(select(func.count()).select_from(model))


def test_first_scan_then_repeat_and_one_tap(window):
    from services.checkin.db import outbox
    from services.checkin.scans.models import Checkin
    from services.checkin.scans.services import record_checkin

    s, w = window
    at = START + dt.timedelta(minutes=5)
    first = record_checkin(s, w, nonce="n1", scanned_at=at, identity=identity(), openid="o1", address="10.0.0.1")
    s.commit()
    assert first.created
    again = record_checkin(s, w, nonce="n1", scanned_at=at, identity=identity(), openid="o1")
    assert not again.created and again.checkin.id == first.checkin.id
    tap = record_checkin(s, w, nonce="n2", scanned_at=at, openid="o1")  # one tap: no identity
    assert not tap.created and tap.checkin.id == first.checkin.id
    s.commit()
    assert _count(s, Checkin) == 1
    events = s.execute(select(outbox.c.envelope).where(outbox.c.name == "checkin.recorded")).scalars().all()
    assert len(events) == 1
    payload = json.loads(events[0])["payload"]
    assert id_number(1) not in events[0] and "13912340001" not in events[0]
    assert payload["trainee_key"] == first.checkin.trainee.trainee_key and payload["forced"] is False


def test_second_id_from_same_wechat_is_refused(window):
    from services.checkin.scans.models import RefusedScan
    from services.checkin.scans.services import ScanRefused, record_checkin

    s, w = window
    at = START + dt.timedelta(minutes=5)
    record_checkin(s, w, nonce="a", scanned_at=at, identity=identity(1), openid="o1")
    s.commit()
    with pytest.raises(ScanRefused) as refused:
        record_checkin(s, w, nonce="b", scanned_at=at, identity=identity(2), openid="o1")
    s.commit()  # the refusal is kept
    assert refused.value.reason == "wechat_bound_to_other"
    assert s.scalars(select(RefusedScan.reason)).all() == ["wechat_bound_to_other"]
    from services.checkin.trainees.models import Trainee

    assert s.scalar(select(func.count()).select_from(Trainee)) == 1  # the second identity was not kept


def test_outside_window_refused_but_forced_allowed(window):
    from services.checkin.scans.services import ScanRefused, record_checkin

    s, w = window
    late = START + dt.timedelta(hours=5)
    with pytest.raises(ScanRefused) as refused:
        record_checkin(s, w, nonce="x", scanned_at=late, identity=identity(), openid="o1")
    assert refused.value.reason == "not_in_window"
    s.rollback()
    actor = Principal(role="institution", subject="inst:1:admin:1", name="西安市第一医院", institution_id=1, admin_id=1)
    forced = record_checkin(s, w, nonce="y", scanned_at=late, identity=identity(), forced=True,
                            forced_reason="手机没电", actor=actor)
    s.commit()
    assert forced.created and forced.checkin.forced and "forced" in forced.checkin.flags


def test_many_identities_from_one_address_are_flagged(window):
    from services.checkin.scans.services import record_checkin

    s, w = window
    clock.set_now(START + dt.timedelta(minutes=10))
    results = [record_checkin(s, w, nonce=f"n{i}", scanned_at=START + dt.timedelta(minutes=9),
                              identity=identity(i), openid=f"o{i}", address="10.0.0.9") for i in range(1, 6)]
    s.commit()
    flagged = ["many_identities_same_address" in r.checkin.flags for r in results]
    assert flagged == [False, False, False, True, True]


def test_known_id_on_a_new_wechat_account_is_flagged(window):
    from services.checkin.scans.services import record_checkin
    from services.checkin.windows.models import CheckinWindow

    s, w = window
    later = CheckinWindow(activity_id=w.activity_id, title="下午", kind="sign_in",
                          starts_at=START + dt.timedelta(hours=5), ends_at=START + dt.timedelta(hours=8))
    s.add(later)
    s.commit()
    first = record_checkin(s, w, nonce="p1", scanned_at=START + dt.timedelta(minutes=5), identity=identity(),
                           openid="old-phone")
    s.commit()
    clock.set_now(START + dt.timedelta(hours=5, minutes=1))  # a later upsert: updated_at moves on
    second = record_checkin(s, later, nonce="p2", scanned_at=START + dt.timedelta(hours=5, minutes=1),
                            identity=identity(), openid="new-phone")
    s.commit()
    assert "id_on_new_wechat" not in first.checkin.flags
    assert "id_on_new_wechat" in second.checkin.flags
