"""bench/run.py imports without a stack and reads wrk's report (the benchmark itself is `make bench`)."""

from __future__ import annotations

import os

import pytest

SAMPLE = """Running 10s test @ http://127.0.0.1:41234
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    25.31ms   10.12ms 120.00ms   75.00%
    Req/Sec     1.00k   100.00     1.20k    70.00%
  Latency Distribution
     50%  850.00us
     75%   30.12ms
     90%   38.00ms
     99%    1.20s
  20000 requests in 10.01s, 3.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 12
Requests/sec:   1998.00
Transfer/sec:    300.00KB
"""


def test_bench_imports_and_parses_wrk_output():
    from bench.run import Line, form_body, parse_wrk

    r = parse_wrk(SAMPLE)
    assert (r.requests, r.seconds, r.rps) == (20000, 10.01, 1998.0)
    assert (r.p50_ms, r.p99_ms) == (pytest.approx(0.85), 1200.0)
    assert (r.non_2xx, r.socket_errors, r.errors) == (12, 3, 15)
    with pytest.raises(ValueError):
        parse_wrk("wrk: connection refused")
    body = form_body(12)
    assert body["name"] == "学员一二" and len(body["id_number"]) == 18
    assert Line("POST", "/x", "a=b", '{"k":1}').render() == 'POST\t/x\ta=b\t{"k":1}'


def test_bench_identities_pass_the_check_in_form():
    from bench.run import form_body
    from services.common.identity import TraineeIdentitySchema

    for serial in (0, 899, 900, 39999):
        body = form_body(serial)
        body.pop("nonce")
        TraineeIdentitySchema().load(body)


def test_bench_only_selects_rows_with_their_baselines():
    from bench.run import ROWS, select_rows

    assert select_rows("") == list(ROWS)
    assert select_rows("analysis") == ["analysis"]
    assert select_rows("compliance, analysis") == ["hello", "analysis", "compliance"]
    assert select_rows("submit,qr") == ["insert", "submit", "hello", "qr"]
    with pytest.raises(ValueError, match="nope"):
        select_rows("analysis,nope")


def test_bench_attendance_data_and_hand_sql():
    import datetime as dt

    from bench.credits import (
        AttendanceSpec,
        attendance_insert_sql,
        expected_serials,
        forced,
        hand_sql,
        out_of_range,
        trainee_key,
    )

    spec = AttendanceSpec(activity_id=1, trainees=10_000)
    windows = spec.window_rows()
    assert [(w, kind) for w, kind, _, _ in windows] == [(1, "sign_in"), (2, "sign_out"), (3, "sign_in"),
                                                         (4, "sign_out")]
    assert windows[1][2] - windows[0][2] == dt.timedelta(hours=9)  # 08:00 and 17:00 in Shanghai
    assert windows[2][2] - windows[0][2] == dt.timedelta(days=1)
    assert all(end - start == dt.timedelta(minutes=30) for _, _, start, end in windows)
    sql, params = attendance_insert_sql(spec)
    assert "generate_series" in sql and "INSERT INTO attendance_records" in sql
    assert params["trainees"] == 10_000 and params["windows"] == 4 and params["day0"].tzinfo is not None
    bad = sum(out_of_range(t, w) or forced(t, w) for t in range(spec.trainees) for w in range(4))
    assert 0.01 < bad / 40_000 < 0.05  # some noise, most scans valid
    valid = expected_serials(spec, 4, pairs=False)
    assert 9000 < len(valid) < 10_000
    # with 2 days of sign-in/sign-out pairs, "at least 3 counted" needs both pairs: all 4 windows
    assert expected_serials(spec, 3, pairs=True) == valid
    assert len(expected_serials(spec, 3, pairs=False)) > len(valid)
    assert len(trainee_key(7)) == 64 and int(trainee_key(7), 16) >= 0 and trainee_key(7) != trainee_key(8)

    picks = [(w, start, end) for w, _, start, end in windows]
    sql, params = hand_sql(1, picks, 4)
    assert "GROUP BY trainee_key HAVING count(*) >= :needed" in sql and "NOT forced" in sql
    assert params["needed"] == 4 and params["w3"] == 4 and params["f0"] == windows[0][2]
    sql, params = hand_sql(1, picks, 3, pairs=[(1, 2)])
    assert sql.count("THEN 2 ELSE 0 END") == 1  # one pair ...
    assert "count(*) FILTER (WHERE window_id = :w2) + count(*) FILTER (WHERE window_id = :w3)" in sql  # ... 2 alone


