"""Login rules in one place, used by the pages and the JSON API alike.

Steps: password -> (first login: add 机构负责人) -> pick a person -> SMS code -> verify -> Principal.
Between the password and the SMS step the state is a signed, short-lived "pre-login" token
(salt "cme-login", 15 minutes) carried in the cme_pre cookie (pages) or the body (API).

SMS rules (services.common.sms_codes, shared with credits' 忘记密码): 6-digit code (secrets), valid 5 minutes,
at most 5 wrong tries, no resend to the same mobile within 60 s, a daily cap per mobile (CME_SMS_DAILY_CAP,
default 10; Asia/Shanghai day). Every time is read from services.common.clock.now().
"""

from __future__ import annotations

import functools
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.common import clock, pii, sms_codes
from services.common.auth import Principal, issue_token, read_token
from services.common.errors import AppError
from services.common.sms_codes import PendingSms

from ..audit import models as audit
from ..institutions.models import Institution, InstitutionAdmin, Reviewer
from ..institutions.services import add_admin, admin_note, hash_password, remove_admin, verify_password
from .models import SmsCode

log = logging.getLogger(__name__)

PRE_COOKIE = "cme_pre"
PRE_SALT = "cme-login"
PRE_MAX_AGE = 15 * 60
KINDS = ("institution", "reviewer")
KIND_LABELS = {"institution": "申办机构", "reviewer": "继续医学教育委员会"}



@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # a real argon2 hash, so an unknown account costs as much time as a wrong password (no account probing)
    return hash_password(secrets.token_hex(16))


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
    # an account is typed as it comes (XJTU1 or xjtu1); one created before accounts ignored case keeps its exact form
    row = session.scalar(select(model).where(model.account == account)) or session.scalar(
        select(model).where(func.lower(model.account) == account.lower()).order_by(model.id).limit(1))
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
    admin = add_admin(session, inst, real_name, mobile)
    # a mobile that will receive the institution's login codes: the committee sees who added it, as a 移除
    audit.record(session, None, "institution", inst.id, "admin_added",
                 reason=admin_note("新增", admin, f"机构首次登录时以账号 {inst.account} 的密码添加"))
    return admin


# ---------------------------------------------------------------- SMS codes (rules: services.common.sms_codes)


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
    return admin.subject, admin.mobile, admin.real_name


def send_code(session: Session, pre: PreLogin, admin_id: object) -> PendingSms:
    subject, mobile, _ = _target(session, pre, admin_id)
    return sms_codes.issue_code(session, SmsCode, subject, mobile, purpose="login", action="登录")


def forget_code(session: Session, code_id: int) -> None:
    """Undo a code whose SMS never left, so the 60 s rule does not block the retry."""
    sms_codes.forget_code(session, SmsCode, code_id)


def verify_code(session: Session, pre: PreLogin, admin_id: object, code: str) -> Principal:
    subject, mobile, _ = _target(session, pre, admin_id)
    sms_codes.verify_code(session, SmsCode, subject, mobile, code, purpose="login")
    if pre.kind == "reviewer":
        r = _reviewer(session, pre)
        return Principal(role="reviewer", subject=f"reviewer:{r.id}", name=r.name, reviewer_id=r.id)
    inst = _institution(session, pre)
    admin_pk = int(subject.rsplit(":", 1)[1])
    admin = session.get(InstitutionAdmin, admin_pk)
    log.info("login of %s completed by sms", subject)
    return Principal(role="institution", subject=subject, name=inst.name, institution_id=inst.id, admin_id=admin_pk,
                     person=admin.real_name if admin else None)


# ---------------------------------------------------------------- responsible persons, once logged in


def list_admins(session: Session, principal: Principal) -> list[InstitutionAdmin]:
    inst = session.get(Institution, principal.institution_id)
    return list(inst.admins) if inst else []


def own_admin(session: Session, principal: Principal, admin_id: int) -> InstitutionAdmin:
    """A 机构负责人 of the signed-in institution; another institution's (or a removed one) is not found."""
    admin = session.get(InstitutionAdmin, admin_id)
    if admin is None or admin.institution_id != principal.institution_id:
        raise AppError(404, "not_found", "该机构负责人不存在（可能已被移除），请刷新页面。")
    return admin


def remove_own_admin(session: Session, principal: Principal, admin_id: int) -> InstitutionAdmin:
    """移除 a 机构负责人 who left: no more codes to her mobile, and her sessions end (the caller ends them before
    its commit). Not the person signed in: another one does it, so nobody locks herself out."""
    admin = own_admin(session, principal, admin_id)
    if admin.id == principal.admin_id:
        raise AppError(409, "admin_is_you", "不能移除当前登录的负责人本人，请由其他负责人登录后操作。")
    return remove_admin(session, admin.institution, admin.id)


def add_own_admin(session: Session, principal: Principal, real_name: str, mobile: str) -> InstitutionAdmin:
    inst = session.get(Institution, principal.institution_id)
    if inst is None:
        raise AppError(404, "not_found", "您要找的内容不存在。")
    admin = add_admin(session, inst, real_name, mobile)
    audit.record(session, principal, "institution", inst.id, "admin_added",
                 reason=admin_note("新增", admin, "机构在“机构负责人”页面添加"))
    return admin
