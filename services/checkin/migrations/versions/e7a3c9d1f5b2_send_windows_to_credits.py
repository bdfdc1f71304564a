"""checkin tells credits of the 刷卡周期 it made before it sent window creations (data only, no schema change)

Credits keeps its own copy of the windows (考勤分析 lists one nobody scanned in), filled by checkin.window_changed,
which checkin now sends whenever a window is made. A window made earlier and never edited nor scanned in is unknown
to credits: this writes one checkin.window_changed to the outbox for each window without check-ins (one with
check-ins is known through them), and the relay sends them as any other event. Sending a window credits knows
already changes nothing (the event carries the whole window as it is). A window deleted before this change stays
listed in credits (with 0 scans): checkin no longer has it to send.

Revision ID: e7a3c9d1f5b2
Revises: d8f2b5c9a3e6
Create Date: 2026-11-30 01:00:00

"""
import json
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from services.common import clock
from services.common.db import UTCDateTime
from services.common.events import make_envelope

revision: str = 'e7a3c9d1f5b2'
down_revision: Union[str, Sequence[str], None] = 'd8f2b5c9a3e6'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# the tables as this revision has them (the models may gain columns later)
_windows = sa.table('checkin_windows', sa.column('id', sa.Integer), sa.column('activity_id', sa.Integer),
                    sa.column('title', sa.String), sa.column('kind', sa.String),
                    sa.column('starts_at', UTCDateTime()), sa.column('ends_at', UTCDateTime()))
_activities = sa.table('activities', sa.column('id', sa.Integer), sa.column('offering_id', sa.Integer))
_checkins = sa.table('checkins', sa.column('window_id', sa.Integer))
_outbox = sa.table('outbox', sa.column('event_id', sa.String), sa.column('name', sa.String),
                   sa.column('consumer', sa.String), sa.column('envelope', sa.Text),
                   sa.column('created_at', UTCDateTime()), sa.column('attempts', sa.Integer))


def upgrade() -> None:
    conn = op.get_bind()
    w, a = _windows, _activities
    scanned = sa.select(_checkins.c.window_id).where(_checkins.c.window_id == w.c.id).exists()
    rows = conn.execute(sa.select(w.c.id, w.c.activity_id, a.c.offering_id, w.c.title, w.c.kind, w.c.starts_at,
                                  w.c.ends_at).join(a, a.c.id == w.c.activity_id).where(~scanned)
                        .order_by(w.c.id)).all()
    now = clock.now()
    for window_id, activity_id, offering_id, title, kind, starts_at, ends_at in rows:
        envelope = make_envelope("checkin.window_changed", "checkin", {
            "activity_id": activity_id, "offering_id": offering_id, "window_id": window_id, "window_kind": kind,
            "window_starts_at": starts_at, "window_ends_at": ends_at, "window_title": title})
        conn.execute(sa.insert(_outbox).values(
            event_id=envelope["id"], name=envelope["name"], consumer="credits",
            envelope=json.dumps(envelope, ensure_ascii=False), created_at=now, attempts=0))


def downgrade() -> None:
    # nothing to undo: the events tell credits of windows that exist
    pass
