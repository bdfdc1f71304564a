"""Trainee account rules: creation on first sight, login with ID number and password, lock-out, password change.

- ensure_account: created once per trainee key; later calls leave its name, mobile and password as they are.
- open_accounts: the accounts of trainees first seen in a message of check-ins, opened in one statement; an
  existing account is left as it is.
- authenticate: while the initial password is in force (password_hash NULL) the password is any accepted
  pinyin spelling of the name (passwords.initial_password_candidates, case and spaces ignored); afterwards
  the argon2 hash. CME_TRAINEE_MAX_FAILURES wrong tries in a row (default 5) lock the account for
  CME_TRAINEE_LOCK_MINUTES (default 15), read from services.common.clock; the refusal says until when
  (Asia/Shanghai). An unknown ID number gets the same refusal as a wrong password.
- change_password: old password (a wrong one counted with the login's and locking alike), then a new one of at
  least 8 characters with letters and digits, not the initial pinyin (even with digits added) and not the old password.
- 忘记密码: request_reset sends a code to the mobile on record (rules of services.common.sms_codes: 5 minutes,
  5 wrong tries, 60 s resend, daily cap); reset_password checks it and sets the new password (must_change off,
  failed tries and lock cleared). An ID number without an account (or without a mobile) gets the same answer,
  with a stable made-up masked mobile, and no SMS leaves.

A counted wrong try is raised as KeptError: the caller commits the session before answering (the count
must survive the refusal); any other AppError is rolled back.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import math
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import String, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from services.common import clock, pii, sms_codes
from services.common.audit import record_audit
from services.common.auth import Principal
from services.common.config import env, redis_client
from services.common.db import insert_for, insert_rows_or_skip
from services.common.errors import AppError, KeptError
from services.common.formats import fmt_credits
from services.common.logs import brief
from services.common.sms_codes import CODE_TTL, PendingSms

from ..attendance.models import AttendanceRecord, scans_by_offering
from ..audit import AuditLog
from .models import SmsCode, TraineeAccount
from .passwords import initial_password_candidates, normalize_password_input

__all__ = ["KeptError", "ResetRequest", "authenticate", "change_password", "ensure_account", "find_account",
           "forget_code", "known_trainees", "lock_minutes", "lock_notice", "max_failures", "open_accounts",
           "request_reset", "reset_password", "set_password", "validate_new_password", "BAD_CREDENTIALS", "MIN_LENGTH"]

log = logging.getLogger(__name__)

_hasher = PasswordHasher()
MIN_LENGTH = 8
MAX_LENGTH = 128
BAD_CREDENTIALS = "身份证号或密码不正确。"


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
    folded = fold_password(password)
    # a password set before folding (full-width as typed) still matches as typed
    return _verify_hash(account.password_hash, folded) or (
        folded != password and _verify_hash(account.password_hash, password))


# ---------------------------------------------------------------- accounts


def find_account(session: Session, id_number: str, *, for_update: bool = False) -> TraineeAccount | None:
    stmt = select(TraineeAccount).where(TraineeAccount.trainee_key == pii.id_hash(id_number.strip()))
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def ensure_account(session: Session, trainee_key: str, id_enc: str, name: str,
                   mobile_enc: str | None, mobile_hash: str | None) -> TraineeAccount:
    """The trainee's account, created on first sight. An existing account keeps its name and mobile: they are the
    login's and the password reset's, and a later sight (an institution's 手工录入 with another mobile typed, or
    a check-in typed differently) must not move where a reset code goes."""
    now = clock.now()
    stmt = insert_for(session, TraineeAccount).values(
        trainee_key=trainee_key, id_enc=id_enc, name=name, mobile_enc=mobile_enc, mobile_hash=mobile_hash,
        password_hash=None, must_change=True, failed_attempts=0, created_at=now, updated_at=now,
    ).on_conflict_do_nothing(index_elements=["trainee_key"])
    session.execute(stmt)  # concurrent first sights of one trainee: one row, no IntegrityError
    account = session.scalars(select(TraineeAccount).where(TraineeAccount.trainee_key == trainee_key)
                              .execution_options(populate_existing=True)).one()
    if not account.id_enc:
        account.id_enc = id_enc
    session.flush()
    return account


def open_accounts(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Accounts opened for the trainees of these rows (trainee_key, id_enc, name, mobile_enc, mobile_hash) who have
    none, in one statement: {trainee_key: new id}. An existing account is left as it is (a later check-in typed
    with another name or mobile does not change a login); of two rows of one trainee the first opens it."""
    if not rows:
        return {}
    now = clock.now()
    values = [{**row, "password_hash": None, "must_change": True, "failed_attempts": 0, "created_at": now,
               "updated_at": now} for row in rows]
    result = insert_rows_or_skip(session, TraineeAccount.__table__, values, ("trainee_key",), ("trainee_key", "id"))
    return {key: account_id for key, account_id in result}


