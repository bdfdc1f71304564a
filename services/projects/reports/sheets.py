"""已逾期未提交 as an Excel file: the committee's list for chasing the hosts (called, ticked off, sent on)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from services.common.sheets import text_row

from . import states

TITLE = "已逾期未提交执行情况反馈"
COLUMNS = ("申办机构", "项目编号", "项目名称", "期次", "开始日期", "结束日期", "应提交日期", "逾期天数", "反馈状态")


def overdue_xlsx(rows: list[dict[str, Any]], today: dt.date, narrowed: str = "") -> bytes:
    """The rows as the page lists them (longest overdue first); `narrowed` says the filters, when any."""
    from openpyxl import Workbook  # late: only this download pays for it

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(TITLE)
    for column, width in zip("ABCDEFGHI", (36, 18, 40, 8, 12, 12, 12, 10, 10), strict=True):
        ws.column_dimensions[column].width = width
    ws.freeze_panes = "A3"
    ws.append([f"{TITLE}（截至 {today.isoformat()}，共 {len(rows)} 期；项目结束 14 天后仍未提交）{narrowed}"])
    ws.append(list(COLUMNS))
    for d in rows:
        state = states.LABELS[d["report_state"]] if d["report_state"] else "未新建"
        ws.append(text_row(ws, [d["institution_name"], d["project_number"], d["project_title"], d["seq_label"],
                                d["starts_on"].isoformat() if d["starts_on"] else "", d["ends_on"].isoformat(),
                                d["due_on"].isoformat(), (today - d["due_on"]).days, state]))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
