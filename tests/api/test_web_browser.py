"""The staff pages end to end in headless Chromium (Debian's ``chromium``, driven by Playwright).

A loan goes through its whole origination in the browser: the officer takes the
application; both investigators, the reviewer, the approver and the signing officer each
sign in, find their task in "my tasks" and complete its form; then the officer reports the
first post-loan check (K-1) and prints the maturity notice, and the auditor exports the
trail. The pages run on a real uvicorn server, against a real Temporal dev server and worker.

Set LOANFLOW_SCREENSHOTS to a folder to keep screenshots of the pages (the README's come
from here).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, expect

from api.services.users import DEV_PASSWORD
from tests.api.conftest import LoanApi, china_today
from tests.samples import application_data

PHONE = {"width": 375, "height": 740}  # an officer's phone in a village
TASK_APPEARS_TRIES = 60


def _screenshot_dir() -> Path | None:
    folder = os.environ.get("LOANFLOW_SCREENSHOTS")
    if not folder:
        return None
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


async def _shoot(page: Page, name: str) -> None:
    folder = _screenshot_dir()
    if folder is not None:
        await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


class Staff:
    """One member of staff at their own browser (their own cookies)."""

    def __init__(self, context: BrowserContext, page: Page, base: str, username: str) -> None:
        self.context, self.page, self.base, self.username = context, page, base, username

    @classmethod
    async def sign_in(
        cls, browser: Browser, base: str, username: str, *, phone: bool = False
    ) -> Staff:
        context = await browser.new_context(
            viewport=PHONE if phone else {"width": 1280, "height": 900}, locale="zh-CN"
        )
        page = await context.new_page()
        await page.goto(f"{base}/ui/tasks")
        await expect(page.locator("h1")).to_have_text("员工登录")
        await page.fill("#username", username)
        await page.fill("#password", DEV_PASSWORD)
        await page.click("button[type=submit]")
        await expect(page.locator("h1")).to_contain_text("我的待办")
        return cls(context, page, base, username)

    async def open_task(self, label: str, loan_id: str) -> None:
        """Finds the task in "my tasks" (the projection may take a moment) and opens it."""
        row = self.page.locator("#my-tasks tr", has_text=loan_id).filter(has_text=label)
        for _ in range(TASK_APPEARS_TRIES):
            if await row.count():
                break
            await asyncio.sleep(0.1)
            await self.page.goto(f"{self.base}/ui/tasks")
        await row.first.get_by_role("link", name=label).click()
        await expect(self.page.locator("h1")).to_contain_text(label)

    async def submit(self, loan_id: str) -> None:
        await self.page.locator("form.step-form button[type=submit]").click()
        await expect(self.page.locator(".flash")).to_have_text(f"已完成：贷款 {loan_id}")

    async def close(self) -> None:
        await self.context.close()


async def _investigate(staff: Staff, loan_id: str) -> None:
    await staff.open_task("贷前调查", loan_id)
    page = staff.page
    for box in (
        "interview_confirmed_by_borrower",
        "materials_genuine",
        "purpose_legal",
        "family_consent_recorded",
    ):
        await page.check(f"input[name={box}]")
    await page.fill("#f-household_assets_and_credit", "砖瓦房一处，存栏生猪40头，无不良记录")
    await page.fill("#f-business_and_cash_flow", "养殖年净收入约6万元，现金流稳定")
    await page.fill("#f-repayment_ability_and_willingness", "还款能力和意愿良好")
    await page.fill("#f-guarantor_assessment", "保证人务工收入稳定")
    await page.select_option("#f-recommendation", "approve")
    await page.fill("#f-amount", "30000")
    await page.fill("#f-term_months", "12")
    await page.fill("#f-annual_rate", "7.2")
    await _shoot(page, "task-investigation")
    await staff.submit(loan_id)


async def _apply(staff: Staff) -> str:
    """The officer takes the household's application on the 借款申请 page."""
    page = staff.page
    await page.get_by_role("link", name="新建申请").click()
    data = application_data(china_today())
    fields = {
        **{f"applicant.{k}": v for k, v in data["applicant"].items()},
        **{f"guarantors.0.{k}": v for k, v in data["guarantors"][0].items()},
        "household_annual_income": data["household_annual_income"],
        "amount": data["amount"],
        "term_months": str(data["term_months"]),
        "credit_rating.score": "85",
    }
    for name, value in fields.items():
        field = page.locator(f"[name='{name}']")
        if isinstance(value, bool):
            await (field.check() if value else field.uncheck())
        else:
            await field.fill(str(value))
    for name in ("purpose", "repayment_method", "guarantee_type"):
        await page.select_option(f"[name='{name}']", data[name])
    for material in data["materials"]:
        await page.check(f"input[name=materials][value={material}]")
    await page.locator("form.step-form button[type=submit]").click()
    await expect(page.locator(".flash")).to_contain_text("已受理：贷款 LN")
    flash = await page.locator(".flash").inner_text()
    return flash.removeprefix("已受理：贷款 ").split("，")[0]


