"""Issue 7: the whole operations guide, end to end through nginx, in headless Chromium, only through the pages.

1. the committee adds a host institution (申办机构 → 新建) and imports the project catalogue (.xlsx);
2. the institution's first login (新增机构负责人, SMS code from the log provider) and 项目举办前登记 with JPGs;
3. the committee approves the filing;
4. on the activity's first day (the suite's clock moved), the institution opens 二维码考勤 → 微信二维码考勤;
5. three phones read the QR from screenshots of the projector (zbar), pass the fake WeChat login and check in;
6. the day after the activity: 学分管理 → 项目参加者授分 → 授分 → 根据会场考勤授分 → 考勤分析 → 确定 → 授分;
7. 执行情况反馈 → 反馈管理 → 新建, pages 1–5, 提交;
8. the committee approves the report;
9. four weeks after the activity: a trainee logs in with ID number + pinyin password, changes it, sees
   达标情况查询, exports the certificate (a Celery job), the PDF's text and QR are checked, the QR's page says valid.

Nothing comes from the demo data: the institution, project, responsible person and trainees are this test's
own (fresh mobiles keep the 60-second SMS rule of the other stack tests out of the way). Screenshots of every
step: $CME_TEST_OUTPUT/walkthrough/ or test-output/<run id>/walkthrough/ (git-ignored).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import re
import subprocess

import pytest

from services.common import clock, pii

from .browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESK,
    PHONE,
    Shots,
    decode_qr,
    desk_login,
    output_dir,
    reload_until,
    run_id,
    search,
)
from .flows import id_number, jpeg

pytestmark = pytest.mark.stack

REVIEWER = ("committee07", "审核员走查", "Walk-Review@2026", "13900007701")
INSTITUTION = {"account": "wnzx_walk", "name": "渭南市中心医院（走查）", "password": "Walk-Inst@2026"}
ADMIN = ("周主任", "13700007702")
VENUE = "渭南市会议中心三楼报告厅"
TRAINEES = [
    {"name": "赵志强", "id_number": id_number("61011319900101231"), "mobile": "13600007711", "title": "主治医师",
     "unit": "渭南市中心医院"},
    {"name": "孙丽娜", "id_number": id_number("61011319880715342"), "mobile": "13600007712", "title": "副主任医师",
     "unit": "渭南市妇幼保健院"},
    {"name": "周文博", "id_number": id_number("61011319920303453"), "mobile": "13600007713", "title": "医师",
     "unit": "华州区人民医院"},
]
NEW_PASSWORD = "Walk-Trainee@2026"


def catalogue_xlsx(year: int, number: str, title: str, month: int = 12) -> bytes:
    """The committee's annual catalogue as a clerk makes it in Excel: one header row, one project, held in
    `month`."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["项目编号", "项目名称", "项目负责人", "主办单位", "学分类别", "学分", "学时", "举办期数",
               "举办起止时间", "举办地点", "举办方式"])
    ws.append([number, title, "周建国", INSTITUTION["name"], "Ⅰ类", 4, 12, 1, f"{year}年{month}月", "渭南市", "线下"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def seconds_until(day: dt.date, hour: int) -> int:
    """How far to move the suite's clock so that it reads `hour` o'clock (Beijing time) on `day` (from the clock
    the suite and this process share: real time, moved by CME_CLOCK_OFFSET_SECONDS if set)."""
    target = dt.datetime.combine(day, dt.time(hour), tzinfo=clock.SHANGHAI)
    return int((target - clock.now()).total_seconds())


def test_whole_guide_through_the_pages(stack):
    from playwright.sync_api import expect, sync_playwright

    from services.credits.accounts.passwords import default_initial_password
    from services.projects import models  # noqa: F401 - the whole schema is known
    from services.projects.institutions.services import create_reviewer

    base = stack.base_url
    shots = Shots(output_dir("walkthrough"))
    (shots.folder / "scans").mkdir(exist_ok=True)  # what the phones' cameras saw
    with stack.session("projects") as s:  # the committee member's account comes from the province's set-up
        create_reviewer(s, *REVIEWER)
        s.commit()

    today = clock.today_local()  # the test process's clock is the suite's, before any move
    starts = today + dt.timedelta(days=8)  # filing: at least 7 days before (and a day to spare)
    if (starts + dt.timedelta(days=1)).year != starts.year:
        starts += dt.timedelta(days=1)  # a 期 lies within its project's year: not over New Year
    ends = starts + dt.timedelta(days=1)
    year = starts.year  # the catalogue year of the offering's days (from late December: next year)
    serial = int(hashlib.sha256(run_id().encode()).hexdigest(), 16)  # a number of this run's own, all digits
    number = f"{year}-98-{serial % 100:02d}-{serial // 100 % 1000:03d}"
    title = "基层急诊急救能力提升培训班"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            committee = browser.new_context(**DESK).new_page()
            office = browser.new_context(**DESK).new_page()
            asked: list[str] = []  # what the irreversible buttons asked before acting (accepted, as a person would)
            for page in (committee, office):
                page.set_default_timeout(15_000)
                page.on("dialog", lambda d: (asked.append(d.message), d.accept()))

            # ---- 1. the committee: 申办机构 → 新建, then 项目目录 → 导入 ----------------------------------------
            desk_login(committee, base, stack.sms_log, "reviewer", REVIEWER[0], REVIEWER[2], REVIEWER[3])
            committee.get_by_role("link", name="申办机构").click()
            committee.fill("#f-account", INSTITUTION["account"])
            committee.fill("#f-name", INSTITUTION["name"])
            committee.fill("#f-password", INSTITUTION["password"])
            committee.get_by_role("button", name="新建").click()
            expect(committee.locator(".flash.ok")).to_contain_text(f"已创建申办机构“{INSTITUTION['name']}”")
            committee.get_by_role("link", name="项目目录").click()
            committee.fill("#f-year", str(year))
            workbook = catalogue_xlsx(year, number, title, starts.month)
            committee.set_input_files("#f-file", files=[{
                "name": f"{year}年省级继续医学教育项目目录.xlsx", "buffer": workbook,
                "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}])
            committee.get_by_role("button", name="导入").click()
            # the import is a job of the projects worker: its page follows it by itself until the result shows
            expect(committee.locator("#import .flash")).to_contain_text("导入完成：新增 1 项", timeout=60_000)
            shots(committee, "catalogue-import")
            committee.get_by_role("link", name=f"返回项目目录（{year} 年度）").click()
            search(committee, number)
            expect(committee.locator("table.responsive:not(#recent-imports)")).to_contain_text(title)

            # ---- 2. the institution: first login, 项目举办前登记 → 第一期未登记 → 保存并上报 --------------------
            desk_login(office, base, stack.sms_log, "institution", INSTITUTION["account"], INSTITUTION["password"],
                       ADMIN[1], first_admin=ADMIN[0], shots=shots)
            # on the password the committee typed, the office is asked to set its own first
            assert office.url.endswith("/projects/password"), office.url
            expect(office.locator("#initial")).to_contain_text("初始密码")
            office.fill("#f-old", INSTITUTION["password"])
            office.fill("#f-new", "Office2026own")
            office.fill("#f-new2", "Office2026own")
            office.get_by_role("button", name="修改密码").click()
            expect(office.locator(".flash.ok")).to_contain_text("密码已修改")
            office.get_by_role("link", name="省级项目申报 · 项目举办前登记").click()
            office.locator("tr", has_text=number).get_by_role("button", name="第一期未登记").click()
            expect(office.locator("h1")).to_contain_text(f"项目举办前登记：{title} 第一期")
            office.fill("#f-starts_on", starts.isoformat())
            office.fill("#f-ends_on", ends.isoformat())
            office.fill("#f-venue", VENUE)
            office.select_option("#f-mode", "线下")
            office.fill("#f-expected_trainees", "80")
            office.fill("#f-contact_person", "周主任")
            office.fill("#f-contact_phone", "0913-2100000")
            rows = [(starts, "09:00", "17:00", "开幕与专题讲座"), (ends, "14:00", "17:30", "病例讨论")]
            for i, (day, start, end, what) in enumerate(rows):
                office.locator('input[name="sched_date"]').nth(i).fill(day.isoformat())
                office.locator('input[name="sched_start"]').nth(i).fill(start)
                office.locator('input[name="sched_end"]').nth(i).fill(end)
                office.locator('input[name="sched_title"]').nth(i).fill(what)
            office.set_input_files("#f-notice", files=[{"name": "会议通知.jpg", "mimeType": "image/jpeg",
                                                        "buffer": jpeg("white")}])
            office.set_input_files("#f-agenda", files=[{"name": "会议日程.jpg", "mimeType": "image/jpeg",
                                                        "buffer": jpeg("lightblue")}])
            shots(office, "filing-form")
            office.get_by_role("button", name="保存并上报").click()
            expect(office.locator("body")).to_contain_text("待审批")
            filing_url = office.url
            assert re.search(r"/projects/filings/\d+$", filing_url), filing_url
            shots(office, "filing-submitted")

            # ---- 3. the committee approves ---------------------------------------------------------------
            committee.get_by_role("link", name="举办前登记审批").click()
            search(committee, number)
            committee.locator("tr", has_text=number).get_by_role("link", name="审批").click()
            expect(committee.locator("body")).to_contain_text("会议通知")
            committee.get_by_role("button", name="审批通过").click()
            expect(committee.locator(".flash.ok")).to_contain_text(f"已审批通过：{title} 第一期")
            assert "不能撤回" in asked[-1], asked
            shots(committee, "filing-approved")

            # ---- 4. the first day of the activity: 继教活动-项目管理 → 二维码考勤 → 微信二维码考勤 ----------------
            with stack.clock_moved(seconds_until(starts, 10)):  # the phones scan at ten in the morning
                reload_until(office, f"{base}/checkin/activities", lambda p: number in p.content(), 60,
                             "the approved offering under 继教活动-项目管理")
                shots(office, "activities")
                office.locator("tr", has_text=number).get_by_role("link", name="二维码考勤").click()
                row = office.locator("tr", has_text="开幕与专题讲座")
                expect(row).to_contain_text("签到")
                with office.expect_popup() as popup:
                    row.get_by_role("link", name="微信二维码考勤").click()
                projector = popup.value
                projector.locator("#qr svg, #qr img").first.wait_for(state="visible", timeout=15_000)
                expect(projector.locator("#count")).to_have_text("0")
                shots(projector, "projector", full_page=False)

                # ---- 5. three phones: QR from a screenshot, fake WeChat login, the form, 已签到 ----------------
                for n, person in enumerate(TRAINEES, start=1):
                    snap = shots.folder / "scans" / f"projector-{n}.png"
                    projector.screenshot(path=str(snap))
                    [url] = decode_qr(snap)
                    assert url.startswith(f"{base}/checkin/s/"), url
                    phone = browser.new_context(**PHONE).new_page()
                    r = phone.goto(url)
                    # (the #wechat_redirect of WeChat's authorize URL stays on through the redirects back)
                    assert r is not None and r.status == 200 and r.url == f"{base}/checkin/scan", phone.url
                    expect(phone.locator("h1")).to_have_text("签到")
                    phone.fill("#f-name", person["name"])
                    phone.fill("#f-id_number", person["id_number"])
                    phone.fill("#f-mobile", person["mobile"])
                    phone.select_option("#f-title", person["title"])
                    phone.fill("#f-unit", person["unit"])
                    if n == 1:
                        shots(phone, "phone-form")
                    phone.get_by_role("button", name="提交签到").click()
                    phone.locator("h1.ok").wait_for(timeout=15_000)
                    expect(phone.locator("h1")).to_contain_text("已签到")
                    shots(phone, f"phone-{n}-checked-in")
                    phone.context.close()
                expect(projector.locator("#count")).to_have_text("3", timeout=15_000)
                shots(projector, "projector-count", full_page=False)
                projector.close()

            with stack.clock_moved(seconds_until(ends + dt.timedelta(days=1), 9)):  # the day after the activity
                # ---- 6. 学分管理 → 项目参加者授分 → 授分 → 根据会场考勤授分 → 考勤分析 → 确定 → 授分 -----------
                office.get_by_role("link", name="学分管理 · 项目参加者授分").click()
                office.locator("tr", has_text=number).get_by_role("link", name="授分", exact=True).click()
                expect(office.locator("body")).to_contain_text("手工录入学分为非有效学分")
                shots(office, "award-method")
                office.get_by_role("link", name="根据会场考勤授分").click()
                analysis_url = office.url
                assert analysis_url.endswith("/analysis"), analysis_url
                # every 刷卡周期 of the 日程 is listed (credits knows them from checkin.window_changed); the
                # sessions nobody scanned in say so and stay unticked
                window_rows = office.locator("tr", has=office.locator('input[name="window"]'))
                window_row = window_rows.filter(has_text="开幕与专题讲座")

                def three_scans(p) -> bool:  # the check-ins reach credits through checkin.recorded
                    scans = window_row.locator("td").nth(2)
                    return window_row.count() == 1 and scans.inner_text().startswith("3 人签到")

                reload_until(office, analysis_url, three_scans, 60, "credits to hold the three check-ins")
                for other in window_rows.filter(has_not_text="开幕与专题讲座").all():
                    expect(other).to_contain_text("该刷卡周期无人扫码签到")
                    assert not other.locator('input[name="window"]').is_checked()
                window_row.locator('input[name="window"]').check()
                # ticking fills in the window's own times (时间自动显示)
                assert window_row.locator('input[name^="from_"]').input_value()
                assert window_row.locator('input[name^="to_"]').input_value()
                office.get_by_role("button", name="考勤分析").click()
                expect(office.locator("body")).to_contain_text("有效人员 3 人")
                shots(office, "attendance-analysis")
                office.get_by_role("button", name="确定").click()
                assert office.url.endswith("/attendees"), office.url
                expect(office.locator("body")).to_contain_text("待授分 3 人")
                for person in TRAINEES:
                    masked = pii.mask_id(person["id_number"])
                    expect(office.locator("tr", has_text=person["name"])).to_contain_text(masked)
                assert ends.isoformat() == office.input_value("#f-activity_date")  # the last day of the activity
                shots(office, "valid-attendees")
                office.get_by_role("button", name="授分", exact=True).click()
                expect(office.locator(".flash.ok")).to_contain_text("授分完成：新授分 3 人")
                assert office.url.endswith("/list"), office.url
                shots(office, "awards-granted")

                # ---- 7. 执行情况反馈 → 反馈管理 → 新建, pages 1–5, 提交 -------------------------------------------
                office.get_by_role("link", name="省级项目申报 · 执行情况反馈").click()
                office.locator("tr", has_text=number).get_by_role("link", name="反馈管理").click()
                office.get_by_role("button", name="新建").click()
                expect(office.locator(".flash.ok")).to_contain_text("已新建反馈记录")
                report_url = office.url.rsplit("/pages/", 1)[0]
                facts = {"#f-actual_starts_on": starts.isoformat(), "#f-actual_ends_on": ends.isoformat(),
                         "#f-venue": VENUE, "#f-trainees_count": "3", "#f-total_hours": "12",
                         "#f-organiser": "急诊医学科", "#f-contact_person": "周主任",
                         "#f-contact_phone": "0913-2100000"}
                for selector, value in facts.items():
                    office.fill(selector, value)
                office.select_option("#f-mode", "线下")
                office.get_by_role("button", name="保存本页").click()
                expect(office.locator(".flash.ok")).to_contain_text("第1页")
                shots(office, "report-page-1")

                office.get_by_role("link", name=re.compile(r"^第2页")).click()
                for field, value in {"name": "王建华", "title": "主任医师", "unit": "西安交通大学第一附属医院",
                                     "topic": "急诊胸痛的识别与处置", "hours": "6"}.items():
                    office.fill(f'input[name="lec-0-{field}"]', value)
                office.get_by_role("button", name="保存本页").click()
                expect(office.locator(".flash.ok")).to_contain_text("第2页")
                shots(office, "report-page-2")

                office.get_by_role("link", name=re.compile(r"^第3页")).click()
                for kind, color in (("schedule", "white"), ("notice", "lightyellow"), ("photo", "gray")):
                    office.set_input_files(f"#f-{kind}", files=[{"name": f"{kind}.jpg", "mimeType": "image/jpeg",
                                                                 "buffer": jpeg(color)}])
                office.get_by_role("button", name="保存本页").click()
                expect(office.locator(".flash.ok")).to_contain_text("已上传 3 个文件")
                shots(office, "report-page-3")

                office.get_by_role("link", name=re.compile(r"^第4页")).click()
                page4 = office.url
                reload_until(office, page4, lambda p: "学分管理当前名单：3 人" in p.content(), 60,
                             "projects to hear of the three awards")
                office.get_by_role("button", name="导入").click()
                expect(office.locator(".flash.ok")).to_contain_text("已导入本期考勤（授分）记录 3 人")
                for person in TRAINEES:
                    expect(office.locator("body")).to_contain_text(person["name"])
                shots(office, "report-page-4")

                office.get_by_role("link", name=re.compile(r"^第5页")).click()
                office.fill("#f-summary", "按计划完成两天培训，学员全部扫码考勤，反馈良好。")
                office.get_by_role("button", name="保存本页").click()
                expect(office.locator(".flash.ok")).to_contain_text("第5页")
                shots(office, "report-page-5")

                office.get_by_role("link", name="返回列表").click()
                office.get_by_role("button", name="提交").click()
                expect(office.locator(".flash.ok")).to_contain_text("已提交")
                assert "提交后反馈和授分名单即锁定" in asked[-1], asked
                assert office.url == report_url, (office.url, report_url)
                shots(office, "report-submitted")

                # ---- 8. the committee approves the report -----------------------------------------------------
                committee.get_by_role("link", name="执行情况反馈审批").click()
                search(committee, number)
                committee.locator("tr", has_text=number).get_by_role("link", name="审批").click()
                expect(committee.locator("body")).to_contain_text("急诊胸痛的识别与处置")
                committee.get_by_role("button", name="审批通过").click()
                expect(committee.locator(".flash.ok")).to_contain_text("审批通过")
                shots(committee, "report-approved")

            # ---- 9. four weeks on: the trainee, 达标情况查询, 导出学分证书, the certificate's QR verifies ---
            trainee = TRAINEES[0]
            with stack.clock_moved(seconds_until(ends + dt.timedelta(days=29), 9)):  # 4 weeks after it ended
                phone = browser.new_context(**PHONE).new_page()
                phone.set_default_timeout(15_000)
                phone.goto(f"{base}/credits/login")
                phone.fill("#f-id_number", trainee["id_number"])
                phone.fill("#f-password", default_initial_password(trainee["name"]))  # 姓名全拼
                phone.get_by_role("button", name="登录").click()
                phone.wait_for_url("**/credits/password")  # the initial password must be changed first
                shots(phone, "trainee-change-password")
                phone.fill("#f-old_password", default_initial_password(trainee["name"]))
                phone.fill("#f-new_password", NEW_PASSWORD)
                phone.fill("#f-repeat_password", NEW_PASSWORD)
                phone.get_by_role("button", name="确认修改").click()
                expect(phone.locator(".flash.ok")).to_contain_text("密码已修改")
                phone.get_by_role("link", name="达标情况查询").click()
                expect(phone.locator("h1")).to_have_text("达标情况查询")
                activity_year = phone.get_by_role("link", name=f"{ends.year}年", exact=True)
                if activity_year.count() and activity_year.get_attribute("aria-current") != "page":
                    activity_year.click()  # the clock may have crossed into the next year
                compliance_url = phone.url
                reload_until(phone, compliance_url,
                             lambda p: title in p.content() and 'badge effective">已生效<' in p.content(), 60,
                             "the credit to take effect after the report's approval")
                shots(phone, "trainee-compliance")

                phone.get_by_role("link", name="导出学分证书").click()
                certs_url = phone.url
                reload_until(phone, certs_url, lambda p: p.locator('input[name="award_id"]:checked').count() == 1,
                             60, "the printable certificate under 电子学分证书查询打印")
                expect(phone.locator(".cert", has_text=title)).to_contain_text(number)
                shots(phone, "trainee-certificates")
                phone.get_by_role("button", name="导出学分证书").click()
                assert re.search(r"/certs/exports/\d+$", phone.url), phone.url
                download_link = phone.get_by_role("link", name="下载学分证书（PDF）")
                download_link.wait_for(timeout=180_000)  # the page refreshes itself while the worker renders
                shots(phone, "certificate-export-done")
                with phone.expect_download() as download:
                    download_link.click()
                pdf = shots.folder / "certificate.pdf"
                download.value.save_as(str(pdf))
                assert pdf.read_bytes().startswith(b"%PDF")

                text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                                      check=True).stdout.replace(" ", "")
                for expected in ("继续医学教育学分证书", trainee["name"], title, number, INSTITUTION["name"],
                                 "陕西省继续医学教育委员会"):
                    assert expected in text, (expected, text)
                subprocess.run(["pdftoppm", "-r", "150", "-png", str(pdf), str(shots.folder / "scans" / "certificate")],
                               check=True, timeout=60)
                [verify_url] = decode_qr(*sorted((shots.folder / "scans").glob("certificate*.png")))
                assert verify_url.startswith(f"{base}/certs/verify/"), verify_url
                assert verify_url.rsplit("/", 1)[1] in text  # the certificate number printed next to the QR
                checker = browser.new_context(**PHONE).new_page()  # anyone's phone, not logged in
                r = checker.goto(verify_url)
                assert r is not None and r.status == 200, r and r.status
                expect(checker.locator("#result")).to_have_text("证书有效")
                assert trainee["name"] not in checker.content()  # the public page masks the name
                shots(checker, "certificate-verified")
        except Exception:
            for n, page in enumerate(p for c in browser.contexts for p in c.pages):  # what each screen showed
                with contextlib.suppress(Exception):
                    page.screenshot(path=str(shots.folder / f"FAILED-screen-{n + 1}.png"), full_page=True)
            raise
        finally:
            browser.close()
