"""Excel exports: what people typed stays text.

openpyxl stores any string beginning with "=" as a formula, so a 单位 typed as =HYPERLINK("http://…") on a
phone would become a live link (or a DDE call) in the office's exported file. Such strings are written as
text cells instead: the file shows exactly what was typed and computes nothing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openpyxl.cell import WriteOnlyCell


def text_row(ws: Any, values: Iterable[Any]) -> list[Any]:
    """The row for ws.append(), every string that would be read as a formula made a text cell."""
    out: list[Any] = []
    for value in values:
        if isinstance(value, str) and value.startswith("="):
            cell = WriteOnlyCell(ws, value=value)
            cell.data_type = "s"  # after the value: assigning it sets "f" for a leading "="
            out.append(cell)
        else:
            out.append(value)
    return out


__all__ = ["text_row"]
