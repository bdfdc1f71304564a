"""The credits rows of `make bench` (`python -m bench.run --only analysis,compliance` runs just these).

考勤分析 (attendance analysis), "analysis": no stack, no HTTP. A credits database of the bench's own
(<DATABASE_URL>_<run>_credits, brought to head with Alembic by deploy.manage, dropped at the end) gets, by
one INSERT ... SELECT generate_series each, an activity of 10,000 trainees x 4 windows (2 days, sign-in and
sign-out each) = 40,000 attendance records, about 1% of them out of the ticked range and 1% forced (补签),
plus a noise activity of 5,000 trainees x 2 windows. Then, 1 warm-up + 5 timed runs each, in one session:

    valid_attendees  services.credits.analysis.valid_attendees(session, activity, 4 WindowPicks, rule)
                     with Rule("all") and with Rule("at_least", 3, pairs_required=True)
    hand SQL         one hand-written aggregate in plain SQL over the same connection (GROUP BY trainee_key,
                     HAVING the count of windows met; the pairs rule spelled out with FILTER)

It prints the median and max in ms and the number of valid trainees; the row fails loudly (AssertionError)
when valid_attendees, the hand SQL and the generator's own arithmetic disagree on the set of trainees.
Targets: median <= 1 s, and <= 2x the hand SQL of the same rule measured in the same run.

达标情况 (compliance), "compliance": on the running stack's credits database, 1,000,000 CreditAward rows
(100,000 trainees x 10 awards over 5 years and 200 offerings; attendance/manual, pending/effective/withdrawn
as the check constraints allow) by one INSERT ... SELECT generate_series, then ANALYZE; 20,000 of the trainees
get a TraineeAccount (a password set, no forced change) and a session cookie cme_session made with
services.common.auth.issue_token. wrk then drives the gateway at 10 connections, every request a different
trainee:

    compliance page  GET /credits/compliance
    compliance JSON  GET /credits/api/me/compliance

Target p99 <= 50 ms. The bare Flask hello is measured once more at these same 10 connections (row "hello, 10
conns"): the compliance rows' requests/s and p99 are printed against that row of the same run, never against the
50-connection hello row (a closed loop's latency is set by its concurrency: at 10 connections on a saturated
server the p99 is mostly queueing, so only equal concurrency compares).
While services.credits.compliance cannot be imported (or a first request does not answer 200) the rows
are skipped with the reason.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.run import ROOT, Line, Row, _drop, _import

TARGET_ANALYSIS_MS = 1000.0
TARGET_ANALYSIS_RATIO = 2.0
TARGET_COMPLIANCE_P99_MS = 50.0
COMPLIANCE_PAGE = "/credits/compliance"
COMPLIANCE_API = "/credits/api/me/compliance"
COMPLIANCE_CONNECTIONS = 10
LOAD_BUDGET_S = 150.0  # loading 1,000,000 awards and ANALYZE (about 60 s on 2 cores), then two rows

# the trainee key of serial t: 64 hex characters, the same in SQL and in Python
TRAINEE_KEY_SQL = "md5('trainee-' || {t}) || md5('key-' || {t})"
# a Fernet-token-sized stand-in for an encrypted ID number or mobile (never decrypted by the analysis)
FAKE_ENC = "gAAAAA" + "b" * 114


def trainee_key(serial: int) -> str:
    return (hashlib.md5(f"trainee-{serial}".encode()).hexdigest()
            + hashlib.md5(f"key-{serial}".encode()).hexdigest())


# ---- 考勤分析: data ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class AttendanceSpec:
    """One activity's attendance: ``trainees`` x ``windows`` records, window k on day k // 2, sign-in at 08:00
    and sign-out at 17:00 Asia/Shanghai, each open ``minutes`` long; window ids first_window_id, +1, ..."""

    activity_id: int
    trainees: int
    windows: int = 4
    first_window_id: int = 1
    day0: dt.date = dt.date(2026, 3, 2)
    minutes: int = 30
    checkin_base: int = 0
    offering_id: int = 1
    institution_id: int = 1

    def window_rows(self) -> list[tuple[int, str, dt.datetime, dt.datetime]]:
        """(window_id, kind, starts_at, ends_at) in UTC (08:00 Asia/Shanghai = 00:00 UTC)."""
        out = []
        for w in range(self.windows):
            day = dt.datetime.combine(self.day0, dt.time(), dt.UTC) + dt.timedelta(days=w // 2)
            start = day + (dt.timedelta(hours=9) if w % 2 else dt.timedelta())
            out.append((self.first_window_id + w, "sign_out" if w % 2 else "sign_in", start,
                        start + dt.timedelta(minutes=self.minutes)))
        return out


def out_of_range(t: int, w: int) -> bool:
    """Trainee t's scan of window w lies after the window (and its ticked range) closed: about 1%."""
    return (t + w) % 97 == 0


