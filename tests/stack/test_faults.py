"""Fault tests (issue 7): a burst of check-ins through the gateway while something breaks, and counts that
prove nothing was lost and nothing was doubled.

(a) Redis is stopped in the middle of a burst: every phone still gets 已签到 (the event waits in the outbox);
    once Redis is back, credits' copies = the check-ins.
(b) The credits worker is killed (SIGKILL of its whole process group, no warm shutdown) in the middle of
    consuming a queue of checkin.recorded: nothing is copied while it is dead; the message it held
    unacknowledged goes back to the queue (the stack's CME_CELERY_VISIBILITY_TIMEOUT is short), the message it
    had taken off the queue without recording it (made certain: the test takes one so) is sent again on the
    restarted worker's request, and it finishes; nothing is copied twice and no message is left unacknowledged.
(c) PostgreSQL is stopped (pg_ctl -m fast) in the middle of a burst and started again: a phone caught by it
    gets 503 + Retry-After + 系统繁忙，请稍后重试 (never a 500), the page form comes back with what was typed,
    and the retry (same nonce) succeeds.

After each: the phones answered 已签到 = the check-ins stored in checkin's database = credits' copies
(attendance_records), compared as sets of trainee keys, one row each. At the end, 授分 by venue attendance
over the drill's windows, twice at once and once more, gives one award per stored trainee (credit_awards has
no trainee twice for the offering).

The system PostgreSQL is shared with other runs, so this module runs its own cluster (tests/stack/pgcluster.py,
skipped when the server binaries are missing) and its own stack on it (not the session's `stack`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import redis
import requests
from sqlalchemy import text

from deploy.local import free_port
from services.common import clock, pii

from .conftest import StackHandle, running_stack
from .flows import activity_held_today, id_number, local_minute
from .pgcluster import PgCluster, missing_reason

pytestmark = pytest.mark.stack

BURST = 120  # check-ins per burst
THREADS = 12  # phones at once
BUSY = "系统繁忙，请稍后重试"
ADMIN_MOBILE = "13700007701"
REVIEWER = ("committee77", "审核员故障", "Review7@2026", "13900007707")
CN_DIGITS = "零一二三四五六七八九"
ACKNOWLEDGED: dict[int, set[str]] = {}  # window -> trainee keys answered 已签到 (filled by the fault tests)
VISIBILITY_SECONDS = 8  # the stack's CME_CELERY_VISIBILITY_TIMEOUT


# ---- the private cluster and the stack on it -----------------------------------------------------------

@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    reason = missing_reason()
    if reason:
        pytest.skip(f"no private PostgreSQL cluster for the fault tests: {reason}")
    cluster = PgCluster(free_port())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
def fstack(pg: PgCluster) -> Iterator[StackHandle]:
    """The suite on the private cluster, built as conftest's `stack` is."""
    with running_stack(
        pg.url("cmet_faults"), "cmet-faults-",
        # a killed worker's unacknowledged message comes back within seconds, not 10 minutes
        CME_CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_SECONDS),
        # the workers are killed and must catch up within the waits below, while 120 phones keep the web tier
        # busy: here they run at the web tier's priority (the lowered one is checked in tests/test_compose.py)
        CME_BACKGROUND_NICE="0",
        # a burst's 120 events in 24 messages, not 3: however fast the relay gathers, the credits worker killed
        # after its first copies leaves messages on its queue (one of them is taken off unrecorded below)
        CME_RELAY_EVENTS_PER_MESSAGE="5",
    ) as handle:
        yield handle


@dataclass
class Hall:
    """An approved activity of xjtu1 held today on the private stack, and the institution's login."""

    stack: StackHandle
    activity_id: int
    offering_id: int
    auth: dict[str, str]
    http: requests.Session

    @property
    def base(self) -> str:
        return self.stack.base_url

    def open_window(self, title: str) -> int:
        starts = max(clock.now() - dt.timedelta(minutes=10), clock.local_midnight_utc(clock.today_local()))
        r = self.http.post(f"{self.base}/checkin/api/activities/{self.activity_id}/windows", headers=self.auth,
                           json={"title": title, "kind": "sign_in", "starts_at": local_minute(starts),
                                 "ends_at": local_minute(starts + dt.timedelta(hours=3))})
        assert r.status_code == 201, r.text
        return r.json()["id"]


