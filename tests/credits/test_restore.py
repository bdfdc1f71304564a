"""恢复: the committee gives back an effective award it withdrew by mistake, as a new effective award (the withdrawn
one stays as history); certs keeps the old certificate revoked and makes the new award a new certificate; the
trainee's 达标情况查询 and the desk's 学员账号 count the credit again. Through the real pages and the JSON API."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from services.common import clock
from services.common.auth import Principal
from tests.certs.conftest import queued  # noqa: F401  (the render queue: the test runs each export itself)
from tests.checkin.test_windows_support import REVIEWER, api_headers, client_for, csrf_for, id_number
from tests.conftest import bearer, login_client
from tests.credits.test_activation import effective_events, granted, report_event  # noqa: F401
from tests.credits.test_awards import OFFERING, audit, awards, form, granted_events, key, seeded  # noqa: F401
from tests.credits.test_offerings import deliver

UTC = dt.UTC
APPROVED = dt.datetime(2026, 12, 20, 2, 0, tzinfo=UTC)
WITHDRAWN = dt.datetime(2027, 1, 9, 2, 0, tzinfo=UTC)  # the day after the certificate became printable
RESTORED = dt.datetime(2027, 1, 10, 2, 0, tzinfo=UTC)
WU_QIAN = Principal(role="trainee", subject="trainee:1", name="吴倩", trainee_key=key(1))


@pytest.fixture
def cdb(databases):
    return databases["credits"]


@pytest.fixture
def effective(credits_app, granted, cdb):  # noqa: F811
    """The report approved: 吴倩's and 李娜's awards are effective, 赵磊's manual entry is not."""
    clock.set_now(APPROVED)
    assert deliver(report_event("report.approved")) is True
    wu = next(a for a in awards(cdb) if a.name == "吴倩")
    assert wu.state == "effective"
    return wu


def committee_withdraws(credits_app, award, reason="核对时看错了行"):
    desk = client_for(credits_app, "reviewer")
    r = desk.post(f"/credits/awards/award/{award.id}/withdraw",
                  data=form(REVIEWER, reason=reason, version=str(award.version)))
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    return desk


def restore_form(page: str, award_id: int) -> str | None:
    tail = page.split(f'action="/credits/awards/award/{award_id}/restore"')
    return tail[1].split("</form>")[0] if len(tail) > 1 else None


