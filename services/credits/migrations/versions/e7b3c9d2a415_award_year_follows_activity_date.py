"""credit_awards: the year of every award is its activity date's again

更正活动日期 changed an award's activity_date but left its year, the year 达标情况查询 and 年度统计 count the credit
in: an offering over New Year granted on 1 January and corrected to 31 December showed 2026-12-31 and counted in
the next year. The code now moves the year with the day; this repairs the awards corrected before it.

Revision ID: e7b3c9d2a415
Revises: c576185d677f
Create Date: 2026-11-29 12:10:00

"""
from typing import Sequence, Union

from alembic import op

revision: str = 'e7b3c9d2a415'
down_revision: Union[str, Sequence[str], None] = 'c576185d677f'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        day_year = "CAST(EXTRACT(YEAR FROM activity_date) AS INTEGER)"
    else:  # SQLite keeps a date as ISO text
        day_year = "CAST(strftime('%Y', activity_date) AS INTEGER)"
    # the version moves too: a 撤销 form opened on the old figures is stale
    op.execute(f"UPDATE credit_awards SET year = {day_year}, version = version + 1 WHERE year != {day_year}")


def downgrade() -> None:
    pass  # the wrong years are not put back
