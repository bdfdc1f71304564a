"""Demo check-ins for a trial run: the demo's held offering (services.projects.demo) gets scans from eight
trainees, as if they had scanned the projector's code in each sign-in window. Two trainees miss a window, so
考勤分析 has something to decide; two have surnames that pypinyin reads wrongly for names (曾 zeng, 单 shan),
so the initial password (the pinyin of the name) can be tried with them.

`load_demo_checkins(session, offering_id)` scans once per activity (a restart adds nothing: not into windows the
office added since, nor over names the committee corrected) and returns the trainees' logins for the local runner
to print.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.cn import ric

from .activities.models import Activity
from .scans.models import Checkin
from .scans.services import record_checkin
from .windows.models import CheckinWindow

# name, ID body (17 digits: area 610102 + birth date + sequence), mobile, pinyin password, windows missed
TRAINEES = [
    ("曾小明", "61010219850312001", "13700000101", "zengxiaoming", ()),
    ("单丽华", "61010219880521002", "13700000102", "shanlihua", ()),
    ("吴倩", "61010219900101003", "13700000103", "wuqian", ()),
    ("张伟", "61010219870708004", "13700000104", "zhangwei", (1,)),
    ("李娜", "61010219921111005", "13700000105", "lina", ()),
    ("王芳", "61010219830215006", "13700000106", "wangfang", (0,)),
    ("刘洋", "61010219950630007", "13700000107", "liuyang", ()),
    ("陈静", "61010219891225008", "13700000108", "chenjing", ()),
]
TITLES = ("主治医师", "住院医师", "副主任医师", "主管护师")


def id_number(body17: str) -> str:
    number = body17 + ric.calc_check_digit(body17 + "0")  # stdnum reads the digit after the 17 as the check
    if not ric.is_valid(number):
        raise ValueError(f"demo ID body {body17} does not make a valid ID number")
    return number


def load_demo_checkins(session: Session, offering_id: int) -> dict[str, Any] | None:
    """Scans of the demo trainees in the activity of ``offering_id``; None while that activity is not here."""
    activity = session.scalar(select(Activity).where(Activity.offering_id == offering_id))
    if activity is None:
        return None
    windows = session.scalars(select(CheckinWindow).where(CheckinWindow.activity_id == activity.id)
                              .order_by(CheckinWindow.starts_at)).all()
    stored = 0
    # once: a restart must not scan the demo trainees into windows the office added since, nor type their
    # details again over what happened to them (a committee's 更正姓名 would refuse the old name)
    loaded = session.scalar(select(Checkin.id).where(Checkin.activity_id == activity.id,
                                                     Checkin.nonce.like(f"demo-{offering_id}-%")).limit(1))
    for n, (name, body, mobile, _password, missed) in enumerate(() if loaded else TRAINEES):
        identity = {"name": name, "id_number": id_number(body), "mobile": mobile, "title": TITLES[n % len(TITLES)],
                    "unit": "西安市第一医院" if n % 2 else "西安市中心医院"}
        for w_index, window in enumerate(windows):
            if w_index in missed:
                continue
            at = window.starts_at + dt.timedelta(minutes=3 + n)
            result = record_checkin(session, window, nonce=f"demo-{offering_id}-{window.id}-{n}", scanned_at=at,
                                    identity=identity, openid=f"demo-openid-{n}", address=f"10.20.0.{n + 1}")
            stored += 1 if result.created else 0
    session.commit()
    return {"activity_id": activity.id, "windows": len(windows), "checkins_added": stored,
            "trainees": [{"name": name, "id_number": id_number(body), "initial_password": password}
                         for name, body, _m, password, _x in TRAINEES]}


__all__ = ["TRAINEES", "id_number", "load_demo_checkins"]
