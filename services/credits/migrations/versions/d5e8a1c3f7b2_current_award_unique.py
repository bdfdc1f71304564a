"""credit_awards: one current (not withdrawn) award per trainee per offering, instead of one award ever

A withdrawn award kept its (offering, trainee) for good: a trainee whose 手工录入 (非有效学分) was withdrawn so
that her valid attendance could be granted was skipped by every later 授分 ("此前已授分"), and could never get
valid credit for the offering. The unique constraint becomes a unique index over the awards not withdrawn; the
withdrawn row stays as history beside the new award.

Revision ID: d5e8a1c3f7b2
Revises: a0eff858c606
Create Date: 2026-11-27 17:40:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = 'd5e8a1c3f7b2'
down_revision: Union[str, Sequence[str], None] = 'a0eff858c606'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

CURRENT = sa.text("state != 'withdrawn'")


def upgrade() -> None:
    with op.batch_alter_table('credit_awards', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_credit_awards_offering_id_trainee_key'), type_='unique')
    op.create_index('uq_credit_awards_current', 'credit_awards', ['offering_id', 'trainee_key'], unique=True,
                    postgresql_where=CURRENT, sqlite_where=CURRENT)


def downgrade() -> None:
    # fails, as it should, once a trainee has a withdrawn award and a new one for the same offering
    op.drop_index('uq_credit_awards_current', table_name='credit_awards')
    with op.batch_alter_table('credit_awards', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_credit_awards_offering_id_trainee_key'),
                                          ['offering_id', 'trainee_key'])
