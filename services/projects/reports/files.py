"""Files of 第3页 资料上传, judged by their content, never by their name.

日程, 会议通知 and 会议照片 are JPG only, through the filings' checker (Pillow reads it as JPEG, re-encoded
without EXIF). 试题 may be PDF, Word (.docx) or JPG: a PDF must start with the %PDF- header and end with
%%EOF; a .docx must be a sound zip (no absolute or parent paths, bounded uncompressed size) holding
[Content_Types].xml and word/document.xml and no macros; old .doc, .docm, RTF or a renamed text file are refused.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
import zlib
from dataclasses import dataclass

from services.common.errors import AppError

from .. import uploads as jpg

KINDS = {"schedule": "日程", "notice": "会议通知", "photo": "会议照片", "exam": "试题"}
SINGLE = ("schedule", "notice")  # a new one replaces the old
MAX_PHOTOS = 20
MAX_EXAMS = 10
JPG_MAX_BYTES = jpg.MAX_BYTES
EXAM_MAX_BYTES = 10 * 1024 * 1024
DOCX_MAX_UNCOMPRESSED = 100 * 1024 * 1024
DOCX_MAX_ENTRIES = 2000
PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
JPEG = "image/jpeg"
EXTENSIONS = {PDF: ".pdf", DOCX: ".docx", JPEG: ".jpg"}


@dataclass(frozen=True)
class CleanFile:
    data: bytes
    content_type: str
    width: int | None
    height: int | None
    sha256: str


def refuse(kind: str, reason: str) -> AppError:
    return AppError(422, "bad_upload", f"{KINDS.get(kind, '文件')}上传失败：{reason}", {kind: reason})


def _jpeg(raw: bytes, kind: str) -> CleanFile:
    try:
        clean = jpg.clean_jpeg(raw, kind)
    except AppError as exc:  # the same reason, under this page's label
        reason = next(iter(exc.fields.values()), exc.message) if exc.fields else exc.message
        raise refuse(kind, str(reason)) from None
    return CleanFile(clean.data, JPEG, clean.width, clean.height, clean.sha256)


def _is_pdf(raw: bytes) -> bool:
    return raw.startswith(b"%PDF-") and b"%%EOF" in raw[-2048:]


def _check_docx(raw: bytes, kind: str) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            infos = zf.infolist()
            if len(infos) > DOCX_MAX_ENTRIES or sum(i.file_size for i in infos) > DOCX_MAX_UNCOMPRESSED:
                raise refuse(kind, "Word 文件内容异常（解压后过大），请另存为 PDF 后再上传。")
            names = {i.filename for i in infos}
            if any(n.startswith("/") or ".." in n.split("/") for n in names):
                raise refuse(kind, "Word 文件结构异常，请重新保存后再上传。")
            if "[Content_Types].xml" not in names or "word/document.xml" not in names:
                raise refuse(kind, "只能上传 PDF、Word（.docx）或 JPG 格式的试题。")
            if any(n.lower().endswith("vbaproject.bin") for n in names):
                raise refuse(kind, "不能上传含宏的 Word 文件，请另存为 .docx 或 PDF 后再上传。")
            if zf.testzip() is not None:
                raise refuse(kind, "Word 文件已损坏，请重新保存后再上传。")
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError):
        # torn deflate data, a password ("encrypted") flag, a compression Word never writes: all unreadable
        raise refuse(kind, "Word 文件已损坏，请重新保存后再上传。") from None


def clean_file(raw: bytes, kind: str) -> CleanFile:
    if kind not in KINDS:
        raise AppError(404, "not_found", "不支持的上传类型。")
    if not raw:
        raise refuse(kind, "文件为空，请重新选择。")
    if kind != "exam":
        return _jpeg(raw, kind)
    if len(raw) > EXAM_MAX_BYTES:
        raise refuse(kind, f"文件超过 {EXAM_MAX_BYTES // (1024 * 1024)} MB，请压缩后再上传。")
    if raw.startswith(b"\xff\xd8\xff"):
        return _jpeg(raw, kind)
    if raw.startswith(b"%PDF-"):
        if not _is_pdf(raw):
            raise refuse(kind, "PDF 文件不完整或已损坏，请重新导出后再上传。")
        return CleanFile(raw, PDF, None, None, hashlib.sha256(raw).hexdigest())
    if raw.startswith(b"PK\x03\x04"):
        _check_docx(raw, kind)
        return CleanFile(raw, DOCX, None, None, hashlib.sha256(raw).hexdigest())
    if raw.startswith(b"\xd0\xcf\x11\xe0"):
        raise refuse(kind, "不支持旧版 Word（.doc）文件，请另存为 .docx 或 PDF 后再上传。")
    raise refuse(kind, "只能上传 PDF、Word（.docx）或 JPG 格式的试题。")


def stored_name(filename: str | None, content_type: str) -> str:
    """The user's file name without paths, with the extension its content really has."""
    name = jpg.safe_filename(filename)
    ext = EXTENSIONS[content_type]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return (stem or "upload")[: 120 - len(ext)] + ext
