"""catalogue_counts: each host institution's catalogue projects of a year (catalogue.counted)

年度统计 listed only institutions with an approved offering or an award, so a host that held nothing of its
catalogue was missing from the committee's year-end figures. Empty until projects sends its counts (each
catalogue import, 删除 and 更正机构名称; `python -m services.projects.catalogue.announce` for a catalogue imported
before).

Revision ID: f3a8c1d5e9b7
Revises: e7b3c9d2a415
Create Date: 2026-11-29 12:45:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from services.common.db import UTCDateTime

revision: str = 'f3a8c1d5e9b7'
down_revision: Union[str, Sequence[str], None] = 'e7b3c9d2a415'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'catalogue_counts',
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('institution_id', sa.Integer(), nullable=False),
        sa.Column('institution_name', sa.String(length=200), nullable=False),
        sa.Column('projects', sa.Integer(), nullable=False),
        sa.Column('planned', sa.Integer(), nullable=False),
        sa.Column('counted_at', UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint('projects >= 0', name=op.f('ck_catalogue_counts_projects_not_negative')),
        sa.CheckConstraint('planned >= projects', name=op.f('ck_catalogue_counts_planned_at_least_projects')),
        sa.PrimaryKeyConstraint('year', 'institution_id', name=op.f('pk_catalogue_counts')),
    )


def downgrade() -> None:
    op.drop_table('catalogue_counts')
