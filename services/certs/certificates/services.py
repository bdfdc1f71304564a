"""What the pages and the JSON API share: the trainee's list, issuing numbers, export jobs, the render run of a job,
verification and the committee's look-up. One place for each rule; views only load, authorise and answer."""

from __future__ import annotations

import base64
import datetime as dt
import gc
import logging
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import distinct, func, select, update
from sqlalchemy.orm import Session

from services.common import clock, jobs
from services.common.audit import record_audit
from services.common.auth import Principal
from services.common.config import env
from services.common.db import insert_for, xact_lock
from services.common.errors import AppError
from services.common.formats import fmt_credits
from services.common.inputs import half_width
from services.common.paging import paginate
from services.common.sorting import zh_sort_key

from ..audit import AuditLog
from ..awards.models import EffectiveAward
from . import render
from .models import Certificate, ExportJob
from .rules import PRINTABLE_AFTER, PrintStatus, print_status, printable_from
from .tasks import RENDER_TIME_LIMIT

log = logging.getLogger(__name__)

NOT_FOUND = "您要找的内容不存在。"
NUMBER_RE = re.compile(r"^\d{4}[A-Z2-7]{12}$")
MAX_PER_TRAINEE_EXPORT = 200


def render_chunk() -> int:
    """Certificates per WeasyPrint document (one document, a page each; bounded so memory stays in check: each of
    the render processes holds one chunk's layout at a time)."""
    return max(1, int(env("CME_CERTS_RENDER_CHUNK", "25") or 25))


# ---------------------------------------------------------------- numbers and look-ups

def new_number(year: int) -> str:
    return f"{year:04d}" + base64.b32encode(secrets.token_bytes(10)).decode("ascii")[:12]


# the 12 characters after the year are base32 (A-Z, 2-7): 0, 1 and 8 never occur, so one typed from paper is the
# letter it looks like (an HR clerk typing O as 0 was told the certificate might be forged)
_LOOKALIKES = str.maketrans("018", "OIB")
# the year is digits only: the same look-alikes the other way round (2O26 was refused as 前 4 位应为年份数字)
_YEAR_LOOKALIKES = str.maketrans("OIB", "018")


# the label printed before the number, pasted with it from the certificate ("证书编号：2026…"): read as the year's
# first characters, its colon made "2026" into "2O26" and the number 21 characters long
_LABEL = re.compile(r"^\s*(?:证书)?编号\s*[:：]?\s*")


def typed_number(raw: str) -> str:
    """The number as the verifier typed or pasted it, without a leading 证书编号： label and surrounding spaces:
    what a page says back to her (never the normalised form, whose O for 0 she did not type)."""
    return _LABEL.sub("", raw or "").strip()


def folded_number(raw: str) -> str:
    """The typed number with spaces, dashes, 全角 and case folded, no look-alike read as a letter yet."""
    return re.sub(r"[\s\-]", "", half_width(typed_number(raw))).upper()


def normalise_number(raw: str) -> str:
    """The number as looked up: folded, a look-alike read as the digit in the year and as the letter after it."""
    text = folded_number(raw)
    return text[:4].translate(_YEAR_LOOKALIKES) + text[4:].translate(_LOOKALIKES)


_NUMBER_SHAPE = re.compile(r"\d{4}[A-Z2-7]{12}")


def number_problem(number: str) -> str | None:
    """Why a normalised number cannot be any certificate's, in the verifier's words; None when it could be one.
    "Not found" reads as "forged" to an HR clerk, where a character left out is only a typing slip."""
    if _NUMBER_SHAPE.fullmatch(number):
        return None
    if len(number) != 16:
        return f"证书编号应为 16 位（4 位年份加 12 位字母和数字），您输入的是 {len(number)} 位"
    if not number[:4].isascii() or not number[:4].isdigit():
        return "证书编号的前 4 位应为年份数字"
    return "证书编号年份之后的 12 位只含字母 A–Z 和数字 2–7"


