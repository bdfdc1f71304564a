"""offering.cancelled: an activity says it is 取消举办 / 标记未举办, a cancellation that came before its approval waits
in cancelled_offerings, and the scan function refuses a cancelled activity's scans (activity_cancelled)

Revision ID: f3b8d2a6c1e9
Revises: e2a7c5d1b8f4
Create Date: 2026-11-29 18:30:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

import services.common.db
from services.checkin.scans.sql import install

revision: str = 'f3b8d2a6c1e9'
down_revision: Union[str, Sequence[str], None] = 'e2a7c5d1b8f4'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


COMPLETE = "(cancelled_at IS NULL) = (cancelled_by IS NULL) AND (cancelled_at IS NULL) = (cancel_reason IS NULL)"
KNOWN = "cancelled_by IS NULL OR cancelled_by IN ('institution', 'committee')"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # no batch rebuild: dropping the old activities table would cascade (foreign keys are on) and delete every
        # window and check-in. SQLite adds a column with a CHECK in place (checked against the rows there), so
        # both rules ride on the last column added.
        op.execute("ALTER TABLE activities ADD COLUMN cancelled_at DATETIME")
        op.execute("ALTER TABLE activities ADD COLUMN cancelled_by VARCHAR(20)")
        op.execute(f"ALTER TABLE activities ADD COLUMN cancel_reason TEXT CHECK (({COMPLETE}) AND ({KNOWN}))")
    else:
        with op.batch_alter_table('activities', schema=None) as batch_op:
            batch_op.add_column(sa.Column('cancelled_at', services.common.db.UTCDateTime(timezone=True),
                                          nullable=True))
            batch_op.add_column(sa.Column('cancelled_by', sa.String(length=20), nullable=True))
            batch_op.add_column(sa.Column('cancel_reason', sa.Text(), nullable=True))
            batch_op.create_check_constraint('cancellation_complete', COMPLETE)
            batch_op.create_check_constraint('cancelled_by_known', KNOWN)
    op.create_table(
        'cancelled_offerings',
        sa.Column('offering_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('institution_id', sa.Integer(), nullable=False),
        sa.Column('cancelled_at', services.common.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('cancelled_by', sa.String(length=20), nullable=False),
        sa.Column('cancel_reason', sa.Text(), nullable=False),
        sa.CheckConstraint("cancelled_by IN ('institution', 'committee')",
                           name=op.f('ck_cancelled_offerings_cancelled_by_known')),
        sa.PrimaryKeyConstraint('offering_id', name=op.f('pk_cancelled_offerings')),
    )
    install(op.get_bind())  # the functions as written now (PostgreSQL only)


def downgrade() -> None:
    # the scan function as written now reads activities.cancelled_at: a downgrade must go on to the revision
    # before, whose function text is the one in the release that had it (this one does not keep old texts)
    op.drop_table('cancelled_offerings')
    if op.get_bind().dialect.name == "sqlite":  # in place, as added (a rebuild would cascade)
        for column in ('cancel_reason', 'cancelled_by', 'cancelled_at'):
            op.execute(f"ALTER TABLE activities DROP COLUMN {column}")
        return
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_constraint('cancelled_by_known', type_='check')
        batch_op.drop_constraint('cancellation_complete', type_='check')
        batch_op.drop_column('cancel_reason')
        batch_op.drop_column('cancelled_by')
        batch_op.drop_column('cancelled_at')
