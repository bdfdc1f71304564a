"""The demo check-ins of the local run (services.checkin.demo): loaded once per activity, restart after restart."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from services.common import clock, pii
from tests.checkin.test_windows_support import make_activity


def test_demo_check_ins_are_loaded_once_and_a_restart_after_a_name_correction_comes_up(databases):
    """A helper's walk: after the office added a window and the committee corrected a demo trainee's name,
    `make up` stopped on the demo loader scanning the old name into every window again."""
    from services.checkin.demo import TRAINEES, id_number, load_demo_checkins
    from services.checkin.scans.models import Checkin
    from services.checkin.windows.models import CheckinWindow
    from services.checkin.worker import handle_event
    from services.common.events import make_envelope

    cdb = databases["checkin"]
    aid, _wids = make_activity(cdb)
    s = cdb.new_session()
    try:
        first = load_demo_checkins(s, 101)
        assert first is not None and first["checkins_added"] > 0
        count = s.scalar(select(func.count()).select_from(Checkin))
        s.add(CheckinWindow(activity_id=aid, title="加场签到", kind="sign_in",
                            starts_at=dt.datetime(2026, 12, 11, 6, 0, tzinfo=dt.UTC),
                            ends_at=dt.datetime(2026, 12, 11, 7, 0, tzinfo=dt.UTC)))
        s.commit()
        name, body = TRAINEES[4][0], TRAINEES[4][1]
        clock.set_now(dt.datetime(2026, 12, 12, 2, 0, tzinfo=dt.UTC))
        assert handle_event.run(make_envelope("credits.name_corrected", "credits",
                                              {"trainee_key": pii.id_hash(id_number(body)), "name": name + "正"}))
        again = load_demo_checkins(s, 101)
        assert again is not None and again["checkins_added"] == 0
        assert s.scalar(select(func.count()).select_from(Checkin)) == count
    finally:
        s.close()
