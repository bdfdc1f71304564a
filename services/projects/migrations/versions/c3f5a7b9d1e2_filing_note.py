"""a filing's 说明 from the institution

The committee asks an office to explain a date outside the catalogue's period or a returned point; the
filing had nowhere to write it. An optional text, shown to the committee with the filing.

Revision ID: c3f5a7b9d1e2
Revises: b7d2e4f6a8c1
Create Date: 2026-11-28 04:45:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = 'c3f5a7b9d1e2'
down_revision: Union[str, Sequence[str], None] = 'b7d2e4f6a8c1'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('filings', sa.Column('note', sa.Text(), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('filings') as batch:
        batch.drop_column('note')
