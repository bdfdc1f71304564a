"""电子学分证书: the printing rule, export → render task → PDF (text, QR), re-export from the stored page,
verification (valid, revoked after credits.withdrawn, unknown), the locked-down renderer, audit entries,
institution and committee pages, and a permission table over every endpoint of certs."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from services.common import clock
from services.common.auth import ANON_CSRF_COOKIE, COOKIE
from services.common.events import make_envelope
from tests.certs.conftest import (
    INST_A,
    OFFERING_A,
    PRINTABLE_DAY,
    REVIEWER,
    TRAINEE_1,
    TRAINEE_2,
    WHO,
    at,
    blank_pages,
    slow_issue,
    twice_at_once,
)
from tests.checkin.test_windows_support import ANON_VISITOR, csrf_for, id_number
from tests.conftest import bearer, login_client

needs_poppler = pytest.mark.skipif(not shutil.which("pdftotext") or not shutil.which("pdftoppm"),
                                   reason="poppler-utils missing (deploy/install.sh --test installs it)")


def client(app, principal):
    c = app.test_client()
    if principal is not None:
        login_client(c, principal)
    else:  # a visitor's browser: the cookie its forms' token is bound to
        c.set_cookie(ANON_CSRF_COOKIE, ANON_VISITOR, domain="localhost", path="/")
    return c


def run_jobs(queued):
    from services.certs.certificates.tasks import run_render

    states = [run_render(job_id) for job_id in queued]
    queued.clear()
    return states


def export_as_trainee(certs_app, queued, ids, principal=TRAINEE_1, new=False):
    """`new`: 重新生成 (a new file even where the same export's stands)."""
    c = client(certs_app, principal)
    resp = c.post("/certs/exports", data={"csrf_token": csrf_for(principal), "award_id": [str(i) for i in ids],
                                          **({"new": "1"} if new else {})})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:500]
    job_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    assert queued == [job_id]
    assert run_jobs(queued) == ["done"]
    pdf = c.get(f"/certs/exports/{job_id}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert "filename*=UTF-8''%E5%AD%A6%E5%88%86%E8%AF%81%E4%B9%A6" in pdf.headers["Content-Disposition"]  # 学分证书
    return job_id, pdf.data


def shown(html: str) -> str:
    """The page's text as read, without its tags (a number in its own span reads as part of its sentence)."""
    return re.sub(r"<[^>]+>", "", html)


def pdf_text(data: bytes, tmp_path: Path) -> str:
    f = tmp_path / "out.pdf"
    f.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(f), "-"], capture_output=True, text=True, check=True).stdout


def certificates(certs_db):
    from services.certs.certificates.models import Certificate

    s = certs_db.new_session()
    try:
        return {c.award_id: (c.number, c.pdf, c.issued_at) for c in s.scalars(select(Certificate))
                for _ in [c.pdf]}
    finally:
        s.close()


def audit(certs_db):
    from services.certs.audit import AuditLog

    s = certs_db.new_session()
    try:
        return [(a.actor, a.object_type, a.action) for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]
    finally:
        s.close()


def withdraw(award_id: int, when: dt.datetime):
    from services.certs.worker import handle_event

    env = make_envelope("credits.withdrawn", "credits", {"award_id": award_id, "offering_id": 101,
                                                         "withdrawn_at": when, "reason": "考勤核对有误"})
    return handle_event.run(env)


def test_the_render_task_goes_to_its_own_queue_by_the_routes_not_a_task_attribute():
    """certs-render keeps big exports off the event consumer's queue; the route is the app's task_routes (a task's
    own `queue` attribute is deprecated and has no effect from Celery 6 on)."""
    from services.certs.certificates.tasks import RENDER_QUEUE, TASK_NAME
    from services.certs.worker import celery

    assert celery.amqp.router.route({}, TASK_NAME)["queue"].name == RENDER_QUEUE == "certs-render"
    assert "queue" not in type(celery.tasks[TASK_NAME]).__dict__
    assert celery.amqp.router.route({}, "certs.handle_event")["queue"].name == "certs"


# ---------------------------------------------------------------- the printing rule

def test_printable_from_four_weeks_after_the_offering_ended(certs_app, awards):
    clock.set_now(at(PRINTABLE_DAY - dt.timedelta(days=1), 23))  # 23:00 Beijing of the day before
    page = client(certs_app, TRAINEE_1).get("/certs/my").get_data(as_text=True)
    assert "2027-01-08 起可打印" in page and 'name="award_id" value="1"' not in page
    # nothing printable yet: the page says when, not "勾选 … 点击导出学分证书" with no button to press
    assert "暂无可打印的证书，最早 2027-01-08 起可打印" in page and "勾选要打印的证书" not in page
    api = client(certs_app, None).get("/certs/api/me/certificates", headers=bearer(TRAINEE_1)).json
    first = next(i for i in api["items"] if i["award_id"] == 1)
    assert first["printable"] is False and first["printable_from"] == "2027-01-08"
    refused = client(certs_app, None).post("/certs/api/exports", json={"award_ids": [1]}, headers=bearer(TRAINEE_1))
    assert refused.status_code == 422 and refused.json["error"]["code"] == "not_printable"

    clock.set_now(at(PRINTABLE_DAY, 0))  # 00:00 Beijing: 16:00 UTC the day before, already printable
    page = client(certs_app, TRAINEE_1).get("/certs/my").get_data(as_text=True)
    assert 'name="award_id" value="1"' in page and "2027-02-17 起可打印" in page  # award 2 waits
    assert "勾选要打印的证书" in page and "暂无可打印的证书" not in page
    assert "李娜" not in page  # only the trainee's own awards


def test_rule_unit(awards, certs_db):
    from services.certs.awards.models import EffectiveAward
    from services.certs.certificates.rules import print_status

    s = certs_db.new_session()
    a = s.scalars(select(EffectiveAward).where(EffectiveAward.award_id == 1)).one()
    assert print_status(a, PRINTABLE_DAY).printable
    st = print_status(a, PRINTABLE_DAY - dt.timedelta(days=1))
    assert not st.printable and st.printable_from == PRINTABLE_DAY
    a.revoked_at, a.revoke_reason = clock.now(), "x"
    assert not print_status(a, PRINTABLE_DAY).printable and print_status(a, PRINTABLE_DAY).revoked
    s.close()


def test_not_yet_printable_or_not_own_cannot_be_exported(certs_app, awards, queued):
    clock.set_now(at(PRINTABLE_DAY))
    c = client(certs_app, TRAINEE_1)
    r = c.post("/certs/exports", data={"csrf_token": csrf_for(TRAINEE_1), "award_id": ["1", "2"]})
    said = r.get_data(as_text=True)
    assert r.status_code == 422 and "所选的学分证书中有不能打印的（见下）" in said
    assert "基层糖尿病规范化管理：2027-02-17 起可打印（项目结束 4 周后）" in said and "暂不能打印的" not in said
    r = c.post("/certs/exports", data={"csrf_token": csrf_for(TRAINEE_1), "award_id": ["3"]})  # 李娜's
    assert r.status_code == 404
    r = c.post("/certs/exports", data={"csrf_token": csrf_for(TRAINEE_1)})
    assert r.status_code == 422
    r = c.post("/certs/exports", data={"award_id": ["1"]})  # no CSRF token
    assert r.status_code == 403
    assert queued == []


# ---------------------------------------------------------------- export → task → PDF

@needs_poppler
def test_export_renders_one_pdf_with_text_and_a_verifying_qr(certs_app, awards, queued, certs_db, tmp_path):
    clock.set_now(at(dt.date(2027, 2, 20)))  # both of 张伟's awards print
    c = client(certs_app, TRAINEE_1)
    resp = c.post("/certs/exports", data={"csrf_token": csrf_for(TRAINEE_1), "award_id": ["1", "2"]})
    job_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    progress = c.get(f"/certs/exports/{job_id}").get_data(as_text=True)
    assert "排队中" in progress and 'http-equiv="refresh"' in progress
    assert c.get(f"/certs/exports/{job_id}.pdf").status_code == 409  # not ready yet
    assert run_jobs(queued) == ["done"]
    page = c.get(f"/certs/exports/{job_id}").get_data(as_text=True)
    assert "已生成" in page and f"/certs/exports/{job_id}.pdf" in page and "refresh" not in page
    assert "共 2 张。下载后用 A4 纸打印" in page and "下载栏" not in page  # a large file's note only when large
    data = c.get(f"/certs/exports/{job_id}.pdf").data

    numbers = {aid: n for aid, (n, _pdf, _at) in certificates(certs_db).items()}
    # each numbered with the year its credit counts in (the activity date's), not the year of the export
    assert re.fullmatch(r"2026[A-Z2-7]{12}", numbers[1]) and re.fullmatch(r"2027[A-Z2-7]{12}", numbers[2])
    text = pdf_text(data, tmp_path)
    assert "继续医学教育学分证书" in text and "张伟" in text
    assert "心血管急危重症诊治进展" in text and "基层糖尿病规范化管理" in text
    assert all(n in text for n in numbers.values())
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[1].startswith("证书编号：")  # under the title, where 证书查询's help says to look
    assert "陕西省继续医学教育委员会" in text and "6101" in text and id_number(1) not in text  # masked ID only
    pages = subprocess.run(["pdfinfo", str(tmp_path / "out.pdf")], capture_output=True, text=True).stdout
    assert re.search(r"Pages:\s+2", pages)
    fonts = subprocess.run(["pdffonts", str(tmp_path / "out.pdf")], capture_output=True, text=True).stdout
    assert "Noto-Serif-CJK-SC" in fonts and " yes yes " in fonts  # embedded and subset

    if shutil.which("zbarimg"):
        subprocess.run(["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(tmp_path / "out.pdf"),
                        str(tmp_path / "page")], check=True)
        png = next(tmp_path.glob("page*.png"))
        qr = subprocess.run(["zbarimg", "-q", "--raw", str(png)], capture_output=True, text=True).stdout.strip()
        assert qr == f"http://127.0.0.1:8080/certs/verify/{numbers[1]}"  # pages in the order ticked


