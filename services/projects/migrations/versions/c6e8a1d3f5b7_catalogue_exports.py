"""catalogue exports of long lists run as jobs of the projects-jobs worker

导出 Excel wrote up to 20000 rows inside the web request (about 4 s); above 2000 rows the request now stores the
list's filter as a job and the worker writes the .xlsx, the clerk following it on the job's page.

Revision ID: c6e8a1d3f5b7
Revises: a9c4e2f7b3d5
Create Date: 2026-11-29 22:20:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

import services.common.db

revision: str = 'c6e8a1d3f5b7'
down_revision: Union[str, Sequence[str], None] = 'a9c4e2f7b3d5'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'catalogue_exports',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('actor', sa.String(length=120), nullable=False),
        sa.Column('actor_name', sa.String(length=100), nullable=False),
        sa.Column('filters', sa.JSON(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('rows_total', sa.Integer(), nullable=False),
        sa.Column('rows_done', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=True),
        sa.Column('size', sa.Integer(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('created_at', services.common.db.UTCDateTime(), nullable=False),
        sa.Column('enqueued_at', services.common.db.UTCDateTime(), nullable=True),
        sa.Column('started_at', services.common.db.UTCDateTime(), nullable=True),
        sa.Column('finished_at', services.common.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint("state IN ('queued', 'running', 'done', 'failed', 'replaced')",
                           name=op.f('ck_catalogue_exports_state_known')),
        sa.CheckConstraint('rows_total >= 0 AND rows_done >= 0 AND rows_done <= rows_total',
                           name=op.f('ck_catalogue_exports_progress_in_range')),
        sa.CheckConstraint("(state = 'done') = (data IS NOT NULL)", name=op.f('ck_catalogue_exports_done_has_file')),
        sa.CheckConstraint("(state IN ('done', 'replaced')) = (size IS NOT NULL)",
                           name=op.f('ck_catalogue_exports_written_has_size')),
        sa.CheckConstraint("(state = 'failed') = (error IS NOT NULL)",
                           name=op.f('ck_catalogue_exports_failed_has_error')),
        sa.CheckConstraint("state = 'queued' OR started_at IS NOT NULL",
                           name=op.f('ck_catalogue_exports_started_when_claimed')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_catalogue_exports')),
    )
    op.create_index(op.f('ix_catalogue_exports_actor'), 'catalogue_exports', ['actor'], unique=False)
    op.create_index(op.f('ix_catalogue_exports_created_at'), 'catalogue_exports', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_catalogue_exports_created_at'), table_name='catalogue_exports')
    op.drop_index(op.f('ix_catalogue_exports_actor'), table_name='catalogue_exports')
    op.drop_table('catalogue_exports')
