"""What the support page shows, derived from the API's response models.

Pure functions only: the trace page's escalation facts and its "at a glance" answers to the
five questions support asks, plus the formatting filters the templates use. Everything here
reads the same redacted models the JSON API returns, so the page cannot show more than the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ingest.schema import Lane
from query_api.models import BrokenLink, StepKind, StepOut, StepState, TraceChain, TraceStatus
from query_api.summary import failed_label, latest_request, scheduled_after_news
from redaction_rules.escalation import EscalationHint, EscalationRules, TraceFacts, evaluate

_STATE_WORDS = {
    "done": "Done",
    "failed": "Failed",
    "running": "Running",
    "queued": "Queued",
    "unknown": "Unknown",
    "incomplete": "Incomplete",
    "stuck": "Stuck",
}
QUESTIONS = (
    "Did the customer finish the action?",
    "What state is the job in now?",
    "Did the system send it or retry?",
    "When did it start?",
    "Support or engineering?",
)


def utc_time(value: datetime | None) -> str:
    """``2026-11-26 10:02:11 UTC``: one unambiguous format everywhere on the page."""
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "—"


def duration(seconds: float | None) -> str:
    """A delay in plain units: ``49 s``, ``10 min``, ``1 h 5 min``, ``2 d 3 h``."""
    if seconds is None:
        return "—"
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min" + (f" {secs} s" if secs and minutes < 10 else "")
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    days, hours = divmod(hours, 24)
    return f"{days} d" + (f" {hours} h" if hours else "")


def state_word(state: str | None) -> str:
    """The state as a capitalised word (never shown by colour alone)."""
    return _STATE_WORDS.get(state or "unknown", (state or "unknown").replace("_", " ").capitalize())


_ACRONYMS = {
    "ip": "IP",
    "smtp": "SMTP",
    "url": "URL",
    "id": "ID",
    "api": "API",
    "http": "HTTP",
    "mfa": "MFA",
}


def field_label(path: str) -> str:
    """A kept field path in plain words: ``address.city`` -> ``Address city``, ``ip`` -> ``IP``."""
    words = path.replace("[", " ").replace("]", "").replace(".", " ").replace("_", " ").split()
    if not words:
        return path
    words = [_ACRONYMS.get(w.lower(), w.lower()) for w in words]
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def lane_word(lane: Lane | str) -> str:
    """The badge text that tells customer actions from system work."""
    return "Customer" if str(lane) == Lane.CUSTOMER.value else "System"


def main_job(chain: TraceChain) -> StepOut | None:
    """The job step the summary is about (the same one ``summary.txt`` names)."""
    wanted = chain.summary.main_job_id
    jobs = [s for s in chain.steps if s.kind is StepKind.JOB]
    return next((s for s in jobs if s.job_id == wanted), jobs[0] if jobs else None)


def _quiet_minutes(chain: TraceChain, now: datetime) -> float | None:
    """Minutes since the last news from the unfinished job that has been quiet longest."""
    # Each job's latest news, read in one pass: scanning every event for every job took
    # seconds on a long trace (an import of thousands of jobs).
    latest: dict[str, datetime] = {}
    for event in chain.events:
        if event.job_id is not None:
            latest[event.job_id] = max(
                event.occurred_at, latest.get(event.job_id, event.occurred_at)
            )
    quiet: list[float] = []
    for step in chain.steps:
        if step.kind is not StepKind.JOB or step.state not in (StepState.QUEUED, StepState.RUNNING):
            continue
        seen = [latest[step.job_id]] if step.job_id in latest else []
        if step.scheduled_for is not None:
            seen.append(step.scheduled_for)  # a job waiting for its time is not quiet before it
        if seen:
            quiet.append((now - max(seen)).total_seconds() / 60)
    return max(quiet, default=None)


def _waiting_until(chain: TraceChain, now: datetime) -> datetime | None:
    """The latest time an unfinished job of the trace is due to run, if still ahead."""
    due = [
        s.scheduled_for
        for s in chain.steps
        if s.kind is StepKind.JOB and s.scheduled_for is not None and s.scheduled_for > now
    ]
    return max(due, default=None)


def trace_facts(chain: TraceChain | None, now: datetime) -> TraceFacts:
    """The facts the escalation rules decide from (no personal data: states, codes, minutes)."""
    if chain is None:
        return TraceFacts(found=False)
    status = chain.summary.status
    final = {
        TraceStatus.FAILED: "failed",
        TraceStatus.DONE: "done",
        TraceStatus.RUNNING: "running",
        TraceStatus.QUEUED: "queued",
        TraceStatus.STUCK: "running",
        TraceStatus.INCOMPLETE: "done",
    }.get(status)
    # The rules read the last code as the error that decided the trace: the one the summary
    # names, not merely the latest stamped (a webhook's 503 that a retry got past, after the
    # email that bounced, sent support to the customer's endpoint).
    codes = [e.error_code for e in chain.events if e.error_code]
    named = chain.summary.last_error_code
    if named is not None:
        codes = [c for c in codes if c != named] + [named]
    return TraceFacts(
        found=True,
        final_state=final,
        error_codes=tuple(codes),
        job_missing=any(s.broken_link is BrokenLink.JOB_NOT_FOUND for s in chain.steps),
        removed_by_retention=status is TraceStatus.UNKNOWN,
        quiet_minutes=_quiet_minutes(chain, now),
        scheduled_for=_waiting_until(chain, now),
    )


def whole_minutes(span: timedelta) -> int:
    """``span`` in whole minutes, as the escalation rules word the stuck limit."""
    return int(span.total_seconds() // 60)


def escalation_hint(
    chain: TraceChain | None, rules: EscalationRules, now: datetime, stuck_after: timedelta
) -> EscalationHint:
    """Who acts next on a trace (the page's hint and the API's ``escalation``)."""
    return evaluate(trace_facts(chain, now), rules, stuck_after_minutes=whole_minutes(stuck_after))


@dataclass(frozen=True, slots=True)
class Answer:
    """One of the five questions with its answer in plain words."""

    question: str
    answer: str


def _finished(chain: TraceChain) -> str:
    # The customer's latest action is the one the ticket is about: a plan change after a
    # login, not the login; a failed plan change after a login is "No", not "Yes".
    last = latest_request(chain.steps)
    if last is not None and last.state is StepState.DONE:
        return f"Yes: {last.label} at {utc_time(last.finished_at or last.started_at)}."
    if last is not None:
        if last.state is StepState.FAILED:
            what = failed_label(last.label)  # never "Customer login failed is failed"
            why = f": {last.reason}" if last.reason else ""
            return f"No: {what} at {utc_time(last.finished_at or last.started_at)}{why}."
        return f"No: {last.label} is {state_word(last.state).lower()}."
    if chain.removed_events:
        return "Unknown: no customer action is left (earlier events were removed by retention)."
    return "Unknown: this trace holds only system work; no customer action was recorded."


def _job_state(job: StepOut | None) -> str:
    if job is None:
        return "There is no background job in this trace."
    if job.broken_link is BrokenLink.JOB_NOT_FOUND:
        return f"Job not found: {job.job_id} never started."
    if job.broken_link is BrokenLink.REMOVED_BY_RETENTION and job.state is StepState.UNKNOWN:
        return f"Removed by retention: {job.label} is older than the retention period."
    due = scheduled_after_news(job)
    if job.stuck:
        # How long it has been stuck: the last news is a fixed time, the hint gives the span.
        if due is not None:
            return (
                f"Stuck: {job.label} was due to run at {utc_time(due)} and there has been no "
                "news since."
            )
        return (
            f"Stuck: {job.label} is {state_word(job.state).lower()} with no news since "
            f"{utc_time(job.last_event_at)}."
        )
    if due is not None:
        return f"{state_word(job.state)}: {job.label}, scheduled to run at {utc_time(due)}."
    return f"{state_word(job.state)}: {job.label}."


def _sent_or_retried(job: StepOut | None) -> str:
    if job is None:
        # A login or a plan change starts no background work: nothing was due to be sent.
        return "Nothing to send: this trace started no background job, so nothing was retried."
    if job.broken_link is BrokenLink.JOB_NOT_FOUND:
        return "No: nothing was sent or retried, the job never ran."
    if job.state is StepState.UNKNOWN:
        return "Unknown: the job's events were removed by retention."
    # A retry that starts at once waited "0 s"; a retry whose earlier try left no event (e.g.
    # removed by retention) has no known wait, and "(waits )" would read as a glitch.
    waits = ", ".join(duration(d) for d in job.retry_delays_seconds)
    retried = (
        f"retried {job.retries} time{'s' if job.retries != 1 else ''}"
        + (f" (waits {waits})" if waits else "")
        if job.retries
        else "no retry"
    )
    last = job.attempt_history[-1] if job.attempt_history else None
    # The attempt as its events number it when they say more tries were made than are on
    # record (a try whose events are gone): "finished on attempt 1; retried 1 time" beside
    # events saying attempt 2. Counted when numbered from 0.
    attempt = max(job.attempts, last.number if last is not None else 0)
    if job.state is StepState.DONE:
        return f"Yes: {job.label} finished on attempt {attempt}; {retried}."
    if job.state is StepState.FAILED:
        why = f": {job.reason}" if job.reason else ""
        return f"No: {job.label} failed on attempt {attempt}{why}; {retried}."
    if last is None:
        # Only queued (or scheduled): "attempt 0 is queued" read as if a try had been made.
        return f"Not yet: {job.label} has not started, so nothing was sent or retried."
    if last.state is not StepState.RUNNING:
        # Queued again after its last try ended (a retry set for later): "attempt 1 is queued;
        # no retry" hid that the try failed and that another is coming.
        why = f": {last.reason}" if last.reason else ""
        so_far = f"; {retried} so far" if job.retries else ""
        return (
            f"Not yet: attempt {attempt} {state_word(last.state).lower()}{why}; another try "
            f"is queued{so_far}."
        )
    return f"Not yet: attempt {attempt} is {state_word(job.state).lower()}; {retried}."


def glance(chain: TraceChain, hint: EscalationHint) -> list[Answer]:
    """The five questions support asks, answered from the trace alone."""
    job = main_job(chain)
    answers = (
        _finished(chain),
        _job_state(job),
        _sent_or_retried(job),
        utc_time(chain.summary.started_at),
        f"{hint.headline}: {hint.next_step}",
    )
    return [Answer(q, a) for q, a in zip(QUESTIONS, answers, strict=True)]