@needs_poppler
def test_chunks_render_side_by_side_in_render_processes(certs_app, awards, queued, certs_db, tmp_path,
                                                        monkeypatch):
    """One certificate a chunk: two chunks go to the pool of render processes; the job's PDF keeps the ticked
    order, every page its own text and QR, and the stored pages serve a re-export without rendering."""
    from services.certs.certificates import render

    monkeypatch.setenv("CME_CERTS_RENDER_CHUNK", "1")
    monkeypatch.setenv("CME_CERTS_RENDER_PROCESSES", "2")
    clock.set_now(at(dt.date(2027, 2, 20)))
    _job, data = export_as_trainee(certs_app, queued, [2, 1])
    numbers = {aid: n for aid, (n, _pdf, _at) in certificates(certs_db).items()}
    (tmp_path / "out.pdf").write_bytes(data)
    pages = [subprocess.run(["pdftotext", "-f", str(n), "-l", str(n), "-layout", str(tmp_path / "out.pdf"), "-"],
                            capture_output=True, text=True, check=True).stdout for n in (1, 2)]
    assert numbers[2] in pages[0] and "基层糖尿病规范化管理" in pages[0] and numbers[1] not in pages[0]
    assert numbers[1] in pages[1] and "心血管急危重症诊治进展" in pages[1]
    if shutil.which("zbarimg"):
        subprocess.run(["pdftoppm", "-r", "150", "-png", str(tmp_path / "out.pdf"), str(tmp_path / "p")], check=True)
        codes = [subprocess.run(["zbarimg", "-q", "--raw", str(png)], capture_output=True, text=True).stdout.strip()
                 for png in sorted(tmp_path.glob("p*.png"))]
        assert codes == [f"http://127.0.0.1:8080/certs/verify/{numbers[a]}" for a in (2, 1)]

    monkeypatch.setattr(render, "render_document", lambda pages: pytest.fail("a stored certificate was rendered"))
    _job, again = export_as_trainee(certs_app, queued, [1, 2])
    assert again.startswith(b"%PDF")


@needs_poppler
def test_re_export_serves_the_stored_certificate(certs_app, awards, queued, certs_db, tmp_path, monkeypatch):
    clock.set_now(at(PRINTABLE_DAY))
    export_as_trainee(certs_app, queued, [1])
    before = certificates(certs_db)[1]
    from services.certs.certificates import render

    def must_not_render(pages):
        raise AssertionError("a stored certificate was rendered again")

    monkeypatch.setattr(render, "render_document", must_not_render)
    clock.set_now(at(PRINTABLE_DAY + dt.timedelta(days=30)))
    job2, data = export_as_trainee(certs_app, queued, [1], new=True)  # 重新生成: a new file of the stored page
    after = certificates(certs_db)[1]
    assert after == before  # same number, same issue time, same page bytes
    assert before[0] in pdf_text(data, tmp_path)


def _event(name: str, payload: dict):
    from services.certs.worker import handle_event

    return handle_event.run(make_envelope(name, "credits", payload))


def _effective_payload(rows: list[dict]) -> dict:
    from services.certs.awards.handlers import FIELDS

    return {"offering_id": rows[0]["offering_id"], "institution_id": rows[0]["institution_id"],
            "awards": [{k: r[k] for k in FIELDS} for r in rows]}


@needs_poppler
def test_a_corrected_name_or_value_is_rendered_again_under_the_same_number(certs_app, awards, queued, certs_db,
                                                                           tmp_path, monkeypatch):
    """The committee corrects her name at 学员账号 (credits.name_corrected), or a repeated credits.effective
    brings another value: the next export shows the correction, with the number and issue date she had."""
    from services.certs.certificates import render

    clock.set_now(at(PRINTABLE_DAY))
    first_job, _data = export_as_trainee(certs_app, queued, [1])
    number, page, issued = certificates(certs_db)[1]
    export_as_trainee(certs_app, queued, [3], TRAINEE_2)
    other_page = certificates(certs_db)[3][1]

    # a redelivery of what certs has already changes nothing: the stored page is served
    assert _event("credits.effective", _effective_payload(awards[:1])) is True
    assert certificates(certs_db)[1][1] == page

    assert _event("credits.name_corrected", {"trainee_key": awards[0]["trainee_key"], "name": "张玮"}) is True
    assert certificates(certs_db)[1][1] is None and certificates(certs_db)[3][1] == other_page  # 李娜's untouched
    # the PDF exported before shows the old name: its page says so and offers a new export instead
    mine = client(certs_app, TRAINEE_1)
    old_page = mine.get(f"/certs/exports/{first_job}").get_data(as_text=True)
    assert "内容已更正" in old_page and "重新导出" in old_page and f"/certs/exports/{first_job}.pdf" not in old_page
    assert mine.get(f"/certs/exports/{first_job}.pdf").status_code == 410
    _job, data = export_as_trainee(certs_app, queued, [1])  # at once: a new export, the first one's PDF is stale
    text = pdf_text(data, tmp_path)
    assert "张玮" in text and "张伟" not in text and number in text
    assert certificates(certs_db)[1][0] == number and certificates(certs_db)[1][2] == issued

    corrected = dict(awards[0], name="张玮", credit_value=Decimal("8"))
    assert _event("credits.effective", _effective_payload([corrected])) is True
    _job, data = export_as_trainee(certs_app, queued, [1])
    text = pdf_text(data, tmp_path)
    assert re.search(r"学分\s*8\s*分", text) and not re.search(r"学分\s*10\s*分", text)

    monkeypatch.setattr(render, "render_document", lambda pages: pytest.fail("an unchanged certificate was rendered"))
    assert _event("credits.name_corrected", {"trainee_key": awards[0]["trainee_key"], "name": "张玮"}) is True
    clock.set_now(at(PRINTABLE_DAY) + dt.timedelta(minutes=1))  # a new export, not the same one sent again
    export_as_trainee(certs_app, queued, [1], new=True)


def test_api_export_and_progress(certs_app, awards, queued):
    clock.set_now(at(PRINTABLE_DAY))
    c = certs_app.test_client()
    r = c.post("/certs/api/exports", json={"award_ids": [1]}, headers=bearer(TRAINEE_1))
    assert r.status_code == 202 and r.json["state"] == "queued" and r.json["download_url"] is None
    job_id = r.json["id"]
    run_jobs(queued)
    r = c.get(f"/certs/api/exports/{job_id}", headers=bearer(TRAINEE_1))
    assert r.json["state"] == "done" and r.json["download_url"] == f"/certs/exports/{job_id}.pdf"
    assert c.get(r.json["download_url"], headers=bearer(TRAINEE_1)).data.startswith(b"%PDF")
    assert c.get(f"/certs/api/exports/{job_id}", headers=bearer(TRAINEE_2)).status_code == 404
    assert c.get(f"/certs/exports/{job_id}.pdf", headers=bearer(TRAINEE_2)).status_code == 404
    assert c.get(f"/certs/exports/{job_id}.pdf", headers=bearer(INST_A)).status_code == 404


def test_institution_exports_its_offering(certs_app, awards, queued, certs_db):
    clock.set_now(at(PRINTABLE_DAY))
    c = client(certs_app, INST_A)
    page = c.get("/certs/institution/offerings/101").get_data(as_text=True)
    assert "张伟" in page and "李娜" in page and "导出全部可打印学分证书（2 张）" in page
    assert "心血管急危重症诊治进展" in c.get("/certs/institution/offerings?year=2026").get_data(as_text=True)
    r = c.post("/certs/institution/offerings/101/exports", data={"csrf_token": csrf_for(INST_A)})
    assert r.status_code == 303
    job_id = int(r.headers["Location"].rsplit("/", 1)[1])
    assert run_jobs(queued) == ["done"]
    assert c.get(f"/certs/exports/{job_id}.pdf").data.startswith(b"%PDF")
    assert set(certificates(certs_db)) == {1, 3}
    assert client(certs_app, TRAINEE_1).get(f"/certs/exports/{job_id}").status_code == 404
    # a withdrawal after it took effect: the list counts what is still effective, the withdrawn one apart
    listing = c.get("/certs/institution/offerings?year=2026").get_data(as_text=True)
    assert "<td>2</td>" in listing.split("心血管急危重症诊治进展")[1].split("</tr>")[0]
    assert withdraw(1, at(PRINTABLE_DAY)) is True
    row = c.get("/certs/institution/offerings?year=2026").get_data(as_text=True).split("心血管急危重症诊治进展")[1]
    assert "<td>1 <span" in row.split("</tr>")[0] and "另有 1 条已撤销" in row.split("</tr>")[0]
    assert 'href="/certs/institution/offerings" aria-current="page">学分管理 · 学分证书导出</a>' in listing
    # another institution's offering does not exist for this one
    assert c.get("/certs/institution/offerings/202").status_code == 404
    assert c.post("/certs/institution/offerings/202/exports",
                  data={"csrf_token": csrf_for(INST_A)}).status_code == 404


# ---------------------------------------------------------------- verification

