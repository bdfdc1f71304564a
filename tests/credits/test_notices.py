"""学分证书可打印通知: one SMS per trainee when certificates become printable (4 weeks after the offering, award
effective, not manual), never twice, retried when the provider fails; the Celery task and its daily beat."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from services.common import clock, sms
from services.credits.awards.models import CreditAward
from services.credits.notices.services import send_printable_notices
from tests.credits.conftest import new_account

ID_NUMBER = "11010519491231002X"
OTHER_ID = "610102198502024321"
MOBILE = "13912345678"
ENDED = dt.date(2026, 6, 12)
PRINTABLE = ENDED + dt.timedelta(weeks=4)


@pytest.fixture
def inbox(sms_inbox):
    return sms_inbox


@pytest.fixture
def add_award(databases):
    from tests.credits.test_compliance import insert_award

    def add(**kw):
        return insert_award(databases, **kw)

    return add


def run(databases, today: dt.date) -> dict:
    s = databases["credits"].new_session()
    try:
        return send_printable_notices(s, today)
    finally:
        s.close()


def test_one_message_per_trainee_when_printable_and_never_again(databases, add_award, inbox):
    new_account(databases, "曾小明", ID_NUMBER, mobile=MOBILE)
    add_award(title="基层医院超声诊断技术提高班", ends_on=ENDED)
    add_award(title="急诊急救新进展", ends_on=ENDED)

    assert run(databases, PRINTABLE - dt.timedelta(days=1))["sent"] == 0  # 27 days: not yet
    assert inbox() == []

    summary = run(databases, PRINTABLE)
    assert summary["sent"] == 1
    [msg] = inbox()
    assert msg["mobile"] == MOBILE
    assert "曾小明" in msg["text"] and "基层医院超声诊断技术提高班" in msg["text"] and "等2个项目" in msg["text"]
    assert "达标情况查询" in msg["text"] and "2026年7月10日" in msg["text"]

    assert msg["text"].startswith("【陕西省继续医学教育】")  # the sender of every message of the suite
    assert run(databases, PRINTABLE)["sent"] == 0  # the next run, or a second beat, sends nothing
    assert run(databases, PRINTABLE + dt.timedelta(days=1))["sent"] == 0
    assert len(inbox()) == 1


def test_pending_manual_and_withdrawn_awards_are_not_announced(databases, add_award, inbox):
    new_account(databases, "曾小明", ID_NUMBER, mobile=MOBILE)
    add_award(state="pending", ends_on=ENDED)
    add_award(method="manual", state="pending", ends_on=ENDED)
    add_award(state="withdrawn", ends_on=ENDED)
    assert run(databases, PRINTABLE + dt.timedelta(days=30))["sent"] == 0
    assert inbox() == []


def test_an_award_approved_after_the_four_weeks_is_announced_on_the_next_run(databases, add_award, inbox):
    new_account(databases, "曾小明", ID_NUMBER, mobile=MOBILE)
    award_id = add_award(state="pending", ends_on=ENDED)
    assert run(databases, PRINTABLE)["sent"] == 0
    s = databases["credits"].new_session()
    award = s.get(CreditAward, award_id)
    award.state, award.effective_at = "effective", dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
    s.commit()
    s.close()
    assert run(databases, dt.date(2026, 8, 3))["sent"] == 1  # a run or two missed
    [msg] = inbox()
    assert "自2026年8月1日起可以打印" in msg["text"]  # the day it became printable, not the day of the run


def test_each_trainee_gets_their_own_message(databases, add_award, inbox):
    new_account(databases, "曾小明", ID_NUMBER, mobile=MOBILE)
    new_account(databases, "单丽华", OTHER_ID, mobile="13800001111")
    add_award(ends_on=ENDED)
    add_award(id_number=OTHER_ID, ends_on=ENDED, title="心电图判读")
    assert run(databases, PRINTABLE)["sent"] == 2
    by_mobile = {m["mobile"]: m["text"] for m in inbox()}
    assert set(by_mobile) == {MOBILE, "13800001111"}
    assert "心电图判读" in by_mobile["13800001111"] and "心电图判读" not in by_mobile[MOBILE]


def test_failed_sms_is_retried_by_the_next_run(databases, add_award, inbox, monkeypatch):
    new_account(databases, "曾小明", ID_NUMBER, mobile=MOBILE)
    award_id = add_award(ends_on=ENDED)
    real = sms.send_sms

    def down(*args, **kwargs):
        raise sms.SmsError("provider down")

    monkeypatch.setattr(sms, "send_sms", down)
    assert run(databases, PRINTABLE)["failed"] == 1
    s = databases["credits"].new_session()
    assert s.scalar(select(CreditAward.printable_notice_at).where(CreditAward.id == award_id)) is None
    s.close()

    monkeypatch.setattr(sms, "send_sms", real)
    assert run(databases, PRINTABLE + dt.timedelta(days=1))["sent"] == 1
    assert len(inbox()) == 1


def test_mobile_never_logged(databases, add_award, inbox, caplog):
    new_account(databases, "曾小明", ID_NUMBER, mobile=MOBILE)
    add_award(ends_on=ENDED)
    with caplog.at_level("DEBUG"):
        run(databases, PRINTABLE)
    assert MOBILE not in caplog.text and "曾小明" not in caplog.text


def test_the_task_is_on_the_daily_beat(databases, add_award, inbox):
    from services.credits import worker
    from services.credits.notices.tasks import TASK

    [entry] = [e for e in worker.celery.conf.beat_schedule.values() if e["task"] == TASK]
    assert entry["options"]["queue"] == "credits"
    assert entry["schedule"].hour == {9} and entry["schedule"].minute == {0}
    assert TASK in worker.celery.tasks
    new_account(databases, "曾小明", ID_NUMBER, mobile=MOBILE)
    add_award(ends_on=ENDED)
    clock.set_now(dt.datetime(2026, 7, 10, 1, 0, tzinfo=dt.UTC))  # 09:00 in Shanghai on the printable day
    assert worker.send_printable_notices.run()["sent"] == 1
    assert worker.send_printable_notices.run()["sent"] == 0
    assert len(inbox()) == 1