def same_name(typed: str, award: EffectiveAward) -> bool:
    """The name a verifier holds (the paper's, the applicant's) is the certificate's: spaces and the middle dot of
    minority names aside."""
    def fold(name: str) -> str:
        return re.sub(r"[\s·•・.]", "", half_width(name or ""))
    return bool(fold(typed)) and fold(typed) == fold(award.name)


def mask_name(name: str) -> str:
    """The surname and one star, whatever the length: a star per character told a guesser the name's length."""
    name = (name or "").strip()
    return name[:1] + "*" if name else "*"


@dataclass
class Row:
    award: EffectiveAward
    status: PrintStatus
    certificate: Certificate | None


def trainee_rows(session: Session, trainee_key: str) -> list[Row]:
    today = clock.today_local()
    pairs = session.execute(
        select(EffectiveAward, Certificate).outerjoin(Certificate, Certificate.award_id == EffectiveAward.award_id)
        .where(EffectiveAward.trainee_key == trainee_key)
        .order_by(EffectiveAward.activity_date.desc(), EffectiveAward.award_id.desc())).all()
    return _with_restored([Row(a, print_status(a, today), c) for a, c in pairs])


def offering_rows(session: Session, principal: Principal, offering_id: int) -> list[Row]:
    """Every award of an offering of the signed-in institution, by name in pinyin order with numbers in natural
    order (the database's order by character code put 学员1337 before 学员282, and 学 before 安); the page, the API
    and the offering's PDF follow it. Another's offering (or an unknown one) is 404."""
    today = clock.today_local()
    pairs = sorted(session.execute(
        select(EffectiveAward, Certificate).outerjoin(Certificate, Certificate.award_id == EffectiveAward.award_id)
        .where(EffectiveAward.offering_id == offering_id,
               EffectiveAward.institution_id == principal.institution_id)).all(),
        key=lambda pair: (zh_sort_key(pair[0].name, name=True), pair[0].award_id))
    if not pairs:
        raise AppError(404, "not_found", NOT_FOUND)
    return _with_restored([Row(a, print_status(a, today), c) for a, c in pairs])


RESTORED = "；本期学分已恢复，请打印新编号的证书"


def _with_restored(rows: list[Row]) -> list[Row]:
    """A revoked certificate beside a current award of the same trainee in the same offering (the committee's 恢复
    gives a new award, so a new certificate): said so, or the two rows of one title read as a credit lost."""
    current = {(r.award.trainee_key, r.award.offering_id) for r in rows if not r.status.revoked}
    return [Row(r.award, replace(r.status, text=r.status.text + RESTORED), r.certificate)
            if r.status.revoked and (r.award.trainee_key, r.award.offering_id) in current else r for r in rows]


def restored_as(session: Session, award: EffectiveAward) -> tuple[EffectiveAward, Certificate | None] | None:
    """The current award (and its certificate, once exported) that stands for a revoked one: the trainee's
    unrevoked award of the same offering, as the committee's 恢复 makes it."""
    if award.revoked_at is None:
        return None
    row = session.execute(
        select(EffectiveAward, Certificate).outerjoin(Certificate, Certificate.award_id == EffectiveAward.award_id)
        .where(EffectiveAward.trainee_key == award.trainee_key, EffectiveAward.offering_id == award.offering_id,
               EffectiveAward.revoked_at.is_(None))
        .order_by(EffectiveAward.award_id.desc())).first()
    return (row[0], row[1]) if row else None


def _in_year(year: int) -> Any:
    """The awards whose credit counts in `year`: the activity date's year, as the certificate's number and 达标情况查询
    count it."""
    return EffectiveAward.activity_date.between(dt.date(year, 1, 1), dt.date(year, 12, 31))


