"""Key rotation of personal data (README, operating): prepend a new key to CME_PII_KEYS, run
`deploy.manage rotate-pii`, drop the old key; every ID number and mobile still reads back."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from services.common import pii
from services.common.config import get_settings
from tests.checkin.test_record_checkin import START, id_number, identity, new_window
from tests.credits.conftest import new_account


def _use_keys(monkeypatch, keys: list[str]) -> None:
    monkeypatch.setenv("CME_PII_KEYS", ",".join(keys))
    get_settings.cache_clear()
    pii._fernet.cache_clear()


@pytest.fixture
def keys(monkeypatch):
    old = list(get_settings().pii_keys)
    yield old
    monkeypatch.undo()
    get_settings.cache_clear()
    pii._fernet.cache_clear()


def test_rotation_reencrypts_every_stored_value_so_the_old_key_can_go(databases, keys, monkeypatch):
    from deploy.manage import rotate_pii
    from services.credits.accounts.models import TraineeAccount
    from services.projects.institutions.models import InstitutionAdmin
    from services.projects.institutions.services import add_admin, create_institution

    s = databases["projects"].new_session()
    inst = create_institution(s, "rot1", "旋转医院", "Rot1@2026pw")
    add_admin(s, inst, "王科长", "13800001234")
    s.commit()
    s.close()
    new_account(databases, "曾小明", "11010519491231002X", mobile="13912345678")

    new_key = Fernet.generate_key().decode()
    _use_keys(monkeypatch, [new_key, *keys])
    done = rotate_pii(["projects", "credits"])
    assert done["projects"] >= 1 and done["credits"] >= 1

    _use_keys(monkeypatch, [new_key])  # the old key dropped
    s = databases["projects"].new_session()
    assert pii.decrypt(s.scalar(select(InstitutionAdmin.mobile_enc))) == "13800001234"
    s.close()
    s = databases["credits"].new_session()
    account = s.scalar(select(TraineeAccount))
    assert pii.decrypt(account.id_enc) == "11010519491231002X" and pii.decrypt(account.mobile_enc) == "13912345678"
    s.close()


def test_without_rotation_dropping_the_old_key_loses_nothing_silently(databases, keys, monkeypatch):
    """The check the rotation guards against: a value under a dropped key is an error, not garbage."""
    token = pii.encrypt("13912345678")
    _use_keys(monkeypatch, [Fernet.generate_key().decode()])
    with pytest.raises(ValueError):
        pii.decrypt(token)


def test_rotation_reaches_the_events_the_outboxes_keep(databases, keys, monkeypatch):
    """The outboxes keep every event so that a consumer restored or started empty is sent them again
    (README, back up): after rotation, with the old key gone, such a consumer still reads each ID number."""
    from deploy.manage import check_pii, rotate_pii
    from services.checkin.db import outbox as checkin_outbox
    from services.checkin.scans.services import record_checkin
    from services.common import events
    from services.credits.attendance.models import AttendanceRecord
    from services.credits.db import outbox as credits_outbox
    from services.credits.db import processed_events as credits_processed
    from services.credits.worker import HANDLERS as CREDITS_HANDLERS

    s = databases["checkin"].new_session()
    record_checkin(s, new_window(s), nonce="n1", scanned_at=START + dt.timedelta(minutes=5), openid="o1",
                   identity=identity(1))
    s.commit()
    s.close()
    award = {"award_id": 1, "trainee_key": "k" * 64, "name": "曾小明", "id_enc": pii.encrypt(id_number(2)),
             "credit_class": "Ⅰ类", "credit_value": 10, "activity_date": START.date(), "method": "attendance",
             "state": "pending"}
    s = databases["credits"].new_session()
    events.emit(s, credits_outbox, "credits", "credits.granted",
                {"offering_id": 7, "institution_id": 1, "awards": [award]})
    s.commit()
    s.close()

    def kept(name: str, table) -> dict:
        with databases[name].engine.connect() as conn:
            return json.loads(conn.scalar(select(table.c.envelope).where(table.c.name != "credits.effective")))

    before = kept("checkin", checkin_outbox)
    assert check_pii(["checkin", "credits"]) == {}  # one key: everything is under it
    new_key = Fernet.generate_key().decode()
    _use_keys(monkeypatch, [new_key, *keys])
    stale = check_pii(["checkin", "credits"])
    assert stale["checkin.outbox"] == 2 and stale["credits.outbox"] >= 1  # id_enc, mobile_enc; the award's id_enc
    rotate_pii(["checkin", "credits"])
    assert check_pii(["checkin", "credits"]) == {}
    assert rotate_pii(["checkin", "credits"]) == {"checkin": 0, "credits": 0}  # a rerun rewrites nothing done

    _use_keys(monkeypatch, [new_key])  # the old key dropped
    envelope = kept("checkin", checkin_outbox)
    assert {k: v for k, v in envelope.items() if k != "payload"} == {k: v for k, v in before.items() if k != "payload"}
    assert pii.decrypt(envelope["payload"]["mobile_enc"]) == identity(1)["mobile"]
    granted = kept("credits", credits_outbox)
    assert pii.decrypt(granted["payload"]["awards"][0]["id_enc"]) == id_number(2)
    # credits started on an empty database is sent the kept check-in again: its copy reads under the new key
    s = databases["credits"].new_session()
    assert events.consume(s, credits_processed, envelope, CREDITS_HANDLERS)
    s.commit()
    assert pii.decrypt(s.scalar(select(AttendanceRecord.id_enc))) == id_number(1)
    s.close()


def test_rotation_stops_at_a_value_no_key_reads_and_says_where(databases, keys, monkeypatch):
    """A key left out of CME_PII_KEYS (or a damaged value): the run stops there, naming the table and row, rather
    than failing without saying where."""
    from deploy.manage import rotate_pii
    from services.credits.accounts.models import TraineeAccount

    new_account(databases, "曾小明", "11010519491231002X", mobile="13912345678")
    s = databases["credits"].new_session()
    account = s.scalar(select(TraineeAccount))
    account.mobile_enc = Fernet(Fernet.generate_key()).encrypt(b"13912345678").decode()  # under a key we lack
    s.commit()
    account_id = account.id
    s.close()
    _use_keys(monkeypatch, [Fernet.generate_key().decode(), *keys])
    with pytest.raises(RuntimeError, match=f"credits.trainee_accounts id {account_id}: cannot decrypt"):
        rotate_pii(["credits"])
