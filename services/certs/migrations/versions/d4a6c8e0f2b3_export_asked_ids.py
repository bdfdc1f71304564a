"""export_jobs.asked_ids: the selection an export was asked for, kept as asked

award_ids becomes what the finished PDF holds (a certificate withdrawn meanwhile or too long for a page is left out),
so the same selection asked again never found the finished export and rendered everything once more. Existing
exports take their award_ids (a left-out one of theirs is not known any more).

Revision ID: d4a6c8e0f2b3
Revises: c3f5a7e9b1d2
Create Date: 2026-11-30 00:20:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = 'd4a6c8e0f2b3'
down_revision: Union[str, Sequence[str], None] = 'c3f5a7e9b1d2'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # in place (a batch rebuild of the table is not needed for one column); NOT NULL needs a default there
        op.execute("ALTER TABLE export_jobs ADD COLUMN asked_ids JSON NOT NULL DEFAULT '[]'")
        op.execute("UPDATE export_jobs SET asked_ids = award_ids")
        return
    op.add_column('export_jobs', sa.Column('asked_ids', sa.JSON(), nullable=True))
    op.execute("UPDATE export_jobs SET asked_ids = award_ids")
    op.alter_column('export_jobs', 'asked_ids', nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE export_jobs DROP COLUMN asked_ids")
        return
    op.drop_column('export_jobs', 'asked_ids')
