"""The trace API answers "is this for support or for engineering?" like the trace page does:
the same escalation rule decides both, and every hint shown is counted by rule and owner."""

from __future__ import annotations

import html

import pytest

from tests.api.conftest import SUPPORT, Api, recent, signup_events

BOUNCED, NEVER_STARTED = "tr_escalate_bounce", "tr_escalate_nojob"


@pytest.fixture(scope="module", autouse=True)
def _loaded(api: Api) -> None:
    events = signup_events(BOUNCED, "c_esc_1", "job_esc_1", recent())
    # A signup that names its email job, which never sent a single event.
    events += signup_events(NEVER_STARTED, "c_esc_2", "job_esc_2", recent(), email_job=False)
    response = api.post_events(events)
    assert response.status_code == 202 and response.json()["rejected"] == 0


@pytest.mark.parametrize(
    ("trace_id", "owner", "rule_id", "headline", "next_step"),
    [
        (
            BOUNCED,
            "support",
            "email_bounced",
            "Support can act",
            "Ask the customer to check the address, then resend.",
        ),
        (
            NEVER_STARTED,
            "engineering",
            "job_never_started",
            "Engineering should take over",
            "Hand the trace ID to engineering",
        ),
    ],
)
def test_when_a_trace_is_read_then_it_says_who_acts_next_as_its_page_does(
    api: Api, trace_id: str, owner: str, rule_id: str, headline: str, next_step: str
) -> None:
    escalation = api.get(f"/v1/traces/{trace_id}").json()["escalation"]
    assert (escalation["owner"], escalation["rule_id"], escalation["headline"]) == (
        owner,
        rule_id,
        headline,
    )
    assert escalation["next_step"].startswith(next_step)
    api.client.cookies.clear()
    assert api.client.post("/support/login", data={"token": SUPPORT, "next": "/support"}).is_success
    try:
        page = html.unescape(api.client.get(f"/support/traces/{trace_id}").text)
    finally:
        api.client.cookies.clear()
    assert escalation["reason"] in page and escalation["next_step"] in page


def test_every_hint_shown_is_counted_by_rule_and_owner(api: Api) -> None:
    def shown() -> float:
        for line in api.client.get("/metrics").text.splitlines():
            if (
                line.startswith("safetrail_escalation_hints_total{")
                and 'rule="email_bounced"' in line
            ):
                assert 'owner="support"' in line
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = shown()
    api.get(f"/v1/traces/{BOUNCED}")
    api.get(f"/v1/traces/{BOUNCED}")
    assert shown() == before + 2
