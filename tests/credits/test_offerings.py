"""Credits records the credit terms of an approved offering (event "offering.approved")."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from services.common import clock
from services.common.auth import Principal
from services.common.events import make_envelope
from tests.conftest import bearer

INST_A = Principal(role="institution", subject="inst:1:admin:1", name="西安市第一医院", institution_id=1, admin_id=1)
INST_B = Principal(role="institution", subject="inst:2:admin:2", name="宝鸡市中心医院", institution_id=2, admin_id=2)
REVIEWER = Principal(role="reviewer", subject="reviewer:1", name="审核员甲", reviewer_id=1)
TRAINEE = Principal(role="trainee", subject="trainee:x", trainee_key="x")
NAMES = {"anonymous": None, "inst_a": INST_A, "inst_b": INST_B, "reviewer": REVIEWER, "trainee": TRAINEE}


def payload(**over):
    base = {
        "offering_id": 101, "institution_id": 1, "institution_name": "西安市第一医院", "project_id": 11,
        "project_number": "2026-01-01-001", "project_title": "心血管急危重症诊治进展", "year": 2026, "seq": 1,
        "credit_class": "Ⅰ类", "credit_value": "10", "hours": "20", "starts_on": dt.date(2026, 12, 10),
        "ends_on": dt.date(2026, 12, 11), "venue": "西安", "mode": "线下", "schedule": [],
    }
    base.update(over)
    return base


def deliver(envelope) -> bool:
    from services.credits.worker import handle_event

    return handle_event.run(envelope)


def rows(databases):
    from services.credits.offerings.models import OfferingCredit

    s = databases["credits"].new_session()
    try:
        return s.scalars(select(OfferingCredit)).all()
    finally:
        s.close()


def test_credit_terms_recorded_once_and_updated_on_reapproval(databases):
    from services.credits.db import processed_events

    clock.set_now(dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC))
    env = make_envelope("offering.approved", "projects", payload())
    assert deliver(env) is True
    assert deliver(env) is False
    [row] = rows(databases)
    assert (row.offering_id, row.institution_id, row.credit_class, row.credit_value, row.hours) == (
        101, 1, "Ⅰ类", Decimal("10"), Decimal("20"))
    assert (row.project_number, row.year, row.starts_on, row.ends_on, row.seq_label) == (
        "2026-01-01-001", 2026, dt.date(2026, 12, 10), dt.date(2026, 12, 11), "第一期")
    s = databases["credits"].new_session()
    assert s.scalar(select(func.count()).select_from(processed_events)) == 1
    s.close()

    clock.set_now(dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC))
    again = make_envelope("offering.approved", "projects", payload(credit_class="Ⅱ类", credit_value="5", seq=12))
    assert deliver(again) is True
    [row] = rows(databases)
    assert (row.credit_class, row.credit_value, row.seq_label) == ("Ⅱ类", Decimal("5"), "第十二期")


def test_api_returns_terms(credits_app):
    deliver(make_envelope("offering.approved", "projects", payload(credit_value="0.5", hours="1.5")))
    resp = credits_app.test_client().get("/credits/api/offerings/101", headers=bearer(INST_A))
    assert resp.status_code == 200
    assert resp.json == {
        "offering_id": 101, "institution_id": 1, "project_number": "2026-01-01-001",
        "project_title": "心血管急危重症诊治进展", "year": 2026, "credit_class": "Ⅰ类", "credit_value": "0.50",
        "hours": "1.50", "starts_on": "2026-12-10", "ends_on": "2026-12-11", "approved_at": resp.json["approved_at"],
        "cancelled_at": None, "cancelled_by": None, "cancel_reason": None,
    }
    missing = credits_app.test_client().get("/credits/api/offerings/999", headers=bearer(REVIEWER))
    assert missing.status_code == 404 and "学分信息不存在" in missing.json["error"]["message"]
    bad = credits_app.test_client().get("/credits/api/offerings/abc", headers=bearer(REVIEWER))
    assert bad.status_code == 404 and bad.json["error"]["message"] == "您要找的内容不存在。"


def test_permission_tables_cover_every_endpoint(credits_app):
    """Each feature keeps its own permission table; together they must name every endpoint credits has."""
    import importlib

    from services.common.web import endpoint_access

    tables = [importlib.import_module(f"tests.credits.{name}").ENDPOINTS
              for name in ("test_trainee_login", "test_awards", "test_compliance", "test_statistics")]
    ours = {rule for rule in endpoint_access(credits_app)
            if not rule.endswith(("/healthz", "/metrics")) and "openapi" not in rule}  # common: the matrix
    assert ours == {"GET /credits/api/offerings/<int:offering_id>",
                    "GET /credits/api/activities/<int:activity_id>/attendance"}.union(*map(set, tables))


@pytest.mark.parametrize("who,status", [("anonymous", 401), ("inst_a", 200), ("inst_b", 404), ("reviewer", 200),
                                        ("trainee", 403)])
def test_permissions(credits_app, who, status):
    deliver(make_envelope("offering.approved", "projects", payload()))
    principal = NAMES[who]
    resp = credits_app.test_client().get("/credits/api/offerings/101",
                                         headers=bearer(principal) if principal else {})
    assert resp.status_code == status
    if status != 200:
        assert resp.json["error"]["message"]
