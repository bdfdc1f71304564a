"""offering_credits keeps the offering's 期次 (seq)

项目参加者授分 lists the offerings of one project by 期次, as the guide's table does; offering.approved always
carried seq, credits did not keep it. Offerings approved before this revision keep a null seq (shown blank).

Revision ID: c576185d677f
Revises: d5e8a1c3f7b2
Create Date: 2026-11-27 20:59:25

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = 'c576185d677f'
down_revision: Union[str, Sequence[str], None] = 'd5e8a1c3f7b2'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('offering_credits', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.Integer(), nullable=True))
        batch_op.create_check_constraint(op.f('ck_offering_credits_seq_positive'), 'seq IS NULL OR seq >= 1')


def downgrade() -> None:
    with op.batch_alter_table('offering_credits', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_offering_credits_seq_positive'), type_='check')
        batch_op.drop_column('seq')
