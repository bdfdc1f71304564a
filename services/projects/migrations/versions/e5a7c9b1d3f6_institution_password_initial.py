"""institutions.password_initial: the password is still the one the committee typed

An office could never change its password (the walk of a first day on a fresh install): the one typed by the
committee at 新建 or 重置密码 stayed for good. The office now sets its own (修改密码); until then its pages ask it
to. Existing institutions all have a committee's password: true.

Revision ID: e5a7c9b1d3f6
Revises: d8e1f3a5c7b9
Create Date: 2026-11-29 19:40:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = 'e5a7c9b1d3f6'
down_revision: Union[str, Sequence[str], None] = 'd8e1f3a5c7b9'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column('institutions', sa.Column('password_initial', sa.Boolean(), server_default=sa.true(),
                                            nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('institutions', schema=None) as batch_op:
        batch_op.drop_column('password_initial')