def test_verify_valid_revoked_and_unknown(certs_app, awards, queued, certs_db):
    clock.set_now(at(PRINTABLE_DAY))
    r = certs_app.test_client().post("/certs/api/exports", json={"award_ids": [1]}, headers=bearer(TRAINEE_1))
    assert r.status_code == 202
    job_id = r.json["id"]
    assert run_jobs(queued) == ["done"]
    number = certificates(certs_db)[1][0]
    anon = certs_app.test_client()
    page = anon.get(f"/certs/verify/{number}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "证书有效" in html and "张*" in html and "张伟" not in html
    assert "心血管急危重症诊治进展" in html and "Ⅰ类 10 分" in html and "2027-01-08" in html
    assert "验证其他证书：证书编号" in html  # the box below the verdict is for the next number, not this one
    unknown = anon.get("/certs/verify/2026AAAAAAAAAAAA").get_data(as_text=True)
    # an HR clerk who mistyped is asked to check, not told of forgery
    assert "未找到证书编号" in unknown and "伪造" not in unknown
    assert "请向持证人或陕西省继续医学教育委员会核实" in unknown and "验证其他证书" not in unknown
    assert anon.get(f"/certs/api/verify/{number.lower()}").json["status"] == "valid"

    assert withdraw(1, dt.datetime(2027, 1, 9, 2, 0, tzinfo=dt.UTC)) is True
    html = anon.get(f"/certs/verify/{number}").get_data(as_text=True)
    assert "已撤销" in html and "2027-01-09" in html and "证书有效" not in html
    body = anon.get(f"/certs/api/verify/{number}").json
    assert body["status"] == "revoked" and body["revoked_on"] == "2027-01-09"
    # a revoked award no longer prints
    item = next(i for i in anon.get("/certs/api/me/certificates", headers=bearer(TRAINEE_1)).json["items"]
                if i["award_id"] == 1)
    assert item["revoked"] and not item["printable"] and "已撤销" in item["status_text"]
    # nor does the PDF exported before the withdrawal, which shows it as valid
    page = login_client(certs_app.test_client(), TRAINEE_1).get(f"/certs/exports/{job_id}.pdf")
    assert page.status_code == 410 and "已撤销" in page.get_data(as_text=True)
    # and its page says so before she taps a download that would fail
    before = login_client(certs_app.test_client(), TRAINEE_1).get(f"/certs/exports/{job_id}").get_data(as_text=True)
    assert "已撤销" in before and "下载学分证书（PDF）" not in before

    # an HR clerk types from paper: 0 for O, 1 for I, 8 for B are the letters (base32 has no such digits)
    typed = number[:4] + number[4:].replace("O", "0").replace("I", "1").replace("B", "8")
    assert anon.get(f"/certs/verify/{typed.lower()}").status_code == 200
    # the page shows only the surname; the name the clerk holds is checked against it, never shown; it is sent
    # in a form, so it stays out of the address, the browser's history and the logs
    page = anon.get(f"/certs/verify/{number}").get_data(as_text=True)
    assert '<form method="post" action="/certs/verify/' in page and 'name="csrf_token"' in page
    mine = check_name(anon, number, "张 伟").get_data(as_text=True)
    assert "您输入的姓名与证书一致" in mine and "张伟" not in mine
    other = check_name(anon, number, "张三")
    assert "您输入的姓名与证书不一致" in other.get_data(as_text=True) and "张三" not in other.get_data(as_text=True)
    assert other.headers["Cache-Control"] == "no-store"
    # a name in the address is not read (an old bookmark, a link passed on): the page answers without a check
    assert "与证书一致" not in anon.get(f"/certs/verify/{number}?name=张伟").get_data(as_text=True)
    blank = check_name(anon, number, "  ")
    assert blank.status_code == 422 and "请输入要核对的持证人姓名" in blank.get_data(as_text=True)
    assert "已撤销" in blank.get_data(as_text=True)  # the page still says what it said before
    long = check_name(anon, number, "张" * 51)
    assert long.status_code == 422 and "与证书" not in long.get_data(as_text=True)
    assert anon.post(f"/certs/verify/{number}", data={"name": "张伟"}).status_code == 403  # no csrf token
    assert check_name(anon, "2027AAAAAAAAAAAA", "张伟").status_code == 404

    missing = anon.get("/certs/verify/2027AAAAAAAAAAAA")
    assert missing.status_code == 404 and "未找到证书编号" in missing.get_data(as_text=True)
    assert "格式不正确" not in missing.get_data(as_text=True)
    # a slip of the keyboard is said to be one, not left to read as a forged certificate
    for typed, said in (("not-a-number", "您输入的是 10 位"), (number[:-1], "您输入的是 15 位"),
                        ("20A7" + number[4:], "前 4 位应为年份数字"), (number[:-1] + "9", "只含字母 A–Z 和数字 2–7")):
        slip = anon.get(f"/certs/verify/{typed}")
        text = slip.get_data(as_text=True)
        assert slip.status_code == 404 and "格式不正确" in text and said in text and "伪造" not in text, typed
    assert anon.get("/certs/api/verify/2027AAAAAAAAAAAA").status_code == 404


def check_name(client, number: str, name: str):
    """核对持证人姓名 as a visitor's browser sends it: a form with the token bound to its cookie."""
    client.set_cookie(ANON_CSRF_COOKIE, ANON_VISITOR, domain="localhost", path="/")
    return client.post(f"/certs/verify/{number}", data={"name": name, "csrf_token": csrf_for(None)})


def test_names_are_checked_a_few_times_a_day_per_certificate(certs_app, awards, queued, certs_db, monkeypatch):
    """核对持证人姓名 answers yes or no: per certificate a few times a day, whoever asks, or a holder's name could
    be found by trying names behind the surname the page shows (one star, whatever the name's length)."""
    monkeypatch.setenv("CME_CERTS_NAME_CHECKS_PER_DAY", "2")
    clock.set_now(at(PRINTABLE_DAY))
    export_as_trainee(certs_app, queued, [1])
    number = certificates(certs_db)[1][0]
    anon = certs_app.test_client()
    assert "张*</dd>" in anon.get(f"/certs/verify/{number}").get_data(as_text=True)
    assert "不一致" in check_name(anon, number, "张三").get_data(as_text=True)
    assert "与证书一致" in check_name(anon, number, "张伟").get_data(as_text=True)
    third = check_name(certs_app.test_client(), number, "张伟").get_data(as_text=True)  # another visitor too
    assert "核对次数已达上限" in third and "与证书一致" not in third and "证书有效" in third
    # "请明日再试" holds from Beijing's midnight (the day counted was UTC's, which turns at 08:00 there)
    tomorrow = clock.today_local() + dt.timedelta(days=1)
    clock.set_now(dt.datetime.combine(tomorrow, dt.time(0, 5), tzinfo=clock.SHANGHAI))
    assert "与证书一致" in check_name(anon, number, "张伟").get_data(as_text=True)


def test_a_number_typed_from_paper_is_read_as_printed():
    from services.certs.certificates.services import normalise_number

    # after the year: 0, 1, 8 are O, I, B (base32 has none of those digits); 全角, spaces, dashes and case folded
    assert normalise_number("２０２７ 0w4z-sk8f hvz1") == "2027OW4ZSKBFHVZI"
    assert normalise_number("2010ABCD") == "2010ABCD"  # the year's own digits stay


def test_withdrawal_of_an_unknown_award_changes_nothing(awards, certs_db):
    from services.certs.awards.models import EffectiveAward

    assert withdraw(999, clock.now()) is True
    s = certs_db.new_session()
    assert s.scalars(select(EffectiveAward).where(EffectiveAward.revoked_at.is_not(None))).all() == []
    s.close()


def test_verify_is_rate_limited(certs_app, awards, monkeypatch):
    from services.certs.certificates import ratelimit
    from services.common.web import redis_client

    for k in redis_client().scan_iter(f"{ratelimit.PREFIX}*"):
        redis_client().delete(k)
    monkeypatch.setenv("CME_CERTS_VERIFY_PER_MINUTE", "3")
    c = certs_app.test_client()
    codes = [c.get("/certs/verify/2027AAAAAAAAAAAA", environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code
             for _ in range(5)]
    assert codes[:3] == [404, 404, 404] and codes[3:] == [429, 429]
    for k in redis_client().scan_iter(f"{ratelimit.PREFIX}*"):
        redis_client().delete(k)


def test_verify_through_the_api_shares_the_page_s_limit_and_fails_open(certs_app, awards, monkeypatch):
    """Many wrong numbers from one address through the API: the page's limit counts them too (alternating page and
    API does not double it), the 429 is the JSON error shape with a Chinese sentence, another address is still
    answered; with Redis gone the API still answers (fail open, as the page does)."""
    from services.certs.certificates import ratelimit
    from services.common.config import redis_client_for
    from services.common.web import redis_client

    for k in redis_client().scan_iter(f"{ratelimit.PREFIX}*"):
        redis_client().delete(k)
    monkeypatch.setenv("CME_CERTS_VERIFY_PER_MINUTE", "4")
    c = certs_app.test_client()
    abuser = {"REMOTE_ADDR": "10.9.9.10"}
    codes = []
    for n in range(3):
        codes.append(c.get(f"/certs/api/verify/2027AAAAAAAAAAA{'ABC'[n]}", environ_base=abuser).status_code)
        codes.append(c.get(f"/certs/verify/2027BBBBBBBBBBB{'ABC'[n]}", environ_base=abuser).status_code)
    assert codes == [404, 404, 404, 404, 429, 429]
    refused = c.get("/certs/api/verify/2027CCCCCCCCCCCC", environ_base=abuser)
    assert refused.status_code == 429 and refused.json["error"]["code"] == "too_many_requests"
    assert refused.json["error"]["message"] == "证书验证过于频繁，请一分钟后再试。"
    assert set(refused.json["error"]) == {"code", "message", "fields", "request_id"}
    # the count is per clock minute: Retry-After says when the next one starts
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    page = c.get("/certs/verify/2027CCCCCCCCCCCC", environ_base=abuser)
    assert page.status_code == 429 and "证书验证过于频繁，请一分钟后再试。" in page.get_data(as_text=True)
    assert 1 <= int(page.headers["Retry-After"]) <= 60
    assert c.get("/certs/api/verify/2027CCCCCCCCCCCC", environ_base={"REMOTE_ADDR": "10.9.9.11"}).status_code == 404
    for k in redis_client().scan_iter(f"{ratelimit.PREFIX}*"):
        redis_client().delete(k)
    monkeypatch.setattr(ratelimit, "redis_client", lambda: redis_client_for("redis://127.0.0.1:1/0", 0.5))
    down = [c.get("/certs/api/verify/2027AAAAAAAAAAAA", environ_base=abuser).status_code for _ in range(6)]
    assert down == [404] * 6


# ---------------------------------------------------------------- the renderer is locked down

@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://127.0.0.1:9/x.png", "https://example.com/a.css",
                                 "FILE:///etc/hostname", "ftp://example.com/x"])
