"""Key rotation of personal data (README, operating): prepend a new key to CME_PII_KEYS, run
`deploy.manage rotate-pii`, drop the old key; every ID number and mobile still reads back."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from services.common import pii
from services.common.config import get_settings
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
