"""The summary on top of a trace, and its copyable plain-text form (``summary.txt``).

Built only from redacted timeline events and the steps derived from them, so the text can be
pasted into a ticket or a chat as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ingest.schema import Lane, TimelineEvent
from projectors.rows import TraceIndexRow, holds_email
from query_api.models import (
    BrokenLink,
    StepKind,
    StepOut,
    StepState,
    TraceChain,
    TraceStatus,
    TraceSummary,
)


def _status(steps: Sequence[StepOut], has_events: bool) -> TraceStatus:
    states = {s.state for s in steps}
    if StepState.FAILED in states:
        return TraceStatus.FAILED
    if any(s.broken_link is BrokenLink.JOB_NOT_FOUND for s in steps):
        return TraceStatus.INCOMPLETE
    if any(s.stuck for s in steps):
        return TraceStatus.STUCK
    if StepState.RUNNING in states:
        return TraceStatus.RUNNING
    if StepState.QUEUED in states:
        return TraceStatus.QUEUED
    return TraceStatus.DONE if has_events else TraceStatus.UNKNOWN


def _main_job(steps: Sequence[StepOut]) -> StepOut | None:
    """The job the summary is about: the one that decides the trace's status, in the order
    ``_status`` ranks them (the first failed one, else one not found, stuck, running, queued),
    else the last. Beside a stuck email job, the last job (a webhook delivered) read "Status:
    stuck - Webhook done", and the page's job answers were about the job that was fine."""
    jobs = [s for s in steps if s.kind is StepKind.JOB]
    ranked = (
        [s for s in jobs if s.state is StepState.FAILED],
        [s for s in jobs if s.broken_link is BrokenLink.JOB_NOT_FOUND],
        [s for s in jobs if s.stuck],
        [s for s in jobs if s.state is StepState.RUNNING],
        [s for s in jobs if s.state is StepState.QUEUED],
        jobs[-1:],
    )
    pick = next((group for group in ranked if group), [])
    return pick[0] if pick else None


def failed_label(label: str) -> str:
    """``label`` saying it failed, once: "Customer login failed", never "... failed failed"."""
    return label if label.lower().endswith("failed") else f"{label} failed"


def _retries(n: int) -> str:
    return f"{n} retr{'y' if n == 1 else 'ies'}"


def latest_request(steps: Sequence[StepOut]) -> StepOut | None:
    """The customer's latest action (request step) still on record: the one a ticket is
    about, whether it finished deciding "did the customer finish?" (a login that worked does
    not make a plan change that failed after it finished)."""
    requests = [s for s in steps if s.kind is StepKind.REQUEST and s.broken_link is None]
    return requests[-1] if requests else None


def scheduled_after_news(job: StepOut) -> datetime | None:
    """When an unfinished job is due to run, if that is after its latest news (it waits for
    its time, or is overdue since then); None otherwise."""
    due = job.scheduled_for
    if due is None or (job.last_event_at is not None and due <= job.last_event_at):
        return None
    return due


def _headline(status: TraceStatus, steps: Sequence[StepOut], job: StepOut | None) -> str:
    first = steps[0].label if steps else "Trace"
    if status is TraceStatus.UNKNOWN:
        return "All events of this trace were removed by retention"
    # A failure outside every job (a login after the signup email went out) is what failed
    # the trace: "Status: failed - Signup email done" named the job that was fine.
    failed_elsewhere = status is TraceStatus.FAILED and (
        job is None or job.state is not StepState.FAILED
    )
    failed = next((s for s in steps if s.state is StepState.FAILED), None)
    if failed is not None and failed_elsewhere:
        return failed_label(failed.label) + (f": {failed.reason}" if failed.reason else "")
    if job is None:
        return first if status is TraceStatus.DONE else f"{first}: {status.value}"
    if job.broken_link is BrokenLink.JOB_NOT_FOUND:
        return f"{first}, but job {job.job_id} was not found"
    after = f" after {_retries(job.retries)}" if job.retries else ""
    if job.state is StepState.FAILED:
        why = job.reason or job.error_code
        return f"{failed_label(job.label)}{after}" + (f": {why}" if why else "")
    due = scheduled_after_news(job)
    if job.stuck:
        if due is not None:
            return f"{job.label} is stuck: due at {_hhmm(due)}, no news since"
        return (
            f"{job.label} is stuck in {job.state.value}, no news since {_hhmm(job.last_event_at)}"
        )
    if job.state is StepState.DONE:
        return f"{job.label} done{after}"
    if due is not None:
        return f"{job.label} is {job.state.value}, scheduled for {_hhmm(due)}"
    return f"{job.label} is {job.state.value}"


