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


def new_window(s):
    """In checkin's session s: an approved activity with one sign-in window (08:30–12:30 Shanghai time on 10
    December), committed."""
    from services.checkin.activities.models import Activity
    from services.checkin.windows.models import CheckinWindow

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
    return w


@pytest.fixture
def window(databases):
    from services.checkin.db import db

    s = db.new_session()
    yield s, new_window(s)
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
    # the window's 标题 travels (credits' 考勤分析 names the window by it); `title` stays the trainee's 职称
    assert (payload["window_title"], payload["title"]) == ("上午", "主治医师")


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


# ---- record_scan: a trainee's own scan, through the PostgreSQL function and through record_checkin ----------

@pytest.fixture(params=["sql", "orm"])
def scan(request, window):
    """record_scan as each path runs it (the ORM one is what SQLite uses); both must keep the same rules."""
    from services.checkin.scans import services

    _s, w = window
    run = services._record_scan_sql if request.param == "sql" else services._record_scan_orm

    def call(nonce, at=START + dt.timedelta(minutes=5), who=None, openid="o1", address=None, window_id=None,
             activity_id=None):
        try:
            return run(activity_id or w.activity_id, window_id or w.id, nonce, at, who, openid, address)
        finally:
            services.db.session.remove()

    return call


def test_scan_first_then_repeat_and_one_tap(window, scan):
    from services.checkin.db import outbox
    from services.checkin.scans.models import Checkin
    from services.checkin.scans.services import payload_of
    from services.common.events import CheckinRecordedSchema

    s, w = window
    first = scan("n1", who=identity(), address="10.0.0.1")
    again = scan("n1", who=identity())
    tap = scan("n2")  # one tap: the WeChat account is bound now
    assert first.created and first.name == "张1"
    assert (again.created, again.checkin_id, tap.created, tap.checkin_id) == (False, first.checkin_id, False,
                                                                            first.checkin_id)
    assert _count(s, Checkin) == 1
    envelopes = s.execute(select(outbox.c.envelope, outbox.c.consumer)).all()
    assert [c for _e, c in envelopes] == ["credits"]
    text = envelopes[0][0]
    assert id_number(1) not in text and "13912340001" not in text
    envelope = json.loads(text)
    assert (envelope["name"], envelope["producer"], envelope["version"]) == ("checkin.recorded", "checkin", 1)
    schema = CheckinRecordedSchema()
    stored = s.scalars(select(Checkin)).one()
    # the function writes the payload the Python producer would (as the consumer reads it)
    assert schema.load(envelope["payload"]) == schema.load(schema.dump(payload_of(stored)))
    assert (envelope["payload"]["window_title"], envelope["payload"]["title"]) == ("上午", "主治医师")
    assert stored.scanned_at == first.scanned_at == START + dt.timedelta(minutes=5)


def test_scan_after_the_institution_checked_the_trainee_in_answers_with_that_forced_checkin(window, scan):
    from services.checkin.scans.services import record_checkin

    s, w = window
    actor = Principal(role="institution", subject="inst:1:admin:1", name="西安市第一医院", institution_id=1, admin_id=1)
    forced = record_checkin(s, w, nonce="f1", scanned_at=START + dt.timedelta(minutes=1), identity=identity(),
                            forced=True, forced_reason="手机没电", actor=actor)
    s.commit()
    answer = scan("n1", who=identity())
    assert (answer.checkin_id, answer.created, answer.forced) == (forced.checkin.id, False, True)


def test_scan_second_id_from_same_wechat_is_refused(window, scan):
    from services.checkin.scans.models import RefusedScan
    from services.checkin.scans.services import ScanRefused
    from services.checkin.trainees.models import Trainee

    s, _w = window
    scan("a", who=identity(1))
    with pytest.raises(ScanRefused) as refused:
        scan("b", who=identity(2))
    assert refused.value.reason == "wechat_bound_to_other" and refused.value.status == 403
    kept = s.scalars(select(RefusedScan)).one()
    assert (kept.reason, kept.openid) == ("wechat_bound_to_other", "o1") and kept.trainee_key
    assert _count(s, Trainee) == 1  # the second identity was not kept