def test_url_fetcher_refuses_anything_but_data(url):
    from services.certs.certificates.render import DataOnlyFetcher, RefusedURL

    with pytest.raises(RefusedURL):
        DataOnlyFetcher().fetch(url)


def test_url_fetcher_allows_data_uris():
    from services.certs.certificates.render import DataOnlyFetcher

    resp = DataOnlyFetcher().fetch("data:text/plain;base64,aGk=")
    assert resp is not None


@needs_poppler
def test_a_malicious_value_stays_text(tmp_path):
    from services.certs.certificates import render

    evil = '<img src="file:///etc/passwd"><link rel=stylesheet href="http://127.0.0.1:9/x.css">{{ 7*7 }}'
    page = {k: "x" for k in ("title", "number", "id_masked", "project_number", "institution", "dates",
                             "credit_class", "credit_value", "activity_date", "issuer", "issue_date", "verify_url")}
    page.update(name="张伟", project_title=evil, qr=render.qr_data_uri("http://127.0.0.1:8080/certs/verify/x"))
    text = pdf_text(render.render_document([page]), tmp_path)
    assert "<img src=" in text.replace("\n", "") or "file:///etc/passwd" in text  # printed, not fetched
    assert "root:" not in text and "49" not in text


def test_template_environment_is_sandboxed():
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import SandboxedEnvironment

    from services.certs.certificates import render

    assert isinstance(render._env, SandboxedEnvironment) and render._env.autoescape
    with pytest.raises(SecurityError):
        render._env.from_string("{{ ''.__class__.__mro__ }}").render()


# ---------------------------------------------------------------- audit

def test_export_download_and_full_id_views_are_audited(certs_app, awards, queued, certs_db):
    clock.set_now(at(PRINTABLE_DAY))
    c = client(certs_app, TRAINEE_1)
    r = c.post("/certs/exports", data={"csrf_token": csrf_for(TRAINEE_1), "award_id": ["1"]})
    job_id = int(r.headers["Location"].rsplit("/", 1)[1])
    run_jobs(queued)
    c.get(f"/certs/exports/{job_id}.pdf")
    number = certificates(certs_db)[1][0]
    committee = client(certs_app, REVIEWER)
    page = committee.get(f"/certs/lookup?number={number}").get_data(as_text=True)
    assert "张伟" in page and id_number(1) not in page and "查看完整号码" in page
    page = committee.post("/certs/lookup/id", data={"csrf_token": csrf_for(REVIEWER), "number": number})
    assert page.status_code == 200 and id_number(1) in page.get_data(as_text=True)
    withdraw(1, clock.now())
    assert audit(certs_db) == [
        ("trainee:trainee:1", "export", "export"), ("trainee:trainee:1", "export", "download"),
        ("reviewer:reviewer:1", "certificate", "view_id"), ("system", "award", "revoke")]
    assert committee.get("/certs/lookup?number=2027AAAAAAAAAAAA").status_code == 404
    assert certs_app.test_client().get(f"/certs/api/certificates/{number}",
                                       headers=bearer(REVIEWER)).json["id_number_masked"].startswith("6101")


# ---------------------------------------------------------------- permissions

K = "<number>"
J = "<job>"
# rule -> (method, url, json/form body, expected status per principal)
ENDPOINTS = {
    "GET /certs/my": ("GET", "/certs/my", None,
                      {"anonymous": 302, "trainee": 200, "other_trainee": 200, "inst_a": 403, "inst_b": 403,
                       "committee": 403}),
    "POST /certs/exports": ("POST", "/certs/exports", {"award_id": ["1"]},
                            {"anonymous": 303, "trainee": 303, "other_trainee": 404, "inst_a": 403, "inst_b": 403,
                             "committee": 403}),
    "GET /certs/exports/<int:job_id>": ("GET", f"/certs/exports/{J}", None,
                                        {"anonymous": 302, "trainee": 200, "other_trainee": 404, "inst_a": 404,
                                         "inst_b": 404, "committee": 403}),
    "GET /certs/exports/<int:job_id>.pdf": ("GET", f"/certs/exports/{J}.pdf", None,
                                            {"anonymous": 302, "trainee": 200, "other_trainee": 404, "inst_a": 404,
                                             "inst_b": 404, "committee": 403}),
    "GET /certs/institution/offerings": ("GET", "/certs/institution/offerings", None,
                                         {"anonymous": 302, "trainee": 403, "other_trainee": 403, "inst_a": 200,
                                          "inst_b": 200, "committee": 403}),
    "GET /certs/institution/offerings/<int:offering_id>": (
        "GET", "/certs/institution/offerings/101", None,
        {"anonymous": 302, "trainee": 403, "other_trainee": 403, "inst_a": 200, "inst_b": 404, "committee": 403}),
    "POST /certs/institution/offerings/<int:offering_id>/exports": (
        "POST", "/certs/institution/offerings/101/exports", {},
        {"anonymous": 401, "trainee": 403, "other_trainee": 403, "inst_a": 303, "inst_b": 404, "committee": 403}),
    "GET /certs/lookup": ("GET", f"/certs/lookup?number={K}", None,
                          {"anonymous": 302, "trainee": 403, "other_trainee": 403, "inst_a": 403, "inst_b": 403,
                           "committee": 200}),
    "POST /certs/lookup/id": ("POST", "/certs/lookup/id", {"number": K},
                              {"anonymous": 401, "trainee": 403, "other_trainee": 403, "inst_a": 403, "inst_b": 403,
                               "committee": 200}),
    "GET /certs/verify": ("GET", "/certs/verify", None, dict.fromkeys(WHO, 200)),
    "GET /certs/verify/<string:number>": ("GET", f"/certs/verify/{K}", None, dict.fromkeys(WHO, 200)),
    "POST /certs/verify/<string:number>": ("POST", f"/certs/verify/{K}", {"name": "张伟"}, dict.fromkeys(WHO, 200)),
    "GET /certs/api/me/certificates": ("GET", "/certs/api/me/certificates", None,
                                       {"anonymous": 401, "trainee": 200, "other_trainee": 200, "inst_a": 403,
                                        "inst_b": 403, "committee": 403}),
    "POST /certs/api/exports": ("POST", "/certs/api/exports", {"award_ids": [1]},
                                {"anonymous": 401, "trainee": 202, "other_trainee": 404, "inst_a": 403,
                                 "inst_b": 403, "committee": 403}),
    "GET /certs/api/exports/<int:job_id>": ("GET", f"/certs/api/exports/{J}", None,
                                            {"anonymous": 401, "trainee": 200, "other_trainee": 404, "inst_a": 404,
                                             "inst_b": 404, "committee": 403}),
    "GET /certs/api/institution/offerings": ("GET", "/certs/api/institution/offerings", None,
                                             {"anonymous": 401, "trainee": 403, "other_trainee": 403, "inst_a": 200,
                                              "inst_b": 200, "committee": 403}),
    "GET /certs/api/institution/offerings/<int:offering_id>/certificates": (
        "GET", "/certs/api/institution/offerings/101/certificates", None,
        {"anonymous": 401, "trainee": 403, "other_trainee": 403, "inst_a": 200, "inst_b": 404, "committee": 403}),
    "POST /certs/api/institution/offerings/<int:offering_id>/exports": (
        "POST", "/certs/api/institution/offerings/101/exports", None,
        {"anonymous": 401, "trainee": 403, "other_trainee": 403, "inst_a": 202, "inst_b": 404, "committee": 403}),
    "GET /certs/api/verify/<string:number>": ("GET", f"/certs/api/verify/{K}", None, dict.fromkeys(WHO, 200)),
    "GET /certs/api/certificates/<string:number>": (
        "GET", f"/certs/api/certificates/{K}", None,
        {"anonymous": 401, "trainee": 403, "other_trainee": 403, "inst_a": 403, "inst_b": 403, "committee": 200}),
}


def test_every_endpoint_is_in_the_table(certs_app):
    from services.common.web import endpoint_access

    ours = {rule for rule in endpoint_access(certs_app)
            if not rule.endswith(("/healthz", "/metrics")) and "openapi" not in rule}  # common: the matrix
    assert ours == set(ENDPOINTS)


@pytest.fixture
def exported(certs_app, awards, queued, certs_db, monkeypatch):
    """Trainee 1's finished export of award 1 (job id, certificate number)."""
    from services.certs.certificates import render

    monkeypatch.setattr(render, "render_document", blank_pages)
    clock.set_now(at(PRINTABLE_DAY))
    r = certs_app.test_client().post("/certs/api/exports", json={"award_ids": [1]}, headers=bearer(TRAINEE_1))
    run_jobs(queued)
    return r.json["id"], certificates(certs_db)[1][0]


@pytest.mark.parametrize("rule", sorted(ENDPOINTS))
@pytest.mark.parametrize("who", sorted(WHO))
def test_permissions(certs_app, exported, rule, who, monkeypatch):
    monkeypatch.setenv("CME_CERTS_VERIFY_PER_MINUTE", "0")
    method, url, body, want = ENDPOINTS[rule]
    job_id, number = exported
    url = url.replace(J, str(job_id)).replace(K, number)
    principal = WHO[who]
    if body is not None:
        body = {k: (number if v == K else v) for k, v in body.items()}
    if "/certs/api/" in url:
        headers = bearer(principal) if principal else {}
        resp = certs_app.test_client().open(url, method=method, json=body, headers=headers)
    else:
        c = client(certs_app, principal)
        data = {**(body or {}), "csrf_token": csrf_for(principal)} if method == "POST" else None
        resp = c.open(url, method=method, data=data)
    assert resp.status_code == want[who], (rule, who, resp.status_code, resp.get_data(as_text=True)[:300])
    if who == "anonymous" and resp.status_code in (302, 303):
        # the trainee's pages (her export's too) send to her login, the others to the institutions'
        expected = "/credits/login" if url.startswith(("/certs/my", "/certs/exports")) else "/projects/login"
        assert resp.headers["Location"].startswith(expected)


