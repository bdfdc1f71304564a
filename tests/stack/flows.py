"""What people do through the gateway, as plain HTTP: the pages a clerk clicks through and the
JSON API a program calls. Each client can come from its own loopback address (127.0.0.x), as
different offices do, so the gateway's per-address login limits apply to each separately."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

import requests
from PIL import Image
from requests.adapters import HTTPAdapter

_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


class _SourceAdapter(HTTPAdapter):
    def __init__(self, source: str):
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def client_from(source: str) -> requests.Session:
    s = requests.Session()
    s.mount("http://", _SourceAdapter(source))
    return s


def jpeg(color: str = "white") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), color).save(out, format="JPEG")
    return out.getvalue()


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no form token"
    return found.group(1)


def last_code(sms_log: Path, mobile: str) -> str:
    """The code of the last login message to `mobile` (a notice of the committee's decision, sent by projects'
    worker at its own pace, may come after it)."""
    for line in reversed(sms_log.read_text(encoding="utf-8").splitlines()):
        msg = json.loads(line)
        if msg["mobile"] == mobile and "验证码" in msg["text"]:
            code = re.search(r"(?<!\d)\d{6}(?!\d)", msg["text"])
            assert code, msg["text"]
            return code.group(0)
    raise AssertionError(f"no SMS code to {mobile}")


def api_login(base: str, http: requests.Session, sms_log: Path, kind: str, account: str, password: str,
              mobile: str, first_admin: str | None = None) -> dict[str, str]:
    """Password (adding a responsible person with `mobile` at a first login), then the SMS code from
    the log provider; returns the bearer header."""
    r = http.post(f"{base}/projects/api/auth/login", json={"kind": kind, "account": account, "password": password})
    assert r.status_code == 200, r.text
    body = r.json()
    if body.get("needs_admins"):
        assert first_admin, "a first login must add a responsible person"
        r = http.post(f"{base}/projects/api/auth/admins", json={
            "login_token": body["login_token"], "real_name": first_admin, "mobile": mobile, "confirm": True})
        assert r.status_code in (200, 201), r.text
        body = {**body, **r.json()}
    # the responsible person with this mobile (an institution may have several)
    choice = next((a["id"] for a in body["admins"] if str(a.get("mobile_masked", "")).endswith(mobile[-4:])),
                  body["admins"][0]["id"])
    r = http.post(f"{base}/projects/api/auth/sms/send", json={"login_token": body["login_token"], "admin_id": choice})
    assert r.status_code == 200, r.text
    r = http.post(f"{base}/projects/api/auth/sms/verify", json={
        "login_token": body["login_token"], "admin_id": choice, "code": last_code(sms_log, mobile)})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def page_login(base: str, http: requests.Session, sms_log: Path, kind: str, account: str, password: str,
               mobile: str) -> None:
    """The login pages, as a clerk uses them; leaves the session cookie in `http`."""
    page = http.get(f"{base}/projects/login")
    assert page.status_code == 200 and "继续医学教育管理系统登录" in page.text
    r = http.post(f"{base}/projects/login", data={"kind": kind, "account": account, "password": password,
                                                  "csrf_token": csrf_of(page.text)})
    assert r.status_code == 200 and "/projects/login/sms" in r.url, (r.status_code, r.url)
    choice = re.search(r'<option value="([^"]+)"', r.text)
    assert choice, r.text
    token = csrf_of(r.text)
    r = http.post(f"{base}/projects/login/sms/send", data={"admin_id": choice.group(1), "csrf_token": token})
    assert r.status_code == 200, r.text
    r = http.post(f"{base}/projects/login/sms/verify", data={
        "admin_id": choice.group(1), "code": last_code(sms_log, mobile), "csrf_token": csrf_of(r.text)})
    assert r.status_code == 200 and r.url.rstrip("/").endswith(("/projects/filings", "/projects/review")), r.url


MIN_DAYS_BEFORE = 7  # a filing is sent at least this many days before its offering starts
SPARE_DAYS = 1  # and the tests keep a day more, so that Beijing's midnight passing mid-test changes nothing


def offering_days(year: int, start_in_days: int, days: int = 2) -> tuple[dt.date, dt.date] | None:
    """First and last day of a `days`-day offering of a project of the `year` catalogue filed today (Beijing time,
    by the suite's clock): `start_in_days` ahead as a rule, but within the project's year (a 期 is held within it;
    in late December that means January for next year's projects, or 31 December's last days for this year's),
    and never sooner than the 7 days' notice with a day to spare; None when no such days are left in `year`."""
    from services.common import clock

    today = clock.today_local()
    span = dt.timedelta(days=days - 1)
    start = min(max(today + dt.timedelta(days=start_in_days), dt.date(year, 1, 1)), dt.date(year, 12, 31) - span)
    if start < today + dt.timedelta(days=MIN_DAYS_BEFORE + SPARE_DAYS):
        return None
    return start, start + span


def filing_catalogue_year(start_in_days: int = 14) -> int:
    """The catalogue year a project needs for a filing made today (offering_days): this year's, or from late
    December next year's."""
    from services.common import clock

    this = clock.today_local().year
    return next(y for y in (this, this + 1) if offering_days(y, start_in_days))


def project_year(row: dict[str, Any]) -> int:
    """The catalogue year of a row of /projects/api/filings."""
    project = row.get("project") or row
    return int(project.get("year") or str(project["number"])[:4])


def api_file_offering(base: str, http: requests.Session, headers: dict[str, str], start_in_days: int = 14,
                      venue: str = "西安国际会议中心", which: int = 0) -> int:
    """File the first unfiled offering of the institution's first project (``which=-1``: its last project
    with one) whose catalogue year still has the days (offering_days) and 保存并上报; returns the filing id."""
    r = http.get(f"{base}/projects/api/filings", headers=headers, params={"per_page": 100})
    assert r.status_code == 200, r.text
    rows = [i for i in r.json()["items"] if i.get("next_label") and offering_days(project_year(i), start_in_days)]
    assert rows, f"no project of the institution can be filed for now: {r.json()['items']}"
    row = rows[which]
    project_id = row["project"]["id"] if "project" in row else row["id"]
    r = http.post(f"{base}/projects/api/projects/{project_id}/offerings", headers=headers)
    assert r.status_code == 201, r.text
    filing_id = r.json()["id"]
    start, _end = offering_days(project_year(row), start_in_days)  # type: ignore[misc]
    r = http.put(f"{base}/projects/api/filings/{filing_id}", headers=headers, json={
        "starts_on": start.isoformat(), "ends_on": (start + dt.timedelta(days=1)).isoformat(),
        "venue": venue, "mode": "线下", "expected_trainees": 120, "contact_person": "李老师",
        "contact_phone": "13700001234",
        "schedule": [{"date": start.isoformat(), "start": "08:30", "end": "12:00", "title": "开幕与专题讲座"},
                     {"date": (start + dt.timedelta(days=1)).isoformat(), "start": "14:00", "end": "17:30",
                      "title": "病例讨论"}]})
    assert r.status_code == 200, r.text
    for kind in ("notice", "agenda"):
        r = http.post(f"{base}/projects/api/filings/{filing_id}/uploads/{kind}", headers=headers,
                      files={"file": (f"{kind}.jpg", jpeg(), "image/jpeg")})
        assert r.status_code in (200, 201), r.text
    r = http.post(f"{base}/projects/api/filings/{filing_id}/submit", headers=headers, json={})
    assert r.status_code == 200, r.text
    return filing_id


def api_approve(base: str, http: requests.Session, headers: dict[str, str], filing_id: int) -> int:
    """The committee approves a submitted filing through the API; returns the offering id."""
    r = http.post(f"{base}/projects/api/review/filings/{filing_id}/approve", headers=headers, json={})
    assert r.status_code == 200, r.text
    return r.json()["offering_id"]


def id_number(body17: str) -> str:
    """A valid 18-digit 身份证号码 (stdnum.cn.ric) from 6 place + 8 birth date + 3 sequence digits."""
    from stdnum.cn import ric

    number = body17 + ric.calc_check_digit(body17 + "0")
    assert ric.is_valid(number), number
    return number


def local_minute(at: dt.datetime) -> str:
    """An aware time as the check-in windows API takes it: Shanghai wall-clock, to the minute."""
    from services.common import clock

    return clock.fmt(at, "%Y-%m-%dT%H:%M")


def phone_scan(http: requests.Session, url: str) -> requests.Response:
    """A phone opens a QR URL and follows every redirect (through the fake WeChat OAuth and back)."""
    r = http.get(url, timeout=15)
    assert r.history, f"{url} did not redirect: {r.status_code} {r.text[:300]}"
    return r


def cookie_header(http: requests.Session, *names: str) -> str:
    """A Cookie header carrying the named cookies of a session (for requests sent from other threads)."""
    jar = {c.name: c.value for c in http.cookies}
    missing = [n for n in names if n not in jar]
    assert not missing, f"cookies missing: {missing} (have {sorted(jar)})"
    return "; ".join(f"{n}={jar[n]}" for n in names)


def activity_held_today(stack: Any, demo: dict[str, Any], *, admin: tuple[str, str], reviewer: tuple[str, ...],
                        venue: str, addresses: tuple[str, str]) -> tuple[int, int, dict[str, str], requests.Session]:
    """xjtu1 (with a new 机构负责人 admin = (name, mobile)) files an offering, a new reviewer (account, name,
    password, mobile) approves it, and its activity under 继教活动-项目管理 is moved to be held today (filing needs 7
    days' notice). (activity id, offering id, the institution's auth header, its client from addresses[0])."""
    from services.checkin import models as checkin_models  # noqa: F401 - the whole schema is known
    from services.checkin.activities.models import Activity
    from services.common import clock
    from services.projects import models as projects_models  # noqa: F401
    from services.projects.institutions.models import Institution
    from services.projects.institutions.services import add_admin, create_reviewer

    base = stack.base_url
    inst = next(i for i in demo["institutions"] if i["account"] == "xjtu1")
    s = stack.session("projects")
    try:
        add_admin(s, s.query(Institution).filter_by(account="xjtu1").one(), *admin)
        create_reviewer(s, *reviewer)
        s.commit()
    finally:
        s.close()
    office = client_from(addresses[0])
    auth = api_login(base, office, stack.sms_log, "institution", inst["account"], inst["password"], admin[1])
    filing_id = api_file_offering(base, office, auth, start_in_days=10, venue=venue, which=-1)
    committee = client_from(addresses[1])
    rev_auth = api_login(base, committee, stack.sms_log, "reviewer", reviewer[0], reviewer[2], reviewer[3])
    offering_id = api_approve(base, committee, rev_auth, filing_id)

    def activity_id() -> int | None:
        r = office.get(f"{base}/checkin/api/activities", params={"per_page": 100}, headers=auth)
        assert r.status_code == 200, r.text
        found = [a["id"] for a in r.json()["items"] if a["offering_id"] == offering_id]
        assert len(found) <= 1, found
        return found[0] if found else None

    aid = stack.wait_until(activity_id, 60, what="the approved offering under 继教活动-项目管理")
    s = stack.session("checkin")
    try:
        activity = s.get(Activity, aid)
        activity.starts_on, activity.ends_on = clock.today_local(), clock.today_local() + dt.timedelta(days=1)
        s.commit()
    finally:
        s.close()
    return aid, offering_id, auth, office
