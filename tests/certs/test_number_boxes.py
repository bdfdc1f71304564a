"""证书验证 and 证书查询: text too long to be a number (over 200 characters, from a link or a paste) is refused
beside the box that holds it, in Chinese, the box keeping what was typed (its first 200 characters): it was emptied
without a word."""

from __future__ import annotations

import html as htmllib
import re

from services.common import clock
from tests.certs.conftest import PRINTABLE_DAY, REVIEWER, TRAINEE_1, at
from tests.certs.test_certificates import certificates, client, csrf_for, run_jobs
from tests.conftest import bearer

TOO_LONG = "证书编号过长：您输入了 {n} 个字符，最多可输入 200 个"


def box(page: str) -> tuple[str, str | None]:
    """The number box's text and the message beside it (the element its aria-describedby names), if any."""
    tag = re.search(r'<input id="f-number"[^>]*>', page).group(0)
    value = htmllib.unescape(re.search(r'value="([^"]*)"', tag).group(1))
    described = re.search(r'aria-describedby="(e-number)', tag)
    said = re.search(r'<div class="field-error" id="e-number">([^<]*)</div>', page)
    assert bool(described) == bool(said)
    return value, said.group(1) if said else None


def test_a_number_too_long_is_refused_beside_its_box_which_keeps_it(certs_app, awards, queued, certs_db):
    clock.set_now(at(PRINTABLE_DAY))
    assert certs_app.test_client().post("/certs/api/exports", json={"award_ids": [1]},
                                        headers=bearer(TRAINEE_1)).status_code == 202
    run_jobs(queued)
    number = certificates(certs_db)[1][0]
    anon = client(certs_app, None)  # a visitor's browser (the name check's form token is bound to its cookie)
    pasted = f"{number} 张伟 心血管急危重症诊治进展 " + "西安市第一医院继续医学教育培训班结业证明" * 12
    assert len(pasted) > 200

    label = "证书编号："  # pasted with it: counted as typed, kept out of the box as a number's label always is
    for page, typed in ((anon.get("/certs/verify", query_string={"number": pasted}), pasted),  # the box's form
                        (anon.get(f"/certs/verify/{label}{pasted}"), label + pasted)):  # a link
        text = page.get_data(as_text=True)
        assert page.status_code == 422 and page.mimetype == "text/html"
        value, said = box(text)
        assert said is not None and TOO_LONG.format(n=len(typed)) in said and "16 位" in said
        assert value == typed[:200].removeprefix(label) and value.startswith(number)  # she deletes the rest
        assert "证书有效" not in text and 'id="result"' not in text

    # what she then sends (the first 200 characters) is read, and said to be no number, the box keeping it
    again = anon.get("/certs/verify", query_string={"number": pasted[:200]})
    assert again.status_code == 303
    text = anon.get(again.headers["Location"]).get_data(as_text=True)
    assert "您输入的是" in text and box(text) == (pasted[:200], None)
    # 41 to 200 characters were cut to 40 in the box: kept whole
    sixty = number + "X" * 44
    text = anon.get(f"/certs/verify/{sixty}").get_data(as_text=True)
    assert "您输入的是 60 位" in text and box(text)[0] == sixty
    assert 'maxlength="200"' in text  # the box takes as much as the page reads

    # far longer, with an unreadable character past what is kept, or within it: refused, never a 500
    for raw, kept in ((number + "A" * 3000 + "\x00", number + "A" * 184), ("\x00" + "A" * 300, "")):
        for page in (anon.get("/certs/verify", query_string={"number": raw}), anon.get(f"/certs/verify/{raw}")):
            text = page.get_data(as_text=True)
            assert page.status_code == 422 and box(text)[0] == kept and "\x00" not in text
            assert TOO_LONG.format(n=len(raw)) in box(text)[1]
    # the name check posted to such an address: the same refusal, not a 404 or a 500
    posted = anon.post(f"/certs/verify/{pasted}", data={"name": "张伟", "csrf_token": csrf_for(None)})
    assert posted.status_code == 422 and TOO_LONG.format(n=len(pasted)) in box(posted.get_data(as_text=True))[1]


