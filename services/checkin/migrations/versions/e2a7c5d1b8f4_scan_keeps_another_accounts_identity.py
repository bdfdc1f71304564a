"""The scan function no longer lets a new WeChat account rewrite the identity of an ID number bound elsewhere

A scan typing an ID number that another WeChat account is bound to (a new phone, or someone scanning for a
colleague) changed that trainee's name, mobile, 职称 and 单位 to what it typed. It now changes nothing stored and
checks in (flagged id_on_new_wechat) only with the name on record; otherwise refused as id_name_mismatch
(services/checkin/scans/sql.py). The functions are made again from that text.

Revision ID: e2a7c5d1b8f4
Revises: c7d1f4a9e2b5
Create Date: 2026-11-28 15:00:00

"""
from typing import Sequence, Union

from alembic import op

from services.checkin.scans.sql import install

revision: str = 'e2a7c5d1b8f4'
down_revision: Union[str, Sequence[str], None] = 'c7d1f4a9e2b5'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    install(op.get_bind())  # the functions as written now (PostgreSQL only)


def downgrade() -> None:
    pass  # the text before would let a new account rewrite the identity again: not worth restoring