def test_the_committee_restores_on_the_award_list_a_new_effective_award(credits_app, effective, cdb):
    clock.set_now(WITHDRAWN)
    desk = committee_withdraws(credits_app, effective)
    page = desk.get(f"/credits/awards/{OFFERING}/list").get_data(as_text=True)
    assert restore_form(page, effective.id) is not None and "恢复原因" in page
    # only the award that had taken effect: 李娜's current award and 赵磊's manual entry offer none
    others = {a.name: a.id for a in awards(cdb) if a.id != effective.id}
    assert restore_form(page, others["李娜"]) is None and restore_form(page, others["赵磊"]) is None
    # the office sees the list, but no 恢复
    office = client_for(credits_app, "inst_a").get(f"/credits/awards/{OFFERING}/list").get_data(as_text=True)
    assert restore_form(office, effective.id) is None

    clock.set_now(RESTORED)
    no_reason = desk.post(f"/credits/awards/award/{effective.id}/restore", data=form(REVIEWER, reason=" "))
    text = no_reason.get_data(as_text=True)
    assert no_reason.status_code == 422 and "恢复原因：" in text
    assert len(awards(cdb)) == 3  # nothing made

    done = desk.post(f"/credits/awards/award/{effective.id}/restore",
                     data=form(REVIEWER, reason="撤销错了人，应撤销张伟"))
    assert done.status_code == 302 and done.headers["Location"] == f"/credits/awards/{OFFERING}/list"
    page = desk.get(done.headers["Location"]).get_data(as_text=True)
    assert "已恢复 吴倩 的授分：新的授分记录已生效，学分证书将以新的编号生成，原证书仍作废" in page
    rows = [a for a in awards(cdb) if a.name == "吴倩"]
    old, new = rows
    assert (old.id, old.state, old.withdraw_reason) == (effective.id, "withdrawn", "核对时看错了行")  # history kept
    assert (new.state, new.effective_at, new.method) == ("effective", RESTORED, "attendance")
    same = ("trainee_key", "id_enc", "name", "credit_class", "credit_value", "activity_date", "year",
            "project_number", "offering_id", "institution_id", "analysis_id")
    assert {k: getattr(new, k) for k in same} == {k: getattr(old, k) for k in same}
    [entry] = audit(cdb, "restore")
    assert (entry.object_id, entry.from_state, entry.to_state) == (new.id, "withdrawn", "effective")
    assert "撤销错了人，应撤销张伟" in entry.reason and str(old.id) in entry.reason and entry.actor_name
    # the new row reads 已生效 and may be withdrawn again; the old one offers 恢复 no more
    assert restore_form(page, old.id) is None
    assert f'action="/credits/awards/award/{new.id}/withdraw"' in page
    assert "共 4 条（其中已撤销 1 条，当前授分 3 人）" in page
    # each of the two rows says what became of it (read later as history, the old one said only 已撤销)
    assert new.restored_from == old.id
    assert "已于 2027-01-10 10:00 由委员会恢复（见上方新的授分记录，另发新编号的学分证书）" in page
    assert "委员会恢复的授分（原授分已撤销，学分证书编号已更换）" in page

    # a second 恢复 (another tab) is refused in the row, the reason typed kept
    again = desk.post(f"/credits/awards/award/{old.id}/restore", data=form(REVIEWER, reason="再点一次"))
    text = again.get_data(as_text=True)
    assert again.status_code == 409 and "吴倩 本期次已有授分记录，不能恢复。" in text
    assert len(awards(cdb)) == 4


def test_restoring_tells_certs_and_projects_in_the_same_commit(credits_app, effective, cdb):
    clock.set_now(WITHDRAWN)
    committee_withdraws(credits_app, effective)
    before_effective, before_granted = len(effective_events(cdb)), len(granted_events(cdb))
    clock.set_now(RESTORED)
    r = credits_app.test_client().post(f"/credits/api/awards/{effective.id}/restore",
                                       json={"reason": "撤销错了人"}, headers=api_headers("reviewer"))
    assert r.status_code == 201, r.json
    [new] = r.json["awards"]
    assert (new["state"], new["name"], new["valid_credit"]) == ("effective", "吴倩", True) and new["id"] != effective.id
    events = effective_events(cdb)
    assert len(events) == before_effective + 1
    listed = {a["award_id"]: a for a in events[-1]["payload"]["awards"]}
    li_na = next(a.id for a in awards(cdb) if a.name == "李娜")
    assert set(listed) == {new["id"], li_na}  # every effective award of the offering; never the withdrawn one
    assert listed[new["id"]]["effective_at"].startswith("2027-01-10T02:00")
    assert listed[new["id"]]["credit_value"] in ("10.00", "10")
    granted_now = granted_events(cdb)
    assert len(granted_now) == before_granted + 1
    assert {a["award_id"] for a in granted_now[-1]["payload"]["awards"]} == {new["id"], li_na,
                                                                             *(a.id for a in awards(cdb)
                                                                               if a.name == "赵磊")}


