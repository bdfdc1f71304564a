"""Login rules in one place, used by the pages and the JSON API alike.

Steps: password -> (first login: add 机构负责人) -> pick a person -> SMS code -> verify -> Principal.
Between the password and the SMS step the state is a signed, short-lived "pre-login" token
(salt "cme-login", 15 minutes) carried in the cme_pre cookie (pages) or the body (API).

SMS rules: 6-digit code (secrets), valid 5 minutes, at most 5 wrong tries, no resend to the same
mobile within 60 s, a daily cap per mobile (CME_SMS_DAILY_CAP, default 10; Asia/Shanghai day).
Every time is read from services.common.clock.now().
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from services.common import clock, pii
from services.common.auth import Principal, issue_token, read_token
from services.common.config import env, get_settings
from services.common.errors import AppError

from .. import sms
from ..institutions.models import Institution, InstitutionAdmin, Reviewer
from ..institutions.services import add_admin, hash_password, verify_password
from .models import MAX_ATTEMPTS, SmsCode

log = logging.getLogger(__name__)

PRE_COOKIE = "cme_pre"
PRE_SALT = "cme-login"
PRE_MAX_AGE = 15 * 60
CODE_TTL = dt.timedelta(minutes=5)
RESEND_AFTER = dt.timedelta(seconds=60)
KINDS = ("institution", "reviewer")
KIND_LABELS = {"institution": "申办机构", "reviewer": "继续医学教育委员会"}



@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # a real argon2 hash, so an unknown account costs as much time as a wrong password (no account probing)
    return hash_password(secrets.token_hex(16))


class KeptError(AppError):
    """A refusal whose side effect (a counted wrong try) must still be committed."""


def daily_cap() -> int:
    try:
        return max(1, int(env("CME_SMS_DAILY_CAP", "10") or 10))
    except ValueError:
        return 10


# ---------------------------------------------------------------- pre-login token


@dataclass(frozen=True)
class PreLogin:
    kind: str  # institution | reviewer
    id: int  # institution id or reviewer id
    first: bool  # the institution had no responsible person at password time: it may add some now
    issued: int  # clock.now() timestamp, so a moved clock ages the token like everything else

    def token(self) -> str:
        # issue_token signs a Principal; the pre-login state rides in its fields under its own salt,
        # so a pre-login token is never accepted as a session token (different salt) and vice versa.
        p = Principal(role=self.kind, subject=f"pre:{self.kind}:{self.id}:{int(self.first)}:{self.issued}")
        return issue_token(p, salt=PRE_SALT)


def read_pre(token: str | None) -> PreLogin:
    expired = AppError(401, "login_expired", "登录已过期，请重新输入账号和密码。")
    data = read_token(token or "", salt=PRE_SALT, max_age=PRE_MAX_AGE)
    if not data:
        raise expired
    try:
        _, kind, ident, first, issued = str(data.get("subject", "")).split(":")
        pre = PreLogin(kind=kind, id=int(ident), first=first == "1", issued=int(issued))
    except ValueError:
        raise expired from None
    if pre.kind not in KINDS or clock.now().timestamp() - pre.issued > PRE_MAX_AGE:
        raise expired
    return pre


# ---------------------------------------------------------------- step 1: password


def password_login(session: Session, kind: str, account: str, password: str) -> PreLogin:
    model = Institution if kind == "institution" else Reviewer
    row = session.scalar(select(model).where(model.account == account))
    ok = verify_password(row.password_hash if row else _dummy_hash(), password)
    if row is None or not ok:
        raise AppError(401, "bad_credentials", "账号或密码不正确，请重新输入。",
                       {"password": "账号或密码不正确。"})
    if not row.active:
        raise AppError(403, "account_disabled", "该账号已停用，请联系继续医学教育委员会。")
    first = kind == "institution" and not row.admins
    return PreLogin(kind=kind, id=row.id, first=first, issued=int(clock.now().timestamp()))


def _institution(session: Session, pre: PreLogin) -> Institution:
    inst = session.get(Institution, pre.id) if pre.kind == "institution" else None
    if inst is None or not inst.active:
        raise AppError(401, "login_expired", "登录已过期，请重新输入账号和密码。")
    return inst


def _reviewer(session: Session, pre: PreLogin) -> Reviewer:
    r = session.get(Reviewer, pre.id) if pre.kind == "reviewer" else None
    if r is None or not r.active:
        raise AppError(401, "login_expired", "登录已过期，请重新输入账号和密码。")
    return r


def needs_admins(session: Session, pre: PreLogin) -> bool:
    return pre.kind == "institution" and not _institution(session, pre).admins


@dataclass(frozen=True)
class Choice:
    """One person the code can be sent to, as the select shows it."""

    id: int | str
    real_name: str
    mobile_masked: str

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "real_name": self.real_name, "mobile_masked": self.mobile_masked}


def choices(session: Session, pre: PreLogin) -> list[Choice]:
    if pre.kind == "reviewer":
        r = _reviewer(session, pre)
        return [Choice("reviewer", r.name, pii.mask_mobile(r.mobile))]
    return [Choice(a.id, a.real_name, a.masked_mobile) for a in _institution(session, pre).admins]


# ---------------------------------------------------------------- first login: 机构负责人


def add_first_admin(session: Session, pre: PreLogin, real_name: str, mobile: str) -> InstitutionAdmin:
    """Only during a first login: otherwise the password alone could add a mobile and skip the SMS step."""
    inst = _institution(session, pre)
    if not pre.first:
        raise AppError(403, "admins_exist", "本机构已登记机构负责人。如需新增，请登录后在“机构负责人”页面添加。")
    return add_admin(session, inst, real_name, mobile)


# ---------------------------------------------------------------- SMS codes


def _code_hash(subject: str, code: str) -> str:
    # keyed: a 6-digit code has only a million values, a plain hash would be reversed at once
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"sms:{subject}:{code}".encode(), hashlib.sha256).hexdigest()


def _target(session: Session, pre: PreLogin, admin_id: object) -> tuple[str, str, str]:
    """(subject, mobile, display name) of the person picked for this login."""
    if pre.kind == "reviewer":
        r = _reviewer(session, pre)
        return f"reviewer:{r.id}", r.mobile, r.name
    inst = _institution(session, pre)
    try:
        wanted = int(str(admin_id))
    except ValueError:
        raise AppError(422, "invalid_input", "请选择接收验证码的机构负责人。",
                       {"admin_id": "请选择机构负责人。"}) from None
    admin = session.get(InstitutionAdmin, wanted)
    if admin is None or admin.institution_id != inst.id:  # another institution's person: not found
        raise AppError(404, "not_found", "所选机构负责人不存在，请重新选择。", {"admin_id": "请重新选择。"})
    return f"inst:{inst.id}:admin:{admin.id}", admin.mobile, admin.real_name


def _lock_mobile(session: Session, mobile_h: str) -> None:
    """Serialise sends to one mobile so two quick clicks cannot both pass the 60 s and daily checks."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": "sms:" + mobile_h})


