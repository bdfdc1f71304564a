"""Trainee account rules: creation on first sight, login with ID number and password, lock-out, password change.

- ensure_account: created once per trainee key; later calls refresh name and mobile, never the password.
- authenticate: while the initial password is in force (password_hash NULL) the password is any accepted
  pinyin spelling of the name (passwords.initial_password_candidates, case and spaces ignored); afterwards
  the argon2 hash. CME_TRAINEE_MAX_FAILURES wrong tries in a row (default 5) lock the account for
  CME_TRAINEE_LOCK_MINUTES (default 15), read from services.common.clock; the refusal says until when
  (Asia/Shanghai). An unknown ID number gets the same refusal as a wrong password.
- change_password: old password, then a new one of at least 8 characters with letters and digits,
  not the initial pinyin (even with digits added) and not the old password.

A counted wrong try is raised as KeptError: the caller commits the session before answering (the count
must survive the refusal); any other AppError is rolled back.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common import clock, pii
from services.common.config import env
from services.common.db import insert_for
from services.common.errors import AppError

from .models import TraineeAccount
from .passwords import initial_password_candidates, normalize_password_input

__all__ = ["KeptError", "authenticate", "change_password", "ensure_account", "find_account", "lock_minutes",
           "max_failures", "set_password", "validate_new_password", "BAD_CREDENTIALS", "MIN_LENGTH"]

log = logging.getLogger(__name__)

_hasher = PasswordHasher()
MIN_LENGTH = 8
MAX_LENGTH = 128
BAD_CREDENTIALS = "身份证号或密码不正确。"


class KeptError(AppError):
    """A refusal whose side effect (a counted wrong try, a lock) must still be committed."""


def _int_env(name: str, default: int) -> int:
    try:
        return max(1, int(env(name, str(default)) or default))
    except ValueError:
        return default


def max_failures() -> int:
    return _int_env("CME_TRAINEE_MAX_FAILURES", 5)


def lock_minutes() -> int:
    return _int_env("CME_TRAINEE_LOCK_MINUTES", 15)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _verify_hash(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # a real argon2 hash, so every refusal costs one verification (no probing of which ID numbers exist)
    return hash_password(secrets.token_hex(16))


def _matches(account: TraineeAccount, password: str) -> bool:
    if account.password_hash is None:
        _verify_hash(_dummy_hash(), password)  # same cost as the argon2 path
        typed = normalize_password_input(password)
        return bool(typed) and typed in initial_password_candidates(account.name)
    return _verify_hash(account.password_hash, password)


# ---------------------------------------------------------------- accounts


def find_account(session: Session, id_number: str, *, for_update: bool = False) -> TraineeAccount | None:
    stmt = select(TraineeAccount).where(TraineeAccount.trainee_key == pii.id_hash(id_number.strip()))
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def ensure_account(session: Session, trainee_key: str, id_enc: str, name: str,
                   mobile_enc: str | None, mobile_hash: str | None) -> TraineeAccount:
    """The trainee's account, created on first sight; a later call refreshes name and mobile only."""
    now = clock.now()
    stmt = insert_for(session, TraineeAccount).values(
        trainee_key=trainee_key, id_enc=id_enc, name=name, mobile_enc=mobile_enc, mobile_hash=mobile_hash,
        password_hash=None, must_change=True, failed_attempts=0, created_at=now, updated_at=now,
    ).on_conflict_do_nothing(index_elements=["trainee_key"])
    session.execute(stmt)  # concurrent first sights of one trainee: one row, no IntegrityError
    account = session.scalars(select(TraineeAccount).where(TraineeAccount.trainee_key == trainee_key)
                              .execution_options(populate_existing=True)).one()
    if account.name != name:
        account.name = name
    if mobile_enc and mobile_hash and account.mobile_hash != mobile_hash:
        account.mobile_enc, account.mobile_hash = mobile_enc, mobile_hash
    if not account.id_enc:
        account.id_enc = id_enc
    session.flush()
    return account


def _lock_message(until: dt.datetime) -> str:
    return (f"密码连续输错 {max_failures()} 次，账号已锁定至 {clock.fmt(until)}（北京时间），"
            "请届时再试。")


def authenticate(session: Session, id_number: str, password: str) -> TraineeAccount:
    """The account of this ID number if the password is right; otherwise a refusal (KeptError when counted)."""
    id_number = (id_number or "").strip()
    account = find_account(session, id_number, for_update=True) if id_number else None
    if account is None:
        _verify_hash(_dummy_hash(), password or "")
        raise AppError(401, "bad_credentials", BAD_CREDENTIALS)
    now = clock.now()
    if account.locked_until is not None:
        if now < account.locked_until:
            raise AppError(429, "account_locked", _lock_message(account.locked_until),
                           {"locked_until": account.locked_until.isoformat()})
        account.locked_until = None
        account.failed_attempts = 0
    if not _matches(account, password or ""):
        account.failed_attempts = (account.failed_attempts or 0) + 1
        if account.failed_attempts >= max_failures():
            account.locked_until = now + dt.timedelta(minutes=lock_minutes())
            account.failed_attempts = 0
            log.info("trainee account %s locked", account.id)  # the row id only: never the ID number
            raise KeptError(429, "account_locked", _lock_message(account.locked_until),
                            {"locked_until": account.locked_until.isoformat()})
        raise KeptError(401, "bad_credentials", BAD_CREDENTIALS)
    account.failed_attempts = 0
    account.locked_until = None
    return account


# ---------------------------------------------------------------- passwords

_LETTER = re.compile(r"[A-Za-z]")
_DIGIT = re.compile(r"\d")


def validate_new_password(account: TraineeAccount, new: str) -> None:
    """The minimal policy; a refusal is a 422 with the reason under fields["new_password"]."""

    def refuse(message: str) -> None:
        raise AppError(422, "weak_password", message, {"new_password": message})

    new = new or ""
    if len(new) < MIN_LENGTH:
        refuse(f"新密码至少需要 {MIN_LENGTH} 位。")
    if len(new) > MAX_LENGTH:
        refuse(f"新密码不能超过 {MAX_LENGTH} 位。")
    if new != new.strip() or re.search(r"\s", new):
        refuse("新密码不能包含空格。")
    # the initial pinyin, also with digits or signs added (zengxiaoming1990), is the first thing anyone tries
    letters_only = re.sub(r"[^a-z]", "", normalize_password_input(new))
    if letters_only and letters_only in initial_password_candidates(account.name):
        refuse("新密码不能是姓名拼音（初始密码），也不能只在拼音后加数字，请另设一个。")
    if not (_LETTER.search(new) and _DIGIT.search(new)):
        refuse("新密码需同时包含字母和数字。")


def set_password(session: Session, account: TraineeAccount, new: str) -> None:
    """Store a new password after the policy (also for 忘记密码 once the SMS code is verified)."""
    validate_new_password(account, new)
    account.password_hash = hash_password(new)
    account.must_change = False
    account.failed_attempts = 0
    account.locked_until = None
    account.password_changed_at = clock.now()
    session.flush()
    log.info("trainee account %s changed its password", account.id)


def change_password(session: Session, account: TraineeAccount, old: str, new: str) -> None:
    if not _matches(account, old or ""):
        raise AppError(400, "wrong_old_password", "原密码不正确。", {"old_password": "原密码不正确。"})
    if account.password_hash is not None and old == new:
        raise AppError(422, "weak_password", "新密码不能与原密码相同。", {"new_password": "新密码不能与原密码相同。"})
    set_password(session, account, new)
