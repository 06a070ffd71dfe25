"""Adversarial review of the answers a trace and job page give: event sequences real services
produce (clocks a second or two apart, re-runs, two jobs in one trace, status words outside
the usual set, re-sent events, long traces) against what support would read in the events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ingest.schema import Lane, TimelineEvent
from projectors.rows import TraceIndexRow
from query_api.chain import build_chain, build_job_history
from query_api.models import StepKind, StepState, TraceChain, TraceStatus
from query_api.pages_view import escalation_hint, glance, trace_facts
from query_api.summary import render_summary_text
from redaction_rules.escalation import EscalationHint, load_escalation_rules
from tests.store_fixtures import make_event

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=400)
LIMIT = timedelta(minutes=30)
T0 = NOW - timedelta(hours=2)
S, M, MS = timedelta(seconds=1), timedelta(minutes=1), timedelta(milliseconds=1)
RULES = load_escalation_rules()


def ev(n: int, type_: str, offset: timedelta, **extra: Any) -> TimelineEvent:
    return make_event(f"ev_{n:02d}", trace_id="tr_rev", type_=type_, at=T0 + offset, **extra)


def of_job(job_id: str = "job_a") -> dict[str, Any]:
    return {"lane": Lane.SYSTEM, "job_id": job_id, "customer_id": "48291"}


def signup(job_id: str = "job_a") -> TimelineEvent:
    return ev(
        0,
        "signup.submitted",
        0 * S,
        lane=Lane.CUSTOMER,
        status="done",
        job_id=job_id,
        request_id="req_1",
        customer_id="48291",
    )


def read(events: list[TimelineEvent], index: list[TraceIndexRow] | None = None) -> TraceChain:
    return build_chain(events, index or [], NOW, RETENTION, stuck_after=LIMIT)


def hint_of(chain: TraceChain) -> EscalationHint:
    return escalation_hint(chain, RULES, NOW, LIMIT)


def answers(chain: TraceChain) -> list[str]:
    return [a.answer for a in glance(chain, hint_of(chain))]


def job_of(chain: TraceChain, job_id: str = "job_a") -> Any:
    return next(s for s in chain.steps if s.kind is StepKind.JOB and s.job_id == job_id)


def test_when_a_late_failure_of_attempt_1_sorts_after_attempt_2_was_sent_then_the_job_is_done() -> (
    None
):
    # The API stamps "attempt 1 failed"; the worker, 2 s behind, stamps the retry that went
    # out. Support was told the email failed and engineering should look at the provider.
    events = [
        signup(),
        ev(1, "signup_email.queued", 1 * S, status="queued", **of_job()),
        ev(2, "signup_email.started", 2 * S, status="running", attempt=1, **of_job()),
        ev(
            3,
            "signup_email.failed",
            10 * S,
            status="failed",
            attempt=1,
            error_code="PROVIDER_TIMEOUT",
            reason="Email provider timeout",
            **of_job(),
        ),
        ev(4, "signup_email.started", 9 * S, status="running", attempt=2, **of_job()),
        ev(5, "signup_email.sent", 9500 * MS, status="done", attempt=2, **of_job()),
    ]
    chain = read(events)
    job = job_of(chain)
    assert (job.state, job.attempts, job.retries, job.error_code) == (StepState.DONE, 2, 1, None)
    first, second = job.attempt_history
    assert (first.state, first.error_code, first.finished_at) == (
        StepState.FAILED,
        "PROVIDER_TIMEOUT",
        T0 + 10 * S,
    )
    assert second.state is StepState.DONE
    assert chain.summary.status is TraceStatus.DONE
    assert not any(s.kind is StepKind.ERROR for s in chain.steps)
    assert hint_of(chain).rule_id == "finished"
    history = build_job_history("job_a", events, [], NOW, RETENTION, stuck_after=LIMIT)
    assert history is not None and history.step.state is StepState.DONE


def test_when_a_late_failure_of_attempt_1_sorts_after_attempt_2_began_then_the_job_is_running() -> (
    None
):
    # Read a minute after the retry began: it was "failed, the provider kept failing" while
    # the retry was still going.
    events = [
        ev(1, "signup_email.started", 2 * S, status="running", attempt=1, **of_job()),
        ev(2, "signup_email.failed", 10 * S, status="failed", attempt=1, **of_job()),
        ev(3, "signup_email.started", 9 * S, status="running", attempt=2, **of_job()),
    ]
    chain = build_chain(events, [], T0 + 1 * M, RETENTION, stuck_after=LIMIT)
    assert job_of(chain).state is StepState.RUNNING
    assert chain.summary.status is TraceStatus.RUNNING


def test_when_a_job_that_failed_is_run_again_from_attempt_1_then_the_failure_and_rerun_show() -> (
    None
):
    # A re-run numbered from 1 again merged into the failed try: "finished on attempt 1; no
    # retry", with the bounce and the 50-minute gap gone from the history.
    events = [
        signup(),
        ev(1, "signup_email.started", 2 * S, status="running", attempt=1, **of_job()),
        ev(
            2,
            "signup_email.bounced",
            5 * S,
            status="failed",
            attempt=1,
            error_code="SMTP_550",
            reason="Mailbox unavailable",
            **of_job(),
        ),
        ev(3, "signup_email.started", 50 * M, status="running", attempt=1, **of_job()),
        ev(4, "signup_email.sent", 51 * M, status="done", attempt=1, **of_job()),
    ]
    chain = read(events)
    job = job_of(chain)
    assert (job.state, job.attempts, job.retries) == (StepState.DONE, 2, 1)
    assert [a.state for a in job.attempt_history] == [StepState.FAILED, StepState.DONE]
    assert job.attempt_history[0].error_code == "SMTP_550"
    assert job.last_retry_at == T0 + 50 * M
    assert chain.summary.status is TraceStatus.DONE
    assert answers(chain)[2] == (
        "Yes: Signup email finished on attempt 2; retried 1 time (waits 49 min)."
    )


def test_when_a_terminal_failure_is_retried_under_the_next_number_then_it_reads_done() -> None:
    # Guard, checked sound: attempts 1 to 3 failed (retries ran out), then an operator ran
    # attempt 4 and it was sent; reading late news of earlier tries must keep this done.
    events = [ev(1, "billing_job.started", 0 * S, status="running", attempt=1, **of_job())]
    for n in (2, 3):
        events.append(
            ev(n, "billing_job.retry", n * M, attempt=n, error_code="CARD_DECLINED", **of_job())
        )
    events += [
        ev(4, "billing_job.failed", 3 * M + S, status="failed", attempt=3, **of_job()),
        ev(5, "billing_job.started", 40 * M, status="running", attempt=4, **of_job()),
        ev(6, "billing_job.succeeded", 40 * M + S, status="done", attempt=4, **of_job()),
    ]
    chain = read(events)
    assert (job_of(chain).state, job_of(chain).attempts) == (StepState.DONE, 4)
    assert chain.summary.status is TraceStatus.DONE
    assert "(recovered)" in render_summary_text(chain)


def test_when_the_email_bounced_and_a_webhook_recovered_later_then_the_error_is_the_bounce() -> (
    None
):
    # The webhook's 503 (retried, then delivered) was "Error:" in the copied summary, and the
    # hint told support the customer's endpoint kept failing and the event was not delivered.
    events = [
        signup(),
        ev(1, "signup_email.started", 2 * S, status="running", attempt=1, **of_job()),
        ev(
            2,
            "signup_email.bounced",
            5 * S,
            status="failed",
            attempt=1,
            error_code="SMTP_550",
            reason="Mailbox unavailable",
            **of_job(),
        ),
        ev(
            3,
            "webhook.attempt",
            10 * S,
            status="running",
            attempt=1,
            error_code="WEBHOOK_HTTP_5XX",
            reason="Endpoint answered 503",
            **of_job("job_hook"),
        ),
        ev(4, "webhook.delivered", 70 * S, status="done", attempt=2, **of_job("job_hook")),
    ]
    chain = read(events)
    assert chain.summary.status is TraceStatus.FAILED
    assert (chain.summary.last_error_code, chain.summary.last_reason) == (
        "SMTP_550",
        "Mailbox unavailable",
    )
    assert "Error: SMTP_550 - Mailbox unavailable" in render_summary_text(chain).splitlines()
    assert (hint_of(chain).rule_id, hint_of(chain).owner) == ("email_bounced", "support")


def test_when_one_job_is_stuck_beside_one_that_finished_then_the_summary_is_about_the_stuck() -> (
    None
):
    # "Status: stuck - Webhook done", and the page's job answers were about the webhook.
    events = [
        signup(),
        ev(1, "signup_email.queued", 1 * S, status="queued", **of_job()),
        ev(2, "webhook.attempt", 2 * S, status="running", attempt=1, **of_job("job_hook")),
        ev(3, "webhook.delivered", 3 * S, status="done", attempt=1, **of_job("job_hook")),
    ]
    chain = read(events)
    assert chain.summary.status is TraceStatus.STUCK
    assert chain.summary.main_job_id == "job_a"
    assert chain.summary.headline.startswith("Signup email is stuck in queued")
    assert "Job: job_a (Signup email, queued, stuck)" in render_summary_text(chain)
    assert answers(chain)[1].startswith("Stuck: Signup email")


def test_when_one_job_still_runs_beside_one_that_finished_then_the_summary_is_about_it() -> None:
    # "Status: running - Webhook done" while the import was the work still going.
    events = [
        signup(),
        ev(1, "import_job.started", 1 * S, status="running", attempt=1, **of_job()),
        ev(2, "webhook.delivered", 3 * S, status="done", attempt=1, **of_job("job_hook")),
        ev(3, "import_job.progress", 119 * M, status="running", attempt=1, **of_job()),
    ]
    chain = read(events)
    assert chain.summary.status is TraceStatus.RUNNING
    assert chain.summary.headline == "Import job is running"


def test_when_a_login_fails_after_the_signup_email_went_out_then_the_headline_is_the_login() -> (
    None
):
    # "Status: failed - Signup email sent done": the failure named a job that was fine.
    events = [
        signup(),
        ev(1, "signup_email.sent", 2 * S, status="done", attempt=1, **of_job()),
        ev(
            2,
            "login.failed",
            1 * M,
            lane=Lane.CUSTOMER,
            status="failed",
            label="Customer login failed",
            request_id="req_2",
            customer_id="48291",
            error_code="INVALID_PASSWORD",
            reason="Wrong password",
        ),
    ]
    chain = read(events)
    assert chain.summary.status is TraceStatus.FAILED
    assert chain.summary.headline == "Customer login failed: Wrong password"


@pytest.mark.parametrize(
    ("type_", "status", "reason"),
    [
        ("signup_email.cancelled", "cancelled", "Cancelled"),
        ("signup_email.skipped", "skipped", "Skipped"),
        ("webhook.attempt", "timeout", "Timeout"),
        ("signup_email.dead", "dead", "Dead"),
        ("signup_email.timed_out", None, "Timed out"),
    ],
)
def test_when_a_job_ends_with_a_word_outside_the_usual_set_then_it_is_not_stuck_running(
    type_: str, status: str | None, reason: str
) -> None:
    # The job read "stuck in running" and went to engineering, while nothing was left to run
    # and nothing had been sent.
    events = [
        signup(),
        ev(1, "signup_email.started", 2 * S, status="running", attempt=1, **of_job()),
        ev(2, type_, 5 * S, status=status, attempt=1, **of_job()),
    ]
    chain = read(events)
    job = job_of(chain)
    assert (job.state, job.stuck, job.reason) == (StepState.FAILED, False, reason)
    assert chain.summary.status is TraceStatus.FAILED
    assert hint_of(chain).rule_id != "stuck_running"
    assert answers(chain)[2].startswith("No: ")


def test_when_a_failure_carries_no_error_code_then_the_hint_says_none_was_sent() -> None:
    # The catch-all hint read "(last error code none)", as if "none" were a code.
    events = [
        signup(),
        ev(1, "signup_email.started", 2 * S, status="running", attempt=1, **of_job()),
        ev(2, "signup_email.cancelled", 5 * S, status="cancelled", attempt=1, **of_job()),
    ]
    hint = hint_of(read(events))
    assert hint.rule_id == "unclassified"
    assert hint.reason.endswith("(last error code: none sent).")


def test_when_a_customer_cancels_their_subscription_then_their_action_is_done() -> None:
    # Guard, checked sound: a customer's own "cancelled" is what they did (not a job that gave
    # up), so reading such words as a job's end must not turn it into "failed".
    action = ev(
        0, "subscription.cancelled", 0 * S, lane=Lane.CUSTOMER, status="cancelled", request_id="r"
    )
    chain = read([action])
    assert (chain.summary.status, chain.summary.customer_finished_action) == (
        TraceStatus.DONE,
        True,
    )


def test_when_a_payment_retry_is_queued_for_tomorrow_after_a_decline_then_it_reads_scheduled() -> (
    None
):
    # Read "Payment failed; no retry" and "ask for another card", while the system had set
    # the next try for the next morning itself.
    due = NOW + timedelta(hours=20)
    events = [
        ev(1, "billing_job.started", 2 * S, status="running", attempt=1, **of_job()),
        ev(
            2,
            "billing_job.failed",
            5 * S,
            status="failed",
            attempt=1,
            error_code="CARD_DECLINED",
            reason="Card declined",
            **of_job(),
        ),
        ev(
            3,
            "billing_job.queued",
            6 * S,
            status="queued",
            attempt=2,
            fields={"run_at": due.isoformat()},
            **of_job(),
        ),
    ]
    chain = read(events)
    job = job_of(chain)
    assert (job.state, job.stuck, job.scheduled_for, job.finished_at) == (
        StepState.QUEUED,
        False,
        due,
        None,
    )
    assert chain.summary.status is TraceStatus.QUEUED
    assert hint_of(chain).rule_id == "scheduled"
    assert answers(chain)[2] == ("Not yet: attempt 1 failed: Card declined; another try is queued.")
    assert "Error: CARD_DECLINED - Card declined (not recovered yet)" in render_summary_text(chain)


def test_when_the_first_attempt_left_no_event_then_the_page_names_the_attempt_as_numbered() -> None:
    # "finished on attempt 1; retried 1 time" beside events saying attempt 2.
    events = [
        signup(),
        ev(1, "signup_email.retry", 4 * M, attempt=2, error_code="SMTP_421", **of_job()),
        ev(2, "signup_email.sent", 5 * M, status="done", attempt=2, **of_job()),
    ]
    assert answers(read(events))[2].startswith("Yes: Signup email finished on attempt 2;")


def test_when_an_event_was_re_sent_with_a_corrected_time_then_started_is_the_corrected_one() -> (
    None
):
    # The index kept the first version's time: "Started" read three days too early.
    events = [signup(), ev(1, "signup_email.sent", 2 * S, status="done", attempt=1, **of_job())]
    rows = [
        TraceIndexRow(e.trace_id, e.event_id, e.type, e.lane, e.job_id, e.request_id, e.occurred_at)
        for e in events
    ]
    rows[0] = TraceIndexRow(
        "tr_rev",
        "ev_00",
        "signup.submitted",
        Lane.CUSTOMER,
        "job_a",
        "req_1",
        T0 - timedelta(days=3),
    )
    chain = read(events, rows)
    assert chain.summary.started_at == T0
    assert "Started: 2026-11-26 10:00 UTC" in render_summary_text(chain)


def test_when_a_trace_holds_thousands_of_unfinished_jobs_then_the_quietest_decides() -> None:
    # An import of thousands of jobs: the hint reads each job's latest news (it once looked
    # for every job's news among every event, seconds per page; the time is for the bench,
    # not a test). The job quiet longest is the first, started two hours before now.
    events = []
    for j in range(3000):
        at = 2 * j * MS
        events.append(
            ev(j, "import_job.started", at, status="running", attempt=1, **of_job(f"job_{j}"))
        )
    events.append(ev(3000, "import_job.progress", 90 * M, attempt=1, **of_job("job_0")))
    chain = read(events)
    facts = trace_facts(chain, NOW)
    # job_0 spoke again 90 minutes in; job_1 has been quiet since 2 ms after the start.
    assert facts.quiet_minutes == pytest.approx((NOW - (T0 + 2 * MS)).total_seconds() / 60)
    assert hint_of(chain).rule_id == "stuck_running"


@pytest.mark.parametrize("bounce_id", [98, 1])  # the bounce's event_id after, then before
def test_when_a_job_is_sent_and_bounces_in_one_instant_then_it_reads_failed(
    bounce_id: int,
) -> None:
    # Services stamping whole seconds put "sent" and "bounced" in one instant; ordered by
    # event_id, the send could come last and the page said the email went out.
    events = [
        signup(),
        ev(2, "signup_email.started", 2 * S, status="running", attempt=1, **of_job()),
        ev(50, "signup_email.sent", 5 * S, status="done", attempt=1, **of_job()),
        ev(
            bounce_id,
            "signup_email.bounced",
            5 * S,
            status="failed",
            attempt=1,
            error_code="SMTP_550",
            **of_job(),
        ),
    ]
    job = job_of(read(events))
    assert (job.state, job.error_code) == (StepState.FAILED, "SMTP_550")
