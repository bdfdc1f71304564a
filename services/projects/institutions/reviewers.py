"""python -m services.projects.institutions.reviewers: the committee's accounts (审核员), kept by the operator.

A new installation has no account that may log in as the committee, and only the committee creates
institutions: the first (and every later) 审核员 is made here, as are the changes a clerk cannot make herself
(a new mobile for the login codes, a forgotten password, someone who left).

    reviewers list
    reviewers add ACCOUNT NAME MOBILE [--password-stdin]
    reviewers set ACCOUNT [--name NAME] [--mobile MOBILE] [--password] [--password-stdin] [--disable | --enable]

The password is asked twice on a terminal (never an argument: it would stay in the shell's history and the
process list), or read as one line from stdin with --password-stdin. A new mobile, a new password or --disable
ends the account's open sessions first (nothing is changed when Redis cannot record that). Each change is kept in
the audit log (actor 系统). Mobiles are printed masked.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import func, inspect, make_url, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from services.common import auth, pii
from services.common.config import get_settings
from services.common.errors import AppError
from services.common.identity import mobile_field
from services.common.schemas import ValidationError, ZhSchema, fields

from .. import models  # noqa: F401 - the whole schema
from ..audit import models as audit
from ..db import db
from .models import Reviewer
from .schemas import ACCOUNT, PASSWORD, REAL_NAME
from .services import create_reviewer, hash_password


class ReviewerAddSchema(ZhSchema):
    account = fields.String(required=True, validate=ACCOUNT)
    name = fields.String(required=True, validate=REAL_NAME)
    mobile = mobile_field()
    password = fields.String(required=True, validate=PASSWORD, load_only=True)


class ReviewerSetSchema(ZhSchema):
    name = fields.String(validate=REAL_NAME)
    mobile = mobile_field(required=False)
    password = fields.String(validate=PASSWORD, load_only=True)
    active = fields.Boolean()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("新密码（至少 8 位，含字母和数字）：")
    if getpass.getpass("再次输入新密码：") != first:
        raise SystemExit("两次输入的密码不一致，未做任何修改。")
    return first


def _load(schema: ZhSchema, data: dict[str, Any]) -> dict[str, Any]:
    try:
        return schema.load({k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        lines = [f"{k}: {v[0] if isinstance(v, list) else v}" for k, v in exc.normalized_messages().items()]
        raise SystemExit("未做任何修改：\n" + "\n".join(lines)) from None


def _find(session: Session, account: str) -> Reviewer:
    reviewer = session.scalars(select(Reviewer).where(func.lower(Reviewer.account) == account.lower())).first()
    if reviewer is None:
        raise SystemExit(f"没有审核员账号“{account}”（reviewers list 列出全部）。")
    return reviewer


def add(session: Session, account: str, name: str, mobile: str, password: str) -> Reviewer:
    data = _load(ReviewerAddSchema(), {"account": account, "name": name, "mobile": mobile, "password": password})
    reviewer = create_reviewer(session, data["account"], data["name"], data["password"], data["mobile"])
    audit.record(session, None, "reviewer", reviewer.id, "created",
                 reason=f"运维命令新增审核员 {reviewer.name}（{pii.mask_mobile(data['mobile'])}）")
    return reviewer


def change(session: Session, account: str, changes: dict[str, Any]) -> tuple[Reviewer, list[str], bool]:
    """Apply `changes` (name, mobile, password, active); returns the reviewer, what changed in words, and whether
    her open sessions were ended (her phone, password or account changed)."""
    reviewer = _find(session, account)
    data = _load(ReviewerSetSchema(), changes)
    said = []
    if "name" in data and data["name"] != reviewer.name:
        reviewer.name = data["name"]
        said.append("姓名")
    if "mobile" in data and pii.mobile_hash(data["mobile"]) != reviewer.mobile_hash:
        reviewer.mobile_enc, reviewer.mobile_hash = pii.encrypt(data["mobile"]), pii.mobile_hash(data["mobile"])
        said.append(f"手机号码（{pii.mask_mobile(data['mobile'])}）")
    if "password" in data:
        reviewer.password_hash = hash_password(data["password"])
        said.append("密码")
    if "active" in data and data["active"] != reviewer.active:
        reviewer.active = data["active"]
        said.append("启用" if data["active"] else "停用")
    if not said:
        raise SystemExit("与现有信息相同，未做任何修改。")
    session.flush()
    ends = bool(set(said) - {"姓名", "启用"})
    if ends:  # her open sessions end first
        try:
            auth.sessions_must_end(f"reviewer:{reviewer.id}")
        except AppError as exc:
            raise SystemExit(exc.message) from None
    audit.record(session, None, "reviewer", reviewer.id, "changed", reason="运维命令修改：" + "、".join(said))
    return reviewer, said, ends


NOT_READY = ("projects 的数据库{what}（{url}）：请先运行 make up（或 deploy.manage upgrade），并确认 .env 中的 "
             "DATABASE_URL 与运行中的系统一致（本命令读取 .env，不读取启动 make up 时的环境变量）。")


def _refuse_unready() -> None:
    """One line instead of a traceback when the database is not there yet (the first-day walk: run before make up,
    or with .env pointing elsewhere), and no empty SQLite file left behind by asking."""
    url = make_url(db.url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        raise SystemExit(NOT_READY.format(what="还不存在", url=shown))
    try:
        ready = inspect(db.engine).has_table("reviewers")
    except OperationalError:
        raise SystemExit(NOT_READY.format(what="无法连接", url=shown)) from None
    if not ready:
        raise SystemExit(NOT_READY.format(what="中还没有本系统的表", url=shown))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.projects.institutions.reviewers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    a = sub.add_parser("add")
    a.add_argument("account")
    a.add_argument("name")
    a.add_argument("mobile")
    a.add_argument("--password-stdin", action="store_true")
    s = sub.add_parser("set")
    s.add_argument("account")
    s.add_argument("--name")
    s.add_argument("--mobile")
    s.add_argument("--password", action="store_true", help="ask for a new password")
    s.add_argument("--password-stdin", action="store_true", help="read a new password from stdin")
    state = s.add_mutually_exclusive_group()
    state.add_argument("--disable", dest="active", action="store_false", default=None)
    state.add_argument("--enable", dest="active", action="store_true", default=None)
    args = parser.parse_args(argv)
    _refuse_unready()
    session = db.new_session()
    try:
        if args.cmd == "list":
            for r in session.scalars(select(Reviewer).order_by(Reviewer.id)):
                print(f"{r.account}\t{r.name}\t{pii.mask_mobile(r.mobile)}\t{'启用' if r.active else '停用'}")
            return
        if args.cmd == "add":
            try:
                reviewer = add(session, args.account, args.name, args.mobile, _password(args.password_stdin))
            except AppError as exc:
                raise SystemExit(f"未做任何修改：{exc.message}") from None
            session.commit()
            login = get_settings().public_base_url.rstrip("/") + "/projects/login"
            print(f"已新增审核员 {reviewer.account}（{reviewer.name}），可在 {login} 选择“继续医学教育委员会”登录"
                  "（网址由 CME_PUBLIC_BASE_URL 设置）。")
            return
        wanted = {"name": args.name, "mobile": args.mobile, "active": args.active}
        if args.password or args.password_stdin:
            wanted["password"] = _password(args.password_stdin)
        reviewer, said, ends = change(session, args.account, wanted)
        session.commit()
        if ends:
            auth.end_sessions_of(f"reviewer:{reviewer.id}")  # a login made meanwhile ends too
        print(f"已修改审核员 {reviewer.account}：{'、'.join(said)}。")
    finally:
        session.close()


if __name__ == "__main__":
    main()
