"""PDF rendering, safe and lean.

* The certificate template runs in a sandboxed Jinja environment (autoescape) and is fed plain strings only.
* WeasyPrint fetches nothing but data: URIs (the QR code); file:, http(s): and the rest are refused.
* Many certificates are ONE WeasyPrint document per chunk (one HTML, a page break per certificate); the chunk's PDF
  is split into single pages (pypdf, cheap: the page keeps the chunk's font subset) so each certificate's page is
  stored once and never rendered again, and the job's PDF is assembled from the chunk PDFs themselves (one font
  subset per chunk, not one per page).
* Chunks render side by side in a small process pool (CME_CERTS_RENDER_PROCESSES, default 2: the render worker runs
  one task at a time on a 2-core machine); one chunk renders in-process.
* gc.collect() after every document; a pool is replaced after CERTIFICATES_PER_PROCESS certificates a process, and
  ends with the task; the worker also recycles its child.
"""

from __future__ import annotations

import gc
import hashlib
import io
import multiprocessing
import re
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import segno
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from pypdf import PageObject, PdfReader, PdfWriter
from pypdf.generic import DictionaryObject, IndirectObject, NameObject
from weasyprint import HTML
from weasyprint.urls import URLFetcher

from services.common import clock, pii
from services.common.config import env, get_settings
from services.common.formats import fmt_credits, zh_date

from ..awards.models import EffectiveAward
from .models import Certificate

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
    # mask 0 is as readable as any; letting segno choose one costs ~3x the time of the whole code.
    # A 1-bit PNG, one pixel a module, drawn unsmoothed (image-rendering: pixelated in the template): WeasyPrint
    # embeds it as a tiny image, where an SVG of the same code was parsed and drawn path by path (~20 ms a page).
    return segno.make(url, error="m", micro=False, mask=0).png_data_uri(scale=1, border=2)


def fit(name: str, title: str, institution: str) -> str:
    """The page's type size for its longest texts ("", "long", "longest"): a certificate is one page, and a title of
    the catalogue's full 300 characters at the usual size ran onto a second one (its export then failed whole)."""
    if len(title) > 60 or len(institution) > 40 or len(name) > 16:
        return "longest"
    if len(title) > 24 or len(institution) > 20 or len(name) > 6:
        return "long"
    return ""


def page_values(cert: Certificate, award: EffectiveAward, qr: bool = True) -> dict[str, str]:
    """Everything one page shows, as plain strings (the sandbox gets nothing else). qr=False leaves the QR code
    out, for render_chunks to draw it where the chunk renders (in a render process)."""
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
        "issuer": ISSUER, "issue_date": zh_date(issued.date()), "verify_url": url,
        "size": fit(award.name, award.project_title, award.institution_name),
        **({"qr": qr_data_uri(url)} if qr else {}),
    }


def render_document(pages: list[dict[str, str]]) -> bytes:
    """One WeasyPrint document for all the pages given."""
    clean = [{"size": "", **{str(k): str(v) for k, v in p.items()}} for p in pages]  # size: the usual type
    html = _env.get_template("certificate.html").render(pages=clean)
    try:
        return HTML(string=html, base_url=None, url_fetcher=DataOnlyFetcher()).write_pdf()
    finally:
        del html
        gc.collect()


