"""Logging out, changing or resetting a password ends sessions before their 12 hours: a copy of the cookie
(another tab, a shared phone's history) and the other devices' sessions are refused afterwards."""

from __future__ import annotations

import redis

from services.common import auth
from services.common.auth import COOKIE
from tests.credits.test_forgot_password import forgot, last_code, reset
from tests.credits.test_trainee_login import (  # noqa: F401 - make_account is a fixture
    ID_NUMBER,
    NEW_PASSWORD,
    csrf_of,
    make_account,
    page_login,
)

OTHER_PASSWORD = "Anders2026pw"


def signed_in(credits_app, password: str = NEW_PASSWORD):  # type: ignore[no-untyped-def]
    client = credits_app.test_client()
    assert page_login(client, ID_NUMBER, password).status_code == 302
    return client, client.get_cookie(COOKIE).value


def with_cookie(credits_app, token: str):  # type: ignore[no-untyped-def]
    client = credits_app.test_client()
    client.set_cookie(COOKIE, token, domain="localhost", path="/")
    return client


def home(client) -> int:  # type: ignore[no-untyped-def]
    return client.get("/credits/").status_code


def test_logout_ends_that_session_and_no_other(credits_app, make_account):  # noqa: F811
    make_account(password=NEW_PASSWORD)
    phone, phone_token = signed_in(credits_app)
    _, laptop_token = signed_in(credits_app)
    copy = with_cookie(credits_app, phone_token)
    assert home(copy) == 200
    token = csrf_of(phone.get("/credits/").get_data(as_text=True))
    assert phone.post("/credits/logout", data={"csrf_token": token}).status_code == 302
    assert home(copy) == 302  # the copied cookie goes to the login page now
    assert copy.get("/credits/api/me/compliance", headers={"Accept": "application/json"}).status_code == 401
    assert home(with_cookie(credits_app, laptop_token)) == 200  # the laptop's own session goes on


def test_a_password_change_ends_the_other_sessions_but_not_its_own(credits_app, make_account):  # noqa: F811
    make_account(password=NEW_PASSWORD)
    phone, _ = signed_in(credits_app)
    _, laptop_token = signed_in(credits_app)
    api = credits_app.test_client().post("/credits/api/auth/login",
                                         json={"id_number": ID_NUMBER, "password": NEW_PASSWORD}).json["token"]
    token = csrf_of(phone.get("/credits/password").get_data(as_text=True))
    changed = phone.post("/credits/password", data={"csrf_token": token, "old_password": NEW_PASSWORD,
                                                    "new_password": OTHER_PASSWORD,
                                                    "repeat_password": OTHER_PASSWORD})
    assert changed.status_code == 302
    assert home(phone) == 200  # the session it hands back
    assert home(with_cookie(credits_app, laptop_token)) == 302
    bearer = credits_app.test_client().get("/credits/api/me/compliance", headers={"Authorization": f"Bearer {api}"})
    assert bearer.status_code == 401
    _, fresh = signed_in(credits_app, OTHER_PASSWORD)
    assert home(with_cookie(credits_app, fresh)) == 200


def test_a_password_reset_by_sms_ends_every_session(credits_app, make_account, sms_log):  # noqa: F811
    make_account(password=NEW_PASSWORD)
    _, stolen = signed_in(credits_app)
    if sms_log.exists():
        sms_log.unlink()
    forgot(credits_app.test_client())
    assert reset(credits_app.test_client(), last_code(sms_log), password=OTHER_PASSWORD).status_code == 200
    assert home(with_cookie(credits_app, stolen)) == 302


def test_without_redis_signed_sessions_still_work(credits_app, make_account, monkeypatch):  # noqa: F811
    """A Redis outage must not log the whole province out: the ends cannot be read, the signature still holds."""
    make_account(password=NEW_PASSWORD)
    phone, _ = signed_in(credits_app)
    gone = redis.Redis(host="127.0.0.1", port=1, socket_timeout=0.2, socket_connect_timeout=0.2)
    monkeypatch.setattr(auth, "_ends", lambda: gone)
    assert home(phone) == 200
    token = csrf_of(phone.get("/credits/").get_data(as_text=True))
    assert phone.post("/credits/logout", data={"csrf_token": token}).status_code == 302  # the cookie is dropped
