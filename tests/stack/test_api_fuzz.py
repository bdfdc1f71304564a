"""Issue 7: schemathesis over every service's OpenAPI, through the gateway, anonymously and as each role.

Every operation of projects, checkin, credits and certs is called with generated requests as an anonymous
client, as an institution's responsible person, as a committee reviewer and as a trainee (each role on the APIs
it uses), valid ones everywhere and deliberately invalid ones where the caller reaches the input checks. Every
answer must be no 5xx, carry a documented status, content type and headers, and match its documented schema
(the JSON error shape included).

The module has its own world: an institution (first login through the API adds its responsible person with a
fresh mobile), a catalogue project of three offerings, one filed, submitted and approved (with its check-in
activity) and the next one's draft, a reviewer and a trainee account in credits. Each operation is fuzzed with
random ids and again with the ids of that world. A change (any method but GET) never goes to a random id (it
could be another stack test's filing or award) but to ABSENT_ID and to the module's own ids. Each role comes
from its own loopback address (127.0.0.45-48), so the gateway's per-address login and SMS limits of the other
tests never meet ours (the fuzzer's own login attempts do meet them: 429, checked like any answer).

Nothing is excluded: the JSON APIs have no logout, and the one operation that can lock the test's own account
(a trainee's password change with wrong old passwords) runs last for that role (LAST); the token stays valid.

Bounded runtime: MAX_EXAMPLES requests per operation, role and mode, derandomized (the same requests every run),
no shrinking (a failure is reported with its request, as curl); failures are collected and reported together.
About 3700 requests, under 2 minutes with the stack's start. To hunt further, CME_FUZZ_EXAMPLES=150 and
CME_FUZZ_RANDOM=1 (new requests each run): that is how a 500 on a window starting in year 1 was found.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .flows import api_approve, api_file_offering, api_login, client_from, filing_catalogue_year, id_number, jpeg

pytestmark = pytest.mark.stack

SERVICES = ("projects", "checkin", "credits", "certs")
ABSENT_ID = 2_000_000_000  # within the integer ids, far above any row a test makes
MAX_EXAMPLES = int(os.environ.get("CME_FUZZ_EXAMPLES", "10"))
DERANDOMIZE = os.environ.get("CME_FUZZ_RANDOM", "") != "1"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]

INSTITUTION = ("fuzzinst", "模糊测试医院", "Fuzz-inst-2026", "13700004501")
REVIEWER = ("fuzzcommittee", "模糊测试审核员", "Fuzz-review-2026", "13900004502")
TRAINEE_BODY = "61010219910909047"  # a made-up 身份证号码 (17 digits; flows.id_number adds the check digit)
TRAINEE_NAME = "测试员"
TRAINEE_PASSWORD = "Fuzz-trainee-2026"

# Run last for a role: it may lock the role's own account (wrong old passwords count as failed tries).
LAST = {("POST", "/credits/api/auth/password")}


# Each role is run on the APIs it uses (the anonymous caller on all of them): a trainee's token on the
# committee's review queue would only ever meet the same 403.
TRAINEE_APIS = ("/credits/api/auth/", "/credits/api/me/", "/certs/api/me/", "/certs/api/exports",
                "/certs/api/certificates/", "/certs/api/verify/", "/checkin/api/scan")
STAFF_ONLY = ("/credits/api/me/", "/certs/api/me/", "/credits/api/auth/", "/checkin/api/scan")


def _uses(role: str, path: str) -> bool:
    if role == "anonymous":
        return True
    if role == "trainee":
        return path.startswith(TRAINEE_APIS)
    if path.startswith(STAFF_ONLY):
        return False
    # the committee reads what institutions file and run; only it reviews, adds institutions and withdraws credit
    return role == "committee" or not path.startswith(("/projects/api/review", "/projects/api/institutions",
                                                       "/projects/api/catalogue/import", "/credits/api/awards/"))


def _modes(role: str, op: schemathesis.APIOperation) -> tuple[GenerationMode, ...]:
    """Valid requests everywhere; deliberately invalid ones where the caller gets past the login check to the
    input checks: a public operation for the anonymous caller, an operation taking a body or a query otherwise."""
    raw = op.definition.raw
    if role == "anonymous":
        public = not raw.get("security")
    else:
        public = "requestBody" in raw or any(p.get("in") == "query" for p in raw.get("parameters", []))
    return (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if public else (GenerationMode.POSITIVE,)


@dataclass
class Role:
    name: str
    source: str
    headers: dict[str, str] = field(default_factory=dict)


def _ensure_accounts(stack) -> None:  # type: ignore[no-untyped-def]
    """The module's institution (no responsible person yet: the first login adds one) with a catalogue
    project of three offerings, its reviewer and a trainee."""
    from decimal import Decimal

    from sqlalchemy import select

    from services.common import pii
    from services.credits import models as credits_models  # noqa: F401 - the whole schema is known
    from services.credits.accounts.models import TraineeAccount
    from services.credits.accounts.services import ensure_account
    from services.projects import models  # noqa: F401 - the whole schema is known
    from services.projects.catalogue.models import Project
    from services.projects.institutions.models import Institution, Reviewer
    from services.projects.institutions.services import create_institution, create_reviewer

    with stack.session("projects") as s:
        if s.scalar(select(Institution.id).where(Institution.account == INSTITUTION[0])) is None:
            inst = create_institution(s, *INSTITUTION[:3])
            year = filing_catalogue_year()  # of a year with dates left to file (late December: next year's)
            s.add(Project(year=year, number=f"{year}-99-99-001", title="接口模糊测试项目", leader="赵医生",
                          institution_id=inst.id, host_name=inst.name, credit_class="Ⅰ类", credit_value=Decimal("5"),
                          hours=Decimal("10"), offerings_count=3, period_text=f"{year}年", venue="西安", mode="线下"))
        if s.scalar(select(Reviewer.id).where(Reviewer.account == REVIEWER[0])) is None:
            create_reviewer(s, *REVIEWER)
        s.commit()
    number = id_number(TRAINEE_BODY)
    with stack.session("credits") as s:
        key = pii.id_hash(number)
        if s.scalar(select(TraineeAccount.id).where(TraineeAccount.trainee_key == key)) is None:
            ensure_account(s, key, pii.encrypt(number), TRAINEE_NAME, None, None)
        s.commit()


@pytest.fixture(scope="module")
def world(stack, roles) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Ids of the module's own things, for a second round of every operation with real path ids: an offering
    filed, submitted and approved (and its check-in activity), and the next offering's draft filing."""
    base = stack.base_url
    inst, committee = roles[1], roles[2]
    office = client_from(inst.source)
    filed = api_file_offering(base, office, inst.headers)
    offering_id = api_approve(base, client_from(committee.source), committee.headers, filed)
    rows = office.get(f"{base}/projects/api/filings", headers=inst.headers).json()["items"]
    project_id = rows[0]["project"]["id"] if "project" in rows[0] else rows[0]["id"]
    r = office.post(f"{base}/projects/api/projects/{project_id}/offerings", headers=inst.headers)
    assert r.status_code == 201, r.text

    def activity() -> int | None:
        found = office.get(f"{base}/checkin/api/activities", params={"per_page": 100}, headers=inst.headers).json()
        return next((a["id"] for a in found["items"] if a["offering_id"] == offering_id), None)

    activity_id = stack.wait_until(activity, 60, what="the approved offering's check-in activity")
    return {"project_id": project_id, "filing_id": r.json()["id"], "offering_id": offering_id,
            "activity_id": activity_id}


