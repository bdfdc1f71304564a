"""filings: an approved 期 not held (取消举办 by the office before it starts, 标记未举办 by the committee)

The state 'cancelled' with when, by whom and why; the database refuses a cancelled filing without them and any
other state with them.

Revision ID: d8e1f3a5c7b9
Revises: a9c4e6f8b2d0
Create Date: 2026-11-29 18:40:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from services.common.db import UTCDateTime

revision: str = 'd8e1f3a5c7b9'
down_revision: Union[str, Sequence[str], None] = 'a9c4e6f8b2d0'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('filings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancelled_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('cancelled_by', sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column('cancel_reason', sa.Text(), nullable=True))
        batch_op.drop_constraint(op.f('ck_filings_state_known'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_filings_state_known'), "state IN ('draft', 'submitted', 'returned', 'approved', 'cancelled')")
        batch_op.create_check_constraint(
            op.f('ck_filings_cancelled_complete'),
            "(state = 'cancelled') = (cancelled_at IS NOT NULL AND cancel_reason IS NOT NULL "
            "AND cancelled_by IN ('institution', 'committee'))")


def downgrade() -> None:
    with op.batch_alter_table('filings', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_filings_cancelled_complete'), type_='check')
        batch_op.drop_constraint(op.f('ck_filings_state_known'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_filings_state_known'), "state IN ('draft', 'submitted', 'returned', 'approved')")
        batch_op.drop_column('cancel_reason')
        batch_op.drop_column('cancelled_by')
        batch_op.drop_column('cancelled_at')
