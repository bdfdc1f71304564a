"""The trainee's phone flow: judging the scanned code once, the scan ticket, the WeChat identity cookie.

1. The phone opens ``/checkin/s/<token>`` (the QR URL, see :func:`scan_url`). The token's freshness
   is judged *then* (:func:`open_scan`), and a **scan ticket** is issued: a signed value holding the
   activity, the window, the slot, the moment of the first open (``issued_at``, the check-in's
   ``scanned_at``), a nonce for the form (the idempotency key) and the WeChat OAuth ``state``.
2. From then on the trainee has ``CME_SCAN_TICKET_SECONDS`` (default 600) to finish WeChat login and
   the form, however often the projector's code changes meanwhile; a photo of an old code fails at 1.
3. The openid WeChat gives back is kept in a signed cookie for 30 days, so later scans skip OAuth.
4. A form sent after the ticket's time is refused (ticket_expired), and what was typed is kept for the next
   scan in a cookie encrypted under the PII keys (:func:`keep_typed`, 30 minutes, for that WeChat account).

Both cookies are signed (itsdangerous, the server secret, their own salts), HttpOnly, SameSite=Lax,
path ``/checkin/``; their age is judged against :func:`services.common.clock.now`, so a moved
clock (tests, demos) moves them too.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session

from services.common import clock, pii
from services.common.config import env, get_settings

from ..qr import tokens
from ..scans.services import ScanRefused, refuse
from ..windows.models import CheckinWindow

__all__ = [
    "TICKET_COOKIE", "WECHAT_COOKIE", "COOKIE_PATH", "WECHAT_COOKIE_DAYS", "Ticket",
    "scan_url", "callback_url", "ticket_seconds", "wechat_ua_required", "is_wechat_browser",
    "open_scan", "new_ticket", "dump_ticket", "load_ticket", "dump_openid", "load_openid",
    "set_ticket_cookie", "set_openid_cookie", "TOKEN_STATUS", "KEPT_COOKIE", "KEPT_SECONDS", "keep_typed", "load_kept",
    "forget_kept",
]

log = logging.getLogger(__name__)

TICKET_COOKIE = "cme_scan"
WECHAT_COOKIE = "cme_wx"
KEPT_COOKIE = "cme_kept"
KEPT_SECONDS = 1800  # a form kept after its ticket ran out waits this long for the next scan
COOKIE_PATH = "/checkin/"
TICKET_SALT = "cme-scan-ticket"
WECHAT_SALT = "cme-wechat-openid"
WECHAT_COOKIE_DAYS = 30
DEFAULT_TICKET_SECONDS = 600
# a ticket stamped by a worker whose clock is slightly ahead is still accepted by one behind
TICKET_SKEW_SECONDS = 5
TICKET_COOKIE_GRACE = 3600  # seconds the browser keeps a ticket past its time (see set_ticket_cookie)

# qr.tokens reason -> HTTP status of the refusal page
TOKEN_STATUS = {
    tokens.EXPIRED: 410,
    tokens.MALFORMED: 400,
    tokens.FORGED: 400,
    tokens.WRONG_ACTIVITY: 403,
    tokens.WRONG_WINDOW: 403,
    tokens.FUTURE: 403,
}


# ---------------------------------------------------------------- configuration and URLs

def public_base() -> str:
    return get_settings().public_base_url.rstrip("/")


def scan_url(token: str) -> str:
    """The URL a QR code carries (the projector page encodes it)."""
    return f"{public_base()}/checkin/s/{token}"


def callback_url() -> str:
    """Where WeChat OAuth sends the phone back."""
    return f"{public_base()}/checkin/wechat/callback"


def ticket_seconds() -> int:
    """CME_SCAN_TICKET_SECONDS: the time from the first open to finish login and form (default 600)."""
    raw = env("CME_SCAN_TICKET_SECONDS", "").strip()
    try:
        value = int(raw) if raw else DEFAULT_TICKET_SECONDS
    except ValueError:
        raise RuntimeError(f"CME_SCAN_TICKET_SECONDS must be a whole number of seconds, got {raw!r}") from None
    if not 30 <= value <= 3600:
        raise RuntimeError(f"CME_SCAN_TICKET_SECONDS must be between 30 and 3600, got {value}")
    return value


def wechat_ua_required() -> bool:
    """CME_WECHAT_UA_REQUIRED (default "1"): only WeChat's browser may open the pages; "0" lets any through."""
    return env("CME_WECHAT_UA_REQUIRED", "1").strip() != "0"


