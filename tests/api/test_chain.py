"""The trace chain: steps, broken links and the summary, from events and id-only index rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ingest.schema import Lane, TimelineEvent
from projectors.rows import TraceIndexRow
from query_api.chain import build_chain, build_job_history
from query_api.models import BrokenLink, StepKind, StepState, TraceStatus
from query_api.pages_view import escalation_hint
from query_api.summary import render_summary_text
from redaction_rules.escalation import load_escalation_rules
from tests.store_fixtures import make_event

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=400)
T0 = NOW - timedelta(hours=2)
S, M = timedelta(seconds=1), timedelta(minutes=1)
EMAIL = "m***.s*****@gmail.com"


def ev(n: int, type_: str, offset: timedelta, **extra: Any) -> TimelineEvent:
    return make_event(f"ev_{n:02d}", trace_id="tr_seed", type_=type_, at=T0 + offset, **extra)


def request(job_id: str = "job_9c1f", at: timedelta = 0 * S) -> list[TimelineEvent]:
    """The customer's signup and the account it created (same request)."""
    ids = {"customer_id": "48291", "request_id": "req_1"}
    return [
        ev(
            0,
            "signup.submitted",
            at,
            lane=Lane.CUSTOMER,
            status="done",
            job_id=job_id,
            fields={"email": EMAIL, "plan": "team"},
            **ids,
        ),
        ev(
            1,
            "account.created",
            at + 420 * timedelta(milliseconds=1),
            lane=Lane.SYSTEM,
            status="done",
            **ids,
        ),
    ]


def email_job(first: int = 2) -> list[TimelineEvent]:
    """The seed's signup email: queued, started, one retry after 4 minutes, then a bounce."""
    job = {"lane": Lane.SYSTEM, "customer_id": "48291", "job_id": "job_9c1f"}
    return [
        ev(first, "signup_email.queued", 1 * S, status="queued", attempt=0, **job),
        ev(first + 1, "signup_email.started", 2 * S, status="running", attempt=1, **job),
        ev(
            first + 2,
            "signup_email.retry",
            2 * S + 4 * M,
            status="running",
            attempt=2,
            error_code="SMTP_421",
            reason="Mail server asked to try again later",
            **job,
        ),
        ev(
            first + 3,
            "signup_email.bounced",
            51 * S + 4 * M,
            status="failed",
            attempt=2,
            error_code="SMTP_550",
            reason="Mailbox unavailable",
            fields={"to": EMAIL},
            **job,
        ),
    ]


def index_of(events: list[TimelineEvent], shift: timedelta = timedelta(0)) -> list[TraceIndexRow]:
    """Index rows for events, optionally moved back in time."""
    return [
        TraceIndexRow(
            e.trace_id, e.event_id, e.type, e.lane, e.job_id, e.request_id, e.occurred_at - shift
        )
        for e in events
    ]


def test_when_a_signup_email_retries_once_then_bounces_then_the_chain_tells_the_seed_story() -> (
    None
):
    events = request() + email_job()
    chain = build_chain(events, index_of(events), NOW, RETENTION)

    kinds = [(s.kind, s.state) for s in chain.steps]
    assert kinds == [
        (StepKind.REQUEST, StepState.DONE),
        (StepKind.JOB, StepState.FAILED),
        (StepKind.ERROR, StepState.FAILED),
    ]
    job = chain.steps[1]
    assert (job.label, job.job_id, job.attempts, job.retries) == (
        "Signup email",
        "job_9c1f",
        2,
        1,
    )
    assert job.retry_delays_seconds == [240.0]
    assert job.last_retry_at == T0 + 2 * S + 4 * M
    assert (job.error_code, job.reason) == ("SMTP_550", "Mailbox unavailable")
    assert chain.steps[2].reason == "Mailbox unavailable"

    summary = chain.summary
    assert summary.status is TraceStatus.FAILED
    assert summary.customer_finished_action is True
    assert summary.email == EMAIL
    assert summary.customer_id == "48291"
    assert summary.headline == "Signup email failed after 1 retry: Mailbox unavailable"
    assert (summary.started_at, summary.finished_at) == (T0, T0 + 51 * S + 4 * M)
    assert [e.event_id for e in chain.events] == [e.event_id for e in events]