# ---------------------------------------------------------------- one document, revocations during a job

def test_many_certificates_are_one_weasyprint_document(certs_app, awards, queued, certs_db, monkeypatch):
    from services.certs.certificates import render

    calls = []
    monkeypatch.setattr(render, "render_document", lambda pages: calls.append(len(pages)) or blank_pages(pages))
    clock.set_now(at(PRINTABLE_DAY))
    r = client(certs_app, INST_A).post("/certs/institution/offerings/101/exports",
                                       data={"csrf_token": csrf_for(INST_A)})
    assert r.status_code == 303
    assert run_jobs(queued) == ["done"]
    assert calls == [2]


def test_an_award_withdrawn_before_rendering_is_left_out(certs_app, awards, queued, certs_db, monkeypatch):
    from services.certs.certificates import render
    from services.certs.certificates.models import ExportJob

    monkeypatch.setattr(render, "render_document", blank_pages)
    clock.set_now(at(PRINTABLE_DAY))
    r = client(certs_app, INST_A).post("/certs/institution/offerings/101/exports",
                                       data={"csrf_token": csrf_for(INST_A)})
    job_id = int(r.headers["Location"].rsplit("/", 1)[1])
    withdraw(3, clock.now())
    withdraw(3, clock.now() + dt.timedelta(days=1))  # a second withdrawal keeps the first time
    assert run_jobs(queued) == ["done"]
    s = certs_db.new_session()
    job = s.get(ExportJob, job_id)
    assert job.note and "1 张" in job.note
    s.close()
    # the PDF holds the others: it is handed out (it said 该 PDF 中有 1 张学分证书已撤销 of the one left out)
    assert client(certs_app, INST_A).get(f"/certs/exports/{job_id}.pdf").status_code == 200
    body = certs_app.test_client().get(f"/certs/api/verify/{certificates(certs_db)[3][0]}").json
    assert body["status"] == "revoked" and body["revoked_on"] == clock.fmt(clock.now(), "%Y-%m-%d")


def test_verify_form_sends_to_the_number(certs_app):
    c = certs_app.test_client()
    assert c.get("/certs/verify").status_code == 200
    r = c.get("/certs/verify?number=2027 abcd-efgh ijkl")
    assert r.status_code == 303 and r.headers["Location"].endswith("/certs/verify/2027ABCDEFGHIJKL")


def test_the_committee_s_lookup_says_how_a_number_reads_and_echoes_what_was_typed(certs_app, awards):
    """The walk typed SX2026-00000001 and was told 未找到证书编号 SX2026OOOOOOOI, a number it never typed, on a
    page that did not say how numbers read."""
    committee = client(certs_app, REVIEWER)
    page = committee.get("/certs/lookup").get_data(as_text=True)
    assert "4 位年份加 12 位字母和数字" in page and "按字母 O、I、B 查询" in page and "印在证书标题下方" in page
    missing = committee.get("/certs/lookup?number=SX2026-00000001")
    html = missing.get_data(as_text=True)
    assert missing.status_code == 404 and "未找到证书编号“SX2026-00000001”（按 SX2026OOOOOOOI 查询）" in html
    assert "证书编号应为 16 位" in html and "您输入的是 14 位" in html
    assert 'value="SX2026-00000001"' in html
    pasted = committee.get("/certs/lookup?number=" + "2027ABCDEFGHIJKL" * 3)  # pasted three times over
    html = pasted.get_data(as_text=True)
    assert pasted.status_code == 404 and "证书编号应为 16 位" in html and "您输入的是 48 位" in html


def test_a_pasted_label_is_ignored_and_a_slip_is_said_back_as_typed(certs_app, awards, queued, certs_db):
    """The walk pasted "证书编号：2026AOMVD6PRIXJ2" and was told "证书编号 证书编号:2O26AOMVD6PRIXJ2 格式不正确…
    您输入的是 21 位": the label was read as part of the number, and the page showed an O she never typed."""
    clock.set_now(at(PRINTABLE_DAY))
    export_as_trainee(certs_app, queued, [1])
    number = certificates(certs_db)[1][0]
    anon = certs_app.test_client()
    for pasted in (f"证书编号：{number}", f"证书编号:{number}", f"编号：{number}", f" 证书编号： {number.lower()} "):
        sent = anon.get("/certs/verify", query_string={"number": pasted})
        assert sent.status_code == 303 and sent.headers["Location"].endswith(f"/certs/verify/{number}"), pasted
        page = anon.get(f"/certs/verify/{pasted}")
        assert page.status_code == 200 and "证书有效" in page.get_data(as_text=True), pasted
    # a slip: said back as typed (trimmed, the label left out), never as read
    sent = anon.get("/certs/verify", query_string={"number": "证书编号：2026A0MVD6PRIXJ2X "})
    assert sent.status_code == 303
    html = anon.get(sent.headers["Location"]).get_data(as_text=True)
    assert "证书编号 2026A0MVD6PRIXJ2X 格式不正确" in shown(html) and "您输入的是 17 位" in html
    assert "2026AOMV" not in html and "证书编号：" not in html and 'value="2026A0MVD6PRIXJ2X"' in html
    # a well-shaped number typed with a 0 that is not found: what she typed, and how it was read
    sent = anon.get("/certs/verify", query_string={"number": "2027A0AAAAAAAAAA"})
    missing = anon.get(sent.headers["Location"])
    text = missing.get_data(as_text=True)
    assert missing.status_code == 404 and "未找到证书编号 2027A0AAAAAAAAAA（按 2027AOAAAAAAAAAA 查询）" in shown(text)
    # typed as printed: the number's own address, as before
    sent = anon.get("/certs/verify", query_string={"number": "2027 aaaa-aaaa aaaa"})
    assert sent.headers["Location"].endswith("/certs/verify/2027AAAAAAAAAAAA")
    # the committee's look-up ignores the label too, and says back what was typed without it
    committee = client(certs_app, REVIEWER)
    found = committee.get("/certs/lookup", query_string={"number": f"证书编号：{number}"})
    assert found.status_code == 200 and f"证书 {number}：有效" in found.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/certs/verify/%00", "/certs/verify/%ZZ", "/certs/verify/%E2%80%AE2027"])