def _with_qr(pages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The pages, each with its QR code (drawn from its verify_url when page_values left it out)."""
    return [p if "qr" in p else {**p, "qr": qr_data_uri(p["verify_url"])} for p in pages]


def _render_in_child(pages: list[dict[str, str]]) -> tuple[bytes, float]:
    """A pool process's job: one chunk's document, and the CPU seconds it took."""
    t0 = time.process_time()
    pdf = render_document(_with_qr(pages))
    return pdf, time.process_time() - t0


def _child_start() -> None:
    """First thing in a render process. gc.freeze: what it inherited is never scanned by its collections, so those
    pages stay shared with the task's process (a collection writes to each object it scans, copying its page).
    PR_SET_PDEATHSIG: the process is killed with the task's process (a Celery hard time limit), never left over."""
    gc.freeze()
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1 (Linux)
    except (OSError, AttributeError):  # not Linux: the pool still ends with the task (shutdown in a finally)
        pass


@contextmanager
def _may_have_children() -> Iterator[None]:
    """Celery's prefork children are daemonic (billiard marks multiprocessing's current process so), and
    multiprocessing refuses to start a child from a daemonic process; the render processes never outlive the task
    (the pool is shut down in a finally, and they die with it), so the mark is lifted while the pool starts."""
    config = multiprocessing.current_process()._config  # type: ignore[attr-defined]
    daemon = config.get("daemon")
    config["daemon"] = False
    try:
        yield
    finally:
        if daemon is not None:
            config["daemon"] = daemon


def render_processes() -> int:
    """Render processes for a job of several chunks (1: everything in the task's own process)."""
    return max(1, int(env("CME_CERTS_RENDER_PROCESSES", "2") or 2))


# certificates one render process lays out before the pool is replaced by a fresh one: a WeasyPrint process grows
# outside Python's heap (~10 KB a certificate, steadily; neither gc.collect() nor malloc_trim frees it), and the
# processes of one export lived for the whole job (a 3,000-certificate export: ~15 MB more in each by its end)
CERTIFICATES_PER_PROCESS = 500


def render_chunks(chunks: Iterable[list[dict[str, str]]], count: int, processes: int | None = None,
                  stats: dict[str, float] | None = None,
                  per_process: int | None = None) -> Iterator[bytes]:
    """Each chunk's PDF, in order. More than one chunk: rendered side by side in a pool of ``processes`` forked
    children (at most ``processes`` + 1 chunks sent ahead), replaced by a fresh pool once it has been sent about
    ``per_process`` (CERTIFICATES_PER_PROCESS) certificates a process; one chunk, or one process: rendered here."""
    per_process = CERTIFICATES_PER_PROCESS if per_process is None else per_process
    procs = min(render_processes() if processes is None else processes, count)
    if procs <= 1:
        for pages in chunks:
            yield render_document(_with_qr(pages))
        return
    source = iter(chunks)
    while True:
        first = next(source, None)
        if first is None:
            return
        yield from _pool_run(first, source, procs, procs * max(1, per_process), stats)


def _pool_run(first: list[dict[str, str]], source: Iterator[list[dict[str, str]]], procs: int, budget: int,
              stats: dict[str, float] | None) -> Iterator[bytes]:
    """One pool's share: ``first`` and the chunks after it until ``budget`` certificates were sent (the rest stay
    in ``source`` for the next pool); the pool ends (its processes exit) before the last of its PDFs is handed
    back, so the next pool starts as this one goes."""
    pool = ProcessPoolExecutor(max_workers=procs, mp_context=multiprocessing.get_context("fork"),
                               initializer=_child_start)
    sent = len(first)

    def more() -> list[dict[str, str]] | None:
        nonlocal sent
        if sent >= budget:
            return None
        pages = next(source, None)
        sent += len(pages) if pages is not None else 0
        return pages

    try:
        pending: list[Future[tuple[bytes, float]]] = []
        with _may_have_children():  # with fork, every process of the pool starts at the first submit
            pending.append(pool.submit(_render_in_child, first))
        while len(pending) <= procs and (pages := more()) is not None:
            pending.append(pool.submit(_render_in_child, pages))
        while pending:
            pdf, cpu = pending.pop(0).result()
            if stats is not None:
                stats["render_cpu_s"] = stats.get("render_cpu_s", 0.0) + cpu
            nxt = more()
            if nxt is not None:
                pending.append(pool.submit(_render_in_child, nxt))
            elif not pending:
                pool.shutdown(wait=True)  # its processes gone before the next pool forks (they hold no chunk)
            yield pdf
            del pdf
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_DO = re.compile(rb"/([^\s/\[\]()<>{}%]+)\s+Do\b")


def _own_resources(page: PageObject) -> None:
    """WeasyPrint gives every page of a document ONE resources dictionary, with every page's images (the QR codes) in
    it; a page split off for storing keeps the shared entries (the font) but only the images its content draws."""
    resources = page.get("/Resources")
    if resources is None:
        return
    resources = resources.get_object()
    xobjects = resources.get("/XObject")
    if xobjects is None:
        return
    xobjects = xobjects.get_object()
    contents = page.get_contents()
    used = {b"/" + m for m in _DO.findall(contents.get_data())} if contents is not None else set()
    own = DictionaryObject({k: v for k, v in resources.items() if k != "/XObject"})
    own[NameObject("/XObject")] = DictionaryObject(
        {k: v for k, v in xobjects.items() if k.encode("latin-1") in used})
    page[NameObject("/Resources")] = own


def split_pages(pdf: bytes) -> list[bytes]:
    """One single-page PDF per page (with its chunk's font subset, and only its own images)."""
    reader = PdfReader(io.BytesIO(pdf))
    out = []
    for page in reader.pages:
        _own_resources(page)
        writer = PdfWriter()
        writer.add_page(page)
        buf = io.BytesIO()
        writer.write(buf)
        out.append(buf.getvalue())
    return out


def _font_key(font: Any) -> tuple[str, ...] | None:
    """What makes two embedded fonts the same: the font program, the Unicode map, the widths (pages split from one
    chunk carry byte-identical copies of its font)."""
    font = font.get_object()
    parts = [str(font.get("/BaseFont"))]
    for descendant in font.get("/DescendantFonts", []):
        descendant = descendant.get_object()
        parts.append(str(descendant.get("/W")))
        descriptor = descendant.get("/FontDescriptor")
        if descriptor is not None:
            descriptor = descriptor.get_object()
            for key in ("/FontFile", "/FontFile2", "/FontFile3"):
                if key in descriptor:
                    parts.append(hashlib.sha256(_raw(descriptor[key])).hexdigest())
    if len(parts) == 1:
        return None
    if "/ToUnicode" in font:
        parts.append(hashlib.sha256(_raw(font["/ToUnicode"])).hexdigest())
    return tuple(parts)


def _raw(stream: Any) -> bytes:
    stream = stream.get_object()
    data = getattr(stream, "_data", None)  # the stream as stored (compressed): no need to inflate it to compare
    return data if isinstance(data, bytes) else stream.get_data()


def _add_stored_page(writer: PdfWriter, reader: PdfReader, fonts: dict[tuple[str, ...], Any]) -> None:
    """A stored single-page PDF into the job's: a font already copied from another stored page of the same chunk is
    referenced, not copied again; then the writer lets go of the reader (so of the stored page's bytes)."""
    page = reader.pages[0]
    resources = page.get("/Resources")
    font_dict = resources.get_object().get("/Font") if resources is not None else None
    if font_dict is None:
        writer.add_page(page)
        _let_go(writer, reader, page)
        return
    new: dict[str, tuple[str, ...]] = {}
    shared = DictionaryObject()
    for name, ref in font_dict.get_object().items():
        key = _font_key(ref) if isinstance(ref, IndirectObject) else None
        if key is not None and key in fonts:
            shared[NameObject(name)] = fonts[key]
        else:
            shared[NameObject(name)] = ref
            if key is not None:
                new[name] = key
    own = DictionaryObject(resources.get_object())
    own[NameObject("/Font")] = shared
    page[NameObject("/Resources")] = own
    added = writer.add_page(page)
    copied = added["/Resources"].get_object()["/Font"].get_object()
    for name, key in new.items():
        fonts[key] = copied.raw_get(name)
    _let_go(writer, reader, page)


def _let_go(writer: PdfWriter, reader: PdfReader, page: PageObject) -> None:
    """pypdf keeps every reader a page came from alive (its translation table, and the map of merged pages used
    for links, which certificates have none of); a stored page's reader is needed no more once its page is in."""
    writer.reset_translation(reader)
    getattr(writer, "_merged_in_pages", {}).pop(page.indirect_reference, None)


def assemble(sources: Iterable[tuple[bytes, int]]) -> bytes:
    """The job's PDF from (a PDF, a page index in it) per page, in order. Pages of one PDF (a chunk just rendered)
    share its objects, its font subset above all, so each chunk's font is in the result once; stored pages (single
    page PDFs, each carrying its chunk's font) share the first copy of an identical font, and are let go of one by
    one (a re-export of 1,000 stored pages never holds them all)."""
    writer = PdfWriter()
    readers: dict[int, PdfReader] = {}  # the chunk PDFs (the caller keeps them alive, so their ids stay theirs)
    fonts: dict[tuple[str, ...], Any] = {}
    for blob, index in sources:
        reader = readers.get(id(blob))
        if reader is None:
            reader = PdfReader(io.BytesIO(blob))
            if len(reader.pages) == 1:
                _add_stored_page(writer, reader, fonts)
                continue
            readers[id(blob)] = reader
        writer.add_page(reader.pages[index])
    buf = io.BytesIO()
    writer.write(buf)
    readers.clear()
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
