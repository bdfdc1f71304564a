"""credit_awards: the database refuses an award whose year is not its activity date's

e7b3c9d2a415 repaired the years that 更正活动日期 had left behind; this makes the rule the database's too, as
DESIGN asks of every rule (a later code path that moves the day without the year is refused, not stored).

Revision ID: a4d6f0b2c8e1
Revises: f3a8c1d5e9b7
Create Date: 2026-11-29 12:50:00

"""
from typing import Sequence, Union

from alembic import op

revision: str = 'a4d6f0b2c8e1'
down_revision: Union[str, Sequence[str], None] = 'f3a8c1d5e9b7'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        day_year = "CAST(EXTRACT(YEAR FROM activity_date) AS INTEGER)"
    else:  # SQLite keeps a date as ISO text
        day_year = "CAST(strftime('%Y', activity_date) AS INTEGER)"
    with op.batch_alter_table('credit_awards', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f('ck_credit_awards_year_of_activity_date'), f"year = {day_year}")


def downgrade() -> None:
    with op.batch_alter_table('credit_awards', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_credit_awards_year_of_activity_date'), type_='check')
