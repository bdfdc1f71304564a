"""QR images: segno with a fixed mask, cached per (activity, window, slot), readable by zbar."""

from __future__ import annotations

import io
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from services.checkin.qr import image, tokens

URL = "https://cme.example.gov.cn/checkin/q/" + tokens.make_token(12, 345, 29_612_345, tokens.QRConfig())


@pytest.fixture(autouse=True)
def _fresh_cache():
    image.cache_clear()
    yield
    image.cache_clear()


def test_svg_is_cached_per_slot_and_scalable():
    svg = image.qr_svg(12, 345, 29_612_345, URL)
    assert image.qr_svg(12, 345, 29_612_345, URL) is svg  # the same object: not recomputed
    assert image.qr_svg.cache_info().hits == 1
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and root.get("viewBox") and root.get("width") is None
    # another slot is another image
    other_url = "https://cme.example.gov.cn/checkin/q/" + tokens.make_token(12, 345, 29_612_346, tokens.QRConfig())
    assert image.qr_svg(12, 345, 29_612_346, other_url) != svg


def test_png_is_cached_and_a_valid_image():
    png = image.qr_png(12, 345, 29_612_345, URL)
    assert image.qr_png(12, 345, 29_612_345, URL) is png
    assert png.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(png)) as img:
        width, height = img.size
    assert width == height == (41 + 2 * image.BORDER) * 8  # fixed version 6, scale 8


def test_code_uses_fixed_mask_level_and_version():
    code = image.qr_code(12, 345, 29_612_345, URL)
    assert (code.mask, code.error, code.version) == (image.MASK, "M", image.VERSION)
    # the segno object is shared by the SVG and the PNG of a slot
    image.qr_svg(12, 345, 29_612_345, URL)
    image.qr_png(12, 345, 29_612_345, URL)
    assert image.qr_code.cache_info().misses == 1


def test_long_url_falls_back_to_a_larger_version():
    long_url = "https://" + "a" * 150 + ".example/checkin/q/x"
    code = image.qr_code(1, 1, 1, long_url)
    assert code.version > image.VERSION and code.mask == image.MASK


def test_cache_is_bounded():
    for slot in range(image.CACHE_SIZE + 10):
        image.qr_code(1, 1, slot, f"https://x.example/q/{slot}")
    assert image.qr_code.cache_info().currsize == image.CACHE_SIZE


def test_empty_url_refused():
    with pytest.raises(ValueError):
        image.qr_svg(1, 1, 1, "")


def test_png_decodes_with_zbar(tmp_path):
    assert shutil.which("zbarimg"), "make test installs zbar-tools (deploy/install.sh --test)"
    path = tmp_path / "qr.png"
    path.write_bytes(image.qr_png(12, 345, 29_612_345, URL))
    out = subprocess.run(["zbarimg", "--raw", "-q", str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == URL
