"""A big export's render processes are replaced by fresh ones as it goes (a WeasyPrint process grows with every
certificate it lays out, and the processes of one export lived for the whole job): the office still gets every
certificate once, in the offering's order, and the export's page counts up to all of them."""

from __future__ import annotations

import datetime as dt
import io

from pypdf import PdfReader, PdfWriter
from sqlalchemy import insert

from services.common import clock
from tests.certs.conftest import INST_A, at, award_row
from tests.certs.test_certificates import client, run_jobs
from tests.checkin.test_windows_support import csrf_for
from tests.conftest import bearer

OFFERING = 600
ENDS = dt.date(2026, 11, 20)
NAMES = ("艾琳", "白杨", "蔡明", "丁宁", "方圆", "高远", "韩梅")


def test_render_processes_are_replaced_as_a_big_export_goes(certs_app, certs_db, queued, monkeypatch):
    from services.certs.awards.models import EffectiveAward
    from services.certs.certificates import render
    from services.certs.certificates.models import ExportJob

    s = certs_db.new_session()
    s.execute(insert(EffectiveAward), [award_row(70 + i, 71 + i, name, offering_id=OFFERING, ends_on=ENDS)
                                       for i, name in enumerate(NAMES)])
    s.commit()
    s.close()
    monkeypatch.setenv("CME_CERTS_RENDER_CHUNK", "1")
    monkeypatch.setenv("CME_CERTS_RENDER_PROCESSES", "2")
    monkeypatch.setattr(render, "CERTIFICATES_PER_PROCESS", 1)  # a fresh pool every 2 certificates

    def marked(pages):  # type: ignore[no-untyped-def]
        """A blank page a certificate (the real renderer has its own tests), its width telling whose page it is and
        its height which process laid it out."""
        import os

        w = PdfWriter()
        for p in pages:
            w.add_blank_page(500 + NAMES.index(p["name"]), os.getpid())
        buf = io.BytesIO()
        w.write(buf)
        return buf.getvalue()

    monkeypatch.setattr(render, "render_document", marked)
    clock.set_now(at(ENDS + dt.timedelta(days=30)))
    office = client(certs_app, INST_A)
    r = office.post(f"/certs/institution/offerings/{OFFERING}/exports", data={"csrf_token": csrf_for(INST_A)})
    assert r.status_code == 303
    assert run_jobs(queued) == ["done"]
    job_id = int(r.headers["Location"].rsplit("/", 1)[1])
    api = certs_app.test_client().get(f"/certs/api/exports/{job_id}", headers=bearer(INST_A)).json
    assert (api["state"], api["done"], api["total"]) == ("done", len(NAMES), len(NAMES))
    page = office.get(r.headers["Location"]).get_data(as_text=True)
    assert "已生成" in page
    pdf = PdfReader(io.BytesIO(office.get(f"{r.headers['Location']}.pdf").data))
    s = certs_db.new_session()
    order = [award_id - 70 for award_id in s.get(ExportJob, job_id).award_ids]  # the offering's list's order
    s.close()
    assert sorted(order) == list(range(len(NAMES)))
    assert [int(p.mediabox.width) - 500 for p in pdf.pages] == order
    processes = {int(p.mediabox.height) for p in pdf.pages}
    assert len(processes) >= 4  # 7 certificates, 2 a pool: four pools' processes, never one pool's two
