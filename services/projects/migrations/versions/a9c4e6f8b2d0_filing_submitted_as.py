"""what a filing was last sent as (filings.submitted_as)

After a 退回, the committee could not see what the office changed before sending it again (a replaced 会议通知
was simply replaced). Each 上报 now keeps what was sent, and the next names what differs in 办理记录.
Filings sent before have none: their next 上报 says nothing of changes.

Revision ID: a9c4e6f8b2d0
Revises: c3f5a7b9d1e2
Create Date: 2026-11-28 15:50:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = 'a9c4e6f8b2d0'
down_revision: Union[str, Sequence[str], None] = 'c3f5a7b9d1e2'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('filings', sa.Column('submitted_as', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('filings') as batch:
        batch.drop_column('submitted_as')
