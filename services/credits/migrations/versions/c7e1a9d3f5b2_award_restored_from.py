"""credit_awards.restored_from: a 恢复 names the withdrawn award it gives back, once

The 授分名单 says of a withdrawn award that it was restored (and when), 达标情况查询 and 学员账号 say of the new one
that it replaced a certificate; the unique index lets a withdrawn award be restored once, whoever clicks at the
same moment. An index, not a constraint: SQLite adds it without rebuilding the table.

Revision ID: c7e1a9d3f5b2
Revises: b9d4e2f6a1c3
Create Date: 2026-11-29 19:30:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = 'c7e1a9d3f5b2'
down_revision: Union[str, Sequence[str], None] = 'b9d4e2f6a1c3'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('credit_awards', sa.Column('restored_from', sa.Integer(), nullable=True))
    op.create_index('uq_credit_awards_restored_from', 'credit_awards', ['restored_from'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_credit_awards_restored_from', table_name='credit_awards')
    with op.batch_alter_table('credit_awards', schema=None) as batch_op:
        batch_op.drop_column('restored_from')
