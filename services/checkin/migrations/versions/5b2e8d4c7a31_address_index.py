"""checkins: index (address_hash, recorded_at) for "many identities from one address"; the scan function reads it

An index on address_hash alone let every scan from a hall behind one NAT read all of that address's check-ins
(a bitmap scan): O(n) per scan, worse with every check-in of the morning. The function now reads the new index
newest first and stops at the limit (services/checkin/scans/sql.py); it is made again here from that text.

Revision ID: 5b2e8d4c7a31
Revises: 3f1c2a7d9b10
Create Date: 2026-11-26 13:20:00

"""
from typing import Sequence, Union

from alembic import op

from services.checkin.scans.sql import install

revision: str = '5b2e8d4c7a31'
down_revision: Union[str, Sequence[str], None] = '3f1c2a7d9b10'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('checkins', schema=None) as batch_op:
        batch_op.create_index('ix_checkins_address_hash_recorded_at', ['address_hash', 'recorded_at'], unique=False)
        batch_op.drop_index(batch_op.f('ix_checkins_address_hash'))
    install(op.get_bind())  # the function as written now (PostgreSQL only)


def downgrade() -> None:
    # the function keeps the current text: it reads either index
    with op.batch_alter_table('checkins', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkins_address_hash'), ['address_hash'], unique=False)
        batch_op.drop_index('ix_checkins_address_hash_recorded_at')
