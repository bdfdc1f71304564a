"""项目目录: the committee imports and searches the year's approved provincial projects."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request
from flask_smorest import Blueprint as ApiBlueprint
from sqlalchemy import select

from services.common import clock
from services.common.auth import access, current
from services.common.errors import AppError
from services.common.inputs import keep_args, load_query
from services.common.schemas import load_form
from services.common.web import XLSX, download

from ..audit import models as audit
from ..db import db
from ..institutions.models import Institution
from .schemas import (
    CATALOGUE_STATUS_LABELS,
    CatalogueQuerySchema,
    ImportFormSchema,
    ImportResultSchema,
    ProjectPageSchema,
)
from .services import (
    approved_counts,
    catalogue_page,
    delete_project,
    export_workbook,
    fmt_decimal,
    import_workbook,
    started_projects,
)

pages = Blueprint("projects_catalogue", __name__, template_folder="templates")
api = ApiBlueprint("projects_catalogue_api", __name__, url_prefix="/projects/api",
                   description="项目目录：年度省级继续医学教育项目（审核员导入）")
BEARER = [{"bearer": []}]
QUERY_LABELS = {"q": "检索", "year": "年度", "page": "页码", "per_page": "每页条数", "institution_id": "申办机构",
                "status": "状态"}


def _uploaded_workbook() -> bytes:
    f = request.files.get("file")
    if f is None or not f.filename:
        raise AppError(422, "invalid_input", "请选择要导入的 .xlsx 文件。", {"file": "请选择文件。"})
    return f.read()


def _render_list(args: dict[str, Any], result: Any = None, form_errors: dict[str, str] | None = None,
                 status: int = 200, import_year: int | None = None) -> Any:
    """The list; after an import, its 年度 box keeps the year the clerk chose (back at this year, the corrected
    file of next year's catalogue was refused row by row)."""
    session = db.session()
    page = catalogue_page(session, current(), args)  # type: ignore[arg-type]
    ids = [p.id for p in page["items"]]
    started = started_projects(session, ids)  # 删除 only where it is allowed
    institutions = session.scalars(select(Institution).order_by(Institution.name)).all()
    return render_template("projects/catalogue/list.html", page=page, args=args,
                           keep=keep_args(args, ("q", "year", "institution_id", "status")), institutions=institutions,
                           approved=approved_counts(session, ids), status_labels=CATALOGUE_STATUS_LABELS,
                           result=result, form_errors=form_errors or {}, fmt_decimal=fmt_decimal, started=started,
                           this_year=import_year or clock.today_local().year), status


@pages.get("/projects/catalogue")
@access("reviewer")
def catalogue_list() -> Any:
    return _render_list(load_query(CatalogueQuerySchema(), QUERY_LABELS))


@pages.get("/projects/catalogue.xlsx")
@access("reviewer")
def catalogue_export() -> Any:
    """导出 Excel: the list as filtered, in the import's columns (the file can be corrected and imported back)."""
    args = load_query(CatalogueQuerySchema(), QUERY_LABELS)
    data, _count = export_workbook(db.session(), current(), args)  # type: ignore[arg-type]
    year = f"{args['year']}年度" if args.get("year") else ""
    return download(data, XLSX, "catalogue.xlsx", f"项目目录{year}-{clock.today_local():%Y%m%d}.xlsx")


def _audit_import(result: Any, year: int | None) -> None:
    """An import changes what every filing is judged by: who did it, when and what it changed is kept."""
    audit.record(db.session(), current(), "catalogue", year or 0, "imported",
                 reason=f"导入项目目录：新增 {result.created} 项，更新 {result.updated} 项，"
                        f"未变 {result.unchanged} 项，出错 {len(result.errors)} 行" + _updated_text(result))


def _updated_text(result: Any, most: int = 30) -> str:
    """Which projects an import changed, and what: the audit log must tell a mistaken import from another."""
    if not result.updates:
        return ""
    shown = "；".join(f"{u.number}（{u.changed}）" for u in result.updates[:most])
    more = f" 等 {len(result.updates)} 项" if len(result.updates) > most else ""
    return f"。更新：{shown}{more}"


@pages.get("/projects/catalogue/import")
@access("reviewer")
def catalogue_import_again() -> Any:
    """The import's result page reloaded or reached with Back (its address stays in the history): the list,
    not a 405."""
    return redirect("/projects/catalogue", 303)


@pages.post("/projects/catalogue/import")
@access("reviewer")
def catalogue_import() -> Any:
    form, errors = load_form(ImportFormSchema(), request.form)
    args = {"page": 1, "per_page": 20}
    if errors:
        return _render_list(args, form_errors=errors, status=422)
    try:
        result = import_workbook(db.session(), _uploaded_workbook(), form["year"])  # type: ignore[index]
    except AppError as exc:
        db.session().rollback()
        return _render_list(args, form_errors=exc.fields or {"file": exc.message}, status=exc.status,
                            import_year=form["year"])  # type: ignore[index]
    _audit_import(result, form["year"])  # type: ignore[index]
    db.session().commit()
    return _render_list(args, result=result, import_year=form["year"])  # type: ignore[index]


@pages.post("/projects/catalogue/<int:project_id>/delete")
@access("reviewer")
def catalogue_delete(project_id: int) -> Any:
    session = db.session()
    try:
        project = delete_project(session, project_id)
        audit.record(session, current(), "catalogue", project.year, "deleted",
                     reason=f"删除项目目录条目：{project.number} {project.title}（{project.host_name}）")
        session.commit()
    except AppError:
        session.rollback()
        raise
    flash(f"已删除项目 {project.number} {project.title}（已记入操作日志）。", "ok")
    return redirect(_back_to_list(request.referrer), 303)


def _back_to_list(url: str | None) -> str:
    """The page of the list the clerk was on (its search and page number), and nowhere else: only the path and
    query of the referrer are kept, and only when it is the list."""
    parts = urlsplit(url or "")
    if parts.path != "/projects/catalogue":
        return "/projects/catalogue"
    return "/projects/catalogue" + (f"?{parts.query}" if parts.query else "")


@api.route("/catalogue", methods=["GET"])
@access("reviewer", "institution")
@api.arguments(CatalogueQuerySchema, location="query")
@api.response(200, ProjectPageSchema)
@api.doc(security=BEARER, summary="项目目录（机构仅见本机构项目）")
def api_catalogue(args: dict[str, Any]) -> Any:
    return catalogue_page(db.session(), current(), args)  # type: ignore[arg-type]


@api.route("/catalogue/import", methods=["POST"])
@access("reviewer")
@api.response(200, ImportResultSchema)
@api.doc(security=BEARER, summary="导入项目目录（multipart：file=.xlsx，year=年度，可选）")
def api_catalogue_import() -> Any:
    form, errors = load_form(ImportFormSchema(), request.form)
    if errors:
        raise AppError(422, "invalid_input", "提交的内容有误，请按提示修改。", errors)
    result = import_workbook(db.session(), _uploaded_workbook(), form["year"])  # type: ignore[index]
    _audit_import(result, form["year"])  # type: ignore[index]
    db.session().commit()
    return result.as_dict()
