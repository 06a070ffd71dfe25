"""A support agent's path through the page in a real browser: search, trace, copy, customer, CSV.

Also the lookup by what the customer said, its rate limit and audit entry, and sign-in.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from datetime import timedelta

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser import canary
from tests.browser.conftest import (
    ADMIN_TOKEN,
    ARTIFACTS,
    LIMITED_TOKEN,
    LOOKUPS_PER_MINUTE,
    REPO,
    SERVICE_TOKEN,
    SupportServer,
    sign_in,
)

pytestmark = pytest.mark.browser


# The rows of a customer's timeline (the page also lists the customer's latest traces).
_TIMELINE_ROWS = "table:has(caption:text('Timeline of customer')) tbody tr"


def _search(page: Page, text: str) -> None:
    page.goto("/support")
    page.get_by_label("Trace, customer, job, order, workspace or request ID").fill(text)
    page.get_by_role("button", name="Search").click()


def _save_screenshot(page: Page) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "trace_page.png"
    page.screenshot(path=str(shot), full_page=True)
    docs = REPO / "docs" / "img" / "trace_page.png"
    # The README picture is refreshed on request only, so a test run never dirties the tree.
    if not docs.exists() or os.environ.get("SAFETRAIL_UPDATE_SCREENSHOTS") == "1":
        docs.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, docs)


def test_when_support_follows_a_case_then_search_trace_copy_customer_and_csv_agree(
    page: Page, support_server: SupportServer
) -> None:
    _search(page, canary.TRACE_ID)
    page.wait_for_url(f"**/support/traces/{canary.TRACE_ID}")
    expect(page.locator("#trace-status")).to_contain_text("Failed")
    expect(page.locator("#escalation")).to_contain_text("Support can act")
    _save_screenshot(page)

    # The copied summary is exactly the API's summary.txt (same redacted facts).
    page.get_by_role("button", name="Copy summary").click()
    expect(page.get_by_role("status")).to_have_text("Summary copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    api_text = support_server.api(f"/v1/traces/{canary.TRACE_ID}/summary.txt").text
    assert copied == api_text
    assert "Email: z" in copied and "@leaky-mail.example" in copied
    page.get_by_role("button", name="Copy trace ID").click()
    expect(page.get_by_role("status")).to_have_text("Trace ID copied")
    assert page.evaluate("navigator.clipboard.readText()") == canary.TRACE_ID

    # On to the customer: the timeline, then only system work, then the CSV of that view.
    page.locator(".statusbar").get_by_role("link", name=canary.CUSTOMER_ID).click()
    page.wait_for_url(f"**/support/customers/{canary.CUSTOMER_ID}")
    latest = page.locator("table:has(caption:text('latest trace')) tbody tr")
    expect(latest).to_have_count(1)  # the customer's one trace, on top, with its errors
    expect(latest).to_contain_text(canary.TRACE_ID)
    expect(page.locator("ul.problems")).to_contain_text("SMTP_550")
    rows = page.locator(_TIMELINE_ROWS)
    expect(rows).to_have_count(6)
    expect(page.locator(f"{_TIMELINE_ROWS}.row-customer")).to_have_count(1)
    page.get_by_label("Who").select_option(label="System work")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**lane=system**")
    expect(rows).to_have_count(5)
    for badge in page.locator(f"{_TIMELINE_ROWS} td:nth-child(2)").all_inner_texts():
        assert badge.strip().lower() == "system"
    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV").click()
    text = info.value.path().read_bytes().decode("utf-8")
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["lane"] for r in table] == ["system"] * 5
    assert [r["label"] for r in table][-1] == "Signup email bounced"
    assert any("z******.q" in r["fields"] for r in table)
    assert canary.leaks(text) == []
    api_csv = support_server.api(
        f"/v1/customers/{canary.CUSTOMER_ID}/timeline.csv?lane=system"
    ).text
    assert text == api_csv


@pytest.mark.parametrize(
    "typed",
    [
        # the address as the customer wrote it in the ticket, different capitals
        "Zebulon.Quillfeather7@Leaky-Mail.example",
        # the phone number in local punctuation
        "+1 (415) 555-0199",
    ],
)
def test_when_support_types_what_the_customer_gave_then_the_customer_is_found_unechoed(
    page: Page, support_server: SupportServer, typed: str
) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url + " " + (r.post_data or "")))
    _search(page, typed)
    # One customer used it: their page opens (a list of one would only cost a click).
    page.wait_for_url(f"**/support/customers/{canary.CUSTOMER_ID}")
    expect(page.get_by_role("heading", name=f"Customer {canary.CUSTOMER_ID}")).to_be_visible()
    html = page.content()
    assert typed not in html and canary.leaks(html) == []
    # Sent in a POST body only: never in a URL, where logs and history would keep it.
    assert all(typed not in u.split(" ")[0] for u in requests)
    # The page opened is a GET: Back returns to the search box without resubmitting.
    page.go_back()
    box = page.get_by_label("Trace, customer, job, order, workspace or request ID")
    assert box.input_value() == ""
    # The browser must not keep what was typed in its form history (autofill leaks).
    assert box.get_attribute("autocomplete") == "off"

    entries = support_server.api(
        "/v1/access-log?record_kind=customer_lookup&actor=ana.support", ADMIN_TOKEN
    ).json()["data"]
    assert any(canary.CUSTOMER_ID in e["record_id"] for e in entries)
    assert all(e["route"] == "/support/search" for e in entries)
    raw_log = support_server.api("/v1/access-log?limit=500", ADMIN_TOKEN).text
    assert typed not in raw_log and canary.leaks(raw_log) == []


def test_when_lookups_exceed_the_per_user_limit_then_further_lookups_are_refused(
    context: BrowserContext,
) -> None:
    page = context.new_page()
    sign_in(page, LIMITED_TOKEN)
    for n in range(LOOKUPS_PER_MINUTE):
        _search(page, f"nobody{n}@example.org")
        expect(page.get_by_role("status")).to_contain_text("No customer used")
    _search(page, canary.EMAIL)
    refusal = f"{LOOKUPS_PER_MINUTE} email or phone lookups"
    expect(page.get_by_role("alert")).to_contain_text(refusal)
    expect(page.get_by_role("link", name=f"Customer {canary.CUSTOMER_ID}")).to_have_count(0)
    # Other kinds of search are not lookups and still work.
    _search(page, canary.CUSTOMER_ID)
    page.wait_for_url(f"**/support/customers/{canary.CUSTOMER_ID}")


def test_when_signed_out_or_wrong_token_then_no_page_is_shown(
    browser: Browser, support_server: SupportServer
) -> None:
    ctx = browser.new_context(base_url=support_server.base_url)
    page = ctx.new_page()
    page.goto(f"/support/traces/{canary.TRACE_ID}")
    assert "/support/login" in page.url
    for token in ("not-a-token", SERVICE_TOKEN):
        page.get_by_label("Access token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("not valid")
    # A right token returns to the page that was asked for.
    page.get_by_label("Access token").fill("demo-support-token")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/support/traces/{canary.TRACE_ID}")
    (cookie,) = ctx.cookies()
    assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
    assert "demo-support-token" not in cookie["value"]
    assert page.evaluate("document.cookie") == ""
    # Support may not open the access log.
    page.goto("/support/admin/access-log")
    expect(page.get_by_role("heading", level=1)).to_have_text("Admins only")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/support/login")
    page.goto("/support")
    assert "/support/login" in page.url
    ctx.close()


def test_when_a_foreign_site_posts_the_forms_then_they_are_refused(
    support_server: SupportServer,
) -> None:
    foreign = {"Origin": "https://attacker.example"}
    login = httpx.post(
        support_server.base_url + "/support/login",
        data={"token": "demo-support-token"},
        headers=foreign,
    )
    assert login.status_code == 403 and "set-cookie" not in login.headers


def test_when_javascript_is_off_then_the_page_still_works_without_copy_buttons(
    browser: Browser, support_server: SupportServer
) -> None:
    ctx = browser.new_context(base_url=support_server.base_url, java_script_enabled=False)
    page = ctx.new_page()
    sign_in(page)
    _search(page, canary.TRACE_ID)
    page.wait_for_url(f"**/support/traces/{canary.TRACE_ID}")
    expect(page.locator("#summary-text")).to_contain_text(f"Trace: {canary.TRACE_ID}")
    expect(page.get_by_role("button", name="Copy summary")).to_be_hidden()
    ctx.close()


def test_when_an_admin_opens_the_access_log_then_page_views_are_listed_like_api_reads(
    page: Page, admin_page: Page
) -> None:
    page.goto(f"/support/jobs/{canary.JOB_ID}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(canary.JOB_ID)
    admin_page.goto("/support/admin/access-log")
    admin_page.get_by_label("Who (user name)").fill("ana.support")
    admin_page.get_by_label("Kind of record").select_option("job")
    admin_page.get_by_role("button", name="Show").click()
    rows = admin_page.locator("tbody tr", has_text=canary.JOB_ID)
    expect(rows.first).to_contain_text("/support/jobs/{job_id}")
    expect(rows.first).to_contain_text("ana.support")
    # The admin's own reading of the log is itself in the log.
    admin_page.get_by_label("Who (user name)").fill("ada.admin")
    admin_page.get_by_label("Kind of record").select_option("access_log")
    admin_page.get_by_role("button", name="Show").click()
    # Oldest first, and API reads of the log by other tests may come before it.
    own = admin_page.locator("tbody tr", has_text="/support/admin/access-log")
    expect(own.first).to_contain_text("ada.admin")


def test_when_a_time_range_is_chosen_then_only_events_inside_it_are_listed_and_exported(
    page: Page, support_server: SupportServer
) -> None:
    events = canary.seed_case(support_server.loaded_at)
    # From the first whole minute after the third minute: only the retry and the bounce.
    start = (events[0]["occurred_at"] + timedelta(minutes=4)).replace(second=0)
    page.goto(f"/support/customers/{canary.CUSTOMER_ID}")
    page.get_by_label("From (UTC)").fill(start.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**since=**")
    expect(page.locator(_TIMELINE_ROWS)).to_have_count(2)
    expect(page.locator(_TIMELINE_ROWS).last).to_contain_text("Signup email bounced")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(info.value.path().read_bytes().decode("utf-8"))))
    assert [r["type"] for r in rows] == ["signup_email.retry", "signup_email.bounced"]
    # A range that ends before it starts is explained, not answered with an error code.
    page.get_by_label("Until (UTC, not included)").fill(
        (start - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    )
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("alert")).to_contain_text("'Until' must be later than 'From'")


def test_when_an_overlong_or_odd_value_is_searched_then_a_plain_page_explains(
    page: Page,
) -> None:
    for typed, marker in (("x" * 300, "x" * 300), ("<b>maria</b>", "maria")):
        _search(page, typed)
        expect(page.get_by_role("alert")).to_contain_text("is not a trace, customer, job")
        assert marker not in page.content()


def test_when_a_job_never_started_then_its_page_says_job_not_found_not_blank(
    page: Page, support_server: SupportServer
) -> None:
    trace_id = support_server.traffic.highlights["signup whose email job never started"]
    page.goto(f"/support/traces/{trace_id}")
    step = page.locator("#steps li.step-job")
    expect(step).to_contain_text("Job not found")
    step.get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Job")
    expect(page.locator(".statusbar")).to_contain_text("Job not found")


def test_when_support_opens_a_job_then_its_history_has_no_column_repeating_the_page(
    page: Page,
) -> None:
    page.goto(f"/support/jobs/{canary.JOB_ID}")
    table = page.locator("table:has(caption:text('Events naming job'))")
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    # One job of one trace: both are named at the top, so the rows leave room for the details.
    assert "Job" not in headers and "Trace" not in headers, headers
    assert headers[-1] == "Details (masked)"
    expect(page.locator(".statusbar")).to_contain_text(canary.TRACE_ID)
