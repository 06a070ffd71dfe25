"""Job steps read as a table: each row is a job's events and what support must see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ingest.schema import Lane, TimelineEvent
from query_api.models import StepState
from query_api.steps import common_label, job_step
from tests.store_fixtures import make_event

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
STUCK_AFTER = timedelta(minutes=30)
S, M, H = timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1)


def job(start: datetime, *rows: tuple[str, timedelta, dict[str, Any]]) -> list[TimelineEvent]:
    """Events of job ``job_t``: (type, offset from start, extra fields)."""
    return [
        make_event(
            f"ev_{n:02d}", type_=t, lane=Lane.SYSTEM, at=start + off, job_id="job_t", **extra
        )
        for n, (t, off, extra) in enumerate(rows)
    ]


T0 = NOW - 3 * H
CASES = [
    pytest.param(
        # the demo's "signup email timed out, retried, then sent"
        job(
            T0,
            ("signup_email.queued", 0 * S, {"status": "queued", "attempt": 0}),
            ("signup_email.started", 1 * S, {"status": "running", "attempt": 1}),
            ("signup_email.retry", 1 * S + 10 * M, {"attempt": 2, "error_code": "TIMEOUT"}),
            ("signup_email.retry", 1 * S + 20 * M, {"attempt": 3, "error_code": "TIMEOUT"}),
            ("signup_email.sent", 4 * S + 20 * M, {"status": "done", "attempt": 3}),
        ),
        (StepState.DONE, 3, [600.0, 600.0], None, False),
        id="timeout-retried-twice-then-sent",
    ),
    pytest.param(
        # the seed: one retry, then the provider bounces the message
        job(
            T0,
            ("signup_email.queued", 0 * S, {"status": "queued", "attempt": 0}),
            ("signup_email.started", 1 * S, {"status": "running", "attempt": 1}),
            ("signup_email.retry", 1 * S + 4 * M, {"attempt": 2, "error_code": "SMTP_421"}),
            (
                "signup_email.bounced",
                50 * S + 4 * M,
                {"status": "failed", "attempt": 2, "error_code": "SMTP_550"},
            ),
        ),
        (StepState.FAILED, 2, [240.0], "SMTP_550", False),
        id="one-retry-then-bounce",
    ),
    pytest.param(
        # "attempt 1 failed, will retry" wording: the next start is the retry
        job(
            T0,
            ("mail_job.started", 0 * S, {"attempt": 1}),
            ("mail_job.retry", 30 * S, {"attempt": 1, "error_code": "TIMEOUT"}),
            ("mail_job.started", 90 * S, {"attempt": 2}),
            ("mail_job.sent", 100 * S, {"attempt": 2}),
        ),
        (StepState.DONE, 2, [60.0], None, False),
        id="retry-marks-the-failed-attempt",
    ),
    pytest.param(
        # no attempt numbers at all: a retry event still starts the next try
        job(
            T0,
            ("export_job.queued", 0 * S, {}),
            ("export_job.started", 10 * S, {}),
            ("export_job.retry", 5 * M, {"error_code": "TIMEOUT"}),
            ("export_job.done", 5 * M + 5 * S, {}),
        ),
        (StepState.DONE, 2, [290.0], None, False),
        id="retries-without-attempt-numbers",
    ),
    pytest.param(
        # the demo's billing retry that finally fails, a day between tries
        job(
            NOW - 3 * 24 * H,
            ("billing_job.started", 0 * S, {"status": "running", "attempt": 1}),
            ("billing_job.retry", 24 * H, {"attempt": 2, "error_code": "CARD_DECLINED"}),
            ("billing_job.retry", 48 * H, {"attempt": 3, "error_code": "CARD_DECLINED"}),
            (
                "billing_job.failed",
                48 * H + 5 * S,
                {"status": "failed", "attempt": 3, "error_code": "INSUFFICIENT_FUNDS"},
            ),
        ),
        (StepState.FAILED, 3, [86400.0, 86400.0], "INSUFFICIENT_FUNDS", False),
        id="billing-fails-after-two-retries",
    ),
    pytest.param(
        # accepted by the provider, then bounced: the later outcome is the truth
        job(
            T0,
            ("signup_email.started", 0 * S, {"attempt": 1}),
            ("signup_email.sent", 2 * S, {"status": "done", "attempt": 1}),
            (
                "signup_email.bounced",
                60 * S,
                {"status": "failed", "attempt": 1, "error_code": "SMTP_550"},
            ),
        ),
        (StepState.FAILED, 1, [], "SMTP_550", False),
        id="sent-then-bounced",
    ),
    pytest.param(
        # queued five minutes ago: waiting is normal
        job(NOW - 5 * M, ("reset_email.queued", 0 * S, {"status": "queued"})),
        (StepState.QUEUED, 0, [], None, False),
        id="queued-recently",
    ),
    pytest.param(
        # queued two hours ago and nothing since: stuck in the queue
        job(NOW - 2 * H, ("reset_email.queued", 0 * S, {"status": "queued"})),
        (StepState.QUEUED, 0, [], None, True),
        id="queued-and-stuck",
    ),
    pytest.param(
        # the demo's import stuck in running
        job(
            NOW - 5 * H,
            ("import_job.started", 3 * S, {"status": "running", "attempt": 1}),
            ("import_job.progress", 2 * M, {"status": "running", "attempt": 1}),
        ),
        (StepState.RUNNING, 1, [], None, True),
        id="running-and-stuck",
    ),
    pytest.param(
        # a webhook that answered 503, then was delivered on the second attempt
        job(
            T0,
            (
                "webhook.attempt",
                0 * S,
                {"status": "running", "attempt": 1, "error_code": "WEBHOOK_HTTP_5XX"},
            ),
            ("webhook.delivered", 5 * M, {"status": "done", "attempt": 2}),
        ),
        (StepState.DONE, 2, [300.0], None, False),
        id="webhook-5xx-then-delivered",
    ),
    pytest.param(
        # attempt 2 starts the second attempt 1 failed: a wait of 0 s is still a wait
        job(
            T0,
            ("signup_email.queued", 0 * S, {"status": "queued"}),
            ("signup_email.started", 1 * S, {"status": "running", "attempt": 1}),
            (
                "signup_email.failed",
                2 * S,
                {"status": "failed", "attempt": 1, "error_code": "PROVIDER_TIMEOUT"},
            ),
            ("signup_email.started", 2 * S, {"status": "running", "attempt": 2}),
            ("signup_email.sent", 3 * S, {"status": "done", "attempt": 2}),
        ),
        (StepState.DONE, 2, [0.0], None, False),
        id="retried-at-once",
    ),
]


@pytest.mark.parametrize(("events", "expected"), CASES)
def test_when_a_job_has_these_events_then_its_step_reads_as_expected(
    events: list[TimelineEvent], expected: tuple[StepState, int, list[float], str | None, bool]
) -> None:
    state, attempts, delays, error_code, stuck = expected
    step = job_step("job_t", events, NOW, STUCK_AFTER)
    assert step.state is state
    assert step.attempts == attempts
    assert step.retries == max(0, attempts - 1)
    assert step.retry_delays_seconds == delays
    assert step.error_code == error_code
    assert step.stuck is stuck
    assert step.event_ids == [e.event_id for e in events]


def test_when_a_retry_follows_a_failure_then_the_failed_attempt_keeps_the_reason() -> None:
    events = job(
        T0,
        ("signup_email.queued", 0 * S, {"status": "queued", "attempt": 0}),
        ("signup_email.started", 1 * S, {"status": "running", "attempt": 1}),
        (
            "signup_email.retry",
            1 * S + 10 * M,
            {"attempt": 2, "error_code": "PROVIDER_TIMEOUT", "reason": "Email provider timeout"},
        ),
        ("signup_email.sent", 3 * S + 10 * M, {"status": "done", "attempt": 2}),
    )
    first, second = job_step("job_t", events, NOW, STUCK_AFTER).attempt_history

    assert (first.state, first.error_code, first.reason) == (
        StepState.FAILED,
        "PROVIDER_TIMEOUT",
        "Email provider timeout",
    )
    assert first.wait_before_seconds == 1.0  # time spent queued
    assert not first.is_retry
    assert (second.state, second.is_retry, second.wait_before_seconds) == (
        StepState.DONE,
        True,
        600.0,
    )
    assert second.error_code is None


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        # the family name support reads
        (["Signup email queued", "Signup email sent"], "Signup email"),
        # one label only
        (["Import job"], "Import job"),
        # nothing shared: the first label is better than nothing
        (["Queued", "Delivered"], "Queued"),
    ],
)
def test_when_labels_share_leading_words_then_the_step_is_named_by_them(
    labels: list[str], expected: str
) -> None:
    assert common_label(labels) == expected
