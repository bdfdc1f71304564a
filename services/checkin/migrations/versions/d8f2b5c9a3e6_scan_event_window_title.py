"""The scan function's checkin.recorded carries its window's 标题 (window_title)

credits' 考勤分析 named each 刷卡周期 by its times and kind only: the title the office gave it never left checkin.
The function reads the title with the window it already looks up (no statement of its own). Its arguments and
result are unchanged; install() drops it and makes it again from the text in services/checkin/scans/sql.py.

Revision ID: d8f2b5c9a3e6
Revises: b6e4a2d8c0f7
Create Date: 2026-11-29 22:20:00

"""
from typing import Sequence, Union

from alembic import op

from services.checkin.scans.sql import install

revision: str = 'd8f2b5c9a3e6'
down_revision: Union[str, Sequence[str], None] = 'b6e4a2d8c0f7'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    install(op.get_bind())  # the functions as written now (PostgreSQL only)


def downgrade() -> None:
    # nothing to undo: the field is optional in checkin.recorded, so the consumer takes the envelope either way
    pass
