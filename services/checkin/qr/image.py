"""QR images of the projector page, made with segno and cached per (activity, window, slot).

Every viewer of a projector page in the same slot gets the same object from an in-process,
size-bounded cache, so the CPU is spent once per code and worker process, not once per viewer.
segno spends most of its time choosing the best of eight masks; a fixed mask, a fixed error
level and a fixed version (enough for a check-in URL) make one code take about 2 ms, and the
image keeps one size from code to code so the projector picture does not jump.
"""

from __future__ import annotations

import io
from functools import lru_cache

import segno
from segno import DataOverflowError

__all__ = ["qr_code", "qr_svg", "qr_png", "cache_clear", "ERROR_LEVEL", "VERSION", "MASK", "CACHE_SIZE"]

ERROR_LEVEL = "m"  # 15 % recovery: enough for a projector's glare, small enough for a URL
VERSION = 6  # 41 x 41 modules; holds a URL of up to 106 bytes at level M
MASK = 0  # fixed: skips segno's mask evaluation, the costly part
CACHE_SIZE = 256  # codes kept per process: many activities x windows x the current and previous slot
BORDER = 4  # the quiet zone the QR standard asks for


def _make(url: str) -> segno.QRCode:
    try:
        return segno.make_qr(url, error=ERROR_LEVEL, version=VERSION, mask=MASK, boost_error=False)
    except DataOverflowError:  # an unusually long base URL: let segno pick a larger version
        return segno.make_qr(url, error=ERROR_LEVEL, mask=MASK, boost_error=False)


@lru_cache(maxsize=CACHE_SIZE)
def qr_code(activity_id: int, window_id: int, slot: int, url: str) -> segno.QRCode:
    """The segno code for the URL of one (activity, window, slot)."""
    if not url:
        raise ValueError("a QR code needs a URL")
    return _make(url)


@lru_cache(maxsize=CACHE_SIZE)
def qr_svg(activity_id: int, window_id: int, slot: int, url: str, scale: int = 8) -> str:
    """SVG markup (no XML declaration, no fixed size: only a viewBox, so CSS sizes it on the page)."""
    out = io.BytesIO()
    qr_code(activity_id, window_id, slot, url).save(
        out, kind="svg", scale=scale, border=BORDER, xmldecl=False, omitsize=True,
        title="签到二维码", desc=None, nl=False)
    return out.getvalue().decode("utf-8")


@lru_cache(maxsize=CACHE_SIZE)
def qr_png(activity_id: int, window_id: int, slot: int, url: str, scale: int = 8) -> bytes:
    """PNG bytes of the code (black on white)."""
    out = io.BytesIO()
    qr_code(activity_id, window_id, slot, url).save(out, kind="png", scale=scale, border=BORDER)
    return out.getvalue()


def cache_clear() -> None:
    for fn in (qr_code, qr_svg, qr_png):
        fn.cache_clear()
