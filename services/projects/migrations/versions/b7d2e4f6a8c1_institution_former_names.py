"""an institution's former names, kept by 更正名称

The committee can correct an institution's name; the names it had before are kept so that the catalogue
spreadsheets that still say them are matched to it on import. Existing institutions have none.

Revision ID: b7d2e4f6a8c1
Revises: f4a8c2e6b1d3
Create Date: 2026-11-28 04:00:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = 'b7d2e4f6a8c1'
down_revision: Union[str, Sequence[str], None] = 'f4a8c2e6b1d3'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('institutions', sa.Column('former_names', sa.JSON(), server_default='[]', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('institutions') as batch:
        batch.drop_column('former_names')