def is_wechat_browser(user_agent: str | None) -> bool:
    return "MicroMessenger" in (user_agent or "")


# ---------------------------------------------------------------- the first open

def open_scan(session: Session, token: str, *, now: dt.datetime | None = None,
              address: str | None = None) -> tuple[CheckinWindow, int]:
    """Judge a scanned token at its first open: (window, slot), or raise ScanRefused.

    A refusal is added to the session (the caller commits it): ``token_<reason>`` for the reasons
    of :func:`services.checkin.qr.tokens.verify`, ``token_wrong_window`` (404) for a window that
    does not exist, ``activity_cancelled`` for an activity 取消举办 / 标记未举办, ``not_in_window`` when the
    window is not open now.
    """
    now = now or clock.now()
    claim = tokens.read_token(token)
    window = session.get(CheckinWindow, claim[1]) if claim else None
    if claim is not None and window is None:
        raise _refused(session, "token_wrong_window", 404, activity_id=claim[0], address=address)
    if window is None:
        result = tokens.verify(token, 0, 0, at=now)  # malformed or forged: says which
    else:
        result = tokens.verify(token, window.activity_id, window.id, at=now)
    if not result.ok:
        activity_id = window.activity_id if window is not None else None
        raise _refused(session, f"token_{result.reason}", TOKEN_STATUS.get(result.reason, 400),
                       activity_id=activity_id, window_id=window.id if window is not None else None,
                       address=address)
    assert window is not None and result.slot is not None
    if window.activity.cancelled:  # Activity.refuse_if_cancelled's rule, as a scan refusal (kept)
        raise _refused(session, "activity_cancelled", 403, activity_id=window.activity_id, window_id=window.id,
                       address=address)
    if not window.is_open(now):
        raise _refused(session, "not_in_window", 403, activity_id=window.activity_id, window_id=window.id,
                       address=address)
    return window, result.slot


def _refused(session: Session, reason: str, status: int, **where: Any) -> ScanRefused:
    log.info("scan refused: %s (activity %s, window %s)", reason, where.get("activity_id"), where.get("window_id"))
    return refuse(session, reason, status=status, **where)


# ---------------------------------------------------------------- the scan ticket

@dataclass(frozen=True)
class Ticket:
    activity_id: int
    window_id: int
    slot: int
    issued_at: dt.datetime  # the first open: the check-in's scanned_at
    nonce: str  # the form's idempotency key
    state: str  # WeChat OAuth state (letters and digits)

    def expires_at(self) -> dt.datetime:
        return self.issued_at + dt.timedelta(seconds=ticket_seconds())

    def live(self, now: dt.datetime | None = None) -> bool:
        now = now or clock.now()
        return self.issued_at - dt.timedelta(seconds=TICKET_SKEW_SECONDS) <= now <= self.expires_at()


def _serializer(salt: str) -> URLSafeSerializer:
    return _serializer_for(get_settings().secret_key, salt)


@lru_cache(maxsize=8)
def _serializer_for(secret_key: str, salt: str) -> URLSafeSerializer:
    """Built once per key and salt (each scan reads two cookies); it keeps no state between calls."""
    return URLSafeSerializer(secret_key, salt=salt)


def new_ticket(activity_id: int, window_id: int, slot: int, now: dt.datetime | None = None) -> Ticket:
    return Ticket(activity_id, window_id, slot, now or clock.now(), secrets.token_urlsafe(24),
                  secrets.token_hex(16))