def known_trainees(session: Session, keys: set[str]) -> set[str]:
    """Which of these trainee keys have an account."""
    if not keys:
        return set()
    query = select(TraineeAccount.trainee_key)
    if session.get_bind().dialect.name != "postgresql":
        return set(session.scalars(query.where(TraineeAccount.trainee_key.in_(keys))))
    # One look-up of the unique index per key (a correlated sub-select, which PostgreSQL does not turn into a join),
    # whatever the table's statistics say. Without any (a new table, or autovacuum off), an IN list of a message's
    # 50 keys was planned as a scan of every account comparing each with all 50, and a join as a scan and a hash,
    # so copying a check-in grew slower with every account opened (0.25 ms of PostgreSQL CPU each at 5,000
    # accounts, 1.2 ms at 20,000).
    given = func.unnest(literal(sorted(keys), ARRAY(String))).table_valued("key").render_derived("given")
    found = query.where(TraineeAccount.trainee_key == given.c.key).scalar_subquery()
    return {key for key in session.scalars(select(found).select_from(given)) if key is not None}


def _seconds_until(until: dt.datetime) -> int:
    """Retry-After of a lock: the whole seconds until it lifts (at least 1)."""
    return max(1, math.ceil((until - clock.now()).total_seconds()))


def _lock_message(until: dt.datetime) -> str:
    return (f"密码连续输错 {max_failures()} 次，账号已锁定至 {clock.fmt(until)}（北京时间），"
            "请届时再试；也可以现在通过“密码找回”用手机验证码重设密码，重设后立即解除锁定。")


UNKNOWN_LOGIN_PREFIX = "cme:unknown-login:"  # + the ID number's keyed hash (the tests give each run its own)


def _bad_credentials(tries: int | None) -> str:
    """The refusal of a wrong password, saying how many tries are left before the lock (the same for an ID number
    without an account, counted alike, so it tells nothing about who has one)."""
    if tries is None:
        return BAD_CREDENTIALS
    left = max_failures() - tries
    return (f"{BAD_CREDENTIALS[:-1]}，还可以再试 {left} 次；再输错将锁定 {lock_minutes()} 分钟"
            "（也可通过“密码找回”重设密码）。")


def _count_unknown_failure(id_number: str) -> int | None:
    """An ID number without an account locks after as many wrong tries as one with an account, with the same
    answer: otherwise the lock message would tell who has an account (the 忘记密码 page is careful not to).
    Counted in Redis for a day; without Redis the plain refusal stands."""
    key = UNKNOWN_LOGIN_PREFIX + pii.id_hash(id_number)
    now = clock.now()
    try:
        client = redis_client()
        until_text = client.hget(key, "until")
        until = dt.datetime.fromisoformat(until_text.decode()) if until_text else None
        if until is not None and now < until:
            raise AppError(429, "account_locked", _lock_message(until), {"locked_until": until.isoformat()},
                           retry_after=_seconds_until(until))
        if until is not None:  # the lock ran out: counting starts again, as for an account
            client.delete(key)
        tries = client.hincrby(key, "tries", 1)
        client.expire(key, 86400)
        if tries >= max_failures():
            until = now + dt.timedelta(minutes=lock_minutes())
            client.hset(key, mapping={"until": until.isoformat(), "tries": 0})
            raise AppError(429, "account_locked", _lock_message(until), {"locked_until": until.isoformat()},
                           retry_after=_seconds_until(until))
        return int(tries)
    except redis.RedisError as exc:
        log.warning("wrong tries of unknown ID numbers not counted (%s)", brief(exc))
        return None


