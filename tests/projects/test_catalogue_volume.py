"""项目目录 at a province's size: whatever 导出 Excel gives, 导入 takes back in one file (the export allowed 20000
rows and the import 5000, so a province's exported catalogue came back refused as 一次最多导入 5000 行)."""

from __future__ import annotations

import io
import time
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import insert

from services.projects.catalogue import services as catalogue
from tests.conftest import bearer, login_client
from tests.projects.test_catalogue import Imported


def _seed_catalogue(projects_db, n: int, hosts: int = 300) -> None:
    """`n` projects of 2026 spread over `hosts` institutions, written at once (the ORM one by one takes minutes)."""
    from services.projects.catalogue.models import Project
    from services.projects.institutions.models import Institution

    s = projects_db.new_session()
    insts = [Institution(account=f"big{i:04d}", name=f"全省医院{i:04d}", password_hash="x") for i in range(hosts)]
    s.add_all(insts)
    s.flush()
    s.execute(insert(Project), [
        {"year": 2026, "number": f"2026-{k // 1000 + 1:02d}-01-{k % 1000:03d}", "title": f"全省项目{k}",
         "leader": "王医生", "institution_id": insts[k % hosts].id, "host_name": insts[k % hosts].name,
         "credit_class": "Ⅰ类", "credit_value": Decimal("10"), "hours": Decimal("20"), "offerings_count": 1,
         "period_text": "2026年", "venue": "西安", "mode": "线下"} for k in range(n)])
    s.commit()
    s.close()


def _import(client, data: bytes, h) -> Imported:  # type: ignore[no-untyped-def]
    """The upload (202) and the worker's run of its job, as the clerk ends with it (tests/projects/test_catalogue)."""
    return Imported(client, client.post("/projects/api/catalogue/import", headers=h, content_type="multipart/form-data",
                                        data={"file": (io.BytesIO(data), "项目目录.xlsx"), "year": "2026"}), h)


def _export_job(client, csrf_token: str, **filters) -> bytes:  # type: ignore[no-untyped-def]
    """导出 Excel of a list longer than exports.DIRECT_MAX: the click makes a job, the worker's task writes the file,
    the job's page offers 下载 (tests/projects/test_catalogue_exports.py follows it in detail)."""
    from services.projects.catalogue.tasks import run_export_job

    r = client.post("/projects/catalogue/exports", data={"csrf_token": csrf_token, **filters})
    assert r.status_code == 303, r.get_data(as_text=True)[:300]
    job_id = int(r.headers["Location"].rsplit("/", 1)[1])
    assert run_export_job(job_id) == "done"
    assert "下载" in client.get(r.headers["Location"]).get_data(as_text=True)
    sheet = client.get(f"/projects/catalogue/exports/{job_id}.xlsx")
    assert sheet.status_code == 200
    return sheet.data


def test_a_province_s_year_exported_imports_back_in_one_go_quickly(projects_app, projects_db, reviewer, csrf):
    """300 hosts, 3000 projects (a busy year): 导出 Excel (above exports.DIRECT_MAX, so a job of the worker), then
    the same file imported back: all 未变, in seconds (the upload answered at once, the worker's run of the job
    included)."""
    _seed_catalogue(projects_db, 3000)
    c = login_client(projects_app.test_client(), reviewer[1])
    assert c.get("/projects/catalogue.xlsx?year=2026").status_code == 303  # no 3000 rows in the web request
    sheet = SimpleNamespace(data=_export_job(c, csrf(reviewer[1]), year="2026"))
    started = time.perf_counter()
    r = _import(projects_app.test_client(), sheet.data, bearer(reviewer[1]))
    took = time.perf_counter() - started
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["created"], body["updated"], body["unchanged"], body["errors"]) == (0, 0, 3000, [])
    # 20000 rows (the limit) took 15-21 s on a 2-core machine under a load of 8-9; 3000 stay inside a few seconds
    assert took < 10, f"importing 3000 rows back took {took:.1f} s"


def test_what_the_export_allows_the_import_takes_and_the_refusal_says_how_to_split(projects_app, projects_db,
                                                                                  reviewer, monkeypatch):
    """One limit for both ways (lowered here to 40 so that the test is quick): a file of exactly the limit imports
    back; one project more is refused by the export itself, saying to filter and export in parts."""
    monkeypatch.setattr(catalogue, "MAX_ROWS", 40)
    _seed_catalogue(projects_db, 41, hosts=2)
    c = login_client(projects_app.test_client(), reviewer[1])
    refused = c.get("/projects/catalogue.xlsx?year=2026")
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert "一次最多导出 40 项" in text and "导入每次也最多 40 行" in text and "按年度或主办单位筛选" in text
    from services.projects.institutions.models import Institution

    s = projects_db.new_session()
    host = s.query(Institution).filter_by(name="全省医院0000").one()
    s.close()
    sheet = c.get(f"/projects/catalogue.xlsx?year=2026&institution_id={host.id}")  # 21 of them
    assert sheet.status_code == 200
    assert _import(projects_app.test_client(), sheet.data, bearer(reviewer[1])).get_json()["unchanged"] == 21
    monkeypatch.setattr(catalogue, "MAX_ROWS", 21)  # exactly at the limit: still one go
    sheet = c.get(f"/projects/catalogue.xlsx?year=2026&institution_id={host.id}")
    assert _import(projects_app.test_client(), sheet.data, bearer(reviewer[1])).get_json()["unchanged"] == 21
    monkeypatch.setattr(catalogue, "MAX_ROWS", 20)  # one past it: the import's own refusal, failing its job
    r = _import(projects_app.test_client(), sheet.data, bearer(reviewer[1]))
    assert r.job["state"] == "failed" and r.job["error"] == "一次最多导入 20 行，请分批导入。"
