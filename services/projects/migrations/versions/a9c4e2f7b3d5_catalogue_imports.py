"""catalogue imports run as jobs of the projects worker

项目目录 导入 read and applied up to 20000 rows inside the web request (15-21 s); the request now stores the
workbook as a job and the projects worker applies it, the clerk following it on the job's page.

Revision ID: a9c4e2f7b3d5
Revises: e5a7c9b1d3f6
Create Date: 2026-11-29 21:45:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

import services.common.db

revision: str = 'a9c4e2f7b3d5'
down_revision: Union[str, Sequence[str], None] = 'e5a7c9b1d3f6'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'catalogue_imports',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('year', sa.Integer(), nullable=True),
        sa.Column('actor', sa.String(length=120), nullable=False),
        sa.Column('actor_name', sa.String(length=100), nullable=False),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('rows_total', sa.Integer(), nullable=True),
        sa.Column('rows_done', sa.Integer(), nullable=False),
        sa.Column('result', sa.JSON(), nullable=True),
        sa.Column('report_xlsx', sa.LargeBinary(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', services.common.db.UTCDateTime(), nullable=False),
        sa.Column('enqueued_at', services.common.db.UTCDateTime(), nullable=True),
        sa.Column('started_at', services.common.db.UTCDateTime(), nullable=True),
        sa.Column('finished_at', services.common.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name=op.f('ck_catalogue_imports_state_known')),
        sa.CheckConstraint('year IS NULL OR year BETWEEN 2000 AND 2100', name=op.f('ck_catalogue_imports_year_range')),
        sa.CheckConstraint('size >= 0 AND rows_done >= 0 AND (rows_total IS NULL OR rows_done <= rows_total)',
                           name=op.f('ck_catalogue_imports_progress_in_range')),
        sa.CheckConstraint("(state = 'done') = (result IS NOT NULL)", name=op.f('ck_catalogue_imports_done_has_result')),
        sa.CheckConstraint("(state = 'failed') = (error IS NOT NULL)",
                           name=op.f('ck_catalogue_imports_failed_has_error')),
        sa.CheckConstraint("state = 'queued' OR started_at IS NOT NULL",
                           name=op.f('ck_catalogue_imports_started_when_claimed')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_catalogue_imports')),
    )
    op.create_index(op.f('ix_catalogue_imports_created_at'), 'catalogue_imports', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_catalogue_imports_created_at'), table_name='catalogue_imports')
    op.drop_table('catalogue_imports')