def test_bench_award_data_respects_the_constraints():
    from bench.credits import AwardSpec, accounts_insert_sql, award_kind, awards_insert_sql, trainee_range

    spec = AwardSpec()
    assert spec.rows == 1_000_000
    kinds = [award_kind(k) for k in range(20)]
    assert ("manual", "effective") not in kinds  # manual entries are never effective
    assert {m for m, _ in kinds} == {"attendance", "manual"}
    assert {s for _, s in kinds} == {"pending", "effective", "withdrawn"}
    assert sum(k == ("attendance", "effective") for k in kinds) / 20 == 0.75
    sql, params = awards_insert_sql(spec, 1, 2)
    assert "INSERT INTO credit_awards" in sql and "generate_series" in sql
    assert (params["first"], params["last"]) == (50_000, 99_999)
    # the SQL spells award_kind out: the same remainders
    assert "WHEN r IN (3, 7) THEN 'manual'" in sql and "WHEN r IN (3, 13) THEN 'withdrawn'" in sql
    # one award per trainee per offering: a trainee's offerings are distinct, and spread over the years
    step = spec.offerings // spec.per_trainee
    for t in (0, 1, 99_999):
        offerings = [(7 * t + j * step) % spec.offerings + 1 for j in range(spec.per_trainee)]
        assert len(set(offerings)) == spec.per_trainee
        years = {spec.last_year - spec.years + 1 + (o - 1) * spec.years // spec.offerings for o in offerings}
        assert years == set(range(spec.last_year - spec.years + 1, spec.last_year + 1))
    assert [trainee_range(10, p, 3) for p in range(3)] == [(0, 2), (3, 5), (6, 9)]
    with pytest.raises(ValueError):
        AwardSpec(offerings=15)
    sql, params = accounts_insert_sql(3, "enc")
    assert "RETURNING id, trainee_key, name" in sql and params["count"] == 3 and "false" in sql


def test_bench_credits_figures_and_targets():
    from bench.credits import (
        AnalysisCase,
        Timing,
        analysis_ratio_lines,
        analysis_table,
        compliance_ratio_lines,
        session_cookie,
        time_runs,
    )
    from bench.run import Row, WrkResult
    from services.common.auth import principal_from_token

    fast = AnalysisCase("all", Timing("ours", [300.0, 200.0, 250.0], 9), Timing("hand", [100.0, 150.0, 125.0], 9))
    lines, ok = analysis_ratio_lines([fast])
    assert ok and "2.00x" in lines[0] and "median 250.0 ms" in lines[0] and lines[0].endswith("MET")
    slow = AnalysisCase("pairs", Timing("ours", [1200.0], 9), Timing("hand", [1000.0], 9))
    lines, ok = analysis_ratio_lines([fast, slow])
    assert not ok and lines[1].endswith("NOT MET")
    assert analysis_ratio_lines([], "boom") == (["  attendance analysis: not measured (boom)"], True)
    assert "300.0" in "\n".join(analysis_table([fast]))

    hello = Row("hello", WrkResult(1000, 10.0, 2000.0, 1.0, 4.0))
    page = Row("page", WrkResult(500, 10.0, 500.0, 10.0, 40.0))
    api = Row("api", WrkResult(500, 10.0, 800.0, 10.0, 60.0))
    lines, ok = compliance_ratio_lines([page, api, Row("json", skipped="not there")], hello)
    assert not ok
    assert "0.25x the rps of hello" in lines[0] and lines[0].endswith(": MET")
    assert lines[1].endswith("NOT MET") and "not measured (not there)" in lines[2]

    calls = []
    (runs_a, last_a), (runs_b, last_b) = time_runs([lambda: calls.append("a") or 1, lambda: calls.append("b") or 2],
                                                   warmup=1, repeats=2)
    assert calls == ["a", "b"] * 3 and len(runs_a) == len(runs_b) == 2 and (last_a, last_b) == (1, 2)

    name, _, token = session_cookie(42, "k" * 64, "学员").partition("=")
    p = principal_from_token(token)
    assert name == "cme_session" and (p.role, p.subject, p.trainee_key) == ("trainee", "trainee:42", "k" * 64)


def test_bench_probe_refuses_a_redirect_to_the_login():
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from bench.credits import probe
    from bench.run import Line

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            body = b'{"trainee": {"name": "\\u5b66\\u5458"}}'  # jsonify's ASCII escapes of 学员
            if self.headers.get("Cookie") == "ok=1":
                self.send_response(200)
            else:
                self.send_response(302)
                self.send_header("Location", "/credits/login")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert probe(base, Line("GET", "/credits/compliance", "ok=1"), expect="学员") == ""
        assert "without '学员零'" in probe(base, Line("GET", "/credits/compliance", "ok=1"), expect="学员零")
        assert "302 to /credits/login" in probe(base, Line("GET", "/credits/compliance", "ok=0"))
    finally:
        server.shutdown()
        server.server_close()


def test_bench_certs_awards_print_and_vary():
    import datetime as dt

    from bench.certs import CERTS, OFFERING_ID, award_rows, project_title, trainee_name
    from bench.run import select_rows
    from services.certs import models  # noqa: F401
    from services.certs.awards.models import EffectiveAward
    from services.certs.certificates.rules import print_status
    from services.common import pii

    assert select_rows("certs") == ["certs"]
    today, now = dt.date(2026, 11, 26), dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)
    rows = award_rows(CERTS, today, now, encrypt=lambda v: "enc:" + v)
    assert [r["award_id"] for r in rows] == list(range(1, CERTS + 1))
    assert {r["offering_id"] for r in rows} == {OFFERING_ID} and len({r["trainee_key"] for r in rows}) == CERTS
    names = {r["name"] for r in rows}
    assert len(names) > 500 and all("\u4e00" <= ch <= "\u9fff" for n in names for ch in n)
    assert all(2 <= len(n) <= 4 for n in names) and len({r["project_title"] for r in rows}) >= 20
    assert project_title(0) != project_title(1) and trainee_name(0) != trainee_name(1)
    assert all(print_status(EffectiveAward(**r), today).printable for r in rows)
    assert all(today - r["ends_on"] > dt.timedelta(weeks=4) and r["starts_on"] <= r["activity_date"] <= r["ends_on"]
               for r in rows)
    assert rows[0]["id_enc"].startswith("enc:") and len(rows[0]["id_enc"]) == 4 + 18
    real = award_rows(2, today, now, encrypt=pii.encrypt)
    assert pii.mask_id(pii.decrypt(real[1]["id_enc"])).count("*") == 10


