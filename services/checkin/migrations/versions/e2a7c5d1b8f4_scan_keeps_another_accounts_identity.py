"""A scan never rewrites a trainee's name, nor her details from a WeChat account that is not hers; an account
bound while another is bound to the ID number marks every check-in made through it

A scan typing an ID number that another WeChat account is bound to (a new phone, or someone scanning for a
colleague) changed that trainee's name, mobile, 职称 and 单位 to what it typed, and only its first check-in was
marked. Now such a scan changes nothing stored, a name not the one on record is refused (id_name_mismatch), and
wechat_bindings.later marks the account, so each of its check-ins is flagged id_on_new_wechat
(services/checkin/scans/sql.py). Bindings made before are marked where an older one of the trainee exists. The
functions are made again from that text.

Revision ID: e2a7c5d1b8f4
Revises: c7d1f4a9e2b5
Create Date: 2026-11-28 15:00:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from services.checkin.scans.sql import install

revision: str = 'e2a7c5d1b8f4'
down_revision: Union[str, Sequence[str], None] = 'c7d1f4a9e2b5'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('wechat_bindings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('later', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute("UPDATE wechat_bindings SET later = true WHERE EXISTS (SELECT 1 FROM wechat_bindings o "
               "WHERE o.trainee_id = wechat_bindings.trainee_id AND o.id < wechat_bindings.id)")
    install(op.get_bind())  # the functions as written now (PostgreSQL only)


def downgrade() -> None:
    # the scan function as written now reads `later`: a downgrade must go on to the revision before, whose
    # function text is the one in the release that had it (this one does not keep old texts)
    with op.batch_alter_table('wechat_bindings', schema=None) as batch_op:
        batch_op.drop_column('later')
