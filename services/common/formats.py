"""How every service writes a date, a credit value and an offering's 期次 in Chinese text (SMS, pages,
certificates)."""

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


CN_DIGITS = "零一二三四五六七八九"


def cn_number(n: int) -> str:
    """1 -> 一, 10 -> 十, 12 -> 十二, 21 -> 二十一; 100 and more stay in digits (期 numbers stay below 100)."""
    if n < 10:
        return CN_DIGITS[n]
    if n >= 100:
        return str(n)
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else CN_DIGITS[tens]) + "十" + (CN_DIGITS[ones] if ones else "")


def seq_label(seq: int) -> str:
    """1 -> 第一期, 12 -> 第十二期."""
    return f"第{cn_number(seq)}期"
