"""Rotating QR tokens: computed, not stored; judged against the suite's clock (no sleeps)."""

from __future__ import annotations

import base64
import datetime as dt
import re

import pytest

from services.checkin.qr import tokens
from services.checkin.qr.tokens import QRConfig, QRConfigError
from services.common import clock
from services.common.config import get_settings

T0 = dt.datetime(2026, 5, 12, 8, 30, 0, tzinfo=dt.UTC)  # a slot boundary for 60 s and 600 s slots
CFG = QRConfig()  # 60 s slots, 10 s grace


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def _frozen():
    clock.set_now(at(5))
    yield
    clock.set_now(None)


def test_defaults_and_slot_arithmetic():
    assert (CFG.slot_seconds, CFG.grace_seconds) == (60, 10)
    slot = tokens.slot_at(config=CFG)
    assert slot == int(T0.timestamp()) // 60
    assert tokens.slot_start(slot, CFG) == T0
    assert tokens.slot_end(slot, CFG) == at(60)
    clock.set_now(at(59.999))
    assert tokens.slot_at(config=CFG) == slot
    clock.set_now(at(60))
    assert tokens.slot_at(config=CFG) == slot + 1


def test_token_is_short_url_safe_and_deterministic():
    token, slot = tokens.current_token(12, 345, config=CFG)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert len(token) <= 32
    assert token == tokens.make_token(12, 345, slot, CFG)
    assert tokens.read_token(token, CFG) == (12, 345, slot)
    # another slot, activity or window gives another token
    assert len({token, tokens.make_token(12, 345, slot + 1, CFG), tokens.make_token(13, 345, slot, CFG),
                tokens.make_token(12, 346, slot, CFG)}) == 4


def test_current_token_is_ok():
    token, _ = tokens.current_token(1, 2, config=CFG)
    result = tokens.verify(token, 1, 2, config=CFG)
    assert result.ok and bool(result) and result.reason == tokens.OK and not result.in_grace
    assert (result.activity_id, result.window_id, result.issued_at) == (1, 2, T0)
    assert result.message == tokens.REASONS[tokens.OK]


def test_previous_code_is_accepted_within_grace_only():
    token, _ = tokens.current_token(1, 2, config=CFG)  # slot starting at T0
    clock.set_now(at(60 + 10))  # 10 s after the change: still accepted
    result = tokens.verify(token, 1, 2, config=CFG)
    assert result.ok and result.in_grace
    clock.set_now(at(60 + 10.001))
    result = tokens.verify(token, 1, 2, config=CFG)
    assert not result.ok and result.reason == tokens.EXPIRED
    assert "过期" in result.message


def test_older_code_is_expired_even_at_the_start_of_a_slot():
    token, _ = tokens.current_token(1, 2, config=CFG)
    clock.set_now(at(120 + 1))  # two slots later, within the "grace" of the newer change
    assert tokens.verify(token, 1, 2, config=CFG).reason == tokens.EXPIRED
    clock.set_now(at(86400))
    assert tokens.verify(token, 1, 2, config=CFG).reason == tokens.EXPIRED


def test_future_code_refused_beyond_a_little_clock_skew():
    slot = tokens.slot_at(config=CFG)
    nxt = tokens.make_token(1, 2, slot + 1, CFG)
    clock.set_now(at(58))  # 2 s before the change: a worker slightly ahead may already show it
    assert tokens.verify(nxt, 1, 2, config=CFG).ok
    clock.set_now(at(30))
    result = tokens.verify(nxt, 1, 2, config=CFG)
    assert not result.ok and result.reason == tokens.FUTURE
    far = tokens.make_token(1, 2, slot + 5, CFG)
    clock.set_now(at(59))
    assert tokens.verify(far, 1, 2, config=CFG).reason == tokens.FUTURE


def test_other_activity_and_other_window_have_their_own_reasons():
    token, _ = tokens.current_token(1, 2, config=CFG)
    assert tokens.verify(token, 9, 2, config=CFG).reason == tokens.WRONG_ACTIVITY
    assert tokens.verify(token, 1, 9, config=CFG).reason == tokens.WRONG_WINDOW
    # activity is judged before window, and both before time
    clock.set_now(at(3600))
    assert tokens.verify(token, 9, 9, config=CFG).reason == tokens.WRONG_ACTIVITY


