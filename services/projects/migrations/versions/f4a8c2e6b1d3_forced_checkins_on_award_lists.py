"""award lists and the report's 考勤导入 keep each trainee's 代签 count

credits.granted now carries how many of a trainee's check-ins in the offering were 代签 (forced by the
institution); projects keeps it with the award list and copies it at 导入, so the execution report's page 4
shows it to the office and to the committee. Rows kept before this revision read 0 (credits sends every
list again at its next change).

Revision ID: f4a8c2e6b1d3
Revises: e3b7c9d1a4f6
Create Date: 2026-11-28 00:45:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = 'f4a8c2e6b1d3'
down_revision: Union[str, Sequence[str], None] = 'e3b7c9d1a4f6'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    for table in ('awarded_trainees', 'report_trainees'):
        op.add_column(table, sa.Column('forced', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    for table in ('awarded_trainees', 'report_trainees'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('forced')
