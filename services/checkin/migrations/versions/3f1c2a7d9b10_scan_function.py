"""checkin_record_scan(): a trainee's scan in one call (services/checkin/scans/sql.py)

Revision ID: 3f1c2a7d9b10
Revises: 9c95e5471c68
Create Date: 2026-11-26 07:20:00

"""
from typing import Sequence, Union

from alembic import op

from services.checkin.scans.sql import DROP_STATEMENTS, install

revision: str = '3f1c2a7d9b10'
down_revision: Union[str, Sequence[str], None] = '9c95e5471c68'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    install(op.get_bind())  # PostgreSQL only (sql.install)


def downgrade() -> None:
    install(op.get_bind(), DROP_STATEMENTS)
