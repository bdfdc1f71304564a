"""Reading an uploaded .xlsx (the catalogue and the institutions imports): the whole first sheet is read before
any row is judged, so a damaged file (a cut-off download, a sheet that is not XML) is one clear refusal and
never a half-done import or a 500."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import IO, Any

from services.common.errors import AppError


def _blank(values: tuple[Any, ...]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in values)


def sheet_rows(data: bytes | IO[bytes], refuse: Callable[[], AppError], max_rows: int,
               too_many: Callable[[], AppError]) -> tuple[tuple[Any, ...], list[tuple[int, tuple[Any, ...]]]]:
    """The first sheet's header row and its non-blank rows below, each with its Excel row number; `refuse()` is
    raised for a file that is not a readable workbook, `too_many()` past `max_rows` non-blank rows."""
    from openpyxl import load_workbook  # late: a service that never imports pays nothing at start-up

    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        wb = load_workbook(stream, read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - zip, XML or format errors all mean "not a workbook"
        raise refuse() from None
    try:
        rows = wb.worksheets[0].iter_rows(values_only=True)
        header = next(rows, None) or ()
        out: list[tuple[int, tuple[Any, ...]]] = []
        for excel_row, values in enumerate(rows, start=2):
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
