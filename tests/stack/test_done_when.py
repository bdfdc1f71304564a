"""Issue 2's "done when", through nginx and the pages a newcomer clicks: a demo institution logs in
with the code from the SMS log, files an offering with two JPGs, the committee logs in and approves
it, and the offering appears under 继续教育管理 → 继教活动-项目管理 (via offering.approved)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from .flows import client_from, csrf_of, jpeg, offering_days, page_login

pytestmark = pytest.mark.stack


def test_file_approve_and_see_activity_through_pages(stack, demo):
    base = stack.base_url
    inst = next(i for i in demo["institutions"] if i["account"] == "xjtu1")
    office = client_from("127.0.0.21")
    page_login(base, office, stack.sms_log, "institution", inst["account"], inst["password"], "13800000001")

    listing = office.get(f"{base}/projects/filings")
    assert listing.status_code == 200
    assert "项目举办前登记" in listing.text and "第一期未登记" in listing.text
    project_id = re.search(r'action="/projects/filings/projects/(\d+)/offerings"', listing.text).group(1)
    title_cell = listing.text.split(f"/projects/filings/projects/{project_id}/offerings")[0]
    r = office.post(f"{base}/projects/filings/projects/{project_id}/offerings",
                    data={"csrf_token": csrf_of(listing.text)})
    assert r.status_code == 200 and re.search(r"/projects/filings/\d+$", r.url), r.url
    filing_url = r.url
    version = re.search(r'name="version" value="(\d+)"', r.text).group(1)

    # the days within the row's catalogue year (from late December, next year's projects lead the list)
    year = int(re.findall(r"<td>(\d{4})</td><td>", title_cell)[-1])
    days = offering_days(year, 10)
    assert days, f"the first 未登记 row, of the {year} catalogue, has no dates left to file"
    start = days[0]
    form = {"csrf_token": csrf_of(r.text), "version": version, "action": "submit",
            "starts_on": start.isoformat(), "ends_on": (start + dt.timedelta(days=1)).isoformat(),
            "venue": "西安国际会议中心", "mode": "线下", "expected_trainees": "150", "contact_person": "李老师",
            "contact_phone": "13700001234",
            "sched_date": [start.isoformat(), (start + dt.timedelta(days=1)).isoformat()],
            "sched_start": ["08:30", "14:00"], "sched_end": ["12:00", "17:30"], "sched_title": ["专题讲座", "病例讨论"]}
    files = {"notice": ("会议通知.jpg", jpeg("white"), "image/jpeg"),
             "agenda": ("会议日程.jpg", jpeg("lightblue"), "image/jpeg")}
    r = office.post(filing_url, data=form, files=files)
    assert r.status_code == 200, r.text[:2000]
    assert "已上报" in r.text or "待审批" in r.text, r.text[:3000]

    committee = client_from("127.0.0.22")
    rev = demo["reviewer"]
    page_login(base, committee, stack.sms_log, "reviewer", rev["account"], rev["password"], rev["mobile"])
    queue = committee.get(f"{base}/projects/review/filings")
    assert queue.status_code == 200 and inst["name"] in queue.text
    filing_id = filing_url.rsplit("/", 1)[1]
    detail = committee.get(f"{base}/projects/review/filings/{filing_id}")
    assert detail.status_code == 200 and "会议通知" in detail.text and "会议日程" in detail.text
    for kind in ("notice", "agenda"):
        img = committee.get(f"{base}/projects/filings/{filing_id}/uploads/{kind}")
        assert img.status_code == 200 and img.content[:3] == b"\xff\xd8\xff"
    version = re.search(r'name="version" value="(\d+)"', detail.text).group(1)
    r = committee.post(f"{base}/projects/review/filings/{filing_id}/approve",
                       data={"csrf_token": csrf_of(detail.text), "version": version})
    assert r.status_code == 200 and "审批通过" in r.text

    def listed() -> str | None:
        page = office.get(f"{base}/checkin/activities")
        assert page.status_code == 200
        return page.text if "西安国际会议中心" in page.text else None

    page = stack.wait_until(listed, 60, what="the approved offering under 继教活动-项目管理")
    assert "继教活动" in page and "第一期" in page
    assert title_cell  # the project row existed on the filing list

    # the other demo institution does not see it
    other = next(i for i in demo["institutions"] if i["account"] != "xjtu1")
    assert other["name"] not in page