def test_an_unreadable_number_in_the_address_is_the_verification_page(certs_app, path):
    """/certs/verify/%00 from a browser: the verification page in Chinese with a 4xx, nothing unreadable echoed."""
    resp = certs_app.test_client().get(path, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    html = resp.get_data(as_text=True)
    assert 400 <= resp.status_code < 500 and resp.mimetype == "text/html"
    assert "继续医学教育学分证书验证" in html and "格式不正确" in html
    assert '<form method="get" action="/certs/verify">' in html
    assert "\x00" not in html and "\u202e" not in html


def test_an_export_queued_long_says_so_and_keeps_refreshing(certs_app, awards, queued):
    """With the render worker down, the page said "证书正在生成…请稍候" for ever: after 2 minutes in the queue it
    says the wait is long, what she can do meanwhile and whom to ask, and still refreshes."""
    clock.set_now(at(PRINTABLE_DAY))
    c = client(certs_app, TRAINEE_1)
    r = c.post("/certs/exports", data={"csrf_token": csrf_for(TRAINEE_1), "award_id": ["1"]})
    page_url = r.headers["Location"]
    clock.set_now(at(PRINTABLE_DAY) + dt.timedelta(seconds=90))
    html = c.get(page_url).get_data(as_text=True)
    assert "请稍候" in html and "排队时间较长" not in html
    clock.set_now(at(PRINTABLE_DAY) + dt.timedelta(minutes=3, seconds=10))
    html = c.get(page_url).get_data(as_text=True)
    assert "排队时间较长（已等待 3 分钟）" in html and "可以先关闭本页" in html and "“学分证书”页" in html
    assert "请联系陕西省继续医学教育委员会" in html and '<meta http-equiv="refresh" content="2">' in html
    # she closed the page: 学分证书 leads back to it (her own exports of the last week only)
    mine = c.get("/certs/my").get_data(as_text=True)
    assert "最近一周的导出" in mine and f'<a href="{urlsplit(page_url).path}">' in mine and "· 排队中" in mine
    assert "最近一周的导出" not in client(certs_app, TRAINEE_2).get("/certs/my").get_data(as_text=True)
    clock.set_now(at(PRINTABLE_DAY) + dt.timedelta(days=8))
    assert "最近一周的导出" not in c.get("/certs/my").get_data(as_text=True)
    queued.clear()


def export_jobs(certs_db) -> list[tuple[int, list[int]]]:
    from services.certs.certificates.models import ExportJob

    s = certs_db.new_session()
    try:
        return [(j.id, list(j.award_ids)) for j in s.scalars(select(ExportJob).order_by(ExportJob.id))]
    finally:
        s.close()


def test_the_same_export_sent_again_at_once_is_the_same_job(certs_app, awards, queued, certs_db):
    """Three quick taps on 导出学分证书 made three jobs, each rendered: the same selection within 30 seconds is
    answered with the first one's job page (the API with its job), sent to the render queue once."""
    clock.set_now(at(PRINTABLE_DAY))
    c = client(certs_app, TRAINEE_1)
    form = {"csrf_token": csrf_for(TRAINEE_1), "award_id": ["1"]}
    pages = [c.post("/certs/exports", data=form) for _ in range(3)]
    assert [p.status_code for p in pages] == [303] * 3
    assert len({p.headers["Location"] for p in pages}) == 1
    [(job_id, ids)] = export_jobs(certs_db)
    assert ids == [1] and queued == [job_id] and pages[0].headers["Location"].endswith(f"/certs/exports/{job_id}")
    api = certs_app.test_client().post("/certs/api/exports", json={"award_ids": [1]}, headers=bearer(TRAINEE_1))
    assert api.status_code == 202 and api.json["id"] == job_id and queued == [job_id]
    html = c.get(f"/certs/exports/{job_id}").get_data(as_text=True)
    assert "导出学分证书" in html and "1 张" in html
    # another trainee's same-looking export is her own; after 30 seconds the same selection is a new export
    clock.set_now(at(PRINTABLE_DAY) + dt.timedelta(seconds=31))
    again = c.post("/certs/exports", data=form)
    assert again.status_code == 303 and again.headers["Location"] != pages[0].headers["Location"]
    assert len(export_jobs(certs_db)) == 2
    queued.clear()


def test_a_finished_export_of_the_same_selection_is_opened_again_unless_a_new_one_is_asked_for(
        certs_app, awards, queued, certs_db, monkeypatch):
    """导出 pressed again after a finished export of the same certificates made a new job (the same pages assembled
    into a second file, one more line under 最近一周的导出): the finished file opens, saying 已有相同的导出文件, with
    重新生成 for whoever wants a new one. Another selection, or a file outdated since, is a new export."""
    clock.set_now(at(PRINTABLE_DAY))
    first, _pdf = export_as_trainee(certs_app, queued, [1])
    clock.set_now(at(PRINTABLE_DAY + dt.timedelta(days=1)))
    c = client(certs_app, TRAINEE_1)
    form = {"csrf_token": csrf_for(TRAINEE_1), "award_id": ["1"]}
    again = c.post("/certs/exports", data=form)
    assert again.status_code == 303 and again.headers["Location"] == f"/certs/exports/{first}?existing=1"
    assert len(export_jobs(certs_db)) == 1 and queued == []
    page = c.get(again.headers["Location"]).get_data(as_text=True)
    assert "已有相同的导出文件" in page and f'href="/certs/exports/{first}.pdf"' in page
    new_file = page.split('id="new-file"')[1].split("</form>")[0]
    assert 'name="award_id" value="1"' in new_file and 'name="new" value="1"' in new_file and "重新生成" in new_file
    assert "已有相同的导出文件" not in c.get(f"/certs/exports/{first}").get_data(as_text=True)  # opened from 最近一周
    api = certs_app.test_client().post("/certs/api/exports", json={"award_ids": [1]}, headers=bearer(TRAINEE_1))
    assert api.status_code == 202 and (api.json["id"], api.json["existing"], api.json["state"]) == (first, True, "done")
    assert len(export_jobs(certs_db)) == 1 and queued == []

    # 重新生成: a new file (twice tapped: one); the API's new=true too
    renewed = [c.post("/certs/exports", data={**form, "new": "1"}) for _ in range(2)]
    assert renewed[0].headers["Location"] == renewed[1].headers["Location"] != again.headers["Location"]
    assert "?" not in renewed[0].headers["Location"] and len(export_jobs(certs_db)) == 2 and len(queued) == 1
    assert run_jobs(queued) == ["done"]
    api = certs_app.test_client().post("/certs/api/exports", json={"award_ids": [1], "new": True},
                                       headers=bearer(TRAINEE_1))
    assert api.json["existing"] is False and api.json["state"] == "queued" and len(export_jobs(certs_db)) == 3
    assert run_jobs(queued) == ["done"]

    # another selection is another export; then the same one again is its file, the latest of that selection
    clock.set_now(at(dt.date(2027, 2, 17)))  # award 2 prints from now
    both = dict(form, award_id=["1", "2"])
    made = c.post("/certs/exports", data=both)
    assert "?" not in made.headers["Location"] and len(export_jobs(certs_db)) == 4
    assert run_jobs(queued) == ["done"]
    assert c.post("/certs/exports", data=both).headers["Location"] == made.headers["Location"] + "?existing=1"
    latest_one = max(j for j, ids in export_jobs(certs_db) if ids == [1])
    assert c.post("/certs/exports", data=form).headers["Location"] == f"/certs/exports/{latest_one}?existing=1"

    # a correction since the file was made: the file is outdated, the export a new one (and no 已有 on its page)
    assert _event("credits.name_corrected", {"trainee_key": awards[0]["trainee_key"], "name": "张玮"}) is True
    fresh = c.post("/certs/exports", data=form)
    assert "?" not in fresh.headers["Location"] and len(export_jobs(certs_db)) == 5
    stale = c.get(f"/certs/exports/{latest_one}?existing=1").get_data(as_text=True)
    assert "已有相同的导出文件" not in stale and "内容已更正" in stale
    assert c.get(f"/certs/exports/{latest_one}?existing=maybe").status_code == 422
    queued.clear()


def test_two_concurrent_exports_of_the_same_selection_make_one_job(certs_app, awards, queued, certs_db,
                                                                   monkeypatch):
    """Both requests in flight at once (a read then an insert alone would let each find no earlier job): the
    trainee's exports take turns, so the second finds the first's job."""
    slow_issue(monkeypatch)
    clock.set_now(at(PRINTABLE_DAY))
    answers = twice_at_once(lambda: client(certs_app, TRAINEE_1).post(
        "/certs/exports", data={"csrf_token": csrf_for(TRAINEE_1), "award_id": ["1"]}))
    [(job_id, _ids)] = export_jobs(certs_db)
    assert answers == [f"303 /certs/exports/{job_id}"] * 2 and queued == [job_id]
    queued.clear()


def test_a_trainee_without_a_session_is_sent_to_her_login_and_back(certs_app, awards, queued, certs_db):
    """The walk's logged-out trainee opening her export page or its PDF was sent to /projects/login (the
    institutions' and the committee's, no trainee option there); /certs/my went to /credits/login. Each trainee
    page now sends her to /credits/login with the page to come back to. An institution's export page still
    sends to the institutions' login."""
    clock.set_now(at(PRINTABLE_DAY))
    job_id, _pdf = export_as_trainee(certs_app, queued, [1])
    anon = client(certs_app, None)
    html = {"Accept": "text/html"}
    for page in ("/certs/my", f"/certs/exports/{job_id}", f"/certs/exports/{job_id}.pdf"):
        r = anon.get(page, headers=html)
        assert r.status_code == 302 and r.headers["Location"] == f"/credits/login?next={page.replace('/', '%2F')}"
    assert anon.get(f"/certs/api/exports/{job_id}").status_code == 401  # API clients are told, not sent
    r = client(certs_app, INST_A).post("/certs/institution/offerings/101/exports",
                                       data={"csrf_token": csrf_for(INST_A)})
    inst_job = r.headers["Location"].rsplit("/", 1)[1]
    r = anon.get(f"/certs/exports/{inst_job}", headers=html)
    assert r.status_code == 302 and r.headers["Location"].startswith("/projects/login?next=")
    queued.clear()


def test_an_export_sent_after_the_session_ended_goes_to_the_login_saying_why(certs_app, awards, queued, certs_db):
    """导出学分证书 pressed after her session ended (logged out in another tab, password reset) answered a bare
    "请先登录。 错误代码 401" page whose only link went to the public verification. She is sent to the trainee
    login, back to 学分证书 afterwards, told that her login expired; nothing is exported."""
    clock.set_now(at(PRINTABLE_DAY))
    anon = client(certs_app, None)  # the tab's cookie is gone (logged out in another tab)
    r = anon.post("/certs/exports", data={"csrf_token": csrf_for(TRAINEE_1), "award_id": ["1"]},
                  headers={"Accept": "text/html"})
    assert r.status_code == 303 and r.headers["Location"] == "/credits/login?next=%2Fcerts%2Fmy"
    assert export_jobs(certs_db) == [] and queued == []
    with anon.session_transaction() as flashed:  # shown by the credits login page (the suite's shared flash)
        assert ["登录已失效" in msg for _cat, msg in flashed["_flashes"]] == [True]
    # with the ended session's cookie still sent, the credits login says it itself: no second message
    ended = certs_app.test_client()
    ended.set_cookie(COOKIE, "an-ended-session", domain="localhost", path="/")
    r = ended.post("/certs/exports", data={"award_id": ["1"]}, headers={"Accept": "text/html"})
    assert r.status_code == 303 and r.headers["Location"] == "/credits/login?next=%2Fcerts%2Fmy"
    with ended.session_transaction() as flashed:
        assert "_flashes" not in flashed
    # an API client is told in JSON
    api = certs_app.test_client().post("/certs/exports", data={"award_id": ["1"]},
                                       headers={"Accept": "application/json"})
    assert api.status_code == 401 and api.json["error"]["code"] == "login_required"


def test_the_name_check_is_as_easy_to_tap_on_a_phone_as_the_number(certs_app, awards, queued, certs_db):
    """Scanned from a certificate on a phone, the name check's box was 26 px tall in 13 px text (the phone zooms
    in on it) beside a full-width number box: both are now full width in 16 px text, the button a finger's size."""
    from tests.stack.browser import PHONE, served_page

    clock.set_now(at(PRINTABLE_DAY))
    assert certs_app.test_client().post("/certs/api/exports", json={"award_ids": [1]},
                                        headers=bearer(TRAINEE_1)).status_code == 202
    run_jobs(queued)
    number = certificates(certs_db)[1][0]
    anon = certs_app.test_client()
    html = anon.get(f"/certs/verify/{number}").get_data(as_text=True)
    with served_page(html, f"/certs/verify/{number}", lambda route: route.fulfill(status=204), device=PHONE,
                     static_from=anon) as page:
        box = {name: page.eval_on_selector(f"input[name={name}]", """e => ({w: e.getBoundingClientRect().width,
            h: e.getBoundingClientRect().height, font: parseFloat(getComputedStyle(e).fontSize)})""")
               for name in ("name", "number")}
        button = page.eval_on_selector("form[method=post] button", "e => e.getBoundingClientRect().height")
        wide = page.evaluate("document.documentElement.scrollWidth")
    assert box["name"] == box["number"] and box["name"]["font"] >= 16 and box["name"]["h"] >= 40
    assert button >= 40 and wide <= 360


@needs_poppler
def test_the_verification_page_shows_the_dates_the_paper_shows(certs_app, certs_db, queued, tmp_path):
    """An HR clerk holds a paper of an offering held over New Year whose 活动日期 was corrected to 31 December: the
    page her scan opens shows its 举办日期 and 活动日期 as the paper does, and the year the credit counts in (a paper
    redated from another year must not read as this one)."""
    from sqlalchemy import insert

    from services.certs.awards.models import EffectiveAward
    from tests.certs.conftest import award_row

    s = certs_db.new_session()
    s.execute(insert(EffectiveAward), [award_row(7, 1, "张伟", ends_on=dt.date(2027, 1, 1),
                                                 starts_on=dt.date(2026, 12, 30), activity_date=dt.date(2026, 12, 31))])
    s.commit()
    s.close()
    clock.set_now(at(dt.date(2027, 2, 1)))
    _job, data = export_as_trainee(certs_app, queued, [7])
    paper = pdf_text(data, tmp_path)
    assert "2026年12月30日至2027年1月1日" in paper and "2026年12月31日" in paper
    number = certificates(certs_db)[7][0]
    assert number.startswith("2026")  # the year it counts in, though first exported in 2027

    page = certs_app.test_client().get(f"/certs/verify/{number}").get_data(as_text=True)
    assert "<dt>举办日期</dt><dd>2026-12-30 至 2027-01-01</dd>" in page
    assert "<dt>活动日期</dt><dd>2026-12-31（学分计入 2026 年度）</dd>" in page
    body = certs_app.test_client().get(f"/certs/api/verify/{number}").json
    assert (body["starts_on"], body["ends_on"], body["activity_date"], body["credit_year"]) == (
        "2026-12-30", "2027-01-01", "2026-12-31", 2026)
    committee = client(certs_app, REVIEWER).get(f"/certs/lookup?number={number}").get_data(as_text=True)
    assert "2026-12-30 至 2027-01-01" in committee and "2026-12-31（学分计入 2026 年度）" in committee


def test_her_certificates_are_listed_by_year_and_the_year_she_came_from_is_ticked(certs_app, awards, queued,
                                                                                  certs_db):
    """达标情况查询 of 2026 → 导出学分证书: the certificates of two hosts and two years are under the year each counts
    in, and only 2026's are ticked (she prints that year's for her review, not last month's as well); a refusal
    sends her ticks back as she left them."""
    from sqlalchemy import insert

    from services.certs.awards.models import EffectiveAward
    from tests.certs.conftest import award_row

    s = certs_db.new_session()
    s.execute(insert(EffectiveAward), [award_row(5, 1, "张伟", offering_id=303, institution_id=2,
                                                 ends_on=dt.date(2026, 10, 10), project_title="县级医院感染防控")])
    s.commit()
    s.close()
    clock.set_now(at(dt.date(2027, 2, 20)))  # all three of 张伟's print
    c = client(certs_app, TRAINEE_1)

    def ticked(html: str) -> set[str]:
        return set(re.findall(r'name="award_id" value="(\d+)" id="a\d+" checked', html))

    html = c.get("/certs/my?year=2026").get_data(as_text=True)
    assert html.index("2027年度") < html.index("2026年度") < html.index("县级医院感染防控")
    assert "2026年度<span class=\"muted\">（2 张，可打印 2 张" in html and "宝鸡市中心医院" in html
    assert ticked(html) == {"1", "5"} and "已勾选 2026 年度全部可打印的证书（2 张）" in html
    assert ticked(c.get("/certs/my").get_data(as_text=True)) == {"1", "2", "5"}  # opened from home: every one
    # in January her 达标情况查询 opens on the new year, which has none yet: last year's are named, not ticked
    html = c.get("/certs/my?year=2028").get_data(as_text=True)
    assert ticked(html) == set() and "2028 年度暂无可打印的证书；其他年度可打印的 3 张如需打印，请勾选后导出。" in html
    bad = c.get("/certs/my?year=abc")
    assert bad.status_code == 422 and "年度" in bad.get_data(as_text=True)

    withdraw(1, at(dt.date(2027, 2, 20), 9))  # withdrawn while her page was open
    refused = c.post("/certs/exports", data={"csrf_token": csrf_for(TRAINEE_1), "award_id": ["1", "2"]})
    assert refused.status_code == 422 and "已撤销" in refused.get_data(as_text=True)
    assert "暂不能打印的" not in refused.get_data(as_text=True)  # a revoked one never prints: not "not yet"
    assert ticked(refused.get_data(as_text=True)) == {"2"}  # 5, which she left out, is not ticked again


def test_two_of_one_name_are_told_apart_on_the_offering_s_certificates(certs_app, awards, certs_db):
    """A 张伟 calls the office about her certificate, and the hall held two: the offering's certificate list shows
    each one's masked ID number (never the whole), as 授分名单 does."""
    from sqlalchemy import insert

    from services.certs.awards.models import EffectiveAward
    from services.common import pii
    from tests.certs.conftest import award_row

    s = certs_db.new_session()
    s.execute(insert(EffectiveAward), [award_row(8, 8, "张伟")])
    s.commit()
    s.close()
    clock.set_now(at(PRINTABLE_DAY))
    page = client(certs_app, INST_A).get("/certs/institution/offerings/101").get_data(as_text=True)
    assert page.count("<td>张伟</td>") == 2
    for serial in (1, 8):
        assert f"<td>{pii.mask_id(id_number(serial))}</td>" in page and id_number(serial) not in page
    assert pii.mask_id(id_number(1)) != pii.mask_id(id_number(8))
    items = certs_app.test_client().get("/certs/api/institution/offerings/101/certificates",
                                        headers=bearer(INST_A)).json["items"]
    assert {i["id_number_masked"] for i in items if i["name"] == "张伟"} == {pii.mask_id(id_number(s)) for s in (1, 8)}


def test_a_withdrawal_that_overtook_its_award_s_effective_event_still_revokes_it(certs_app, awards, queued,
                                                                                 certs_db):
    """The committee withdraws an effective award while certs has not applied its credits.effective yet (that
    message failed and is retried, or was lost and comes again when Redis is back): when the award arrives it is
    revoked as the withdrawal said, so no certificate of it prints or verifies as valid."""
    from services.certs.awards.models import EffectiveAward
    from tests.certs.conftest import award_row

    late = award_row(9, 1, "张伟", offering_id=909, project_title="胸痛中心建设与质控")
    assert withdraw(9, at(dt.date(2027, 1, 5))) is True  # first: certs does not hold award 9 yet
    assert _event("credits.effective", _effective_payload([late])) is True
    s = certs_db.new_session()
    award = s.scalars(select(EffectiveAward).where(EffectiveAward.award_id == 9)).one()
    s.close()  # before any assertion: a session left open would hold the tables the next test empties
    assert clock.fmt(award.revoked_at, "%Y-%m-%d") == "2027-01-05" and award.revoke_reason == "考勤核对有误"
    clock.set_now(at(dt.date(2027, 2, 20)))
    c = client(certs_app, TRAINEE_1)
    assert "已撤销（2027-01-05 起），不能打印" in c.get("/certs/my").get_data(as_text=True)
    refused = c.post("/certs/exports", data={"csrf_token": csrf_for(TRAINEE_1), "award_id": ["9"]})
    assert refused.status_code == 422 and queued == []
    # the same effective list sent again changes nothing, and a pending award's withdrawal alone makes no award
    assert _event("credits.effective", _effective_payload([late])) is True
    assert withdraw(999, clock.now()) is True
    s = certs_db.new_session()
    revoked = s.scalars(select(EffectiveAward.award_id).where(EffectiveAward.revoked_at.is_not(None))).all()
    unknown = s.scalars(select(EffectiveAward).where(EffectiveAward.award_id == 999)).first()
    s.close()
    assert revoked == [9] and unknown is None
    assert ("system", "award", "revoke") in audit(certs_db)


@pytest.mark.parametrize("failure", ["boom", "timeout"])
def test_a_failed_export_says_what_to_do_in_chinese(certs_app, awards, queued, monkeypatch, failure):
    """An export that failed (a render error, the task's time limit) tells her what to do, not an exception's name."""
    from celery.exceptions import SoftTimeLimitExceeded

    from services.certs.certificates import services as svc

    def fails(session, job_id):  # noqa: ANN001, ANN202
        raise SoftTimeLimitExceeded() if failure == "timeout" else ValueError("weasyprint: bad font")

    monkeypatch.setattr(svc, "run_export", fails)
    clock.set_now(at(PRINTABLE_DAY))
    c = client(certs_app, TRAINEE_1)
    resp = c.post("/certs/exports", data={"csrf_token": csrf_for(TRAINEE_1), "award_id": ["1"]})
    job_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    assert run_jobs(queued) == ["failed"]
    page = c.get(f"/certs/exports/{job_id}").get_data(as_text=True)
    said = re.search(r'<p class="errors">([^<]*)</p>', page).group(1)
    assert "重新导出" in said and "陕西省继续医学教育委员会" in said and not re.search(r"[A-Za-z]", said)
    assert ("超时" in said) == (failure == "timeout")
    assert c.get(f"/certs/api/exports/{job_id}", headers=bearer(TRAINEE_1)).json["error"] == said


def test_a_name_correction_applied_before_an_earlier_effective_list_stays(certs_app, awards, certs_db):
    """The committee corrects 张伟's name to 张玮 after her offering's awards took effect, and certs applies the
    correction first (the credits.effective sent before it failed and is retried): the award keeps the corrected
    name, so her certificate and the verifier's name check read 张玮. An older correction applied late changes
    nothing either."""
    from services.certs.awards.models import EffectiveAward
    from services.certs.worker import handle_event
    from tests.certs.conftest import award_row, key

    late = award_row(11, 1, "张伟", offering_id=111, project_title="卒中中心规范化建设")
    clock.set_now(at(dt.date(2027, 1, 5)))
    effective = make_envelope("credits.effective", "credits", _effective_payload([late]))  # sent first
    clock.set_now(at(dt.date(2027, 1, 6)))
    older = make_envelope("credits.name_corrected", "credits", {"trainee_key": key(1), "name": "张卫"})
    clock.set_now(at(dt.date(2027, 1, 7)))
    assert _event("credits.name_corrected", {"trainee_key": key(1), "name": "张玮"}) is True
    assert handle_event.run(effective) is True  # applied after the correction
    assert handle_event.run(older) is True  # a correction made before the last one, delivered late
    s = certs_db.new_session()
    names = dict(s.execute(select(EffectiveAward.award_id, EffectiveAward.name)
                           .where(EffectiveAward.award_id.in_([1, 2, 11]))).all())
    s.close()
    assert names == {1: "张玮", 2: "张玮", 11: "张玮"}


@needs_poppler
def test_a_certificate_of_the_longest_texts_is_one_page_above_its_foot(certs_app, certs_db, queued, tmp_path):
    """A project title of the catalogue's full 300 characters ran onto a second page, and the export holding it
    failed whole (one page a certificate is what the export splits by). Each certificate, however long its name,
    title and institution (up to what the database holds), is one page, its last row above the QR code."""
    from sqlalchemy import insert

    from services.certs.awards.models import EffectiveAward
    from tests.certs.conftest import award_row

    t = "基层医院急危重症患者早期识别、规范化处置与转运技术提高班暨县域医共体急救能力建设研讨会"
    h = "西安交通大学第一附属医院（陕西省心血管病医院）"
    texts = [("阿" * 6, t[:24], h[:20]), ("阿" * 16, (t * 2)[:60], (h * 2)[:40]),
             ("阿" * 100, (t * 8)[:300], (h * 9)[:200])]  # the longest of each type size, then the columns' limits
    s = certs_db.new_session()
    s.execute(insert(EffectiveAward), [
        award_row(20 + i, 1, name, offering_id=300 + i, project_title=title, institution_name=institution,
                  activity_date=dt.date(2026, 12, 10)) for i, (name, title, institution) in enumerate(texts)])
    s.commit()
    s.close()
    clock.set_now(at(PRINTABLE_DAY))
    _job, data = export_as_trainee(certs_app, queued, [20, 21, 22])
    (tmp_path / "out.pdf").write_bytes(data)
    info = subprocess.run(["pdfinfo", str(tmp_path / "out.pdf")], capture_output=True, text=True).stdout
    assert re.search(r"Pages:\s+3\b", info)
    for page in (1, 2, 3):
        words = subprocess.run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(tmp_path / "out.pdf"),
                                "-"], capture_output=True, text=True, check=True).stdout
        y = {w: float(top) for top, bottom, w in re.findall(r'yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">([^<]+)<',
                                                            words) for _ in [bottom]}
        last_row = max(float(b) for b, w in re.findall(r'yMax="([\d.]+)">([^<]+)<', words) if w == "2026年12月10日")
        assert last_row < y["扫码验证证书真伪"] - 95, page  # the 32 mm QR code stands above its caption