def institution_offerings(session: Session, principal: Principal, year: int, args: dict[str, Any]) -> dict[str, Any]:
    """One page (services.common.paging) of the institution's offerings whose credits count in `year`, latest ended
    first, each with its effective, withdrawn and printable counts (of the whole offering: its export is whole).
    An office of many years' offerings had them all on one page."""
    ends = func.max(EffectiveAward.ends_on).label("ends_on")
    stmt = (select(EffectiveAward.offering_id, ends)
            .where(EffectiveAward.institution_id == principal.institution_id, _in_year(year))
            .group_by(EffectiveAward.offering_id))
    page = paginate(session, stmt, args, ends.desc(), EffectiveAward.offering_id, scalars=False)
    ids = [row.offering_id for row in page["items"]]
    today = clock.today_local()
    out: dict[int, dict[str, Any]] = {i: {} for i in ids}  # the page's order
    awards = session.scalars(select(EffectiveAward).where(EffectiveAward.institution_id == principal.institution_id,
                                                          EffectiveAward.offering_id.in_(ids))
                             .order_by(EffectiveAward.award_id)) if ids else []
    for a in awards:
        o = out[a.offering_id]
        if not o:
            o.update(offering_id=a.offering_id, project_number=a.project_number, project_title=a.project_title,
                     starts_on=a.starts_on, ends_on=a.ends_on, count=0, revoked=0, printable=0,
                     printable_from=printable_from(a))
        if a.revoked_at is not None:  # withdrawn after it took effect: no longer an effective award
            o["revoked"] += 1
            continue
        o["count"] += 1
        o["printable"] += int(print_status(a, today).printable)
    return {**page, "items": list(out.values())}


def offering_years(session: Session, principal: Principal) -> dict[int, int]:
    """Each year the institution has offerings in (by the year their credits count in), with how many."""
    year = func.extract("year", EffectiveAward.activity_date)
    rows = session.execute(select(year, func.count(distinct(EffectiveAward.offering_id)))
                           .where(EffectiveAward.institution_id == principal.institution_id).group_by(year))
    return {int(y): n for y, n in rows}


def offering_notes(session: Session, principal: Principal, year: int, total: int) -> dict[str, Any]:
    """What 学分证书导出 says beside a year's offerings, for the page and the API alike: the years the institution has
    offerings in, how many of last year's print only from this year (January and February, looking at this year),
    and the hint in words (an empty year was a bare total 0 in the API, where the page said why and where to look)."""
    today = clock.today_local()
    years = offering_years(session, principal)
    # January and February: when last December's offerings become printable and are exported, from last year's list
    late = printable_since_new_year(session, principal, year) if year == today.year and today.month <= 2 else 0
    others = sorted(((y, n) for y, n in years.items() if y != year), reverse=True)
    said = []
    if not total:
        listed = "、".join(f"{y} 年度（{n} 期）" for y, n in others)
        said.append(f"{year} 年度暂无已生效的授分。" + (f"其他年度：{listed}。" if others else ""))
    if late:
        said.append(f"{year - 1} 年度有 {late} 期项目于年末结束，其证书自 {year} 年起可打印，请查看 {year - 1} 年度。")
    return {"years": years, "others": others, "late": late, "hint": "".join(said) or None}


def printable_since_new_year(session: Session, principal: Principal, year: int) -> int:
    """How many offerings of `year` - 1 print only from `year` on (ended in its last 4 weeks): in January they are
    the ones an office exports, and `year`'s list (the default one) does not hold them."""
    first = dt.date(year, 1, 1)
    return session.scalar(select(func.count(distinct(EffectiveAward.offering_id))).where(
        EffectiveAward.institution_id == principal.institution_id, _in_year(year - 1),
        EffectiveAward.ends_on >= first - PRINTABLE_AFTER, EffectiveAward.revoked_at.is_(None))) or 0


def by_number(session: Session, number: str) -> tuple[Certificate, EffectiveAward] | None:
    number = normalise_number(number)
    if not NUMBER_RE.match(number):
        return None
    row = session.execute(select(Certificate, EffectiveAward)
                          .join(EffectiveAward, EffectiveAward.award_id == Certificate.award_id)
                          .where(Certificate.number == number)).first()
    return (row[0], row[1]) if row else None


