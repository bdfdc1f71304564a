"""The catalogue's rules, used by the pages, the JSON API and the demo loader.

Import: a header row (order free; the first of any sheet's first rows naming the columns, so a title row or an
instructions sheet before it is fine); every later non-blank row is one project.
A row is checked alone (schema, known institution, its number's year against its 年度, offerings already
filed), and against the file: a number on several rows imports none of them (which one is right is the
clerk's call). Bad rows are reported with their Excel row number and a Chinese reason, good rows kept.
A number already in the catalogue is updated in place, never duplicated, and each update is listed with what
it changed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from services.common import clock
from services.common.auth import Principal
from services.common.errors import AppError
from services.common.events import emit
from services.common.inputs import folded
from services.common.paging import matches, paginate

from ..db import outbox
from ..institutions.models import Institution, name_key
from ..workbooks import header_text, sheet_rows
from .models import Project
from .schemas import COLUMNS, LABELS, REQUIRED_COLUMNS, ProjectRowSchema

# one limit for both ways: every file 导出 Excel gives imports back in one go (a year's province, 300 hosts, fits).
# On a 2-core machine under a load of 8-9, 20000 rows took 15 s read back unchanged and 21 s as new projects (about
# half of it openpyxl parsing the cells): the projects worker's job (catalogue/imports.py), well inside its time limit
MAX_ROWS = 20000
_CLASS_ALIASES = {"I类": "Ⅰ类", "1类": "Ⅰ类", "一类": "Ⅰ类", "Ⅰ": "Ⅰ类", "I": "Ⅰ类",
                  "II类": "Ⅱ类", "2类": "Ⅱ类", "二类": "Ⅱ类", "Ⅱ": "Ⅱ类", "II": "Ⅱ类"}
_MODE_ALIASES = {"线上+线下": "线上线下", "线上、线下": "线上线下", "线下+线上": "线上线下", "线下线上": "线上线下"}


@dataclass
class RowError:
    row: int
    number: str
    reason: str


@dataclass
class RowUpdate:
    row: int
    number: str
    changed: str  # the labels of the columns the row changed, 、-separated
    details: str = ""  # each change as 列：旧 → 新, ；-separated: the clerk checks a correction against her file


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    updates: list[RowUpdate] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "errors": [e.__dict__ for e in self.errors], "updates": [u.__dict__ for u in self.updates]}


def _shown(value: Any) -> str:
    """A catalogue value as the update list says it (a long title cut short)."""
    if value is None or value == "":
        return "（空）"
    if isinstance(value, Decimal):
        return fmt_decimal(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        # a cell computed by a formula holds binary noise (0.1 + 0.2 = 0.30000000000000004): what Excel shows
        value = round(value, 9)
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def read_workbook(data: bytes) -> list[tuple[int, dict[str, str]]]:
    """(excel row number, {field: text}) of every non-blank data row; a wrong file is one clear refusal."""
    header, rows = sheet_rows(
        data, max_rows=MAX_ROWS,
        refuse=lambda: AppError(422, "bad_workbook", "无法读取该文件，请上传 .xlsx 格式的 Excel 工作簿。",
                                {"file": "文件不是有效的 .xlsx 工作簿。"}),
        too_many=lambda: AppError(422, "too_many_rows", f"一次最多导入 {MAX_ROWS} 行，请分批导入。"),
        labels=COLUMNS)
    if not header:
        raise AppError(422, "bad_workbook", "工作簿是空的。", {"file": "工作簿是空的。"})
    names = [header_text(h) for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        where = ("未找到表头行。各工作表前 10 行中应有一行依次写明列名：" + "、".join(REQUIRED_COLUMNS)
                 if len(missing) == len(REQUIRED_COLUMNS) else "表头行缺少以下列：" + "、".join(missing))
        raise AppError(422, "bad_workbook", where + "。", {"file": where + "。"})
    index = {COLUMNS[n]: i for i, n in enumerate(names) if n in COLUMNS}
    out: list[tuple[int, dict[str, str]]] = []
    for excel_row, values in rows:
        texts = {f: _cell_text(values[i]) if i < len(values) else "" for f, i in index.items()}
        if any(texts.values()) and not _totals_row(texts):
            out.append((excel_row, texts))
    return out


def _totals_row(texts: dict[str, str]) -> bool:
    """A 合计 / 总计 row a clerk adds below the list (counting projects or credits) is no project."""
    first = re.sub(r"\s+", "", texts.get("number", "") or texts.get("title", ""))
    return first in ("合计", "总计", "小计", "共计") and not texts.get("leader")


def _first_message(messages: Any) -> str:
    while isinstance(messages, (list, dict)):
        messages = next(iter(messages.values() if isinstance(messages, dict) else messages), "")
    return str(messages)


# hyphen look-alikes Excel and Chinese input methods type for "-" (en/em dash, minus, full-width hyphen, …)
_DASHES = str.maketrans({c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"})


def normalise_number(text: str) -> str:
    """２０２６－０１－０１－００１ or "2026–01–01–001 " -> 2026-01-01-001: one project, however it was typed."""
    return folded(text).translate(_DASHES)


# a figure typed with its unit ("10分", "20学时", "２期", "2027年"): the unit is the column's own
_UNITS = {"credit_value": ("学分", "分"), "hours": ("学时", "小时"), "offerings_count": ("期",),
          "year": ("年度", "年")}


def _figure(text: str, units: tuple[str, ...]) -> str:
    figure = folded(text)
    for unit in units:
        if figure.endswith(unit) and figure[:-len(unit)]:
            return figure[:-len(unit)]
    return figure


def _normalise(texts: dict[str, str]) -> dict[str, str]:
    t = {k: v for k, v in texts.items() if v != ""}
    for name, units in _UNITS.items():
        if name in t:
            t[name] = _figure(t[name], units)
    if "number" in t:
        t["number"] = normalise_number(t["number"])
    if "credit_class" in t:
        t["credit_class"] = _CLASS_ALIASES.get(t["credit_class"].replace(" ", ""), t["credit_class"])
    if "mode" in t:
        t["mode"] = _MODE_ALIASES.get(t["mode"].replace(" ", ""), t["mode"].replace(" ", ""))
    return t


# What an approved offering was announced with (offering.approved carries them to credits and certs): changing
# them afterwards would leave the catalogue saying one thing and the awards and certificates another.
LOCKED_AFTER_APPROVAL = ("title", "credit_class", "credit_value", "hours", "year")


def _locked_changes(session: Session, project: Project, values: dict[str, Any]) -> list[str]:
    """The labels of the locked fields that `values` would change, once an offering of `project` is approved."""
    from ..filings.models import Filing, Offering  # late: filings builds on the catalogue

    changed = [f for f in LOCKED_AFTER_APPROVAL if getattr(project, f) != values[f]]
    if not changed or not session.scalar(
            select(Filing.id).join(Offering, Offering.id == Filing.offering_id)
            .where(Offering.project_id == project.id, Filing.state == "approved").limit(1)):
        return []
    return [LABELS[f] for f in changed]


def number_key(number: str) -> str:
    """A project number without its parts' leading zeros: 2026-9-1-1 (a sheet that lost them) is 2026-09-01-001."""
    normal = normalise_number(number)
    parts = normal.split("-")
    return "-".join(str(int(p)) if p.isdigit() else p for p in parts)


