"""withdrawn_awards: a credits.withdrawn of an award certs does not hold yet

A withdrawal that overtook its award's credits.effective (that event failed and was retried, or was lost and
delivered again) changed nothing, and the award then arrived as valid: its certificate printed and verified as 有效
though the credit was withdrawn. The withdrawal is now noted, and such an award arrives revoked.

Revision ID: b7e2d4c6a9f1
Revises: 43e46326d0f9
Create Date: 2026-11-29 15:20:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from services.common.db import UTCDateTime

revision: str = 'b7e2d4c6a9f1'
down_revision: Union[str, Sequence[str], None] = '43e46326d0f9'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'withdrawn_awards',
        sa.Column('award_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('withdrawn_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('award_id', name=op.f('pk_withdrawn_awards')),
    )


def downgrade() -> None:
    op.drop_table('withdrawn_awards')
