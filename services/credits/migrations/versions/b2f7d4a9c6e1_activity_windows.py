"""activity_windows: credits' own copy of each 刷卡周期 it hears of, scanned in or not

考勤分析 built its windows from the check-in copies only, so a window nobody scanned in was not listed and 须在全部所选
刷卡周期内签到 meant "all windows someone scanned in". The table is filled by checkin.recorded and
checkin.window_changed; the windows of the copies already kept are written into it here.

Revision ID: b2f7d4a9c6e1
Revises: e4c9a7f1b3d8
Create Date: 2026-11-30 00:40:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from services.common.db import UTCDateTime

revision: str = 'b2f7d4a9c6e1'
down_revision: Union[str, Sequence[str], None] = 'e4c9a7f1b3d8'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'activity_windows',
        sa.Column('window_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('activity_id', sa.Integer(), nullable=False),
        sa.Column('offering_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('starts_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('ends_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=True),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_activity_windows_window_in_order')),
        sa.CheckConstraint("kind IN ('sign_in', 'sign_out')", name=op.f('ck_activity_windows_window_kind_known')),
        sa.PrimaryKeyConstraint('window_id', name=op.f('pk_activity_windows')),
    )
    with op.batch_alter_table('activity_windows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_windows_offering_id'), ['offering_id'], unique=False)
    # the windows of the check-ins kept so far (every copy of a window carries the same window: window_changed
    # updates them all; max() skips the copies without a title)
    op.execute(
        "INSERT INTO activity_windows (window_id, activity_id, offering_id, kind, starts_at, ends_at, title, "
        "updated_at) SELECT window_id, MIN(activity_id), MIN(offering_id), MAX(window_kind), MIN(window_starts_at), "
        "MAX(window_ends_at), MAX(window_title), MAX(received_at) FROM attendance_records GROUP BY window_id")


def downgrade() -> None:
    with op.batch_alter_table('activity_windows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_windows_offering_id'))
    op.drop_table('activity_windows')
