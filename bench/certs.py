"""The certificate export row of `make bench`, "certs" (`python -m bench.run --only certs`): no stack, no HTTP.

A certs database of the bench's own (<DATABASE_URL>_<run>_certs, brought to head with Alembic by deploy.manage,
dropped at the end) gets 1,000 EffectiveAward rows by one bulk INSERT: one institution's offering, varied Chinese
names, ID numbers (encrypted as the service stores them) and project titles (varied per award, unlike a real
offering, so the layout wraps differently page to page), effective, ended 5 weeks ago on services.common.clock
(printable: more than 4 weeks). Then, on that database, one step after the other (never side by side):

    export      services.certs.certificates.services.create_offering_export (as the institution's page does:
                numbers issued, job queued, audit row), committed; then the worker's task body
                services.certs.certificates.tasks.run_render(job_id) in a child process of its own
                (`python -m bench.certs export JOB`): one WeasyPrint document per CME_CERTS_RENDER_CHUNK
                certificates, the chunks rendered side by side by CME_CERTS_RENDER_PROCESSES forked render
                processes, each chunk split into pages, each page stored, the job's PDF assembled from the chunk
                PDFs. Timed in the child around run_render (font loading of the first document included). Its
                peak memory is that of the whole process tree (the task's process and its render processes):
                the highest sum of their Pss (/proc/PID/smaps_rollup, sampled every 50 ms; a page shared since
                the fork counts once in all), or the task process's own getrusage ru_maxrss when that is higher;
                the Rss sum (shared pages counted in every process) is printed beside it. The parent then checks
                the job is done and its PDF has 1,000 pages.
    per-cert    the same-run baseline, in a child process too (`python -m bench.certs percert JOB N`): for a
                sample of N = 50 of those certificates, render.page_values + render.render_document([one page])
                each (same sandboxed template, same data-only URL fetcher), after one untimed warm-up render;
                the mean is extrapolated to 1,000. Nothing is split, stored or merged here, so the baseline is
                cheaper than a real one-render-per-certificate export would be (the ratio errs low).

Targets: export <= 60 s in total, per-cert (extrapolated) / export >= 4.7x, the export's peak (its tree) <= 400 MB.
The row is skipped with the reason when WeasyPrint cannot be imported or the template's font (Noto Serif CJK SC)
is not installed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bench.run import ROOT, _drop

CERTS = 1000
SAMPLE = 50
TARGET_TOTAL_S = 60.0
TARGET_RATIO = 4.7
TARGET_PEAK_MB = 400.0
FONT_FAMILY = "Noto Serif CJK SC"  # services/certs/certificates/pdf/certificate.html
OFFERING_ID = 1
INSTITUTION_ID = 1
INSTITUTION_NAME = "西安交通大学第一附属医院"
ENDED_DAYS_AGO = 35  # printable from 28 days after the offering ended

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈欧阳"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍建国红梅志鹏晓东海燕慧颖婷雪琳浩宇欣怡子涵思远"
TOPICS = ("心血管急危重症诊治进展", "基层医院慢性阻塞性肺疾病规范化管理", "儿童哮喘",
          "围手术期血糖管理新进展与多学科协作",
          "急性缺血性脑卒中静脉溶栓及血管内治疗技术培训班", "医院感染预防与控制", "老年综合评估与共病管理",
          "超声引导下区域神经阻滞技术", "肿瘤免疫治疗相关不良反应的识别与处理", "护理质量安全管理")
KINDS = ("学习班", "研讨会", "培训班", "高级研修班")


# ---- data ----------------------------------------------------------------------------------------

def trainee_name(serial: int) -> str:
    """A Chinese name per serial: one surname (a few two-character ones) and one or two given characters."""
    if serial % 97 == 13:
        surname = "欧阳"
    else:
        surname = SURNAMES[serial % 50]
    first = GIVEN[(serial // 50 * 7 + serial) % len(GIVEN)]
    second = GIVEN[(serial // 3 * 13 + 5) % len(GIVEN)] if serial % 3 else ""
    return surname + first + second


def project_title(serial: int) -> str:
    return f"{TOPICS[serial % len(TOPICS)]}{KINDS[(serial // len(TOPICS)) % len(KINDS)]}"


def award_rows(count: int, today: dt.date, now: dt.datetime, encrypt: Callable[[str], str]) -> list[dict[str, Any]]:
    """``count`` effective awards of one offering (OFFERING_ID of INSTITUTION_ID), award ids 1..count, ended
    ENDED_DAYS_AGO days before ``today`` (so every certificate prints), as columns of effective_awards."""
    from bench.credits import trainee_key
    from bench.run import id_number

    ends = today - dt.timedelta(days=ENDED_DAYS_AGO)
    starts = ends - dt.timedelta(days=2)
    rows = []
    for i in range(count):
        rows.append({
            "award_id": i + 1, "offering_id": OFFERING_ID, "institution_id": INSTITUTION_ID,
            "trainee_key": trainee_key(i), "name": trainee_name(i), "id_enc": encrypt(id_number(i)),
            "project_number": f"{ends.year}-04-01-{1 + i % 50:03d}", "project_title": project_title(i),
            "institution_name": INSTITUTION_NAME, "starts_on": starts, "ends_on": ends,
            "credit_class": "Ⅰ类" if i % 4 else "Ⅱ类", "credit_value": Decimal(1 + i % 10) / 2,
            "activity_date": starts + dt.timedelta(days=i % 3), "effective_at": now - dt.timedelta(days=30),
            "received_at": now - dt.timedelta(days=30), "revoked_at": None, "revoke_reason": None,
        })
    return rows


# ---- prerequisites and the database ----------------------------------------------------------------

def prerequisites(which: Callable[[str], str | None] = shutil.which,
                  run: Callable[..., Any] = subprocess.run) -> str:
    """'' when the row can run, else why not (WeasyPrint missing, or the certificate's font not installed)."""
    try:
        import weasyprint  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - a missing library (or its C libraries): skip the row, say why
        return f"WeasyPrint cannot be imported: {type(exc).__name__}: {exc}"
    fc_list = which("fc-list")
    if fc_list is None:
        return f"fontconfig's fc-list not found: cannot tell whether the font {FONT_FAMILY!r} is installed"
    done = run([fc_list, f":family={FONT_FAMILY}", "family"], capture_output=True, text=True, timeout=30)
    if done.returncode != 0 or FONT_FAMILY not in (done.stdout or ""):
        return f"the certificate font {FONT_FAMILY!r} is not installed (fc-list finds none)"
    return ""


@contextmanager
def own_certs_database(server: str) -> Iterator[str]:
    """A certs database of the bench's own, <server>_<run>_certs, at Alembic head; dropped afterwards."""
    from services.common.config import normalise_db_url
    from services.common.db import ensure_database

    url = normalise_db_url(f"{server.rstrip('/')}_{uuid.uuid4().hex[:6]}_certs")
    try:
        ensure_database(url)
        done = subprocess.run([sys.executable, "-m", "deploy.manage", "upgrade", "certs"], cwd=ROOT,
                              env=_child_env(url), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"certs migrations failed:\n{done.stderr[-3000:]}")
        yield url
    finally:
        _drop([url])


def _child_env(url: str) -> dict[str, str]:
    return dict(os.environ, CME_CERTS_DATABASE_URL=url, PYTHONPATH=str(ROOT))


def load_awards(url: str, count: int = CERTS) -> float:
    """Insert ``count`` awards (one bulk INSERT) and ANALYZE; the seconds it took."""
    from sqlalchemy import create_engine, insert, text

    from services.certs import models  # noqa: F401 - the whole schema is known
    from services.certs.awards.models import EffectiveAward
    from services.common import clock, pii

    t0 = time.monotonic()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(insert(EffectiveAward.__table__), award_rows(count, clock.today_local(), clock.now(),
                                                                      pii.encrypt))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE effective_awards"))
    finally:
        engine.dispose()
    return time.monotonic() - t0


def create_job(url: str) -> int:
    """The export job of the whole offering, made as the institution's export button makes it; its id."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from services.certs import models  # noqa: F401
    from services.certs.certificates.services import create_offering_export
    from services.common.auth import Principal

    principal = Principal(role="institution", subject=f"inst:{INSTITUTION_ID}:admin:1", name="基准测试管理员",
                          institution_id=INSTITUTION_ID, admin_id=1)
    engine = create_engine(url)
    try:
        with Session(bind=engine, expire_on_commit=False) as session:
            job = create_offering_export(session, principal, OFFERING_ID)
            session.commit()
            return job.id
    finally:
        engine.dispose()


# ---- the child processes -------------------------------------------------------------------------

def peak_mb(ru_maxrss: int, platform: str = sys.platform) -> float:
    """ru_maxrss in MB (kilobytes on Linux, bytes on macOS)."""
    return ru_maxrss / (1024 * 1024 if platform == "darwin" else 1024)


def _timed(module: Any, name: str, spent: dict[str, float]) -> None:
    """Wrap module.name so the seconds spent in it add up in spent[name] (the export runs unchanged)."""
    inner = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0

    setattr(module, name, wrapper)


class TreeMemory:
    """Samples, every ``every`` seconds in a thread, the memory of this process and all its descendants (the
    render pool's children): the sums of their Rss and Pss (/proc/PID/smaps_rollup; Pss shares a page copied on
    fork among the processes that map it, Rss counts it in each). Linux only; elsewhere the sums stay 0."""

    def __init__(self, every: float = 0.05) -> None:
        import threading

        self.every, self.peak_rss_mb, self.peak_pss_mb, self.most_procs = every, 0.0, 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def _tree(root: int) -> list[int]:
        pids, todo = [], [root]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            try:
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/children") as fh:
                        todo.extend(int(c) for c in fh.read().split())
            except OSError:
                continue
        return pids

    def sample(self) -> None:
        rss = pss = 0
        pids = self._tree(os.getpid())
        for pid in pids:
            try:
                with open(f"/proc/{pid}/smaps_rollup") as fh:
                    for line in fh:
                        if line.startswith("Rss:"):
                            rss += int(line.split()[1])
                        elif line.startswith("Pss:"):
                            pss += int(line.split()[1])
            except OSError:
                continue
        self.peak_rss_mb = max(self.peak_rss_mb, rss / 1024)
        self.peak_pss_mb = max(self.peak_pss_mb, pss / 1024)
        self.most_procs = max(self.most_procs, len(pids))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()


def child_export(job_id: int) -> dict[str, Any]:
    """In the child: the worker's task body on one job; seconds, where they went, the peak memory of the process
    and of the render processes it starts (sampled, and each one's own peak when it has ended)."""
    from services.certs import models  # noqa: F401
    from services.certs.certificates import render
    from services.certs.certificates.services import render_chunk
    from services.certs.certificates.tasks import run_render

    spent: dict[str, float] = {}
    for name in ("render_document", "split_pages", "assemble", "page_values"):
        _timed(render, name, spent)
    pool_stats: dict[str, float] = {}
    chunks = render.render_chunks

    def render_chunks(*args: Any, **kwargs: Any) -> Any:  # the pool's children time their own documents
        kwargs["stats"] = pool_stats
        return chunks(*args, **kwargs)

    render.render_chunks = render_chunks
    peaks = {"start": _peak()}
    timed_assemble = render.assemble

    def assemble(sources: Any) -> bytes:  # the peak so far is the rendering's; assembling comes last
        peaks["rendered"] = _peak()
        return timed_assemble(sources)

    render.assemble = assemble
    with TreeMemory() as tree:
        t0 = time.perf_counter()
        state = run_render(job_id)
        seconds = time.perf_counter() - t0
        tree.sample()
    peaks["end"] = _peak()
    children = peak_mb(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    # the figure held against the target: the whole tree's proportional memory at its sampled peak, or this
    # process's own peak when that is higher (a spike between two samples of a process without children)
    peak = max(peaks["end"], tree.peak_pss_mb)
    return {"state": state, "seconds": seconds, "spent": spent, "chunk": render_chunk(), "peaks_mb": peaks,
            "peak_mb": peak, "tree_rss_mb": tree.peak_rss_mb, "tree_pss_mb": tree.peak_pss_mb,
            "child_peak_mb": children, "processes": tree.most_procs, "pool_render_cpu_s": pool_stats.get(
                "render_cpu_s", 0.0), "cpu_s": time.process_time()}


def _peak() -> float:
    return peak_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def child_percert(job_id: int, sample: int) -> dict[str, Any]:
    """In the child: one WeasyPrint render per certificate for ``sample`` certificates of the job (after one
    untimed warm-up render), with the same template and fetcher as the export."""
    from sqlalchemy import select

    from services.certs import models  # noqa: F401
    from services.certs.awards.models import EffectiveAward
    from services.certs.certificates import render
    from services.certs.certificates.models import Certificate, ExportJob
    from services.certs.db import db

    session = db.new_session()
    try:
        ids = session.get(ExportJob, job_id).award_ids[:sample + 1]  # type: ignore[union-attr]
        pairs = session.execute(select(Certificate, EffectiveAward)
                                .join(EffectiveAward, EffectiveAward.award_id == Certificate.award_id)
                                .where(Certificate.award_id.in_(ids))).all()
    finally:
        session.close()
    by_award = {a.award_id: (c, a) for c, a in pairs}
    ordered = [by_award[i] for i in ids]
    warm_cert, warm_award = ordered[0]
    render.render_document([render.page_values(warm_cert, warm_award)])
    times, sizes = [], []
    for cert, award in ordered[1:]:
        t0 = time.perf_counter()
        pdf = render.render_document([render.page_values(cert, award)])
        times.append(time.perf_counter() - t0)
        sizes.append(len(pdf))
    return {"times": times, "mean_bytes": statistics.fmean(sizes) if sizes else 0.0,
            "peak_mb": peak_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)}


def run_child(url: str, args: list[str], timeout: float, env: dict[str, str] | None = None) -> tuple[dict, float]:
    """`python -m bench.certs ARGS` on the certs database at ``url``; (its JSON answer, wall seconds)."""
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "bench.certs", *args], cwd=ROOT,
                          env={**_child_env(url), **(env or {})}, capture_output=True, text=True, timeout=timeout)
    wall = time.monotonic() - t0
    if done.returncode != 0:
        raise RuntimeError(f"bench.certs {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


# ---- the row -------------------------------------------------------------------------------------

@dataclass
class CertsResult:
    certs: int
    export_s: float  # run_render in the child
    export_wall_s: float  # the child process from start to exit (interpreter, imports, run_render)
    peak_mb: float
    chunk: int
    pages: int
    pdf_bytes: int
    load_s: float
    job_s: float
    sample_times: list[float]
    baseline_peak_mb: float
    spent: dict[str, float] = field(default_factory=dict)
    peaks_mb: dict[str, float] = field(default_factory=dict)  # the export child's own peak: start, before assembling
    loads: list[str] = field(default_factory=list)
    tree: dict[str, float] = field(default_factory=dict)  # the export child and its render processes

    @property
    def per_cert_s(self) -> float:
        return extrapolate(self.sample_times, self.certs)

    @property
    def ratio(self) -> float:
        return self.per_cert_s / self.export_s if self.export_s else float("inf")


def extrapolate(times: list[float], count: int) -> float:
    """The mean of the sampled per-certificate renders, times ``count``."""
    return statistics.fmean(times) * count if times else 0.0


def _loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def run_certs(url: str, *, certs: int = CERTS, sample: int = SAMPLE, chunk: str = "") -> CertsResult:
    """Load the awards into the certs database at ``url``, run the export child, then the per-cert child."""
    import io

    from pypdf import PdfReader
    from sqlalchemy import create_engine, func, select
    from sqlalchemy.orm import Session

    from services.certs.certificates.models import Certificate, ExportJob

    loads = [f"start {_loadavg()}"]
    load_s = load_awards(url, certs)
    t0 = time.monotonic()
    job_id = create_job(url)
    job_s = time.monotonic() - t0
    env = {"CME_CERTS_RENDER_CHUNK": chunk} if chunk else None
    loads.append(f"before export {_loadavg()}")
    out, wall = run_child(url, ["export", str(job_id)], timeout=900, env=env)
    loads.append(f"after export {_loadavg()}")
    engine = create_engine(url)
    try:
        with Session(bind=engine) as session:
            job = session.get(ExportJob, job_id)
            assert job is not None
            pdf = session.scalar(select(ExportJob.pdf).where(ExportJob.id == job_id))
            rendered = session.scalar(select(func.count()).select_from(Certificate)
                                      .where(Certificate.rendered_at.is_not(None)))
            if out["state"] != "done" or job.state != "done" or pdf is None:
                raise RuntimeError(f"the export job ended {job.state!r} ({job.error or out['state']})")
            pages = len(PdfReader(io.BytesIO(pdf)).pages)
            if pages != certs or rendered != certs:
                raise RuntimeError(f"the export made {pages} pages and {rendered} certificate pages, not {certs}")
    finally:
        engine.dispose()
    base, _ = run_child(url, ["percert", str(job_id), str(sample)], timeout=900)
    loads.append(f"after per-cert {_loadavg()}")
    return CertsResult(certs=certs, export_s=out["seconds"], export_wall_s=wall, peak_mb=out["peak_mb"],
                       chunk=out["chunk"], pages=pages, pdf_bytes=len(pdf), load_s=load_s, job_s=job_s,
                       sample_times=base["times"], baseline_peak_mb=base["peak_mb"], spent=out["spent"],
                       peaks_mb=out["peaks_mb"], loads=loads,
                       tree={k: out.get(k, 0.0) for k in ("tree_rss_mb", "tree_pss_mb", "child_peak_mb", "processes",
                                                          "pool_render_cpu_s", "cpu_s")})


def certs_table(r: CertsResult) -> list[str]:
    sp, pk = r.spent, r.peaks_mb
    rest = r.export_s - sum(sp.get(k, 0.0) for k in ("render_document", "split_pages", "assemble", "page_values"))
    tr = r.tree
    n = len(r.sample_times)
    return [
        f"  {'':<42} {'seconds':>9} {'peak MB':>8}",
        f"  {f'export, one document per {r.chunk} certificates':<42} {r.export_s:>9.1f} {r.peak_mb:>8.0f}",
        f"  {f'per-cert, {n} renders x {r.certs / n if n else 0:g} (extrapolated)':<42} {r.per_cert_s:>9.1f} "
        f"{r.baseline_peak_mb:>8.0f}",
        f"  export: {r.pages} pages, {r.pdf_bytes / 1e6:.1f} MB PDF; child process {r.export_wall_s:.1f} s with "
        f"start-up; in WeasyPrint here {sp.get('render_document', 0):.1f} s and in the render processes "
        f"{tr.get('pool_render_cpu_s', 0):.1f} s CPU; page values {sp.get('page_values', 0):.1f} s, split "
        f"{sp.get('split_pages', 0):.1f} s, assemble {sp.get('assemble', 0):.1f} s, the rest (database, waiting for "
        f"the render processes) {rest:.1f} s; the export process's own CPU {tr.get('cpu_s', 0):.1f} s",
        f"  export process's own peak memory: {pk.get('start', 0):.0f} MB after imports, {pk.get('rendered', 0):.0f} "
        f"MB when every page was rendered and stored, {pk.get('end', 0):.0f} MB at the end; with its render "
        f"processes ({tr.get('processes', 0):.0f} at most, each peaking at {tr.get('child_peak_mb', 0):.0f} MB at "
        f"most): {tr.get('tree_pss_mb', 0):.0f} MB Pss (shared pages split), {tr.get('tree_rss_mb', 0):.0f} MB Rss "
        f"(shared pages counted in each); held against the target: {r.peak_mb:.0f} MB",
        f"  per-cert sample: {n} certificates, {1000 * statistics.fmean(r.sample_times) if n else 0:.0f} ms mean, "
        f"{1000 * statistics.median(r.sample_times) if n else 0:.0f} ms median each (after 1 untimed warm-up), "
        f"x {r.certs} = {r.per_cert_s:.1f} s",
        f"  {r.certs} awards loaded in {r.load_s:.1f} s, the job created in {r.job_s:.1f} s; load average: "
        + "; ".join(r.loads),
    ]


def certs_ratio_lines(result: CertsResult | None, skipped: str = "") -> tuple[list[str], bool]:
    """Per-cert (extrapolated) / export >= 4.7x, export <= 60 s, the export's peak (its process tree, Pss) <= 400 MB."""
    if result is None:
        return [f"  certificate export: not measured ({skipped or 'not run'})"], True
    r = result
    checks = [
        (f"certificate export per-cert (extrapolated from {len(r.sample_times)}) / one document = {r.ratio:.2f}x "
         f"(target >= {TARGET_RATIO:g}x)", r.ratio >= TARGET_RATIO),
        (f"certificate export of {r.certs}: {r.export_s:.1f} s (target <= {TARGET_TOTAL_S:.0f} s)",
         r.export_s <= TARGET_TOTAL_S),
        (f"certificate export worker peak memory (with its render processes, Pss): {r.peak_mb:.0f} MB "
         f"(target <= {TARGET_PEAK_MB:.0f} MB)",
         r.peak_mb <= TARGET_PEAK_MB),
    ]
    return [f"  {text}: {'MET' if good else 'NOT MET'}" for text, good in checks], all(g for _, g in checks)


def main(argv: list[str] | None = None) -> int:
    """The child processes: `export JOB` or `percert JOB N`; one line of JSON on stdout."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "export":
        out = child_export(int(args[1]))
    elif len(args) == 3 and args[0] == "percert":
        out = child_percert(int(args[1]), int(args[2]))
    else:
        print("usage: python -m bench.certs export JOB | percert JOB N (children of `bench.run --only certs`)",
              file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
