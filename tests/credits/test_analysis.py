"""考勤分析: the valid attendees of an activity under an explicit rule, computed in one SQL aggregate."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlalchemy import create_engine, insert
from sqlalchemy.orm import Session

from services.credits.analysis import Rule, WindowPick, describe, pair_windows, valid_attendees
from services.credits.attendance.models import AttendanceRecord

ACTIVITY = 7
UTC = dt.UTC
# two days (Asia/Shanghai): 08:30-09:30 sign-in and 17:00-18:00 sign-out each day
DAY1 = dt.datetime(2026, 12, 10, 0, 30, tzinfo=UTC)  # 08:30 local
DAY2 = DAY1 + dt.timedelta(days=1)
WINDOWS = {  # window_id -> (kind, starts_at)
    1: ("sign_in", DAY1),
    2: ("sign_out", DAY1 + dt.timedelta(hours=8, minutes=30)),
    3: ("sign_in", DAY2),
    4: ("sign_out", DAY2 + dt.timedelta(hours=8, minutes=30)),
}
_ids = itertools.count(1)


def record(trainee: str, window_id: int, minutes: int = 5, *, forced: bool = False, activity_id: int = ACTIVITY,
           name: str | None = None) -> dict:
    kind, starts = WINDOWS[window_id]
    return {
        "checkin_id": next(_ids), "activity_id": activity_id, "offering_id": 101, "institution_id": 1,
        "window_id": window_id if activity_id == ACTIVITY else window_id + 100, "window_kind": kind,
        "window_starts_at": starts, "window_ends_at": starts + dt.timedelta(hours=1), "trainee_key": trainee,
        "name": name or f"学员{trainee}", "id_enc": "x", "mobile_enc": "x", "title": "主治医师", "unit": "某医院",
        "scanned_at": starts + dt.timedelta(minutes=minutes), "forced": forced, "flags": [],
    }


def picks(*window_ids: int) -> list[WindowPick]:
    """Ticked windows with their full range (as ticking fills it)."""
    return [WindowPick(w, WINDOWS[w][1], WINDOWS[w][1] + dt.timedelta(hours=1)) for w in window_ids]


@pytest.fixture
def session(databases):
    s = databases["credits"].new_session()
    yield s
    s.close()


def store(session: Session, rows: list[dict]) -> None:
    session.execute(insert(AttendanceRecord), rows)
    session.commit()


def keys(attendees) -> list[str]:
    return [a.trainee_key for a in attendees]


def test_all_versus_at_least_n(session):
    store(session, [record("A", w) for w in (1, 2, 3, 4)] + [record("B", w) for w in (1, 2, 3)]
          + [record("C", 4)] + [record("D", w, activity_id=8) for w in (1, 2, 3, 4)])
    everything = picks(1, 2, 3, 4)
    [a] = valid_attendees(session, ACTIVITY, everything, Rule("all"))
    assert (a.trainee_key, a.name, a.windows_met) == ("A", "学员A", 4)
    assert a.scans == {w: WINDOWS[w][1] + dt.timedelta(minutes=5) for w in (1, 2, 3, 4)}
    assert all(t.tzinfo is not None for t in a.scans.values())
    assert keys(valid_attendees(session, ACTIVITY, everything, Rule("at_least", 3))) == ["A", "B"]
    found = valid_attendees(session, ACTIVITY, everything, Rule("at_least", 1))
    assert keys(found) == ["A", "B", "C"]  # D scanned another activity
    assert [x.windows_met for x in found] == [4, 3, 1]
    assert found[1].scans.keys() == {1, 2, 3}
    # only the ticked windows count: B met both ticked ones
    assert keys(valid_attendees(session, ACTIVITY, picks(1, 2), Rule("all"))) == ["A", "B"]


def test_narrowed_range_excludes_a_late_scan(session):
    store(session, [record("A", 1, minutes=5), record("B", 1, minutes=40), record("C", 1, minutes=15)])
    start = WINDOWS[1][1]
    narrowed = [WindowPick(1, start, start + dt.timedelta(minutes=15))]  # both ends count
    assert keys(valid_attendees(session, ACTIVITY, narrowed, Rule("all"))) == ["A", "C"]
    later = [WindowPick(1, start + dt.timedelta(minutes=10), start + dt.timedelta(hours=1))]
    assert keys(valid_attendees(session, ACTIVITY, later, Rule("all"))) == ["B", "C"]
    assert keys(valid_attendees(session, ACTIVITY, picks(1), Rule("all"))) == ["A", "B", "C"]


def test_forced_checkins_count_only_when_included(session):
    store(session, [record("A", 1), record("A", 2), record("B", 1), record("B", 2, forced=True)])
    assert keys(valid_attendees(session, ACTIVITY, picks(1, 2), Rule("all"))) == ["A"]
    [_, b] = valid_attendees(session, ACTIVITY, picks(1, 2), Rule("at_least", 1))
    assert (b.trainee_key, b.scans.keys(), b.windows_met) == ("B", {1}, 1)  # the forced scan is not shown
    assert keys(valid_attendees(session, ACTIVITY, picks(1, 2), Rule("all"), include_forced=True)) == ["A", "B"]


def test_pairs_rule_needs_sign_in_and_sign_out_of_the_same_day(session):
    store(session, [record("A", w) for w in (1, 2, 3)]  # day 1 pair complete, day 2 half
          + [record("B", w) for w in (1, 3)]  # two sign-ins, no sign-out: no pair complete
          + [record("C", w) for w in (1, 2, 3, 4)])
    everything = picks(1, 2, 3, 4)
    plain = valid_attendees(session, ACTIVITY, everything, Rule("at_least", 2))
    assert keys(plain) == ["A", "B", "C"]
    paired = valid_attendees(session, ACTIVITY, everything, Rule("at_least", 2, pairs_required=True))
    assert keys(paired) == ["A", "C"]
    assert [x.windows_met for x in paired] == [2, 4]
    assert paired[0].scans.keys() == {1, 2, 3}  # details still show every valid scan
    assert keys(valid_attendees(session, ACTIVITY, everything, Rule("at_least", 1, pairs_required=True))) == [
        "A", "C"]
    assert keys(valid_attendees(session, ACTIVITY, everything, Rule("all", pairs_required=True))) == ["C"]
    # an unticked sign-out demands nothing: sign-in 3 alone is no pair
    assert keys(valid_attendees(session, ACTIVITY, picks(1, 2, 3), Rule("all", pairs_required=True))) == ["A", "C"]


def test_pairing_of_windows():
    w = dict(WINDOWS)
    assert pair_windows(w, [1, 2, 3, 4]) == {1: 2, 2: 1, 3: 4, 4: 3}
    assert pair_windows(w, [4, 3, 2, 1]) == {1: 2, 2: 1, 3: 4, 4: 3}  # order of ticking does not matter
    assert pair_windows(w, [1, 3, 4]) == {3: 4, 4: 3}
    assert pair_windows(w, [2, 3]) == {}  # sign-out then sign-in
    # the sign-out after a sign-in but on the next day is no partner
    assert pair_windows({1: w[1], 9: ("sign_out", DAY2)}, [1, 9]) == {}
    # two sign-ins before a sign-out: the later one pairs
    noon = ("sign_in", DAY1 + dt.timedelta(hours=4))
    assert pair_windows({1: w[1], 5: noon, 2: w[2]}, [1, 5, 2]) == {5: 2, 2: 5}
    # days are Shanghai days: 23:30 UTC is the next morning locally
    late_in = ("sign_in", dt.datetime(2026, 12, 9, 23, 30, tzinfo=UTC))
    assert pair_windows({8: late_in, 2: w[2]}, [8, 2]) == {8: 2, 2: 8}
    assert pair_windows(w, [1, 2, 99]) == {1: 2, 2: 1}  # a window without any scan is unknown


def test_describe_the_rule():
    assert describe(Rule("all"), 3) == "须在全部 3 个刷卡周期内签到"
    assert describe(Rule("all")) == "须在全部所选刷卡周期内签到"
    assert describe(Rule("at_least", 2)) == "须在至少 2 个刷卡周期内签到"
    assert describe(Rule("at_least", 2), 4) == "须在至少 2 个刷卡周期内签到（共选 4 个）"
    assert "签到与签退须成对" in describe(Rule("all", pairs_required=True), 4)


def test_bad_rules_and_picks_are_refused(session):
    with pytest.raises(ValueError):
        Rule("at_least")
    with pytest.raises(ValueError):
        Rule("at_least", 0)
    with pytest.raises(ValueError):
        Rule("all", 2)
    with pytest.raises(ValueError):
        Rule("most")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no window"):
        valid_attendees(session, ACTIVITY, [], Rule("all"))
    with pytest.raises(ValueError, match="twice"):
        valid_attendees(session, ACTIVITY, picks(1, 1), Rule("all"))
    with pytest.raises(ValueError, match="cannot be met"):
        valid_attendees(session, ACTIVITY, picks(1, 2), Rule("at_least", 3))
    start = WINDOWS[1][1]
    with pytest.raises(ValueError, match="ends before"):
        valid_attendees(session, ACTIVITY, [WindowPick(1, start, start - dt.timedelta(minutes=1))], Rule("all"))
    with pytest.raises(ValueError, match="naive"):
        valid_attendees(session, ACTIVITY, [WindowPick(1, start.replace(tzinfo=None), start)], Rule("all"))


def test_two_thousand_trainees_four_windows(session):
    """Bulk data: trainee i misses window (i % 5) + 1 when i % 5 < 4, else meets all four."""
    rows = [record(f"T{i:05d}", w, minutes=i % 50) for i in range(2000) for w in (1, 2, 3, 4) if w != i % 5 + 1]
    store(session, rows)
    everything = picks(1, 2, 3, 4)
    assert len(valid_attendees(session, ACTIVITY, everything, Rule("all"))) == 400
    assert len(valid_attendees(session, ACTIVITY, everything, Rule("at_least", 3))) == 2000
    # pairs: a missed window breaks its pair, so 4 - 2 = 2 windows count for all who miss one
    paired = valid_attendees(session, ACTIVITY, everything, Rule("at_least", 3, pairs_required=True))
    assert len(paired) == 400
    assert {a.windows_met for a in valid_attendees(session, ACTIVITY, everything,
                                                   Rule("at_least", 2, pairs_required=True))} == {2, 4}
    # narrowing window 1 to its first 25 minutes keeps only those who scanned by then (i % 50 <= 25)
    start = WINDOWS[1][1]
    narrowed = [WindowPick(1, start, start + dt.timedelta(minutes=25))] + picks(2, 3, 4)
    expected = sum(1 for i in range(2000) if i % 5 == 4 and i % 50 <= 25)
    assert len(valid_attendees(session, ACTIVITY, narrowed, Rule("all"))) == expected


def test_sqlite_gives_the_same_answer():
    engine = create_engine("sqlite://")
    AttendanceRecord.metadata.create_all(engine, tables=[AttendanceRecord.__table__])
    with Session(engine) as s:
        store(s, [record("A", w) for w in (1, 2, 3)] + [record("B", w, minutes=50) for w in (1, 3)]
              + [record("C", 4, forced=True)])
        everything = picks(1, 2, 3, 4)
        found = valid_attendees(s, ACTIVITY, everything, Rule("at_least", 2))
        assert keys(found) == ["A", "B"]
        assert found[0].scans[1] == WINDOWS[1][1] + dt.timedelta(minutes=5)
        assert keys(valid_attendees(s, ACTIVITY, everything, Rule("at_least", 2, pairs_required=True))) == ["A"]
        start = WINDOWS[1][1]
        narrowed = [WindowPick(1, start, start + dt.timedelta(minutes=30))] + picks(3)
        assert keys(valid_attendees(s, ACTIVITY, narrowed, Rule("all"))) == ["A"]
        assert keys(valid_attendees(s, ACTIVITY, everything, Rule("at_least", 1), include_forced=True)) == [
            "A", "B", "C"]
    engine.dispose()


def test_postgresql_fast_path_equals_the_core_query(session, monkeypatch):
    """On PostgreSQL through psycopg the rows are read with a DB-API cursor and the times come as epoch seconds;
    it must give exactly what the portable Core query gives: same trainees, order, names, instants, counts."""
    from services.credits.analysis import rules

    assert rules._fast_path(session.connection())  # the test database is PostgreSQL through psycopg
    names = ["张三", "Zoe", "zoe", "李四", "Émile", "王五", "abc", "ABC"]
    rows = []
    for i in range(40):
        key = f"K{(i * 7919) % 1000:04d}"
        for w in (1, 2, 3, 4):
            if (i + w) % 5 == 0:
                continue  # this trainee missed window w
            name = names[i % len(names)] + ("（补）" if w == 3 and i % 6 == 0 else "")  # a name typed differently
            rows.append(record(key, w, minutes=i % 55, forced=(i * w) % 13 == 0, name=name))
    for row in rows:
        row["scanned_at"] += dt.timedelta(microseconds=row["checkin_id"] * 7919 % 999_983 + 1)
    store(session, rows)
    start = WINDOWS[2][1]
    narrowed = [*picks(1), WindowPick(2, start + dt.timedelta(minutes=3), start + dt.timedelta(minutes=40)),
                *picks(3, 4)]
    cases = [(picks(1, 2, 3, 4), Rule("all")), (picks(1, 2, 3, 4), Rule("at_least", 1)),
             (narrowed, Rule("at_least", 2, pairs_required=True)), (picks(4, 2, 3), Rule("at_least", 2)),
             (picks(1, 2, 3, 4), Rule("at_least", 3, pairs_required=True))]

    def seen(found):
        return [(a.trainee_key, a.name, a.scans, a.windows_met) for a in found]

    fast = [seen(valid_attendees(session, ACTIVITY, w, r, include_forced=f)) for w, r in cases for f in (False, True)]
    monkeypatch.setattr(rules, "_fast_path", lambda conn: False)
    core = [seen(valid_attendees(session, ACTIVITY, w, r, include_forced=f)) for w, r in cases for f in (False, True)]
    assert fast == core
    assert all(found for found in fast)
    conn = session.connection()
    ticked = [4, 1, 99, 2]  # 99: no scan, no kind
    assert rules._window_kinds_pg(conn, ACTIVITY, ticked) == rules._window_kinds(session, ACTIVITY, ticked)
    assert rules._window_kinds_pg(conn, ACTIVITY, [3])[3] == WINDOWS[3]
    assert any(t.microsecond for found in fast for _, _, scans, _ in found for t in scans.values())
    assert all(t.utcoffset() is not None for found in fast for _, _, scans, _ in found for t in scans.values())
