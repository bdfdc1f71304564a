"""Schemas of the project catalogue: one workbook row, the list query, the JSON out."""

from __future__ import annotations

from marshmallow import Schema, ValidationError

from services.common.paging import PageArgsSchema, page_schema
from services.common.schemas import (
    IdRange,
    Length,
    NotBlank,
    OneDecimal,
    OneOf,
    Range,
    Regexp,
    ZhFormSchema,
    ZhSchema,
    fields,
)

from .models import CREDIT_CLASSES, MODES

# workbook header -> field; the labels also name the fields in row-level error messages
COLUMNS = {
    "项目编号": "number", "项目名称": "title", "项目负责人": "leader", "主办单位": "host_name",
    "学分类别": "credit_class", "学分": "credit_value", "学时": "hours", "举办期数": "offerings_count",
    "举办起止时间": "period_text", "举办地点": "venue", "举办方式": "mode", "年度": "year",
}
LABELS = {v: k for k, v in COLUMNS.items()}
# the committee's year-end question: which projects of the catalogue were never held (no 期 approved)
CATALOGUE_STATUS_LABELS = {"none_approved": "尚无审批通过的期次"}
REQUIRED_COLUMNS = [k for k in COLUMNS if k != "年度"]


def _possible_dates(text: str) -> None:
    from ..filings.services import impossible_date  # late: filings' services read the catalogue's models

    bad = impossible_date(text)
    if bad:
        raise ValidationError(f"“{bad}”不是有效日期，请核对。")


class ProjectRowSchema(ZhSchema):
    """One workbook row, after cells were turned into text."""

    number = fields.String(required=True, validate=[NotBlank(), Length(max=40), Regexp(
        r"^\d{4}(-\d{1,4}){2,4}$", "应为年度开头、以“-”连接的数字，如 2026-01-01-001。")])
    title = fields.String(required=True, validate=[NotBlank(), Length(max=200)])
    leader = fields.String(required=True, validate=[NotBlank(), Length(max=50)])
    host_name = fields.String(required=True, validate=[NotBlank(), Length(max=200)])
    credit_class = fields.String(required=True, validate=OneOf(CREDIT_CLASSES))
    credit_value = OneDecimal(required=True, validate=Range(min=0.5, max=999))
    hours = OneDecimal(required=True, validate=Range(min=0.5, max=9999))
    offerings_count = fields.Integer(required=True, strict=False, validate=Range(1, 99))
    period_text = fields.String(load_default="", validate=[Length(max=100), _possible_dates])
    venue = fields.String(load_default="", validate=Length(max=200))
    mode = fields.String(required=True, validate=OneOf(MODES))
    year = fields.Integer(load_default=None, validate=Range(2000, 2100))


class CatalogueFilterSchema(ZhSchema):
    """The list's filter: the query of its page, and the hidden fields of its 导出 Excel form."""

    q = fields.String(load_default=None, validate=Length(max=100), metadata={"description": "项目编号、名称或负责人"})
    year = fields.Integer(load_default=None, validate=Range(2000, 2100))
    institution_id = fields.Integer(load_default=None, validate=IdRange())
    status = fields.String(load_default=None, validate=OneOf(tuple(CATALOGUE_STATUS_LABELS), CATALOGUE_STATUS_LABELS),
                           metadata={"description": "none_approved 尚无审批通过的期次（年终核对未举办的项目）"})


class CatalogueQuerySchema(PageArgsSchema, CatalogueFilterSchema):
    pass


class ExportFormSchema(ZhFormSchema, CatalogueFilterSchema):
    """导出 Excel of a long list (POST, its CSRF token ignored here): the filter as the list showed it."""


class ImportFormSchema(ZhFormSchema):
    year = fields.Integer(load_default=None, validate=Range(2000, 2100),
                          metadata={"description": "年度（工作簿无“年度”列时必填）"})


class ProjectOutSchema(Schema):
    id = fields.Integer()
    year = fields.Integer()
    number = fields.String()
    title = fields.String()
    leader = fields.String()
    institution_id = fields.Integer()
    host_name = fields.String()
    credit_class = fields.String()
    credit_value = fields.Decimal(as_string=True)
    hours = fields.Decimal(as_string=True)
    offerings_count = fields.Integer()
    period_text = fields.String()
    venue = fields.String()
    mode = fields.String()


ProjectPageSchema = page_schema(ProjectOutSchema, "ProjectPageSchema")


class RowErrorSchema(Schema):
    row = fields.Integer()
    number = fields.String()
    reason = fields.String()


class RowUpdateSchema(Schema):
    row = fields.Integer()
    number = fields.String()
    changed = fields.String(metadata={"description": "该行更新的列（、分隔）"})
    details = fields.String(metadata={"description": "各列的更新内容：列：旧值 → 新值（；分隔）"})


class ImportResultSchema(Schema):
    created = fields.Integer()
    updated = fields.Integer()
    unchanged = fields.Integer()
    errors = fields.List(fields.Nested(RowErrorSchema))
    updates = fields.List(fields.Nested(RowUpdateSchema))


class ImportJobSchema(Schema):
    """A catalogue import job: POST answers it with 202, its status_url with 200 until and after it is done."""

    id = fields.Integer()
    state = fields.String(metadata={"description": "queued 排队中 / running 导入中 / done 导入完成 / failed 导入失败"})
    state_label = fields.String()
    year = fields.Integer(allow_none=True)
    filename = fields.String()
    rows_total = fields.Integer(allow_none=True, metadata={"description": "工作簿的数据行数（读取完成后才有）"})
    rows_done = fields.Integer()
    error = fields.String(allow_none=True, metadata={"description": "导入失败的原因及处理办法"})
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    status_url = fields.String()
    page_url = fields.String()
    file_cleared_at = fields.DateTime(allow_none=True, metadata={
        "description": "上传的工作簿按保留期限（CME_CATALOGUE_FILES_DAYS）清除的时间；导入结果仍保留"})
    result = fields.Nested(ImportResultSchema, allow_none=True, metadata={"description": "导入完成后的结果"})


class ExportJobSchema(Schema):
    """A catalogue export job: POST answers it with 202, its status_url with 200 until and after it is done."""

    id = fields.Integer()
    state = fields.String(metadata={"description": "queued 排队中 / running 导出中 / done 导出完成 / failed 导出失败 / "
                                                  "replaced 已被同一审核员之后的导出替换（文件已删除）"})
    state_label = fields.String()
    filters = fields.Dict(metadata={"description": "导出条件（q、year、institution_id、status，未给出的不列出）"})
    rows_total = fields.Integer(metadata={"description": "提交时按条件统计的项数；导出完成后为实际写入的项数"})
    rows_done = fields.Integer()
    error = fields.String(allow_none=True, metadata={"description": "导出失败的原因及处理办法"})
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    status_url = fields.String()
    page_url = fields.String()
    file_cleared_at = fields.DateTime(allow_none=True, metadata={
        "description": "导出文件按保留期限（CME_CATALOGUE_FILES_DAYS，导出完成后的天数）清除的时间"})
    download_url = fields.String(allow_none=True, metadata={"description": "导出完成且文件仍保留时的下载地址"})
