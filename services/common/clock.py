"""The one clock every deadline reads (DESIGN §6).

Real UTC time plus an offset that configuration can move: CME_CLOCK_OFFSET_SECONDS at
start-up, and CME_CLOCK_FILE (a file holding a number of seconds) for a running suite,
so demos and tests never sleep or wait four weeks.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from zoneinfo import ZoneInfo

from .config import get_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = dt.UTC

_override: dt.datetime | None = None
_file_cache: tuple[float, int] = (-1.0, 0)


def _file_offset() -> int:
    global _file_cache
    path = get_settings().clock_file
    if path is None:
        return 0
    try:
        mtime = os.stat(path).st_mtime
    except FileNotFoundError:
        return 0
    if mtime != _file_cache[0]:
        try:
            value = int(float(path.read_text().strip() or 0))
        except (OSError, ValueError):
            value = 0
        _file_cache = (mtime, value)
    return _file_cache[1]


def now() -> dt.datetime:
    """Aware UTC now, as the suite sees it."""
    if _override is not None:
        return _override
    offset = get_settings().clock_offset_seconds + _file_offset()
    return dt.datetime.now(UTC) + dt.timedelta(seconds=offset)


def set_now(value: dt.datetime | None) -> None:
    """Freeze the clock in-process (tests)."""
    global _override
    _override = value.astimezone(UTC) if value is not None else None


@contextmanager
def travel(value: dt.datetime) -> Iterator[None]:
    """Run a block at another time (demo history written when it would have happened), then put back
    whatever the clock was: real, offset or frozen."""
    global _override
    before = _override
    set_now(value)
    try:
        yield
    finally:
        _override = before


def today_local() -> dt.date:
    return now().astimezone(SHANGHAI).date()


def to_local(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands naive datetimes back; they were stored as UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(SHANGHAI)


def local_midnight_utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), SHANGHAI).astimezone(UTC)


def fmt(value: dt.datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
    local = to_local(value)
    return local.strftime(pattern) if local else ""
