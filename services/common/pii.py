"""Personal data (ID numbers, mobiles): encrypted at rest, looked up by keyed hash, masked on screen.

Keys come from one configured, rotatable key set: the first key encrypts and hashes,
every key decrypts (MultiFernet), so rotation is: prepend the new key, re-encrypt, drop the old.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from . import clock
from .config import get_settings

MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in get_settings().pii_keys])


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken as exc:  # a key was dropped before re-encryption
        raise ValueError("cannot decrypt personal data with the configured keys") from exc


def seal(value: str) -> str:
    """A value carried through a page for a while (a searched ID number in a form), stamped at the suite's time."""
    return _fernet().encrypt_at_time(value.encode("utf-8"), int(clock.now().timestamp())).decode("ascii")


def unseal(token: str, ttl: int) -> str:
    """What seal() wrapped, if it is unaltered and at most `ttl` seconds old; ValueError otherwise."""
    try:
        return _fernet().decrypt_at_time(token.encode("ascii"), ttl, int(clock.now().timestamp())).decode("utf-8")
    except (InvalidToken, UnicodeEncodeError) as exc:
        raise ValueError("sealed value altered or expired") from exc


def rotate(token: str) -> str:
    """The same value encrypted again under the first key (`deploy.manage rotate-pii`)."""
    try:
        return _fernet().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken as exc:
        raise ValueError("cannot decrypt personal data with the configured keys") from exc


@lru_cache(maxsize=4)
def _single(key: str) -> Fernet:
    return Fernet(key.encode())


def is_current(token: str) -> bool:
    """Whether the first key alone reads the token: once every stored token is, the other keys can go."""
    try:
        _single(get_settings().pii_keys[0]).decrypt(token.encode("ascii"))
    except InvalidToken:
        return False
    return True


def lookup_hash(value: str, kind: str) -> str:
    """Keyed hash used as the look-up key (and, for ID numbers, the trainee's key in every service)."""
    key = get_settings().hash_keys[0].encode()
    normal = value.strip().upper()
    return hmac.new(key, f"{kind}:{normal}".encode(), hashlib.sha256).hexdigest()


def mobile_hash(mobile: str) -> str:
    return lookup_hash(mobile, "mobile")


def id_hash(id_number: str) -> str:
    return lookup_hash(id_number, "ric")


def mask_mobile(mobile: str) -> str:
    return mobile[:3] + "****" + mobile[-4:] if len(mobile) >= 7 else "****"


def mask_id(id_number: str) -> str:
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:] if len(id_number) > 8 else "****"


def masked(token: str | None, mask: Callable[[str], str] = mask_id) -> str:
    """An encrypted value shown masked; "" for none, "****" when its key was dropped before re-encryption
    (a list shows nothing for that row rather than failing)."""
    if not token:
        return ""
    try:
        return mask(decrypt(token))
    except ValueError:
        return "****"


def is_mainland_mobile(value: str) -> bool:
    return bool(MOBILE_RE.match(value or ""))
