"""One permission matrix over every endpoint of every service and every role (issue 7).

Each row: service, "METHOD rule" exactly as the Flask url_map has it, the URL called (placeholders are ids of the
shared world in tests/permission_fixtures.py), the body sent, and the answer expected for each role in ROLES:
anonymous, trainee, neighbour (another trainee), inst_a (owns every object), inst_b, committee (role "reviewer").

Conventions a reader needs:
- Pages get the login cookie (and the form's CSRF token on POST), /api/ URLs the bearer header.
- LOGIN: a page GET without a session is redirected to a login page; any other call without one is 401.
- Someone else's object is 404 (services.common.auth.own_institution: ids leak nothing), a wrong role 403.
- OK_W: an authorised write with an empty or placeholder body; the point is authorisation, so any answer that is
  not a refusal (401/403/404) or a crash is accepted: done (200/201/202/204/302/303), invalid (400/415/422) or
  not possible in this state (409/410).
- Every refused call must leave every database exactly as it was; a 5xx is always a failure.
- A page or answer inst_b or the neighbour may open (a list, their own data) shows none of A's or the trainee's
  data (names, ID number, project titles); list URLs even ask for A's rows with ?institution_id=.
- The login a browser is sent to: /credits/login for the trainee's own pages (TRAINEE_LOGIN: her export's page, and her
  form sent after her session ended, too), /projects/login for all others.
The matrix must name every rule × method of the four url_maps, and nothing that no longer exists.

Beside the matrix, on the same world: objects out of reach behind a URL the caller may call (A's upload or window
under B's own report or activity, a draft for the committee, the trainee's award in the neighbour's export), page
changes without the CSRF token, a trainee still on the initial password, and hostile values in every page form.

After a change of the product's rules: CME_MATRIX_DISCOVER=/tmp/m.jsonl writes what every case answered (status,
tables changed, redirect, A's/the trainee's text shown), one JSON line each, to judge and copy into the table.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from services.common import clock
from services.common.auth import ANON_CSRF_COOKIE, COOKIE, Principal
from services.common.config import SERVICES
from tests.certs.conftest import blank_pages
from tests.checkin.test_windows_support import ANON_VISITOR, csrf_for
from tests.conftest import bearer, session_cookie
from tests.permission_fixtures import (
    CASE_NOW,
    ROLES,
    Snapshot,
    World,
    build_world,
    take_snapshot,
    truncate_all,
    undo_changes,
)

LOGIN = "login"  # a page GET without a session: 302 to a login page (pages) — see expected_for()
# a trainee's page without a session, a GET or a form's POST: 302/303 to the trainee login (/credits/login), also
# where the endpoint is shared with institutions (her export's page) or is a form (sent after her session ended)
TRAINEE_LOGIN = "trainee_login"
REFUSED = frozenset({401, 403, 404})
OK_W = frozenset({200, 201, 202, 204, 302, 303, 400, 409, 410, 415, 422})
Expect = int | str | frozenset[int]


def everyone(answer: Expect) -> tuple[Expect, ...]:
    """A public endpoint: the same answer whoever calls (a login neither grants nor blocks anything)."""
    return (answer,) * len(ROLES)


ALL_200 = everyone(200)
# role shortcuts for the common shapes, in ROLES order: anonymous, trainee, neighbour, inst_a, inst_b, committee
INST_OWN = (LOGIN, 403, 403, 200, 404, 403)  # A's object, institution only
INST_LIST = (LOGIN, 403, 403, 200, 200, 403)  # each institution sees its own list
INST_OWN_W = (LOGIN, 403, 403, OK_W, 404, 403)
INST_LIST_W = (LOGIN, 403, 403, OK_W, OK_W, 403)
READ_BOTH = (LOGIN, 403, 403, 200, 404, 200)  # A's object: the owner and the committee look
LIST_BOTH = (LOGIN, 403, 403, 200, 200, 200)
COMMITTEE = (LOGIN, 403, 403, 403, 403, 200)
COMMITTEE_W = (LOGIN, 403, 403, 403, 403, OK_W)
BOTH_W = (LOGIN, 403, 403, OK_W, 404, OK_W)  # A's object, changed by the owner or the committee
MINE = (LOGIN, 200, 200, 403, 403, 403)  # the trainee's own data ("me")
MINE_W = (LOGIN, OK_W, OK_W, 403, 403, 403)

Row = tuple[str, str, str, dict[str, Any] | None, tuple[Expect, ...]]


def row(rule: str, answers: tuple[Expect, ...], url: str | None = None, body: dict[str, Any] | None = None) -> Row:
    """(service, "METHOD rule", url called, body, answers); the url defaults to the rule's path, the body of a
    POST or PUT to {} (an empty form or JSON object: authorisation is judged, not validation)."""
    method, path = rule.split(" ", 1)
    if body is None and method in ("POST", "PUT"):
        body = {}
    return path.split("/")[1], rule, url or path, body, answers


MATRIX: list[Row] = [
    # ---- projects ------------------------------------------------------------------------------------------
    row("GET /projects/", everyone(302)),
    row("GET /projects/healthz", ALL_200),
    row("GET /projects/metrics", ALL_200),  # the gateway does not route it (tests/stack/test_gateway.py)
    row("GET /projects/static/<path:filename>", ALL_200, "/projects/static/cme.css"),
    row("GET /projects/api/openapi.json", ALL_200),
    row("GET /projects/login", ALL_200),
    row("POST /projects/login", everyone(422)),
    row("GET /projects/login/admins", everyone(302)),
    row("POST /projects/login/admins", everyone(302)),
    row("GET /projects/login/sms", everyone(302)),
    row("POST /projects/login/sms/send", everyone(302)),
    row("POST /projects/login/sms/verify", everyone(302)),
    row("POST /projects/logout", everyone(302)),
    row("POST /projects/api/auth/login", everyone(422)),
    row("POST /projects/api/auth/admins", everyone(422)),
    row("POST /projects/api/auth/sms/send", everyone(422)),
    row("POST /projects/api/auth/sms/verify", everyone(422)),
    row("GET /projects/admins", INST_LIST),
    row("POST /projects/admins", INST_LIST_W),
    row("GET /projects/api/admins", INST_LIST),
    row("POST /projects/api/admins", INST_LIST_W),
    # A's only 机构负责人: A is refused (not oneself, not the last one), B does not find her
    row("GET /projects/password", INST_LIST),
    row("POST /projects/password", INST_LIST_W, body={"old_password": "x", "new_password": "y"}),
    row("POST /projects/api/auth/password", INST_LIST_W, body={"old_password": "x", "new_password": "y"}),
    row("POST /projects/admins/<int:admin_id>/remove", INST_OWN_W, "/projects/admins/{admin_a}/remove",
        {"reason": "已调离本院"}),
    row("POST /projects/api/admins/<int:admin_id>/remove", INST_OWN_W, "/projects/api/admins/{admin_a}/remove",
        {"reason": "已调离本院"}),
    # catalogue and institutions: the committee's
    row("GET /projects/catalogue", COMMITTEE),
    row("GET /projects/catalogue.xlsx", COMMITTEE),
    row("POST /projects/catalogue/import", COMMITTEE_W),
    row("GET /projects/catalogue/import", (LOGIN, 403, 403, 403, 403, 303)),  # back to the list
    # a catalogue import job {cimport}, done, with a row in error (its list downloadable)
    row("GET /projects/catalogue/imports/<int:job_id>", COMMITTEE, "/projects/catalogue/imports/{cimport}"),
    row("GET /projects/catalogue/imports/<int:job_id>/report.xlsx", COMMITTEE,
        "/projects/catalogue/imports/{cimport}/report.xlsx"),
    row("GET /projects/api/catalogue/imports/<int:job_id>", COMMITTEE, "/projects/api/catalogue/imports/{cimport}"),
    # 导出 Excel of a long list: the form (the world's short list comes back as the file), a done export job {cexport}
    row("POST /projects/catalogue/exports", COMMITTEE_W),
    row("GET /projects/catalogue/exports", (LOGIN, 403, 403, 403, 403, 303)),  # back to the list
    row("GET /projects/catalogue/exports/<int:job_id>", COMMITTEE, "/projects/catalogue/exports/{cexport}"),
    row("GET /projects/catalogue/exports/<int:job_id>.xlsx", COMMITTEE, "/projects/catalogue/exports/{cexport}.xlsx"),
    row("POST /projects/api/catalogue/export", COMMITTEE_W),  # always a job: 202
    row("GET /projects/api/catalogue/exports/<int:job_id>", COMMITTEE, "/projects/api/catalogue/exports/{cexport}"),
    row("GET /projects/api/catalogue/exports/<int:job_id>.xlsx", COMMITTEE,
        "/projects/api/catalogue/exports/{cexport}.xlsx"),
    row("POST /projects/catalogue/<int:project_id>/delete", COMMITTEE_W, "/projects/catalogue/{pid}/delete"),
    row("GET /projects/api/catalogue", LIST_BOTH, "/projects/api/catalogue?institution_id={inst_a}"),
    row("POST /projects/api/catalogue/import", COMMITTEE_W),
    row("GET /projects/institutions", COMMITTEE),
    row("GET /projects/institutions/import-template.xlsx", COMMITTEE),
    row("POST /projects/institutions", COMMITTEE_W),
    row("POST /projects/institutions/import", COMMITTEE_W),
    row("GET /projects/institutions/import", (LOGIN, 403, 403, 403, 403, 303)),
    row("POST /projects/review/filings/<int:filing_id>/contact", COMMITTEE_W,
        "/projects/review/filings/{fid_sub}/contact"),
    row("POST /projects/review/reports/<int:report_id>/contact", COMMITTEE_W,
        "/projects/review/reports/{rid}/contact"),
    row("GET /projects/institutions/<int:institution_id>", COMMITTEE, "/projects/institutions/{inst_a}"),
    row("POST /projects/institutions/<int:institution_id>/active", COMMITTEE_W,
        "/projects/institutions/{inst_a}/active"),
    row("POST /projects/institutions/<int:institution_id>/name", COMMITTEE_W, "/projects/institutions/{inst_a}/name"),
    row("POST /projects/institutions/<int:institution_id>/password", COMMITTEE_W,
        "/projects/institutions/{inst_a}/password"),
    row("POST /projects/institutions/<int:institution_id>/admins", COMMITTEE_W,
        "/projects/institutions/{inst_a}/admins"),
    row("POST /projects/institutions/<int:institution_id>/admins/<int:admin_id>/remove", COMMITTEE_W,
        "/projects/institutions/{inst_a}/admins/{admin_a}/remove", {"reason": "已调离本院"}),
    row("GET /projects/api/institutions", COMMITTEE),
    row("POST /projects/api/institutions", COMMITTEE_W),
    row("POST /projects/api/institutions/import", COMMITTEE_W),
    # 项目举办前登记: A's draft filing {fid}, A's submitted one {fid_sub}, A's project {pid}
    row("GET /projects/filings", INST_LIST, "/projects/filings?institution_id={inst_a}"),
    row("GET /projects/filings/<int:filing_id>", INST_OWN, "/projects/filings/{fid}"),
    row("POST /projects/filings/<int:filing_id>", INST_OWN_W, "/projects/filings/{fid}"),
    row("POST /projects/filings/<int:filing_id>/delete", INST_OWN_W, "/projects/filings/{fid}/delete"),
    row("POST /projects/filings/<int:filing_id>/cancel", INST_OWN_W, "/projects/filings/{fid_sub}/cancel",
        {"reason": "会场改作他用"}),
    row("GET /projects/filings/<int:filing_id>/uploads/<kind>", READ_BOTH,
        "/projects/filings/{fid_sub}/uploads/notice"),
    row("POST /projects/filings/projects/<int:project_id>/offerings", INST_OWN_W,
        "/projects/filings/projects/{pid}/offerings"),
    row("GET /projects/api/filings", INST_LIST, "/projects/api/filings?institution_id={inst_a}"),
    row("GET /projects/api/filings/<int:filing_id>", INST_OWN, "/projects/api/filings/{fid}"),
    row("PUT /projects/api/filings/<int:filing_id>", INST_OWN_W, "/projects/api/filings/{fid}"),
    row("DELETE /projects/api/filings/<int:filing_id>", INST_OWN_W, "/projects/api/filings/{fid}"),
    row("POST /projects/api/filings/<int:filing_id>/submit", INST_OWN_W, "/projects/api/filings/{fid}/submit"),
    row("POST /projects/api/filings/<int:filing_id>/cancel", INST_OWN_W, "/projects/api/filings/{fid_sub}/cancel",
        {"reason": "会场改作他用"}),
    row("POST /projects/api/filings/<int:filing_id>/uploads/<kind>", INST_OWN_W,
        "/projects/api/filings/{fid}/uploads/notice"),
    row("POST /projects/api/projects/<int:project_id>/offerings", INST_OWN_W,
        "/projects/api/projects/{pid}/offerings"),
    # the committee's review of filings
    row("GET /projects/review/filings", COMMITTEE),
    row("GET /projects/review/filings/<int:filing_id>", COMMITTEE, "/projects/review/filings/{fid_sub}"),
    row("POST /projects/review/filings/<int:filing_id>/approve", COMMITTEE_W,
        "/projects/review/filings/{fid_sub}/approve"),
    row("POST /projects/review/filings/<int:filing_id>/return", COMMITTEE_W,
        "/projects/review/filings/{fid_sub}/return"),
    row("GET /projects/review/offerings/<int:offering_id>", (LOGIN, 403, 403, 403, 403, 302),
        "/projects/review/offerings/{oid}"),
    row("POST /projects/review/filings/<int:filing_id>/unheld", COMMITTEE_W,
        "/projects/review/filings/{fid_sub}/unheld", {"reason": "经核实未举办"}),
    row("GET /projects/api/review/filings", COMMITTEE),
    row("GET /projects/api/review/filings/<int:filing_id>", COMMITTEE, "/projects/api/review/filings/{fid_sub}"),
    row("POST /projects/api/review/filings/<int:filing_id>/approve", COMMITTEE_W,
        "/projects/api/review/filings/{fid_sub}/approve"),
    row("POST /projects/api/review/filings/<int:filing_id>/return", COMMITTEE_W,
        "/projects/api/review/filings/{fid_sub}/return"),
    row("POST /projects/api/review/filings/<int:filing_id>/unheld", COMMITTEE_W,
        "/projects/api/review/filings/{fid_sub}/unheld", {"reason": "经核实未举办"}),
    row("GET /projects/review", COMMITTEE),
    row("GET /projects/review/dashboard/list", COMMITTEE, "/projects/review/dashboard/list?what=held&month=2026-03"),
    row("GET /projects/api/review/dashboard", COMMITTEE),
    # 执行情况反馈: A's draft report {rid2} (upload {ruid2}) of offering {oid2}, A's submitted report {rid} ({ruid})
    row("GET /projects/reports", INST_LIST, "/projects/reports?institution_id={inst_a}"),
    row("GET /projects/reports/offering/<int:offering_id>", INST_OWN, "/projects/reports/offering/{oid2}"),
    row("POST /projects/reports/offering/<int:offering_id>/new", INST_OWN_W,
        "/projects/reports/offering/{oid2}/new"),
    row("GET /projects/reports/<int:report_id>", INST_OWN, "/projects/reports/{rid2}"),
    row("POST /projects/reports/<int:report_id>/delete", INST_OWN_W, "/projects/reports/{rid2}/delete"),
    row("GET /projects/reports/<int:report_id>/pages/<int:page>", INST_OWN, "/projects/reports/{rid2}/pages/1"),
    row("POST /projects/reports/<int:report_id>/pages/<int:page>", INST_OWN_W, "/projects/reports/{rid2}/pages/1"),
    row("POST /projects/reports/<int:report_id>/submit", INST_OWN_W, "/projects/reports/{rid2}/submit"),
    row("GET /projects/reports/<int:report_id>/uploads/<int:upload_id>", READ_BOTH,
        "/projects/reports/{rid}/uploads/{ruid}"),
    row("POST /projects/reports/<int:report_id>/uploads/<int:upload_id>/delete", INST_OWN_W,
        "/projects/reports/{rid2}/uploads/{ruid2}/delete"),
    row("GET /projects/api/reports", INST_LIST, "/projects/api/reports?institution_id={inst_a}"),
    row("GET /projects/api/reports/offering/<int:offering_id>", INST_OWN, "/projects/api/reports/offering/{oid2}"),
    row("POST /projects/api/reports/offering/<int:offering_id>", INST_OWN_W,
        "/projects/api/reports/offering/{oid2}"),
    row("GET /projects/api/reports/<int:report_id>", INST_OWN, "/projects/api/reports/{rid2}"),
    row("DELETE /projects/api/reports/<int:report_id>", INST_OWN_W, "/projects/api/reports/{rid2}"),
    row("PUT /projects/api/reports/<int:report_id>/pages/1", INST_OWN_W, "/projects/api/reports/{rid2}/pages/1"),
    row("PUT /projects/api/reports/<int:report_id>/pages/2", INST_OWN_W, "/projects/api/reports/{rid2}/pages/2"),
    row("PUT /projects/api/reports/<int:report_id>/pages/5", INST_OWN_W, "/projects/api/reports/{rid2}/pages/5"),
    row("POST /projects/api/reports/<int:report_id>/attendance/import", INST_OWN_W,
        "/projects/api/reports/{rid2}/attendance/import"),
    row("POST /projects/api/reports/<int:report_id>/submit", INST_OWN_W, "/projects/api/reports/{rid2}/submit"),
    row("POST /projects/api/reports/<int:report_id>/uploads/<kind>", INST_OWN_W,
        "/projects/api/reports/{rid2}/uploads/photo"),
    row("DELETE /projects/api/reports/<int:report_id>/uploads/<int:upload_id>", INST_OWN_W,
        "/projects/api/reports/{rid2}/uploads/{ruid2}"),
    row("GET /projects/review/reports", COMMITTEE),
    row("GET /projects/review/reports/<int:report_id>", COMMITTEE, "/projects/review/reports/{rid}"),
    row("POST /projects/review/reports/<int:report_id>/approve", COMMITTEE_W,
        "/projects/review/reports/{rid}/approve"),
    row("POST /projects/review/reports/<int:report_id>/return", COMMITTEE_W,
        "/projects/review/reports/{rid}/return"),
    row("GET /projects/api/review/reports", COMMITTEE),
    row("GET /projects/review/reports/overdue", COMMITTEE),
    row("GET /projects/review/reports/overdue.xlsx", COMMITTEE),
    row("GET /projects/api/review/reports/overdue", COMMITTEE),
    row("GET /projects/api/review/reports/<int:report_id>", COMMITTEE, "/projects/api/review/reports/{rid}"),
    row("POST /projects/api/review/reports/<int:report_id>/approve", COMMITTEE_W,
        "/projects/api/review/reports/{rid}/approve"),
    row("POST /projects/api/review/reports/<int:report_id>/return", COMMITTEE_W,
        "/projects/api/review/reports/{rid}/return"),
    # ---- checkin: A's activity {aid} (the held offering), its windows {wid} and {wid2} ----------------------
    row("GET /checkin/healthz", ALL_200),
    row("GET /checkin/metrics", ALL_200),  # the gateway does not route it (tests/stack/test_gateway.py)
    row("GET /checkin/static/<path:filename>", ALL_200, "/checkin/static/cme.css"),
    row("GET /checkin/api/openapi.json", ALL_200),
    row("GET /checkin/activities", LIST_BOTH, "/checkin/activities?institution_id={inst_a}"),
    row("GET /checkin/activities/<int:activity_id>", READ_BOTH, "/checkin/activities/{aid}"),
    row("GET /checkin/activities/<int:activity_id>/checkins", READ_BOTH, "/checkin/activities/{aid}/checkins"),
    row("POST /checkin/activities/<int:activity_id>/checkins", BOTH_W,
        "/checkin/activities/{aid}/checkins", {"q": "张伟"}),
    row("GET /checkin/activities/<int:activity_id>/checkins.xlsx", READ_BOTH,
        "/checkin/activities/{aid}/checkins.xlsx"),
    row("POST /checkin/activities/<int:activity_id>/checkins.xlsx", BOTH_W,
        "/checkin/activities/{aid}/checkins.xlsx", {"q": "张伟"}),
    row("GET /checkin/activities/<int:activity_id>/windows", READ_BOTH, "/checkin/activities/{aid}/windows"),
    row("POST /checkin/activities/<int:activity_id>/windows", INST_OWN_W, "/checkin/activities/{aid}/windows"),
    row("GET /checkin/activities/<int:activity_id>/windows/new", INST_OWN, "/checkin/activities/{aid}/windows/new"),
    row("GET /checkin/activities/<int:activity_id>/windows/<int:window_id>/edit", INST_OWN,
        "/checkin/activities/{aid}/windows/{wid}/edit"),
    row("POST /checkin/activities/<int:activity_id>/windows/<int:window_id>/edit", INST_OWN_W,
        "/checkin/activities/{aid}/windows/{wid}/edit"),
    row("POST /checkin/activities/<int:activity_id>/windows/<int:window_id>/delete", INST_OWN_W,
        "/checkin/activities/{aid}/windows/{wid2}/delete"),
    row("GET /checkin/activities/<int:activity_id>/windows/<int:window_id>/forced", INST_OWN,
        "/checkin/activities/{aid}/windows/{wid}/forced"),
    row("POST /checkin/activities/<int:activity_id>/windows/<int:window_id>/forced", INST_OWN_W,
        "/checkin/activities/{aid}/windows/{wid}/forced"),
    row("GET /checkin/activities/<int:activity_id>/windows/<int:window_id>/projector", INST_OWN,
        "/checkin/activities/{aid}/windows/{wid}/projector"),
    row("GET /checkin/api/activities", LIST_BOTH, "/checkin/api/activities?institution_id={inst_a}"),
    row("GET /checkin/api/activities/<int:activity_id>", READ_BOTH, "/checkin/api/activities/{aid}"),
    row("GET /checkin/api/activities/<int:activity_id>/checkins", READ_BOTH, "/checkin/api/activities/{aid}/checkins"),
    row("POST /checkin/api/activities/<int:activity_id>/checkins/search", BOTH_W,
        "/checkin/api/activities/{aid}/checkins/search", {"q": "张伟"}),
    row("GET /checkin/api/activities/<int:activity_id>/refused-scans", READ_BOTH,
        "/checkin/api/activities/{aid}/refused-scans"),
    row("GET /checkin/api/activities/<int:activity_id>/windows", READ_BOTH, "/checkin/api/activities/{aid}/windows"),
    row("POST /checkin/api/activities/<int:activity_id>/windows", INST_OWN_W,
        "/checkin/api/activities/{aid}/windows"),
    row("GET /checkin/api/activities/<int:activity_id>/windows/<int:window_id>", READ_BOTH,
        "/checkin/api/activities/{aid}/windows/{wid}"),
    row("PUT /checkin/api/activities/<int:activity_id>/windows/<int:window_id>", INST_OWN_W,
        "/checkin/api/activities/{aid}/windows/{wid}"),
    row("DELETE /checkin/api/activities/<int:activity_id>/windows/<int:window_id>", INST_OWN_W,
        "/checkin/api/activities/{aid}/windows/{wid2}"),
    row("POST /checkin/api/activities/<int:activity_id>/windows/<int:window_id>/forced", INST_OWN_W,
        "/checkin/api/activities/{aid}/windows/{wid}/forced"),
    row("GET /checkin/api/activities/<int:activity_id>/windows/<int:window_id>/projector", INST_OWN,
        "/checkin/api/activities/{aid}/windows/{wid}/projector"),
    # public by design: the projector token and the scan ticket decide, not a login
    row("GET /checkin/projector/<ptoken>/live", ALL_200, "/checkin/projector/{ptoken}/live"),
    row("GET /checkin/projector/<ptoken>/qr.svg", ALL_200, "/checkin/projector/{ptoken}/qr.svg"),
    row("GET /checkin/s/<token>", everyone(302), "/checkin/s/{token}"),
    row("GET /checkin/wechat/callback", everyone(410), "/checkin/wechat/callback?code=x&state=y"),
    row("GET /checkin/scan", everyone(410)),
    row("POST /checkin/scan", everyone(410), body={"nonce": "n"}),
    row("GET /checkin/api/scan", everyone(410)),
    row("POST /checkin/api/scan", everyone(410), body={"nonce": "n"}),
    # ---- credits: A's offering {oid} (with saved analysis and awards), the trainee's award {award} -----------
    row("GET /credits/healthz", ALL_200),
    row("GET /credits/metrics", ALL_200),  # the gateway does not route it (tests/stack/test_gateway.py)
    row("GET /credits/static/<path:filename>", ALL_200, "/credits/static/cme.css"),
    row("GET /credits/api/openapi.json", ALL_200),
    row("GET /credits/login", (200, 302, 302, 200, 200, 200)),
    row("POST /credits/login", everyone(422)),
    row("POST /credits/logout", everyone(302)),
    row("GET /credits/password/forgot", ALL_200),
    row("POST /credits/password/forgot", everyone(422)),
    row("GET /credits/password/reset", ALL_200),
    row("POST /credits/password/reset", everyone(422)),
    row("POST /credits/api/auth/login", everyone(422)),
    row("POST /credits/api/auth/forgot", everyone(422)),
    row("POST /credits/api/auth/reset", everyone(422)),
    row("GET /credits/accounts", COMMITTEE),
    row("GET /credits/statistics", COMMITTEE),
    row("GET /credits/statistics.xlsx", COMMITTEE),
    row("GET /credits/statistics/cancelled", COMMITTEE),
    row("GET /credits/statistics/unseen", COMMITTEE),
    row("GET /credits/statistics/unseen.xlsx", COMMITTEE),
    row("POST /credits/accounts", COMMITTEE_W),
    row("POST /credits/accounts/mobile", COMMITTEE_W),
    row("POST /credits/accounts/reset", COMMITTEE_W),
    row("POST /credits/accounts/name", COMMITTEE_W),
    row("GET /credits/", (LOGIN, 200, 200, 302, 302, 302)),  # the office and the committee go to /credits/awards
    row("GET /credits/password", MINE),
    row("POST /credits/password", MINE_W),
    row("POST /credits/api/auth/password", MINE_W),
    row("GET /credits/compliance", MINE),
    row("GET /credits/api/me/compliance", MINE),
    row("GET /credits/api/activities/<int:activity_id>/attendance", READ_BOTH,
        "/credits/api/activities/{aid}/attendance"),
    row("GET /credits/awards", LIST_BOTH, "/credits/awards?institution_id={inst_a}"),
    row("GET /credits/awards/<int:offering_id>", READ_BOTH, "/credits/awards/{oid}"),
    row("GET /credits/awards/<int:offering_id>/analysis", READ_BOTH, "/credits/awards/{oid}/analysis"),
    row("POST /credits/awards/<int:offering_id>/analysis", INST_OWN_W, "/credits/awards/{oid}/analysis"),
    row("GET /credits/awards/<int:offering_id>/attendees", READ_BOTH, "/credits/awards/{oid}/attendees"),
    row("POST /credits/awards/<int:offering_id>/exclusions", INST_OWN_W, "/credits/awards/{oid}/exclusions"),
    row("POST /credits/awards/<int:offering_id>/exclusions/include", INST_OWN_W,
        "/credits/awards/{oid}/exclusions/include"),
    row("POST /credits/awards/<int:offering_id>/grant", INST_OWN_W, "/credits/awards/{oid}/grant"),
    row("POST /credits/awards/<int:offering_id>/activity-date", INST_OWN_W, "/credits/awards/{oid}/activity-date"),
    row("GET /credits/awards/<int:offering_id>/list", READ_BOTH, "/credits/awards/{oid}/list"),
    row("GET /credits/awards/<int:offering_id>/awards.xlsx", READ_BOTH, "/credits/awards/{oid}/awards.xlsx"),
    row("GET /credits/awards/<int:offering_id>/manual", INST_OWN, "/credits/awards/{oid}/manual"),
    row("POST /credits/awards/<int:offering_id>/manual", INST_OWN_W, "/credits/awards/{oid}/manual"),
    row("POST /credits/awards/award/<int:award_id>/withdraw", BOTH_W, "/credits/awards/award/{award}/withdraw"),
    row("POST /credits/awards/award/<int:award_id>/regrant", INST_OWN_W, "/credits/awards/award/{award}/regrant"),
    # 恢复 of an effective award withdrawn by mistake: the committee's only ({award} is not withdrawn: a 409)
    row("POST /credits/awards/award/<int:award_id>/restore", COMMITTEE_W, "/credits/awards/award/{award}/restore",
        {"reason": "误撤销"}),
    row("GET /credits/api/grant/offerings", LIST_BOTH, "/credits/api/grant/offerings?institution_id={inst_a}"),
    row("GET /credits/api/offerings/<int:offering_id>", READ_BOTH, "/credits/api/offerings/{oid}"),
    row("GET /credits/api/offerings/<int:offering_id>/windows", READ_BOTH, "/credits/api/offerings/{oid}/windows"),
    row("GET /credits/api/offerings/<int:offering_id>/attendees", READ_BOTH, "/credits/api/offerings/{oid}/attendees"),
    row("GET /credits/api/offerings/<int:offering_id>/awards", READ_BOTH, "/credits/api/offerings/{oid}/awards"),
    row("POST /credits/api/offerings/<int:offering_id>/analysis/preview", INST_OWN_W,
        "/credits/api/offerings/{oid}/analysis/preview"),
    row("POST /credits/api/offerings/<int:offering_id>/analyses", INST_OWN_W,
        "/credits/api/offerings/{oid}/analyses"),
    row("POST /credits/api/offerings/<int:offering_id>/exclusions", INST_OWN_W,
        "/credits/api/offerings/{oid}/exclusions"),
    row("POST /credits/api/offerings/<int:offering_id>/exclusions/include", INST_OWN_W,
        "/credits/api/offerings/{oid}/exclusions/include"),
    row("POST /credits/api/offerings/<int:offering_id>/grant", INST_OWN_W, "/credits/api/offerings/{oid}/grant"),
    row("POST /credits/api/offerings/<int:offering_id>/manual-awards", INST_OWN_W,
        "/credits/api/offerings/{oid}/manual-awards"),
    row("POST /credits/api/awards/<int:award_id>/withdraw", BOTH_W, "/credits/api/awards/{award}/withdraw"),
    row("POST /credits/api/awards/<int:award_id>/restore", COMMITTEE_W, "/credits/api/awards/{award}/restore",
        {"reason": "误撤销"}),
    # ---- certs: the trainee's export {job} and certificate {cert}, of A's offering {oid} ----------------------
    row("GET /certs/healthz", ALL_200),
    row("GET /certs/metrics", ALL_200),  # the gateway does not route it (tests/stack/test_gateway.py)
    row("GET /certs/static/<path:filename>", ALL_200, "/certs/static/cme.css"),
    row("GET /certs/api/openapi.json", ALL_200),
    row("GET /certs/verify", ALL_200),
    row("GET /certs/verify/<string:number>", ALL_200, "/certs/verify/{cert}"),
    row("POST /certs/verify/<string:number>", everyone(422), "/certs/verify/{cert}"),  # 核对姓名: no name given
    row("GET /certs/api/verify/<string:number>", ALL_200, "/certs/api/verify/{cert}"),
    row("GET /certs/my", MINE),
    row("GET /certs/api/me/certificates", MINE),
    row("POST /certs/exports", (TRAINEE_LOGIN, OK_W, 404, 403, 403, 403), body={"award_id": ["{award}"]}),
    row("POST /certs/api/exports", (LOGIN, OK_W, 404, 403, 403, 403), body={"award_ids": ["{award}"]}),
    row("GET /certs/exports/<int:job_id>", (TRAINEE_LOGIN, 200, 404, 404, 404, 403), "/certs/exports/{job}"),
    row("GET /certs/exports/<int:job_id>.pdf", (TRAINEE_LOGIN, 200, 404, 404, 404, 403), "/certs/exports/{job}.pdf"),
    row("GET /certs/api/exports/<int:job_id>", (LOGIN, 200, 404, 404, 404, 403), "/certs/api/exports/{job}"),
    row("GET /certs/institution/offerings", INST_LIST, "/certs/institution/offerings?institution_id={inst_a}"),
    row("GET /certs/institution/offerings/<int:offering_id>", INST_OWN, "/certs/institution/offerings/{oid}"),
    row("GET /certs/api/institution/offerings", INST_LIST, "/certs/api/institution/offerings?institution_id={inst_a}"),
    row("POST /certs/institution/offerings/<int:offering_id>/exports", INST_OWN_W,
        "/certs/institution/offerings/{oid}/exports"),
    row("GET /certs/api/institution/offerings/<int:offering_id>/certificates", INST_OWN,
        "/certs/api/institution/offerings/{oid}/certificates"),
    row("POST /certs/api/institution/offerings/<int:offering_id>/exports", INST_OWN_W,
        "/certs/api/institution/offerings/{oid}/exports"),
    row("GET /certs/lookup", COMMITTEE, "/certs/lookup?number={cert}"),
    row("POST /certs/lookup/id", COMMITTEE_W, body={"number": "{cert}"}),
    row("GET /certs/api/certificates/<string:number>", COMMITTEE, "/certs/api/certificates/{cert}"),
]

PLACEHOLDERS = {  # {name} in a url or body -> key of World.ids
    "fid": "filing_draft", "fid_sub": "filing_submitted", "pid": "project", "oid": "offering",
    "oid2": "offering_draft_report", "rid": "report", "ruid": "report_upload", "rid2": "report_draft",
    "ruid2": "report_draft_upload", "aid": "activity", "wid": "window", "wid2": "window_other", "ptoken": "ptoken",
    "token": "scan_token", "award": "award", "job": "job", "cert": "certificate", "inst_a": "inst_a",
    "b_rid": "b_report", "b_aid": "b_activity", "b_oid": "b_offering", "n_award": "neighbour_award",
    "admin_a": "admin_a", "cimport": "catalogue_import", "cexport": "catalogue_export",
}
WECHAT_UA = "Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 Mobile MicroMessenger/8.0.47"


CASES = [pytest.param(row, role, id=f"{row[1]} [{role}]") for row in MATRIX for role in ROLES]


# ---- the world, built once; every case starts from its snapshot --------------------------------------------

@pytest.fixture(autouse=True)
def _clean_tables(monkeypatch) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Overrides the conftest one, which would empty the shared world after each of the ~1000 cases: here the
    world is restored from its snapshot instead, and emptied once when the module is done (see `world`).
    An export a case starts is not sent to the render queue (the broker is no part of this test)."""
    from services.certs.certificates import tasks
    from services.projects.catalogue import tasks as catalogue_tasks

    monkeypatch.setattr(tasks, "enqueue", lambda job_id: True)
    monkeypatch.setattr(catalogue_tasks, "enqueue_export", lambda job_id: True)  # the API's export job
    yield
    clock.set_now(None)


