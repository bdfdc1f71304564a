"""The scan function in fewer statements: one look-up for window, nonce and binding, the address read in one go,
the envelope by format()

Each statement of a PL/pgSQL function (and each condition holding a sub-query) starts and ends an executor of its
own, and json_build_object looked up the output function of each of its 50 arguments on every call
(services/checkin/scans/sql.py). The functions are made again from that text.

Revision ID: c7d1f4a9e2b5
Revises: a4c8e2b6d913
Create Date: 2026-11-26 18:40:00

"""
from typing import Sequence, Union

from alembic import op

from services.checkin.scans.sql import install

revision: str = 'c7d1f4a9e2b5'
down_revision: Union[str, Sequence[str], None] = 'a4c8e2b6d913'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    install(op.get_bind())  # the functions as written now (PostgreSQL only)


def downgrade() -> None:
    pass  # the same arguments and the same answer: the schema before calls it as it called the text before