def verification(session: Session, number: str, name: str = "",
                 allow_name_check: Any = lambda number: True) -> dict[str, Any] | None:
    """What the public page says of a number: no personal data beyond the masked name; given the name the
    verifier holds, whether it is the certificate's (yes or no, never the name itself)."""
    found = by_number(session, number)
    if found is None:
        return None
    cert, award = found
    revoked = award.revoked_at is not None
    checked = bool(name.strip()) and allow_name_check(cert.number)
    # withdrawn by mistake and given back (恢复: a new award, a new certificate): the old paper read as a credit lost
    # to the clerk holding it; she is told a newer certificate exists, never its number (no other certificate named)
    restored = revoked and restored_as(session, award) is not None
    return {"name_checked": checked, "name_limited": bool(name.strip()) and not checked, "restored": restored,
            "name_matches": same_name(name, award) if checked else None,
            "number": cert.number, "status": "revoked" if revoked else "valid",
            "status_label": "已撤销" if revoked else "有效",
            "revoked_at": award.revoked_at, "revoked_on": clock.fmt(award.revoked_at, "%Y-%m-%d") or None,
            "name_masked": mask_name(award.name), "project_number": award.project_number,
            "project_title": award.project_title, "institution_name": award.institution_name,
            "credit_class": award.credit_class, "credit_value": fmt_credits(award.credit_value),
            # the dates the paper shows: a verifier compares them (a 2025 certificate redated 2026 read as valid),
            # and the activity date's year is the year the credit counts in
            "starts_on": award.starts_on, "ends_on": award.ends_on, "activity_date": award.activity_date,
            "credit_year": award.activity_date.year, "issued_on": clock.fmt(cert.issued_at, "%Y-%m-%d")}


# ---------------------------------------------------------------- issuing and export jobs

def issue_certificates(session: Session, awards: list[EffectiveAward]) -> dict[int, Certificate]:
    """A number for every award that has none yet (a certificate, once numbered, keeps its number). Its year is the
    year the credit counts in (the activity date's, as 达标情况查询 counts it), not the day of the first export: a
    December offering prints from January, and its paper read as next year's credit."""
    ids = [a.award_id for a in awards]
    year = {a.award_id: a.activity_date.year for a in awards}
    for _ in range(3):
        have = {c.award_id: c for c in session.scalars(select(Certificate).where(Certificate.award_id.in_(ids)))}
        missing = [i for i in ids if i not in have]
        if not missing:
            return have
        now = clock.now()
        rows = [{"award_id": i, "number": new_number(year[i]), "issued_at": now} for i in missing]
        session.execute(insert_for(session, Certificate).on_conflict_do_nothing(), rows)
        session.expire_all()
    raise RuntimeError("could not number the certificates")


def _unique(ids: list[int]) -> list[int]:
    seen: set[int] = set()
    return [i for i in ids if not (i in seen or seen.add(i))]  # type: ignore[func-returns-value]


def _create_job(session: Session, principal: Principal, awards: list[EffectiveAward], **owner: Any) -> ExportJob:
    certs = issue_certificates(session, awards)
    ids = [a.award_id for a in awards]
    job = ExportJob(actor=principal.describe(), award_ids=ids, asked_ids=list(ids), total=len(awards), done=0,
                    state="queued", created_at=clock.now(), **owner)
    session.add(job)
    session.flush()
    numbers = "、".join(certs[a.award_id].number for a in awards[:50]) + ("等" if len(awards) > 50 else "")
    record_audit(session, AuditLog, principal, "export", job.id, "export", None, "queued",
                 f"导出学分证书 {len(awards)} 张：{numbers}")
    return job


# an export asked for again this soon with the same selection is the same export (a double tap, a second POST
# while the first was on its way): it is answered with the first one's job instead of rendering it twice
SAME_EXPORT_WITHIN = dt.timedelta(seconds=30)


def _lock_exports(session: Session, key: str) -> None:
    """Two exports of one owner (a trainee, an institution's offering) take turns until the first commits, so the
    second finds the first's job (a read then an insert alone let two concurrent requests each find none).
    PostgreSQL: a transaction lock on the key; SQLite: the SELECT … FOR UPDATE that follows takes the database's
    write lock (services.common.db)."""
    xact_lock(session, "certs-export:" + key)