def test_when_the_summary_is_rendered_then_it_holds_the_redacted_facts_support_copies() -> None:
    events = request() + email_job()
    text = render_summary_text(build_chain(events, [], NOW, RETENTION))

    assert text.splitlines() == [
        "Customer ID: 48291",
        "Trace: tr_seed",
        "Job: job_9c1f (Signup email, failed)",
        "Started: 2026-11-26 10:00 UTC",
        "Status: failed - Signup email failed after 1 retry: Mailbox unavailable",
        f"Email: {EMAIL}",
        "Error: SMTP_550 - Mailbox unavailable",
        "Last retry: 2026-11-26 10:04 UTC",
    ]


def test_when_a_try_never_reported_its_end_then_its_finish_is_unknown_not_its_start() -> None:
    # Attempt 1 started at 10:00:02 and said nothing more; the retry 4 minutes later says it
    # failed. "Finished 10:00:02" read as an instant failure: its end is unknown, and the
    # wait before the retry is counted from its last news.
    events = request() + email_job()
    steps = build_chain(events, index_of(events), NOW, RETENTION).steps
    job = next(s for s in steps if s.kind is StepKind.JOB)
    first, second = job.attempt_history
    assert (first.state, first.started_at, first.finished_at) == (
        StepState.FAILED,
        T0 + 2 * S,
        None,
    )
    assert first.error_code == "SMTP_421"  # named by the retry
    assert second.wait_before_seconds == 240.0
    assert job.retry_delays_seconds == [240.0]


def test_when_a_request_names_a_job_without_events_then_the_step_says_job_not_found() -> None:
    events = request(job_id="job_ghost")
    chain = build_chain(events, index_of(events), NOW, RETENTION)

    missing = [s for s in chain.steps if s.broken_link is BrokenLink.JOB_NOT_FOUND]
    assert [(s.kind, s.job_id, s.state) for s in missing] == [
        (StepKind.JOB, "job_ghost", StepState.UNKNOWN)
    ]
    assert missing[0].note is not None and "job_ghost" in missing[0].note
    assert chain.summary.status is TraceStatus.INCOMPLETE
    assert "job job_ghost was not found" in chain.summary.headline


def test_when_a_named_job_is_not_heard_from_yet_then_it_is_queued_until_the_stuck_limit() -> None:
    # The request's event can arrive before the job's first one: read a minute later the job
    # is waiting for a worker (support tells the customer to wait), not "never started"
    # (engineering); after the stuck limit without news it is.
    events = request(job_id="job_soon")
    limit = timedelta(minutes=30)
    soon = T0 + 1 * M
    chain = build_chain(events, index_of(events), soon, RETENTION, stuck_after=limit)
    job = next(s for s in chain.steps if s.job_id == "job_soon" and s.kind is StepKind.JOB)
    assert (job.state, job.broken_link, job.stuck) == (StepState.QUEUED, None, False)
    assert chain.summary.status is TraceStatus.QUEUED
    hint = escalation_hint(chain, load_escalation_rules(), soon, limit)
    assert (hint.rule_id, hint.owner) == ("in_progress", "support")

    late = T0 + limit + 1 * M
    chain = build_chain(events, index_of(events), late, RETENTION, stuck_after=limit)
    assert chain.summary.status is TraceStatus.INCOMPLETE
    hint = escalation_hint(chain, load_escalation_rules(), late, limit)
    assert (hint.rule_id, hint.owner) == ("job_never_started", "engineering")


def test_when_every_event_is_older_than_retention_then_each_step_says_removed() -> None:
    gone = request() + email_job()
    chain = build_chain([], index_of(gone, shift=timedelta(days=401)), NOW, RETENTION)

    assert {s.broken_link for s in chain.steps} == {BrokenLink.REMOVED_BY_RETENTION}
    assert [s.kind for s in chain.steps] == [StepKind.REQUEST, StepKind.JOB]
    assert [s.removed_events for s in chain.steps] == [2, 4]
    assert chain.steps[1].label == "Signup email"
    assert chain.summary.status is TraceStatus.UNKNOWN
    assert chain.removed_events == 6
    assert chain.events == []


def test_when_the_request_is_past_retention_but_the_job_is_not_then_only_it_is_removed() -> None:
    old_request, job = request(), email_job()
    rows = index_of(old_request, shift=timedelta(days=401)) + index_of(job)
    chain = build_chain(job, rows, NOW, RETENTION)

    by_kind = {s.kind: s for s in chain.steps}
    assert by_kind[StepKind.REQUEST].broken_link is BrokenLink.REMOVED_BY_RETENTION
    assert by_kind[StepKind.JOB].broken_link is None  # not "job not found": the job is here
    assert chain.summary.customer_finished_action is None