def authenticate(session: Session, id_number: str, password: str) -> TraineeAccount:
    """The account of this ID number if the password is right; otherwise a refusal (KeptError when counted)."""
    id_number = (id_number or "").strip()
    account = find_account(session, id_number, for_update=True) if id_number else None
    if account is None:
        _verify_hash(_dummy_hash(), password or "")
        tries = _count_unknown_failure(id_number) if id_number else None
        raise AppError(401, "bad_credentials", _bad_credentials(tries))
    now = clock.now()
    _refuse_while_locked(account, now)
    if not _matches(account, password or ""):
        _count_wrong_password(account, now, lambda tries: KeptError(401, "bad_credentials", _bad_credentials(tries)))
    account.failed_attempts = 0
    account.locked_until = None
    return account


def lock_notice(account: TraineeAccount) -> str | None:
    """The lock refusal while the account is locked (the password page says it before she types), else None."""
    locked = account.locked_until
    return _lock_message(locked) if locked is not None and clock.now() < locked else None


def _refuse_while_locked(account: TraineeAccount, now: dt.datetime) -> None:
    """A locked account is refused before any password is checked; a lock that ran out starts the count again."""
    if account.locked_until is not None:
        if now < account.locked_until:
            raise AppError(429, "account_locked", _lock_message(account.locked_until),
                           {"locked_until": account.locked_until.isoformat()},
                           retry_after=_seconds_until(account.locked_until))
        account.locked_until = None
        account.failed_attempts = 0


def _count_wrong_password(account: TraineeAccount, now: dt.datetime, refusal: Callable[[int], KeptError]) -> NoReturn:
    """One more wrong password in a row (login's or the change's 原密码: one count, so guessing is bounded
    either way); the max_failures()-th locks the account, else `refusal(tries so far)`."""
    account.failed_attempts = (account.failed_attempts or 0) + 1
    if account.failed_attempts >= max_failures():
        account.locked_until = now + dt.timedelta(minutes=lock_minutes())
        account.failed_attempts = 0
        log.info("trainee account %s locked", account.id)  # the row id only: never the ID number
        raise KeptError(429, "account_locked", _lock_message(account.locked_until),
                        {"locked_until": account.locked_until.isoformat()},
                        retry_after=_seconds_until(account.locked_until))
    raise refusal(account.failed_attempts)


# ---------------------------------------------------------------- passwords

_LETTER = re.compile(r"[A-Za-z]")
_DIGIT = re.compile(r"\d")


def fold_password(password: str) -> str:
    """A password as stored and checked: NFKC, so abc１２３ typed on a phone keyboard in 全角 mode is abc123 (the
    trainee's walk set it one way and could not log in the other)."""
    return unicodedata.normalize("NFKC", password or "")


def validate_new_password(account: TraineeAccount, new: str) -> None:
    """The minimal policy; a refusal is a 422 with the reason under fields["new_password"]."""

    def refuse(message: str) -> None:
        raise AppError(422, "weak_password", message, {"new_password": message})

    new = fold_password(new)
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
    account.password_hash = hash_password(fold_password(new))
    account.must_change = False
    account.failed_attempts = 0
    account.locked_until = None
    account.password_changed_at = clock.now()
    session.flush()
    log.info("trainee account %s changed its password", account.id)


WRONG_OLD_PASSWORD = "原密码不正确。"


def _wrong_old_password(tries: int) -> KeptError:
    left = max_failures() - tries
    message = (f"{WRONG_OLD_PASSWORD[:-1]}，还可以再试 {left} 次；再输错将锁定 {lock_minutes()} 分钟"
               "（也可通过“密码找回”重设密码）。")
    return KeptError(400, "wrong_old_password", message, {"old_password": WRONG_OLD_PASSWORD})