def test_scan_outside_the_window_is_refused_and_kept(window, scan):
    from services.checkin.scans.models import Checkin, RefusedScan
    from services.checkin.scans.services import ScanRefused
    from services.checkin.trainees.models import Trainee

    s, w = window
    with pytest.raises(ScanRefused) as refused:
        scan("x", at=START + dt.timedelta(hours=5), who=identity())
    assert refused.value.reason == "not_in_window"
    kept = s.scalars(select(RefusedScan)).one()
    assert (kept.reason, kept.window_id, kept.activity_id) == ("not_in_window", w.id, w.activity_id)
    assert _count(s, Checkin) == _count(s, Trainee) == 0


def test_scan_of_a_window_gone_or_of_another_activity_is_404(window, scan):
    from services.common.errors import AppError

    _s, w = window
    for kwargs in ({"window_id": w.id + 100}, {"activity_id": w.activity_id + 1}):
        with pytest.raises(AppError) as gone:
            scan("g", who=identity(), **kwargs)
        assert (gone.value.status, gone.value.code) == (404, "not_found")


def test_one_tap_of_an_unbound_wechat_account_asks_for_the_form(window, scan):
    from services.checkin.scans.models import Checkin
    from services.common.errors import AppError

    s, _w = window
    with pytest.raises(AppError) as asked:
        scan("t", openid="nobody")
    assert (asked.value.status, asked.value.code) == (422, "identity_required")
    assert _count(s, Checkin) == 0


def test_scan_flags_many_identities_from_one_address(window, scan):
    from services.checkin.scans.models import Checkin

    s, _w = window
    clock.set_now(START + dt.timedelta(minutes=10))
    for i in range(1, 6):
        scan(f"n{i}", at=START + dt.timedelta(minutes=9), who=identity(i), openid=f"o{i}", address="10.0.0.9")
    flags = s.scalars(select(Checkin.flags).order_by(Checkin.id)).all()
    assert ["many_identities_same_address" in f for f in flags] == [False, False, False, True, True]


def test_scan_counts_distinct_recent_identities_of_the_address(window, scan):
    """Only check-ins of the last minutes count, each trainee once (two windows are one identity), and only
    those of the same address; the newest are read first, so the order of the rows must not matter."""
    from services.checkin.scans.models import Checkin
    from services.checkin.windows.models import CheckinWindow

    s, w = window
    w2 = CheckinWindow(activity_id=w.activity_id, title="上午签退", kind="sign_out", starts_at=START,
                       ends_at=START + dt.timedelta(hours=4))
    s.add(w2)
    s.commit()

    def at(minutes, nonce, who, window_id=None, address="10.0.0.9"):
        clock.set_now(START + dt.timedelta(minutes=minutes))
        scan(nonce, at=START + dt.timedelta(minutes=minutes), who=identity(who), openid=f"o{who}", address=address,
             window_id=window_id)

    for who in (1, 2, 3):
        at(5, f"old{who}", who)  # 25 minutes before the rest: out of the 10-minute span
    at(30, "d1", 4)
    at(31, "d2", 4, window_id=w2.id)  # the same trainee again
    at(31, "e", 5)
    at(32, "f", 6)
    at(32, "h", 8, address="10.0.0.10")
    at(33, "g", 7)
    flags = dict(s.execute(select(Checkin.nonce, Checkin.flags)).all())
    flagged = {nonce for nonce, f in flags.items() if "many_identities_same_address" in f}
    assert flagged == {"g"}, flags


def test_scan_looks_past_one_trainee_repeated_over_the_newest_check_ins_of_the_address(window, scan, monkeypatch):
    """The function reads the address's newest check-ins in one go; when they are all one other trainee (sign-ins
    of many sessions), it looks further back, one trainee at a time, and still counts the older one."""
    from services.checkin.scans.models import Checkin
    from services.checkin.windows.models import CheckinWindow

    monkeypatch.setenv("CME_CHECKIN_ADDRESS_MAX_IDENTITIES", "2")
    s, w = window
    sessions = [CheckinWindow(activity_id=w.activity_id, title=f"第{i}节签到", kind="sign_in", starts_at=START,
                              ends_at=START + dt.timedelta(hours=4)) for i in range(10)]
    s.add_all(sessions)
    s.commit()

    def at(minutes, nonce, who, window_id=None):
        clock.set_now(START + dt.timedelta(minutes=minutes))
        scan(nonce, at=START + dt.timedelta(minutes=minutes), who=identity(who), openid=f"o{who}",
             address="10.0.0.9", window_id=window_id)

    at(30, "first", 1)
    for i, session in enumerate(sessions):
        at(31 + i * 0.1, f"repeat{i}", 2, window_id=session.id)
    at(33, "third", 3)
    flags = dict(s.execute(select(Checkin.nonce, Checkin.flags)).all())
    assert "many_identities_same_address" in flags["third"]  # trainees 1 and 2 before it: over the limit of 2
    assert not any("many_identities_same_address" in flags[f"repeat{i}"] for i in range(10))


