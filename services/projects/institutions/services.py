"""Creating institutions and reviewers: used by the committee's pages, the Excel import and the demo data."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common import pii
from services.common.errors import AppError

from .models import Institution, InstitutionAdmin, Reviewer

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def create_institution(session: Session, account: str, name: str, password: str) -> Institution:
    if session.scalar(select(Institution.id).where(Institution.account == account)):
        raise AppError(409, "account_taken", f"账号“{account}”已存在。")
    if session.scalar(select(Institution.id).where(Institution.name == name)):
        raise AppError(409, "name_taken", f"机构“{name}”已存在。")
    inst = Institution(account=account, name=name, password_hash=hash_password(password))
    session.add(inst)
    session.flush()
    return inst


def add_admin(session: Session, institution: Institution, real_name: str, mobile: str) -> InstitutionAdmin:
    h = pii.mobile_hash(mobile)
    if session.scalar(select(InstitutionAdmin.id).where(InstitutionAdmin.institution_id == institution.id,
                                                        InstitutionAdmin.mobile_hash == h)):
        raise AppError(409, "admin_exists", "该手机号码已登记为本机构负责人。", {"mobile": "该手机号码已登记。"})
    admin = InstitutionAdmin(institution_id=institution.id, real_name=real_name,
                             mobile_enc=pii.encrypt(mobile), mobile_hash=h)
    session.add(admin)
    session.flush()
    return admin


def create_reviewer(session: Session, account: str, name: str, password: str, mobile: str) -> Reviewer:
    if session.scalar(select(Reviewer.id).where(Reviewer.account == account)):
        raise AppError(409, "account_taken", f"账号“{account}”已存在。")
    reviewer = Reviewer(account=account, name=name, password_hash=hash_password(password),
                        mobile_enc=pii.encrypt(mobile), mobile_hash=pii.mobile_hash(mobile))
    session.add(reviewer)
    session.flush()
    return reviewer
