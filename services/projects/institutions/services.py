"""Creating institutions and reviewers: used by the committee's pages, the Excel import and the demo data."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Text, cast, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from services.common import pii
from services.common.db import savepoint
from services.common.errors import AppError
from services.common.paging import half_width, matches, paginate

from ..workbooks import header_text, sheet_rows
from .models import Institution, InstitutionAdmin, Reviewer, name_key

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def refuse_taken(session: Session, account: str, name: str) -> None:
    """409 naming what another institution already has: checked before the insert, and again after the
    database refused it (the same account or name saved by another clerk at the same moment)."""
    # accounts differ by more than case: "XJTU1" beside "xjtu1" would be two logins a clerk cannot tell apart
    if session.scalar(select(Institution.id).where(func.lower(Institution.account) == account.lower())):
        raise AppError(409, "account_taken", f"账号“{account}”已存在（账号不区分大小写）。")
    refuse_name_taken(session, name)


def _name_taken(name: str) -> AppError:
    return AppError(409, "name_taken", f"机构“{name}”已存在。", {"name": f"机构“{name}”已存在。"})


def refuse_name_taken(session: Session, name: str, institution_id: int | None = None) -> None:
    """409 when another institution (not `institution_id`) has the name, or had it: a name given up by 更正名称 is
    still how the catalogue import finds that one, so given to a second a spreadsheet row would move to it (and a
    project with no 期 yet would change hands unremarked)."""
    others = session.execute(select(Institution.name, Institution.former_names)
                             .where(Institution.id != (institution_id or 0))).all()
    key = name_key(name)
    for current, _former in others:
        if name_key(current) == key:
            raise _name_taken(current)  # the name as saved: 西院区 in brackets of the other width is the same
    for current, former in others:
        if key in {name_key(f) for f in former or []}:
            message = (f"“{name}”是申办机构“{current}”的曾用名称，项目目录导入时仍按此名称对应该机构，"
                       "不能用作其他机构的名称。")
            raise AppError(409, "former_name", message, {"name": message})


def create_institution(session: Session, account: str, name: str, password: str) -> Institution:
    refuse_taken(session, account, name)
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


def admin_note(verb: str, admin: InstitutionAdmin, reason: str) -> str:
    """操作记录's line of a 负责人 added or removed (by the office or the committee): who, her mobile masked, why."""
    return f"{verb}机构负责人 {admin.real_name}（{admin.masked_mobile}）：{reason}"


def remove_admin(session: Session, inst: Institution, admin_id: int) -> InstitutionAdmin:
    """移除 a 机构负责人 (the caller ends her sessions before its commit). Never the last one: a login with nobody
    to text a code to would be a first login again, where the password alone adds a person."""
    admin = session.get(InstitutionAdmin, admin_id)
    if admin is None or admin.institution_id != inst.id:
        raise AppError(404, "not_found", "该机构负责人不存在（可能已被移除），请刷新页面。")
    if len(inst.admins) <= 1:
        raise AppError(409, "last_admin", "机构至少须保留一名负责人，请先新增负责人后再移除。")
    session.delete(admin)
    session.flush()
    return admin


def create_reviewer(session: Session, account: str, name: str, password: str, mobile: str) -> Reviewer:
    if session.scalar(select(Reviewer.id).where(func.lower(Reviewer.account) == account.lower())):
        raise AppError(409, "account_taken", f"账号“{account}”已存在（账号不区分大小写）。")
    reviewer = Reviewer(account=account, name=name, password_hash=hash_password(password),
                        mobile_enc=pii.encrypt(mobile), mobile_hash=pii.mobile_hash(mobile))
    session.add(reviewer)
    session.flush()
    return reviewer


# ---------------------------------------------------------------- the committee's list and Excel import

IMPORT_COLUMNS = {"account": "账号", "name": "机构名称", "password": "初始密码"}
# Each new institution's initial password is hashed with argon2 (~0.2 s of CPU a row here, ~0.35 s with the
# machine busy): a few hundred rows in one request ran past the web worker's 60 s and the clerk saw an error
# page with nothing imported. A province's few hundred come in files of 100; a repeated row is skipped.
IMPORT_MAX_ROWS = 100