def test_scan_flags_a_known_id_on_a_new_wechat_account(window, scan):
    from services.checkin.scans.models import Checkin
    from services.checkin.windows.models import CheckinWindow

    s, w = window
    later = CheckinWindow(activity_id=w.activity_id, title="下午", kind="sign_in",
                          starts_at=START + dt.timedelta(hours=5), ends_at=START + dt.timedelta(hours=8))
    s.add(later)
    s.commit()
    scan("p1", who=identity(), openid="old-phone")
    clock.set_now(START + dt.timedelta(hours=5, minutes=1))  # a later upsert: updated_at moves on
    scan("p2", at=START + dt.timedelta(hours=5, minutes=1), who=identity(), openid="new-phone", window_id=later.id)
    flags = s.scalars(select(Checkin.flags).order_by(Checkin.id)).all()
    assert ["id_on_new_wechat" in f for f in flags] == [False, True]


def test_a_known_id_typed_on_another_wechat_account_changes_nothing_stored(window, scan):
    """Someone scanning for a colleague (or the colleague on a new phone) types an ID number another WeChat account
    is bound to: the record keeps what its own account gave; with another name the scan is refused and kept."""
    from services.checkin.scans.models import Checkin, RefusedScan
    from services.checkin.scans.services import ScanRefused
    from services.checkin.trainees.models import Trainee
    from services.checkin.windows.models import CheckinWindow
    from services.common import pii

    s, w = window
    later = CheckinWindow(activity_id=w.activity_id, title="下午", kind="sign_in",
                          starts_at=START + dt.timedelta(hours=5), ends_at=START + dt.timedelta(hours=8))
    s.add(later)
    s.commit()
    scan("own", who=identity(1), openid="owner")

    def stored():
        s.expire_all()
        t = s.scalars(select(Trainee)).one()
        return t.name, pii.decrypt(t.mobile_enc), t.title, t.unit

    with pytest.raises(ScanRefused) as refused:
        scan("imposter", who=identity(1, name="李四", mobile="13700000000"), openid="imposter")
    assert refused.value.reason == "id_name_mismatch" and refused.value.status == 403
    kept = s.scalars(select(RefusedScan)).one()
    assert (kept.reason, kept.openid, kept.window_id) == ("id_name_mismatch", "imposter", w.id)
    assert stored() == ("张1", "13912340001", "主治医师", "西安市第一医院")
    assert _count(s, Checkin) == 1

    clock.set_now(START + dt.timedelta(hours=5, minutes=1))
    at = START + dt.timedelta(hours=5, minutes=1)
    other = scan("same-name", at=at, who=identity(1, mobile="13700000000", title="其他", unit="别的医院"),
                 openid="imposter", window_id=later.id)
    assert other.created and other.name == "张1"
    assert stored() == ("张1", "13912340001", "主治医师", "西安市第一医院")
    flags = s.scalars(select(Checkin.flags).where(Checkin.id == other.checkin_id)).one()
    assert "id_on_new_wechat" in flags

    # the account bound so marks every check-in it makes, a one tap too (not only its first)
    evening = CheckinWindow(activity_id=w.activity_id, title="晚场", kind="sign_in",
                            starts_at=START + dt.timedelta(hours=9), ends_at=START + dt.timedelta(hours=11))
    s.add(evening)
    s.commit()
    tap = scan("tap", at=START + dt.timedelta(hours=9, minutes=1), openid="imposter", window_id=evening.id)
    assert tap.created
    assert "id_on_new_wechat" in s.scalars(select(Checkin.flags).where(Checkin.id == tap.checkin_id)).one()
    # and, bound now, its typed details still change nothing of hers
    scan("imposter-again", at=START + dt.timedelta(hours=9, minutes=2), window_id=evening.id, openid="imposter",
         who=identity(1, mobile="13700000888", title="主任医师", unit="API医院"))
    assert stored() == ("张1", "13912340001", "主治医师", "西安市第一医院")

    # the owner's own account still updates her record (a new mobile, a new unit), and is not marked
    clock.set_now(START + dt.timedelta(hours=5, minutes=2))
    s.execute(Checkin.__table__.delete().where(Checkin.id == other.checkin_id))
    s.commit()
    mine = scan("owner-later", at=at, who=identity(1, mobile="13600000000", unit="新单位"), openid="owner",
                window_id=later.id)
    assert stored() == ("张1", "13600000000", "主治医师", "新单位")
    assert s.scalars(select(Checkin.flags).where(Checkin.id == mine.checkin_id)).one() == []
    # but never renames her: a name is corrected by the committee (更正姓名), not by a scan
    with pytest.raises(ScanRefused) as renamed:
        scan("owner-rename", at=START + dt.timedelta(hours=9, minutes=2), who=identity(1, name="张三丰"),
             openid="owner", window_id=evening.id)
    assert renamed.value.reason == "id_name_mismatch" and stored()[0] == "张1"


