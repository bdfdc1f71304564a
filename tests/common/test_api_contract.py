"""Issue 7, in process: what the schemathesis run through the gateway (tests/stack/test_api_fuzz.py) found.

- Every OpenAPI document describes the error shape the API really answers ({"error": {...}}), not
  flask-smorest's own, and is a valid document (no Decimal bounds written as strings).
- Decimals sent as strings ("10.00") are documented as strings.
- An id beyond PostgreSQL's integer in a path is a 404, in a query a 422 naming the field, and anywhere a
  value the database cannot hold is a 422 in Chinese, never a 500.
"""

from __future__ import annotations

import pytest

from services.common.auth import Principal
from tests.conftest import bearer

HUGE = 2**40
INSTITUTION = Principal(role="institution", subject="inst:1:admin:1", name="西安市第一医院", institution_id=1,
                        admin_id=1)
REVIEWER = Principal(role="reviewer", subject="reviewer:1", name="审核员甲", reviewer_id=1)
TRAINEE = Principal(role="trainee", subject="trainee:1", name="张伟", trainee_key="0" * 64)


def _walk(node: object) -> list[object]:
    found: list[object] = [node]
    if isinstance(node, dict):
        for value in node.values():
            found += _walk(value)
    elif isinstance(node, list):
        for value in node:
            found += _walk(value)
    return found


@pytest.mark.parametrize("service", ["projects", "checkin", "credits", "certs"])
def test_openapi_documents_the_real_error_shape(request, service: str) -> None:  # type: ignore[no-untyped-def]
    app = request.getfixturevalue(f"{service}_app")
    spec = app.test_client().get(f"/{service}/api/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    assert schemas["Error"]["required"] == ["error"]
    assert set(schemas["ErrorDetail"]["properties"]) == {"code", "message", "fields", "request_id"}
    default = spec["components"]["responses"]["DEFAULT_ERROR"]["content"]["application/json"]["schema"]
    assert default == {"$ref": "#/components/schemas/Error"}
    for node in _walk(spec):
        if isinstance(node, dict):
            for bound in ("minimum", "maximum"):
                assert not isinstance(node.get(bound), str), node  # a valid document: bounds are numbers
    for path, item in spec["paths"].items():
        for parameter in [p for op in item.values() if isinstance(op, dict) for p in op.get("parameters", [])]:
            if parameter["in"] == "path" and parameter["schema"]["type"] == "integer":
                assert parameter["schema"]["maximum"] == 2**31 - 1, path


def test_decimal_strings_documented_as_strings(credits_app) -> None:  # type: ignore[no-untyped-def]
    spec = credits_app.test_client().get("/credits/api/openapi.json").get_json()
    assert spec["components"]["schemas"]["YearOut"]["properties"]["missing_class1"]["type"] == "string"


def test_ids_beyond_integer_are_refused_not_500(projects_app, credits_app, certs_app) -> None:  # type: ignore[no-untyped-def]
    r = credits_app.test_client().get(f"/credits/api/offerings/{HUGE}", headers=bearer(INSTITUTION))
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
    r = projects_app.test_client().get(f"/projects/api/review/filings?institution_id={HUGE}", headers=bearer(REVIEWER))
    assert r.status_code == 422 and r.get_json()["error"]["fields"]["institution_id"] == "编号不正确。"
    # a body id beyond integer is refused by the schema, next to the field
    r = certs_app.test_client().post("/certs/api/exports", json={"award_ids": [HUGE]}, headers=bearer(TRAINEE))
    assert r.status_code == 422, r.get_json()
    assert "编号不正确。" in str(r.get_json()["error"]["fields"]["award_ids"])


def test_a_value_the_database_cannot_hold_is_the_requests_fault(databases) -> None:  # type: ignore[no-untyped-def]
    """Should a schema miss a bound, PostgreSQL's refusal (DataError) still answers 422, not 500."""
    from flask import Blueprint
    from sqlalchemy import text

    from services.common.auth import PUBLIC, access
    from services.common.web import create_service_app
    from services.credits.db import db

    probe = Blueprint("probe", __name__)

    @probe.get("/credits/api/_probe")
    @access(PUBLIC)
    def _probe():  # type: ignore[no-untyped-def]
        db.session().execute(text("SELECT CAST(:v AS integer)"), {"v": str(HUGE)})
        return "unreachable"

    app = create_service_app("credits", db, [probe])
    r = app.test_client().get("/credits/api/_probe")
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    assert r.get_json()["error"]["message"] == "提交的数值超出允许范围，请检查后重试。"