# 下载导入模板's example row: left as it is, the import skips it (reported, never created); a clerk who types over it
# (another account) has made it a real row
EXAMPLE_ACCOUNT = "example_hospital"
EXAMPLE_MARK = "【示例】"
EXAMPLE_ROW = {"account": EXAMPLE_ACCOUNT, "name": f"{EXAMPLE_MARK}陕西省示例医院", "password": "Shili2027"}
EXAMPLE_SKIPPED = (f"模板自带的示例行（账号 {EXAMPLE_ACCOUNT} 或机构名称以{EXAMPLE_MARK}开头），未导入；"
                   "要导入的机构请另起一行填写，示例行可删除也可保留。")
# what each column takes (the rules of schemas.InstitutionForm, in the words its refusals use)
TEMPLATE_NOTES = {
    "账号": "必填。3–64 位，只能包含英文字母、数字、下划线（_）、点（.）和连字符（-）；不区分大小写，"
            "不能与已有机构的账号相同（已存在的账号导入时跳过，不会重复创建）。",
    "机构名称": "必填。2–200 个字，写在一行内；不能与已有机构的名称或其曾用名称相同"
                "（全角、半角括号视为相同）。",
    "初始密码": "必填。8–128 位，须同时包含英文字母和数字，用英文（半角）输入法输入；"
                "机构首次登录后可自行修改密码。",
}


def is_example_row(raw: dict[str, str]) -> bool:
    return raw.get("account", "").lower() == EXAMPLE_ACCOUNT or raw.get("name", "").startswith(EXAMPLE_MARK)


def import_template() -> bytes:
    """下载导入模板: the import's header row, the example row it skips, and the column notes (a cell comment on
    each header, and a 填写说明 sheet). Account and password columns are text cells, so Excel keeps a password of
    digits, or an account's leading zeros, as typed."""
    import io

    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill

    wb = Workbook()
    ws = wb.active
    ws.title = "申办机构"
    ws.append(["申办机构导入模板"])
    ws.append([f"请从第 5 行起每行填写一个机构，三列均为必填，每次最多 {IMPORT_MAX_ROWS} 行；"
               "第 3 行为表头，第 4 行为示例，导入时跳过。各列要求见表头批注或“填写说明”工作表。"])
    ws.append(list(IMPORT_COLUMNS.values()))
    ws.append([EXAMPLE_ROW[key] for key in IMPORT_COLUMNS])
    ws["A1"].font = Font(bold=True, size=14)
    ws["A2"].alignment = Alignment(wrap_text=True, vertical="top")
    ws.merge_cells("A2:C2")
    ws.row_dimensions[2].height = 48
    for cell in ws[3]:
        cell.font = Font(bold=True)
        cell.comment = Comment(TEMPLATE_NOTES[cell.value], "继续医学教育委员会", width=320, height=110)
    for cell in ws[4]:
        cell.font = Font(italic=True, color="808080")
        cell.fill = PatternFill("solid", fgColor="F2F2F2")
    for col, width in zip("ABC", (22, 40, 18), strict=True):
        ws.column_dimensions[col].width = width
        ws.column_dimensions[col].number_format = "@"  # the column's style: no empty cells written below
    ws.freeze_panes = "A4"
    notes = wb.create_sheet("填写说明")
    notes.append(["列", "填写要求"])
    for label, text in TEMPLATE_NOTES.items():
        notes.append([label, text])
    notes.append(["示例行", EXAMPLE_SKIPPED])
    notes.append(["行数", f"每次最多导入 {IMPORT_MAX_ROWS} 行，更多请分批导入；出错的行逐行列出原因，其余行照常导入。"])
    for cell in notes[1]:
        cell.font = Font(bold=True)
    notes.column_dimensions["A"].width, notes.column_dimensions["B"].width = 12, 90
    for row in notes.iter_rows(min_row=2):
        row[1].alignment = Alignment(wrap_text=True, vertical="top")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def set_active(session: Session, inst: Institution, active: bool) -> list[str]:
    """停用 / 启用; returns the session subjects of its 机构负责人 (their sessions end after the commit)."""
    if inst.active == active:
        raise AppError(409, "unchanged", f"该机构已是“{'启用' if active else '停用'}”状态。")
    inst.active = active
    session.flush()
    return [a.subject for a in inst.admins]


