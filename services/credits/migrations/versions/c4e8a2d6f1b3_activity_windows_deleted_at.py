"""activity_windows.deleted_at: a 刷卡周期 deleted in checkin (checkin.window_deleted) is kept as a mark

考勤分析 no longer lists it; the mark stays so that a checkin.window_changed arriving after the delete (or the
window's creation arriving late) never brings it back: window ids are never used again in checkin.

Revision ID: c4e8a2d6f1b3
Revises: b2f7d4a9c6e1
Create Date: 2026-11-30 01:00:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from services.common.db import UTCDateTime

revision: str = 'c4e8a2d6f1b3'
down_revision: Union[str, Sequence[str], None] = 'b2f7d4a9c6e1'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('activity_windows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deleted_at', UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('activity_windows', schema=None) as batch_op:
        batch_op.drop_column('deleted_at')
