"""Fixtures of the catalogue, filing and review tests: JPGs made with Pillow, a catalogue for the two
test institutions, a filing filled in and ready to 上报, and the CSRF token of a cookie session."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from PIL import Image

from services.common import clock
from tests.conftest import csrf_for as conftest_csrf_for

NOW = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)  # 2026-03-02 10:00 in Shanghai


def jpeg_bytes(size: tuple[int, int] = (64, 48), exif: bool = False, color: str = "white") -> bytes:
    img = Image.new("RGB", size, color)
    out = io.BytesIO()
    if exif:
        ex = Image.Exif()
        ex[0x010F] = "SecretCam"  # Make
        ex[0x0131] = "tracking-software"  # Software
        img.save(out, format="JPEG", exif=ex.tobytes())
    else:
        img.save(out, format="JPEG")
    return out.getvalue()


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (20, 20), "red").save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def images():
    class Images:
        jpeg = staticmethod(jpeg_bytes)
        png = staticmethod(png_bytes)

    return Images


@pytest.fixture
def frozen():
    clock.set_now(NOW)
    yield NOW
    clock.set_now(None)


def csrf_for(principal) -> str:  # type: ignore[no-untyped-def]
    return conftest_csrf_for(principal)


@pytest.fixture
def csrf():
    return csrf_for


@pytest.fixture
def make_project(projects_db):
    from services.projects.catalogue.models import Project

    counter = {"n": 0}

    def make(institution, offerings_count: int = 1, mode: str = "线下", year: int = 2026, **over):
        counter["n"] += 1
        s = projects_db.new_session()
        values = dict(year=year, number=f"{year}-01-01-{counter['n']:03d}", title=f"测试项目{counter['n']}",
                      leader="王医生", institution_id=institution.id, host_name=institution.name,
                      credit_class="Ⅰ类", credit_value=Decimal("10"), hours=Decimal("20"),
                      offerings_count=offerings_count, period_text="2026年5月", venue="西安市会议中心", mode=mode)
        values.update(over)
        p = Project(**values)
        s.add(p)
        s.commit()
        s.close()
        return p

    return make


FILLED = {
    "starts_on": "2026-03-20", "ends_on": "2026-03-21", "venue": "西安市雁塔区会议中心", "mode": "线下",
    "expected_trainees": 120, "contact_person": "李老师", "contact_phone": "13912345678",
    "schedule": [{"date": "2026-03-20", "start": "08:30", "end": "12:00", "title": "开幕式与专题讲座"},
                 {"date": "2026-03-21", "start": "14:00", "end": "17:30", "title": "病例讨论"}],
}


@pytest.fixture
def filled():
    return {**FILLED, "schedule": [dict(s) for s in FILLED["schedule"]]}


@pytest.fixture
def ready_filing(projects_app, make_project, frozen, filled):
    """An institution's draft with every field and both JPGs, through the API; returns a function."""
    from tests.conftest import bearer

    def make(inst, principal, offerings_count: int = 1, mode: str = "线下", submit: bool = False):
        project = make_project(inst, offerings_count=offerings_count, mode=mode)
        c = projects_app.test_client()
        h = bearer(principal)
        r = c.post(f"/projects/api/projects/{project.id}/offerings", headers=h)
        assert r.status_code == 201, r.get_json()
        fid = r.get_json()["id"]
        r = c.put(f"/projects/api/filings/{fid}", json={**filled, "mode": mode}, headers=h)
        assert r.status_code == 200, r.get_json()
        kinds = ["notice", "agenda"] + (["online_supervision"] if mode != "线下" else [])
        for kind in kinds:
            r = c.post(f"/projects/api/filings/{fid}/uploads/{kind}", headers=h,
                       data={"file": (io.BytesIO(jpeg_bytes()), f"{kind}.jpg")}, content_type="multipart/form-data")
            assert r.status_code == 201, r.get_json()
        if submit:
            r = c.post(f"/projects/api/filings/{fid}/submit", headers=h, json={})
            assert r.status_code == 200, r.get_json()
        return project, fid

    return make


@pytest.fixture(autouse=True)
def catalogue_queue(monkeypatch):
    """项目目录 导入 jobs are sent to the projects-jobs worker after their commit; here the ids sent are kept in this
    list (the broker is no part of these tests) and a test runs the task function itself, as the worker would."""
    from services.projects.catalogue import tasks

    sent: list[int] = []
    monkeypatch.setattr(tasks, "enqueue", lambda job_id: sent.append(job_id) or True)
    return sent


@pytest.fixture(autouse=True)
def export_queue(monkeypatch):
    """As catalogue_queue, for the 导出 Excel jobs of long lists: the ids sent to the projects-jobs worker."""
    from services.projects.catalogue import tasks

    sent: list[int] = []
    monkeypatch.setattr(tasks, "enqueue_export", lambda job_id: sent.append(job_id) or True)
    return sent
