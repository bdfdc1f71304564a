"""checkins: one foreign key (window_id, activity_id) to the window and its own activity, not one to each

A check-in's activity had its own key to activities, independent of its window's: a check-in could name a window
of another activity. Now the pair refers to checkin_windows (id, activity_id) (a new unique index), so the
activity is the window's own, and a scan locks one parent row (the window's) instead of two (see
scans/models.py). Existing check-ins already agree with their windows (every insert path takes both from the
window); one that did not would stop the upgrade, as it should.

Revision ID: 7d3a9e1f2c46
Revises: 5b2e8d4c7a31
Create Date: 2026-11-26 16:05:00

"""
from typing import Sequence, Union

from alembic import op

revision: str = '7d3a9e1f2c46'
down_revision: Union[str, Sequence[str], None] = '5b2e8d4c7a31'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # an index: on SQLite a constraint would rebuild checkin_windows, and dropping the old table cascades to checkins
    op.create_index('ux_checkin_windows_id_activity_id', 'checkin_windows', ['id', 'activity_id'], unique=True)
    with op.batch_alter_table('checkins', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_checkins_activity_id_activities'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_checkins_window_id_checkin_windows'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_checkins_window_id_checkin_windows'), 'checkin_windows',
                                    ['window_id', 'activity_id'], ['id', 'activity_id'], ondelete='CASCADE')


def downgrade() -> None:
    with op.batch_alter_table('checkins', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_checkins_window_id_checkin_windows'), type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_checkins_window_id_checkin_windows'), 'checkin_windows',
                                    ['window_id'], ['id'], ondelete='CASCADE')
        batch_op.create_foreign_key(batch_op.f('fk_checkins_activity_id_activities'), 'activities',
                                    ['activity_id'], ['id'], ondelete='CASCADE')
    op.drop_index('ux_checkin_windows_id_activity_id', table_name='checkin_windows')