def _last_error(
    steps: Sequence[StepOut], status: TraceStatus, job: StepOut | None
) -> tuple[str | None, str | None]:
    """The latest error the trace met; once it failed, the latest error of what failed (the
    main job when it failed, else the failed steps): a webhook's 503 that a retry got past is
    not why the signup email failed, and "Error: WEBHOOK_HTTP_5XX" sent support to the
    customer's endpoint."""
    if status is TraceStatus.FAILED:
        if job is not None and job.state is StepState.FAILED:
            steps = [job]
        else:
            steps = [s for s in steps if s.state is StepState.FAILED]
    found: list[tuple[datetime, str | None, str | None]] = []
    for step in steps:
        for attempt in step.attempt_history:
            if attempt.error_code or attempt.reason:
                at = attempt.finished_at or attempt.started_at
                found.append((at, attempt.error_code, attempt.reason))
        if step.state is StepState.FAILED and step.finished_at and (step.error_code or step.reason):
            found.append((step.finished_at, step.error_code, step.reason))
    if not found:
        return None, None
    _, code, reason = max(found, key=lambda item: item[0])
    return code, reason


def _email(facts: dict[str, str], events: Sequence[TimelineEvent]) -> str | None:
    """The masked email: what the customer gave, else where the system sent mail."""
    found = next((v for k, v in facts.items() if holds_email(k, v)), None)
    if found is not None:
        return found
    for event in reversed(events):
        for key, value in event.fields.items():
            if holds_email(key, value, recipient=True):
                return value
    return None


def summarize(
    trace_id: str,
    events: Sequence[TimelineEvent],
    steps: Sequence[StepOut],
    index_rows: Sequence[TraceIndexRow],
) -> TraceSummary:
    """Status, times, whether the customer finished, masked facts, last error and retry."""
    status = _status(steps, bool(events))
    # An index row speaks for an event only once the event is gone: for one re-sent with a
    # corrected time the row may keep the first time ("Started" days too early).
    live = {e.event_id for e in events}
    times = [e.occurred_at for e in events] + [
        r.occurred_at for r in index_rows if r.event_id not in live
    ]
    facts: dict[str, str] = {}
    for event in events:
        if event.lane is Lane.CUSTOMER:
            facts.update(event.fields)
    latest = latest_request(steps)
    finished = None if latest is None else latest.state is StepState.DONE
    job = _main_job(steps)
    code, reason = _last_error(steps, status, job)
    retries = [s.last_retry_at for s in steps if s.last_retry_at is not None]
    ended = status in (TraceStatus.DONE, TraceStatus.FAILED) and events
    return TraceSummary(
        trace_id=trace_id,
        status=status,
        headline=_headline(status, steps, job),
        started_at=min(times, default=None),
        finished_at=max(e.occurred_at for e in events) if ended else None,
        customer_finished_action=finished,
        customer_id=next((e.customer_id for e in events if e.customer_id), None),
        workspace_id=next((e.workspace_id for e in events if e.workspace_id), None),
        facts=facts,
        email=_email(facts, events),
        main_job_id=job.job_id if job else None,
        main_job_label=job.label if job else None,
        last_error_code=code,
        last_reason=reason,
        last_retry_at=max(retries, default=None),
    )


def _hhmm(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"


def error_outcome(status: TraceStatus) -> str:
    """What became of the last error: a retry got past it only once the trace is done; while a
    job is still running, queued or stuck it is not recovered (yet), and a failure is just that.
    """
    if status is TraceStatus.DONE:
        return " (recovered)"
    if status is TraceStatus.FAILED:
        return ""
    return " (not recovered yet)"


def missing_customer(status: TraceStatus) -> str:
    """What to say when no stored event names the trace's customer: past retention the
    customer went with the events (the index kept for the chain holds no customer); otherwise
    the trace's events never named one (system work, a signed-out visitor)."""
    if status is TraceStatus.UNKNOWN:
        return "Not kept (removed by retention)"
    return "Not named by its events"


def order_ids(chain: TraceChain) -> list[str]:
    """The order IDs the trace's events named, in the order they first appeared."""
    return list(dict.fromkeys(e.order_id for e in chain.events if e.order_id))


def render_summary_text(chain: TraceChain) -> str:
    """The copyable summary: Customer ID / Trace / Job / Started / Status / Email / Error /
    Last retry."""
    s = chain.summary
    job = _main_job(chain.steps)
    lines = [f"Customer ID: {s.customer_id or missing_customer(s.status)}", f"Trace: {s.trace_id}"]
    # The order ID is often all a customer gives; the ticket should carry it back.
    orders = order_ids(chain)
    if orders:
        lines.append(f"Order: {', '.join(orders)}")
    if s.workspace_id:
        lines.append(f"Workspace: {s.workspace_id}")
    if job is not None:
        state = job.broken_link.value if job.broken_link else job.state.value
        if job.stuck:
            state += ", stuck"  # "Import, running" beside "Status: stuck" read as two answers
        lines.append(f"Job: {job.job_id} ({job.label}, {state})")
        if job.scheduled_for is not None:
            lines.append(f"Scheduled for: {_hhmm(job.scheduled_for)}")
    lines.append(f"Started: {_hhmm(s.started_at)}")  # "when did it start?" is a support question
    lines.append(f"Status: {s.status.value} - {s.headline}")
    if s.email:
        lines.append(f"Email: {s.email}")
    if s.last_error_code or s.last_reason:
        parts = [p for p in (s.last_error_code, s.last_reason) if p]
        lines.append("Error: " + " - ".join(parts) + error_outcome(s.status))
    if s.last_retry_at is not None:
        lines.append(f"Last retry: {_hhmm(s.last_retry_at)}")
    return "\n".join(lines) + "\n"
