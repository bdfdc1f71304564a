"""The shared world of the permission matrix (tests/test_permission_matrix.py), built once through the real flows,
plus a snapshot of every service database so each case starts from the same rows.

Institution A owns every object the matrix names; institution B, the neighbour trainee and the committee are always
tested on A's (or the trainee's) objects. B owns one held offering (its activity and a draft report) only so that it
can name A's child objects under a parent of its own. Events travel between services by running the consumers
in-process (relay()), as the workers would.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from sqlalchemy import insert, select, text

from services.common import clock, pii
from services.common.auth import Principal
from services.common.config import SERVICES
from tests.checkin.test_windows_support import id_number, identity
from tests.conftest import bearer
from tests.projects.conftest import FILLED, jpeg_bytes

UTC = dt.UTC
FILED_AT = dt.datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # offerings run 2026-03-20..21 (FILLED)
REPORTED_AT = dt.datetime(2026, 3, 25, 2, 0, tzinfo=UTC)  # after the offering, before the 14-day deadline
# every case runs here: certificates of the offering (ended 03-21) are printable from 04-18
CASE_NOW = dt.datetime(2026, 4, 20, 2, 0, tzinfo=UTC)
ROLES = ("anonymous", "trainee", "neighbour", "inst_a", "inst_b", "committee")


@dataclass
class World:
    """Principals by role and the ids that object-scoped URLs are filled with."""

    who: dict[str, Principal | None] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)
    clocks: dict[str, dt.datetime] = field(default_factory=dict)  # the case clock of a service, CASE_NOW if unset
    # text of A's or the trainee's data that a role must never be shown, even on a page it may open
    secrets: dict[str, tuple[str, ...]] = field(default_factory=dict)


# ---- events between services -------------------------------------------------------------------------------

def _consumers() -> dict[str, tuple[Any, dict[str, Any]]]:
    import importlib

    out = {}
    for name in SERVICES:
        worker = importlib.import_module(f"services.{name}.worker")
        out[name] = (worker.handle_event, worker.HANDLERS)
    return out


def relay(databases: dict[str, Any]) -> int:
    """Deliver every outbox event to every service that consumes it (consumers are idempotent); returns how many
    deliveries applied. Runs until no new event appears, since a consumer may emit events of its own."""
    import json

    consumers = _consumers()
    applied, seen = 0, set()
    while True:
        fresh = []
        for name in SERVICES:
            sdb = databases[name]
            outbox = sdb.metadata.tables["outbox"]
            with sdb.engine.connect() as conn:
                for row in conn.execute(select(outbox.c.id, outbox.c.envelope).order_by(outbox.c.id)):
                    if (name, row.id) not in seen:
                        seen.add((name, row.id))
                        fresh.append(json.loads(row.envelope))
        if not fresh:
            return applied
        for env in fresh:
            for handle, handlers in consumers.values():
                if env["name"] in handlers and handle.run(env):
                    applied += 1


# ---- snapshot and restore ----------------------------------------------------------------------------------

def _tables(sdb: Any) -> list[Any]:
    return list(sdb.metadata.sorted_tables)  # parents before children


def _names(sdb: Any) -> str:
    return ", ".join(f'"{t.name}"' for t in _tables(sdb))


def fingerprint(databases: dict[str, Any]) -> dict[str, str]:
    """service.table -> md5 of all its rows: one query per service, cheap enough to run after every case."""
    out: dict[str, str] = {}
    for name in SERVICES:
        sdb = databases[name]
        parts = [f"SELECT '{t.name}' AS tbl, md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS h "
                 f'FROM "{t.name}" x' for t in _tables(sdb)]
        with sdb.engine.connect() as conn:
            for row in conn.execute(text(" UNION ALL ".join(parts))):
                out[f"{name}.{row.tbl}"] = row.h
    return out


@dataclass
class Snapshot:
    """Every row of every table, by service and table, and the fingerprint of that state."""

    rows: dict[str, dict[str, list[dict[str, Any]]]]
    hashes: dict[str, str]


def take_snapshot(databases: dict[str, Any]) -> Snapshot:
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name in SERVICES:
        sdb = databases[name]
        with sdb.engine.connect() as conn:
            rows[name] = {t.name: [dict(r) for r in conn.execute(select(t)).mappings()] for t in _tables(sdb)}
    return Snapshot(rows, fingerprint(databases))


def truncate_all(databases: dict[str, Any]) -> None:
    for name in SERVICES:
        sdb = databases[name]
        sdb.session.remove()
        with sdb.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {_names(sdb)} RESTART IDENTITY CASCADE"))


def restore(databases: dict[str, Any], snap: Snapshot, changed: set[str]) -> None:
    """Put the snapshot back in the services whose tables changed. Sequences are not reset: they are already past
    every snapshot id, and a row made by the case gets a fresh id anyway."""
    for name in sorted({c.split(".", 1)[0] for c in changed}):
        sdb = databases[name]
        sdb.session.remove()
        with sdb.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {_names(sdb)} CASCADE"))
            for t in _tables(sdb):
                if snap.rows[name][t.name]:
                    conn.execute(insert(t), snap.rows[name][t.name])


def undo_changes(databases: dict[str, Any], snap: Snapshot) -> set[str]:
    """The tables a call changed ("service.table"), after putting the snapshot back in them."""
    changed = {k for k, v in fingerprint(databases).items() if snap.hashes.get(k) != v}
    if changed:
        restore(databases, snap, changed)
    return changed


# ---- the world ---------------------------------------------------------------------------------------------

def _ok(resp: Any, *codes: int) -> Any:
    assert resp.status_code in codes, (resp.status_code, resp.get_data(as_text=True)[:500])
    return resp.get_json(silent=True)


def _catalogue_import(pdb: Any, committee: Principal) -> int:
    """A 项目目录 导入 done by the worker's task, one row in error (so its list can be downloaded)."""
    from services.projects.catalogue import imports
    from services.projects.catalogue.tasks import run_import_job
    from tests.projects.test_catalogue import row, workbook

    s = pdb.new_session()
    job = imports.create_import(s, committee, "目录.xlsx", workbook([row("2026-07-01-001", "无此机构")]), 2026)
    s.commit()
    job_id = job.id
    s.close()
    assert run_import_job(job_id) == "done"
    return job_id


