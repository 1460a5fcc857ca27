"""/docs and /redoc on a cooperative's intranet: everything they load comes from the API.

Headless Chromium opens each page with every request to another host refused, as a
network with no way out would, and finds the API's operations listed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI
from playwright.async_api import Browser, Page, Route, expect

# Redoc's attribution footer shows the vendor's logo from its site; refused, it is not shown.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
LOADING = 60_000  # ms: the bundles are large and this machine has two cores


async def _only_the_api(page: Page, base: str) -> list[str]:
    """Refuses every request to another host; the list fills with what was refused."""
    refused: list[str] = []
    host = urlsplit(base).netloc

    async def handle(route: Route) -> None:
        if urlsplit(route.request.url).netloc == host:
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort()

    await page.route("**/*", handle)
    return refused


def _operation_ids(app: FastAPI) -> list[str]:
    """Every operation in the OpenAPI document."""
    return [op["operationId"] for item in app.openapi()["paths"].values() for op in item.values()]


async def test_swagger_ui_lists_every_operation_with_no_other_host(
    browser: Browser, live_url: str, app: FastAPI
) -> None:
    page = await browser.new_page()
    refused = await _only_the_api(page, live_url)
    await page.goto(f"{live_url}/docs")
    operations = _operation_ids(app)
    await expect(page.locator(".opblock")).to_have_count(len(operations), timeout=LOADING)
    decision = page.locator(".opblock-post", has_text="/loans/{loan_id}/decision")
    await expect(decision.locator(".opblock-summary-method")).to_have_text("POST")
    await expect(page.locator(".opblock-summary-path").first).to_be_visible()
    assert refused == []


async def test_redoc_lists_every_operation_with_no_other_host(
    browser: Browser, live_url: str, app: FastAPI
) -> None:
    page = await browser.new_page()
    refused = await _only_the_api(page, live_url)
    await page.goto(f"{live_url}/redoc")
    await expect(page.get_by_role("heading", name="loanflow (0.1.0)")).to_be_visible(
        timeout=LOADING
    )
    operations = _operation_ids(app)
    headings = page.locator("h2 a[href*='/operation/']")
    await expect(headings).to_have_count(len(operations))
    for operation in operations:
        await expect(page.locator(f"h2 a[href$='/operation/{operation}']")).to_be_attached()
    await expect(page.locator("h2", has_text="Decide Loan")).to_be_visible()
    assert set(refused) <= {REDOC_LOGO}