@pytest.fixture(scope="module")
def apps(projects_app, checkin_app, credits_app, certs_app) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {"projects": projects_app, "checkin": checkin_app, "credits": credits_app, "certs": certs_app}


@pytest.fixture(scope="module")
def world(apps, databases) -> Iterator[tuple[World, Snapshot]]:  # type: ignore[no-untyped-def]
    truncate_all(databases)
    w = build_world(apps, databases, blank_pages)
    yield w, take_snapshot(databases)
    truncate_all(databases)
    clock.set_now(None)


def _call(app: Any, url: str, method: str, body: dict[str, Any] | None, principal: Principal | None) -> Any:
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = WECHAT_UA  # the phone pages answer WeChat's browser
    kwargs: dict[str, Any] = {}
    if "/api/" in url:
        kwargs["headers"] = bearer(principal) if principal else {}
        if body is not None:
            kwargs["json"] = body
    else:
        kwargs["headers"] = {"Accept": "text/html"}
        if principal is not None:
            client.set_cookie(COOKIE, session_cookie(principal), domain="localhost", path="/")
        else:  # the visitor's own CSRF cookie, as the form's GET would have set it
            client.set_cookie(ANON_CSRF_COOKIE, ANON_VISITOR, domain="localhost", path="/")
        if method != "GET":
            kwargs["data"] = {**(body or {}), "csrf_token": csrf_for(principal)}
    return client.open(url, method=method, **kwargs)