@pytest.fixture(scope="module")
def roles(stack) -> list[Role]:  # type: ignore[no-untyped-def]
    base = stack.base_url
    _ensure_accounts(stack)
    inst = api_login(base, client_from("127.0.0.45"), stack.sms_log, "institution", INSTITUTION[0], INSTITUTION[2],
                     INSTITUTION[3], first_admin="赵主任")
    committee = api_login(base, client_from("127.0.0.46"), stack.sms_log, "reviewer", REVIEWER[0], REVIEWER[2],
                          REVIEWER[3])
    phone = client_from("127.0.0.48")
    number = id_number(TRAINEE_BODY)
    r = phone.post(f"{base}/credits/api/auth/login", json={"id_number": number, "password": "ceshiyuan"}, timeout=10)
    if r.status_code == 200:  # the initial password (pinyin of the name) must be changed first
        assert r.json()["must_change"] is True, r.text
        token = r.json()["token"]
        r = phone.post(f"{base}/credits/api/auth/password", headers={"Authorization": f"Bearer {token}"},
                       json={"old_password": "ceshiyuan", "new_password": TRAINEE_PASSWORD}, timeout=10)
        assert r.status_code == 200, r.text
    r = phone.post(f"{base}/credits/api/auth/login", json={"id_number": number, "password": TRAINEE_PASSWORD},
                   timeout=10)
    assert r.status_code == 200 and r.json()["must_change"] is False, r.text
    trainee = {"Authorization": f"Bearer {r.json()['token']}"}
    return [
        Role("anonymous", "127.0.0.47", {}),
        Role("institution", "127.0.0.45", inst),
        Role("committee", "127.0.0.46", committee),
        Role("trainee", "127.0.0.48", trainee),
    ]


def _operations(stack, service: str) -> Iterator[schemathesis.APIOperation]:  # type: ignore[no-untyped-def]
    schema = schemathesis.openapi.from_url(stack.url(f"/{service}/api/openapi.json"))
    ops = []
    for result in schema.get_all_operations():
        ops.append(result.ok())  # an operation schemathesis cannot read is a broken document: raises here
    ops.sort(key=lambda op: (op.method.upper(), op.path) in LAST)
    yield from ops


def _curl(case: schemathesis.Case, base: str) -> str:
    try:
        return case.as_curl_command(base_url=base)[:800]
    except Exception:  # noqa: BLE001 - only a description of the request
        return f"{case.method} {base}{case.formatted_path} query={case.query} body={case.body!r}"[:800]