def change_password(session: Session, account: TraineeAccount, old: str, new: str) -> None:
    """Wrong 原密码 are counted with the login's wrong passwords and lock alike (KeptError): a session left open
    on a shared phone must not let anyone guess the password without limit."""
    session.flush()  # the refresh must not drop a change not yet written
    session.refresh(account, with_for_update=True)  # parallel wrong tries are each counted, as at the login
    now = clock.now()
    _refuse_while_locked(account, now)
    if not _matches(account, old or ""):
        _count_wrong_password(account, now, _wrong_old_password)
    if account.password_hash is not None and fold_password(old) == fold_password(new):
        raise AppError(422, "weak_password", "新密码不能与原密码相同。", {"new_password": "新密码不能与原密码相同。"})
    set_password(session, account, new)


# ---------------------------------------------------------------- 忘记密码 (SMS code to the mobile on record)

RESET_PURPOSE = "reset"
_MASK_PREFIXES = ("133", "135", "136", "137", "138", "139", "150", "151", "152", "158", "159", "177", "180",
                  "181", "186", "187", "188", "189")


@dataclass
class ResetRequest:
    """The answer to 忘记密码: the same shape whether or not the ID number has an account."""

    pending: PendingSms | None  # None: nothing to send (unknown ID number, or no mobile on record)
    mobile_masked: str
    expires_in: int


def _mobile_on_record(account: TraineeAccount | None) -> str | None:
    if account is None or not account.mobile_enc:
        return None
    try:
        return pii.decrypt(account.mobile_enc)
    except ValueError:  # a key was dropped before re-encryption
        return None


def _made_up_mask(id_number: str) -> str:
    # stable per ID number (asking twice shows the same), derived from the keyed ID hash: reveals nothing
    digest = int(hashlib.sha256(("forgot-mask:" + pii.id_hash(id_number)).encode()).hexdigest(), 16)
    return f"{_MASK_PREFIXES[digest % len(_MASK_PREFIXES)]}****{(digest // 97) % 10000:04d}"


UNKNOWN_RESET_PREFIX = "cme:unknown-reset:"  # + the ID number's keyed hash (the tests give each run its own)
# How long a code asked for is remembered, for an ID number with an account as for one without (whose "code" is
# a Redis record of when it was asked and how many wrong codes were tried): past it, both are "请先获取验证码".
RESET_MEMORY = dt.timedelta(days=1)


def _pretend_code(id_number: str) -> tuple[Any, str, dict[str, Any] | None]:
    """(Redis, key, the record of the code asked for this ID number without an account: at, tries, day, sent)."""
    key = UNKNOWN_RESET_PREFIX + pii.id_hash(id_number)
    client = redis_client()
    raw = client.get(key)
    try:
        record = json.loads(raw) if raw else None
    except ValueError:
        record = None
    return client, key, record if isinstance(record, dict) else None


def _as_if_sent(id_number: str) -> None:
    """忘记密码 for an ID number without an account (or without a mobile) meets the same 60 s rule and daily cap
    as one with an account, and leaves a pretend code that the reset step refuses as it would a real one:
    otherwise the answers told who has an account (found by the security walks). Kept in Redis; without Redis
    the plain answer stands."""
    now = clock.now()
    today = clock.today_local().isoformat()
    try:
        client, key, record = _pretend_code(id_number)
        record = record or {}
        sms_codes.refuse_too_soon(dt.datetime.fromisoformat(record["at"]) if "at" in record else None, now)
        sent = int(record.get("sent", 0)) if record.get("day") == today else 0
        sms_codes.refuse_over_cap(sent)
        client.set(key, json.dumps({"at": now.isoformat(), "tries": 0, "day": today, "sent": sent + 1}),
                   ex=int(RESET_MEMORY.total_seconds()))
    except redis.RedisError as exc:
        log.warning("a reset asked for an ID number without an account was not remembered (%s)", brief(exc))


