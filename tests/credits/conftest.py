"""Shared fixtures of the credits tests."""

from __future__ import annotations

from services.common import pii
from services.common.auth import Principal

TRAINEE_ID_NUMBER = "11010519491231002X"
TRAINEE_MOBILE = "13912345678"


def new_account(databases, name: str = "曾小明", id_number: str = TRAINEE_ID_NUMBER,  # type: ignore[no-untyped-def]
                password: str | None = None, mobile: str = TRAINEE_MOBILE) -> Principal:
    """A trainee account as credits opens it on first sight (optionally with a chosen password already set);
    returns the principal of its session."""
    from services.credits.accounts.services import ensure_account, set_password

    s = databases["credits"].new_session()
    try:
        account = ensure_account(s, pii.id_hash(id_number), pii.encrypt(id_number), name, pii.encrypt(mobile),
                                 pii.mobile_hash(mobile))
        if password:
            set_password(s, account, password)
        s.commit()
        return Principal(role="trainee", subject=f"trainee:{account.id}", name=account.name,
                         trainee_key=account.trainee_key)
    finally:
        s.close()