def test_restore_is_refused_with_a_clear_reason(credits_app, granted, cdb):  # noqa: F811
    """Only the committee; only an award withdrawn after it took effect; not beside a current award; not for a 期
    not held; never without a reason."""
    from tests.credits.test_offering_cancelled import cancelled

    api = credits_app.test_client()

    def restore(award_id, who="reviewer", **body):
        return api.post(f"/credits/api/awards/{award_id}/restore", json=body or {"reason": "误撤销"},
                        headers=api_headers(who))

    by_name = {a.name: a for a in awards(cdb)}
    # a pending award the office withdrew: its way back is the office's 恢复授分 while the report is open
    office = credits_app.test_client()
    assert office.post(f"/credits/api/awards/{by_name['李娜'].id}/withdraw", json={"reason": "核对有误"},
                       headers=api_headers("inst_a")).status_code == 200
    r = restore(by_name["李娜"].id)
    assert r.status_code == 409 and r.json["error"]["message"] == "只有已生效后被撤销的“根据会场考勤授分”记录可以恢复。"
    assert restore(by_name["吴倩"].id).status_code == 409  # not withdrawn at all

    clock.set_now(APPROVED)
    deliver(report_event("report.approved"))
    wu = next(a for a in awards(cdb) if a.name == "吴倩")
    assert api.post(f"/credits/api/awards/{wu.id}/withdraw", json={"reason": "看错了行"},
                    headers=api_headers("reviewer")).status_code == 200
    for who in ("inst_a", "inst_b", "trainee"):
        assert restore(wu.id, who).status_code == 403
    assert restore(999999).status_code == 404
    missing = restore(wu.id, reason="")
    assert missing.status_code == 422 and missing.json["error"]["fields"]["reason"]
    assert restore(wu.id, note="x").status_code == 422  # marshmallow: nothing but the reason
    count = len(awards(cdb))

    assert deliver(cancelled(by="committee", reason="未见举办记录")) is True
    r = restore(wu.id)
    assert r.status_code == 409 and r.json["error"]["code"] == "offering_cancelled"
    assert r.json["error"]["message"] == "该期次已标记未举办（2026-12-20，原因：未见举办记录），不能恢复授分。"
    page = client_for(credits_app, "reviewer").get(f"/credits/awards/{OFFERING}/list").get_data(as_text=True)
    assert restore_form(page, wu.id) is None  # not offered either
    assert len(awards(cdb)) == count


def test_the_old_certificate_stays_revoked_and_the_restored_award_gets_a_new_one(credits_app, certs_app, effective,
                                                                                 cdb, databases, queued):  # noqa: F811
    """The events as credits emits them, through certs' own handler: the old number verifies 已撤销 for ever, the new
    award is printable and its export gives it its own number, which verifies 有效."""
    from services.certs.certificates.models import Certificate
    from services.certs.certificates.tasks import run_render
    from services.certs.worker import handle_event as certs_handle
    from services.credits.db import outbox

    sent: set[str] = set()

    def relay() -> None:  # credits' outbox to certs, in order, each event once
        s = cdb.new_session()
        rows = s.execute(select(outbox.c.envelope).where(
            outbox.c.name.in_(("credits.effective", "credits.withdrawn"))).order_by(outbox.c.id)).scalars().all()
        s.close()
        for raw in rows:
            envelope = json.loads(raw)
            if envelope["id"] not in sent:
                sent.add(envelope["id"])
                assert certs_handle.run(envelope) is True

    def export(award_id: int) -> str:
        r = certs_app.test_client().post("/certs/api/exports", json={"award_ids": [award_id]}, headers=bearer(WU_QIAN))
        assert r.status_code == 202, r.json
        assert [run_render(j) for j in queued] == ["done"]
        queued.clear()
        s = databases["certs"].new_session()
        try:
            return s.scalar(select(Certificate.number).where(Certificate.award_id == award_id))
        finally:
            s.close()

    relay()
    clock.set_now(dt.datetime(2027, 1, 8, 2, 0, tzinfo=UTC))  # printable: 4 weeks after the offering ended
    old_number = export(effective.id)
    anon = certs_app.test_client()
    assert anon.get(f"/certs/api/verify/{old_number}").json["status"] == "valid"

    clock.set_now(WITHDRAWN)
    committee_withdraws(credits_app, effective)
    relay()
    assert anon.get(f"/certs/api/verify/{old_number}").json["status"] == "revoked"

    clock.set_now(RESTORED)
    desk = client_for(credits_app, "reviewer")
    assert desk.post(f"/credits/awards/award/{effective.id}/restore",
                     data=form(REVIEWER, reason="撤销错了人")).status_code == 302
    new_id = max(a.id for a in awards(cdb) if a.name == "吴倩")
    relay()
    body = anon.get(f"/certs/api/verify/{old_number}").json
    assert (body["status"], body["status_label"], body["revoked_on"]) == ("revoked", "已撤销", "2027-01-09")
    mine = {i["award_id"]: i for i in anon.get("/certs/api/me/certificates", headers=bearer(WU_QIAN)).json["items"]}
    assert mine[effective.id]["revoked"] and not mine[effective.id]["printable"]
    assert mine[new_id]["printable"] and not mine[new_id]["revoked"]
    new_number = export(new_id)
    assert new_number and new_number != old_number
    assert anon.get(f"/certs/api/verify/{new_number}").json["status"] == "valid"
    html = anon.get(f"/certs/verify/{old_number}").get_data(as_text=True)
    assert "已撤销" in html and "证书有效" not in html  # the old number never reads 有效 again
    # a credits.effective delivered again later (a repeat of the same list) changes none of that
    s = cdb.new_session()
    last = json.loads(s.execute(select(outbox.c.envelope).where(outbox.c.name == "credits.effective")
                                .order_by(outbox.c.id.desc()).limit(1)).scalar_one())
    s.close()
    last["id"] = "repeat-" + last["id"][7:]
    assert certs_handle.run(last) is True
    assert anon.get(f"/certs/api/verify/{old_number}").json["status"] == "revoked"
    assert anon.get(f"/certs/api/verify/{new_number}").json["status"] == "valid"


