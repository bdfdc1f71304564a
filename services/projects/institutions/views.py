"""The committee's 申办机构 pages and JSON API: list, create one, import an Excel workbook."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request
from flask_smorest import Blueprint as ApiBlueprint
from sqlalchemy.exc import IntegrityError

from services.common import auth as cauth
from services.common.auth import access, current
from services.common.errors import AppError
from services.common.inputs import keep_args, load_query
from services.common.schemas import STALE_PAGE, load_form
from services.common.web import XLSX, download

from ..audit import models as audit
from ..db import db
from . import schemas as sc
from . import services as svc
from .models import Institution

pages = Blueprint("projects_institutions", __name__, template_folder="templates")
api = ApiBlueprint("projects_institutions_api", __name__, url_prefix="/projects/api",
                   description="申办机构（继续医学教育委员会管理）")


def _out(inst: Any) -> dict[str, Any]:
    return {"id": inst.id, "account": inst.account, "name": inst.name, "active": inst.active,
            "admins": len(inst.admins), "created_at": inst.created_at}


def _create(data: dict[str, Any]) -> Any:
    session = db.session
    try:
        inst = svc.create_institution(session, data["account"], data["name"], data["password"])
        audit.record(session, current(), "institution", inst.id, "created",
                     reason=f"{inst.name}（账号 {inst.account}）")
        session.commit()
    except IntegrityError:
        session.rollback()
        svc.refuse_taken(session, data["account"], data["name"])  # raises the 409 that names which
        raise
    except Exception:
        session.rollback()
        raise
    return inst


def _import(upload: Any) -> svc.ImportReport:
    if upload is None or not upload.filename:
        raise AppError(400, "file_required", "请选择要导入的 Excel（.xlsx）文件。", {"file": "请选择文件。"})
    session = db.session
    try:
        report = svc.import_institutions(session, upload.stream, sc.validate_import_row)
        for inst_id, name, account in svc.created_ids(session, report):  # its own 操作记录 says so, as by hand
            audit.record(session, current(), "institution", inst_id, "created",
                         reason=f"{name}（账号 {account}，Excel 导入）")
        audit.record(session, current(), "institution", 0, "imported",
                     reason=f"Excel 导入申办机构：新建 {len(report.created)} 个，已存在 {len(report.existing)} 个，"
                            f"出错 {len(report.errors)} 行" + (f"，跳过示例行 {len(report.skipped)} 行"
                                                                 if report.skipped else ""))
        session.commit()
    except Exception:
        session.rollback()
        raise
    return report


QUERY_LABELS = {"q": "检索", "state": "状态"}


def _page(form: dict[str, Any] | None = None, errors: dict[str, Any] | None = None,
          report: svc.ImportReport | None = None, message: str | None = None, status: int = 200,
          args: dict[str, Any] | None = None) -> Any:
    args = args or {}
    return render_template("institutions/list.html", page=svc.institutions_page(db.session, args), args=args,
                           keep=keep_args(args, ("q", "state")), form=form or {}, errors=errors or {},
                           report=report, message=message), status


@pages.get("/projects/institutions")
@access("reviewer")
def list_page() -> Any:
    return _page(args=load_query(sc.InstitutionQuerySchema(), QUERY_LABELS))


@pages.post("/projects/institutions")
@access("reviewer")
def create_page() -> Any:
    form = {k: request.form.get(k, "") for k in ("account", "name")}
    data, errors = load_form(sc.InstitutionForm(), request.form)
    if data is None:
        return _page(form, errors, status=422)
    try:
        inst = _create(data)
    except AppError as exc:
        field = "account" if exc.code == "account_taken" else "name"
        return _page(form, {field: exc.message}, message=exc.message, status=exc.status)
    flash(f"已创建申办机构“{inst.name}”（账号 {inst.account}）。", "ok")
    return redirect("/projects/institutions")


@pages.get("/projects/institutions/import-template.xlsx")
@access("reviewer")
def import_template() -> Any:
    """下载导入模板: the header row the import reads, an example row it skips, and what each column takes."""
    return download(svc.import_template(), XLSX, "institutions-import-template.xlsx", "申办机构导入模板.xlsx")


@pages.get("/projects/institutions/import")
@access("reviewer")
def import_page_again() -> Any:
    """The import's result page reloaded or reached with Back: the list, not a 405."""
    return redirect("/projects/institutions", 303)


