"""Rotating the keyed hash (README, Rotate secrets): with the suite stopped, put a new key first in CME_HASH_KEYS and
run `deploy.manage rotate-hash`; every service then finds each trainee, account and mobile under the new key
alone, the events the outboxes keep included, and the old key can go."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select, update

from services.common import clock, pii
from services.common.config import get_settings
from tests.checkin.test_record_checkin import START, id_number, identity, new_window
from tests.credits.conftest import new_account

ZENG = "11010519491231002X"


@pytest.fixture
def hash_keys(monkeypatch):
    old = list(get_settings().hash_keys)

    def use(keys: list[str]) -> None:
        monkeypatch.setenv("CME_HASH_KEYS", ",".join(keys))
        get_settings.cache_clear()

    yield old, use
    monkeypatch.undo()
    get_settings.cache_clear()


def _mark_sent(databases, names) -> None:  # type: ignore[no-untyped-def]
    for name in names:
        import importlib

        outbox = importlib.import_module(f"services.{name}.db").outbox
        with databases[name].engine.begin() as conn:
            conn.execute(update(outbox).values(sent_at=clock.now()))


def test_every_hash_moves_to_the_new_key_and_lookups_find_everyone(databases, hash_keys):
    from deploy.rehash import rotate_hash
    from services.checkin.db import outbox as checkin_outbox
    from services.checkin.scans.services import record_checkin
    from services.checkin.trainees.models import Trainee
    from services.credits.accounts.models import SmsCode
    from services.credits.accounts.services import find_account
    from services.credits.awards.models import AwardExclusion
    from services.projects.institutions.models import InstitutionAdmin
    from services.projects.institutions.services import add_admin, create_institution

    old_keys, use = hash_keys
    s = databases["projects"].new_session()
    inst = create_institution(s, "rehash1", "重哈希医院", "Rehash1@2026")
    add_admin(s, inst, "王科长", "13800001234")
    s.commit()
    s.close()
    new_account(databases, "曾小明", ZENG, mobile="13912345678")
    s = databases["credits"].new_session()
    s.add(AwardExclusion(offering_id=7, trainee_key=pii.id_hash(ZENG), reason="未全程参加", created_by="t"))
    s.add(AwardExclusion(offering_id=7, trainee_key="e" * 64, reason="无从换算", created_by="t"))
    s.add(SmsCode(subject="trainee:1", mobile_hash=pii.mobile_hash("13912345678"), code_hash="c" * 64,
                  purpose="reset", created_at=clock.now(), expires_at=clock.now() + dt.timedelta(minutes=5)))
    s.commit()
    s.close()
    s = databases["checkin"].new_session()
    record_checkin(s, new_window(s), nonce="n1", scanned_at=START + dt.timedelta(minutes=5), openid="o1",
                   identity=identity(1))
    s.commit()
    s.close()

    use(["a-new-hash-key", *old_keys])
    with pytest.raises(RuntimeError, match="events not yet sent"):  # nothing may travel under the old hashes
        rotate_hash(["checkin", "credits", "projects"])
    _mark_sent(databases, ["checkin", "credits", "projects"])
    report = rotate_hash(["checkin", "credits", "projects"])
    assert report["credits"]["not_recomputed"] == 1  # the exclusion nobody's ID number maps
    assert report["credits"]["sms_codes_deleted"] == 1
    assert rotate_hash(["checkin", "credits", "projects"])["credits"]["rows"] == 0  # a rerun: nothing left to do

    use(["a-new-hash-key"])  # the old key removed
    s = databases["credits"].new_session()
    account = find_account(s, ZENG)
    assert account is not None and account.trainee_key == pii.id_hash(ZENG)
    assert account.mobile_hash == pii.mobile_hash("13912345678")
    keys = set(s.scalars(select(AwardExclusion.trainee_key)))
    assert keys == {pii.id_hash(ZENG), "e" * 64}
    s.close()
    s = databases["checkin"].new_session()
    trainee = s.scalar(select(Trainee))
    assert trainee.trainee_key == pii.id_hash(id_number(1))
    with databases["checkin"].engine.connect() as conn:
        envelope = json.loads(conn.scalar(select(checkin_outbox.c.envelope)))
    assert envelope["payload"]["trainee_key"] == pii.id_hash(id_number(1))  # a consumer rebuilt from it agrees
    s.close()
    s = databases["projects"].new_session()
    assert s.scalar(select(InstitutionAdmin.mobile_hash)) == pii.mobile_hash("13800001234")
    s.close()