def _as_if_checked(id_number: str) -> AppError:
    """The refusal a code typed for an ID number without an account (or without a mobile) gets: what a wrong
    code of a real account would get at the same point (not asked, too many tries, expired, wrong)."""
    now = clock.now()
    try:
        client, key, record = _pretend_code(id_number)
        if record is None or "at" not in record or now - dt.datetime.fromisoformat(record["at"]) >= RESET_MEMORY:
            return sms_codes.not_sent()
        tries = int(record.get("tries", 0))
        if tries >= sms_codes.MAX_ATTEMPTS:
            return sms_codes.too_many_attempts()
        if now >= dt.datetime.fromisoformat(record["at"]) + CODE_TTL:
            return sms_codes.expired()
        client.set(key, json.dumps({**record, "tries": tries + 1}), keepttl=True)
        return sms_codes.wrong_code(tries + 1)
    except (redis.RedisError, ValueError) as exc:
        log.warning("a reset code typed for an ID number without an account was not checked (%s)", brief(exc))
        return sms_codes.not_sent()


def request_reset(session: Session, id_number: str) -> ResetRequest:
    """Write a reset code for the account of this ID number; deliver the returned SMS after the commit."""
    id_number = (id_number or "").strip()
    account = find_account(session, id_number) if id_number else None
    mobile = _mobile_on_record(account)
    ttl = int(CODE_TTL.total_seconds())
    if account is None or mobile is None:
        log.info("password reset asked without an account or a mobile on record: no sms")
        if id_number:
            _as_if_sent(id_number)
        return ResetRequest(None, _made_up_mask(id_number), ttl)
    pending = sms_codes.issue_code(session, SmsCode, f"trainee:{account.id}", mobile, purpose=RESET_PURPOSE,
                                   action="重置密码")
    log.info("password reset code issued for trainee account %s", account.id)
    return ResetRequest(pending, pending.mobile_masked, ttl)


def forget_code(session: Session, code_id: int) -> None:
    """Undo a code whose SMS never left, so the 60 s rule does not block the retry."""
    sms_codes.forget_code(session, SmsCode, code_id)


def reset_password(session: Session, id_number: str, code: str, new: str) -> TraineeAccount:
    """Check the code sent to the mobile on record, then set the new password (a wrong code: KeptError)."""
    id_number = (id_number or "").strip()
    account = find_account(session, id_number, for_update=True) if id_number else None
    mobile = _mobile_on_record(account)
    if account is None or mobile is None:
        raise _as_if_checked(id_number)  # as for an account: nothing tells who has one
    sms_codes.verify_code(session, SmsCode, f"trainee:{account.id}", mobile, code, purpose=RESET_PURPOSE,
                          not_before=clock.now() - RESET_MEMORY)
    set_password(session, account, new)  # a refused password rolls back, and the code stays usable
    log.info("trainee account %s reset its password by sms", account.id)
    return account


def open_missing_accounts(session: Session, batch: int = 500) -> int:
    """Accounts for trainees credits has check-ins of but no account (seen before accounts existed, or a
    first sight that could not open one); their latest check-in gives the name and mobile. Idempotent;
    commits per batch so a long backfill keeps what it did. Returns how many accounts were opened."""
    r = AttendanceRecord
    missing = (select(r.trainee_key).where(~select(TraineeAccount.id)
                                           .where(TraineeAccount.trainee_key == r.trainee_key).exists())
               .distinct().limit(batch))
    opened = 0
    while keys := list(session.scalars(missing)):
        latest = session.execute(select(r.trainee_key, r.id_enc, r.name, r.mobile_enc)
                                 .where(r.trainee_key.in_(keys)).order_by(r.trainee_key, r.scanned_at)).all()
        person = {key: (id_enc, name, mobile_enc) for key, id_enc, name, mobile_enc in latest}  # latest wins
        for key, (id_enc, name, mobile_enc) in person.items():
            try:
                mobile_hash = pii.mobile_hash(pii.decrypt(mobile_enc)) if mobile_enc else None
            except ValueError:  # a key was dropped before re-encryption: open it without a mobile
                mobile_enc, mobile_hash = None, None
            ensure_account(session, key, id_enc, name, mobile_enc, mobile_hash)
            opened += 1
        session.commit()
    return opened


# ---------------------------------------------------------------- the committee's 学员账号 desk


