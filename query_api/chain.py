"""The trace chain: group a trace's events into steps, label broken links, sum it all up.

Pure: events and id-only index rows in, a ``TraceChain`` out; no storage, no clock. Steps are

* one ``request`` per customer request (customer events by ``request_id``; system events that
  carry only the ``request_id``, like ``account.created``, join it),
* one ``job`` per ``job_id`` (system events of that job: attempts, retries, delays),
* an ``error`` step for the failure that ended a job, and for a failing system event that
  belongs to no job,
* ``event`` steps for other system events that belong to neither.

Broken links are said in plain words: a ``job_id`` named in the trace without any event of its
own is "job not found"; events the index remembers but the timeline no longer holds because
they are older than retention are "removed by retention".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from ingest.schema import Lane, TimelineEvent
from projectors.rows import TraceIndexRow
from query_api.models import (
    BrokenLink,
    EventOut,
    JobHistory,
    StepKind,
    StepOut,
    StepState,
    TraceChain,
)
from query_api.steps import event_order, job_step, point_step
from query_api.summary import summarize

DEFAULT_STUCK_AFTER = timedelta(minutes=30)
Key = tuple[StepKind, str]


def step_key(lane: Lane, job_id: str | None, request_id: str | None, event_id: str) -> Key:
    """Which step an event (or an index row) belongs to."""
    if job_id and lane is Lane.SYSTEM:
        return StepKind.JOB, job_id
    if request_id:
        return StepKind.REQUEST, request_id
    if lane is Lane.CUSTOMER:
        return StepKind.REQUEST, event_id
    return StepKind.EVENT, event_id


def _humanize(event_type: str) -> str:
    """``signup_email.sent`` -> ``Signup email``: the only label left once events are gone."""
    return event_type.split(".", 1)[0].replace("_", " ").capitalize()


def _removed_note(count: int, retention: timedelta, whole: bool) -> str:
    what = "All events" if whole else f"{count} earlier event{'s' if count != 1 else ''}"
    return (
        f"{what} of this step {'were' if whole or count != 1 else 'was'} removed by retention "
        f"(timelines are kept {retention.days} days)."
    )


def _with_removed(step: StepOut, rows: Sequence[TraceIndexRow], retention: timedelta) -> StepOut:
    return step.model_copy(
        update={
            "broken_link": BrokenLink.REMOVED_BY_RETENTION,
            "note": _removed_note(len(rows), retention, whole=False),
            "removed_events": len(rows),
        }
    )


def _removed_step(key: Key, rows: Sequence[TraceIndexRow], retention: timedelta) -> StepOut:
    kind, _ = key
    return StepOut(
        kind=kind,
        label=_humanize(rows[0].type),
        request_id=next((r.request_id for r in rows if r.request_id), None),
        job_id=next((r.job_id for r in rows if r.job_id), None),
        started_at=rows[0].occurred_at,
        last_event_at=rows[-1].occurred_at,
        state=StepState.UNKNOWN,
        broken_link=BrokenLink.REMOVED_BY_RETENTION,
        note=_removed_note(len(rows), retention, whole=True),
        removed_events=len(rows),
        event_ids=[r.event_id for r in rows],
    )


def _missing_job_step(
    job_id: str, referenced_by: TimelineEvent, now: datetime, stuck_after: timedelta
) -> StepOut:
    """A job an event names but none of whose events arrived.

    Within the stuck limit of the naming event it is only not heard from yet (a worker picks
    it up, its first event is on its way): queued. After that it counts as never started.
    """
    waiting = now - referenced_by.occurred_at <= stuck_after
    if waiting:
        note = (
            f"“{referenced_by.label}” names job {job_id}; no event of that job has arrived "
            "yet: it is waiting for a worker. Without news for longer than the stuck limit "
            "it counts as never started."
        )
    else:
        note = (
            f"“{referenced_by.label}” names job {job_id}, but no event of that job was "
            "received: it may never have been queued or started."
        )
    return StepOut(
        kind=StepKind.JOB,
        label="Background job",
        job_id=job_id,
        request_id=referenced_by.request_id,
        last_event_at=referenced_by.occurred_at if waiting else None,
        state=StepState.QUEUED if waiting else StepState.UNKNOWN,
        broken_link=None if waiting else BrokenLink.JOB_NOT_FOUND,
        note=note,
    )


def _error_step(job: StepOut, events: Sequence[TimelineEvent]) -> StepOut | None:
    failing = next((e for e in reversed(events) if e.error_code or e.status == "failed"), None)
    if failing is None:
        return None
    return StepOut(
        kind=StepKind.ERROR,
        label=failing.label,
        job_id=job.job_id,
        request_id=job.request_id,
        started_at=failing.occurred_at,
        finished_at=failing.occurred_at,
        state=StepState.FAILED,
        error_code=job.error_code or failing.error_code,
        reason=job.reason or failing.reason,
        event_ids=[failing.event_id],
    )


def _removed_rows(
    rows: Sequence[TraceIndexRow], live: set[str], cutoff: datetime
) -> list[TraceIndexRow]:
    # Rows missing from the timeline but still inside retention are a read racing a write,
    # not a removal; only older ones are reported.
    return [r for r in rows if r.event_id not in live and r.occurred_at < cutoff]


def build_steps(
    events: Sequence[TimelineEvent],
    index_rows: Sequence[TraceIndexRow],
    now: datetime,
    retention: timedelta,
    stuck_after: timedelta = DEFAULT_STUCK_AFTER,
) -> list[StepOut]:
    """The steps of a trace in time order (``events`` deduplicated, any order)."""
    ordered = sorted(events, key=event_order)
    live: dict[Key, list[TimelineEvent]] = {}
    for event in ordered:
        key = step_key(event.lane, event.job_id, event.request_id, event.event_id)
        live.setdefault(key, []).append(event)
    gone: dict[Key, list[TraceIndexRow]] = {}
    for row in _removed_rows(index_rows, {e.event_id for e in ordered}, now - retention):
        gone.setdefault(step_key(row.lane, row.job_id, row.request_id, row.event_id), []).append(
            row
        )
    anchored: list[tuple[datetime, int, StepOut]] = []

    def add(anchor: datetime, step: StepOut) -> None:
        anchored.append((anchor, len(anchored), step))

    for key, group in live.items():
        kind, ident = key
        if kind is StepKind.JOB:
            step = job_step(ident, group, now, stuck_after)
        else:
            step = point_step(kind, group)
        removed = gone.pop(key, [])
        add(group[0].occurred_at, _with_removed(step, removed, retention) if removed else step)
        if kind is StepKind.JOB and step.state is StepState.FAILED:
            error = _error_step(step, group)
            if error is not None and error.started_at is not None:
                add(error.started_at, error)
    for key, removed in gone.items():
        add(removed[0].occurred_at, _removed_step(key, removed, retention))
    known_jobs = {s.job_id for _, _, s in anchored if s.kind is StepKind.JOB}
    for event in ordered:
        if event.job_id and event.job_id not in known_jobs:
            known_jobs.add(event.job_id)
            add(event.occurred_at, _missing_job_step(event.job_id, event, now, stuck_after))
    return [step for _, _, step in sorted(anchored, key=lambda item: (item[0], item[1]))]


def build_chain(
    events: Sequence[TimelineEvent],
    trace_index_rows: Sequence[TraceIndexRow],
    now: datetime,
    retention: timedelta,
    *,
    stuck_after: timedelta = DEFAULT_STUCK_AFTER,
) -> TraceChain:
    """The full trace view from a trace's live events and its index rows.

    Raises ``ValueError`` when both are empty: there is no trace to describe.
    """
    if not events and not trace_index_rows:
        raise ValueError("a trace chain needs at least one event or index row")
    ordered = sorted(events, key=event_order)
    trace_id = ordered[0].trace_id if ordered else trace_index_rows[0].trace_id
    steps = build_steps(ordered, trace_index_rows, now, retention, stuck_after)
    removed = sum(s.removed_events for s in steps)
    return TraceChain(
        summary=summarize(trace_id, ordered, steps, trace_index_rows),
        steps=steps,
        events=[EventOut.from_timeline(e) for e in ordered],
        removed_events=removed,
    )


def build_job_history(
    job_id: str,
    events: Sequence[TimelineEvent],
    index_rows: Sequence[TraceIndexRow],
    now: datetime,
    retention: timedelta,
    *,
    stuck_after: timedelta = DEFAULT_STUCK_AFTER,
) -> JobHistory | None:
    """One job's history from every live event naming it and its index rows; None if unknown.

    A job named only by the request that enqueued it comes back labelled "job not found".
    """
    ordered = sorted(events, key=event_order)
    own = [e for e in ordered if e.lane is Lane.SYSTEM and e.job_id == job_id]
    removed = [
        r
        for r in _removed_rows(index_rows, {e.event_id for e in ordered}, now - retention)
        if r.lane is Lane.SYSTEM
    ]
    key: Key = (StepKind.JOB, job_id)
    if own:
        step = job_step(job_id, own, now, stuck_after)
        step = _with_removed(step, removed, retention) if removed else step
    elif removed:
        step = _removed_step(key, removed, retention)
    elif ordered:
        step = _missing_job_step(job_id, ordered[0], now, stuck_after)
    else:
        return None
    trace_ids = sorted({e.trace_id for e in ordered} | {r.trace_id for r in index_rows})
    return JobHistory(
        job_id=job_id,
        trace_ids=trace_ids,
        step=step,
        events=[EventOut.from_timeline(e) for e in ordered],
    )
