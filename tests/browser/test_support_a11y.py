"""Accessibility basics on every support page: labels, heading order, status in words."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page

from tests.browser import canary
from tests.browser.conftest import SupportServer, sign_in

pytestmark = pytest.mark.browser

# Returns the problems found on the page, in words (an empty list when all is well).
_AUDIT = """() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push("html has no lang");
  if (!document.title.trim()) problems.push("page has no title");
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    const named = (el.labels && el.labels.length) || el.getAttribute("aria-label");
    if (!named) problems.push(`unlabelled ${el.tagName.toLowerCase()} ${el.name}`);
  }
  for (const el of document.querySelectorAll("button, a")) {
    if (!el.hidden && !el.textContent.trim() && !el.getAttribute("aria-label"))
      problems.push(`control without a name: ${el.outerHTML.slice(0, 80)}`);
  }
  const levels = [...document.querySelectorAll("h1,h2,h3,h4,h5,h6")].map(h => +h.tagName[1]);
  if (levels.filter(l => l === 1).length !== 1) problems.push(`h1 count ${levels.join(",")}`);
  levels.forEach((l, i) => {
    if (i && l > levels[i - 1] + 1) problems.push(`heading skips ${levels[i - 1]}->${l}`);
  });
  if (levels[0] !== 1) problems.push("first heading is not h1");
  for (const el of document.querySelectorAll(".status, .lane"))
    if (!el.textContent.trim()) problems.push("status or lane shown by colour only");
  for (const th of document.querySelectorAll("thead th"))
    if (th.getAttribute("scope") !== "col") problems.push("table header without scope");
  if (!document.querySelector("main")) problems.push("no main landmark");
  return problems;
}"""


def _pages(server: SupportServer) -> list[str]:
    stuck = server.traffic.highlights["import stuck in running"]
    never = server.traffic.highlights["signup whose email job never started"]
    missing_job = next(
        e["subject"]["job_id"]
        for e in server.traffic.events
        if e["trace_id"] == never and "job_id" in e.get("subject", {})
    )
    return [
        "/support",
        "/support/guide",
        f"/support/traces/{canary.TRACE_ID}",
        f"/support/traces/{stuck}",
        f"/support/customers/{canary.CUSTOMER_ID}",
        f"/support/jobs/{canary.JOB_ID}",
        f"/support/jobs/{missing_job}",  # a job that never started
        "/support/traces/tr_doesnotexist00",
    ]


def test_when_each_support_page_is_audited_then_it_meets_the_basics(
    page: Page, support_server: SupportServer
) -> None:
    for path in _pages(support_server):
        page.goto(path)
        assert page.evaluate(_AUDIT) == [], path


def test_when_the_admin_and_sign_in_pages_are_audited_then_they_meet_the_basics(
    browser: Browser, support_server: SupportServer
) -> None:
    ctx = browser.new_context(base_url=support_server.base_url)
    page = ctx.new_page()
    page.goto("/support/login")
    assert page.evaluate(_AUDIT) == []
    sign_in(page, "demo-admin-token")
    page.goto("/support/admin/access-log")
    assert page.evaluate(_AUDIT) == []
    ctx.close()


def test_when_rows_are_customer_or_system_then_a_text_badge_says_so(page: Page) -> None:
    page.goto(f"/support/traces/{canary.TRACE_ID}")
    rows = page.locator("table:has(caption:text('Events of trace')) tbody tr")
    badges = [rows.nth(i).locator(".lane").inner_text().strip() for i in range(rows.count())]
    assert badges[0].lower() == "customer" and {b.lower() for b in badges[1:]} == {"system"}
    # Every status is written out; colour only repeats it.
    statuses = page.locator(".status").all_inner_texts()
    assert statuses and all(s.strip() for s in statuses)


def test_when_tabbing_from_the_top_then_the_skip_link_comes_first(page: Page) -> None:
    page.goto(f"/support/traces/{canary.TRACE_ID}")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
