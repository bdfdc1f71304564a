"""A certificate that still runs onto a second page (shrink-to-fit misjudged: a font fallback for a rare character
in a name) where each chunk is a single certificate, rendered in the render processes: that one is rendered again
alone at the smallest type, and when it fits at no size it is left out and named on the export's page; the rest
print, a page each. An export of that certificate alone fails saying which one and whom to ask."""

from __future__ import annotations

import datetime as dt
import io

from pypdf import PdfReader, PdfWriter
from sqlalchemy import insert

from services.common import clock
from services.common.auth import Principal
from tests.certs.conftest import INST_A, at, award_row, key
from tests.certs.test_certificates import certificates, client, run_jobs
from tests.checkin.test_windows_support import csrf_for

OFFERING = 500
ENDS = dt.date(2026, 11, 20)
RARE = "龘𪚥"  # drawn by a fallback font wider than the layout reckoned: two pages at every type size
LONG = "欧阳娜娜"  # two pages at the usual type, one at the smallest
TRAINEE_RARE = Principal(role="trainee", subject="trainee:43", name=RARE, trainee_key=key(43))


def pages_of(data: bytes) -> int:
    return len(PdfReader(io.BytesIO(data)).pages)


def test_a_certificate_that_fits_at_no_size_is_named_and_the_rest_print(certs_app, certs_db, queued, monkeypatch):
    from services.certs.awards.models import EffectiveAward
    from services.certs.certificates import render
    from services.certs.certificates.models import ExportJob

    s = certs_db.new_session()
    s.execute(insert(EffectiveAward), [award_row(40 + i, 41 + i, name, offering_id=OFFERING, ends_on=ENDS)
                                       for i, name in enumerate(("王芳", LONG, RARE))])
    s.commit()
    s.close()
    # one certificate a chunk, the chunks in the render processes (forked: they render with the stand-in below)
    monkeypatch.setenv("CME_CERTS_RENDER_CHUNK", "1")
    monkeypatch.setenv("CME_CERTS_RENDER_PROCESSES", "2")

    def overflowing(pages):  # type: ignore[no-untyped-def]
        """A blank page a certificate, two for one that overflows (the real renderer has its own tests)."""
        w = PdfWriter()
        for p in pages:
            two = p["name"] == RARE or (p["name"] == LONG and p.get("size") != "longest")
            for _ in range(2 if two else 1):
                w.add_blank_page(595, 842)
        buf = io.BytesIO()
        w.write(buf)
        return buf.getvalue()

    monkeypatch.setattr(render, "render_document", overflowing)
    clock.set_now(at(ENDS + dt.timedelta(days=30)))
    office = client(certs_app, INST_A)
    r = office.post(f"/certs/institution/offerings/{OFFERING}/exports", data={"csrf_token": csrf_for(INST_A)})
    assert r.status_code == 303
    assert run_jobs(queued) == ["done"]
    numbers = certificates(certs_db)
    page = office.get(r.headers["Location"]).get_data(as_text=True)
    assert f"学分证书 {numbers[42][0]} 的内容排不进一页，未包含在 PDF 中" in page
    assert "请联系陕西省继续医学教育委员会" in page and numbers[40][0] not in page and numbers[41][0] not in page
    pdf = office.get(f"{r.headers['Location']}.pdf")
    assert pdf.status_code == 200 and pages_of(pdf.data) == 2  # 王芳's, and 欧阳娜娜's at the smallest type
    assert numbers[40][1] is not None and numbers[41][1] is not None and numbers[42][1] is None
    s = certs_db.new_session()
    job = s.get(ExportJob, int(r.headers["Location"].rsplit("/", 1)[1]))
    assert job.total == 3 and job.done == 3 and sorted(job.award_ids) == [40, 41]
    s.close()

    # the certificate exported alone by its holder: nothing to print, said with its number, no PDF
    mine = client(certs_app, TRAINEE_RARE)
    r = mine.post("/certs/exports", data={"csrf_token": csrf_for(TRAINEE_RARE), "award_id": ["42"]})
    assert r.status_code == 303
    assert run_jobs(queued) == ["failed"]
    page = mine.get(r.headers["Location"]).get_data(as_text=True)
    assert "生成失败" in page and f"学分证书 {numbers[42][0]} 的内容排不进一页" in page
    assert "请联系陕西省继续医学教育委员会" in page
    assert mine.get(f"{r.headers['Location']}.pdf").status_code == 409


def test_pressed_again_the_export_that_left_one_out_is_opened_with_its_note(certs_app, certs_db, queued, monkeypatch):
    """导出 pressed again for the same offering opens the finished file (已有相同的导出文件) even though a certificate
    of it was too long for one page: it was asked for, left out and named, and would be left out again. It rendered
    the whole offering once more at every press. 重新生成 still makes a new one, and the API says `existing`."""
    from services.certs.awards.models import EffectiveAward
    from services.certs.certificates import render
    from tests.conftest import bearer

    s = certs_db.new_session()
    s.execute(insert(EffectiveAward), [award_row(60 + i, 61 + i, name, offering_id=OFFERING, ends_on=ENDS)
                                       for i, name in enumerate(("王芳", RARE))])
    s.commit()
    s.close()
    monkeypatch.setenv("CME_CERTS_RENDER_PROCESSES", "1")
    rendered: list[str] = []

    def overflowing(pages):  # type: ignore[no-untyped-def]
        w = PdfWriter()
        for p in pages:
            rendered.append(p["name"])
            for _ in range(2 if p["name"] == RARE else 1):
                w.add_blank_page(595, 842)
        buf = io.BytesIO()
        w.write(buf)
        return buf.getvalue()

    monkeypatch.setattr(render, "render_document", overflowing)
    clock.set_now(at(ENDS + dt.timedelta(days=30)))
    office = client(certs_app, INST_A)
    form = {"csrf_token": csrf_for(INST_A)}
    first = office.post(f"/certs/institution/offerings/{OFFERING}/exports", data=form)
    assert run_jobs(queued) == ["done"]
    number = certificates(certs_db)[61][0]
    rendered.clear()

    again = office.post(f"/certs/institution/offerings/{OFFERING}/exports", data=form)
    assert again.status_code == 303 and again.headers["Location"] == first.headers["Location"] + "?existing=1"
    assert queued == []
    page = office.get(again.headers["Location"]).get_data(as_text=True)
    assert "已有相同的导出文件" in page and f"学分证书 {number} 的内容排不进一页，未包含在 PDF 中" in page
    assert pages_of(office.get(f"{first.headers['Location']}.pdf").data) == 1
    api = certs_app.test_client().post(f"/certs/api/institution/offerings/{OFFERING}/exports", headers=bearer(INST_A))
    assert api.status_code == 202 and api.json["existing"] is True and api.json["state"] == "done"
    assert queued == [] and rendered == []

    renewed = office.post(f"/certs/institution/offerings/{OFFERING}/exports", data={**form, "new": "1"})
    assert renewed.headers["Location"] not in (first.headers["Location"], again.headers["Location"])
    assert run_jobs(queued) == ["done"] and RARE in rendered
    assert number in office.get(renewed.headers["Location"]).get_data(as_text=True)
