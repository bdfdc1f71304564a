"""offering_credits keeps an offering.cancelled (取消举办 / 标记未举办); cancelled_offerings notes one that came first

An approved 期 that is not (or was not) held takes no more 授分 or 手工录入学分, its pending awards never take
effect, and 年度统计 counts it apart. The columns are set together or not at all. A cancellation whose offering
credits does not hold yet is noted in cancelled_offerings, so the later offering.approved creates it cancelled.

Revision ID: b9d4e2f6a1c3
Revises: a4d6f0b2c8e1
Create Date: 2026-11-29 18:20:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from services.common.db import UTCDateTime

revision: str = 'b9d4e2f6a1c3'
down_revision: Union[str, Sequence[str], None] = 'a4d6f0b2c8e1'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('offering_credits', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancelled_at', UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('cancelled_by', sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column('cancel_reason', sa.Text(), nullable=True))
        batch_op.create_check_constraint(
            op.f('ck_offering_credits_cancellation_complete'),
            "(cancelled_at IS NULL AND cancelled_by IS NULL AND cancel_reason IS NULL) OR "
            "(cancelled_at IS NOT NULL AND cancelled_by IN ('institution', 'committee') "
            "AND cancel_reason IS NOT NULL)")
    op.create_table(
        'cancelled_offerings',
        sa.Column('offering_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('cancelled_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('cancelled_by', sa.String(length=12), nullable=False),
        sa.Column('cancel_reason', sa.Text(), nullable=False),
        sa.CheckConstraint("cancelled_by IN ('institution', 'committee')",
                           name=op.f('ck_cancelled_offerings_cancelled_by_known')),
        sa.PrimaryKeyConstraint('offering_id', name=op.f('pk_cancelled_offerings')),
    )


def downgrade() -> None:
    op.drop_table('cancelled_offerings')
    with op.batch_alter_table('offering_credits', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_offering_credits_cancellation_complete'), type_='check')
        batch_op.drop_column('cancel_reason')
        batch_op.drop_column('cancelled_by')
        batch_op.drop_column('cancelled_at')