def rename(session: Session, inst: Institution, name: str) -> str:
    """更正名称 by the committee; returns the name it had. Its catalogue entries that said the old name say the new
    one; the old name is kept so a catalogue spreadsheet still saying it is matched on import. Offerings approved
    before keep the name they were approved under (their activities, awards and certificates were issued so)."""
    from ..catalogue.models import Project  # late: the catalogue builds on institutions

    old = inst.name
    if name == old:
        raise AppError(409, "unchanged", "新名称与现名称相同。", {"name": "新名称与现名称相同。"})
    refuse_name_taken(session, name, inst.id)
    inst.name = name
    inst.former_names = [n for n in (inst.former_names or []) if n != name] + [old]
    try:
        session.flush()
    except IntegrityError:  # the same name saved for another institution a moment ago
        raise _name_taken(name) from None
    session.execute(update(Project).where(Project.institution_id == inst.id, Project.host_name == old)
                    .values(host_name=name).execution_options(synchronize_session=False))
    from ..catalogue.services import announce_counts  # late, as above

    # 年度统计 names a host that held nothing by its catalogue count: it follows the new name too
    years = session.scalars(select(Project.year).where(Project.institution_id == inst.id).distinct())
    announce_counts(session, {(year, inst.id) for year in years})
    return old


def reset_password(session: Session, inst: Institution, password: str) -> list[str]:
    """重置密码 by the committee (the office lost it); the sessions of its 机构负责人 end after the commit."""
    inst.password_hash, inst.password_initial = hash_password(password), True
    session.flush()
    return [a.subject for a in inst.admins]


def change_own_password(session: Session, inst: Institution, old: str, new: str) -> None:
    """修改密码 by the office: the committee's password (新建, 重置密码) is known to whoever typed or carried it."""
    if not verify_password(inst.password_hash, old):
        raise AppError(422, "invalid_input", "原密码不正确。", {"old_password": "原密码不正确。"})
    if new == old:
        raise AppError(422, "invalid_input", "新密码不能与原密码相同。", {"new_password": "新密码不能与原密码相同。"})
    inst.password_hash, inst.password_initial = hash_password(new), False
    session.flush()


def list_institutions(session: Session, args: dict[str, Any] | None = None) -> list[Institution]:
    # every one with its 负责人 counted: one query for them all, not one per institution (hundreds in a province)
    return list(session.scalars(_institutions_query(args or {}).order_by(Institution.id)))


def institutions_page(session: Session, args: dict[str, Any], *order_by: Any) -> dict[str, Any]:
    """One page of the committee's list: a province has hundreds of institutions, newest first (unless
    `order_by` says otherwise: the API pages in its unpaged list's order, oldest first)."""
    return paginate(session, _institutions_query(args), args, *(order_by or (Institution.id.desc(),)))


def _institutions_query(args: dict[str, Any]) -> Any:
    """The committee's institutions, narrowed by the search box (账号, name or a former name) and state."""
    stmt = select(Institution).options(selectinload(Institution.admins))
    if args.get("q"):
        # A renamed hospital is still looked for by the name on last year's papers. The list is stored as
        # JSON with \u escapes, so the typed text is escaped the same way before it is looked for.
        former = json.dumps(half_width(args["q"]))[1:-1]
        stmt = stmt.where(or_(matches(args["q"], Institution.account, Institution.name),
                              matches(former, cast(Institution.former_names, Text))))
    if args.get("state"):
        stmt = stmt.where(Institution.active.is_(args["state"] == "active"))
    return stmt


