"""The relay, finding the broker gone, marks what it sent just before as pending again (services/common/relay.py:
a worker may have popped such a message without recording it when Redis stopped); older rows stay sent."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select

from services.common import clock
from services.common.relay import resend_recent


def test_rows_sent_just_before_the_outage_are_pending_again(databases):
    from services.projects.db import db as pdb
    from services.projects.db import outbox

    now = clock.now()
    rows = {"recent": now - dt.timedelta(seconds=10), "old": now - dt.timedelta(minutes=5), "pending": None}
    with pdb.engine.begin() as conn:
        for name, sent_at in rows.items():
            conn.execute(insert(outbox).values(event_id=f"ev-{name}", name="offering.approved", consumer="checkin",
                                               envelope="{}", created_at=now - dt.timedelta(minutes=6),
                                               sent_at=sent_at, attempts=1))
    assert resend_recent(pdb.engine, 60) == 1
    with pdb.engine.connect() as conn:
        sent = dict(conn.execute(select(outbox.c.event_id, outbox.c.sent_at)).all())
    assert sent["ev-recent"] is None and sent["ev-pending"] is None
    assert sent["ev-old"] is not None
