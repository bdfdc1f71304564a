"""考勤分析: who attended an activity validly, decided by one SQL aggregate over the attendance records.

The institution ticks the windows (刷卡周期) that count and may narrow each window's time range; a
rule says how many of the ticked windows a trainee must have met. Everything per trainee is computed
in the database (GROUP BY trainee_key with one FILTERed aggregate per ticked window), so the cost is
one indexed scan of the activity's records whatever the number of trainees.

Rules
-----
* A scan counts for a ticked window when it was made in that window and its ``scanned_at`` lies in the
  ticked range ``[from_ts, to_ts]`` (both ends included). A forced check-in (代签, ``forced``) counts
  only when ``include_forced`` is true.
* ``Rule("all")``: every ticked window must be met. ``Rule("at_least", n)``: at least ``n`` of them.
* ``pairs_required`` (签到与签退须成对): the ticked windows are taken in order of their start time; a
  sign-in window and the ticked window right after it form a pair when that one is a sign-out window
  starting on the same calendar day (Asia/Shanghai). A window of a pair counts only when its partner is
  met too, so a met pair counts as 2 windows and a half pair as 0; windows outside any pair count alone.
  Only ticked windows pair: an unticked sign-out window demands nothing. A ticked window without any
  scan in the activity has no known kind and stays unpaired (nobody can meet it anyway).
"""

from __future__ import annotations

import datetime as dt
import weakref
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from services.common import clock

from ..attendance.models import AttendanceRecord

__all__ = ["Attendee", "Rule", "WindowPick", "describe", "pair_windows", "valid_attendees"]


class WindowPick(NamedTuple):
    """A ticked window and the (possibly narrowed) range in which its scans count."""

    window_id: int
    from_ts: dt.datetime
    to_ts: dt.datetime


@dataclass(frozen=True)
class Rule:
    """The attendance rule: ``mode`` "all" (every ticked window) or "at_least" (``n`` of them)."""

    mode: Literal["all", "at_least"] = "all"
    n: int | None = None
    pairs_required: bool = False

    def __post_init__(self) -> None:
        if self.mode == "all":
            if self.n is not None:
                raise ValueError("rule 'all' takes no n")
        elif self.mode == "at_least":
            if self.n is None or self.n < 1:
                raise ValueError("rule 'at_least' needs n >= 1")
        else:
            raise ValueError(f"unknown rule mode {self.mode!r}")


class Attendee:
    """One valid attendee: the valid scan time per ticked window met (window_id -> scanned_at, in range), and
    how many windows count. The PostgreSQL path hands over the scan times as seconds since the epoch and they
    are made datetimes on first use: the analysis of 10,000 trainees needs only who is valid, and a page shows
    a few dozen."""

    __slots__ = ("trainee_key", "name", "windows_met", "_scans", "_raw")

    def __init__(self, trainee_key: str, name: str, scans: dict[int, dt.datetime] | None = None,
                 windows_met: int = 0) -> None:
        self.trainee_key, self.name, self.windows_met = trainee_key, name, windows_met
        self._scans = scans if scans is not None else {}
        self._raw: tuple[list[int], tuple[Any, ...]] | None = None

    @classmethod
    def from_rows(cls, rows: list[tuple[Any, ...]], ids: list[int]) -> list[Attendee]:
        """Attendees of rows (trainee_key, name, one epoch or None per window of ``ids``, windows met), made
        without a Python __init__ call each: for 10,000 rows 1.2 ms instead of 3.6."""
        new, out, met = object.__new__, [], len(ids) + 2
        for row in rows:
            a = new(cls)
            a.trainee_key, a.name, a.windows_met, a._scans, a._raw = row[0], row[1], row[met], None, (ids, row)
            out.append(a)
        return out

    @property
    def scans(self) -> dict[int, dt.datetime]:
        if self._raw is not None:
            ids, row = self._raw
            at = dt.datetime.fromtimestamp
            self._scans = {w: at(t, dt.UTC) for w, t in zip(ids, row[2:2 + len(ids)], strict=True) if t is not None}
            self._raw = None
        return self._scans

    def __repr__(self) -> str:
        return f"Attendee({self.trainee_key!r}, {self.name!r}, {self.scans!r}, {self.windows_met})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Attendee):
            return NotImplemented
        return ((self.trainee_key, self.name, self.scans, self.windows_met)
                == (other.trainee_key, other.name, other.scans, other.windows_met))

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces


def describe(rule: Rule, window_count: int | None = None) -> str:
    """The rule in words, as the institution sees it next to the analysis."""
    if rule.mode == "all":
        text = f"须在全部 {window_count} 个刷卡周期内签到" if window_count else "须在全部所选刷卡周期内签到"
    else:
        text = f"须在至少 {rule.n} 个刷卡周期内签到"
        if window_count:
            text += f"（共选 {window_count} 个）"
    if rule.pairs_required:
        text += "；签到与签退须成对（同一天签到后紧接的签退为一对，缺一则两者均不计）"
    return text