async def test_a_loan_from_application_to_its_first_check_in_the_browser(
    browser: Browser, live_url: str, loan_api: LoanApi
) -> None:
    # I-1: the officer takes the application, then two officers investigate, each from
    # their own inbox.
    officer = await Staff.sign_in(browser, live_url, "officer1")
    loan_id = await _apply(officer)
    await loan_api.wait_for_stage(loan_id, "investigation")
    await officer.close()
    for username in ("officer1", "officer2"):
        officer = await Staff.sign_in(browser, live_url, username)
        if username == "officer1":
            await _shoot(officer.page, "inbox")
        await _investigate(officer, loan_id)
        await officer.close()

    # The next person sees theirs: the reviewer.
    reviewer = await Staff.sign_in(browser, live_url, "reviewer1")
    await reviewer.open_task("审查", loan_id)
    await expect(reviewer.page.locator("body")).to_contain_text("调查报告 · officer1")
    await reviewer.page.select_option("#f-outcome", "forward")
    await reviewer.page.fill("#f-comment", "材料齐全，同意上报")
    await reviewer.submit(loan_id)
    await reviewer.close()

    # A refused decision stays on the page with its rule; then the approval.
    approver = await Staff.sign_in(browser, live_url, "approver1")
    await approver.open_task("审批", loan_id)
    await approver.page.select_option("#f-outcome", "approve")
    await approver.page.fill("#f-amount", "30000")
    await approver.page.locator("form.step-form button[type=submit]").click()
    await expect(approver.page.locator(".refusal").first).to_contain_text("annual_rate")
    await approver.page.fill("#f-term_months", "12")
    await approver.page.fill("#f-annual_rate", "7.2")
    await approver.submit(loan_id)
    await approver.close()

    # C-1: the officer confirms the signing; the loan is paid out.
    officer = await Staff.sign_in(browser, live_url, "officer1")
    await officer.open_task("签约确认", loan_id)
    await officer.page.fill("#f-contract_number", "HT-2026-0001")
    await officer.page.fill("#f-signed_on", china_today().isoformat())
    await officer.page.check("input[name=guarantee_contracts_signed]")
    await officer.submit(loan_id)
    await loan_api.wait_for_stage(loan_id, "repaying")

    # K-1: the first check of a production loan, reported from the officer's inbox.
    await officer.open_task("贷后检查", loan_id)
    page = officer.page
    for box in ("purpose_kept", "business_normal", "contact_details_current"):
        await page.check(f"input[name={box}]")
    await page.fill("#f-household_income", "生猪出栏正常，年收入约12万元")
    await page.fill("#f-health", "良好")
    await page.fill("#f-marriage", "已婚")
    await _shoot(page, "task-inspection")
    await officer.submit(loan_id)
    await page.goto(f"{live_url}/ui/loans/{loan_id}")
    await expect(page.locator("h1")).to_have_text(f"贷款 {loan_id}")
    await expect(page.locator("body")).to_contain_text("还款计划")

    # P-3: the officer prints the maturity notice (贷款到期通知书) from the loan page.
    await page.select_option("#issue-notice select[name=kind]", "maturity_notice")
    await page.click("#issue-notice button[type=submit]")
    await expect(page.locator("body")).to_contain_text("贷款到期通知书")
    await expect(page.locator("body")).to_contain_text("回执")
    assert "13812345678" not in await page.content()
    await _shoot(page, "notice")
    await page.goto(f"{live_url}/ui/loans/{loan_id}")
    await expect(page.locator("#notice-list")).to_contain_text("待收回")
    await officer.close()

    detail = (await loan_api.get("officer1", f"/loans/{loan_id}")).json()
    assert detail["workflow"]["stage"] == "repaying"
    steps = [s["step"] for s in detail["workflow"]["steps"]]
    assert {"review", "decision", "signing"} <= set(steps)
    trail = (await loan_api.get("auditor1", f"/loans/{loan_id}/audit")).json()
    by_step = {e["step"]: e["actor"] for e in trail if e["kind"] == "human_step"}
    assert by_step["review_loan"] == "reviewer1"
    assert by_step["decide_loan"] == "approver1"
    assert by_step["report_inspection"] == "officer1"

    # The auditor reads the loan and exports the trail (H-2).
    auditor = await Staff.sign_in(browser, live_url, "auditor1")
    await auditor.page.goto(f"{live_url}/ui/loans/{loan_id}")
    await expect(auditor.page.locator("#audit")).to_contain_text("decide_loan")
    await _shoot(auditor.page, "loan")
    async with auditor.page.expect_download() as download:
        await auditor.page.get_by_role("link", name="导出 CSV").click()
    exported = Path(await (await download.value).path()).read_text(encoding="utf-8")
    assert "report_inspection" in exported and "approver1" in exported
    await auditor.close()


async def test_the_inbox_fits_a_phone_screen(
    browser: Browser, live_url: str, loan_api: LoanApi
) -> None:
    loan_id = await loan_api.apply()
    await loan_api.wait_for_stage(loan_id, "investigation")
    officer = await Staff.sign_in(browser, live_url, "officer1", phone=True)
    await officer.open_task("贷前调查", loan_id)
    await officer.page.goto(f"{live_url}/ui/tasks")
    # Rows become cards: no header row, nothing wider than the screen.
    await expect(officer.page.locator("#my-tasks thead")).to_be_hidden()
    overflow = await officer.page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await _shoot(officer.page, "inbox-phone")
    await officer.open_task("贷前调查", loan_id)
    overflow = await officer.page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await officer.close()