def test_a_certificate_that_runs_onto_a_second_page_no_longer_fails_the_export(certs_app, certs_db, queued,
                                                                               monkeypatch, tmp_path):
    """An export renders many certificates as one document and splits it a page each: one that ran onto a second
    page (a text fit() misjudged, a font fallback) failed the whole export. Now that chunk is rendered again one
    certificate at a time, the overflowing one at the smallest type; one that fits at no size is left out and
    named on the export's page, and the rest are printed."""
    from sqlalchemy import insert

    from services.certs.awards.models import EffectiveAward
    from services.certs.certificates import render
    from services.certs.certificates.models import ExportJob
    from tests.certs.conftest import award_row

    t = "基层医院急危重症患者早期识别、规范化处置与转运技术提高班暨县域医共体急救能力建设研讨会"
    s = certs_db.new_session()
    s.execute(insert(EffectiveAward), [
        award_row(30, 1, "曾小明", offering_id=330, activity_date=dt.date(2026, 12, 10)),
        award_row(31, 1, "曾小明", offering_id=331, project_title=(t * 8)[:300], activity_date=dt.date(2026, 12, 10)),
        award_row(32, 1, "曾小明", offering_id=332, project_title="无法排版", activity_date=dt.date(2026, 12, 10))])
    s.commit()
    s.close()
    monkeypatch.setattr(render, "fit", lambda *texts: "")  # the 300-character title misjudged as a short one
    real = render.render_document

    def never_fits(pages):  # type: ignore[no-untyped-def]
        return real([q for p in pages for q in ([p, p] if p["project_title"] == "无法排版" else [p])])

    monkeypatch.setattr(render, "render_document", never_fits)
    clock.set_now(at(PRINTABLE_DAY))
    job_id, data = export_as_trainee(certs_app, queued, [30, 31, 32])
    (tmp_path / "out.pdf").write_bytes(data)
    info = subprocess.run(["pdfinfo", str(tmp_path / "out.pdf")], capture_output=True, text=True).stdout
    assert re.search(r"Pages:\s+2\b", info)  # the first two, one page each
    text = pdf_text(data, tmp_path)
    assert "证书编号" in text and "无法排版" not in text
    numbers = certificates(certs_db)
    s = certs_db.new_session()
    job = s.get(ExportJob, job_id)
    assert job.state == "done" and f"学分证书 {numbers[32][0]} 的内容排不进一页" in job.note
    s.close()
    page = client(certs_app, TRAINEE_1).get(f"/certs/exports/{job_id}").get_data(as_text=True)
    assert numbers[32][0] in page and "请联系陕西省继续医学教育委员会" in page
    assert numbers[32][1] is None and numbers[31][1] is not None  # no page stored for the one left out