@dataclass
class PendingSms:
    """A code row written in this transaction; deliver() only after the commit (DESIGN: messages after commit)."""

    code_id: int
    mobile: str
    text: str
    params: tuple[str, ...]
    mobile_masked: str
    expires_at: dt.datetime

    def deliver(self, on_failure: Callable[[int], None]) -> None:
        try:
            sms.send_sms(self.mobile, self.text, self.params)
        except Exception as exc:  # noqa: BLE001 - any provider failure becomes one Chinese refusal
            log.warning("sms delivery failed for code %s: %s", self.code_id, type(exc).__name__)
            on_failure(self.code_id)
            raise AppError(503, "sms_failed", "短信发送失败，请稍后重新获取验证码。") from None


def send_code(session: Session, pre: PreLogin, admin_id: object) -> PendingSms:
    subject, mobile, _ = _target(session, pre, admin_id)
    mh = pii.mobile_hash(mobile)
    _lock_mobile(session, mh)
    now = clock.now()
    last = session.scalar(select(func.max(SmsCode.created_at)).where(SmsCode.mobile_hash == mh))
    if last is not None and now - last < RESEND_AFTER:
        wait = int((RESEND_AFTER - (now - last)).total_seconds()) + 1
        raise AppError(429, "sms_too_soon", f"验证码已发送，请 {wait} 秒后再重新获取。")
    since = clock.local_midnight_utc(clock.today_local())
    sent_today = session.scalar(select(func.count(SmsCode.id)).where(SmsCode.mobile_hash == mh,
                                                                     SmsCode.created_at >= since)) or 0
    cap = daily_cap()
    if sent_today >= cap:
        raise AppError(429, "sms_daily_cap", f"该手机号今日获取验证码已达 {cap} 次上限，请明天再试。")
    code = f"{secrets.randbelow(10**6):06d}"
    row = SmsCode(subject=subject, purpose="login", mobile_hash=mh, code_hash=_code_hash(subject, code),
                  created_at=now, expires_at=now + CODE_TTL, attempts=0)
    session.add(row)
    session.flush()
    minutes = int(CODE_TTL.total_seconds() // 60)
    text_ = f"【继续医学教育管理系统】您的登录验证码为{code}，{minutes}分钟内有效。如非本人操作，请忽略本短信。"
    log.info("sms code %s issued for %s", row.id, subject)  # subject ids only: never the mobile or the code
    return PendingSms(row.id, mobile, text_, (code, str(minutes)), pii.mask_mobile(mobile), row.expires_at)


def forget_code(session: Session, code_id: int) -> None:
    """Undo a code whose SMS never left, so the 60 s rule does not block the retry."""
    row = session.get(SmsCode, code_id)
    if row is not None:
        session.delete(row)


def verify_code(session: Session, pre: PreLogin, admin_id: object, code: str) -> Principal:
    subject, mobile, _ = _target(session, pre, admin_id)
    row = session.scalar(select(SmsCode).where(SmsCode.subject == subject, SmsCode.purpose == "login")
                         .order_by(SmsCode.created_at.desc(), SmsCode.id.desc()).limit(1).with_for_update())
    if row is None or row.used_at is not None or row.mobile_hash != pii.mobile_hash(mobile):
        raise AppError(400, "sms_not_sent", "请先点击“获取验证码”，再输入收到的验证码。", {"code": "请先获取验证码。"})
    if row.attempts >= MAX_ATTEMPTS:
        raise AppError(429, "sms_too_many_attempts",
                       f"验证码已输错 {MAX_ATTEMPTS} 次，已失效，请重新获取验证码。", {"code": "验证码已失效。"})
    if clock.now() >= row.expires_at:
        raise AppError(400, "sms_expired", "验证码已过期（5分钟内有效），请重新获取验证码。",
                       {"code": "验证码已过期。"})
    if not hmac.compare_digest(row.code_hash, _code_hash(subject, code)):
        row.attempts += 1
        left = MAX_ATTEMPTS - row.attempts
        if left <= 0:
            raise KeptError(429, "sms_too_many_attempts",
                            f"验证码已输错 {MAX_ATTEMPTS} 次，已失效，请重新获取验证码。", {"code": "验证码已失效。"})
        raise KeptError(400, "sms_wrong_code", f"验证码不正确，还可以再试 {left} 次。", {"code": "验证码不正确。"})
    row.used_at = clock.now()
    if pre.kind == "reviewer":
        r = _reviewer(session, pre)
        return Principal(role="reviewer", subject=f"reviewer:{r.id}", name=r.name, reviewer_id=r.id)
    inst = _institution(session, pre)
    admin_pk = int(subject.rsplit(":", 1)[1])
    log.info("login of %s completed by sms", subject)
    return Principal(role="institution", subject=subject, name=inst.name, institution_id=inst.id, admin_id=admin_pk)


# ---------------------------------------------------------------- responsible persons, once logged in


def list_admins(session: Session, principal: Principal) -> list[InstitutionAdmin]:
    inst = session.get(Institution, principal.institution_id)
    return list(inst.admins) if inst else []


def add_own_admin(session: Session, principal: Principal, real_name: str, mobile: str) -> InstitutionAdmin:
    inst = session.get(Institution, principal.institution_id)
    if inst is None:
        raise AppError(404, "not_found", "您要找的内容不存在。")
    return add_admin(session, inst, real_name, mobile)
