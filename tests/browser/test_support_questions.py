"""From the trace page alone, the five questions support asks get the right answers.

Each case is a known trace with a known story; the test reads only what the browser shows on
the trace page (the "At a glance" answers, the escalation box and the step list) and checks
them against that story.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest
from playwright.sync_api import Page

from tests.browser import canary
from tests.browser.conftest import SupportServer

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class Story:
    """What really happened in a trace, as support should read it."""

    finished: str  # "Yes" / "No": did the customer finish the action
    job_state: str  # first word of the job's state
    sent: str  # "Yes" / "No" / "Not yet": did the system send it
    retries: int | None  # retries shown, None when the job never ran
    owner: str  # "Support can act" / "Engineering should take over"
    next_step: str  # words the next step must contain


STORIES = {
    # the seed's case: one retry, then the provider bounced the address
    "seed": Story("Yes", "Failed", "No", 1, "Support can act", "check the address, then resend"),
    # the email job timed out twice, then went out on the third attempt
    "signup email timed out, retried, then sent": Story(
        "Yes", "Done", "Yes", 2, "Support can act", "went through"
    ),
    # the request finished but its email job has no events at all
    "signup whose email job never started": Story(
        "Yes", "Job not found", "No", None, "Engineering should take over", "engineering"
    ),
    # an import that stopped reporting progress hours ago
    "import stuck in running": Story(
        "Yes", "Stuck", "Not yet", 0, "Engineering should take over", "engineering"
    ),
    # the card was declined on every retry, then the charge failed for good
    "payment retry finally failed": Story(
        "Yes", "Failed", "No", 2, "Support can act", "another card"
    ),
}


def _first_event_at(server: SupportServer, trace_id: str) -> datetime:
    if trace_id == canary.TRACE_ID:
        events = canary.seed_case(server.loaded_at)
    else:
        events = [e for e in server.traffic.events if e["trace_id"] == trace_id]
    first: datetime = min(e["occurred_at"] for e in events)
    return first


@pytest.mark.parametrize("case", list(STORIES))
def test_when_support_reads_the_trace_page_then_the_five_questions_are_answered(
    page: Page, support_server: SupportServer, case: str
) -> None:
    story = STORIES[case]
    trace_id = canary.TRACE_ID if case == "seed" else support_server.traffic.highlights[case]
    page.goto(f"/support/traces/{trace_id}")
    terms = page.locator("#glance dt").all_inner_texts()
    answers = dict(zip(terms, page.locator("#glance dd").all_inner_texts(), strict=True))
    assert len(answers) == 5

    # 1. Did the user finish the action?
    assert answers["Did the customer finish the action?"].startswith(story.finished + ":")
    # 2. What state is the job in?
    assert answers["What state is the job in now?"].startswith(story.job_state)
    # 3. Did the system send it / retry it? The answer agrees with the job's attempt rows.
    sent = answers["Did the system send it or retry?"]
    assert sent.startswith(story.sent + ":")
    if story.retries is None:
        assert "never ran" in sent
    else:
        retried = f"retried {story.retries} time" if story.retries else "no retry"
        assert retried in sent
        job_rows = page.locator("#steps li.step-job tbody tr")
        assert job_rows.count() == story.retries + 1
        assert job_rows.filter(has_text="(retry)").count() == story.retries
    # 4. When did it start? To the second, in UTC.
    started = _first_event_at(support_server, trace_id).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert answers["When did it start?"] == started
    assert page.locator(".statusbar").inner_text().count(started) >= 1
    # 5. Support or engineering? The box at the top says the same as the answer.
    owner = answers["Support or engineering?"]
    assert owner.startswith(story.owner) and story.next_step in owner
    assert page.locator("#escalation h2").inner_text() == story.owner