def recent_export(session: Session, trainee_key: str, ids: list[int]) -> ExportJob | None:
    """The trainee's export of exactly these certificates (in this order) asked for within SAME_EXPORT_WITHIN that
    still stands (not failed; if done, its PDF still handed out: 重新导出 after a correction or a withdrawal is a
    new export), if any; call after _lock_exports."""
    jobs = session.scalars(select(ExportJob).where(
        ExportJob.kind == "trainee", ExportJob.trainee_key == trainee_key, ExportJob.state != "failed",
        ExportJob.created_at >= clock.now() - SAME_EXPORT_WITHIN).order_by(ExportJob.id.desc()).with_for_update())
    return next((j for j in jobs if same_selection(j, ids) and outdated(session, j) is None), None)


def same_selection(job: ExportJob, ids: list[int]) -> bool:
    """Whether `ids` (in order) is what the export was asked for, or what its PDF holds: a certificate too long for
    a page is left out and named in the job's note (and would be left out again), so what the PDF holds never
    matched the selection, and every press rendered the whole selection once more; one withdrawn meanwhile is no
    longer selectable, so the selection is then what the PDF holds."""
    return list(job.asked_ids) == ids or list(job.award_ids) == ids


# how many of an owner's latest finished exports are looked through for one of the same selection
SAME_FILE_LOOKBACK = 20


def finished_export(session: Session, ids: list[int], **owner: Any) -> ExportJob | None:
    """The owner's latest finished export of exactly these certificates (in this order) whose PDF is still handed
    out, if any: pressing 导出 again for the same selection opens that file (已有相同的导出文件) instead of
    assembling the same pages into a second one. There is one certificate template and a page, once rendered, is
    kept; a page rendered again since (a correction) or a certificate withdrawn makes the old PDF outdated(), and
    then the export is a new one. Call after _lock_exports."""
    jobs = session.scalars(select(ExportJob).where(
        ExportJob.state == "done", *(getattr(ExportJob, column) == value for column, value in owner.items()))
        .order_by(ExportJob.id.desc()).limit(SAME_FILE_LOOKBACK))
    return next((j for j in jobs if same_selection(j, ids) and outdated(session, j) is None), None)


def reused_file(job: ExportJob, new: bool) -> bool:
    """Whether an export's answer is an earlier finished file of the same selection (the page says so)."""
    return not new and job.state == "done"


def create_trainee_export(session: Session, principal: Principal, award_ids: list[int],
                          new_file: bool = False) -> tuple[ExportJob, bool]:
    """The trainee's export job, and whether it is new (False: the same export asked for a moment ago, or a finished
    one of the same selection whose PDF still stands, unless `new_file` asks for a new file)."""
    ids = _unique(award_ids)
    if not ids:
        raise AppError(422, "nothing_selected", "请勾选要导出的学分证书。")
    if len(ids) > MAX_PER_TRAINEE_EXPORT:
        raise AppError(422, "too_many", f"一次最多导出 {MAX_PER_TRAINEE_EXPORT} 张学分证书。")
    found = {a.award_id: a for a in session.scalars(
        select(EffectiveAward).where(EffectiveAward.award_id.in_(ids),
                                     EffectiveAward.trainee_key == principal.trainee_key))}
    if len(found) != len(ids):
        raise AppError(404, "not_found", "所选的学分证书不存在，请刷新页面后重新勾选。")
    awards = [found[i] for i in ids]
    today = clock.today_local()
    refused = {}
    for a in awards:
        st = print_status(a, today)
        if not st.printable:
            refused[str(a.award_id)] = f"{a.project_title}：{st.text}"
    if refused:
        # 暂 (not yet) was wrong for a revoked one, which never prints: each line below says which and why
        raise AppError(422, "not_printable", "所选的学分证书中有不能打印的（见下），请取消勾选后再导出。", refused)
    key = principal.trainee_key or ""
    _lock_exports(session, key)
    earlier = recent_export(session, key, ids)
    if earlier is not None and not (new_file and earlier.state == "done"):  # 重新生成 tapped twice: one job
        return earlier, False
    if not new_file:
        done = finished_export(session, ids, kind="trainee", trainee_key=key)
        if done is not None:
            return done, False
    return _create_job(session, principal, awards, kind="trainee", trainee_key=key), True