def fuzz(base: str, op: schemathesis.APIOperation, role: Role, session: requests.Session,
         mode: GenerationMode, statuses: Counter[int], path: dict[str, int] | None = None) -> list[str]:
    """MAX_EXAMPLES generated requests of one operation as one role (with these path ids, when given);
    the failing ones, described."""
    failures: list[str] = []
    strategy = op.as_strategy(generation_mode=mode, path_parameters=path) if path else op.as_strategy(mode)

    @settings(max_examples=MAX_EXAMPLES, derandomize=DERANDOMIZE, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        try:
            response = case.call(base_url=base, session=session, headers=role.headers, timeout=30)
            statuses[response.status_code] += 1
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected, reported together
            text = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
            failures.append(f"[{role.name}/{mode.value}] {op.method.upper()} {op.path}: "
                            f"{' | '.join(text[:14])}\n    {_curl(case, base)}")

    try:
        run()
    except Unsatisfiable:
        # an operation with nothing that can be made invalid (no parameters, no body) has no negative case
        if mode is not GenerationMode.NEGATIVE:
            raise
    return failures


def test_hostile_uploads_through_gateway(stack, roles, world) -> None:  # type: ignore[no-untyped-def]
    """Uploads through nginx to the module's draft filing (before the fuzzing below touches it): hostile files
    get a 422 with the Chinese reason, a body over the gateway's cap a 413 in the same JSON shape, and the
    会议通知 saved before them is still there."""
    import io
    import zipfile

    base, inst = stack.base_url, roles[1]
    office = client_from(inst.source)
    url = f"{base}/projects/api/filings/{world['filing_id']}/uploads/notice"

    def post(data: bytes, name: str = "会议通知.jpg") -> requests.Response:
        return office.post(url, headers=inst.headers, files={"file": (name, data, "image/jpeg")}, timeout=60)

    assert post(jpeg("yellow")).status_code == 201
    saved = office.get(f"{base}/projects/api/filings/{world['filing_id']}", headers=inst.headers).json()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("index.html", "<h1>hi</h1>")
    good = jpeg()
    at = good.index(b"\xff\xc0") + 5  # the frame header's height and width: 20000 x 20000
    huge = good[:at] + (20000).to_bytes(2, "big") * 2 + good[at + 4:]
    for data, reason in ((jpeg() + archive.getvalue(), "夹带了其他内容"), (huge, "像素过大"),
                         (good[: len(good) // 2], "已损坏或不完整"), (b"\x89PNG\r\n\x1a\n" + good, "JPG"),
                         (good + b"\xff" * (6 * 1024 * 1024), "5 MB")):
        r = post(data)
        assert r.status_code == 422 and r.headers["Content-Type"].startswith("application/json"), r.text[:300]
        assert r.json()["error"]["message"].startswith("会议通知上传失败：") and reason in r.text, r.text
    r = post(b"\xff\xd8\xff" + b"\0" * (13 * 1024 * 1024))  # over the gateway's 12 MB cap
    assert r.status_code == 413 and "上传的内容太大" in r.json()["error"]["message"], r.text[:300]
    after = office.get(f"{base}/projects/api/filings/{world['filing_id']}", headers=inst.headers).json()
    assert after == saved


@pytest.mark.parametrize("service", SERVICES)
def test_openapi_fuzz_through_gateway(stack, roles, world, service: str) -> None:  # type: ignore[no-untyped-def]
    base = stack.base_url
    failures: list[str] = []
    ops = list(_operations(stack, service))
    assert ops, f"{service} documents no operations"
    for role in roles:
        session = client_from(role.source)
        statuses: Counter[int] = Counter()
        for op in (op for op in ops if _uses(role.name, op.path)):
            names = [p.name for p in op.path_parameters if p.definition.get("schema", {}).get("type") == "integer"]
            # a change (approve, return, withdraw, delete...) never goes to a random id: it could be another
            # stack test's filing or award; it goes to an id nobody has, and below to the module's own
            absent = {n: ABSENT_ID for n in names if op.method.upper() != "GET"} or None
            for mode in _modes(role.name, op):
                failures += fuzz(base, op, role, session, mode, statuses, absent)
            if names and all(n in world for n in names) and role.headers:  # again, on the module's own things
                failures += fuzz(base, op, role, session, GenerationMode.POSITIVE, statuses,
                                 {n: world[n] for n in names})
        print(f"{service} as {role.name}: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}")
        if role.name in ("institution", "committee") and service == "projects" or (
                role.name == "trainee" and service == "credits"):  # the token really logs the role in
            assert any(200 <= code < 300 for code in statuses), (role.name, statuses)
        assert not any(code >= 500 for code in statuses) or failures
    unique = list(dict.fromkeys(failures))
    assert not unique, f"{len(unique)} failing requests:\n" + "\n".join(unique[:40]) + (
        "" if len(unique) <= 40 else f"\n... {len(unique) - 40} more") + "\n" + json.dumps(
        sorted({f.split(':')[0] for f in unique}), ensure_ascii=False)