def test_bench_certs_figures_and_targets():
    import subprocess

    from bench.certs import CertsResult, _timed, certs_ratio_lines, certs_table, extrapolate, main, peak_mb
    from bench.certs import prerequisites as prereq

    assert extrapolate([0.2, 0.4], 1000) == pytest.approx(300.0) and extrapolate([], 1000) == 0.0
    assert peak_mb(409600, "linux") == 400.0 and peak_mb(400 * 1024 * 1024, "darwin") == 400.0

    def result(export_s, per_cert, peak):
        return CertsResult(certs=1000, export_s=export_s, export_wall_s=export_s + 2, peak_mb=peak, chunk=100,
                           pages=1000, pdf_bytes=8_000_000, load_s=0.3, job_s=1.0, sample_times=[per_cert] * 50,
                           baseline_peak_mb=200.0, spent={"render_document": export_s / 2}, loads=["start 1.00"],
                           peaks_mb={"start": 90.0, "rendered": 250.0})

    good = result(50.0, 0.25, 350.0)
    assert good.per_cert_s == 250.0 and good.ratio == 5.0
    lines, ok = certs_ratio_lines(good)
    assert ok and len(lines) == 3 and all(line.endswith(": MET") for line in lines)
    assert "5.00x" in lines[0] and "extrapolated from 50" in lines[0]
    lines, ok = certs_ratio_lines(result(61.0, 0.3, 401.0))
    assert not ok and [line.endswith("NOT MET") for line in lines] == [False, True, True]
    assert certs_ratio_lines(None, "no font") == (["  certificate export: not measured (no font)"], True)
    table = "\n".join(certs_table(good))
    assert "50 renders x 20 (extrapolated)" in table and "one document per 100" in table and "start 1.00" in table
    assert "250 MB when every page was rendered" in table

    class Mod:
        @staticmethod
        def f(x):
            return x + 1

    spent = {}
    _timed(Mod, "f", spent)
    assert Mod.f(1) == 2 and Mod.f(2) == 3 and spent["f"] >= 0.0

    assert main(["nope"]) == 2
    assert "fc-list not found" in prereq(which=lambda _: None)
    none = prereq(which=lambda _: "/usr/bin/fc-list",
                  run=lambda argv, **kw: subprocess.CompletedProcess(argv, 0, stdout="", stderr=""))
    assert "Noto Serif CJK SC" in none and "not installed" in none
    found = prereq(which=lambda _: "/usr/bin/fc-list",
                   run=lambda argv, **kw: subprocess.CompletedProcess(argv, 0, stdout="Noto Serif CJK SC\n"))
    assert found == ""