@pages.post("/projects/institutions/import")
@access("reviewer")
def import_page() -> Any:
    try:
        report = _import(request.files.get("file"))
    except AppError as exc:
        return _page(message=exc.message, status=exc.status)
    return _page(report=report)


def _institution(institution_id: int) -> Any:
    inst = db.session.get(Institution, institution_id)
    if inst is None:
        raise AppError(404, "not_found", "该申办机构不存在。")
    return inst


def _detail(inst: Any, which: str = "", form: dict[str, Any] | None = None, errors: dict[str, Any] | None = None,
            status: int = 200) -> Any:
    history = audit.history_of(db.session, "institution", inst.id)
    return render_template("institutions/detail.html", inst=inst, history=history, which=which, form=form or {},
                           errors=errors or {}), status


@pages.get("/projects/institutions/<int:institution_id>")
@access("reviewer")
def detail_page(institution_id: int) -> Any:
    """One institution: its 机构负责人 (mobiles masked), 停用/启用, 重置密码, and what was done to it."""
    return _detail(_institution(institution_id))


def _change(institution_id: int, which: str, schema: Any, act: Any) -> Any:
    inst = _institution(institution_id)
    form = {k: request.form.get(k, "") for k in ("active", "reason", "name", "real_name", "mobile")}
    data, errors = load_form(schema, request.form)
    if data is None:
        if "active" in errors:  # the form's hidden field, edited by hand: nothing on the page would say so
            errors = {**errors, "_schema": STALE_PAGE}
        return _detail(inst, which, form, errors, 422)
    session = db.session
    try:
        subjects, done = act(session, inst, data)
        for subject in subjects:
            cauth.sessions_must_end(subject)  # or refused: never 停用 with the office still signed in
        session.commit()
    except AppError as exc:
        session.rollback()
        return _detail(_institution(institution_id), which, form, {**(exc.fields or {}), "_schema": exc.message},
                       exc.status)
    for subject in subjects:
        cauth.end_sessions_of(subject)  # and a login made meanwhile: the office signs in again (or cannot, once 停用)
    flash(done, "ok")
    return redirect(f"/projects/institutions/{institution_id}")


@pages.post("/projects/institutions/<int:institution_id>/active")
@access("reviewer")
def active_page(institution_id: int) -> Any:
    def act(session: Any, inst: Any, data: dict[str, Any]) -> tuple[list[str], str]:
        subjects = svc.set_active(session, inst, data["active"])
        audit.record(session, current(), "institution", inst.id, "enabled" if data["active"] else "disabled",
                     "inactive" if data["active"] else "active", "active" if data["active"] else "inactive",
                     data["reason"])
        return subjects, f"已{'启用' if data['active'] else '停用'}“{inst.name}”（已记入操作日志）。"

    return _change(institution_id, "active", sc.InstitutionActiveForm(), act)


@pages.post("/projects/institutions/<int:institution_id>/name")
@access("reviewer")
def rename_page(institution_id: int) -> Any:
    def act(session: Any, inst: Any, data: dict[str, Any]) -> tuple[list[str], str]:
        old = svc.rename(session, inst, data["name"])
        audit.record(session, current(), "institution", inst.id, "renamed",
                     reason=f"{old} → {inst.name}；{data['reason']}")
        return [], f"已将“{old}”更正为“{inst.name}”（已记入操作日志）。"

    return _change(institution_id, "name", sc.InstitutionRenameForm(), act)


@pages.post("/projects/institutions/<int:institution_id>/password")
@access("reviewer")
def password_page(institution_id: int) -> Any:
    def act(session: Any, inst: Any, data: dict[str, Any]) -> tuple[list[str], str]:
        subjects = svc.reset_password(session, inst, data["password"])
        audit.record(session, current(), "institution", inst.id, "password_reset", reason=data["reason"])
        return subjects, f"已重置“{inst.name}”的登录密码，请将新密码告知该机构（已记入操作日志）。"

    return _change(institution_id, "password", sc.InstitutionPasswordForm(), act)


