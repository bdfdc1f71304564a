"""attendance_records.window_title: the 刷卡周期's 标题 as checkin names it

考勤分析 and the 授分 pages named each window by its times and kind only; checkin.recorded and
checkin.window_changed now carry the title the office gave it. Nullable: copies made from events written before
it travelled have none, and are named by their times as before until the window is next edited.

Revision ID: e4c9a7f1b3d8
Revises: c7e1a9d3f5b2
Create Date: 2026-11-29 22:25:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = 'e4c9a7f1b3d8'
down_revision: Union[str, Sequence[str], None] = 'c7e1a9d3f5b2'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('attendance_records', sa.Column('window_title', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('attendance_records', schema=None) as batch_op:
        batch_op.drop_column('window_title')
