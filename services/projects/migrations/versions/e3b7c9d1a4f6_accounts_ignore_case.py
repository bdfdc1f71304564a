"""institutions and reviewers: an account is unique whatever its case

Logins and the pages already treated XJTU1 and xjtu1 as one account, but only the exact spelling was unique
in the database: two clerks saving the two spellings at the same moment made two logins nobody could tell
apart. A unique index on lower(account) now refuses the second. A database that already holds two accounts
differing only in case stops the upgrade with their names: rename one (UPDATE institutions SET account = …)
and run the upgrade again.

Revision ID: e3b7c9d1a4f6
Revises: 80a9d2b5bbfd
Create Date: 2026-11-27 21:45:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = 'e3b7c9d1a4f6'
down_revision: Union[str, Sequence[str], None] = '80a9d2b5bbfd'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TABLES = ('institutions', 'reviewers')


def upgrade() -> None:
    conn = op.get_bind()
    for table in TABLES:
        clashes = conn.execute(sa.text(
            f"SELECT lower(account), count(*) FROM {table} GROUP BY lower(account) HAVING count(*) > 1")).all()
        if clashes:
            names = ', '.join(f'{account} ({n})' for account, n in clashes)
            raise RuntimeError(f'{table}: accounts differing only in case: {names}; rename all but one, '
                               'then upgrade again')
    for table in TABLES:
        op.create_index(f'uq_{table}_account_ci', table, [sa.text('lower(account)')], unique=True)


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f'uq_{table}_account_ci', table_name=table)
