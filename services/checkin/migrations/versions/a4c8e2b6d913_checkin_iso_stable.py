"""checkin_iso declared STABLE, so that PostgreSQL inlines it into the scan function's envelope

Declared IMMUTABLE over to_char (STABLE), it was never inlined: each of the envelope's three timestamps went
through the SQL-function executor (services/checkin/scans/sql.py). The functions are made again from that text.

Revision ID: a4c8e2b6d913
Revises: 7d3a9e1f2c46
Create Date: 2026-11-26 16:40:00

"""
from typing import Sequence, Union

from alembic import op

from services.checkin.scans.sql import install

revision: str = 'a4c8e2b6d913'
down_revision: Union[str, Sequence[str], None] = '7d3a9e1f2c46'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    install(op.get_bind())  # the functions as written now (PostgreSQL only)


def downgrade() -> None:
    pass  # the same text serves the schema before: only how PostgreSQL may plan it changed
