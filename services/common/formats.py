"""How every service writes a date and a credit value in Chinese text (SMS, pages, certificates)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal


def zh_date(day: dt.date) -> str:
    """2026-07-10 -> "2026年7月10日"."""
    return f"{day.year}年{day.month}月{day.day}日"


def fmt_credits(value: Decimal) -> str:
    """25.00 -> "25", 2.50 -> "2.5"."""
    text = format(Decimal(value).quantize(Decimal("0.01")), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