def running_offering_export(session: Session, institution_id: int, offering_id: int) -> ExportJob | None:
    """The offering's export still on its way, if any: queued (its page sends it again if its message was lost), or
    running for less than the render task's time limit (one running longer was killed with its worker and never
    ends); call after _lock_exports."""
    jobs = session.scalars(select(ExportJob).where(
        ExportJob.kind == "institution", ExportJob.institution_id == institution_id,
        ExportJob.offering_id == offering_id, ExportJob.state.in_(("queued", "running")))
        .order_by(ExportJob.id.desc()).with_for_update())
    killed_before = clock.now() - dt.timedelta(seconds=RENDER_TIME_LIMIT)
    return next((j for j in jobs if j.state == "queued" or (j.started_at or j.created_at) > killed_before), None)


def offering_export(session: Session, principal: Principal, offering_id: int,
                    new_file: bool = False) -> tuple[ExportJob, bool]:
    """The export of every printable certificate of the institution's offering, and whether it is new (False: one
    of the offering is queued or running, and it is the answer: a double click, a second tab, the API asked again,
    each rendered the whole offering once more; or, unless `new_file`, a finished export of the same certificates
    whose PDF still stands)."""
    rows = offering_rows(session, principal, offering_id)
    awards = [r.award for r in rows if r.status.printable]
    if not awards:
        due = min((r.status.printable_from for r in rows if r.status.printable_from), default=None)
        when = f"，{due.isoformat()} 起可打印" if due else ""
        raise AppError(422, "not_printable", f"该期项目暂无可打印的学分证书{when}。")
    institution_id = principal.institution_id
    assert institution_id is not None  # offering_rows found the institution's own awards
    _lock_exports(session, f"offering:{institution_id}:{offering_id}")
    running = running_offering_export(session, institution_id, offering_id)
    if running is not None:
        return running, False
    if not new_file:
        done = finished_export(session, [a.award_id for a in awards], kind="institution",
                               institution_id=institution_id, offering_id=offering_id)
        if done is not None:
            return done, False
    return _create_job(session, principal, awards, kind="institution", institution_id=institution_id,
                       offering_id=offering_id), True


def create_offering_export(session: Session, principal: Principal, offering_id: int) -> ExportJob:
    """offering_export's job alone, a new file even if one of the same certificates stands (bench/certs.py makes
    its job so, and times its run)."""
    return offering_export(session, principal, offering_id, new_file=True)[0]


RECENT_EXPORTS = 5
RECENT_EXPORT_DAYS = 7


def recent_trainee_jobs(session: Session, trainee_key: str) -> list[ExportJob]:
    """Her latest exports of the last week, newest first: 学分证书 leads back to one she left (a long queue, a
    closed page) instead of her asking for it again."""
    since = clock.now() - dt.timedelta(days=RECENT_EXPORT_DAYS)
    return list(session.scalars(select(ExportJob).where(
        ExportJob.kind == "trainee", ExportJob.trainee_key == trainee_key, ExportJob.created_at >= since)
        .order_by(ExportJob.id.desc()).limit(RECENT_EXPORTS)))


def job_kind(session: Session, job_id: int) -> str | None:
    """Whose login an export page sends a visitor without a session to (nothing else of the job is read)."""
    return session.scalar(select(ExportJob.kind).where(ExportJob.id == job_id))


def get_job(session: Session, principal: Principal, job_id: int) -> ExportJob:
    """The owner's job only: a trainee's own, an institution's own; anyone else gets 'not found'."""
    job = session.get(ExportJob, job_id)
    if job is None:
        raise AppError(404, "not_found", NOT_FOUND)
    mine = ((principal.role == "trainee" and job.kind == "trainee" and job.trainee_key == principal.trainee_key)
            or (principal.role == "institution" and job.kind == "institution"
                and job.institution_id == principal.institution_id))
    if not mine:
        raise AppError(404, "not_found", NOT_FOUND)
    return job


