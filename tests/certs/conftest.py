"""Fixtures of the certs tests: effective awards inserted directly, principals, the render queue captured."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import insert

from services.common import clock, pii
from services.common.auth import Principal
from tests.checkin.test_windows_support import id_number

UTC = dt.UTC
ENDS = dt.date(2026, 12, 11)
PRINTABLE_DAY = ENDS + dt.timedelta(days=28)  # 2027-01-08
OFFERING_A, OFFERING_B = 101, 202


def key(serial: int) -> str:
    return pii.id_hash(id_number(serial))


TRAINEE_1 = Principal(role="trainee", subject="trainee:1", name="张伟", trainee_key=key(1))
TRAINEE_2 = Principal(role="trainee", subject="trainee:2", name="李娜", trainee_key=key(2))
INST_A = Principal(role="institution", subject="inst:1:admin:1", name="西安市第一医院", institution_id=1, admin_id=1)
INST_B = Principal(role="institution", subject="inst:2:admin:2", name="宝鸡市中心医院", institution_id=2, admin_id=2)
REVIEWER = Principal(role="reviewer", subject="reviewer:1", name="审核员甲", reviewer_id=1)
WHO = {"anonymous": None, "trainee": TRAINEE_1, "other_trainee": TRAINEE_2, "inst_a": INST_A, "inst_b": INST_B,
       "committee": REVIEWER}


def award_row(award_id: int, serial: int, name: str, offering_id: int = OFFERING_A, institution_id: int = 1,
              ends_on: dt.date = ENDS, **over):
    row = {"award_id": award_id, "offering_id": offering_id, "institution_id": institution_id,
           "trainee_key": key(serial), "name": name, "id_enc": pii.encrypt(id_number(serial)),
           "project_number": "2026-01-01-001", "project_title": "心血管急危重症诊治进展",
           "institution_name": "西安市第一医院" if institution_id == 1 else "宝鸡市中心医院",
           "starts_on": ends_on - dt.timedelta(days=1), "ends_on": ends_on, "credit_class": "Ⅰ类",
           "credit_value": Decimal("10"), "activity_date": ends_on,
           "effective_at": dt.datetime(2026, 12, 20, 2, 0, tzinfo=UTC), "received_at": clock.now()}
    row.update(over)
    return row


@pytest.fixture
def certs_db(databases):
    return databases["certs"]


@pytest.fixture
def awards(certs_db):
    """Trainee 1 (张伟): award 1 (offering A, printable from 2027-01-08) and award 2 (a later offering, not yet);
    trainee 2 (李娜): award 3 (offering A). Offering B of institution B: award 4 (trainee 2)."""
    from services.certs.awards.models import EffectiveAward

    rows = [award_row(1, 1, "张伟"),
            award_row(2, 1, "张伟", offering_id=103, ends_on=dt.date(2027, 1, 20), project_title="基层糖尿病规范化管理",
                      project_number="2026-02-03-007"),
            award_row(3, 2, "李娜"),
            award_row(4, 2, "李娜", offering_id=OFFERING_B, institution_id=2)]
    s = certs_db.new_session()
    s.execute(insert(EffectiveAward), rows)
    s.commit()
    s.close()
    return rows


@pytest.fixture(autouse=True)
def queued(monkeypatch):
    """Export jobs sent to the render queue (the test runs the task body itself)."""
    from services.certs.certificates import tasks

    sent: list[int] = []
    monkeypatch.setattr(tasks, "enqueue", lambda job_id: sent.append(job_id) or True)
    return sent


def slow_issue(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Two requests at once: the first is still making its export when the second looks (a read then an insert
    alone would let each find none)."""
    import time

    from services.certs.certificates import services as svc

    original = svc.issue_certificates

    def slowed(session, awards_):  # type: ignore[no-untyped-def]
        time.sleep(0.5)
        return original(session, awards_)

    monkeypatch.setattr(svc, "issue_certificates", slowed)


def twice_at_once(post) -> list[str]:  # type: ignore[no-untyped-def]
    """The same POST from two threads released together; each answer as "<status> <Location>"."""
    import threading

    start = threading.Barrier(2)
    answers: list[str] = []

    def one() -> None:
        start.wait()
        r = post()
        answers.append(f"{r.status_code} {r.headers.get('Location')}")

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return answers


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    """A Beijing-time moment of a day, as aware UTC."""
    return dt.datetime.combine(day, dt.time(hour), clock.SHANGHAI).astimezone(UTC)


def blank_pages(pages):  # type: ignore[no-untyped-def]
    """A stand-in for the certificate renderer (the real one has its own tests): one blank A4 page per certificate."""
    import io

    from pypdf import PdfWriter

    w = PdfWriter()
    for _ in pages:
        w.add_blank_page(595, 842)
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()