def test_the_trainee_and_the_desk_count_the_restored_credit(credits_app, effective, cdb, databases):
    from tests.credits.conftest import new_account

    trainee = new_account(databases, "吴倩", id_number(1), "Neues2026pw")
    phone = login_client(credits_app.test_client(), trainee)

    def counted():
        [year] = [y for y in credits_app.test_client().get("/credits/api/me/compliance?year=2026",
                                                          headers=bearer(trainee)).json["years"]
                  if y["year"] == 2026]
        return [(a["state"], a["counted"]) for a in year["awards"]]

    def desk_says():
        desk = login_client(credits_app.test_client(), REVIEWER)
        r = desk.post("/credits/accounts", data={"csrf_token": csrf_for(REVIEWER), "id_number": id_number(1)},
                      follow_redirects=True)
        assert r.status_code == 200
        return r.get_data(as_text=True)

    assert counted() == [("effective", True)]
    clock.set_now(WITHDRAWN)
    committee_withdraws(credits_app, effective, reason="看错了行")
    assert counted() == [("withdrawn", False)]
    assert "授分已撤销（看错了行）" in desk_says()

    clock.set_now(RESTORED)
    r = credits_app.test_client().post(f"/credits/api/awards/{effective.id}/restore", json={"reason": "撤销错了人"},
                                       headers=api_headers("reviewer"))
    assert r.status_code == 201
    assert counted() == [("effective", True)]  # the mistaken withdrawal is not shown beside it
    page = phone.get("/credits/compliance?year=2026").get_data(as_text=True)
    total = page.split('<div class="nums">')[1].split("总学分")[0]
    assert "<b>10</b><span>Ⅰ类学分" in total and "已撤销" not in page
    assert "已生效</span>" in page and "学分证书：可打印学分证书" in page
    assert "经继续医学教育委员会恢复，原学分证书作废，请打印新编号的证书" in page
    desk = desk_says()
    assert "已生效 Ⅰ类 10 分（委员会恢复误撤销的授分，原学分证书作废，另发新编号证书）" in desk
    assert "授分已撤销" not in desk