def _catalogue_export(pdb: Any, committee: Principal) -> int:
    """A 项目目录 导出 Excel job done by the worker's task (its file kept for download)."""
    from services.projects.catalogue import exports
    from services.projects.catalogue.tasks import run_export_job

    s = pdb.new_session()
    job = exports.create_export(s, committee, {"year": 2026}, 1)
    s.commit()
    job_id = job.id
    s.close()
    assert run_export_job(job_id) == "done"
    return job_id


def build_world(apps: dict[str, Flask], databases: dict[str, Any],
                render_stub: Callable[[list[Any]], bytes]) -> World:
    from services.certs.awards.models import EffectiveAward
    from services.certs.certificates import render, tasks
    from services.checkin.activities.models import Activity
    from services.checkin.projector.services import issue_ptoken
    from services.checkin.qr.tokens import current_token
    from services.checkin.scans.services import record_checkin
    from services.checkin.windows.models import CheckinWindow
    from services.credits.accounts.models import TraineeAccount
    from services.credits.accounts.services import set_password
    from services.credits.awards.models import CreditAward
    from services.projects.catalogue.models import Project
    from services.projects.institutions.services import add_admin, create_institution, create_reviewer
    from services.projects.reports.models import ExecutionReport

    w = World()
    pdb = databases["projects"]
    clock.set_now(FILED_AT)

    # -- projects: two institutions, the committee, A's catalogue
    s = pdb.new_session()
    principals: dict[str, Principal] = {}
    inst_ids = {}
    for n, (key, name, account) in enumerate((("inst_a", "西安市第一医院", "xa_first"),
                                              ("inst_b", "宝鸡市中心医院", "bj_center")), start=1):
        inst = create_institution(s, account, name, "Passw0rd!")
        admin = add_admin(s, inst, f"负责人{n}", f"1380000{n:04d}")
        s.flush()
        inst_ids[key] = inst.id
        w.ids[f"admin_{key[-1]}"] = admin.id
        principals[key] = Principal(role="institution", subject=f"inst:{inst.id}:admin:{admin.id}", name=inst.name,
                                    institution_id=inst.id, admin_id=admin.id)
    r = create_reviewer(s, "committee01", "审核员甲", "Review0r!", "13900000001")
    s.flush()
    principals["committee"] = Principal(role="reviewer", subject=f"reviewer:{r.id}", name=r.name, reviewer_id=r.id)
    projects = []
    # A's P1: held + report submitted; P2: filing submitted; P3: filing draft; P4: report draft. B's P5: held +
    # report draft, the parent B owns when it names A's child objects (tests/test_permission_matrix.py)
    for n in range(1, 6):
        owner = "inst_a" if n < 5 else "inst_b"
        title = f"心血管急危重症诊治进展{n}" if owner == "inst_a" else "基层糖尿病规范化管理"
        p = Project(year=2026, number=f"2026-01-01-{n:03d}", title=title, leader="王医生",
                    institution_id=inst_ids[owner], host_name=principals[owner].name, credit_class="Ⅰ类",
                    credit_value=10, hours=20, offerings_count=2, period_text="2026年3月", venue="西安市会议中心",
                    mode="线下")
        s.add(p)
        s.flush()
        projects.append(p.id)
    s.commit()
    s.close()
    w.ids["catalogue_import"] = _catalogue_import(pdb, principals["committee"])
    w.ids["catalogue_export"] = _catalogue_export(pdb, principals["committee"])

    pc = apps["projects"].test_client()
    ha, hr = bearer(principals["inst_a"]), bearer(principals["committee"])

    def filing(project_id: int, submit: bool, ha: dict[str, str] = ha) -> int:
        fid = _ok(pc.post(f"/projects/api/projects/{project_id}/offerings", headers=ha), 201)["id"]
        _ok(pc.put(f"/projects/api/filings/{fid}", json=FILLED, headers=ha), 200)
        for kind in ("notice", "agenda"):
            _ok(pc.post(f"/projects/api/filings/{fid}/uploads/{kind}", headers=ha, content_type="multipart/form-data",
                        data={"file": (io.BytesIO(jpeg_bytes()), f"{kind}.jpg")}), 201)
        if submit:
            _ok(pc.post(f"/projects/api/filings/{fid}/submit", headers=ha, json={}), 200)
        return fid

    def held(project_id: int, ha: dict[str, str] = ha) -> int:
        fid = filing(project_id, submit=True, ha=ha)
        return _ok(pc.post(f"/projects/api/review/filings/{fid}/approve", headers=hr, json={}), 200)["offering_id"]

    held_offering = held(projects[0])
    w.ids["filing_submitted"] = filing(projects[1], submit=True)
    w.ids["filing_draft"] = filing(projects[2], submit=False)
    draft_offering = held(projects[3])
    b_offering = held(projects[4], ha=bearer(principals["inst_b"]))
    w.ids.update(project=projects[2], offering=held_offering, offering_draft_report=draft_offering,
                 inst_a=inst_ids["inst_a"])
    relay(databases)  # offering.approved -> checkin activities, credits offering terms

    # -- checkin: scans of trainees 1 and 2 in every window of the held offering
    cdb = databases["checkin"]
    s = cdb.new_session()
    activity = s.scalars(select(Activity).where(Activity.offering_id == held_offering)).one()
    windows = s.scalars(select(CheckinWindow).where(CheckinWindow.activity_id == activity.id)
                        .order_by(CheckinWindow.starts_at)).all()
    for win in windows:
        for serial in (1, 2):
            record_checkin(s, win, nonce=f"n-{win.id}-{serial}", scanned_at=win.starts_at + dt.timedelta(minutes=5),
                           identity=identity(serial), openid=f"openid-{serial}", address=f"10.0.0.{serial}")
    s.commit()
    w.ids.update(activity=activity.id, window=windows[0].id, window_other=windows[-1].id)
    w.ids["b_activity"] = s.scalars(select(Activity.id).where(Activity.offering_id == b_offering)).one()
    w.ids["b_offering"] = b_offering
    # checkin's cases run while the first window is open, so the projector and the scan link are live
    checkin_now = windows[0].starts_at + dt.timedelta(minutes=10)
    w.clocks["checkin"] = checkin_now
    clock.set_now(checkin_now)
    w.ids["ptoken"] = issue_ptoken(s.get(CheckinWindow, windows[0].id), principals["inst_a"])
    token, _slot = current_token(activity.id, windows[0].id, checkin_now)
    w.ids["scan_token"] = token
    s.close()
    clock.set_now(REPORTED_AT)
    relay(databases)  # checkin.recorded -> credits attendance

    # -- credits: analysis and grant through the API, so trainee accounts and credits.granted exist
    crc = apps["credits"].test_client()
    _ok(crc.post(f"/credits/api/offerings/{held_offering}/analyses", headers=ha,
                 json={"windows": [{"window_id": win.id} for win in windows]}), 201)
    _ok(crc.post(f"/credits/api/offerings/{held_offering}/grant", headers=ha, json={"activity_date": "2026-03-21"}),
        200)
    relay(databases)  # credits.granted -> projects' award list (the report imports it)
    crdb = databases["credits"]
    s = crdb.new_session()
    for role, serial in (("trainee", 1), ("neighbour", 2)):
        acc = s.scalars(select(TraineeAccount).where(TraineeAccount.trainee_key == pii.id_hash(id_number(serial)))
                        ).one()
        set_password(s, acc, "Xuanyuan#2026")  # past the initial password, which only allows changing it
        principals[role] = Principal(role="trainee", subject=f"trainee:{acc.id}", name=acc.name,
                                     trainee_key=acc.trainee_key)
    award_ids = {a.trainee_key: a.id for a in s.scalars(select(CreditAward))}
    s.commit()
    s.close()
    w.ids["award"] = award_ids[principals["trainee"].trainee_key]
    w.ids["neighbour_award"] = award_ids[principals["neighbour"].trainee_key]

    # -- projects: reports (submitted for the held offering, a draft for the other)
    def report(offering_id: int, submit: bool, ha: dict[str, str] = ha) -> tuple[int, int]:
        rid = _ok(pc.post(f"/projects/api/reports/offering/{offering_id}", headers=ha), 201)["id"]
        _ok(pc.post(f"/projects/api/reports/{rid}/uploads/photo", headers=ha, content_type="multipart/form-data",
                    data={"file": (io.BytesIO(jpeg_bytes()), "photo.jpg")}), 201)
        if submit:
            from tests.projects.test_reports import FACTS, LECTURERS, MATERIALS

            for n, body in ((1, FACTS), (2, LECTURERS), (5, MATERIALS)):
                _ok(pc.put(f"/projects/api/reports/{rid}/pages/{n}", headers=ha, json=body), 200)
            for kind in ("schedule", "notice", "photo"):
                _ok(pc.post(f"/projects/api/reports/{rid}/uploads/{kind}", headers=ha,
                            content_type="multipart/form-data",
                            data={"file": (io.BytesIO(jpeg_bytes()), f"{kind}.jpg")}), 201)
            _ok(pc.post(f"/projects/api/reports/{rid}/attendance/import", headers=ha), 200)
            _ok(pc.post(f"/projects/api/reports/{rid}/submit", headers=ha, json={}), 200)
        s = pdb.new_session()
        upload_id = s.get(ExecutionReport, rid).uploads[0].id
        s.close()
        return rid, upload_id

    w.ids["report"], w.ids["report_upload"] = report(held_offering, submit=True)
    w.ids["report_draft"], w.ids["report_draft_upload"] = report(draft_offering, submit=False)
    w.ids["b_report"], _ = report(b_offering, submit=False, ha=bearer(principals["inst_b"]))

    # -- certs: both trainees' awards effective (as credits would announce), trainee 1 has a finished export
    from tests.certs.conftest import award_row

    certs_db = databases["certs"]
    s = certs_db.new_session()
    rows = [award_row(award_ids[principals[role].trainee_key], serial, principals[role].name,
                      offering_id=held_offering, institution_id=inst_ids["inst_a"], ends_on=dt.date(2026, 3, 21),
                      effective_at=REPORTED_AT)
            for role, serial in (("trainee", 1), ("neighbour", 2))]
    s.execute(insert(EffectiveAward), rows)
    s.commit()
    s.close()
    clock.set_now(CASE_NOW)
    sent: list[int] = []
    saved = tasks.enqueue, render.render_document
    tasks.enqueue, render.render_document = (lambda job_id: sent.append(job_id) or True), render_stub
    try:
        job = _ok(apps["certs"].test_client().post("/certs/api/exports", json={"award_ids": [w.ids["award"]]},
                                                   headers=bearer(principals["trainee"])), 202)["id"]
        for job_id in sent:
            assert tasks.run_render(job_id) == "done"
    finally:
        tasks.enqueue, render.render_document = saved
    from services.certs.certificates.models import Certificate

    s = certs_db.new_session()
    w.ids["job"] = job
    w.ids["certificate"] = s.scalars(select(Certificate.number)).one()
    s.close()
    relay(databases)
    clock.set_now(None)
    w.who = {"anonymous": None, **{k: principals[k] for k in ROLES[1:]}}
    trainee = (principals["trainee"].name, id_number(1), pii.mask_id(id_number(1)))
    w.secrets = {"neighbour": trainee, "inst_b": (*trainee, principals["neighbour"].name, "心血管急危重症诊治进展")}
    return w
