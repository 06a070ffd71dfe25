"""Canary personal data never reaches a page, a copy, a CSV, a print view or the server's log.

The canary values are planted in the raw events (see ``canary``); everything support can reach
for that customer is opened here, in a real browser, before the server's log is read.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser import canary
from tests.browser.conftest import SupportServer

pytestmark = pytest.mark.browser

PAGES = (
    f"/support/traces/{canary.TRACE_ID}",
    f"/support/customers/{canary.CUSTOMER_ID}",
    f"/support/customers/{canary.CUSTOMER_ID}?lane=customer",
    f"/support/jobs/{canary.JOB_ID}",
)


def _search(page: Page, text: str) -> None:
    page.goto("/support")
    page.get_by_label("Trace, customer, job, order, workspace or request ID").fill(text)
    page.get_by_role("button", name="Search").click()


def test_when_everything_about_the_canary_customer_is_opened_then_no_canary_leaks(
    page: Page, support_server: SupportServer
) -> None:
    seen: dict[str, str] = {}
    for path in PAGES:
        page.goto(path)
        seen[path] = page.content()
        # The masked forms are there: support can still confirm the record.
        if "traces" in path:
            assert "z******.q" in seen[path]

    _search(page, canary.EMAIL)  # one customer used it: their page opens
    expect(page.get_by_role("heading", name=f"Customer {canary.CUSTOMER_ID}")).to_be_visible()
    seen["lookup result"] = page.content()

    page.goto(PAGES[0])
    page.get_by_role("button", name="Copy summary").click()
    expect(page.get_by_role("status")).to_have_text("Summary copied")
    seen["copied summary"] = page.evaluate("navigator.clipboard.readText()")

    with page.expect_download() as download:
        page.goto(PAGES[1])
        page.get_by_role("link", name="Download CSV").click()
    seen["csv"] = download.value.path().read_bytes().decode("utf-8")

    for path, text in seen.items():
        assert canary.leaks(text) == [], path
    # The job page tells what happened without the values: reasons, codes, masks.
    assert "Mailbox does not exist" in seen[PAGES[3]] or "SMTP_550" in seen[PAGES[3]]


def test_when_the_trace_page_is_printed_then_it_shows_the_redacted_story_and_no_controls(
    page: Page,
) -> None:
    page.goto(f"/support/traces/{canary.TRACE_ID}")
    page.emulate_media(media="print")
    printed = page.locator("body").inner_text()
    assert canary.leaks(printed) == []
    assert canary.TRACE_ID in printed and "Support can act" in printed
    assert "z******.q" in printed
    for hidden in ("Copy summary", "Sign out"):
        expect(page.get_by_role("button", name=hidden)).to_be_hidden()
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    expect(page.locator("#summary-text")).to_be_visible()
    # A printout passed around still says what it is.
    expect(page.locator("footer.foot")).to_contain_text("redacted data")


def test_when_the_server_log_is_read_after_all_views_then_it_holds_no_canary(
    page: Page, support_server: SupportServer
) -> None:
    # Exercise every route that touches the canary (again) so this test stands on its own.
    for path in PAGES:
        page.goto(path)
    _search(page, canary.EMAIL)
    _search(page, canary.PHONE)
    # One match opens its record; a number nobody used shows the result page by its id.
    _search(page, "+1 415 555 0100")
    export = page.request.get(f"/support/customers/{canary.CUSTOMER_ID}.csv")
    assert export.ok and canary.leaks(export.text()) == []
    logs = support_server.logs()
    # The capture works: the page views themselves are in the log ...
    assert re.search(rf"GET /support/traces/{canary.TRACE_ID}\S* HTTP/1.1\" 200", logs)
    assert '"POST /support/search HTTP/1.1" 303' in logs  # then the result page by its id
    assert re.search(r'"GET /support/search\?r=[\w-]+ HTTP/1.1" 200', logs)
    # ... and nothing the customer typed or the services sent is.
    assert canary.leaks(logs) == []
    assert canary.EMAIL.lower() not in logs.lower()