@dataclass
class AccountView:
    """What the committee's desk shows of one account: masked, never in clear."""

    trainee_key: str
    name: str
    id_masked: str
    mobile_masked: str
    initial_password: bool
    locked_until: dt.datetime | None
    created_at: dt.datetime
    password_changed_at: dt.datetime | None
    history: list[Any]
    offerings: list[dict[str, Any]]


def account_view(session: Session, account: TraineeAccount) -> AccountView:
    mobile = _mobile_on_record(account)
    locked = account.locked_until if account.locked_until and account.locked_until > clock.now() else None
    return AccountView(account.trainee_key, account.name, pii.masked(account.id_enc) or "****",
                       pii.mask_mobile(mobile) if mobile else "（未登记）", account.password_hash is None, locked,
                       account.created_at, account.password_changed_at, desk_history(session, account),
                       desk_offerings(session, account.trainee_key))


def _credit_status(offering: Any, award: Any, others_granted: bool, excluded: str | None = None,
                   valid_now: bool = False) -> str:
    """Why she has, or has not yet, the credit of an offering: what a clerk tells her on the phone."""
    if award is None:
        if excluded:
            return f"未授分：举办机构在筛选授分人员时未授予，原因：{excluded}"
        if offering is not None and offering.cancelled_by:  # nothing can be granted any more: no need to ask
            return f"未授分：{offering.cancelled_label}，不再授分"
        if others_granted and valid_now:  # e.g. her last scan reached credits after the 授分
            return "未授分：按举办机构保存的考勤分析为有效人员，举办机构再次点击“授分”即可授予"
        if others_granted:
            return "未授分：举办机构已授分，本人不在授分名单中（签到未达到机构考勤分析所用的规则）"
        return "未授分：举办机构尚未授分"
    value = f"{award.credit_class} {fmt_credits(award.credit_value)} 分"
    if award.state == "withdrawn":
        return f"授分已撤销（{award.withdraw_reason or '撤销'}）"
    if award.method == "manual":
        return f"手工录入 {value}（非有效学分，不计入达标）"
    if award.state == "effective":
        # 恢复: she may ask why her certificate's number changed
        restored = "（委员会恢复误撤销的授分，原学分证书作废，另发新编号证书）" if award.restored_from else ""
        return f"已生效 {value}{restored}"
    from ..offerings.models import REPORT_WAIT, wait_key  # late, as the awards above

    if award.state == "pending" and offering is not None and offering.cancelled_by:
        return f"已授分 {value}，不会生效：{REPORT_WAIT[wait_key(None, offering.cancelled_by)]}"
    state = offering.report_state if offering else "none"
    return f"已授分 {value}，待生效：{REPORT_WAIT.get(state, '执行情况反馈已审核通过，学分正在生效')}"


def desk_offerings(session: Session, trainee_key: str) -> list[dict[str, Any]]:
    """Every offering she checked in at or was granted credit for, newest first, with her check-ins and where
    her credit stands: "I attended but my credits don't show" is answered here, without SQL."""
    from ..awards.models import AwardExclusion, CreditAward  # late: awards builds on accounts
    from ..offerings.models import OfferingCredit

    scans = {r.offering_id: r for r in session.execute(scans_by_offering(trainee_key))}
    awards: dict[int, Any] = {}
    for a in session.scalars(select(CreditAward).where(CreditAward.trainee_key == trainee_key)
                             .order_by(CreditAward.id)):
        if a.offering_id not in awards or awards[a.offering_id].state == "withdrawn":
            awards[a.offering_id] = a  # a standing award over a withdrawn one
    ids = set(scans) | set(awards)
    if not ids:
        return []
    offerings = {o.offering_id: o for o in session.scalars(
        select(OfferingCredit).where(OfferingCredit.offering_id.in_(ids)))}
    granted = set(session.scalars(select(CreditAward.offering_id).where(
        CreditAward.offering_id.in_(ids), CreditAward.state != "withdrawn").distinct()))
    excluded = dict(session.execute(select(AwardExclusion.offering_id, AwardExclusion.reason).where(
        AwardExclusion.trainee_key == trainee_key, AwardExclusion.offering_id.in_(ids))).all())
    # granted to others but not to her: is she valid under the saved analysis (then the office need only grant
    # again), or short of its rule? One analysis per such offering, usually none or one.
    valid_now = {oid for oid in ids if oid in scans and oid not in awards and oid not in excluded and oid in granted
                 and _valid_under_saved_analysis(session, oid, trainee_key)}
    rows = []
    for oid in ids:
        o, scan, award = offerings.get(oid), scans.get(oid), awards.get(oid)
        rows.append({
            "offering_id": oid, "starts_on": o.starts_on if o else None, "ends_on": o.ends_on if o else None,
            "project": f"{o.project_number} {o.project_title} {o.seq_label}" if o else f"期次 {oid}",
            "institution": o.institution_name if o else "",
            "checkins": scan.checkins if scan else 0, "forced": scan.forced if scan else 0,
            "sign_outs": scan.sign_outs if scan else 0,
            "first": scan.first_scan if scan else None, "last": scan.last_scan if scan else None,
            "status": _credit_status(o, award, oid in granted, excluded.get(oid), oid in valid_now),
        })
    return sorted(rows, key=lambda r: (r["starts_on"] or dt.date.min, r["offering_id"]), reverse=True)


