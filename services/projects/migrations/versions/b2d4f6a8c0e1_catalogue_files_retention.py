"""catalogue jobs' files are cleared CME_CATALOGUE_FILES_DAYS after the job ended

Uploaded import workbooks (up to 10 MB each) and export files were kept for good. The retention (catalogue/
retention.py, the projects beat) drops them; `cleared_at` says when, the job's row, result and audit entry stay.

Revision ID: b2d4f6a8c0e1
Revises: c6e8a1d3f5b7
Create Date: 2026-11-30 00:20:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

import services.common.db

revision: str = 'b2d4f6a8c0e1'
down_revision: Union[str, Sequence[str], None] = 'c6e8a1d3f5b7'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # batch: SQLite (the one-machine trial run) alters a column or a constraint by copying the table
    with op.batch_alter_table('catalogue_imports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cleared_at', services.common.db.UTCDateTime(), nullable=True))
        batch_op.alter_column('data', existing_type=sa.LargeBinary(), nullable=True)
        batch_op.create_check_constraint(op.f('ck_catalogue_imports_file_or_cleared'),
                                         "(data IS NULL) = (cleared_at IS NOT NULL)")
        batch_op.create_check_constraint(op.f('ck_catalogue_imports_cleared_when_ended'),
                                         "cleared_at IS NULL OR state IN ('done', 'failed')")
    with op.batch_alter_table('catalogue_exports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cleared_at', services.common.db.UTCDateTime(), nullable=True))
        batch_op.drop_constraint(op.f('ck_catalogue_exports_done_has_file'), type_='check')
        batch_op.create_check_constraint(op.f('ck_catalogue_exports_done_has_file'),
                                         "(state = 'done' AND cleared_at IS NULL) = (data IS NOT NULL)")
        batch_op.create_check_constraint(op.f('ck_catalogue_exports_cleared_when_written'),
                                         "cleared_at IS NULL OR state IN ('done', 'replaced')")


def downgrade() -> None:
    # a cleared file cannot come back: an ended import keeps an empty workbook (never read again), a cleared
    # export reads as replaced (its page then links to the clerk's latest)
    op.execute("UPDATE catalogue_imports SET data = '' WHERE data IS NULL")
    op.execute("UPDATE catalogue_exports SET state = 'replaced' WHERE state = 'done' AND cleared_at IS NOT NULL")
    with op.batch_alter_table('catalogue_exports', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_catalogue_exports_cleared_when_written'), type_='check')
        batch_op.drop_constraint(op.f('ck_catalogue_exports_done_has_file'), type_='check')
        batch_op.create_check_constraint(op.f('ck_catalogue_exports_done_has_file'),
                                         "(state = 'done') = (data IS NOT NULL)")
        batch_op.drop_column('cleared_at')
    with op.batch_alter_table('catalogue_imports', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_catalogue_imports_cleared_when_ended'), type_='check')
        batch_op.drop_constraint(op.f('ck_catalogue_imports_file_or_cleared'), type_='check')
        batch_op.alter_column('data', existing_type=sa.LargeBinary(), nullable=False)
        batch_op.drop_column('cleared_at')
