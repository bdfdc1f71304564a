"""恢复 in Chromium as the committee's clerk uses it on the 授分名单: the withdrawn row's reason box and button, the
confirmation that says what 恢复 makes, and the form as the browser sends it reaching the real view."""

from __future__ import annotations

from typing import Any

from services.common import clock
from tests.checkin.test_windows_support import client_for
from tests.credits.test_activation import granted, report_event  # noqa: F401
from tests.credits.test_awards import OFFERING, awards, seeded  # noqa: F401
from tests.credits.test_offerings import deliver
from tests.credits.test_restore import APPROVED, RESTORED, WITHDRAWN, cdb, committee_withdraws  # noqa: F401


def test_the_clerk_restores_a_withdrawn_effective_award_after_confirming(credits_app, granted, cdb):  # noqa: F811
    from tests.stack.browser import DESK, served_page

    clock.set_now(APPROVED)
    deliver(report_event("report.approved"))
    wu = next(a for a in awards(cdb) if a.name == "吴倩")
    clock.set_now(WITHDRAWN)
    desk = committee_withdraws(credits_app, wu)
    html = desk.get(f"/credits/awards/{OFFERING}/list").get_data(as_text=True)
    clock.set_now(RESTORED)
    answers: list[int] = []
    dialogs: list[str] = []

    def forward(route: Any) -> None:  # the browser's own form body, to the real view
        request = route.request
        resp = desk.post(request.url.removeprefix("http://cme.test"), data=request.post_data_buffer,
                         content_type=request.headers["content-type"])
        answers.append(resp.status_code)
        route.fulfill(status=200, content_type="text/html; charset=utf-8", body="<p>ok</p>")

    form = f'form[action="/credits/awards/award/{wu.id}/restore"]'
    with served_page(html, f"/credits/awards/{OFFERING}/list", forward, device=DESK,
                     static_from=client_for(credits_app, "reviewer")) as p:
        accept = [False]
        p.on("dialog", lambda d: (dialogs.append(d.message), d.accept() if accept[0] else d.dismiss()))
        box = p.locator(f"{form} input[name=reason]")
        assert box.get_attribute("aria-label") == "吴倩 恢复原因"
        p.locator(f"{form} button[type=submit]").click()  # no reason: the browser itself asks for one
        p.wait_for_timeout(200)
        assert dialogs == [] and answers == []
        assert p.evaluate(f"() => document.querySelector('{form} input[name=reason]').validity.valueMissing")
        box.fill("撤销错了人")

        p.locator(f"{form} button[type=submit]").click()
        p.wait_for_timeout(200)
        assert len(dialogs) == 1 and answers == []  # 取消: nothing sent

        accept[0] = True
        p.locator(f"{form} button[type=submit]").click()
        p.wait_for_selector("text=ok")
    assert dialogs[0] == dialogs[1] == ("确定恢复吴倩的授分吗？将生成一条新的已生效授分记录，另发新编号的学分证书；"
                                        "原证书仍作废。")
    assert answers == [302]
    states = [(a.name, a.state) for a in awards(cdb) if a.name == "吴倩"]
    assert states == [("吴倩", "withdrawn"), ("吴倩", "effective")]