def outdated(session: Session, job: ExportJob) -> AppError | None:
    """Why a finished export's PDF is no longer handed out, if it is not: a certificate in it was withdrawn since
    (the PDF would still show it as valid), or corrected since (a name, a credit: its page was dropped or rendered
    again after the export)."""
    if job.state != "done":
        return None
    revoked = session.scalar(select(func.count()).select_from(EffectiveAward).where(
        EffectiveAward.award_id.in_(job.award_ids), EffectiveAward.revoked_at.is_not(None))) or 0
    if revoked:
        return AppError(410, "export_revoked", f"该 PDF 中有 {revoked} 张学分证书已撤销，原文件不再提供下载；"
                                               "请重新导出（已撤销的证书不会再导出）。")
    changed = session.scalar(select(func.count()).select_from(Certificate).where(
        Certificate.award_id.in_(job.award_ids),
        (Certificate.rendered_at.is_(None)) | (Certificate.rendered_at > job.finished_at))) or 0
    if changed:
        return AppError(410, "export_changed", f"该 PDF 中有 {changed} 张学分证书的内容已更正（如姓名、学分），"
                                               "原文件不再提供下载；请重新导出。")
    return None


def job_pdf(session: Session, principal: Principal, job: ExportJob) -> bytes:
    if job.state != "done":
        raise AppError(409, "not_ready", "学分证书还在生成中，请稍候再下载。")
    stale = outdated(session, job)
    if stale is not None:
        raise stale
    data = session.scalar(select(ExportJob.pdf).where(ExportJob.id == job.id))
    assert data is not None
    record_audit(session, AuditLog, principal, "export", job.id, "download", None, None,
                 f"下载学分证书 PDF（{job.total} 张）")
    return data


def job_dict(job: ExportJob, existing: bool = False) -> dict[str, Any]:
    return {"id": job.id, "existing": existing, "kind": job.kind, "offering_id": job.offering_id, "state": job.state,
            "state_label": job.state_label, "total": job.total, "done": job.done, "note": job.note,
            "error": job.error, "created_at": job.created_at, "finished_at": job.finished_at,
            "page_url": f"/certs/exports/{job.id}",
            "download_url": f"/certs/exports/{job.id}.pdf" if job.state == "done" else None}


KILLED = ("证书生成中途停止（生成服务重启或超时），本次导出未完成。请重新导出；如多次出现，请联系陕西省继续医学"
          "教育委员会。")


# ---------------------------------------------------------------- the render run (worker)

