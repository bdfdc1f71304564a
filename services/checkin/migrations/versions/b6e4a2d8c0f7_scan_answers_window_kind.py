"""The scan function answers with its window's kind (r_kind), so a 签退 window's scan says 已签退

The phone's JSON API answered 已签到 for every window; the kind is read with the window the function already
looks up, so the answer needs no look-up of its own. An added OUT column changes the function's result type:
install() drops it and makes it again from the text in services/checkin/scans/sql.py.

Revision ID: b6e4a2d8c0f7
Revises: f3b8d2a6c1e9
Create Date: 2026-11-29 21:50:00

"""
from typing import Sequence, Union

from alembic import op

from services.checkin.scans.sql import install

revision: str = 'b6e4a2d8c0f7'
down_revision: Union[str, Sequence[str], None] = 'f3b8d2a6c1e9'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    install(op.get_bind())  # the functions as written now (PostgreSQL only)


def downgrade() -> None:
    # nothing to undo: the code before this revision selects the function's columns by name and reads no r_kind
    pass
