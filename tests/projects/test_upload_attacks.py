"""Issue 7: hostile JPG uploads (filings' 会议通知/会议日程, the execution report's 日程/照片/试题).

A renamed PNG, a truncated JPG, a JPG declaring 20000x20000 pixels, a decompression bomb (a small file
that decodes to more pixels than the cap) and polyglots (a JPG that is also a ZIP, a JPG carrying HTML or
script, a JPG header followed by script) are each refused with a 422 and a Chinese reason naming the
problem, never a 500; what was saved before (the earlier upload, the filing's fields) is untouched.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import struct
import zipfile
from collections.abc import Callable

import pytest
from PIL import Image

from services.common import clock
from services.projects import uploads
from tests.conftest import bearer
from tests.projects.conftest import jpeg_bytes, png_bytes

AFTER = dt.datetime(2026, 3, 25, 2, 0, tzinfo=dt.UTC)  # the filed offering ran 2026-03-20..21


@pytest.fixture
def held(projects_app, reviewer, ready_filing, frozen):  # type: ignore[no-untyped-def]
    """An approved (held) offering of the institution; the clock is moved to after it ended."""

    def make(inst, principal) -> int:  # type: ignore[no-untyped-def]
        _project, fid = ready_filing(inst, principal, submit=True)
        r = projects_app.test_client().post(f"/projects/api/review/filings/{fid}/approve",
                                            headers=bearer(reviewer[1]), json={})
        assert r.status_code == 200, r.get_json()
        clock.set_now(AFTER)
        return int(r.get_json()["offering_id"])

    return make


def _sof_patched(data: bytes, width: int, height: int) -> bytes:
    """The JPG with the size in its frame header (SOF0) replaced: the decoder is told it is that big."""
    at = data.index(b"\xff\xc0")
    # FF C0, length (2), precision (1), height (2), width (2)
    return data[:at + 5] + struct.pack(">HH", height, width) + data[at + 9:]


@functools.cache
def _bomb() -> bytes:
    """A real, complete JPG of 7000x6000 one-colour pixels (42 megapixels, above the cap) in a small file."""
    out = io.BytesIO()
    Image.new("L", (7000, 6000), 255).save(out, format="JPEG", quality=1)
    return out.getvalue()


def _comment_script() -> bytes:
    """A complete JPG whose comment segment (COM) carries a script."""
    payload = b"<script>alert(1)</script>"
    data = jpeg_bytes((120, 90))
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def _zip_appended() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("index.html", "<h1>hi</h1>")
    return jpeg_bytes((120, 90)) + archive.getvalue()


TOO_BIG = "像素过大"
BROKEN = "已损坏或不完整"
HIDDEN = "夹带了其他内容"

ATTACKS: dict[str, tuple[Callable[[], bytes], str, str]] = {
    # name: (bytes, file name, what the refusal must say)
    "renamed_png": (png_bytes, "会议通知.jpg", "PNG"),
    "truncated_jpg": (lambda: (d := jpeg_bytes((400, 300), color="navy"))[:len(d) // 2], "会议通知.jpg", BROKEN),
    "huge_declared": (lambda: _sof_patched(jpeg_bytes((16, 16)), 20000, 20000), "大图.jpg", TOO_BIG),
    "bomb_over_cap": (lambda: _sof_patched(jpeg_bytes((16, 16)), 8000, 8000), "大图.jpg", TOO_BIG),
    "decompression_bomb": (_bomb, "炸弹.jpg", TOO_BIG),
    "jpg_plus_zip": (_zip_appended, "通知.jpg", HIDDEN),
    "jpg_plus_html": (lambda: jpeg_bytes((120, 90)) + b"<html><script>alert(document.cookie)</script></html>",
                      "通知.jpg", HIDDEN),
    "jpg_comment_script": (_comment_script, "通知.jpg", HIDDEN),
    "jpg_header_then_script": (lambda: b"\xff\xd8\xff\xe0\x00\x10JFIF\x00<script>alert(1)</script>" * 3,
                               "通知.jpg", "JPG"),
    "jpg_plus_pdf": (lambda: jpeg_bytes((120, 90)) + b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF", "通知.jpg", HIDDEN),
}


def _post(c, url: str, data: bytes, name: str, h: dict[str, str]):  # type: ignore[no-untyped-def]
    return c.post(url, headers=h, data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def _refused(r, label: str, expected: str) -> str:  # type: ignore[no-untyped-def]
    assert r.status_code == 422, (r.status_code, r.get_data(as_text=True)[:500])
    body = r.get_json()
    message = body["error"]["message"]
    assert body["error"]["code"] == "bad_upload" and message.startswith(f"{label}上传失败：") and expected in message, \
        message
    return message


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_clean_jpeg_refuses(attack: str) -> None:
    make, _name, expected = ATTACKS[attack]
    with pytest.raises(uploads.AppError) as exc:
        uploads.clean_jpeg(make(), "notice")
    assert exc.value.status == 422 and expected in exc.value.message, exc.value.message
    assert exc.value.fields and expected in str(exc.value.fields["notice"])


def test_truncated_jpg_refused_even_when_pillow_is_told_to_pad_it(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # as WeasyPrint sets it when imported
    data = jpeg_bytes((400, 300), color="navy")
    for cut in (len(data) // 2, len(data) - 2, 700):
        with pytest.raises(uploads.AppError) as exc:
            uploads.clean_jpeg(data[:cut], "notice")
        assert BROKEN in exc.value.message


def test_a_file_name_keeps_no_invisible_direction_marks() -> None:
    assert uploads.safe_filename("C:\\照片\u202egpj.exe") == "照片gpj.exe"  # shown as 照片exe.jpg before
    assert uploads.safe_filename("会议\u200b通知.jpg") == "会议通知.jpg"
    assert uploads.safe_filename("\u202e") == "upload.jpg"


def test_plain_jpg_and_phone_photo_metadata_still_accepted() -> None:
    # the checks must not refuse an ordinary photo: EXIF, a big-but-allowed size, a trailing padding
    assert uploads.clean_jpeg(jpeg_bytes(exif=True), "notice").width == 64
    assert uploads.clean_jpeg(jpeg_bytes((3000, 2000)), "notice").height == 2000
    assert uploads.clean_jpeg(jpeg_bytes() + b"\x00" * 64, "notice").width == 64
    progressive = io.BytesIO()
    Image.new("RGB", (640, 480), "teal").save(progressive, format="JPEG", progressive=True, optimize=True)
    assert uploads.clean_jpeg(progressive.getvalue(), "notice").width == 640
    # a phone's JPG with a second picture inside (MPO: Ultra HDR gain map, portrait depth map): the photo is kept
    phone = io.BytesIO()
    Image.new("RGB", (320, 240), "white").save(phone, format="MPO", save_all=True,
                                               append_images=[Image.new("L", (160, 120), 128)])
    clean = uploads.clean_jpeg(phone.getvalue(), "notice")
    assert (clean.width, clean.height) == (320, 240) and Image.open(io.BytesIO(clean.data)).format == "JPEG"


def test_filing_upload_attacks_refused_and_nothing_lost(projects_app, inst_a, make_project, frozen, filled):
    inst, principal = inst_a
    project = make_project(inst)
    c = projects_app.test_client()
    h = bearer(principal)
    fid = c.post(f"/projects/api/projects/{project.id}/offerings", headers=h).get_json()["id"]
    assert c.put(f"/projects/api/filings/{fid}", headers=h, json=filled).status_code == 200
    url = f"/projects/api/filings/{fid}/uploads/notice"
    good = _post(c, url, jpeg_bytes((80, 60), color="yellow"), "会议通知.jpg", h)
    assert good.status_code == 201, good.get_json()
    before = c.get(f"/projects/api/filings/{fid}", headers=h).get_json()
    for attack, (make, name, expected) in sorted(ATTACKS.items()):
        r = _post(c, url, make(), name, h)
        message = _refused(r, "会议通知", expected)
        assert attack and message
    after = c.get(f"/projects/api/filings/{fid}", headers=h).get_json()
    assert after == before  # the earlier 会议通知 and every field are as they were
    served = c.get(f"/projects/filings/{fid}/uploads/notice", headers=h)
    assert served.status_code == 200 and Image.open(io.BytesIO(served.data)).size == (80, 60)


def test_report_upload_attacks_refused_and_nothing_lost(projects_app, inst_a, held):
    inst, principal = inst_a
    oid = held(inst, principal)
    c = projects_app.test_client()
    h = bearer(principal)
    r = c.post(f"/projects/api/reports/offering/{oid}", headers=h)
    assert r.status_code == 201, r.get_json()
    rid = r.get_json()["id"]
    for kind in ("schedule", "photo"):
        assert _post(c, f"/projects/api/reports/{rid}/uploads/{kind}", jpeg_bytes(), f"{kind}.jpg", h).status_code \
            == 201
    before = c.get(f"/projects/api/reports/{rid}", headers=h).get_json()
    labels = {"schedule": "日程", "photo": "会议照片", "exam": "试题"}
    for kind, label in labels.items():
        for attack, (make, name, expected) in sorted(ATTACKS.items()):
            if kind == "exam" and attack == "renamed_png":
                expected = "PDF、Word（.docx）或 JPG"  # 试题 also takes PDF and Word: the reason lists them
            r = _post(c, f"/projects/api/reports/{rid}/uploads/{kind}", make(), name, h)
            assert _refused(r, label, expected), attack
    after = c.get(f"/projects/api/reports/{rid}", headers=h).get_json()
    assert after["uploads"] == before["uploads"]