def test_a_name_that_matches_a_revoked_certificate_is_not_said_in_green(certs_app, awards, queued, certs_db):
    """核对持证人姓名 on a revoked number answered 您输入的姓名与证书一致 in the page's green, under the red 已撤销:
    an HR clerk who reads the last line took the paper for good. The match is said with the revocation, in red."""
    clock.set_now(at(PRINTABLE_DAY))
    export_as_trainee(certs_app, queued, [1])
    number = certificates(certs_db)[1][0]
    anon = certs_app.test_client()
    assert 'class="ok" id="name-result"' in check_name(anon, number, "张伟").get_data(as_text=True)
    assert withdraw(1, dt.datetime(2027, 1, 9, 2, 0, tzinfo=dt.UTC)) is True
    html = check_name(anon, number, "张伟").get_data(as_text=True)
    said = '<p class="bad" id="name-result">您输入的姓名与证书一致，但该证书已撤销（2027-01-09 起），不再有效。</p>'
    assert said in html
    assert 'class="ok"' not in html and "证书有效" not in html
    assert "您输入的姓名与证书不一致" in check_name(anon, number, "张三").get_data(as_text=True)


def test_a_restored_credit_s_old_certificate_points_to_the_new_one(certs_app, awards, queued, certs_db):
    """The committee withdrew her effective award by mistake and restored it (恢复: a new award, a new certificate,
    the old one revoked for good). Her 学分证书 listed the same title twice, one 已撤销，不能打印 with nothing more,
    and the office's and committee's pages the same: each took the credit for lost. The revoked one now says the
    credit was restored, and 证书查询 of the old number names the new one (once exported)."""
    clock.set_now(at(PRINTABLE_DAY))
    export_as_trainee(certs_app, queued, [1])
    old_number = certificates(certs_db)[1][0]
    assert withdraw(1, dt.datetime(2027, 1, 9, 2, 0, tzinfo=dt.UTC)) is True
    committee = client(certs_app, REVIEWER)
    mine = client(certs_app, TRAINEE_1)
    before = mine.get("/certs/my").get_data(as_text=True)
    assert "已撤销（2027-01-09 起），不能打印</div>" in before and "已恢复" not in before
    assert "已恢复" not in committee.get(f"/certs/lookup?number={old_number}").get_data(as_text=True)

    assert _event("credits.effective", _effective_payload([dict(awards[0], award_id=11)])) is True
    said = "已撤销（2027-01-09 起），不能打印；本期学分已恢复，请打印新编号的证书"
    page = mine.get("/certs/my").get_data(as_text=True)
    assert page.count(said) == 1 and 'name="award_id" value="11"' in page
    assert 'name="award_id" value="1"' not in page  # the revoked one still cannot be ticked
    items = {i["award_id"]: i for i in mine.get("/certs/api/me/certificates").json["items"]}
    assert items[1]["status_text"] == said and items[11]["status_text"] == "可打印"
    office = client(certs_app, INST_A).get(f"/certs/institution/offerings/{OFFERING_A}").get_data(as_text=True)
    assert office.count(said) == 1
    # 李娜's row of the same offering, never withdrawn, and another trainee's revoked one are not touched
    assert withdraw(3, dt.datetime(2027, 1, 9, 3, 0, tzinfo=dt.UTC)) is True
    office = client(certs_app, INST_A).get(f"/certs/institution/offerings/{OFFERING_A}").get_data(as_text=True)
    assert office.count(said) == 1 and office.count("已撤销（2027-01-09 起），不能打印</td>") == 1

    lookup = committee.get(f"/certs/lookup?number={old_number}").get_data(as_text=True)
    assert "本期学分已恢复" in lookup and "新证书在学员或举办机构下次导出时编号" in lookup and "本证书仍作废" in lookup
    export_as_trainee(certs_app, queued, [11])
    new_number = certificates(certs_db)[11][0]
    assert new_number != old_number
    lookup = committee.get(f"/certs/lookup?number={old_number}").get_data(as_text=True)
    assert f'新证书编号 <a href="/certs/lookup?number={new_number}">{new_number}</a>' in lookup
    new = committee.get(f"/certs/lookup?number={new_number}").get_data(as_text=True)
    assert "本期学分已恢复" not in new and "已撤销" not in new
    # the public page of the old number says it is revoked and that a newer certificate exists, naming none
    public = certs_app.test_client().get(f"/certs/verify/{old_number}").get_data(as_text=True)
    assert "已撤销" in public and new_number not in public and "证书有效" not in public
    assert "持证人该期学分已恢复" in public and "请向持证人索取新证书" in public
    api = certs_app.test_client().get(f"/certs/api/verify/{old_number}").json
    assert api["status"] == "revoked" and api["restored"] is True and new_number not in str(api)