def _valid_under_saved_analysis(session: Session, offering_id: int, trainee_key: str) -> bool:
    from ..awards.services import input_of, latest_analysis, run  # late: awards builds on accounts

    analysis = latest_analysis(session, offering_id)
    return analysis is not None and any(a.trainee_key == trainee_key
                                        for a in run(session, offering_id, input_of(analysis)))


def find_account_by_key(session: Session, trainee_key: str) -> TraineeAccount | None:
    return session.scalar(select(TraineeAccount).where(TraineeAccount.trainee_key == trainee_key))


def desk_account(session: Session, trainee_key: str) -> TraineeAccount:
    account = session.scalar(select(TraineeAccount).where(TraineeAccount.trainee_key == trainee_key)
                             .with_for_update())
    if account is None:
        raise AppError(404, "not_found", "未找到该学员账号，请重新查询。")
    return account


def desk_change_mobile(session: Session, principal: Principal, account: TraineeAccount, mobile: str,
                       reason: str) -> None:
    """The committee records the mobile a trainee proved is hers (she came with her ID card): 忘记密码 codes go
    there from now on. Audit-logged with both masked mobiles; her open sessions end."""
    before = _mobile_on_record(account)
    if before == mobile:
        raise AppError(409, "same_mobile", "新手机号码与登记的手机号码相同，无需修改。", {"mobile": "与登记的相同。"})
    account.mobile_enc = pii.encrypt(mobile)
    account.mobile_hash = pii.mobile_hash(mobile)
    record_audit(session, AuditLog, principal, "trainee_account", account.id, "mobile_changed",
                 pii.mask_mobile(before) if before else None, pii.mask_mobile(mobile), reason)
    session.flush()


def desk_change_name(session: Session, principal: Principal, account: TraineeAccount, name: str, reason: str) -> None:
    """The name on her ID card, where the account was opened with another (a typo at the first check-in, or
    someone else typing her number): the initial password is the pinyin of this name from now on."""
    if account.name == name:
        raise AppError(409, "same_name", "新姓名与账号登记的姓名相同，无需更正。", {"name": "与登记的相同。"})
    before = account.name
    account.name = name
    record_audit(session, AuditLog, principal, "trainee_account", account.id, "name_changed", before[:40],
                 name[:40], reason)
    session.flush()


def desk_history(session: Session, account: TraineeAccount) -> list[Any]:
    """What the committee did to the account (操作记录), oldest first."""
    return list(session.scalars(select(AuditLog).where(AuditLog.object_type == "trainee_account",
                                                       AuditLog.object_id == account.id).order_by(AuditLog.id)))


def desk_reset(session: Session, principal: Principal, account: TraineeAccount, reason: str) -> None:
    """Back to the initial password (the pinyin of the name, changed at the next login) and unlocked."""
    account.password_hash = None
    account.must_change = True
    account.failed_attempts = 0
    account.locked_until = None
    record_audit(session, AuditLog, principal, "trainee_account", account.id, "password_reset", None,
                 "initial", reason)
    session.flush()