def test_when_some_events_of_a_job_are_gone_then_the_step_counts_them() -> None:
    job = email_job()
    rows = index_of(job) + [
        TraceIndexRow(
            "tr_seed",
            "ev_old",
            "signup_email.queued",
            Lane.SYSTEM,
            "job_9c1f",
            None,
            NOW - timedelta(days=500),
        ),
    ]
    [step, _error] = build_chain(job, rows, NOW, RETENTION).steps

    assert (step.broken_link, step.removed_events) == (BrokenLink.REMOVED_BY_RETENTION, 1)
    assert step.note is not None and "400 days" in step.note


def test_when_an_index_row_is_missing_but_recent_then_no_gap_is_reported() -> None:
    # The timeline read raced a write: recent rows are not "removed by retention".
    events = request(job_id="job_x")
    rows = index_of(events) + [
        TraceIndexRow("tr_seed", "ev_new", "x.y", Lane.SYSTEM, "job_x", None, NOW),
    ]
    chain = build_chain(events, rows, NOW, RETENTION)
    assert chain.removed_events == 0


@pytest.mark.parametrize(
    ("events", "status", "finished", "headline"),
    [
        # a failed login: the customer's own action failed
        (
            [
                ev(
                    0,
                    "login.failed",
                    0 * S,
                    lane=Lane.CUSTOMER,
                    status="failed",
                    label="Customer login failed",
                    error_code="INVALID_PASSWORD",
                    reason="Wrong password",
                )
            ],
            TraceStatus.FAILED,
            False,
            "Customer login failed: Wrong password",
        ),
        # a plain successful login
        (
            [
                ev(
                    0,
                    "login.succeeded",
                    0 * S,
                    lane=Lane.CUSTOMER,
                    status="done",
                    label="Customer logged in",
                )
            ],
            TraceStatus.DONE,
            True,
            "Customer logged in",
        ),
        # a system failure that belongs to no job becomes an error step
        (
            [
                ev(
                    0,
                    "search_index.failed",
                    0 * S,
                    lane=Lane.SYSTEM,
                    status="failed",
                    label="Search index update",
                    error_code="INDEX_DOWN",
                )
            ],
            TraceStatus.FAILED,
            None,
            "Search index update failed",
        ),
    ],
)
def test_when_a_trace_has_no_job_then_status_and_customer_outcome_follow_its_events(
    events: list[TimelineEvent], status: TraceStatus, finished: bool | None, headline: str
) -> None:
    chain = build_chain(events, [], NOW, RETENTION)
    assert chain.summary.status is status
    assert chain.summary.customer_finished_action is finished
    assert chain.summary.headline == headline
    if events[0].lane is Lane.SYSTEM:
        assert chain.steps[0].kind is StepKind.ERROR


def test_when_nothing_is_known_then_no_chain_is_built() -> None:
    with pytest.raises(ValueError, match="at least one"):
        build_chain([], [], NOW, RETENTION)


def test_when_a_job_history_is_asked_then_it_covers_known_referenced_removed_and_unknown() -> None:
    events = request() + email_job()
    history = build_job_history("job_9c1f", events, index_of(events), NOW, RETENTION)
    assert history is not None
    assert (history.step.state, history.step.retries, history.trace_ids) == (
        StepState.FAILED,
        1,
        ["tr_seed"],
    )

    only_named = build_job_history("job_9c1f", request(), [], NOW, RETENTION)
    assert only_named is not None and only_named.step.broken_link is BrokenLink.JOB_NOT_FOUND

    old = index_of(email_job(), shift=timedelta(days=401))
    removed = build_job_history("job_9c1f", [], old, NOW, RETENTION)
    assert removed is not None
    assert removed.step.broken_link is BrokenLink.REMOVED_BY_RETENTION

    assert build_job_history("job_unknown", [], [], NOW, RETENTION) is None