@pytest.fixture(scope="module")
def hall(fstack: StackHandle) -> Hall:
    demo = fstack.stack.load_demo()
    assert demo, "the demo data did not load"
    aid, offering_id, auth, office = activity_held_today(
        fstack, demo, admin=("故障测试员", ADMIN_MOBILE), reviewer=REVIEWER, venue="故障演练会场",
        addresses=("127.0.0.71", "127.0.0.72"))
    return Hall(fstack, aid, offering_id, auth, office)


# ---- phones ---------------------------------------------------------------------------------------------

def person(tag: int, i: int) -> dict[str, str]:
    """A trainee of burst `tag`, number i (distinct ID numbers, names and mobiles)."""
    return {"name": "测试" + "".join(CN_DIGITS[int(d)] for d in f"{tag}{i:03d}"),
            "id_number": id_number(f"6101021985{tag:02d}01{i + 1:03d}"), "mobile": f"13{tag}{i:08d}",
            "title": "主治医师", "unit": "西安市故障演练医院"}


@dataclass
class PhoneResult:
    person: dict[str, str]
    acknowledged: bool = False
    created: bool | None = None
    statuses: Counter = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)  # answers that are neither success nor a proper 503


def _busy_ok(r: requests.Response) -> str | None:
    """None when a 503 is the retryable answer (Retry-After and the Chinese message), else what is wrong."""
    if not r.headers.get("Retry-After", "").isdigit():
        return f"503 without Retry-After on {r.url}: {r.text[:200]}"
    if BUSY not in r.text:
        return f"503 without {BUSY} on {r.url}: {r.text[:200]}"
    return None


def scan_url(hall: Hall, window: int) -> str:
    from services.checkin.qr.tokens import make_token, slot_at

    return f"{hall.base}/checkin/s/{make_token(hall.activity_id, window, slot_at())}"


def check_in(hall: Hall, window: int, who: dict[str, str], give_up: float) -> PhoneResult:
    """One phone: open the projector's code (through the fake WeChat login), read the ticket, submit the form;
    a 503 is retried after its Retry-After (the same step; the form with the same nonce)."""
    result = PhoneResult(who)
    phone = requests.Session()

    def step(call: Callable[[], requests.Response]) -> requests.Response | None:
        while True:
            try:
                r = call()
            except requests.RequestException as exc:  # the gateway answers even when a service cannot
                result.bad.append(f"{type(exc).__name__}: {exc}")
                return None
            result.statuses[r.status_code] += 1
            if r.status_code != 503:
                return r
            problem = _busy_ok(r)
            if problem:
                result.bad.append(problem)
                return None
            if time.monotonic() > give_up:
                result.bad.append("still 503 at the end of the test's patience")
                return None
            time.sleep(min(2.0, float(r.headers["Retry-After"])))

    try:
        r = step(lambda: phone.get(scan_url(hall, window), timeout=30))
        if r is None:
            return result
        if r.status_code != 200 or r.url.split("#")[0] != f"{hall.base}/checkin/scan":
            result.bad.append(f"scan: {r.status_code} {r.url} {r.text[:200]}")
            return result
        r = step(lambda: phone.get(f"{hall.base}/checkin/api/scan", timeout=30))
        if r is None:
            return result
        if r.status_code != 200:
            result.bad.append(f"ticket: {r.status_code} {r.text[:200]}")
            return result
        body = {"nonce": r.json()["nonce"], **who}
        r = step(lambda: phone.post(f"{hall.base}/checkin/api/scan", json=body, timeout=30))
        if r is None:
            return result
        if r.status_code in (200, 201) and r.json().get("status") == "已签到":
            result.acknowledged, result.created = True, r.json()["created"]
        else:
            result.bad.append(f"submit: {r.status_code} {r.text[:200]}")
        return result
    finally:
        phone.close()