def forced(t: int, w: int) -> bool:
    """Trainee t's check-in of window w is a 补签 (forced): about 1%."""
    return (3 * t + w) % 89 == 0


def attendance_insert_sql(spec: AttendanceSpec) -> tuple[str, dict[str, Any]]:
    """One INSERT ... SELECT over generate_series: every trainee scans every window of the activity, in range
    except where out_of_range(t, w), forced where forced(t, w) (the same arithmetic, in SQL)."""
    key = TRAINEE_KEY_SQL.format(t="t")
    sql = f"""
INSERT INTO attendance_records (checkin_id, activity_id, offering_id, institution_id, window_id, window_kind,
    window_starts_at, window_ends_at, trainee_key, name, id_enc, mobile_enc, title, unit, scanned_at, forced,
    flags, received_at)
SELECT :checkin_base + t * :windows + w + 1, :activity_id, :offering_id, :institution_id, :first_window_id + w,
    CASE WHEN w % 2 = 0 THEN 'sign_in' ELSE 'sign_out' END,
    ws, ws + make_interval(mins => :minutes), {key}, '学员' || t, :enc, :enc, '主治医师', '西安市第一医院',
    CASE WHEN (t + w) % 97 = 0 THEN ws + make_interval(mins => :minutes + 1, secs => t % 300)
         ELSE ws + make_interval(secs => (t * 37 + w * 11) % (:minutes * 50)) END,
    (3 * t + w) % 89 = 0, '[]', ws
FROM generate_series(0, :trainees - 1) AS t
CROSS JOIN generate_series(0, :windows - 1) AS w
CROSS JOIN LATERAL (SELECT CAST(:day0 AS timestamptz) + make_interval(days => w / 2, hours => 9 * (w % 2))
                    AS ws) AS x
"""
    day0 = dt.datetime.combine(spec.day0, dt.time(), dt.UTC)
    return sql, {"checkin_base": spec.checkin_base, "windows": spec.windows, "activity_id": spec.activity_id,
                 "offering_id": spec.offering_id, "institution_id": spec.institution_id,
                 "first_window_id": spec.first_window_id, "minutes": spec.minutes, "enc": FAKE_ENC,
                 "trainees": spec.trainees, "day0": day0}


def expected_serials(spec: AttendanceSpec, needed: int, pairs: bool) -> set[int]:
    """The trainees the generator made valid: windows met (in range, not forced), with sign-in/sign-out of a day
    counting only together when ``pairs``; at least ``needed`` of them."""
    out = set()
    for t in range(spec.trainees):
        met = [not out_of_range(t, w) and not forced(t, w) for w in range(spec.windows)]
        if pairs:
            counted = 0
            for w in range(0, spec.windows - 1, 2):
                counted += 2 if met[w] and met[w + 1] else 0
            if spec.windows % 2:
                counted += met[-1]
        else:
            counted = sum(met)
        if counted >= needed:
            out.add(t)
    return out


def hand_sql(activity_id: int, picks: list[tuple[int, dt.datetime, dt.datetime]], needed: int,
             pairs: list[tuple[int, int]] | None = None) -> tuple[str, dict[str, Any]]:
    """The hand-written yardstick: the valid trainees' keys by one GROUP BY trainee_key with HAVING.

    Without ``pairs`` the windows met are counted with count(*) (one check-in per trainee per window); with
    ``pairs`` ((sign-in id, sign-out id), ...) a pair counts 2 when both are met, 0 otherwise; windows outside a
    pair count alone. Forced check-ins never count."""
    params: dict[str, Any] = {"activity_id": activity_id, "needed": needed}
    ranges = []
    for i, (window_id, from_ts, to_ts) in enumerate(picks):
        params.update({f"w{i}": window_id, f"f{i}": from_ts, f"t{i}": to_ts})
        ranges.append(f"(window_id = :w{i} AND scanned_at BETWEEN :f{i} AND :t{i})")
    if pairs:
        index = {window_id: i for i, (window_id, _, _) in enumerate(picks)}
        paired = {w for pair in pairs for w in pair}
        terms = [f"CASE WHEN count(*) FILTER (WHERE window_id = :w{index[a]}) > 0 "
                 f"AND count(*) FILTER (WHERE window_id = :w{index[b]}) > 0 THEN 2 ELSE 0 END" for a, b in pairs]
        terms += [f"count(*) FILTER (WHERE window_id = :w{i})" for i, (w, _, _) in enumerate(picks) if w not in paired]
        having = " + ".join(terms)
    else:
        having = "count(*)"
    sql = (f"SELECT trainee_key FROM attendance_records WHERE activity_id = :activity_id AND NOT forced "
           f"AND ({' OR '.join(ranges)}) GROUP BY trainee_key HAVING {having} >= :needed")
    return sql, params


