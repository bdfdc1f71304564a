"""Deadline reminders by SMS: execution report (3 days before and on the due date), pre-event filing (3 days before
and on the deadline = start − 7 days), once each per responsible person, nothing for submitted work, a failed SMS
retried by the next run, institutions without a 机构负责人 skipped with a log line, the Celery task and its beat."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from services.common import clock, pii, sms
from services.projects.filings.models import Filing, Offering
from services.projects.reminders.models import ReminderSent
from services.projects.reminders.services import send_due_reminders
from services.projects.reports.models import ExecutionReport

ENDS = dt.date(2026, 12, 11)  # the held offering ran 2026-12-10..11: its report is due 2026-12-25
DUE = dt.date(2026, 12, 25)
STARTS = dt.date(2027, 1, 15)  # the draft offering starts 2027-01-15: its filing must be sent by 2027-01-08
DEADLINE = dt.date(2027, 1, 8)


@pytest.fixture
def inbox(sms_inbox):
    return sms_inbox


def add_offering(projects_db, project, state: str, starts: dt.date | None, ends: dt.date | None, seq: int = 1):
    s = projects_db.new_session()
    o = Offering(project_id=project.id, seq=seq)
    s.add(o)
    s.flush()
    f = Filing(offering_id=o.id, institution_id=project.institution_id, state=state, starts_on=starts, ends_on=ends,
               venue="西安", mode="线下", expected_trainees=100, contact_person="李老师",
               contact_phone_enc=pii.encrypt("13912345678"), schedule=[])
    s.add(f)
    s.commit()
    ids = o.id, f.id
    s.close()
    return ids


def add_report(projects_db, offering_id: int, institution_id: int, state: str) -> int:
    s = projects_db.new_session()
    r = ExecutionReport(offering_id=offering_id, institution_id=institution_id, state=state,
                        actual_starts_on=ENDS - dt.timedelta(days=1), actual_ends_on=ENDS, mode="线下",
                        trainees_count=10, total_hours=Decimal("8"), contact_phone_enc=pii.encrypt("13912345678"),
                        attendance_imported_at=clock.now(),
                        submitted_at=clock.now() if state != "draft" else None)
    s.add(r)
    s.commit()
    rid = r.id
    s.close()
    return rid


def add_person(projects_db, institution, name: str, mobile: str) -> None:
    from services.projects.institutions.models import Institution
    from services.projects.institutions.services import add_admin

    s = projects_db.new_session()
    add_admin(s, s.get(Institution, institution.id), name, mobile)
    s.commit()
    s.close()


def run(projects_db, today: dt.date) -> dict:
    s = projects_db.new_session()
    try:
        return send_due_reminders(s, today)
    finally:
        s.close()


def sent_rows(projects_db) -> int:
    s = projects_db.new_session()
    try:
        return s.scalar(select(func.count()).select_from(ReminderSent))
    finally:
        s.close()


@pytest.fixture
def held(projects_db, inst_a, make_project):
    """inst_a (two responsible persons) held 第一期 of 心血管项目; no report yet."""
    inst, _ = inst_a
    add_person(projects_db, inst, "负责人乙", "13800009999")
    project = make_project(inst, title="心血管疾病诊治进展")
    oid, _ = add_offering(projects_db, project, "approved", ENDS - dt.timedelta(days=1), ENDS)
    return inst, project, oid


def test_report_three_days_before_and_on_the_due_date_once_each(projects_db, held, inbox):
    inst, project, oid = held
    assert run(projects_db, DUE - dt.timedelta(days=4))["sent"] == 0
    summary = run(projects_db, DUE - dt.timedelta(days=3))
    assert summary["sent"] == 2 and summary["failed"] == 0
    msgs = inbox()
    assert sorted(m["mobile"] for m in msgs) == ["13800000001", "13800009999"]  # every 机构负责人
    assert msgs[0]["text"] == ("【陕西省继续医学教育】您单位“心血管疾病诊治进展”第一期的执行情况反馈"
                               "应于2026年12月25日（含当日）前提交，请及时登录系统填报。")
    # a rerun the same day, and the days between, send nothing
    again = run(projects_db, DUE - dt.timedelta(days=3))
    assert again["sent"] == 0 and again["already_sent"] == 2
    assert run(projects_db, DUE - dt.timedelta(days=2))["sent"] == 0
    assert run(projects_db, DUE - dt.timedelta(days=1))["sent"] == 0
    assert len(inbox()) == 2
    # on the due date: once more, with the due-day text
    assert run(projects_db, DUE)["sent"] == 2
    assert run(projects_db, DUE)["sent"] == 0
    due_msgs = inbox()[2:]
    assert len(due_msgs) == 2 and all("今天（2026年12月25日）截止提交" in m["text"] for m in due_msgs)
    assert run(projects_db, DUE + dt.timedelta(days=1))["sent"] == 0  # overdue: the committee's list, not SMS
    assert sent_rows(projects_db) == 4


def test_a_draft_or_returned_report_is_still_reminded(projects_db, held, inbox):
    inst, _, oid = held
    add_report(projects_db, oid, inst.id, "draft")
    assert run(projects_db, DUE)["sent"] == 2


def test_submitted_report_is_not_reminded(projects_db, held, inbox):
    inst, _, oid = held
    add_report(projects_db, oid, inst.id, "submitted")
    assert run(projects_db, DUE - dt.timedelta(days=3))["due"] == 0
    assert run(projects_db, DUE)["sent"] == 0
    assert inbox() == []


def test_filing_three_days_before_and_on_the_deadline_once_each(projects_db, inst_a, make_project, inbox):
    inst, _ = inst_a
    project = make_project(inst, title="基层全科医生培训", offerings_count=2)
    add_offering(projects_db, project, "draft", STARTS, STARTS + dt.timedelta(days=1), seq=2)
    assert run(projects_db, DEADLINE - dt.timedelta(days=4))["sent"] == 0
    assert run(projects_db, DEADLINE - dt.timedelta(days=3))["sent"] == 1
    assert run(projects_db, DEADLINE - dt.timedelta(days=3))["sent"] == 0
    assert run(projects_db, DEADLINE - dt.timedelta(days=1))["sent"] == 0
    assert run(projects_db, DEADLINE)["sent"] == 1
    assert run(projects_db, DEADLINE)["sent"] == 0
    assert run(projects_db, DEADLINE + dt.timedelta(days=1))["sent"] == 0  # too late to file: nothing to remind
    first, last = inbox()
    assert first["mobile"] == "13800000001"
    assert first["text"] == ("【陕西省继续医学教育】您单位“基层全科医生培训”第二期的项目举办前登记"
                             "应于2027年1月8日（含当日）前上报（须在举办前7天完成），请及时登录系统填报。")
    assert "今天（2027年1月8日）截止上报" in last["text"]


def test_returned_filing_is_reminded_submitted_and_approved_are_not(projects_db, inst_a, make_project, inbox):
    inst, _ = inst_a
    project = make_project(inst, offerings_count=4)
    for seq, state in enumerate(("returned", "submitted", "approved"), start=1):
        add_offering(projects_db, project, state, STARTS, STARTS, seq=seq)
    add_offering(projects_db, project, "draft", None, None, seq=4)  # no date yet: no deadline to remind of
    summary = run(projects_db, DEADLINE)
    assert summary["due"] == 1 and summary["sent"] == 1
    assert "第一期" in inbox()[0]["text"]


def test_moved_start_date_gets_reminders_for_its_new_deadline(projects_db, inst_a, make_project, inbox):
    inst, _ = inst_a
    project = make_project(inst)
    _, fid = add_offering(projects_db, project, "draft", STARTS, STARTS)
    assert run(projects_db, DEADLINE - dt.timedelta(days=3))["sent"] == 1
    s = projects_db.new_session()
    f = s.get(Filing, fid)
    f.starts_on = f.ends_on = STARTS + dt.timedelta(days=1)
    s.commit()
    s.close()
    assert run(projects_db, DEADLINE - dt.timedelta(days=2))["sent"] == 1  # the new deadline, 2027-01-09
    assert "2027年1月9日" in inbox()[-1]["text"]


def test_failed_sms_is_retried_by_the_next_run(projects_db, held, inbox, monkeypatch, caplog):
    real = sms.send_sms
    calls = []

    def flaky(mobile, text, params=(), template="code"):
        assert template == "reminder"  # a provider that sends by template uses the reminder template
        calls.append(mobile)
        if mobile == "13800009999":
            raise sms.SmsError("provider down")
        real(mobile, text, params, template)

    monkeypatch.setattr(sms, "send_sms", flaky)
    with caplog.at_level(logging.INFO):
        summary = run(projects_db, DUE - dt.timedelta(days=3))
    assert summary["sent"] == 1 and summary["failed"] == 1
    assert sent_rows(projects_db) == 1  # the failed one's claim was given back
    assert "13800009999" not in caplog.text and "13800000001" not in caplog.text  # mobiles never logged
    assert "will retry" in caplog.text
    monkeypatch.setattr(sms, "send_sms", real)
    summary = run(projects_db, DUE - dt.timedelta(days=2))  # the next daily run
    assert summary["sent"] == 1 and summary["already_sent"] == 1
    assert [m["mobile"] for m in inbox()] == ["13800000001", "13800009999"]
    assert run(projects_db, DUE - dt.timedelta(days=1))["sent"] == 0


def test_institution_without_responsible_person_is_skipped_with_a_log_line(projects_db, make_project, inbox,
                                                                             caplog):
    from services.projects.institutions.services import create_institution

    s = projects_db.new_session()
    inst = create_institution(s, "no_admin", "尚无负责人医院", "Passw0rd!")
    s.commit()
    s.refresh(inst)
    s.close()
    project = make_project(inst)
    add_offering(projects_db, project, "approved", ENDS, ENDS)
    with caplog.at_level(logging.WARNING, logger="services.projects.reminders.services"):
        summary = run(projects_db, DUE)
    assert summary["skipped"] == 1 and summary["sent"] == 0
    assert f"institution {inst.id} has no responsible person" in caplog.text
    assert inbox() == [] and sent_rows(projects_db) == 0


def test_two_runs_at_once_send_each_message_once(projects_db, held, inbox):
    barrier = threading.Barrier(2)
    results: list[dict] = []

    def go() -> None:
        barrier.wait()
        results.append(run(projects_db, DUE))

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["sent"] for r in results) == 2
    assert len(inbox()) == 2


def test_celery_task_and_beat_schedule(projects_db, held, inbox):
    from celery.schedules import crontab

    from services.projects import worker

    entry = next(e for e in worker.celery.conf.beat_schedule.values() if e["task"] == "projects.send_reminders")
    assert entry["schedule"] == crontab(hour=8, minute=0)
    assert worker.celery.conf.timezone == "Asia/Shanghai"
    assert "projects.send_reminders" in worker.celery.tasks
    clock.set_now(dt.datetime.combine(DUE, dt.time(8, 0), clock.SHANGHAI))
    summary = worker.send_reminders.run()
    assert summary["date"] == "2026-12-25" and summary["sent"] == 2
    assert worker.send_reminders.run()["sent"] == 0