def test_the_committee_s_lookup_refuses_a_number_too_long_beside_its_box(certs_app, awards, queued, certs_db):
    clock.set_now(at(PRINTABLE_DAY))
    assert certs_app.test_client().post("/certs/api/exports", json={"award_ids": [1]},
                                        headers=bearer(TRAINEE_1)).status_code == 202
    run_jobs(queued)
    number = certificates(certs_db)[1][0]
    committee = client(certs_app, REVIEWER)
    long = number + " " + "2027ABCDEFGHIJKL" * 15
    page = committee.get("/certs/lookup", query_string={"number": long})
    text = page.get_data(as_text=True)
    value, said = box(text)
    assert page.status_code == 422 and TOO_LONG.format(n=len(long)) in said and value == long[:200]
    assert "未找到" not in text
    found = committee.get("/certs/lookup", query_string={"number": value[:16]})
    assert found.status_code == 200 and f"证书 {number}：有效" in found.get_data(as_text=True)
    assert box(found.get_data(as_text=True)) == (number, None)


def test_on_a_phone_the_refusal_stands_under_the_box_and_what_it_keeps_can_be_cut_down_and_sent(certs_app):
    """The refused page on a phone: the sentence is between the box and 验证, the page no wider than the screen,
    and the kept text, cut down by hand, is what the form sends (a box of 40 characters refused it as too long, in
    the browser's words)."""
    from tests.stack.browser import PHONE, served_page

    anon = certs_app.test_client()
    typed = "2027ABCDEFGHIJKL，" + "请核对这张证书是否有效" * 30
    html = anon.get("/certs/verify", query_string={"number": typed}).get_data(as_text=True)
    with served_page(html, "/certs/verify", lambda route: route.fulfill(status=204), device=PHONE,
                     static_from=anon) as page:
        where = page.evaluate("""() => Object.fromEntries(["#f-number", "#e-number", "button.big"].map(
            s => [s, document.querySelector(s).getBoundingClientRect().toJSON()]))""")
        wide = page.evaluate("document.documentElement.scrollWidth")
        page.click("#f-number")
        page.keyboard.press("End")
        for _ in range(100):  # the sentence's end (the rest she may cut later, or the page tells her again)
            page.keyboard.press("Backspace")
        sent = page.evaluate("""() => { const box = document.querySelector('#f-number');
            return {value: box.value, valid: box.checkValidity()}; }""")
    box_, said, button = where["#f-number"], where["#e-number"], where["button.big"]
    assert box_["bottom"] <= said["top"] and said["bottom"] <= button["top"] and said["height"] > 0
    assert wide <= 360
    assert sent == {"value": typed[:100], "valid": True}


def test_a_letter_o_typed_in_the_year_is_read_as_the_digit(certs_app, awards, queued, certs_db):
    """A number typed with the letter O in its year (2O26…) was refused 格式不正确：前 4 位应为年份数字, although O
    for 0 was read after the year: the year reads the same look-alikes the other way round (O, I, B as 0, 1, 8)."""
    from services.certs.certificates.services import normalise_number

    assert normalise_number("2O2６ 0w4z-sk8f hvz1") == "2026OW4ZSKBFHVZI"
    assert normalise_number("2o1b" + "A" * 12) == "2018" + "A" * 12

    clock.set_now(at(PRINTABLE_DAY))
    assert certs_app.test_client().post("/certs/api/exports", json={"award_ids": [1]},
                                        headers=bearer(TRAINEE_1)).status_code == 202
    run_jobs(queued)
    number = certificates(certs_db)[1][0]
    assert number.startswith("2026")
    typed = "2O" + number[2:]  # the year typed from paper with the letter O
    anon = client(certs_app, None)
    sent = anon.get("/certs/verify", query_string={"number": typed.lower()})
    assert sent.status_code == 303
    page = anon.get(sent.headers["Location"])
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "证书有效" in text and f"<dd>{number}</dd>" in text and "格式不正确" not in text
    assert anon.get(f"/certs/verify/{typed}").status_code == 200
    assert anon.get(f"/certs/api/verify/{typed}").json["number"] == number
    committee = client(certs_app, REVIEWER)
    found = committee.get("/certs/lookup", query_string={"number": typed})
    assert found.status_code == 200 and f"证书 {number}：有效" in found.get_data(as_text=True)
    assert certs_app.test_client().get(f"/certs/api/certificates/{typed}", headers=bearer(REVIEWER)).status_code == 200
    # one not found says what was typed and how it was read, not that it is malformed
    missing = anon.get("/certs/verify/2O27AAAAAAAAAAAA").get_data(as_text=True)
    assert "未找到证书编号 2O27AAAAAAAAAAAA（按 2027AAAAAAAAAAAA 查询）" in re.sub(r"<[^>]+>", "", missing)
    assert "格式不正确" not in missing and "年份中的字母 O、I、B 按数字 0、1、8 查询" in missing
    # a year that is no year still is one
    slip = anon.get("/certs/verify/20A7AAAAAAAAAAAA").get_data(as_text=True)
    assert "格式不正确" in slip and "前 4 位应为年份数字" in slip