def _fill(value: Any, ids: dict[str, Any]) -> Any:
    """Put the world's ids in a url or body; a value that is just "{name}" becomes the id itself (a JSON number)."""
    if isinstance(value, str):
        if value.startswith("{") and value.endswith("}") and value[1:-1] in PLACEHOLDERS:
            return ids[PLACEHOLDERS[value[1:-1]]]
        return value.format(**{k: ids[v] for k, v in PLACEHOLDERS.items()})
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def expected_for(want: Expect, url: str, method: str) -> frozenset[int]:
    if want == LOGIN:  # browsers are sent to a login page; everything else is told to log in
        return frozenset({302}) if "/api/" not in url and method == "GET" else frozenset({401})
    if want == TRAINEE_LOGIN:
        return frozenset({302, 303})
    return want if isinstance(want, frozenset) else frozenset({int(want)})  # type: ignore[arg-type]


@pytest.mark.parametrize(("row", "role"), CASES)
def test_permission(apps, world, databases, row: Row, role: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    service, rule, template, body, answers = row
    w, snap = world
    monkeypatch.setenv("CME_CERTS_VERIFY_PER_MINUTE", "0")  # the verify limit counts real minutes across cases
    clock.set_now(w.clocks.get(service, CASE_NOW))
    method = rule.split(" ", 1)[0]
    url = _fill(template, w.ids)
    resp = _call(apps[service], url, method, _fill(body, w.ids), w.who[role])
    changed = undo_changes(databases, snap)
    status = resp.status_code
    want = expected_for(answers[ROLES.index(role)], url, method)
    detail = f"{rule} as {role}: {status} {resp.get_data()[:300].decode(errors='replace')!r}"
    if os.environ.get("CME_MATRIX_DISCOVER"):
        with open(os.environ["CME_MATRIX_DISCOVER"], "a") as f:
            text_ = resp.get_data().decode(errors="replace")
            markers = sorted({m for ms in w.secrets.values() for m in ms if m in text_})
            f.write(json.dumps([rule, role, status, sorted(changed), resp.headers.get("Location"), markers]) + "\n")
    assert status < 500, detail
    assert status in want, f"expected {sorted(want)}; {detail}"
    if want <= REFUSED or answers[ROLES.index(role)] == TRAINEE_LOGIN:  # a refusal changes nothing, anywhere
        assert not changed, f"refused but changed {sorted(changed)}; {detail}"
    if answers[ROLES.index(role)] == TRAINEE_LOGIN:
        assert resp.headers["Location"].split("?")[0].endswith("/credits/login"), detail
    if status == 302 and role == "anonymous" and answers[ROLES.index(role)] == LOGIN:
        # a trainee's own pages send to the trainee login, all others to the institution/committee login
        # (the credits home sends the office and the committee on to /credits/awards: still the trainee's page)
        # (a committee page that only redirects onwards, refused to the trainee, is the committee's)
        trainee_only = (answers[ROLES.index("inst_a")] in (302, 403) and answers[ROLES.index("committee")] in (302, 403)
                        and answers[ROLES.index("trainee")] != 403)
        login_page = "/credits/login" if trainee_only else "/projects/login"
        assert resp.headers["Location"].split("?")[0].endswith(login_page), detail
    if status == 200 and len(set(answers)) > 1:  # a page B or the neighbour may open shows none of A's/the trainee's
        body_text = resp.get_data().decode(errors="replace")
        shown = [s for s in w.secrets.get(role, ()) if s in body_text]
        assert not shown, f"{role} is shown {shown}; {detail}"


# ---- the matrix names every endpoint, and only endpoints that exist -----------------------------------------

def _routes(app: Any) -> set[str]:
    return {f"{m} {r.rule}" for r in app.url_map.iter_rules() for m in r.methods - {"HEAD", "OPTIONS"}}


def test_matrix_names_every_endpoint_and_nothing_else(apps) -> None:  # type: ignore[no-untyped-def]
    listed = [(service, rule) for service, rule, *_ in MATRIX]
    assert len(listed) == len(set(listed)), "a rule is listed twice"
    for service in SERVICES:
        ours = {rule for s, rule in listed if s == service}
        actual = _routes(apps[service])
        assert not actual - ours, f"{service}: endpoints missing from the permission matrix: {sorted(actual - ours)}"
        assert not ours - actual, f"{service}: listed endpoints that no longer exist: {sorted(ours - actual)}"


# ---- objects out of reach behind an allowed URL: A's child under B's parent, a draft, the trainee's award ------

A_WINDOW = "/checkin/activities/{b_aid}/windows/{wid}"
A_WINDOW_API = "/checkin/api/activities/{b_aid}/windows/{wid}"
# (role, method, url, body, expected): the caller may call the endpoint and owns the parent in the URL, but the
# child (A's upload or window, the trainee's award) or the state (a draft, for the committee) is not theirs to see:
# "not found" (or invalid), nothing changes, nothing of it is shown
CROSS: list[tuple[str, str, str, dict[str, Any] | None, frozenset[int]]] = [
    ("inst_b", "GET", "/projects/reports/{b_rid}/uploads/{ruid}", None, frozenset({404})),
    ("inst_b", "POST", "/projects/reports/{b_rid}/uploads/{ruid2}/delete", {}, frozenset({404})),
    ("inst_b", "DELETE", "/projects/api/reports/{b_rid}/uploads/{ruid2}", None, frozenset({404})),
    ("inst_b", "GET", A_WINDOW + "/edit", None, frozenset({404})),
    ("inst_b", "POST", A_WINDOW + "/edit", {"title": "改名"}, frozenset({404})),
    ("inst_b", "POST", "/checkin/activities/{b_aid}/windows/{wid2}/delete", {}, frozenset({404})),
    ("inst_b", "GET", A_WINDOW + "/forced", None, frozenset({404})),
    ("inst_b", "POST", A_WINDOW + "/forced", {}, frozenset({404})),
    ("inst_b", "GET", A_WINDOW + "/projector", None, frozenset({404})),
    ("inst_b", "GET", A_WINDOW_API, None, frozenset({404})),
    ("inst_b", "PUT", A_WINDOW_API, {"title": "改名"}, frozenset({404})),
    ("inst_b", "DELETE", "/checkin/api/activities/{b_aid}/windows/{wid2}", None, frozenset({404})),
    ("inst_b", "POST", A_WINDOW_API + "/forced", {}, frozenset({404})),
    ("inst_b", "GET", A_WINDOW_API + "/projector", None, frozenset({404})),
    # B's own list filtered by A's window: "不属于本活动", nothing of A's is shown
    ("inst_b", "GET", "/checkin/activities/{b_aid}/checkins?window_id={wid}", None, frozenset({404})),
    ("inst_b", "GET", "/checkin/api/activities/{b_aid}/checkins?window_id={wid}", None, frozenset({404})),
    ("inst_b", "POST", "/checkin/activities/{b_aid}/checkins.xlsx", {"window_id": "{wid}"}, frozenset({404})),
    # an attendance analysis of B's offering over A's window: "不属于本活动"
    ("inst_b", "POST", "/credits/api/offerings/{b_oid}/analysis/preview", {"windows": [{"window_id": "{wid}"}]},
     frozenset({422})),
    ("inst_b", "POST", "/credits/api/offerings/{b_oid}/analyses", {"windows": [{"window_id": "{wid}"}]},
     frozenset({422})),
    # the committee sees what was submitted to it, never an institution's draft
    ("committee", "GET", "/projects/filings/{fid}/uploads/notice", None, frozenset({404})),
    ("committee", "GET", "/projects/review/filings/{fid}", None, frozenset({404})),
    ("committee", "GET", "/projects/api/review/filings/{fid}", None, frozenset({404})),
    ("committee", "POST", "/projects/api/review/filings/{fid}/approve", {}, frozenset({404, 409})),
    ("committee", "GET", "/projects/reports/{rid2}/uploads/{ruid2}", None, frozenset({404})),
    ("committee", "GET", "/projects/review/reports/{rid2}", None, frozenset({404})),
    ("committee", "GET", "/projects/api/review/reports/{rid2}", None, frozenset({404})),
    ("committee", "POST", "/projects/api/review/reports/{rid2}/approve", {}, frozenset({404, 409})),
    # one certificate export of the neighbour's own award and the trainee's: all or nothing
    ("neighbour", "POST", "/certs/exports", {"award_id": ["{n_award}", "{award}"]}, frozenset({404})),
    ("neighbour", "POST", "/certs/api/exports", {"award_ids": ["{n_award}", "{award}"]}, frozenset({404})),
]


@pytest.mark.parametrize(("role", "method", "template", "body", "want"), CROSS,
                         ids=[f"{c[1]} {c[2]} [{c[0]}]" for c in CROSS])
def test_object_out_of_reach(apps, world, databases, role: str, method: str,  # type: ignore[no-untyped-def]
                              template: str, body: dict[str, Any] | None, want: frozenset[int]) -> None:
    w, snap = world
    url = _fill(template, w.ids)
    service = url.split("/")[1]
    clock.set_now(w.clocks.get(service, CASE_NOW))
    resp = _call(apps[service], url, method, _fill(body, w.ids), w.who[role])
    changed = undo_changes(databases, snap)
    text_ = resp.get_data().decode(errors="replace")
    detail = f"{method} {url} as {role}: {resp.status_code} {text_[:300]!r}"
    assert resp.status_code in want, detail
    assert not changed, f"changed {sorted(changed)}; {detail}"
    shown = [s for s in w.secrets.get(role, ()) if s in text_]
    assert not shown, f"{role} is shown {shown}; {detail}"


# ---- a page's change without the form's CSRF token is refused, even for the role that may make it --------------

CSRF_CASES = [pytest.param(r, ROLES[r[4].index(OK_W)], id=r[1]) for r in MATRIX
              if "/api/" not in r[2] and not r[1].startswith("GET ") and OK_W in r[4]]


@pytest.mark.parametrize(("row", "role"), CSRF_CASES)
def test_page_change_without_csrf_token(apps, world, databases, row: Row, role: str) -> None:  # type: ignore[no-untyped-def]
    service, rule, template, body, _answers = row
    w, snap = world
    clock.set_now(w.clocks.get(service, CASE_NOW))
    client = apps[service].test_client()
    client.set_cookie(COOKIE, session_cookie(w.who[role]), domain="localhost", path="/")  # type: ignore[arg-type]
    resp = client.open(_fill(template, w.ids), method=rule.split(" ", 1)[0], data=_fill(body, w.ids) or {},
                       headers={"Accept": "text/html"})
    changed = undo_changes(databases, snap)
    assert resp.status_code == 403, f"{rule} as {role} without csrf_token: {resp.status_code}"
    assert not changed, f"{rule} as {role} without csrf_token changed {sorted(changed)}"


# ---- a trainee still on the initial password may only change it ------------------------------------------------

INITIAL = [  # (method, url, body, expected): pages send to the password change, the API refuses
    ("GET", "/credits/", None, 302),
    ("GET", "/credits/compliance", None, 302),
    ("GET", "/credits/api/me/compliance", None, 403),
    ("GET", "/credits/password", None, 200),
    ("GET", "/certs/my", None, 302),
    ("GET", "/certs/api/me/certificates", None, 403),
    ("POST", "/certs/exports", {"award_id": ["{award}"]}, 403),
    ("POST", "/certs/api/exports", {"award_ids": ["{award}"]}, 403),
    ("GET", "/certs/exports/{job}", None, 302),
    ("GET", "/certs/exports/{job}.pdf", None, 302),
    ("GET", "/certs/api/exports/{job}", None, 403),
]


def _initial_password_login(apps: dict[str, Any], databases: dict[str, Any], w: World) -> Principal:
    """Put the trainee's account back on the initial password (the pinyin of 张伟) and log in with it."""
    from sqlalchemy import update

    from services.common.auth import principal_from_token
    from services.credits.accounts.models import TraineeAccount
    from tests.checkin.test_windows_support import id_number

    trainee = w.who["trainee"]
    assert trainee is not None and trainee.name == "张伟"
    with databases["credits"].engine.begin() as conn:
        conn.execute(update(TraineeAccount).where(TraineeAccount.trainee_key == trainee.trainee_key)
                     .values(must_change=True, password_hash=None))
    clock.set_now(CASE_NOW)
    resp = apps["credits"].test_client().post("/credits/api/auth/login",
                                              json={"id_number": id_number(1), "password": "zhangwei"})
    assert resp.status_code == 200 and resp.json["must_change"] is True, resp.json
    principal = principal_from_token(resp.json["token"])
    assert principal is not None and principal.must_change
    return principal


@pytest.mark.parametrize(("method", "template", "body", "want"), INITIAL, ids=[f"{c[0]} {c[1]}" for c in INITIAL])
def test_initial_password_opens_only_the_change(apps, world, databases, method: str,  # type: ignore[no-untyped-def]
                                                template: str, body: dict[str, Any] | None, want: int) -> None:
    """Credits checks its account on every trainee page; the other services see the mark credits puts in the token
    (the initial password is the pinyin of the name: anyone who knows a trainee's name and ID number has it)."""
    w, snap = world
    principal = _initial_password_login(apps, databases, w)
    url = _fill(template, w.ids)
    service = url.split("/")[1]
    clock.set_now(w.clocks.get(service, CASE_NOW))
    resp = _call(apps[service], url, method, _fill(body, w.ids), principal)
    changed = undo_changes(databases, snap)
    assert resp.status_code == want, f"{method} {url}: {resp.status_code}"
    if want == 302:
        assert resp.headers["Location"].split("?")[0].endswith("/credits/password")
    assert not (changed - {"credits.trainee_accounts", "credits.audit_log"}), sorted(changed)  # the login's own


def test_after_the_change_the_new_session_opens_the_certificates(apps, world, databases) -> None:  # type: ignore[no-untyped-def]
    w, snap = world
    principal = _initial_password_login(apps, databases, w)
    credits = apps["credits"].test_client()
    credits.set_cookie(COOKIE, session_cookie(principal), domain="localhost", path="/")
    done = credits.post("/credits/password", data={"csrf_token": csrf_for(principal), "old_password": "zhangwei",
                                                   "new_password": "Xuanyuan#2027", "repeat_password": "Xuanyuan#2027"})
    session = credits.get_cookie(COOKIE)
    undo_changes(databases, snap)
    assert done.status_code == 302 and session is not None
    certs = apps["certs"].test_client()
    certs.set_cookie(COOKIE, session.value, domain="localhost", path="/")
    assert certs.get("/certs/my", headers={"Accept": "text/html"}).status_code == 200


# ---- hostile values in every page form ------------------------------------------------------------------------
# The API fuzz test (tests/stack/test_api_fuzz.py) covers the JSON APIs from their OpenAPI documents; the pages'
# forms have no such document. Each POST page the matrix lets someone change (an OK_W answer) is sent, by the first
# role allowed, every field of its form (the names in the form that URL or its parent shows, and the row's own
# body) set to each value of HOSTILE: all fields at once, then one at a time. Never a 5xx; the world is restored
# after each call.

HOSTILE = ["\x00", "x" * 10000, "0001-01-01", "9999-12-31T23:59", "-1", "99999999999999999999", "1e309", "NaN",
           " ", "<script>alert(1)</script>", "２０２６-１２-１０", "2026-02-30", "2026-12-10T25:61", "%s%s{0}",
           "'; drop table x; --", "0", "2026-12-10", "08:30", "true"]
NAME_RE = re.compile(r'<(?:input|select|textarea)[^>]*\bname="([^"]+)"', re.I)
FORM_ROWS = [r for r in MATRIX if r[1].startswith("POST ") and "/api/" not in r[2] and OK_W in r[4]]


def _form_names(apps_: dict[str, Any], databases: dict[str, Any], w: Any, snap: Any, service: str, url: str,
                principal: Any) -> set[str]:
    names: set[str] = set()
    for page_url in (url, url.rsplit("/", 1)[0]):
        clock.set_now(w.clocks.get(service, CASE_NOW))
        page = _call(apps_[service], page_url, "GET", None, principal)
        undo_changes(databases, snap)
        if page.status_code == 200:
            names |= set(NAME_RE.findall(page.get_data().decode(errors="replace")))
    names.discard("csrf_token")
    return names


def test_every_changing_page_is_fuzzed() -> None:
    assert len(FORM_ROWS) >= 25, [r[1] for r in FORM_ROWS]


@pytest.mark.parametrize("row", FORM_ROWS, ids=[r[1] for r in FORM_ROWS])
def test_hostile_form_values_never_make_a_5xx(apps, world, databases, row: Row,  # type: ignore[no-untyped-def]
                                              monkeypatch) -> None:
    service, rule, template, body, answers = row
    w, snap = world
    monkeypatch.setenv("CME_CERTS_VERIFY_PER_MINUTE", "0")  # the verify limit counts real minutes
    principal = w.who[ROLES[answers.index(OK_W)]]
    url = _fill(template, w.ids)
    base = _fill(body or {}, w.ids)
    names = _form_names(apps, databases, w, snap, service, url, principal) | set(base)
    failures = []
    for value in HOSTILE:
        for form in [{n: value for n in names}] + [{n: value} for n in sorted(names)]:
            clock.set_now(w.clocks.get(service, CASE_NOW))
            resp = _call(apps[service], url, "POST", {**base, **form}, principal)
            undo_changes(databases, snap)
            if resp.status_code >= 500:
                failures.append(f"{rule} {sorted(form)} = {value[:30]!r}: {resp.status_code}")
    assert not failures, "\n".join(failures[:20])
