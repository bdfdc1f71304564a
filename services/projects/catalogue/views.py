"""项目目录: the committee imports and searches the year's approved provincial projects."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request
from flask_smorest import Blueprint as ApiBlueprint
from sqlalchemy import select

from services.common import clock, jobs
from services.common.auth import access, current
from services.common.errors import AppError
from services.common.inputs import keep_args, load_json, load_query
from services.common.schemas import load_form
from services.common.web import XLSX, download

from ..audit import models as audit
from ..db import db
from ..institutions.models import Institution
from . import exports, imports, retention, tasks
from .models import CatalogueExport, CatalogueImport
from .schemas import (
    CATALOGUE_STATUS_LABELS,
    CatalogueFilterSchema,
    CatalogueQuerySchema,
    ExportFormSchema,
    ExportJobSchema,
    ImportFormSchema,
    ImportJobSchema,
    ProjectPageSchema,
)
from .services import (
    MAX_ROWS,
    approved_counts,
    catalogue_page,
    delete_project,
    export_count,
    export_workbook,
    fmt_decimal,
    started_projects,
    too_many_to_export,
)

pages = Blueprint("projects_catalogue", __name__, template_folder="templates")
api = ApiBlueprint("projects_catalogue_api", __name__, url_prefix="/projects/api",
                   description="项目目录：年度省级继续医学教育项目（审核员导入）")
BEARER = [{"bearer": []}]
QUERY_LABELS = {"q": "检索", "year": "年度", "page": "页码", "per_page": "每页条数", "institution_id": "申办机构",
                "status": "状态"}


def _uploaded_workbook() -> tuple[str, bytes]:
    f = request.files.get("file")
    if f is None or not f.filename:
        raise AppError(422, "invalid_input", "请选择要导入的 .xlsx 文件。", {"file": "请选择文件。"})
    return f.filename, f.read()


def _start_import(year: int | None) -> CatalogueImport:
    """Store the upload as a job, commit, and only then send it to the projects-jobs worker."""
    session = db.session()
    filename, data = _uploaded_workbook()
    job = imports.create_import(session, current(), filename, data, year)  # type: ignore[arg-type]
    session.commit()
    tasks.send(session, job)
    return job


def _render_list(args: dict[str, Any], form_errors: dict[str, str] | None = None,
                 status: int = 200, import_year: int | None = None) -> Any:
    """The list; after an upload refused, or back from an import's page (?year=), its 年度 box keeps the year the
    clerk chose (back at this year, the corrected file of next year's catalogue was refused row by row)."""
    session = db.session()
    page = catalogue_page(session, current(), args)  # type: ignore[arg-type]
    ids = [p.id for p in page["items"]]
    started = started_projects(session, ids)  # 删除 only where it is allowed
    institutions = session.scalars(select(Institution).order_by(Institution.name)).all()
    return render_template("projects/catalogue/list.html", page=page, args=args,
                           keep=keep_args(args, exports.FILTER_KEYS), institutions=institutions,
                           approved=approved_counts(session, ids), status_labels=CATALOGUE_STATUS_LABELS,
                           form_errors=form_errors or {}, fmt_decimal=fmt_decimal, started=started,
                           this_year=import_year or clock.today_local().year,
                           recent=imports.recent_imports(session), direct_max=exports.DIRECT_MAX,
                           my_export=exports.latest_export(session, current())), status  # type: ignore[arg-type]


@pages.get("/projects/catalogue")
@access("reviewer")
def catalogue_list() -> Any:
    """The list; filtered by a 年度 (an import's page links back so), the import form takes that year too."""
    args = load_query(CatalogueQuerySchema(), QUERY_LABELS)
    return _render_list(args, import_year=args.get("year"))


def _export_rows(args: dict[str, Any]) -> int:
    """How many rows the export of this filter writes; more than MAX_ROWS is refused before anything is done."""
    rows = export_count(db.session(), current(), args)  # type: ignore[arg-type]
    if rows > MAX_ROWS:
        raise AppError(422, "too_many_rows", too_many_to_export())
    return rows


def _direct_export(args: dict[str, Any]) -> Any:
    data, _count = export_workbook(db.session(), current(), args)  # type: ignore[arg-type]
    year = f"{args['year']}年度" if args.get("year") else ""
    return download(data, XLSX, "catalogue.xlsx", f"项目目录{year}-{clock.today_local():%Y%m%d}.xlsx")


@pages.get("/projects/catalogue.xlsx")
@access("reviewer")
def catalogue_export() -> Any:
    """导出 Excel: the list as filtered, in the import's columns (the file can be corrected and imported back).
    Up to exports.DIRECT_MAX rows the file comes at once; a longer list (the page offers its POST form instead of
    this link, so an old bookmark or a list grown since) is sent back to the list, which says how to export it."""
    args = load_query(CatalogueQuerySchema(), QUERY_LABELS)
    rows = _export_rows(args)
    if rows > exports.DIRECT_MAX:
        flash(f"按当前条件共 {rows} 项，超过 {exports.DIRECT_MAX} 项的导出在后台生成：请点击“导出 Excel”，"
              "在导出页面查看进度并下载。", "error")
        return redirect(exports.list_url(args), 303)
    return _direct_export(args)


@pages.get("/projects/catalogue/exports")
@access("reviewer")
def catalogue_export_again() -> Any:
    """The export form's address reloaded or reached with Back after a refusal: the list, not a 405."""
    return redirect("/projects/catalogue", 303)


@pages.post("/projects/catalogue/exports")
@access("reviewer")
def catalogue_export_start() -> Any:
    """导出 Excel of the list as it showed (its filter in the form): a long list becomes a job of the projects-jobs
    worker and the clerk is sent to its page; a short one (the list shrank since) is answered with the file."""
    args, errors = load_form(ExportFormSchema(), request.form)
    if errors or args is None:
        fields = {QUERY_LABELS.get(k, k): v for k, v in errors.items()}
        raise AppError(422, "invalid_input", "查询条件有误，请返回项目目录修改后重新导出。", fields)
    rows = _export_rows(args)
    if rows <= exports.DIRECT_MAX:
        return _direct_export(args)
    job = _queue_export(args, rows)
    return redirect(f"/projects/catalogue/exports/{job.id}", 303)


def _queue_export(args: dict[str, Any], rows: int) -> CatalogueExport:
    """Store the export as a job, commit, and only then send it to the projects-jobs worker."""
    session = db.session()
    job = exports.create_export(session, current(), args, rows)  # type: ignore[arg-type]
    session.commit()
    if job.enqueued_at is None:  # a double click (or a script's retry) finds the first job, already sent
        tasks.send(session, job)
    return job


def _followed_export(job_id: int) -> CatalogueExport:
    """As _followed, for an export."""
    session = db.session()
    return jobs.mend(session, exports.get_export(session, job_id), exports.TIME_LIMIT, exports.KILLED, tasks.send)


@pages.get("/projects/catalogue/exports/<int:job_id>")
@access("reviewer")
def catalogue_export_page(job_id: int) -> Any:
    """排队中 / 导出中 with its progress, refreshing itself; then 下载, why it failed, or which export replaced it."""
    session = db.session()
    job = _followed_export(job_id)
    host = job.filters.get("institution_id")
    name = session.scalar(select(Institution.name).where(Institution.id == host)) if host else None
    latest = exports.latest_done(session, job) if job.state == "replaced" else None
    return render_template("projects/catalogue/export.html", job=job, latest=latest,
                           filter_text=exports.filter_text(job.filters, name),
                           back=exports.list_url(job.filters),
                           refresh=job.state in ("queued", "running"), waited=jobs.waited_minutes(job),
                           keep_days=retention.files_days(),
                           cleared=exports.cleared_text(job) if job.cleared_at else None)


@pages.get("/projects/catalogue/exports/<int:job_id>.xlsx")
@access("reviewer")
def catalogue_export_download(job_id: int) -> Any:
    """The file of a done export (kept until its clerk's next export is done)."""
    return _export_file(job_id)


def _export_file(job_id: int) -> Any:
    """The page's 下载 and the API's download_url: the file, or why there is none (410 once gone, 409 not yet)."""
    job = exports.get_export(db.session(), job_id)
    if job.state == "replaced":
        raise AppError(410, "replaced", "该导出的文件已被同一审核员之后的导出替换，"
                                        "请在导出页面下载最新的文件或重新导出。")
    if job.state == "done" and job.cleared_at is not None:
        raise AppError(410, "cleared", exports.cleared_text(job))
    if job.state != "done" or job.data is None:
        raise AppError(409, "not_ready", "导出尚未完成，请在导出页面等待“导出完成”后再下载。")
    return download(job.data, XLSX, f"catalogue-export-{job.id}.xlsx", exports.file_name(job))


@pages.get("/projects/catalogue/import")
@access("reviewer")
def catalogue_import_again() -> Any:
    """The import's result page reloaded or reached with Back (its address stays in the history): the list,
    not a 405."""
    return redirect("/projects/catalogue", 303)


@pages.post("/projects/catalogue/import")
@access("reviewer")
def catalogue_import() -> Any:
    """The upload is stored as a job and the clerk sent to its page: the projects-jobs worker applies it."""
    form, errors = load_form(ImportFormSchema(), request.form)
    args = {"page": 1, "per_page": 20}
    if errors:
        return _render_list(args, form_errors=errors, status=422)
    try:
        job = _start_import(form["year"])  # type: ignore[index]
    except AppError as exc:
        db.session().rollback()
        return _render_list(args, form_errors=exc.fields or {"file": exc.message}, status=exc.status,
                            import_year=form["year"])  # type: ignore[index]
    return redirect(f"/projects/catalogue/imports/{job.id}", 303)


def _followed(job_id: int) -> CatalogueImport:
    """The job, with what its page or status does for a job that would otherwise never end: a killed run failed,
    a lost message sent again."""
    session = db.session()
    return jobs.mend(session, imports.get_import(session, job_id), imports.TIME_LIMIT, imports.KILLED, tasks.send)


@pages.get("/projects/catalogue/imports/<int:job_id>")
@access("reviewer")
def catalogue_import_page(job_id: int) -> Any:
    """排队中 / 导入中 with its progress, refreshing itself; then the result (新增/更新/未变/出错) or why it failed."""
    job = _followed(job_id)
    result = job.result if job.state == "done" else None
    return render_template("projects/catalogue/import.html", job=job, result=result, shown=imports.SHOWN_ROWS,
                           refresh=job.state in ("queued", "running"), waited=jobs.waited_minutes(job),
                           keep_days=retention.files_days())


@pages.get("/projects/catalogue/imports/<int:job_id>/report.xlsx")
@access("reviewer")
def catalogue_import_report(job_id: int) -> Any:
    """The whole error list (行号, 项目编号, 错误) and every update, of a done job: its page lists the first rows."""
    session = db.session()
    job = imports.get_import(session, job_id)
    data = job.report_xlsx if job.state == "done" else None
    if not data:
        raise AppError(404, "not_found", "该导入没有出错或更新的行，无需下载清单。")
    stamp = clock.fmt(job.created_at, "%Y%m%d%H%M")
    return download(data, XLSX, f"catalogue-import-{job.id}.xlsx", f"项目目录导入结果-{stamp}.xlsx")


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
@api.response(202, ImportJobSchema)
@api.doc(security=BEARER,
         summary="导入项目目录（multipart：file=.xlsx，year=年度，可选）：返回导入任务，按 status_url 查询进度与结果")
def api_catalogue_import() -> Any:
    form, errors = load_form(ImportFormSchema(), request.form)
    if errors:
        raise AppError(422, "invalid_input", "提交的内容有误，请按提示修改。", errors)
    try:
        job = _start_import(form["year"])  # type: ignore[index]
    except AppError:
        db.session().rollback()
        raise
    return imports.job_dict(job), 202


@api.route("/catalogue/imports/<int:job_id>", methods=["GET"])
@access("reviewer")
@api.response(200, ImportJobSchema)
@api.doc(security=BEARER, summary="项目目录导入任务：状态、进度，完成后的结果（新增、更新、未变、出错的行）")
def api_catalogue_import_status(job_id: int) -> Any:
    return imports.job_dict(_followed(job_id))


@api.route("/catalogue/export", methods=["POST"])
@access("reviewer")
@api.response(202, ExportJobSchema)
@api.doc(security=BEARER,
         summary="导出项目目录（JSON：q、year、institution_id、status，与项目目录页的检索条件相同，均可省略）："
                 "无论多少项都返回导出任务（202），按 status_url 查询进度，完成后从 download_url 下载 .xlsx；"
                 "超过 20000 项返回 422。同一审核员同一条件的导出尚在排队或导出中时返回那一个；"
                 "每位审核员只保留最近一次导出完成的文件（页面导出与 API 导出共用）",
         requestBody={"content": {"application/json": {"schema": CatalogueFilterSchema}}})
def api_catalogue_export() -> Any:
    """Always a job, whatever the count: a script gets one answer to follow (the page downloads up to
    exports.DIRECT_MAX rows at once, a click a person waits on; a script polls anyway)."""
    args = load_json(CatalogueFilterSchema())
    job = _queue_export(args, _export_rows(args))
    return exports.job_dict(job), 202


@api.route("/catalogue/exports/<int:job_id>", methods=["GET"])
@access("reviewer")
@api.response(200, ExportJobSchema)
@api.doc(security=BEARER, summary="项目目录导出任务：状态、进度，完成后的下载地址（download_url）")
def api_catalogue_export_status(job_id: int) -> Any:
    return exports.job_dict(_followed_export(job_id))


@api.route("/catalogue/exports/<int:job_id>.xlsx", methods=["GET"])
@access("reviewer")
@api.doc(security=BEARER,
         summary="下载项目目录导出文件（.xlsx）：尚未完成 409；已被之后的导出替换，或超过保留期限已清除 410",
         responses={"200": {"description": "导出的工作簿（表头与导入相同）",
                            "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}}}})
def api_catalogue_export_download(job_id: int) -> Any:
    return _export_file(job_id)
