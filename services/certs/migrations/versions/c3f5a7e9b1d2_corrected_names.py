"""corrected_names: the latest credits.name_corrected of each trainee

A name correction applied before an award's credits.effective that was sent earlier (that event failed and was
retried, or was lost and delivered again) was undone by it: the certificate showed the name as it was before the
correction. The latest correction is now kept and wins over a list sent before it.

Revision ID: c3f5a7e9b1d2
Revises: b7e2d4c6a9f1
Create Date: 2026-11-29 15:40:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from services.common.db import UTCDateTime

revision: str = 'c3f5a7e9b1d2'
down_revision: Union[str, Sequence[str], None] = 'b7e2d4c6a9f1'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'corrected_names',
        sa.Column('trainee_key', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('corrected_at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('trainee_key', name=op.f('pk_corrected_names')),
    )


def downgrade() -> None:
    op.drop_table('corrected_names')
