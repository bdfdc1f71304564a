"""JPG uploads (会议通知, 会议日程, 线上学员授予学分监管说明): judged by content, never by name.

A file is accepted only when Pillow reads it as JPEG, verify() passes, it is under the byte cap and
the pixel cap (decompression bombs); it is then re-encoded, which drops EXIF (GPS, camera, author)
and anything appended after the image data.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from services.common.errors import AppError

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000  # about 8000 x 5000: more than any scan of an A4 page needs
KINDS = {"notice": "会议通知", "agenda": "会议日程", "online_supervision": "线上学员授予学分监管说明"}


@dataclass(frozen=True)
class CleanJpeg:
    data: bytes
    width: int
    height: int
    sha256: str


def _refuse(kind: str, reason: str) -> AppError:
    label = KINDS.get(kind, "文件")
    return AppError(422, "bad_upload", f"{label}上传失败：{reason}", {kind: reason})


def safe_filename(name: str | None) -> str:
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[\x00-\x1f<>:\"|?*]", "", base).strip() or "upload.jpg"
    return base[-120:]


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
                if fmt != "JPEG":
                    actual = f"（实际为 {fmt} 格式）" if fmt else ""
                    raise _refuse(kind, f"只能上传 JPG 格式的图片{actual}，请转换为 JPG 后再上传。")
                w, h = probe.size
                if w * h > MAX_PIXELS:
                    raise _refuse(kind, "图片像素过大，请缩小后再上传。")
                probe.verify()
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
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse(kind, "文件不是有效的 JPG 图片，请重新选择。") from None
    except (OSError, SyntaxError, ValueError):
        raise _refuse(kind, "图片已损坏或不完整，请重新导出后再上传。") from None
    data = out.getvalue()
    return CleanJpeg(data, width, height, hashlib.sha256(data).hexdigest())