def pair_windows(kinds: dict[int, tuple[str, dt.datetime]], window_ids: list[int]) -> dict[int, int]:
    """Partner of each paired window (both directions), from ``window_id -> (kind, starts_at)``."""
    known = sorted((w for w in window_ids if w in kinds), key=lambda w: (kinds[w][1], w))
    partner: dict[int, int] = {}
    for first, second in zip(known, known[1:], strict=False):
        (k1, s1), (k2, s2) = kinds[first], kinds[second]
        if k1 == "sign_in" and k2 == "sign_out" and clock.to_local(s1).date() == clock.to_local(s2).date():
            partner[first], partner[second] = second, first
    return partner


def _window_kinds(session: Session, activity_id: int, window_ids: list[int]) -> dict[int, tuple[str, dt.datetime]]:
    """Kind and start of the ticked windows, for the pairs rule: one row of per-window ``LIMIT 1`` lookups,
    each served by the (window_id, trainee_key) unique index, so it costs nothing next to the aggregate.
    (Every record of a window carries the same kind and start; the ORDER BY is what makes the planner walk
    that index: without it PostgreSQL chose a sequential scan that read tens of thousands of rows
    before reaching a later window.)"""
    r = AttendanceRecord

    def first(column, window_id: int):  # type: ignore[no-untyped-def]
        return (select(column).where(r.window_id == window_id, r.activity_id == activity_id)
                .order_by(r.window_id, r.trainee_key).limit(1).scalar_subquery())

    row = session.execute(select(*(c for w in window_ids
                                   for c in (first(r.window_kind, w), first(r.window_starts_at, w))))).one()
    kinds = {}
    for i, w in enumerate(window_ids):
        kind, starts = row[2 * i], row[2 * i + 1]
        if kind is not None:
            kinds[w] = (kind, starts)
    return kinds


def _check(windows: list[WindowPick], rule: Rule) -> None:
    if not windows:
        raise ValueError("no window ticked")
    ids = [w.window_id for w in windows]
    if len(set(ids)) != len(ids):
        raise ValueError("a window is ticked twice")
    for w in windows:
        if w.from_ts.tzinfo is None or w.to_ts.tzinfo is None:
            raise ValueError("naive datetime in a window range; use aware datetimes")
        if w.from_ts > w.to_ts:
            raise ValueError(f"window {w.window_id}: range ends before it starts")
    if rule.mode == "at_least" and rule.n is not None and rule.n > len(windows):
        raise ValueError(f"at least {rule.n} of {len(windows)} ticked windows cannot be met")


def valid_attendees(session: Session, activity_id: int, windows: list[WindowPick], rule: Rule,
                    include_forced: bool = False) -> list[Attendee]:
    """The valid attendees of an activity under ``rule`` (see the module docstring), by name.

    One aggregate query: the activity's records of the ticked windows, in range, are grouped by
    trainee; ``max(scanned_at) FILTER (WHERE window_id = w)`` gives each window's valid scan time
    (NULL when not met); HAVING counts the windows that count (pairs applied) and keeps the trainees
    that meet the rule (without pairs simply ``count(*)``: one record per trainee per window).
    Works on PostgreSQL and SQLite (>= 3.30, for FILTER). With ``pairs_required`` a tiny lookup
    first reads each ticked window's kind and start (index hits only).

    On PostgreSQL through psycopg (the deployment) the rows are read with a plain DB-API cursor and
    the scan times travel as ``date_part('epoch', …)`` (a double: PostgreSQL's float output is far cheaper
    than its timestamp text, and psycopg's time-zone conversion of each timestamptz is skipped too), made
    datetimes by ``datetime.fromtimestamp``: for 10,000 trainees that is several times cheaper than
    SQLAlchemy result rows, and the values are the same instants (a double holds the microseconds of any
    date up to the 2200s within half a microsecond, and fromtimestamp rounds to the nearest). Elsewhere the
    same query runs through Core.
    """
    _check(windows, rule)
    ids = [w.window_id for w in windows]
    conn = session.connection()
    fast = _fast_path(conn)
    partner: dict[int, int] = {}
    if rule.pairs_required:
        kinds = _window_kinds_pg(conn, activity_id, ids) if fast else _window_kinds(session, activity_id, ids)
        partner = pair_windows(kinds, ids)
    needed = len(windows) if rule.mode == "all" else int(rule.n or 0)
    if fast:
        return _valid_attendees_pg(conn, activity_id, windows, partner, needed, include_forced)

    r = AttendanceRecord
    in_range = or_(*(and_(r.window_id == w.window_id, r.scanned_at.between(w.from_ts, w.to_ts)) for w in windows))
    conditions = [r.activity_id == activity_id, in_range]
    if not include_forced:
        conditions.append(r.forced.is_(False))
    per_window = [func.max(r.scanned_at).filter(r.window_id == w.window_id) for w in windows]
    if partner:
        col = dict(zip(ids, per_window, strict=True))
        counted = []
        for w in ids:
            met = col[w].is_not(None)
            if w in partner:
                met = and_(met, col[partner[w]].is_not(None))
            counted.append(case((met, 1), else_=0))
        windows_met = sum(counted[1:], counted[0])
    else:
        windows_met = func.count()  # one record per trainee per window: the windows met
    name = func.max(r.name)
    query = (
        select(r.trainee_key, name, *per_window, windows_met)
        .where(*conditions)
        .group_by(r.trainee_key)
        .having(windows_met >= needed)
        .order_by(name, r.trainee_key)
    )
    rows = conn.execute(query).all()  # Core: no ORM row machinery for 10,000 rows
    return [Attendee(key, name, {w: t for w, t in zip(ids, times, strict=True) if t is not None}, met)
            for key, name, *times, met in rows]