def test_scan_losing_a_binding_race_keeps_nothing_but_the_refusal(window):
    """Another scan binds the same WeChat account to another ID number between the function's check and its
    insert: the whole call is undone and only the refusal is kept."""
    import threading
    import time

    from services.checkin.db import db
    from services.checkin.scans.models import Checkin, RefusedScan
    from services.checkin.scans.services import ScanRefused, record_scan
    from services.checkin.trainees.models import Trainee

    s, w = window
    record_scan(activity_id=w.activity_id, window_id=w.id, nonce="other", scanned_at=START + dt.timedelta(minutes=1),
                identity=identity(2), openid="o-other", address=None)
    other = s.scalars(select(Trainee.id)).one()
    outcome: list[BaseException | None] = []

    def racing_scan() -> None:
        try:
            record_scan(activity_id=w.activity_id, window_id=w.id, nonce="mine",
                        scanned_at=START + dt.timedelta(minutes=2), identity=identity(1), openid="o-race",
                        address=None)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome.append(exc)
        finally:
            db.session.remove()

    with db.engine.connect() as rival:  # binds o-race first, and commits only once the scan waits on it
        rival.exec_driver_sql("INSERT INTO wechat_bindings (openid, trainee_id, bound_at) VALUES (%s, %s, now())",
                              ("o-race", other))
        thread = threading.Thread(target=racing_scan)
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive()  # waiting on the rival's uncommitted binding
        rival.commit()
    thread.join(10)
    assert isinstance(outcome[0], ScanRefused) and outcome[0].reason == "wechat_bound_to_other"
    s.expire_all()
    assert s.scalars(select(RefusedScan.reason)).all() == ["wechat_bound_to_other"]
    assert _count(s, Trainee) == 1 and _count(s, Checkin) == 1  # the other's only


def test_the_envelopes_timestamps_are_utc_iso_and_inlined_into_the_scan_function(databases):
    """checkin_iso writes what the event schemas read, whatever the session's TimeZone, and PostgreSQL inlines it
    (declared IMMUTABLE over the STABLE to_char, every call of the envelope went through the SQL-function
    executor: the scan function was ~13 % slower)."""
    from sqlalchemy import text

    from services.checkin.db import db

    with db.engine.connect() as conn:
        conn.execute(text("SET TIME ZONE 'Asia/Shanghai'"))
        at = conn.execute(text("SELECT checkin_iso('2026-11-26 10:00:00.000042+08')")).scalar()
        assert at == "2026-11-26T02:00:00.000042+00:00"
        assert dt.datetime.fromisoformat(at) == dt.datetime(2026, 11, 26, 2, 0, 0, 42, tzinfo=dt.UTC)
        plan = "\n".join(conn.execute(text("EXPLAIN VERBOSE SELECT checkin_iso(now())")).scalars())
        assert "to_char" in plan and "checkin_iso" not in plan  # inlined: no call of the SQL function left
        conn.rollback()
