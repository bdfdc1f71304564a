"""Rotating QR tokens for 微信二维码考勤 (DESIGN §4).

A token names (activity, check-in window, time slot) and carries a truncated HMAC-SHA256 of
them under a key derived from the server secret. Nothing per code is stored: a token is
recomputed and checked against ``services.common.clock.now()``.

    slot = floor(epoch seconds / slot_seconds)

Settings (read once, refused at start-up when out of range):

- ``CME_QR_SLOT_SECONDS``: slot length, default 60, at least 5, at most 600 (10 minutes);
- ``CME_QR_GRACE_SECONDS``: how long after a change the previous code is still accepted,
  default 10, at least 0 and less than the slot length.

Token layout (URL-safe base64 without padding, about 23 characters):
``version byte | uvarint activity | uvarint window | uvarint slot | 10-byte MAC``. The MAC covers
the version, the three numbers and the slot length, so a token made under another slot length
is refused like a forged one.

Only the freshness of the *scanned code* is judged here. The check-in flow is expected to call
:func:`verify` when the phone first opens the URL (before WeChat login) and then to give the
trainee a bounded time of its own to finish the form.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from services.common import clock
from services.common.config import get_settings

__all__ = [
    "QRConfig", "QRConfigError", "VerifyResult", "get_qr_config",
    "slot_at", "slot_start", "slot_end", "make_token", "current_token", "read_token", "verify",
    "seconds_until_next", "REASONS", "OK", "WRONG_ACTIVITY", "WRONG_WINDOW", "EXPIRED", "FUTURE",
    "FORGED", "MALFORMED",
]

# ---------------------------------------------------------------- configuration

DEFAULT_SLOT_SECONDS = 60
MIN_SLOT_SECONDS = 5
MAX_SLOT_SECONDS = 600  # the guide: the code changes at least every 10 minutes
DEFAULT_GRACE_SECONDS = 10
# Tolerated clock difference between web workers: a code made by a worker whose clock is a
# little ahead is not refused as "future" by one a little behind.
FUTURE_SKEW_SECONDS = 2


class QRConfigError(RuntimeError):
    """A QR setting is out of range; raised at start-up so a bad value is never served."""


@dataclass(frozen=True)
class QRConfig:
    slot_seconds: int = DEFAULT_SLOT_SECONDS
    grace_seconds: int = DEFAULT_GRACE_SECONDS

    def __post_init__(self) -> None:
        if not MIN_SLOT_SECONDS <= self.slot_seconds <= MAX_SLOT_SECONDS:
            raise QRConfigError(
                f"CME_QR_SLOT_SECONDS must be between {MIN_SLOT_SECONDS} and {MAX_SLOT_SECONDS} "
                f"(the QR code must change at least every 10 minutes), got {self.slot_seconds}")
        if not 0 <= self.grace_seconds < self.slot_seconds:
            raise QRConfigError(
                f"CME_QR_GRACE_SECONDS must be at least 0 and less than the slot length "
                f"({self.slot_seconds}), got {self.grace_seconds}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> QRConfig:
        environ = os.environ if environ is None else environ
        return cls(slot_seconds=_int_setting(environ, "CME_QR_SLOT_SECONDS", DEFAULT_SLOT_SECONDS),
                   grace_seconds=_int_setting(environ, "CME_QR_GRACE_SECONDS", DEFAULT_GRACE_SECONDS))


def _int_setting(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise QRConfigError(f"{name} must be a whole number of seconds, got {raw!r}") from None


@lru_cache(maxsize=1)
def get_qr_config() -> QRConfig:
    """The configured slot length and grace; call it in the app factory so a bad value stops start-up."""
    return QRConfig.from_env()


def _config(config: QRConfig | None) -> QRConfig:
    return config if config is not None else get_qr_config()


# ---------------------------------------------------------------- slots

def _epoch(at: datetime | None) -> float:
    return (at if at is not None else clock.now()).timestamp()


def slot_at(at: datetime | None = None, config: QRConfig | None = None) -> int:
    """The slot index at ``at`` (default: the suite's clock)."""
    return math.floor(_epoch(at) / _config(config).slot_seconds)


def slot_start(slot: int, config: QRConfig | None = None) -> datetime:
    return datetime.fromtimestamp(slot * _config(config).slot_seconds, clock.UTC)


def slot_end(slot: int, config: QRConfig | None = None) -> datetime:
    """The first instant of the next slot."""
    return slot_start(slot, config) + timedelta(seconds=_config(config).slot_seconds)


def seconds_until_next(at: datetime | None = None, config: QRConfig | None = None) -> float:
    """Seconds until the next code appears (for the projector's countdown); in (0, slot_seconds]."""
    cfg = _config(config)
    epoch = _epoch(at)
    return (math.floor(epoch / cfg.slot_seconds) + 1) * cfg.slot_seconds - epoch


# ---------------------------------------------------------------- tokens

_VERSION = 1
_MAC_BYTES = 10  # 80 bits: far beyond guessing within one slot
_PURPOSE = b"cme.checkin.qr-token.v1"
_MAX_ID = 2**63 - 1


def _key() -> bytes:
    """A key for this purpose only, derived from the server secret."""
    return hmac.new(get_settings().secret_key.encode("utf-8"), _PURPOSE, hashlib.sha256).digest()


def _mac(activity_id: int, window_id: int, slot: int, slot_seconds: int) -> bytes:
    msg = f"{_VERSION}|{activity_id}|{window_id}|{slot}|{slot_seconds}".encode("ascii")
    return hmac.new(_key(), msg, hashlib.sha256).digest()[:_MAC_BYTES]


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated or oversized number")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _check_id(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_ID:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def make_token(activity_id: int, window_id: int, slot: int, config: QRConfig | None = None) -> str:
    """The token of one (activity, window, slot)."""
    _check_id("activity_id", activity_id)
    _check_id("window_id", window_id)
    if isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot <= _MAX_ID:
        raise ValueError(f"slot must be a non-negative integer, got {slot!r}")
    cfg = _config(config)
    raw = bytes([_VERSION]) + _uvarint(activity_id) + _uvarint(window_id) + _uvarint(slot)
    raw += _mac(activity_id, window_id, slot, cfg.slot_seconds)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def current_token(activity_id: int, window_id: int, at: datetime | None = None,
                  config: QRConfig | None = None) -> tuple[str, int]:
    """(token, slot) for the code shown now (or at ``at``)."""
    cfg = _config(config)
    slot = slot_at(at, cfg)
    return make_token(activity_id, window_id, slot, cfg), slot


@dataclass(frozen=True)
class _Claim:
    activity_id: int
    window_id: int
    slot: int
    mac: bytes


def _parse(token: str) -> _Claim | None:
    """Split a token into its parts, or None when it is not a well-formed token."""
    if not isinstance(token, str) or not 8 <= len(token) <= 64:
        return None
    try:
        ascii_token = token.encode("ascii")
        raw = base64.b64decode(ascii_token + b"=" * (-len(ascii_token) % 4), altchars=b"-_", validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return None
    if len(raw) < 1 + 3 + _MAC_BYTES or raw[0] != _VERSION:
        return None
    body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    try:
        activity_id, pos = _read_uvarint(body, 1)
        window_id, pos = _read_uvarint(body, pos)
        slot, pos = _read_uvarint(body, pos)
    except ValueError:
        return None
    if pos != len(body) or activity_id == 0 or window_id == 0:
        return None
    # one spelling per token: no padded numbers, no non-canonical base64 tail bits
    canonical = bytes([_VERSION]) + _uvarint(activity_id) + _uvarint(window_id) + _uvarint(slot)
    if canonical != body or base64.urlsafe_b64encode(raw).rstrip(b"=") != ascii_token:
        return None
    return _Claim(activity_id, window_id, slot, mac)


def read_token(token: str, config: QRConfig | None = None) -> tuple[int, int, int] | None:
    """(activity_id, window_id, slot) of an authentic token, whatever its time; None otherwise.

    For a URL that carries only the token: the view learns which activity and window it names,
    then calls :func:`verify` with them to judge the time.
    """
    claim = _parse(token)
    if claim is None:
        return None
    expected = _mac(claim.activity_id, claim.window_id, claim.slot, _config(config).slot_seconds)
    if not hmac.compare_digest(expected, claim.mac):
        return None
    return claim.activity_id, claim.window_id, claim.slot


# ---------------------------------------------------------------- verification

OK = "ok"
WRONG_ACTIVITY = "wrong_activity"
WRONG_WINDOW = "wrong_window"
EXPIRED = "expired"
FUTURE = "future"
FORGED = "forged"
MALFORMED = "malformed"

# reason code -> the sentence a trainee reads
REASONS = {
    OK: "二维码有效。",
    WRONG_ACTIVITY: "此二维码不属于本次活动，请扫描会场投影上的二维码。",
    WRONG_WINDOW: "此二维码不属于当前签到时段，请扫描会场投影上的最新二维码。",
    EXPIRED: "二维码已过期，请扫描会场投影上的最新二维码。",
    FUTURE: "二维码尚未生效，请稍后重新扫描会场投影上的二维码。",
    FORGED: "二维码无效，请扫描会场投影上的二维码。",
    MALFORMED: "二维码内容不完整或无法识别，请重新扫描会场投影上的二维码。",
}


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    reason: str  # one of the keys of REASONS
    activity_id: int | None = None  # as claimed by an authentic token
    window_id: int | None = None
    slot: int | None = None
    issued_at: datetime | None = None  # start of the token's slot
    in_grace: bool = False  # accepted as the code that just changed

    @property
    def message(self) -> str:
        return REASONS[self.reason]

    def __bool__(self) -> bool:
        return self.ok


def verify(token: str, activity_id: int, window_id: int, at: datetime | None = None,
           config: QRConfig | None = None) -> VerifyResult:
    """Judge a scanned token against the activity and window it is used for, at ``at`` (default now).

    Order: malformed -> forged (MAC) -> wrong_activity -> wrong_window -> expired/future -> ok.
    The previous slot is accepted for ``grace_seconds`` after the change; the next slot for a
    couple of seconds of clock difference between workers.
    """
    cfg = _config(config)
    claim = _parse(token)
    if claim is None:
        return VerifyResult(False, MALFORMED)
    expected = _mac(claim.activity_id, claim.window_id, claim.slot, cfg.slot_seconds)
    if not hmac.compare_digest(expected, claim.mac):
        return VerifyResult(False, FORGED)
    info = {"activity_id": claim.activity_id, "window_id": claim.window_id, "slot": claim.slot,
            "issued_at": slot_start(claim.slot, cfg)}
    if claim.activity_id != activity_id:
        return VerifyResult(False, WRONG_ACTIVITY, **info)
    if claim.window_id != window_id:
        return VerifyResult(False, WRONG_WINDOW, **info)
    epoch = _epoch(at)
    current = math.floor(epoch / cfg.slot_seconds)
    if claim.slot == current:
        return VerifyResult(True, OK, **info)
    if claim.slot == current - 1 and epoch - current * cfg.slot_seconds <= cfg.grace_seconds:
        return VerifyResult(True, OK, in_grace=True, **info)
    if claim.slot < current:
        return VerifyResult(False, EXPIRED, **info)
    if claim.slot == current + 1 and (current + 1) * cfg.slot_seconds - epoch <= FUTURE_SKEW_SECONDS:
        return VerifyResult(True, OK, **info)
    return VerifyResult(False, FUTURE, **info)