# ---- PostgreSQL through psycopg ------------------------------------------------------------------

# libc collations that order text by code point, as Python compares str (and as SQLite's BINARY does)
_CODEPOINT_COLLATIONS = frozenset({"C", "POSIX", "C.UTF-8", "C.utf8"})
_codepoint_order: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


def _fast_path(conn: Connection) -> bool:
    """PostgreSQL through psycopg (its DB-API cursor is used directly)."""
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def _sorts_by_codepoint(conn: Connection) -> bool:
    """Whether name and trainee_key compare by code point in this database (a libc C/POSIX/C.UTF-8 default or
    column collation), so that ``COLLATE "C"`` orders and picks ``max(name)`` exactly as the declared
    collation does, only without strcoll(). Asked once per engine."""
    known = _codepoint_order.get(conn.engine)
    if known is None:
        row = conn.exec_driver_sql(
            "SELECT to_jsonb(d), (SELECT array_agg(c.collname::text) FROM pg_attribute a "
            "JOIN pg_collation c ON c.oid = a.attcollation WHERE a.attrelid = CAST(%(t)s AS regclass) "
            "AND a.attname IN ('name', 'trainee_key')) FROM pg_database d WHERE d.datname = current_database()",
            {"t": AttendanceRecord.__tablename__}).one()
        database, collations = row[0] or {}, row[1] or []
        default = database.get("datlocprovider", "c") == "c" and database.get("datcollate") in _CODEPOINT_COLLATIONS
        known = len(collations) == 2 and all(c in ("C", "POSIX") or (c == "default" and default) for c in collations)
        _codepoint_order[conn.engine] = known
    return known


def _window_kinds_pg(conn: Connection, activity_id: int, window_ids: list[int]) -> dict[int, tuple[str, dt.datetime]]:
    """_window_kinds in one SQL text through the DB-API cursor (the same index hits, without building and
    compiling a statement of 2 subqueries per window on every call)."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(
            "SELECT w, k.window_kind, k.window_starts_at FROM unnest(CAST(%(ids)s AS integer[])) AS w "
            "CROSS JOIN LATERAL (SELECT window_kind, window_starts_at FROM attendance_records "
            "WHERE window_id = w AND activity_id = %(activity_id)s ORDER BY window_id, trainee_key LIMIT 1) AS k",
            {"ids": list(window_ids), "activity_id": activity_id})
        return {w: (kind, starts) for w, kind, starts in cursor.fetchall()}
    finally:
        cursor.close()


def _valid_attendees_pg(conn: Connection, activity_id: int, windows: list[WindowPick], partner: dict[int, int],
                        needed: int, include_forced: bool) -> list[Attendee]:
    """The query of valid_attendees in SQL text, read through the DB-API cursor of the session's connection
    (same transaction): tuples, no SQLAlchemy row objects; scan times as seconds since the epoch (see
    Attendee.scans)."""
    params: dict[str, object] = {"activity_id": activity_id, "needed": needed}
    ranges, times, met = [], [], {}
    for i, w in enumerate(windows):
        params.update({f"w{i}": w.window_id, f"f{i}": w.from_ts, f"t{i}": w.to_ts})
        ranges.append(f"(window_id = %(w{i})s AND scanned_at BETWEEN %(f{i})s AND %(t{i})s)")
        times.append(f"max(scanned_at) FILTER (WHERE window_id = %(w{i})s)")
        met[w.window_id] = f"{times[-1]} IS NOT NULL"
    if partner:
        windows_met = " + ".join(
            f"CASE WHEN {met[w.window_id]}{f' AND {met[partner[w.window_id]]}' if w.window_id in partner else ''} "
            "THEN 1 ELSE 0 END" for w in windows)
    else:
        windows_met = "count(*)"  # one record per trainee per window: the windows met
    collate = ' COLLATE "C"' if _sorts_by_codepoint(conn) else ""
    name = f"max(name{collate})"
    epochs = ", ".join(f"date_part('epoch', {t})" for t in times)
    sql = (f"SELECT trainee_key, {name}, {epochs}, {windows_met} "
           f"FROM attendance_records WHERE activity_id = %(activity_id)s"
           f"{'' if include_forced else ' AND NOT forced'} AND ({' OR '.join(ranges)}) "
           f"GROUP BY trainee_key HAVING {windows_met} >= %(needed)s ORDER BY {name}, trainee_key{collate}")
    # binary results: the doubles arrive as 8 bytes each, neither printed by the server nor parsed here
    cursor = conn.connection.dbapi_connection.cursor(binary=True)  # type: ignore[union-attr]
    try:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return Attendee.from_rows(rows, [w.window_id for w in windows])
