"""Reading an uploaded .xlsx (the catalogue and the institutions imports): the whole sheet is read before any row
is judged, so a damaged file (a cut-off download, a sheet that is not XML) is one clear refusal and never a
half-done import or a 500.

The header row is looked for, not assumed: a clerk's workbook often has a title row above it ("2027年省级继续
医学教育项目目录"), or an instructions sheet before the data; header cells broken over two lines are read whole.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable
from typing import IO, Any

from services.common.errors import AppError
from services.common.inputs import folded

HEADER_SEARCH_ROWS = 10  # how far down a sheet its header row may be


def _blank(values: tuple[Any, ...]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in values)


def header_text(value: Any) -> str:
    """A header cell as compared with a column's label: full-width folded, every space and line break gone, and a
    unit or hint in brackets after the label dropped (学分（分）, 举办方式(线下/线上))."""
    if value is None:
        return ""
    return re.sub(r"(?<=.)[(\[][^()\[\]]*[)\]]$", "", folded(str(value)))


def _find_header(wb: Any, labels: set[str]) -> tuple[Any, int]:
    """The sheet and the (1-based) row holding most of `labels` among each sheet's first rows, the earliest of
    equals; the first sheet's first row when no row holds any."""
    best: tuple[int, Any, int] = (0, wb.worksheets[0], 1)
    for sheet in wb.worksheets:
        for number, values in enumerate(sheet.iter_rows(max_row=HEADER_SEARCH_ROWS, values_only=True), start=1):
            score = len(labels & {header_text(v) for v in values})
            if score > best[0]:
                best = (score, sheet, number)
            if score == len(labels):
                return sheet, number
    return best[1], best[2]


def sheet_rows(data: bytes | IO[bytes], refuse: Callable[[], AppError], max_rows: int,
               too_many: Callable[[], AppError], labels: Iterable[str] = ()) -> tuple[tuple[Any, ...],
                                                                                     list[tuple[int, tuple[Any, ...]]]]:
    """The header row and the non-blank rows below it, each with its Excel row number; `refuse()` is raised for a
    file that is not a readable workbook, `too_many()` past `max_rows` non-blank rows. The header row is the one
    of any sheet's first rows holding most of the column `labels` (without labels: the first sheet's first)."""
    from openpyxl import load_workbook  # late: a service that never imports pays nothing at start-up

    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        wb = load_workbook(stream, read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - zip, XML or format errors all mean "not a workbook"
        raise refuse() from None
    try:
        wanted = {header_text(label) for label in labels}
        sheet, header_number = _find_header(wb, wanted) if wanted else (wb.worksheets[0], 1)
        rows = sheet.iter_rows(min_row=header_number, values_only=True)
        header = next(rows, None) or ()
        out: list[tuple[int, tuple[Any, ...]]] = []
        for excel_row, values in enumerate(rows, start=header_number + 1):
            if _blank(values):
                continue
            out.append((excel_row, values))
            if len(out) > max_rows:
                raise too_many()
        return header, out
    except AppError:
        raise
    except Exception:  # noqa: BLE001 - a read-only sheet is parsed while iterating: a damaged one fails here
        raise refuse() from None
    finally:
        wb.close()
