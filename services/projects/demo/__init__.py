"""Demo data for a trial run: a committee reviewer, two institutions and a catalogue of projects.

`load_demo(session)` is idempotent (a second run changes nothing) and returns the logins so the
local runner can print them. The catalogue comes from the sample workbook shipped next to this
file; its year is moved to the current year (services.common.clock), so it keeps working next year.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common import clock

from ..catalogue.services import import_rows, read_workbook
from ..institutions.models import Institution, Reviewer
from ..institutions.services import add_admin, create_institution, create_reviewer
from .make_sample import SAMPLE_YEAR

SAMPLE = Path(__file__).with_name("sample-catalogue.xlsx")

REVIEWER = {"account": "committee", "name": "省继教委审核员", "password": "Committee@2026", "mobile": "13900000000"}
INSTITUTIONS = [
    # the first has a responsible person; the second has none, so a newcomer sees the first-login step
    {"account": "xjtu1", "name": "西安交通大学第一附属医院", "password": "Xjtu1@2026",
     "admin": ("张主任", "13800000001")},
    {"account": "sxsrmyy", "name": "陕西省人民医院", "password": "Sxsrmyy@2026", "admin": None},
]


def _shift(rows: list[tuple[int, dict[str, str]]], year: int) -> list[tuple[int, dict[str, str]]]:
    old, new = str(SAMPLE_YEAR), str(year)
    return [(n, {k: v.replace(old, new) for k, v in texts.items()}) for n, texts in rows]


def load_demo(session: Session) -> dict[str, Any]:
    """Create what is missing and commit; returns {"reviewer": {...}, "institutions": [...], "catalogue": {...}}."""
    if session.scalar(select(Reviewer.id).where(Reviewer.account == REVIEWER["account"])) is None:
        create_reviewer(session, REVIEWER["account"], REVIEWER["name"], REVIEWER["password"], REVIEWER["mobile"])
    logins = []
    for spec in INSTITUTIONS:
        inst = session.scalar(select(Institution).where(Institution.account == spec["account"]))
        if inst is None:
            inst = create_institution(session, spec["account"], spec["name"], spec["password"])
            if spec["admin"]:
                add_admin(session, inst, *spec["admin"])
        logins.append({"account": spec["account"], "name": spec["name"], "password": spec["password"],
                       "admin_mobile": spec["admin"][1] if spec["admin"] else None})
    year = clock.today_local().year
    result = import_rows(session, _shift(read_workbook(SAMPLE.read_bytes()), year), year)
    if result.errors:
        raise RuntimeError(f"demo catalogue has bad rows: {result.as_dict()['errors']}")
    session.commit()
    return {"reviewer": {k: REVIEWER[k] for k in ("account", "name", "password", "mobile")},
            "institutions": logins, "catalogue": {"year": year, **result.as_dict()}}


__all__ = ["load_demo", "REVIEWER", "INSTITUTIONS"]