@dataclass
class ImportReport:
    created: list[dict[str, Any]] = field(default_factory=list)  # {"row", "account", "name"}
    existing: list[dict[str, Any]] = field(default_factory=list)  # {"row", "account", "reason"}
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"row", "account", "name", "reason"} as typed
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {"row", "reason"}: the template's example row

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "existing": self.existing, "errors": self.errors, "skipped": self.skipped}


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():  # Excel keeps numbers as floats: 123456.0 -> "123456"
        value = int(value)
    return str(value).strip()


def _existing(number: int, account: str) -> dict[str, Any]:
    return {"row": number, "account": account, "reason": f"账号“{account}”已存在，未重复导入。"}


def import_institutions(session: Session, stream: IO[bytes],
                        validate_row: Callable[[dict[str, str]], dict[str, str] | str]) -> ImportReport:
    """Import 账号/机构名称/初始密码 rows. Good rows are kept, each bad row is reported with its row
    number and reason, an existing account is reported as existing and never duplicated.
    `validate_row` returns the loaded row or a Chinese reason (the schema lives with the views)."""
    header_row, rows = sheet_rows(
        stream, max_rows=IMPORT_MAX_ROWS,
        refuse=lambda: AppError(400, "bad_file", "文件不是有效的 Excel（.xlsx）文件，"
                                                 "请在 Excel 中另存为“Excel 工作簿（*.xlsx）”后再导入。"),
        too_many=lambda: AppError(400, "too_many_rows",
                                  f"一次最多导入 {IMPORT_MAX_ROWS} 行（每个新账号的初始密码须加密保存，"
                                  "行数多时耗时较长），请分批导入；已导入的账号再次导入时会跳过。"),
        labels=IMPORT_COLUMNS.values())
    header = [header_text(v) for v in header_row]
    where = {key: header.index(label) for key, label in IMPORT_COLUMNS.items() if label in header}
    missing = [label for key, label in IMPORT_COLUMNS.items() if key not in where]
    if missing:
        raise AppError(400, "bad_columns",
                       "表头缺少列：" + "、".join(missing) + "（表头行应为 账号、机构名称、初始密码）。")
    report = ImportReport()
    seen: dict[str, int] = {}  # account (lower case) -> the first row that has it
    for number, values in rows:
        raw = {key: _cell_text(values[i] if i < len(values) else None) for key, i in where.items()}
        if not any(raw.values()):
            continue  # blank line
        if is_example_row(raw):  # not an error: the clerk did nothing wrong by leaving it
            report.skipped.append({"row": number, "reason": EXAMPLE_SKIPPED})
            continue
        named = {"account": raw.get("account", ""), "name": raw.get("name", "")}  # the clerk finds the row by them
        loaded = validate_row(raw)
        if isinstance(loaded, str):
            report.errors.append({"row": number, **named, "reason": loaded})
            continue
        account = loaded["account"]
        if account.lower() in seen:  # not "exists": the clerk would think this row's institution was there
            report.errors.append({"row": number, **named,
                                  "reason": f"账号“{account}”与第 {seen[account.lower()]} 行重复，"
                                            "本行未导入；请为该机构另设账号后再导入本行。"})
            continue
        seen[account.lower()] = number
        if session.scalar(select(Institution.id).where(func.lower(Institution.account) == account.lower())):
            report.existing.append(_existing(number, account))
            continue
        try:
            with savepoint(session):  # a row refused by the database does not undo the good rows
                create_institution(session, account, loaded["name"], loaded["password"])
        except AppError as exc:
            report.errors.append({"row": number, **named, "reason": exc.message})
            continue
        except IntegrityError:  # created by someone else meanwhile
            report.existing.append(_existing(number, account))
            continue
        report.created.append({"row": number, "account": account, "name": loaded["name"]})
    return report


def created_ids(session: Session, report: ImportReport) -> list[tuple[int, str, str]]:
    """(id, name, account) of the institutions an import created: each one's 操作记录 starts with its creation."""
    accounts = [c["account"] for c in report.created]
    if not accounts:
        return []
    return [(i.id, i.name, i.account) for i in session.scalars(select(Institution).where(
        Institution.account.in_(accounts)).order_by(Institution.id))]