def _repeated(rows: list[tuple[int, dict[str, str]]]) -> dict[str, list[int]]:
    """Numbers found on more than one row of the file (however typed, leading zeros or not), with their rows."""
    where: dict[str, list[int]] = {}
    for excel_row, texts in rows:
        number = number_key(texts.get("number", ""))
        if number:
            where.setdefault(number, []).append(excel_row)
    return {n: r for n, r in where.items() if len(r) > 1}


# how often a job's progress is written while its rows are applied (catalogue/imports.py)
PROGRESS_EVERY = 1000


def import_rows(session: Session, rows: list[tuple[int, dict[str, str]]], year: int | None,
                progress: Callable[[int], None] | None = None) -> ImportResult:
    """Apply the rows in the caller's transaction; `progress(rows_done)` is told every PROGRESS_EVERY rows."""
    result = ImportResult()
    schema = ProjectRowSchema()
    everyone = list(session.scalars(select(Institution)))
    # a name given up by 更正名称 still finds its institution (a current name of another wins)
    institutions = ({name_key(old): i for i in everyone for old in (i.former_names or [])}
                    | {name_key(i.name): i for i in everyone})
    repeated = _repeated(rows)
    catalogued = {number_key(n): pid for pid, n in session.execute(select(Project.id, Project.number))}
    # the file's projects already catalogued and their 期 so far, read at once: a year's catalogue imported back
    # (a few thousand rows) asked two questions a row
    from ..filings.models import Filing, Offering  # late: filings builds on the catalogue

    known = {catalogued[k] for k in (number_key(t.get("number", "")) for _, t in rows) if k in catalogued}
    loaded = {p.id: p for p in session.scalars(select(Project).where(Project.id.in_(known)))} if known else {}
    # the 期 a project uses: its highest 期次, less those not held (each was replaced by one more 期次)
    not_held = func.count(Filing.id).filter(Filing.state == "cancelled")
    seqs = {pid: top - cancelled for pid, top, cancelled in session.execute(
        select(Offering.project_id, func.max(Offering.seq), not_held)
        .outerjoin(Filing, Filing.offering_id == Offering.id)
        .where(Offering.project_id.in_(known)).group_by(Offering.project_id))} if known else {}
    counted: set[tuple[int, int]] = set()  # the (year, host) pairs whose counts this import changes
    for done, (excel_row, texts) in enumerate(rows):
        if progress is not None and done and done % PROGRESS_EVERY == 0:
            progress(done)
        number = texts.get("number", "")
        rows_of_number = repeated.get(number_key(number))
        if rows_of_number:
            listed = "、".join(map(str, rows_of_number))
            result.errors.append(RowError(excel_row, number, f"项目编号：在本文件第 {listed} 行重复出现，"
                                                             "这些行均未导入；请核对后只保留一行。"))
            continue
        try:
            data = schema.load(_normalise(texts))
        except ValidationError as exc:
            msgs = exc.messages if isinstance(exc.messages, dict) else {"_": exc.messages}
            reason = "；".join(f"{LABELS.get(k, k)}：{_first_message(v).rstrip('。')}" for k, v in msgs.items()) + "。"
            result.errors.append(RowError(excel_row, number, reason))
            continue
        data["year_given"] = data["year"] is not None
        row_year = data.pop("year") or year
        if row_year is None:
            msg = "年度：未填写年度，请在页面上选择年度或在工作簿中增加“年度”列。"
            result.errors.append(RowError(excel_row, number, msg))
            continue
        if int(data["number"][:4]) != row_year:
            source = "“年度”列" if data["year_given"] else "页面上选择的年度"
            result.errors.append(RowError(excel_row, number, f"年度：项目编号属于 {data['number'][:4]} 年度，"
                                                             f"与{source} {row_year} 不一致，请核对。"))
            continue
        inst = institutions.get(name_key(data["host_name"]))
        if inst is None:
            result.errors.append(RowError(excel_row, number,
                                          f"主办单位：系统中没有名为“{data['host_name']}”的申办机构，请先添加该机构或核对名称。"))
            continue
        if not inst.active:  # its login is refused: a project it cannot file would wait unseen
            result.errors.append(RowError(excel_row, number, f"主办单位：申办机构“{inst.name}”已停用，"
                                                             "请先在申办机构中启用该机构，或核对名称。"))
            continue
        data["host_name"] = inst.name  # a former name reads as the current one
        # found by its number's key: written without (or with other) leading zeros it is the same project, and
        # keeps the number it has
        pid = catalogued.get(number_key(data["number"]))
        existing = loaded.get(pid) if pid is not None else None
        if existing is not None:
            data["number"] = existing.number
            used = seqs.get(existing.id) or 0
            if used and existing.institution_id != inst.id:
                result.errors.append(RowError(excel_row, number, "主办单位：该项目已有期次登记，不能更换主办单位。"))
                continue
            if data["offerings_count"] < used:
                result.errors.append(RowError(excel_row, number,
                                              f"举办期数：该项目已登记 {used} 期，举办期数不能少于 {used}。"))
                continue
            locked = _locked_changes(session, existing, dict(data, year=row_year))
            if locked:
                result.errors.append(RowError(
                    excel_row, number, "、".join(locked) + "：该项目已有审批通过的期次，学员按审批时的项目信息授分，"
                    "不能再修改（其他各列未更新）。"))
                continue
        data.pop("year_given")
        values = dict(data, year=row_year, institution_id=inst.id)
        if existing is None:
            session.add(Project(**values))
            counted.add((row_year, inst.id))
            result.created += 1
        else:
            before = (existing.year, existing.institution_id)  # a row may move to another year or host
            changed, details = [], []
            for key, value in values.items():
                old = getattr(existing, key)
                if old != value:
                    setattr(existing, key, value)
                    label = LABELS.get(key, "主办单位" if key == "institution_id" else key)
                    if key == "institution_id":  # rare: one look-up for the old host's name
                        old_host = session.get(Institution, old)
                        old, value = (old_host.name if old_host else old), inst.name
                    changed.append(label)
                    details.append(f"{label}：{_shown(old)} → {_shown(value)}")
            if changed:
                counted |= {before, (row_year, inst.id)}
                result.updated += 1
                result.updates.append(RowUpdate(excel_row, data["number"], "、".join(dict.fromkeys(changed)),
                                                "；".join(dict.fromkeys(details))))
            else:
                result.unchanged += 1
    session.flush()
    announce_counts(session, counted)
    return result


