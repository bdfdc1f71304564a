"""JPG uploads (会议通知, 会议日程, 线上学员授予学分监管说明): judged by content, never by name.

A file is accepted only when Pillow reads it as JPEG (or MPO, a phone's JPG with more pictures inside),
verify() passes, its stream runs complete to the end marker (a cut-off file is refused), it is under the
byte cap and the pixel cap (decompression bombs, judged on the declared size before decoding), and it is not a
polyglot: a file that is also a ZIP archive, or carries web page, script or PDF markup, is refused
(a browser, an unzip tool or a PDF reader would open the same bytes as something else). It is then
re-encoded, which drops EXIF (GPS, camera, author) and anything else appended after the image data.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from services.common.errors import AppError

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000  # about 8000 x 5000: more than any scan of an A4 page needs
# markup a browser or a PDF reader finds anywhere in a file (lower case; compared with the file lowered)
_MARKUP = (b"<script", b"<html", b"<!doctype html", b"<body", b"<iframe", b"<svg", b"<object", b"<embed",
           b"<?php", b"javascript:", b"%pdf-")
# MPO is a JPG followed by more pictures (phones' HDR gain maps, portrait depth maps): its first picture is kept
JPEG_FORMATS = ("JPEG", "MPO")
KINDS = {"notice": "会议通知", "agenda": "会议日程", "online_supervision": "线上学员授予学分监管说明"}


def file_size(size: int | None) -> str:
    """A file's size as a reader wants it: bytes under 1 KB, KB with one decimal under 10 KB (a small JPG is not
    "0 KB"), whole KB under 1 MB, MB with one decimal above."""
    size = int(size or 0)
    if size < 1024:
        return f"{size} 字节"
    if size < 10 * 1024:
        return f"{size / 1024:.1f} KB"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / 1048576:.1f} MB"


@dataclass(frozen=True)
class CleanJpeg:
    data: bytes
    width: int
    height: int
    sha256: str


def _refuse(kind: str, reason: str) -> AppError:
    label = KINDS.get(kind, "文件")
    return AppError(422, "bad_upload", f"{label}上传失败：{reason}", {kind: reason})


def _too_many_pixels(kind: str) -> AppError:
    return _refuse(kind, f"图片像素过大（超过 {MAX_PIXELS // 10_000} 万像素），请缩小后再上传。")


def safe_filename(name: str | None) -> str:
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[\x00-\x1f<>:\"|?*]", "", base)
    # invisible format characters: a right-to-left override showed 照片\u202egpj.exe as 照片exe.jpg
    base = "".join(c for c in base if unicodedata.category(c) != "Cf").strip() or "upload.jpg"
    return base[-120:]


def _jpeg_complete(raw: bytes) -> bool:
    """Whether the JPEG stream runs from its start (SOI) through every segment and scan to the end marker (EOI).

    Judged here, not by Pillow: a library that sets ImageFile.LOAD_TRUNCATED_IMAGES (WeasyPrint does, at import)
    makes Pillow fill a cut-off file with grey instead of failing."""
    n = len(raw)
    if not raw.startswith(b"\xff\xd8"):
        return False
    i = 2
    while i < n:
        if raw[i] != 0xFF:
            return False
        while i < n and raw[i] == 0xFF:  # fill bytes before a marker
            i += 1
        if i >= n:
            return False
        marker = raw[i]
        i += 1
        if marker == 0xD9:  # EOI
            return True
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            continue
        if i + 2 > n or (length := int.from_bytes(raw[i:i + 2], "big")) < 2:
            return False
        i += length
        if marker == 0xDA:  # SOS: entropy-coded data up to the next marker (FF 00 is a stuffed byte, RSTn inside)
            while True:
                j = raw.find(b"\xff", i)
                if j < 0 or j + 1 >= n:
                    return False
                following = raw[j + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    i = j + 2
                elif following == 0xFF:
                    i = j + 1
                else:
                    i = j
                    break
    return False


def _is_polyglot(raw: bytes) -> bool:
    """Also a ZIP archive (an end-of-central-directory record an unzip tool accepts), or web/PDF markup."""
    if zipfile.is_zipfile(io.BytesIO(raw)):
        return True
    lowered = raw.lower()
    return any(marker in lowered for marker in _MARKUP)


def clean_jpeg(raw: bytes, kind: str = "") -> CleanJpeg:
    if not raw:
        raise _refuse(kind, "文件为空，请重新选择。")
    if len(raw) > MAX_BYTES:
        raise _refuse(kind, f"文件超过 {MAX_BYTES // (1024 * 1024)} MB，请压缩后再上传。")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as probe:
                fmt = probe.format
                if fmt not in JPEG_FORMATS:
                    actual = f"（实际为 {fmt} 格式）" if fmt else ""
                    raise _refuse(kind, f"只能上传 JPG 格式的图片{actual}，请转换为 JPG 后再上传。")
                w, h = probe.size
                if w * h > MAX_PIXELS:
                    raise _too_many_pixels(kind)
                probe.verify()
            if not _jpeg_complete(raw):
                raise _refuse(kind, "图片已损坏或不完整，请重新导出后再上传。")
            if _is_polyglot(raw):
                raise _refuse(kind, "文件除图片外还夹带了其他内容（压缩包、网页代码或 PDF），"
                                    "请用看图软件将图片另存为 JPG 后再上传。")
            with Image.open(io.BytesIO(raw)) as img:
                img.load()
                img = ImageOps.exif_transpose(img)  # keep the page upright once the orientation tag is gone
                if img.mode not in ("RGB", "L"):
                    img = img.convert("RGB")
                out = io.BytesIO()
                img.save(out, format="JPEG", quality=88, optimize=True)  # no exif= argument: metadata dropped
                width, height = img.size
    except AppError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(kind) from None  # declared so large that Pillow refused to open it
    except UnidentifiedImageError:
        raise _refuse(kind, "文件不是有效的 JPG 图片，请重新选择。") from None
    except (OSError, SyntaxError, ValueError):
        raise _refuse(kind, "图片已损坏或不完整，请重新导出后再上传。") from None
    data = out.getvalue()
    return CleanJpeg(data, width, height, hashlib.sha256(data).hexdigest())
