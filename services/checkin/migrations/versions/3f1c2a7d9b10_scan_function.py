"""checkin_record_scan(): a trainee's scan in one call (services/checkin/scans/sql.py)

Revision ID: 3f1c2a7d9b10
Revises: 9c95e5471c68
Create Date: 2026-11-26 07:20:00

"""
from typing import Sequence, Union

from alembic import op

from services.checkin.scans.sql import DROP_STATEMENTS, STATEMENTS

revision: str = '3f1c2a7d9b10'
down_revision: Union[str, Sequence[str], None] = '9c95e5471c68'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # PostgreSQL only: on SQLite (the embedded default) scans go through record_checkin in Python
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for statement in STATEMENTS:
            bind.exec_driver_sql(statement)  # as written: no bind parameters in the function bodies


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for statement in DROP_STATEMENTS:
            bind.exec_driver_sql(statement)