def announce_counts(session: Session, pairs: set[tuple[int, int]]) -> None:
    """Tell credits how many projects (and planned 期) each (year, host) pair now has in the catalogue
    (catalogue.counted, written with the change): 年度统计 lists a host that held nothing, with its catalogue."""
    if not pairs:
        return
    years = {year for year, _ in pairs}
    hosts = {iid for _, iid in pairs}
    figures = {(year, iid): (n, int(planned or 0)) for year, iid, n, planned in session.execute(
        select(Project.year, Project.institution_id, func.count(Project.id), func.sum(Project.offerings_count))
        .where(Project.year.in_(years), Project.institution_id.in_(hosts))
        .group_by(Project.year, Project.institution_id))}
    names = dict(session.execute(select(Institution.id, Institution.name).where(Institution.id.in_(hosts))).all())
    now = clock.now()
    for year, iid in sorted(pairs):
        n, planned = figures.get((year, iid), (0, 0))
        emit(session, outbox, "projects", "catalogue.counted",
             {"year": year, "institution_id": iid, "institution_name": names[iid], "projects": n,
              "planned": planned, "counted_at": now})


def announce_all(session: Session) -> int:
    """catalogue.counted for every (year, host) pair of the catalogue: for a catalogue imported before credits kept
    the counts (`python -m services.projects.catalogue.announce`). Returns how many pairs were announced."""
    pairs = {(year, iid) for year, iid in session.execute(select(Project.year, Project.institution_id).distinct())}
    announce_counts(session, pairs)
    return len(pairs)