@dataclass
class Burst:
    results: list[PhoneResult]
    took: float

    @property
    def acknowledged(self) -> set[str]:
        """Trainee keys of the phones that were answered 已签到."""
        return {pii.id_hash(r.person["id_number"]) for r in self.results if r.acknowledged}

    @property
    def statuses(self) -> Counter:
        return sum((r.statuses for r in self.results), Counter())

    @property
    def bad(self) -> list[str]:
        return [b for r in self.results for b in r.bad]


def burst(hall: Hall, window: int, tag: int, fault: Callable[[], None] | None = None, n: int = BURST,
          patience: float = 120.0) -> Burst:
    """n phones check in, THREADS at a time; `fault` runs (here, in the test's thread) once a third of them
    have been answered, while the rest are still on their way."""
    done = threading.Semaphore(0)
    give_up = time.monotonic() + patience

    def phone(i: int) -> PhoneResult:
        try:
            return check_in(hall, window, person(tag, i), give_up)
        finally:
            done.release()

    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [pool.submit(phone, i) for i in range(n)]
        if fault is not None:
            for _ in range(n // 3):
                assert done.acquire(timeout=patience), "the burst stalled before the fault"
            fault()
        results = [f.result(timeout=patience + 60) for f in futures]
    took = time.monotonic() - began
    out = Burst(results, took)
    print(f"burst {tag}: {n} phones in {took:.1f}s, answers {dict(out.statuses)}, "
          f"acknowledged {len(out.acknowledged)}")
    return out


# ---- counts ---------------------------------------------------------------------------------------------

def stored_keys(stack: StackHandle, window: int) -> list[str]:
    """Trainee keys of the check-ins stored in checkin's database for the window (one per row)."""
    with stack.engine("checkin").connect() as conn:
        return list(conn.execute(text(
            "SELECT t.trainee_key FROM checkins c JOIN trainees t ON t.id = c.trainee_id WHERE c.window_id = :w"),
            {"w": window}).scalars())


def copied_keys(stack: StackHandle, window: int) -> list[str]:
    """Trainee keys of credits' copies (attendance_records) for the window (one per row)."""
    with stack.engine("credits").connect() as conn:
        return list(conn.execute(text("SELECT trainee_key FROM attendance_records WHERE window_id = :w"),
                                 {"w": window}).scalars())


def pending_events(stack: StackHandle) -> int:
    """checkin.recorded events for credits still waiting in checkin's outbox."""
    with stack.engine("checkin").connect() as conn:
        return conn.execute(text("SELECT count(*) FROM outbox WHERE consumer = 'credits' "
                                 "AND name = 'checkin.recorded' AND sent_at IS NULL")).scalar_one()


def duplicated_awards(stack: StackHandle) -> list[tuple]:
    with stack.engine("credits").connect() as conn:
        return list(conn.execute(text("SELECT offering_id, trainee_key, count(*) FROM credit_awards "
                                      "GROUP BY offering_id, trainee_key HAVING count(*) > 1")))


def assert_nothing_lost(stack: StackHandle, window: int, acknowledged: set[str], timeout: float = 90.0) -> None:
    """acknowledged = stored = credits' copies, as sets, one row each; waits for the copies to arrive."""
    stored = stored_keys(stack, window)
    assert len(stored) == len(set(stored)), "a trainee stored twice in one window"
    assert set(stored) == acknowledged, (
        f"acknowledged {len(acknowledged)} but stored {len(stored)}: "
        f"{len(acknowledged - set(stored))} acknowledged and not stored, {len(set(stored) - acknowledged)} extra")
    stack.wait_until(lambda: len(copied_keys(stack, window)) >= len(acknowledged), timeout,
                     what=f"credits' copies of the {len(acknowledged)} check-ins")
    time.sleep(1.5)  # a duplicate or late delivery would land within this
    copies = copied_keys(stack, window)
    assert len(copies) == len(set(copies)), "credits copied a check-in twice"
    assert set(copies) == acknowledged
    assert duplicated_awards(stack) == []
    ACKNOWLEDGED[window] = set(acknowledged)
    print(f"window {window}: acknowledged {len(acknowledged)} = stored {len(stored)} = credits' copies "
          f"{len(copies)}")


# ---- (a) Redis stopped in the middle of a burst ---------------------------------------------------------

def test_redis_stopped_mid_burst_loses_no_checkin(fstack, hall):
    window = hall.open_window("故障演练：Redis 停机")
    seen: dict[str, int] = {}

    def stop_redis() -> None:
        fstack.stop_process("redis")
        seen["copies_at_stop"] = len(copied_keys(fstack, window))

    try:
        result = burst(hall, window, 1, fault=stop_redis)
        assert result.bad == [], result.bad[:5]
        assert len(result.acknowledged) == BURST  # Redis is not on the check-in's path
        time.sleep(2)  # the relay tries and fails meanwhile
        waiting = pending_events(fstack)
        copies_while_down = len(copied_keys(fstack, window))
        print(f"redis down: {seen['copies_at_stop']} copies at the stop, {copies_while_down} after the burst, "
              f"{waiting} events waiting in the outbox")
        assert waiting > 0 and copies_while_down < BURST, "the fault did not hold anything back"
    finally:
        fstack.start_process("redis")
    fstack.wait_healthy(60)
    assert_nothing_lost(fstack, window, result.acknowledged)
    assert pending_events(fstack) == 0


# ---- (b) the credits worker SIGKILLed while it consumes checkin.recorded -------------------------------

def kill_group(stack: StackHandle, name: str) -> None:
    """SIGKILL a process group of the stack (no warm shutdown, no acknowledgement), reap it, forget its pid."""
    runner = stack.stack
    pid = runner.pid(name)
    assert pid, f"{name} is not running"
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while runner._group_alive(pid) and time.monotonic() < deadline:
        runner._reap(pid)
        time.sleep(0.05)
    runner._reap(pid)
    assert not runner._group_alive(pid), f"{name} survived SIGKILL"
    assert runner.pid(name) is None  # the stale pid file is gone


def take_unrecorded(broker: redis.Redis, queue: str) -> list[dict]:
    """Pop the next message of a Celery queue as kombu's BRPOP does, without recording it; its envelopes (the
    relay sends a consumer's events of a round in one message)."""
    raw = broker.rpop(queue)
    assert raw, f"nothing left on the {queue} queue"
    message = json.loads(raw)
    args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    return args[0]


def test_credits_worker_killed_mid_processing_loses_and_doubles_nothing(fstack, hall):
    window = hall.open_window("故障演练：学分 worker 被杀")
    fstack.stop_process("worker-credits")
    try:
        result = burst(hall, window, 2)
        assert result.bad == [], result.bad[:5]
        assert len(result.acknowledged) == BURST
        # every event is on credits' queue in Redis, none consumed yet
        fstack.wait_until(lambda: pending_events(fstack) == 0, 60, what="the relay to send every event")
        assert copied_keys(fstack, window) == []
    finally:
        fstack.start_process("worker-credits")
    # kill it once it is well into the queue
    fstack.wait_until(lambda: len(copied_keys(fstack, window)) >= 15, 60, interval=0.05,
                      what="the credits worker to start consuming")
    kill_group(fstack, "worker-credits")
    broker = redis.Redis.from_url(fstack.stack.redis_url)
    try:
        at_kill = len(copied_keys(fstack, window))
        held = broker.hlen("unacked")  # what the dead worker had taken and not acknowledged (kombu's bookkeeping)
        queued = broker.llen("credits")
        # kombu pops a message (BRPOP) before it records it as unacknowledged: a kill between the two loses it
        # (seen in a clean-clone run). Make that happen for sure: the next message leaves the queue unrecorded.
        lost = take_unrecorded(broker, "credits")
        assert lost and all(e["name"] == "checkin.recorded" and e["payload"]["window_id"] == window
                            for e in lost), lost
        time.sleep(VISIBILITY_SECONDS / 2)
        while_dead = len(copied_keys(fstack, window))
        print(f"credits worker killed after {at_kill} of {BURST} copies, holding {held} unacknowledged "
              f"message(s), {queued} queued; one ({len(lost)} events) taken off the queue unrecorded; "
              f"{while_dead} copies while it was dead")
        assert at_kill < BURST, "the worker finished before it was killed: nothing was interrupted"
        assert while_dead == at_kill, "a copy was made while no credits worker ran"
    finally:  # the later tests need a credits worker whatever happened here
        fstack.start_process("worker-credits")
    # the new worker asks checkin to send again what was sent since its last processed events; the unrecorded
    # message comes back that way, the held ones through the visibility timeout
    assert_nothing_lost(fstack, window, result.acknowledged, timeout=60 + VISIBILITY_SECONDS)
    assert {e["payload"]["trainee_key"] for e in lost} <= set(copied_keys(fstack, window))
    # the copies sent again are skipped as they come: the queue drains, and nothing is left unacknowledged
    # 180 s: under the full suite's load the restored copies took longer than 90 s to be skipped (seen in CI)
    fstack.wait_until(lambda: broker.llen("credits") == 0 and broker.hlen("unacked") == 0, 180,
                      what="the credits queue drained and no message left unacknowledged")
    broker.close()
    log = fstack.log_path("worker-credits").read_text(errors="replace")
    print(f"worker-credits log: {log.count(' applied')} applied, {log.count(' skipped')} skipped")
    assert "asked checkin, projects to send again" in log
    assert "credits's worker started" in fstack.log_path("relay-checkin").read_text(errors="replace")


# ---- (c) PostgreSQL stopped and started in the middle of a burst ---------------------------------------

_HIDDEN = re.compile(r'name="(csrf_token|nonce)" value="([^"]*)"')


def test_postgres_restart_mid_burst_gives_retryable_answers(fstack, hall, pg):
    window = hall.open_window("故障演练：数据库重启")
    # one phone with the page form open (first scan) before the outage; it submits while the database is down
    form_phone = requests.Session()
    page = form_phone.get(scan_url(hall, window), timeout=30)
    assert page.status_code == 200 and 'name="id_number"' in page.text, page.text[:300]
    typed = {**person(3, 900), "mode": "form", **dict(_HIDDEN.findall(page.text))}
    assert typed.get("nonce"), "the form has no nonce"
    outage: dict[str, object] = {}

    def restart_postgres() -> None:
        began = time.monotonic()
        pg.stop(mode="fast")
        try:
            r = form_phone.post(f"{hall.base}/checkin/scan", data=typed, timeout=30)
            outage["form"] = r
            r_api = requests.get(f"{hall.base}/checkin/api/activities/{hall.activity_id}/checkins",
                                 headers=hall.auth, timeout=30)
            outage["api"] = r_api
            time.sleep(max(0.0, 4.0 - (time.monotonic() - began)))  # an outage of some seconds
        finally:
            pg.start()
        outage["seconds"] = time.monotonic() - began

    try:
        result = burst(hall, window, 3, fault=restart_postgres)
    finally:
        if not pg.running():
            pg.start()
    print(f"postgres down for {outage.get('seconds', 0):.1f}s")

    # the page form during the outage: 503, Retry-After, the Chinese sentence and everything typed kept
    r = outage["form"]
    assert isinstance(r, requests.Response)
    assert r.status_code == 503, (r.status_code, r.text[:500])
    assert r.headers.get("Retry-After", "").isdigit() and BUSY in r.text
    for key in ("name", "id_number", "mobile", "unit"):
        assert f'value="{typed[key]}"' in r.text, f"the form lost {key}"
    assert f'<option value="{typed["title"]}" selected>' in r.text
    assert f'name="nonce" value="{typed["nonce"]}"' in r.text
    # an API call during the outage: the JSON error shape, 503, retryable
    r_api = outage["api"]
    assert isinstance(r_api, requests.Response)
    assert r_api.status_code == 503 and r_api.headers.get("Retry-After", "").isdigit(), r_api.text[:300]
    assert r_api.json()["error"]["code"] == "unavailable" and BUSY in r_api.json()["error"]["message"]

    # the phones of the burst: never a 500, every 503 retryable, and each retry ended in 已签到
    statuses = result.statuses
    assert result.bad == [], result.bad[:5]
    assert 500 not in statuses and 502 not in statuses, statuses
    assert statuses[503] > 0, "no phone of the burst met the outage"
    assert len(result.acknowledged) == BURST
    # the kept form submitted again once the database is back: 已签到, stored once
    again = fstack.wait_until(lambda: (lambda x: x if x.status_code != 503 else None)(
        form_phone.post(f"{hall.base}/checkin/scan", data=typed, timeout=30)), 30, interval=1,
        what="the kept form to go through")
    assert again.status_code == 200 and "已签到" in again.text, again.text[:500]
    fstack.wait_healthy(60)
    acknowledged = result.acknowledged | {pii.id_hash(typed["id_number"])}
    assert_nothing_lost(fstack, window, acknowledged)
    print(f"answers during the burst: {dict(statuses)} ({statuses.get(503, 0)} retryable 503s)")


# ---- after the faults: 授分 by venue attendance, twice at once and once more -------------------------------

def test_grant_after_the_faults_awards_each_trainee_once(fstack, hall):
    """Every check-in that survived the faults counts once: an analysis over the drill's windows (at least one
    scan), 授分 twice at once (a double click) and once more: one award per trainee of the offering."""
    with fstack.engine("checkin").connect() as conn:
        windows = list(conn.execute(text(
            "SELECT DISTINCT window_id FROM checkins WHERE activity_id = :a"), {"a": hall.activity_id}).scalars())
        stored = set(conn.execute(text(
            "SELECT t.trainee_key FROM checkins c JOIN trainees t ON t.id = c.trainee_id WHERE c.activity_id = :a"),
            {"a": hall.activity_id}).scalars())
    with fstack.engine("credits").connect() as conn:
        last_day = conn.execute(text("SELECT ends_on FROM offering_credits WHERE offering_id = :o"),
                                {"o": hall.offering_id}).scalar_one()
    if not stored:
        pytest.skip("no check-ins to grant: run with the fault tests above")
    if ACKNOWLEDGED:  # what the phones were told, when the fault tests ran in this session
        assert set().union(*ACKNOWLEDGED.values()) <= stored
    api = f"{hall.base}/credits/api/offerings/{hall.offering_id}"
    r = hall.http.post(f"{api}/analyses", headers=hall.auth, json={
        "windows": [{"window_id": w} for w in windows], "rule_mode": "at_least", "rule_n": 1})
    assert r.status_code == 201, r.text

    def grant(_: int) -> requests.Response:
        with requests.Session() as s:
            return s.post(f"{api}/grant", headers=hall.auth, json={"activity_date": last_day.isoformat()},
                          timeout=60)

    with ThreadPoolExecutor(max_workers=2) as pool:
        first = list(pool.map(grant, range(2)))
    assert all(g.status_code == 200 for g in first), [g.text for g in first]
    again = grant(3)
    assert again.status_code == 200, again.text
    assert again.json()["added"] == 0 and again.json()["already"] == len(stored), again.json()
    assert duplicated_awards(fstack) == []
    with fstack.engine("credits").connect() as conn:
        awarded = list(conn.execute(text("SELECT trainee_key FROM credit_awards WHERE offering_id = :o"),
                                    {"o": hall.offering_id}).scalars())
    assert len(awarded) == len(set(awarded)) == len(stored) and set(awarded) == stored
    print(f"授分: {len(awarded)} awards for {len(stored)} trainees stored across {len(windows)} windows")