def test_when_a_job_goes_quiet_while_running_then_the_trace_is_stuck_since_its_last_news() -> None:
    start = NOW - timedelta(hours=5)
    job: dict[str, Any] = {
        "lane": Lane.SYSTEM,
        "job_id": "job_imp",
        "status": "running",
        "attempt": 1,
    }
    events = [
        make_event(
            "ev_i0",
            trace_id="tr_imp",
            type_="import.requested",
            lane=Lane.CUSTOMER,
            at=start,
            status="done",
            job_id="job_imp",
            request_id="req_i",
        ),
        make_event("ev_i1", trace_id="tr_imp", type_="import_job.started", at=start + 3 * S, **job),
        make_event(
            "ev_i2", trace_id="tr_imp", type_="import_job.progress", at=start + 2 * M, **job
        ),
    ]
    chain = build_chain(events, [], NOW, RETENTION)

    [_, step] = chain.steps
    assert (step.state, step.stuck, step.last_event_at) == (StepState.RUNNING, True, start + 2 * M)
    assert chain.summary.status is TraceStatus.STUCK
    assert chain.summary.headline == (
        "Import job is stuck in running, no news since 2026-11-26 07:02 UTC"
    )
    assert chain.summary.finished_at is None


def test_when_a_customer_fact_only_mentions_email_then_the_summary_shows_the_address() -> None:
    # A kept setting about email is not an address: the summary (like the customer page's
    # contact) shows what has an "@" under an email-named field, else the mail's recipient.
    first = request()[0]
    settings = first.model_copy(
        update={"fields": {"email_settings.enabled": "true", "user.work_email": "n/a"}}
    )
    events = [settings, *request()[1:], *email_job()]
    summary = build_chain(events, index_of(events), NOW, RETENTION).summary
    assert summary.email == EMAIL  # the bounce's "to", not "true"
    only = build_chain([settings], index_of([settings]), NOW, RETENTION).summary
    assert only.email is None


def _tied(*rows: tuple[str, str, int, dict[str, Any]]) -> list[TimelineEvent]:
    """Events of job ``job_tie``: (event_id, type, seconds after T0, extra fields)."""
    job: dict[str, Any] = {"lane": Lane.SYSTEM, "job_id": "job_tie", "customer_id": "48291"}
    return [
        make_event(eid, trace_id="tr_tie", type_=t, at=T0 + sec * S, **job, **extra)
        for eid, t, sec, extra in rows
    ]


@pytest.mark.parametrize(
    ("events", "status", "attempts", "delays"),
    [
        pytest.param(
            # queued, started and failed in one second; their ids sort the other way round
            _tied(
                ("ev_qa5b_c", "signup_email.queued", 0, {"status": "queued"}),
                ("ev_qa5b_b", "signup_email.started", 0, {"status": "running"}),
                ("ev_qa5b_a", "signup_email.failed", 0, {"status": "failed"}),
            ),
            TraceStatus.FAILED,
            1,
            [],
            id="queued-started-failed-in-one-instant",
        ),
        pytest.param(
            # attempt 2 starts in the second attempt 1 fails; its id sorts first
            _tied(
                ("ev_qa1_e", "signup_email.queued", 0, {"status": "queued"}),
                ("ev_qa1_d", "signup_email.started", 1, {"status": "running", "attempt": 1}),
                (
                    "ev_qa1_c",
                    "signup_email.failed",
                    2,
                    {"status": "failed", "attempt": 1, "error_code": "PROVIDER_TIMEOUT"},
                ),
                ("ev_qa1_a", "signup_email.started", 2, {"status": "running", "attempt": 2}),
                ("ev_qa1_b", "signup_email.sent", 3, {"status": "done", "attempt": 2}),
            ),
            TraceStatus.DONE,
            2,
            [0.0],
            id="retry-starts-the-instant-the-try-failed",
        ),
    ],
)
def test_when_events_share_an_instant_then_they_are_read_in_lifecycle_order(
    events: list[TimelineEvent], status: TraceStatus, attempts: int, delays: list[float]
) -> None:
    # ``NOW`` is hours after ``T0``: read out of order, a job that ended looks stuck running.
    chain = build_chain(events, index_of(events), NOW, RETENTION)
    history = build_job_history("job_tie", events, index_of(events), NOW, RETENTION)

    assert chain.summary.status is status
    assert history is not None
    for step in (chain.steps[0], history.step):
        assert (step.attempts, step.retries, step.retry_delays_seconds, step.stuck) == (
            attempts,
            attempts - 1,
            delays,
            False,
        )
    assert [e.event_id for e in chain.events] == [e.event_id for e in events]