def started_projects(session: Session, ids: list[int]) -> set[int]:
    """Which of these projects have a 期次 begun by an office (they can no longer be deleted)."""
    from ..filings.models import Offering  # late: filings builds on the catalogue

    if not ids:
        return set()
    return set(session.scalars(select(Offering.project_id).where(Offering.project_id.in_(ids)).distinct()))


def delete_project(session: Session, project_id: int) -> Project:
    """A catalogue entry imported by mistake (a mistyped number, a test row): removed while no 期次 of it was
    started. Once an office has begun a filing it stays (the database refuses too: offerings.project_id)."""
    from ..filings.models import Offering  # late: filings builds on the catalogue

    project = session.get(Project, project_id, with_for_update=True)
    if project is None:
        raise AppError(404, "not_found", "该项目不存在。")
    started = session.scalar(select(func.count(Offering.id)).where(Offering.project_id == project.id)) or 0
    if started:
        raise AppError(409, "in_use", f"项目 {project.number} 已有 {started} 期开始登记，不能删除；"
                                      "如项目信息有误，请以正确信息重新导入更新。")
    session.delete(project)
    session.flush()
    announce_counts(session, {(project.year, project.institution_id)})
    return project


def import_workbook(session: Session, data: bytes, year: int | None) -> ImportResult:
    """Read and apply a workbook at once, in the caller's transaction: for scripts (the web's 导入 is a job of the
    projects worker, catalogue/imports.py, and the demo reads its sample with read_workbook and import_rows)."""
    return import_rows(session, read_workbook(data), year)