def _flip(token: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_forged_tokens():
    token, slot = tokens.current_token(1, 2, config=CFG)
    # a changed MAC byte, and a changed activity / slot under the old MAC
    for index in (-1, -10, 1, 3):
        forged = _flip(token, index)
        result = tokens.verify(forged, 1, 2, config=CFG)
        assert not result.ok
        assert result.reason in (tokens.FORGED, tokens.MALFORMED)
    assert tokens.verify(_flip(token, -1), 1, 2, config=CFG).reason == tokens.FORGED
    assert tokens.read_token(_flip(token, -1), CFG) is None
    # forged results reveal nothing of what the token claims
    assert tokens.verify(_flip(token, -1), 1, 2, config=CFG).activity_id is None


def test_token_made_under_another_secret_is_forged(monkeypatch):
    token, _ = tokens.current_token(1, 2, config=CFG)
    monkeypatch.setenv("CME_SECRET_KEY", "another-secret")
    get_settings.cache_clear()
    try:
        assert tokens.verify(token, 1, 2, config=CFG).reason == tokens.FORGED
        other, _ = tokens.current_token(1, 2, config=CFG)
        assert other != token
    finally:
        monkeypatch.delenv("CME_SECRET_KEY")
        get_settings.cache_clear()
    assert tokens.verify(token, 1, 2, config=CFG).ok


def test_token_made_under_another_slot_length_is_refused():
    token, _ = tokens.current_token(1, 2, config=QRConfig(slot_seconds=300))
    assert tokens.verify(token, 1, 2, config=CFG).reason == tokens.FORGED


@pytest.mark.parametrize("bad", [
    "", "abc", "!" * 24, "a" * 200, "AQID", "测试测试测试测试测试", "AQwiBMPeBwE6xXk2m0aQyL1kZQ=",
    "AQwiBMPeBwE6xXk2m0aQyL1kZ+", None, 12345,
])
def test_malformed_tokens(bad):
    result = tokens.verify(bad, 1, 2, config=CFG)  # type: ignore[arg-type]
    assert not result.ok and result.reason == tokens.MALFORMED
    assert tokens.read_token(bad, CFG) is None  # type: ignore[arg-type]


def test_wrong_version_byte_is_malformed():
    token, _ = tokens.current_token(1, 2, config=CFG)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[0] = 2
    bad = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert tokens.verify(bad, 1, 2, config=CFG).reason == tokens.MALFORMED


def test_large_ids_round_trip():
    token = tokens.make_token(2**40, 2**31 + 7, 2**33, CFG)
    assert tokens.read_token(token, CFG) == (2**40, 2**31 + 7, 2**33)
    with pytest.raises(ValueError):
        tokens.make_token(0, 1, 1, CFG)
    with pytest.raises(ValueError):
        tokens.make_token(1, -1, 1, CFG)


def test_seconds_until_next_code():
    assert tokens.seconds_until_next(config=CFG) == pytest.approx(55)
    clock.set_now(at(59.5))
    assert tokens.seconds_until_next(config=CFG) == pytest.approx(0.5)
    clock.set_now(at(60))  # just changed: a whole slot to go
    assert tokens.seconds_until_next(config=CFG) == pytest.approx(60)
    assert tokens.seconds_until_next(at(0), QRConfig(slot_seconds=600)) == pytest.approx(600)


def test_config_from_env_and_limits():
    assert QRConfig.from_env({}) == QRConfig(60, 10)
    assert QRConfig.from_env({"CME_QR_SLOT_SECONDS": "600", "CME_QR_GRACE_SECONDS": "0"}) == QRConfig(600, 0)
    assert QRConfig.from_env({"CME_QR_SLOT_SECONDS": " ", "CME_QR_GRACE_SECONDS": ""}) == QRConfig(60, 10)
    for bad in ({"CME_QR_SLOT_SECONDS": "601"}, {"CME_QR_SLOT_SECONDS": "3600"}, {"CME_QR_SLOT_SECONDS": "0"},
                {"CME_QR_SLOT_SECONDS": "1m"}, {"CME_QR_SLOT_SECONDS": "30", "CME_QR_GRACE_SECONDS": "30"},
                {"CME_QR_GRACE_SECONDS": "-1"}):
        with pytest.raises(QRConfigError):
            QRConfig.from_env(bad)


def test_configured_slot_length_is_used(monkeypatch):
    monkeypatch.setenv("CME_QR_SLOT_SECONDS", "120")
    monkeypatch.setenv("CME_QR_GRACE_SECONDS", "15")
    tokens.get_qr_config.cache_clear()
    try:
        assert tokens.get_qr_config() == QRConfig(120, 15)
        token, slot = tokens.current_token(1, 2)
        assert slot == int(T0.timestamp()) // 120
        clock.set_now(at(120 + 15))
        assert tokens.verify(token, 1, 2).ok
        clock.set_now(at(120 + 16))
        assert tokens.verify(token, 1, 2).reason == tokens.EXPIRED
        monkeypatch.setenv("CME_QR_SLOT_SECONDS", "900")
        tokens.get_qr_config.cache_clear()
        with pytest.raises(QRConfigError, match="10 minutes"):
            tokens.get_qr_config()
    finally:
        tokens.get_qr_config.cache_clear()


def test_every_reason_has_a_chinese_sentence():
    reasons = {tokens.OK, tokens.WRONG_ACTIVITY, tokens.WRONG_WINDOW, tokens.EXPIRED, tokens.FUTURE,
               tokens.FORGED, tokens.MALFORMED}
    assert set(tokens.REASONS) == reasons
    assert all(re.search(r"[\u4e00-\u9fff]", msg) for msg in tokens.REASONS.values())