def test_measured_run_starts_past_every_line_the_warmup_sent(monkeypatch, tmp_path):
    """A check-in submitted again is only "already recorded": the measured run must not replay the warm-up's."""
    import subprocess

    from bench import run

    warm = run.parse_wrk(SAMPLE)
    for threads in (1, 2, 4):
        for connections in (10, 50):
            first = run.after_warmup(warm, threads, connections)
            # worst case: one thread sent every answered request and had every connection's request in flight
            sent = warm.requests + connections
            assert all(t + (sent - 1) * threads < first for t in range(threads))

    seen: list[list[str]] = []

    def fake_run(argv, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(argv)
        return subprocess.CompletedProcess(argv, 0, SAMPLE, "")

    monkeypatch.setattr(run.subprocess, "run", fake_run)
    run.run_wrk("wrk", "http://x", tmp_path / "l.txt", threads=2, connections=50, seconds=1, first=40100)
    assert seen[0][-3:] == [str(tmp_path / "l.txt"), "2", "40100"]
    assert 'tonumber(args[3] or "0")' in run.LUA.read_text()


def test_rows_carry_the_machines_cpu_per_request(monkeypatch, tmp_path):
    import dataclasses
    import subprocess

    from bench import run

    busy = iter([100.0, 102.5])  # 2.5 s of CPU over the run's 20,000 requests
    monkeypatch.setattr(run, "machine_busy", lambda: next(busy))
    monkeypatch.setattr(run.subprocess, "run", lambda argv, **kw: subprocess.CompletedProcess(argv, 0, SAMPLE, ""))
    r = run.run_wrk("wrk", "http://x", tmp_path / "l.txt", threads=2, connections=50, seconds=1)
    assert r.cpu_ms == pytest.approx(0.125)
    row = run.Row("x", r)
    assert run._fmt(row).split()[-1] == "0.12"
    lines, _ = run.ratio_lines(run.Row("s", dataclasses.replace(r, cpu_ms=0.25)), row, run.Row("q"), run.Row("h"))
    assert "submit 0.25 ms, insert 0.12 ms" in lines[1] and "0.50x" in lines[1]


def test_machine_busy_reads_proc_stat():
    from bench.run import machine_busy

    first = machine_busy()
    if first is None:
        pytest.skip("no /proc/stat here")
    sum(i * i for i in range(200_000))  # some CPU
    assert machine_busy() >= first > 0


@pytest.mark.parametrize("cmdline, group", [
    ("/v/bin/python -m gunicorn -c deploy/gunicorn.conf.py --bind 127.0.0.1:1 --workers 2 --name cme-checkin "
     "services.checkin.wsgi:app", "checkin web"),
    ("/v/bin/python -m gunicorn -c g.py --bind 127.0.0.1:2 --workers 2 --name cme-bench-baseline bench.baseline:app",
     "baseline web"),
    ("/v/bin/python -m celery -A services.credits.worker worker -Q credits -n credits@%h --concurrency 1",
     "credits worker"),
    ("/v/bin/python -m celery -A services.projects.worker beat --schedule var/celerybeat-schedule", "projects beat"),
    ("/v/bin/python -m services.common.relay checkin", "relay checkin"),
    ("postgres: 15/main: root cmebench_x_checkin 127.0.0.1(5) idle", "postgres checkin"),
    ("postgres: 15/main: root cmebench_20261126_1_baseline 127.0.0.1(6) INSERT", "postgres baseline"),
    ("postgres: root other_db [local] idle", "postgres"),
    ("postgres: 15/main: walwriter", "postgres"),
    ("nginx: worker process", "nginx"),
    ("/usr/bin/redis-server 127.0.0.1:6400", "redis"),
    ("/usr/bin/wrk -t 2 -c 50 -d 10s", "wrk"),
    ("[kworker/0:1]", "other"),
])
def test_processes_are_grouped_by_what_they_are(cmdline, group):
    from bench.run import process_group

    assert process_group(cmdline) == group


def test_cpu_by_group_per_request():
    from bench.run import cpu_by_group, process_cpu

    before = {1: ("checkin web", 10.0), 2: ("checkin web", 5.0), 3: ("postgres", 1.0), 4: ("wrk", 0.5)}
    after = {1: ("checkin web", 12.0), 2: ("checkin web", 6.0), 3: ("postgres", 2.0), 5: ("postgres", 0.5)}
    # 1,000 requests: the web's 3 s are 3 ms each; postgres 1 s + a backend that began meanwhile; wrk ended (not seen)
    assert cpu_by_group(before, after, 1000) == (("checkin web", 3.0), ("postgres", 1.5))
    here = process_cpu()
    if not here:
        pytest.skip("no /proc here")
    assert os.getpid() in here and here[os.getpid()][1] > 0


def test_rounds_alternate_and_the_verdict_takes_the_median_of_paired_rounds():
    """The machine's speed drifts over minutes: each check-in round is judged against the insert round before it."""
    import dataclasses

    from bench import run

    assert run.run_order(["hello", "qr"], ["insert", "submit"], 2) == [
        ("hello", 0), ("qr", 0), ("insert", 0), ("submit", 0), ("insert", 1), ("submit", 1)]
    one = run.parse_wrk(SAMPLE)

    def rounds(*figures: tuple[float, float, int]) -> list:
        return [dataclasses.replace(one, rps=rps, requests=int(rps * 10), seconds=10.0, p99_ms=p99, non_2xx=0,
                                    socket_errors=errors, cpu_ms=1.0 + i, by_process=(("web", 1.0 + i),))
                for i, (rps, p99, errors) in enumerate(figures)]

    insert = run.Row("insert", rounds=rounds((1000, 50, 0), (1000, 60, 0), (2000, 40, 0)))
    submit = run.Row("submit", rounds=rounds((900, 90, 0), (500, 300, 0), (1700, 95, 0)))
    for row in (insert, submit):
        row.result = run.combine(row.rounds)
    s = submit.result
    assert (s.requests, s.seconds, s.rps, s.p99_ms, s.errors) == (31000, 30.0, pytest.approx(31000 / 30), 95, 0)
    # CPU per request over all the rounds' requests, not the rounds' plain mean
    assert s.cpu_ms == pytest.approx((1.0 * 9000 + 2.0 * 5000 + 3.0 * 17000) / 31000)
    assert s.by_process == (("web", pytest.approx(s.cpu_ms)),)
    assert run.paired_ratios(submit, insert) == [0.9, 0.5, 0.85]
    lines, ok = run.ratio_lines(submit, insert, run.Row("q"), run.Row("h"))
    # the pooled rates would say 0.78x: the median of the pairs is 0.85x, the median p99 95 ms
    assert ok and "the median of the rounds: 0.85x" in lines[0] and "p99 95.0 ms" in lines[0] and "MET" in lines[0]
    assert "0.50x p99 300 ms (insert 1000, check-in 500 requests/s)" in lines[1]
    submit.rounds[2] = dataclasses.replace(submit.rounds[2], socket_errors=1)
    submit.result = run.combine(submit.rounds)
    lines, ok = run.ratio_lines(submit, insert, run.Row("q"), run.Row("h"))
    assert not ok and "errors 1: NOT MET" in lines[0]
    assert run.combine([one]) is one
    with pytest.raises(SystemExit):
        run.main(["--rounds", "0"])