def catalogue_page(session: Session, principal: Principal, args: dict[str, Any]) -> dict[str, Any]:
    return paginate(session, _catalogue_query(principal, args), args, Project.year.desc(), Project.number)


EXPORT_EXTRA = ("审批通过期次",)  # after the import's own columns: a re-import reads past it


def export_count(session: Session, principal: Principal | None, args: dict[str, Any]) -> int:
    """How many rows 导出 Excel of the list so filtered would write (one count: the request decides direct or job)."""
    return session.scalar(select(func.count()).select_from(_catalogue_query(principal, args).subquery())) or 0


def export_workbook(session: Session, principal: Principal | None, args: dict[str, Any],
                    progress: Callable[[int, int], None] | None = None) -> tuple[bytes, int]:
    """The list as the page filters it, as an .xlsx whose header row is the import's: the clerk corrects a column
    and imports the file back (an unchanged row stays 未变), or keeps it as the year's record. `principal` None is
    the committee's view (an export job's, catalogue/exports.py); `progress(rows_done, rows_total)` is told once
    the rows are read (the caller may then end its transaction) and every PROGRESS_EVERY rows written."""
    import io

    from openpyxl import Workbook
    from openpyxl.styles import Font

    from services.common.sheets import text_row

    stmt = _catalogue_query(principal, args).order_by(Project.year.desc(), Project.number)
    projects = session.scalars(stmt.limit(MAX_ROWS + 1)).all()
    if len(projects) > MAX_ROWS:
        raise AppError(422, "too_many_rows", too_many_to_export())
    approved = approved_counts(session, [p.id for p in projects])
    total = len(projects)
    if progress is not None:
        progress(0, total)
    wb = Workbook()
    ws = wb.active
    ws.title = "项目目录"
    ws.append([f"省级继续医学教育项目目录 · 导出时间 {clock.fmt(clock.now())} · 共 {total} 项"])
    ws.append([*COLUMNS, *EXPORT_EXTRA])
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for done, p in enumerate(projects):
        if progress is not None and done and done % PROGRESS_EVERY == 0:
            progress(done, total)
        values = {name: getattr(p, attr) for name, attr in COLUMNS.items()}
        values.update(学分=fmt_decimal(p.credit_value), 学时=fmt_decimal(p.hours))
        ws.append(text_row(ws, [*values.values(), f"{approved.get(p.id, 0)} / {p.offerings_count}"]))
    for col, width in zip("ABCDEFGHIJKLM", (18, 36, 10, 28, 8, 6, 6, 8, 24, 20, 10, 6, 12), strict=True):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "A3"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue(), total


def too_many_to_export() -> str:
    return (f"一次最多导出 {MAX_ROWS} 项（导入每次也最多 {MAX_ROWS} 行），"
            "请按年度或主办单位筛选后分别导出。")


def _catalogue_query(principal: Principal | None, args: dict[str, Any]) -> Any:
    stmt = select(Project)
    if principal is not None and principal.role == "institution":
        stmt = stmt.where(Project.institution_id == principal.institution_id)
    elif args.get("institution_id"):
        stmt = stmt.where(Project.institution_id == args["institution_id"])
    if args.get("year"):
        stmt = stmt.where(Project.year == args["year"])
    if args.get("q"):
        stmt = stmt.where(matches(args["q"], Project.number, Project.title, Project.leader, Project.host_name))
    if args.get("status") == "none_approved":
        from ..filings.models import Filing, Offering  # late: filings builds on the catalogue

        stmt = stmt.where(~exists().where(Offering.project_id == Project.id, Filing.offering_id == Offering.id,
                                          Filing.state == "approved"))
    return stmt


def approved_counts(session: Session, ids: list[int]) -> dict[int, int]:
    """How many 期 of each of these projects were approved (a draft or a filing waiting is not held)."""
    from ..filings.models import Filing, Offering  # late: filings builds on the catalogue

    if not ids:
        return {}
    rows = session.execute(select(Offering.project_id, func.count()).join(Filing, Filing.offering_id == Offering.id)
                           .where(Offering.project_id.in_(ids), Filing.state == "approved")
                           .group_by(Offering.project_id))
    return {pid: n for pid, n in rows}


def fmt_decimal(value: Decimal | None) -> str:
    if value is None:
        return ""
    return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")