def dump_ticket(ticket: Ticket) -> str:
    return _serializer(TICKET_SALT).dumps({"a": ticket.activity_id, "w": ticket.window_id, "s": ticket.slot,
                                           "t": ticket.issued_at.isoformat(), "n": ticket.nonce,
                                           "st": ticket.state})


def load_ticket(value: str | None) -> Ticket | None:
    """The ticket in a cookie if its signature holds (live or not: see Ticket.live); else None."""
    if not value:
        return None
    try:
        data = _serializer(TICKET_SALT).loads(value)
        issued = dt.datetime.fromisoformat(data["t"])
        if issued.tzinfo is None:
            return None
        return Ticket(int(data["a"]), int(data["w"]), int(data["s"]), issued.astimezone(dt.UTC), str(data["n"]),
                      str(data["st"]))
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


# ---------------------------------------------------------------- the WeChat identity cookie

def dump_openid(openid: str, now: dt.datetime | None = None) -> str:
    return _serializer(WECHAT_SALT).dumps({"o": openid, "t": (now or clock.now()).isoformat()})


def load_openid(value: str | None, now: dt.datetime | None = None) -> str | None:
    """The openid of a signed cookie younger than 30 days, else None."""
    if not value:
        return None
    try:
        data = _serializer(WECHAT_SALT).loads(value)
        issued = dt.datetime.fromisoformat(data["t"])
        openid = data["o"]
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    if issued.tzinfo is None or not isinstance(openid, str) or not openid:
        return None
    age = (now or clock.now()) - issued
    if not dt.timedelta(seconds=-TICKET_SKEW_SECONDS) <= age <= dt.timedelta(days=WECHAT_COOKIE_DAYS):
        return None
    return openid


# ---------------------------------------------------------------- cookies on a response

def _secure() -> bool:
    return public_base().startswith("https")


def _set_cookie(response: Any, name: str, value: str, max_age: int) -> Any:
    """A cookie of the phone pages: HttpOnly, SameSite=Lax, under /checkin/, Secure behind https."""
    response.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, httponly=True, samesite="Lax",
                        secure=_secure())
    return response


def set_ticket_cookie(response: Any, ticket: Ticket) -> Any:
    # The browser keeps the ticket an hour past its time; the server judges it by issued_at (Ticket.live). Gone
    # with its time, a slow network's retry of a stored check-in could not be told 已签到, and a form sent late
    # could not be kept for the next scan: both need the ticket that was answered or refused.
    return _set_cookie(response, TICKET_COOKIE, dump_ticket(ticket), ticket_seconds() + TICKET_COOKIE_GRACE)


def set_openid_cookie(response: Any, openid: str) -> Any:
    return _set_cookie(response, WECHAT_COOKIE, dump_openid(openid), WECHAT_COOKIE_DAYS * 86400)


# ---------------------------------------------------------------- a form kept after its ticket ran out

def keep_typed(response: Any, openid: str, values: dict[str, str], edit: bool) -> Any:
    """What a doctor typed on a form sent too late, for the form of her next scan: encrypted (it holds her ID
    number and mobile), for this WeChat account only."""
    sealed = pii.seal(json.dumps({"o": openid, "v": values, "e": edit}, ensure_ascii=False))
    return _set_cookie(response, KEPT_COOKIE, sealed, KEPT_SECONDS)


def load_kept(value: str | None, openid: str | None) -> tuple[dict[str, str], bool] | None:
    """(values, edit) kept for this WeChat account within KEPT_SECONDS; None otherwise."""
    if not value or not openid:
        return None
    try:
        data = json.loads(pii.unseal(value, KEPT_SECONDS))
        if data["o"] != openid or not isinstance(data["v"], dict):
            return None
        return {str(k): str(v) for k, v in data["v"].items()}, bool(data["e"])
    except (ValueError, KeyError, TypeError):
        return None


def forget_kept(response: Any) -> Any:
    response.delete_cookie(KEPT_COOKIE, path=COOKIE_PATH, httponly=True, samesite="Lax", secure=_secure())
    return response
