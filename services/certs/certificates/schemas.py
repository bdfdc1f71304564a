"""Input and output of the certificate pages and JSON API (explicit fields only)."""

from __future__ import annotations

from marshmallow import EXCLUDE

from services.common.paging import PageArgsSchema, page_schema
from services.common.schemas import IdRange, Length, Range, ZhFormSchema, ZhSchema, fields

_NEW = "true：即使已有相同的导出文件（同一批证书、PDF 仍可下载）也重新生成；缺省时返回那一个（existing 为 true）"


class ExportIn(ZhSchema):
    award_ids = fields.List(fields.Integer(strict=False, validate=IdRange()), required=True,
                            metadata={"description": "要导出的授分编号（达标情况查询中的 id），须为本人可打印的证书"})
    new = fields.Boolean(load_default=False, metadata={"description": _NEW})


class NewExportQuery(ZhSchema):
    """POST …/offerings/<id>/exports?new=true: a new file even if the same one stands."""

    class Meta:
        unknown = EXCLUDE

    new = fields.Boolean(load_default=False, metadata={"description": _NEW})


class NewExportForm(ZhFormSchema):
    """The offering page's 导出 (nothing) and the export page's 重新生成 (new=1)."""

    new = fields.Boolean(load_default=False)


class ExportPageQuery(ZhSchema):
    """/certs/exports/<id>?existing=1: the page was opened for an export asked for again (已有相同的导出文件)."""

    class Meta:
        unknown = EXCLUDE

    existing = fields.Boolean(load_default=False)


class MyYearQuery(ZhSchema):
    """/certs/my?year=2026: the year whose certificates are ticked (达标情况查询 of that year links here)."""

    class Meta:
        unknown = EXCLUDE

    year = fields.Integer(load_default=None, validate=Range(2000, 2100))


class OfferingsQuery(PageArgsSchema, ZhSchema):
    """学分证书导出?year=2026&page=2: the year the offerings' credits count in (this year when left out)."""

    class Meta:
        unknown = EXCLUDE

    year = fields.Integer(load_default=None, validate=Range(2000, 2100),
                          metadata={"description": "学分计入年度（活动日期所在年度），缺省为今年（北京时间）"})


class ExportForm(ZhFormSchema):
    award_id = fields.List(fields.Integer(strict=False, validate=IdRange()), load_default=list)
    new = fields.Boolean(load_default=False)  # 重新生成 on the page of a finished export of the same selection


# the most of a number box's text that is read (longer than 16 is said as such); more is refused as too long
NUMBER_MAX = 200


class NumberQuery(ZhSchema):
    class Meta:
        unknown = EXCLUDE

    number = fields.String(load_default="", validate=Length(max=NUMBER_MAX))


class VerifyNameForm(ZhFormSchema):
    name = fields.String(required=True, validate=Length(max=50),
                         error_messages={"required": "请输入要核对的持证人姓名。"})


class CertificateRowOut(ZhSchema):
    award_id = fields.Integer()
    offering_id = fields.Integer()
    name = fields.String()
    id_number_masked = fields.String()
    project_number = fields.String()
    project_title = fields.String()
    institution_name = fields.String()
    starts_on = fields.Date()
    ends_on = fields.Date()
    credit_class = fields.String()
    credit_value = fields.String()
    activity_date = fields.Date()
    printable = fields.Boolean()
    printable_from = fields.Date(allow_none=True, metadata={"description": "可打印日期（项目结束 4 周后）"})
    revoked = fields.Boolean()
    revoked_at = fields.DateTime(allow_none=True)
    status_text = fields.String()
    number = fields.String(allow_none=True, metadata={"description": "证书编号（首次导出时生成）"})


class CertificateListOut(ZhSchema):
    today = fields.Date()
    items = fields.List(fields.Nested(CertificateRowOut))


class OfferingOut(ZhSchema):
    offering_id = fields.Integer()
    project_number = fields.String()
    project_title = fields.String()
    starts_on = fields.Date()
    ends_on = fields.Date()
    count = fields.Integer(metadata={"description": "已生效授分（未撤销）"})
    revoked = fields.Integer(metadata={"description": "生效后已撤销"})
    printable = fields.Integer(metadata={"description": "今日可打印"})
    printable_from = fields.Date(metadata={"description": "可打印日期（项目结束 4 周后）"})


class OfferingYearOut(ZhSchema):
    year = fields.Integer()
    count = fields.Integer(metadata={"description": "该年度有已生效授分的期数"})


class OfferingPageOut(page_schema(OfferingOut, "CertsOfferingPageBase")):
    """One page of a year's offerings, with what the page says beside them."""

    year = fields.Integer(metadata={"description": "列出的年度（未指定 year 时为今年，北京时间）"})
    hint = fields.String(allow_none=True, metadata={"description": (
        "页面上的提示，无则为 null：该年度暂无已生效的授分时，说明并列出其他有授分的年度；1、2 月查看今年时，"
        "说明上一年度有多少期项目于年末结束、证书自今年起可打印（在上一年度中）")})
    years = fields.List(fields.Nested(OfferingYearOut), metadata={
        "description": "本机构有已生效授分的各年度及期数，新的在前（页面的年度选项）"})
    last_year_printable = fields.Integer(metadata={
        "description": "1、2 月查看今年时：上一年度于年末结束、自今年起可打印的期数（其余情况为 0）"})


class JobOut(ZhSchema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "trainee 学员本人 | institution 机构按期导出"})
    offering_id = fields.Integer(allow_none=True)
    state = fields.String(metadata={"description": "queued 排队中 | running 正在生成 | done 已生成 | failed 生成失败"})
    state_label = fields.String()
    total = fields.Integer()
    done = fields.Integer()
    note = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    page_url = fields.String()
    download_url = fields.String(allow_none=True)
    existing = fields.Boolean(metadata={"description": "导出请求的回答：true 表示已有相同的导出文件，返回的是那一个"
                                                       "（已生成，可直接下载）"})


class VerifyOut(ZhSchema):
    number = fields.String()
    status = fields.String(metadata={"description": "valid 有效 | revoked 已撤销"})
    status_label = fields.String()
    revoked_on = fields.String(allow_none=True)
    restored = fields.Boolean(metadata={
        "description": "已撤销的证书：持证人该期学分已恢复，另有新编号的证书（不给出编号）"})
    name_masked = fields.String()
    project_number = fields.String()
    project_title = fields.String()
    institution_name = fields.String()
    credit_class = fields.String()
    credit_value = fields.String()
    starts_on = fields.Date(metadata={"description": "举办开始日期"})
    ends_on = fields.Date(metadata={"description": "举办结束日期"})
    activity_date = fields.Date()
    credit_year = fields.Integer(metadata={"description": "学分计入的年度（活动日期所在年度）"})
    issued_on = fields.String()


class LookupOut(VerifyOut):
    name = fields.String()
    id_number_masked = fields.String()
    award_id = fields.Integer()
    offering_id = fields.Integer()
    revoke_reason = fields.String(allow_none=True)
