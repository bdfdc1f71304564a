import datetime as dt
import logging

from services.common import clock, pii
from services.common.config import get_settings
from services.common.logs import ScrubFilter, scrub


def test_encrypt_round_trip_and_keyed_hash():
    token = pii.encrypt("13912345678")
    assert "13912345678" not in token
    assert pii.decrypt(token) == "13912345678"
    assert pii.mobile_hash("13912345678") == pii.mobile_hash(" 13912345678 ")
    assert pii.mobile_hash("13912345678") != pii.id_hash("13912345678")


def test_masks():
    assert pii.mask_mobile("13912345678") == "139****5678"
    assert pii.mask_id("610102199001011234") == "6101**********1234"
    assert pii.is_mainland_mobile("13912345678")
    assert not pii.is_mainland_mobile("12912345678")
    assert not pii.is_mainland_mobile("1391234567")


def test_log_lines_never_carry_id_numbers_or_mobiles(caplog):
    assert scrub("id 61010219900101123X mobile 13912345678") == "id 610102********123X mobile 139****5678"
    # a task's duration is a number, not an ID number or a mobile
    assert scrub("succeeded in 0.002501234567899601s") == "succeeded in 0.002501234567899601s"
    assert scrub("took 3.13912345678s") == "took 3.13912345678s"
    assert scrub("证件.610102199001011234") == "证件.610102********1234"
    logger = logging.getLogger("pii-test")
    caplog.handler.addFilter(ScrubFilter())
    logger.warning("sending to %s", "13912345678")
    assert "13912345678" not in caplog.text
    assert "139****5678" in caplog.text


def test_tracebacks_never_carry_id_numbers_or_mobiles(caplog):
    import io

    from services.common.logs import make_handler

    out = io.StringIO()
    logger = logging.getLogger("pii-traceback-test")
    logger.addHandler(make_handler("checkin", out))
    caplog.handler.addFilter(ScrubFilter())  # a handler with the filter and a plain formatter: the same
    try:
        raise ValueError("no trainee 610102198503120011, mobile 13912345678")
    except ValueError:
        logger.exception("bad id %s", "61010219850312001X")
    finally:
        logger.handlers.clear()
    for text in (out.getvalue(), caplog.text):
        assert "ValueError: no trainee 610102********0011, mobile 139****5678" in text
        assert "bad id 610102********001X" in text
        assert "198503120011" not in text and "13912345678" not in text


def test_celery_workers_and_beats_log_through_the_suites_setup():
    """A worker or beat sets its logging up through Celery (app.log.setup); the suite's scrubbing handler must be
    what it installs, as in the web apps and relays (in a child: it configures the process's root logger)."""
    import subprocess
    import sys

    probe = """
import logging, sys
from services.credits.worker import celery
celery.log.setup(loglevel="INFO")
from services.common.logs import ScrubFilter
root = logging.getLogger()
assert any(isinstance(f, ScrubFilter) for h in root.handlers for f in h.filters), root.handlers
try:
    raise RuntimeError("SMS to 13912345678 failed")
except RuntimeError:
    logging.getLogger("celery.app.trace").exception("Task credits.handle_events raised")
"""
    for argv in ([], ["beat"]):
        result = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        role = argv[0] if argv else "worker"
        assert f" {role}-credits ERROR [-] celery.app.trace: Task credits.handle_events raised" in result.stderr
        assert "RuntimeError: SMS to 139****5678 failed" in result.stderr
        assert "13912345678" not in result.stderr


def test_clock_can_be_moved():
    fixed = dt.datetime(2027, 3, 1, 16, 30, tzinfo=dt.UTC)
    clock.set_now(fixed)
    assert clock.now() == fixed
    assert clock.today_local() == dt.date(2027, 3, 2)  # 00:30 next day in Shanghai
    assert clock.fmt(fixed) == "2027-03-02 00:30"
    clock.set_now(None)
    # back to real time, moved by the offset a simulated run sets (CME_CLOCK_OFFSET_SECONDS, the clock file)
    offset = get_settings().clock_offset_seconds + clock._file_offset()
    assert abs((clock.now() - dt.datetime.now(dt.UTC)).total_seconds() - offset) < 5


def test_clock_file_moves_running_processes(tmp_path, monkeypatch):
    from services.common import config

    path = tmp_path / "clock"
    path.write_text(str(28 * 86400))
    monkeypatch.setenv("CME_CLOCK_FILE", str(path))
    config.get_settings.cache_clear()
    try:
        ahead = clock.now() - dt.datetime.now(dt.UTC) - dt.timedelta(seconds=config.get_settings().clock_offset_seconds)
        assert dt.timedelta(days=27, hours=23) < ahead < dt.timedelta(days=28, minutes=1)
    finally:
        monkeypatch.delenv("CME_CLOCK_FILE")
        config.get_settings.cache_clear()


def test_a_worker_of_one_queue_is_named_by_it_in_the_logs():
    """worker-certs and worker-certs-render both run services.certs.worker: the render worker's lines say
    worker-certs-render (its -Q), so a search by process name finds only its own."""
    from services.common.tasks import _queue_of

    assert _queue_of(["worker", "-Q", "certs-render", "-n", "certs-render@%h"]) == "certs-render"
    assert _queue_of(["worker", "--queues=certs-render"]) == "certs-render"
    assert _queue_of(["worker", "-Q", "certs,certs-render"]) is None  # several: the service's name
    assert _queue_of(["beat", "--loglevel", "INFO"]) is None