def run_export(session: Session, job_id: int) -> str:
    """Render what is not rendered yet (one document per chunk, chunks side by side in a small process pool), keep
    each page, and assemble the job's PDF from the chunk PDFs just rendered and the pages stored before."""
    job = session.get(ExportJob, job_id, with_for_update=True)
    if job is None or job.state in ("done", "failed"):
        return job.state if job else "missing"
    job.state, job.started_at = "running", clock.now()
    session.commit()
    pairs = session.execute(select(Certificate, EffectiveAward)
                            .join(EffectiveAward, EffectiveAward.award_id == Certificate.award_id)
                            .where(Certificate.award_id.in_(job.award_ids))).all()
    by_award = {a.award_id: (c, a) for c, a in pairs}
    wanted = [by_award[i] for i in job.award_ids if i in by_award]
    keep = [(c, a) for c, a in wanted if a.revoked_at is None]
    skipped = len(job.award_ids) - len(keep)
    if not keep:
        job.state, job.finished_at, job.error = "failed", clock.now(), "所选学分证书均已撤销，未生成 PDF。"
        session.commit()
        return job.state
    todo = [(c, a) for c, a in keep if c.rendered_at is None]
    job.done = len(keep) - len(todo)
    session.commit()
    size = render_chunk()
    chunks = [todo[start:start + size] for start in range(0, len(todo), size)]
    fresh: dict[int, tuple[bytes, int]] = {}  # certificate id -> (its chunk's PDF, page index): this run's pages
    values = ([render.page_values(c, a, qr=False) for c, a in chunk] for chunk in chunks)  # QR: in render_chunks
    too_long: list[str] = []  # numbers of certificates no type size fits on one page: left out, and named
    for chunk, pdf in zip(chunks, render.render_chunks(values, len(chunks)), strict=True):
        pages: list[bytes | None] = list(render.split_pages(pdf))
        alone = len(pages) != len(chunk)  # one ran onto a second page: which one is not known, and the job failed
        if alone:
            log.warning("export %s: %s certificates made %s pages; rendered one by one", job_id, len(chunk),
                        len(pages))
            pages = [_one_page(c, a) for c, a in chunk]
        now = clock.now()
        for index, ((c, _a), page) in enumerate(zip(chunk, pages, strict=True)):
            if page is None:
                too_long.append(c.number)
                continue
            # never replace a stored page: a concurrent run that got there first wins (and its page is the one shown)
            # (synchronize_session=False: the session's certificates are not read again, and matching each UPDATE
            # against every one of them made a 1,000-certificate export quadratic)
            stored = session.execute(update(Certificate).where(Certificate.id == c.id, Certificate.pdf.is_(None))
                                     .values(pdf=page, pdf_sha256=render.sha256(page), rendered_at=now)
                                     .execution_options(synchronize_session=False))
            if stored.rowcount == 1:
                fresh[c.id] = (page, 0) if alone else (pdf, index)
        del pages
        job.done = min(job.total, job.done + len(chunk))
        session.commit()
        # no gc.collect() here: the documents live (and are collected) in the render processes, what is freed here is
        # bytes; a full collection over this process's heap cost ~0.2 s a chunk
    keep = [(c, a) for c, a in keep if c.number not in too_long]
    notes = [f"{skipped} 张学分证书已撤销，未包含在 PDF 中。"] if skipped else []
    if too_long:
        notes.append(f"学分证书 {'、'.join(too_long)} 的内容排不进一页，未包含在 PDF 中，"
                     "请联系陕西省继续医学教育委员会。")
    if not keep:
        job.state, job.finished_at, job.error = "failed", clock.now(), "".join(notes)
        session.commit()
        return job.state
    merged = render.assemble(_page_sources(session, [c.id for c, _a in keep], fresh))
    fresh.clear()
    job.pdf, job.pdf_size, job.done = merged, len(merged), job.total
    job.state, job.finished_at = "done", clock.now()
    job.note = "".join(notes) or None
    # what the PDF holds, in its order: one left out (withdrawn before its turn, too long) is no reason to refuse
    # the download as 已撤销 or 已更正 later (outdated() reads these)
    job.award_ids = [c.award_id for c, _a in keep]
    session.commit()
    gc.collect()
    return job.state


def _one_page(cert: Certificate, award: EffectiveAward) -> bytes | None:
    """The certificate rendered alone as one page: at the type size its texts chose, else at the smallest; None when
    neither fits (an export must not fail whole for one certificate, nor print one cut in two)."""
    values = render.page_values(cert, award)
    for size in dict.fromkeys((values["size"], "longest")):
        pages = render.split_pages(render.render_document([{**values, "size": size}]))
        if len(pages) == 1:
            return pages[0]
    log.error("certificate %s does not fit on one page at any type size", cert.number)
    return None


def _page_sources(session: Session, ids: list[int], fresh: dict[int, tuple[bytes, int]],
                  batch: int = 50) -> Iterator[tuple[bytes, int]]:
    """Each page of the job in order, as (PDF, page index): from this run's chunk PDFs, else the stored page (read
    a few at a time, so a big re-export never holds every page twice)."""
    for start in range(0, len(ids), batch):
        part = ids[start:start + batch]
        need = [i for i in part if i not in fresh]
        got = dict(session.execute(select(Certificate.id, Certificate.pdf).where(Certificate.id.in_(need))).all()) \
            if need else {}
        for i in part:
            yield fresh[i] if i in fresh else (got.pop(i), 0)


def fail_job(session: Session, job_id: int, message: str) -> None:
    jobs.fail(session, ExportJob, job_id, message)


# ---------------------------------------------------------------- the committee

def reveal_id(session: Session, principal: Principal, cert: Certificate, award: EffectiveAward) -> str:
    from services.common import pii

    record_audit(session, AuditLog, principal, "certificate", cert.id, "view_id", None, None,
                 f"查看证书 {cert.number} 的完整身份证号码")
    return pii.decrypt(award.id_enc)