@pages.post("/projects/institutions/<int:institution_id>/admins")
@access("reviewer")
def admin_add_page(institution_id: int) -> Any:
    """An office whose every 机构负责人 is gone (a phone lost, people left) cannot log in: the committee adds one."""
    def act(session: Any, inst: Any, data: dict[str, Any]) -> tuple[list[str], str]:
        admin = svc.add_admin(session, inst, data["real_name"], data["mobile"])
        audit.record(session, current(), "institution", inst.id, "admin_added",
                     reason=svc.admin_note("新增", admin, data["reason"]))
        return [], f"已为“{inst.name}”新增机构负责人 {admin.real_name}（已记入操作日志）。"

    return _change(institution_id, "admin_add", sc.InstitutionAdminAddForm(), act)


@pages.post("/projects/institutions/<int:institution_id>/admins/<int:admin_id>/remove")
@access("reviewer")
def admin_remove_page(institution_id: int, admin_id: int) -> Any:
    def act(session: Any, inst: Any, data: dict[str, Any]) -> tuple[list[str], str]:
        admin = svc.remove_admin(session, inst, admin_id)
        audit.record(session, current(), "institution", inst.id, "admin_removed",
                     reason=svc.admin_note("移除", admin, data["reason"]))
        done = f"已移除“{inst.name}”的机构负责人 {admin.real_name}，其已登录的设备同时退出（已记入操作日志）。"
        return [admin.subject], done

    return _change(institution_id, f"admin_remove_{admin_id}", sc.InstitutionAdminRemoveForm(), act)


_ROW = {"$ref": "#/components/schemas/InstitutionOut"}
# the 200 answer, either shape: the array by default, one page when page or per_page is given
_LIST_OR_PAGE = {"200": {"description": "OK", "content": {"application/json": {"schema": {"oneOf": [
    {"type": "array", "items": _ROW},
    {"type": "object", "required": ["items", "total", "page", "pages", "per_page"],
     "properties": {"items": {"type": "array", "items": _ROW}, "total": {"type": "integer"},
                    "page": {"type": "integer"}, "pages": {"type": "integer"}, "per_page": {"type": "integer"}}},
]}}}}}


@api.route("/institutions", methods=["GET"])
@access("reviewer")
@api.arguments(sc.InstitutionApiQuerySchema, location="query")
@api.response(200, sc.InstitutionOut(many=True))
@api.doc(security=[{"bearer": []}], responses=_LIST_OR_PAGE,
         summary="申办机构：默认返回全部机构的数组（按 id 升序）；给出 page 或 per_page 时分页，"
                 "返回 {items, total, page, pages, per_page}（同一顺序，每页最多 100 条）")
def api_list(args: dict[str, Any]) -> Any:
    """申办机构列表。不带 page、per_page：全部机构的数组（原有形式，不变）。带 page 或 per_page：一页，
    形如 {items: [...], total, page, pages, per_page}，与其他列表接口相同。q（账号或名称）、state 两种形式都可用。"""
    if args["page"] is None and args["per_page"] is None:
        return [_out(i) for i in svc.list_institutions(db.session, args)]
    page = svc.institutions_page(db.session, args, Institution.id)
    # the paged shape is not the documented array: returned as its own response, past the array's schema
    return jsonify(sc.InstitutionPageOut().dump(dict(page, items=[_out(i) for i in page["items"]])))


@api.route("/institutions", methods=["POST"])
@access("reviewer")
@api.arguments(sc.InstitutionSchema)
@api.response(201, sc.InstitutionOut)
@api.doc(security=[{"bearer": []}])
def api_create(data: dict[str, Any]) -> Any:
    """新建申办机构（账号、机构名称、初始密码）。"""
    return _out(_create(data))


@api.route("/institutions/import", methods=["POST"])
@access("reviewer")
@api.response(200, sc.ImportOut)
@api.doc(security=[{"bearer": []}])
def api_import() -> Any:
    """以 Excel（.xlsx，列：账号、机构名称、初始密码）批量导入；错误行逐行报告，正确行保留；
    导入模板（/projects/institutions/import-template.xlsx）自带的示例行跳过，列在 skipped 中。"""
    return _import(request.files.get("file")).as_dict()
