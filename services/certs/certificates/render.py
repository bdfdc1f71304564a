"""PDF rendering, safe and lean.

* The certificate template runs in a sandboxed Jinja environment (autoescape) and is fed plain strings only.
* WeasyPrint fetches nothing but data: URIs (the QR code); file:, http(s): and the rest are refused.
* Many certificates are ONE WeasyPrint document (one HTML, a page break per certificate); the resulting PDF is then
  split into single pages so each certificate's page is stored once and never rendered again.
* gc.collect() after every document; the worker also recycles its child (max tasks / memory per child).
"""

from __future__ import annotations

import gc
import hashlib
import io
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import segno
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from pypdf import PdfReader, PdfWriter
from weasyprint import HTML
from weasyprint.urls import URLFetcher

from services.common import clock, pii
from services.common.config import get_settings

from ..awards.models import EffectiveAward
from .models import Certificate
from .rules import zh_date

PDF_TEMPLATES = Path(__file__).parent / "pdf"
ISSUER = "陕西省继续医学教育委员会"
TITLE = "继续医学教育学分证书"

_env = SandboxedEnvironment(loader=FileSystemLoader(str(PDF_TEMPLATES)), autoescape=True, undefined=StrictUndefined)


class RefusedURL(ValueError):
    """WeasyPrint asked for something other than a data: URI."""


class DataOnlyFetcher(URLFetcher):
    """The only resources a certificate may load are inline data: URIs."""

    def __init__(self) -> None:
        super().__init__(timeout=5, allowed_protocols=("data",), allow_redirects=False)

    def fetch(self, url: str, headers: Any = None) -> Any:
        if not url.strip().lower().startswith("data:"):
            raise RefusedURL(f"certificate renderer refuses {url.split(':', 1)[0]}: URLs")
        return super().fetch(url, headers)


def verify_url(number: str) -> str:
    return f"{get_settings().public_base_url.rstrip('/')}/certs/verify/{number}"


def qr_data_uri(url: str) -> str:
    # mask 0 is as readable as any; letting segno choose one costs ~3x the time of the whole code
    return segno.make(url, error="m", micro=False, mask=0).svg_data_uri(scale=4, border=2)


def fmt_credits(value: Decimal) -> str:
    text = format(Decimal(value).quantize(Decimal("0.01")), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def page_values(cert: Certificate, award: EffectiveAward) -> dict[str, str]:
    """Everything one page shows, as plain strings (the sandbox gets nothing else)."""
    url = verify_url(cert.number)
    starts, ends = award.starts_on, award.ends_on
    dates = zh_date(starts) if starts == ends else f"{zh_date(starts)}至{zh_date(ends)}"
    issued = clock.to_local(cert.issued_at)
    assert issued is not None
    return {
        "title": TITLE, "number": cert.number, "name": award.name, "id_masked": pii.mask_id(pii.decrypt(award.id_enc)),
        "project_number": award.project_number, "project_title": award.project_title,
        "institution": award.institution_name, "dates": dates, "credit_class": award.credit_class,
        "credit_value": fmt_credits(award.credit_value), "activity_date": zh_date(award.activity_date),
        "issuer": ISSUER, "issue_date": zh_date(issued.date()), "verify_url": url, "qr": qr_data_uri(url),
    }


def render_document(pages: list[dict[str, str]]) -> bytes:
    """One WeasyPrint document for all the pages given."""
    clean = [{str(k): str(v) for k, v in p.items()} for p in pages]
    html = _env.get_template("certificate.html").render(pages=clean)
    try:
        return HTML(string=html, base_url=None, url_fetcher=DataOnlyFetcher()).write_pdf()
    finally:
        del html
        gc.collect()


def split_pages(pdf: bytes) -> list[bytes]:
    reader = PdfReader(io.BytesIO(pdf))
    out = []
    for page in reader.pages:
        writer = PdfWriter()
        writer.add_page(page)
        buf = io.BytesIO()
        writer.write(buf)
        out.append(buf.getvalue())
    return out


def merge(pdfs: Iterable[bytes]) -> bytes:
    writer = PdfWriter()
    for blob in pdfs:
        writer.append(PdfReader(io.BytesIO(blob)))
    # pages split from one render carry the same font subset: keep one copy of it
    writer.compress_identical_objects(remove_duplicates=True, remove_unreferenced=True)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
