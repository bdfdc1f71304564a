"""bench/run.py imports without a stack and reads wrk's report (the benchmark itself is `make bench`)."""

from __future__ import annotations

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
    from services.checkin.identity import TraineeIdentitySchema

    for serial in (0, 899, 900, 39999):
        body = form_body(serial)
        body.pop("nonce")
        TraineeIdentitySchema().load(body)