# ---- 考勤分析: timing --------------------------------------------------------------------------------

@dataclass
class Timing:
    label: str
    runs_ms: list[float] = field(default_factory=list)
    count: int = 0

    @property
    def median_ms(self) -> float:
        return statistics.median(self.runs_ms) if self.runs_ms else 0.0

    @property
    def max_ms(self) -> float:
        return max(self.runs_ms) if self.runs_ms else 0.0


@dataclass
class AnalysisCase:
    """One rule: valid_attendees against the hand SQL of the same rule."""

    rule: str
    ours: Timing
    hand: Timing
    expected: int = 0


def time_runs(fns: list[Callable[[], Any]], warmup: int, repeats: int) -> list[tuple[list[float], Any]]:
    """Call each of ``fns`` warmup + repeats times, interleaved (a, b, a, b, ...) so that both see the same
    machine; per function the timed runs in ms and its last result."""
    results: list[Any] = [None] * len(fns)
    runs: list[list[float]] = [[] for _ in fns]
    for i in range(warmup + repeats):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            results[k] = fn()
            if i >= warmup:
                runs[k].append((time.perf_counter() - t0) * 1000.0)
    return list(zip(runs, results, strict=True))


@contextmanager
def own_credits_database(server: str) -> Iterator[str]:
    """A credits database of the bench's own, <server>_<run>_credits, at Alembic head; dropped afterwards."""
    from services.common.config import normalise_db_url
    from services.common.db import ensure_database

    url = normalise_db_url(f"{server.rstrip('/')}_{uuid.uuid4().hex[:6]}_credits")
    try:
        ensure_database(url)
        env = dict(os.environ, CME_CREDITS_DATABASE_URL=url)
        done = subprocess.run([sys.executable, "-m", "deploy.manage", "upgrade", "credits"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"credits migrations failed:\n{done.stderr[-3000:]}")
        yield url
    finally:
        _drop([url])


def run_analysis(url: str, *, trainees: int = 10_000, warmup: int = 1, repeats: int = 5) -> list[AnalysisCase]:
    """Load the attendance (main activity + noise) into the credits database at ``url`` and time both rules
    (each against its hand SQL, interleaved)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    from services.credits.analysis import Rule, WindowPick, valid_attendees

    # as in the service's processes, where the app factory freezes what was loaded at start
    # (services/common/web.py): the measured calls run in such a process, not in a bare interpreter
    gc.freeze()
    main = AttendanceSpec(activity_id=1, trainees=trainees)
    noise = AttendanceSpec(activity_id=2, trainees=max(1, trainees // 2), windows=2, first_window_id=101,
                           day0=main.day0 + dt.timedelta(days=7), checkin_base=10 * trainees + 10, offering_id=2)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for spec in (main, noise):
                sql, params = attendance_insert_sql(spec)
                conn.execute(text(sql), params)
            conn.execute(text("ANALYZE attendance_records"))
        picks = [WindowPick(w, start, end) for w, _, start, end in main.window_rows()]
        ids = [p.window_id for p in picks]
        pairs = [(ids[i], ids[i + 1]) for i in range(0, len(ids) - 1, 2)]
        cases = [("all", Rule("all"), len(picks), None,
                  'valid_attendees, Rule("all")', f"hand SQL, HAVING all {len(picks)} windows"),
                 ("at_least 3 + pairs", Rule("at_least", 3, pairs_required=True), 3, pairs,
                  "valid_attendees, at_least 3 + pairs", "hand SQL, HAVING pairs counted >= 3")]
        out = []
        with Session(bind=engine) as session:
            for name, rule, needed, rule_pairs, our_label, hand_label in cases:
                expected = {trainee_key(t) for t in expected_serials(main, needed, rule_pairs is not None)}
                sql, params = hand_sql(main.activity_id, [tuple(p) for p in picks], needed, rule_pairs)
                (our_runs, attendees), (hand_runs, keys) = time_runs(
                    [lambda r=rule: valid_attendees(session, main.activity_id, picks, r),
                     lambda s=sql, p=params: session.connection().execute(text(s), p).all()], warmup, repeats)
                ours = Timing(our_label, our_runs, len(attendees))
                hand = Timing(hand_label, hand_runs, len(keys))
                got_ours = {a.trainee_key for a in attendees}
                got_hand = {k for (k,) in keys}
                if not (got_ours == got_hand == expected):
                    raise AssertionError(
                        f"attendance analysis {name!r} disagrees: valid_attendees {len(got_ours)}, hand SQL "
                        f"{len(got_hand)}, generated {len(expected)} trainees "
                        f"(valid_attendees only: {len(got_ours - got_hand)}, "
                        f"hand SQL only: {len(got_hand - got_ours)})")
                out.append(AnalysisCase(name, ours, hand, len(expected)))
                session.rollback()
        return out
    finally:
        engine.dispose()


def analysis_table(cases: list[AnalysisCase]) -> list[str]:
    out = [f"  {'':<42} {'median ms':>9} {'max ms':>8} {'runs':>5} {'trainees':>9}"]
    for case in cases:
        for t in (case.ours, case.hand):
            out.append(f"  {t.label:<42} {t.median_ms:>9.1f} {t.max_ms:>8.1f} {len(t.runs_ms):>5} {t.count:>9}")
    return out


def analysis_ratio_lines(cases: list[AnalysisCase], skipped: str = "") -> tuple[list[str], bool]:
    """valid_attendees / hand SQL per rule (medians), target <= 2x, and the absolute target <= 1 s."""
    if not cases:
        return [f"  attendance analysis: not measured ({skipped or 'not run'})"], True
    out, ok = [], True
    for case in cases:
        hand = case.hand.median_ms
        ratio = case.ours.median_ms / hand if hand else float("inf")
        good = ratio <= TARGET_ANALYSIS_RATIO and case.ours.median_ms <= TARGET_ANALYSIS_MS
        ok &= good
        out.append(f"  analysis {case.rule}: valid_attendees / hand SQL = {ratio:.2f}x "
                   f"(target <= {TARGET_ANALYSIS_RATIO:g}x), median {case.ours.median_ms:.1f} ms, "
                   f"max {case.ours.max_ms:.1f} ms (target <= {TARGET_ANALYSIS_MS:.0f} ms), "
                   f"{case.ours.count} trainees: {'MET' if good else 'NOT MET'}")
    return out, ok


# ---- 达标情况: data --------------------------------------------------------------------------------

@dataclass(frozen=True)
class AwardSpec:
    """``trainees`` x ``per_trainee`` awards over ``offerings`` offerings in ``years`` years up to ``last_year``;
    offering o (1-based) belongs to year last_year - years + 1 + (o - 1) * years // offerings, and trainee t's
    j-th award is for offering (7t + j * offerings // per_trainee) % offerings + 1 (distinct for one trainee)."""

    trainees: int = 100_000
    per_trainee: int = 10
    offerings: int = 200
    years: int = 5
    last_year: int = 2026

    def __post_init__(self) -> None:
        if self.offerings % self.per_trainee or self.offerings < self.per_trainee:
            raise ValueError("offerings must be a multiple of per_trainee (one award per trainee per offering)")

    @property
    def rows(self) -> int:
        return self.trainees * self.per_trainee


def award_kind(k: int) -> tuple[str, str]:
    """(method, state) of award number k, as the SQL makes it: 5% manual (pending or withdrawn, never effective),
    5% withdrawn attendance, 10% pending attendance, the rest effective attendance."""
    r = k % 20
    method = "manual" if r in (3, 7) else "attendance"
    state = "withdrawn" if r in (3, 13) else "pending" if r in (7, 11, 15) else "effective"
    return method, state


def awards_insert_sql(spec: AwardSpec, part: int = 0, parts: int = 1) -> tuple[str, dict[str, Any]]:
    """One INSERT ... SELECT over generate_series of the awards of ``spec`` (see award_kind for the states):
    of the trainees, the part-th of ``parts`` consecutive ranges (the parts can load side by side)."""
    key = TRAINEE_KEY_SQL.format(t="t")
    sql = f"""
INSERT INTO credit_awards (offering_id, institution_id, trainee_key, name, id_enc, mobile_enc, title, unit,
    project_number, project_title, institution_name, credit_class, credit_value, offering_starts_on,
    offering_ends_on, activity_date, year, method, state, analysis_id, granted_at, granted_by, effective_at,
    withdrawn_at, withdraw_reason, version)
SELECT o, 1 + o % 50, {key}, '学员' || t, :enc, NULL, '主治医师', '西安市第一医院',
    y || '-04-' || lpad((1 + o % 9)::text, 2, '0') || '-' || lpad(o::text, 3, '0'), '基准测试项目 ' || o,
    '基准医院 ' || (1 + o % 50), CASE WHEN o % 4 = 0 THEN 'Ⅱ类' ELSE 'Ⅰ类' END, (1 + o % 10) * 0.5,
    s, s + o % 3, s + o % 3, y, m, st, CASE WHEN m = 'attendance' THEN o END,
    (s + o % 3 + 1)::timestamptz, 'bench',
    CASE WHEN st = 'effective' THEN (s + 30)::timestamptz END,
    CASE WHEN st = 'withdrawn' THEN (s + 5)::timestamptz END,
    CASE WHEN st = 'withdrawn' THEN '基准测试撤销' END, 1
FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS t
CROSS JOIN generate_series(0, :per_trainee - 1) AS j
CROSS JOIN LATERAL (SELECT (7 * t + j * (:offerings / :per_trainee)) % :offerings + 1 AS o,
                           (t * :per_trainee + j) % 20 AS r) AS a
CROSS JOIN LATERAL (SELECT :last_year - :years + 1 + (o - 1) * :years / :offerings AS y,
                           CASE WHEN r IN (3, 7) THEN 'manual' ELSE 'attendance' END AS m,
                           CASE WHEN r IN (3, 13) THEN 'withdrawn' WHEN r IN (7, 11, 15) THEN 'pending'
                                ELSE 'effective' END AS st) AS b
CROSS JOIN LATERAL (SELECT make_date(y, 1 + o % 12, 1 + o % 25) AS s) AS c
"""
    first, last = trainee_range(spec.trainees, part, parts)
    return sql, {"first": first, "last": last, "per_trainee": spec.per_trainee, "offerings": spec.offerings,
                 "years": spec.years, "last_year": spec.last_year, "enc": FAKE_ENC}


def trainee_range(trainees: int, part: int, parts: int) -> tuple[int, int]:
    """The first and last serial (inclusive) of the part-th of ``parts`` near-equal ranges of 0 .. trainees-1."""
    if not 0 <= part < parts:
        raise ValueError("part out of range")
    return trainees * part // parts, trainees * (part + 1) // parts - 1


def accounts_insert_sql(count: int, id_enc: str) -> tuple[str, dict[str, Any]]:
    """Trainee accounts for serials 0 .. count-1 (the awards' trainee keys), a password set and no forced change;
    RETURNING id, trainee_key, name for the session cookies."""
    key = TRAINEE_KEY_SQL.format(t="t")
    sql = f"""
INSERT INTO trainee_accounts (trainee_key, id_enc, name, mobile_enc, mobile_hash, password_hash, must_change,
    failed_attempts, locked_until, password_changed_at, created_at, updated_at)
SELECT {key}, :id_enc, '学员' || t, NULL, NULL, :password_hash, false, 0, NULL, now(), now(), now()
FROM generate_series(0, :count - 1) AS t
RETURNING id, trainee_key, name
"""
    return sql, {"count": count, "id_enc": id_enc, "password_hash": "bench$not-a-real-hash"}


def session_cookie(account_id: int, trainee_key_: str, name: str) -> str:
    """The trainee session cookie, as the login sets it (services.credits.accounts.views.principal_for)."""
    from services.common.auth import COOKIE, Principal, issue_token

    principal = Principal(role="trainee", subject=f"trainee:{account_id}", name=name, trainee_key=trainee_key_)
    return f"{COOKIE}={issue_token(principal)}"


def load_compliance(url: str, spec: AwardSpec, accounts: int) -> tuple[list[tuple[int, str, str]], float]:
    """Insert the awards and the accounts, ANALYZE; the accounts (id, key, name) and the seconds it took."""
    from sqlalchemy import create_engine, text

    from bench.run import id_number
    from services.common import pii

    t0 = time.monotonic()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            sql, params = awards_insert_sql(spec)
            conn.execute(text(sql), params)
            sql, params = accounts_insert_sql(accounts, pii.encrypt(id_number(0)))
            rows = [tuple(r) for r in conn.execute(text(sql), params).all()]
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE credit_awards"))
            conn.execute(text("ANALYZE trainee_accounts"))
    finally:
        engine.dispose()
    return rows, time.monotonic() - t0  # type: ignore[return-value]


def compliance_module() -> tuple[Any | None, str]:
    return _import("services.credits.compliance")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:  # a redirect (e.g. to the login) is an answer
        return None


def probe(base_url: str, line: Line, expect: str = "", timeout: float = 10.0) -> str:
    """One request as wrk will send it; '' when it answers 200 itself (wrk would count a redirect to the login
    as a success) with ``expect`` in the page or JSON, else why not."""
    req = urllib.request.Request(base_url + line.path, method=line.method, headers={"Cookie": line.cookie})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=timeout) as resp:
            if resp.status != 200:
                return f"GET {line.path} answered {resp.status}"
            body = resp.read().decode("utf-8", "replace")
            if expect and expect not in body:
                try:
                    body = json.dumps(json.loads(body), ensure_ascii=False)
                except ValueError:
                    pass
            return "" if expect in body else f"GET {line.path} answered 200 without {expect!r}: {body[:300]!r}"
    except urllib.error.HTTPError as exc:
        body = exc.read(300).decode("utf-8", "replace").replace("\n", " ")
        where = exc.headers.get("Location") or ""
        return f"GET {line.path} answered {exc.code}" + (f" to {where}" if where else "") + f": {body}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return f"GET {line.path} failed: {exc}"


def compliance_lines(accounts: list[tuple[int, str, str]], path: str) -> list[Line]:
    return [Line("GET", path, session_cookie(account_id, key, name)) for account_id, key, name in accounts]


def compliance_ratio_lines(rows: list[Row], hello: Row) -> tuple[list[str], bool]:
    """Each compliance row: p99 against the target, requests/s against the hello baseline of the same run."""
    out, ok = [], True
    for row in rows:
        if row.result is None:
            out.append(f"  {row.label}: not measured ({row.skipped or 'not run'})")
            continue
        r = row.result
        good = r.p99_ms <= TARGET_COMPLIANCE_P99_MS and not r.errors
        ok &= good
        vs = (f", {r.rps / hello.result.rps:.2f}x the rps of hello ({hello.result.rps:.0f}/s, p99 "
              f"{hello.result.p99_ms:.1f} ms, same connections)"
              if hello.result and hello.result.rps else f", hello not measured ({hello.skipped or 'not run'})")
        out.append(f"  {row.label}: {r.rps:.1f} req/s, p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms "
                   f"(target <= {TARGET_COMPLIANCE_P99_MS:.0f} ms), errors {r.errors}{vs}: "
                   f"{'MET' if good else 'NOT MET'}")
    return out, ok


def prepare_compliance(stack: Any, tmp: Path, files: dict[str, Path], awards: int, budget_left: float,
                       accounts: int = 20_000) -> tuple[dict[str, str], str]:
    """Load the awards and accounts into the stack's credits database and write the request files of the rows
    "cpage" and "capi" into ``files``; (reasons of the rows skipped, a note on what is stored)."""
    from bench.run import write_lines
    from services.common import clock

    module, why = compliance_module()
    if module is None:
        return {"cpage": why, "capi": why}, ""
    if budget_left < LOAD_BUDGET_S:
        why = f"out of time budget (loading the awards needs about {LOAD_BUDGET_S:.0f} s)"
        return {"cpage": why, "capi": why}, ""
    spec = AwardSpec(trainees=max(1, awards // AwardSpec.per_trainee), last_year=clock.to_local(clock.now()).year)
    print(f"loading {spec.rows:,} credit awards into credits ...", flush=True)
    stored, seconds = load_compliance(stack.database_urls["credits"], spec, min(accounts, spec.trainees))
    skips = {}
    for key, path in (("cpage", COMPLIANCE_PAGE), ("capi", COMPLIANCE_API)):
        lines = compliance_lines(stored, path)
        why = probe(stack.base_url, lines[0], expect=stored[0][2])  # the trainee's own name
        if why:
            skips[key] = why
        else:
            files[key] = write_lines(tmp / f"{key}.txt", lines)
    note = (f"credit awards stored: {spec.rows:,} ({spec.trainees:,} trainees x {spec.per_trainee}, "
            f"{spec.years} years, {spec.offerings} offerings), {len(stored):,} trainees signed in, "
            f"each request a different one; loaded and analysed in {seconds:.0f} s")
    return skips, note
