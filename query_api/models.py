"""Public response models of query API v1 (storage rows stay in ``projectors.rows``).

Everything here is built from redacted timeline events, so any field is safe to show to
support, copy into a ticket, or render on the support page.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ingest.schema import Lane, TimelineEvent

T = TypeVar("T")


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class StepKind(StrEnum):
    """What a step of a trace chain stands for."""

    REQUEST = "request"  # what the customer did (customer events of one request)
    JOB = "job"  # one background job the request enqueued, with its attempts
    ERROR = "error"  # the error record that ended a job or the trace
    EVENT = "event"  # a system event that belongs to no request or job


class StepState(StrEnum):
    """Where a step stands now."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    UNKNOWN = "unknown"  # no events left to tell (see the step's broken link)


class BrokenLink(StrEnum):
    """Why a step has no events to show, in the words support reads."""

    JOB_NOT_FOUND = "job not found"
    REMOVED_BY_RETENTION = "removed by retention"


class TraceStatus(StrEnum):
    """Overall state of a trace, worst first."""

    FAILED = "failed"
    INCOMPLETE = "incomplete"  # a job the request enqueued has no events at all
    STUCK = "stuck"  # running or queued with no news for longer than the stuck threshold
    RUNNING = "running"
    QUEUED = "queued"
    DONE = "done"
    UNKNOWN = "unknown"  # every event was removed by retention


class EventOut(_Out):
    """One redacted timeline event as support sees it."""

    event_id: str
    trace_id: str
    type: str
    label: str
    lane: Lane
    occurred_at: datetime
    source: str
    status: str | None = None
    attempt: int | None = None
    error_code: str | None = None
    reason: str | None = None
    customer_id: str | None = None
    workspace_id: str | None = None
    order_id: str | None = None
    job_id: str | None = None
    request_id: str | None = None
    fields: dict[str, str] = Field(default_factory=dict, description="kept fields, masked")
    rules_version: str

    @classmethod
    def from_timeline(cls, event: TimelineEvent) -> EventOut:
        """The public view of a stored timeline event (lookup keys are not shown).

        Every field here has the same name and type in ``TimelineEvent``, already a validated
        model, so the values are copied over without validating them a second time.
        """
        values = {name: getattr(event, name) for name in _EVENT_OUT_FIELDS}
        values["fields"] = dict(values["fields"])
        return cls.model_construct(**values)


_EVENT_OUT_FIELDS = tuple(EventOut.model_fields)


class AttemptOut(_Out):
    """One try of a job."""

    number: int
    started_at: datetime
    finished_at: datetime | None = Field(
        default=None, description="None while running, or when a failed try never reported its end"
    )
    state: StepState
    is_retry: bool
    wait_before_seconds: float | None = Field(
        default=None,
        description=(
            "first attempt: time spent queued; a retry: delay since the previous try ended (its "
            "last event when its end was not reported)"
        ),
    )
    error_code: str | None = None
    reason: str | None = None


class StepOut(_Out):
    """One link of the trace chain: a request, a job, an error or a lone system event."""

    kind: StepKind
    label: str
    request_id: str | None = None
    job_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_event_at: datetime | None = Field(default=None, description="latest news of the step")
    scheduled_for: datetime | None = Field(
        default=None,
        description="unfinished job: when its events say it is due to run (its stuck limit "
        "counts from then)",
    )
    state: StepState
    stuck: bool = False
    attempts: int = 0
    retries: int = 0
    retry_delays_seconds: list[float] = Field(default_factory=list)
    attempt_history: list[AttemptOut] = Field(default_factory=list)
    last_retry_at: datetime | None = None
    error_code: str | None = None
    reason: str | None = None
    broken_link: BrokenLink | None = None
    note: str | None = Field(default=None, description="plain-words explanation of a gap")
    removed_events: int = 0
    event_ids: list[str] = Field(default_factory=list)


class TraceSummary(_Out):
    """The top of the trace view: the answer to "what happened?" in a few facts."""

    trace_id: str
    status: TraceStatus
    headline: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    customer_finished_action: bool | None = Field(
        default=None, description="did the customer complete the request (None: unknown)"
    )
    customer_id: str | None = None
    workspace_id: str | None = None
    facts: dict[str, str] = Field(default_factory=dict, description="masked customer facts")
    email: str | None = Field(default=None, description="masked email, if a rule kept one")
    main_job_id: str | None = None
    main_job_label: str | None = None
    last_error_code: str | None = None
    last_reason: str | None = None
    last_retry_at: datetime | None = None


class EscalationOut(_Out):
    """Who acts next on a trace, from the escalation rules (``escalation.yaml``)."""

    owner: Literal["support", "engineering"]
    headline: str = Field(examples=["Support can act", "Engineering should take over"])
    reason: str
    next_step: str
    rule_id: str = Field(description="the rule that decided, for the team that keeps the rules")


class TraceChain(_Out):
    """``GET /v1/traces/{trace_id}``: summary, steps in time order, events oldest first."""

    summary: TraceSummary
    steps: list[StepOut]
    events: list[EventOut]
    removed_events: int = 0
    escalation: EscalationOut | None = Field(
        default=None, description="is this for support or for engineering: who acts next and how"
    )


class JobHistory(_Out):
    """``GET /v1/jobs/{job_id}``: one job's attempts, delays, final result and events."""

    job_id: str
    trace_ids: list[str]
    step: StepOut
    events: list[EventOut]


class Page(_Out, Generic[T]):
    """A page of results: ``next`` is the cursor for the following page, null on the last."""

    data: list[T]
    count: int = Field(description="items matching the filters, over all pages")
    next: str | None = Field(
        default=None,
        description="cursor for the following page, valid with the same record and filters "
        "only; null on the last page",
    )


class EventResultOut(_Out):
    """Outcome of one event of an ingest request."""

    index: int
    event_id: str | None = None
    status: str = Field(description="accepted | rejected")
    reason: str | None = None


class IngestResponse(_Out):
    """``POST /v1/events``: counts and one result per event, in request order."""

    accepted: int
    rejected: int
    results: list[EventResultOut]


class AccessLogEntryOut(_Out):
    """Who read which record, when, and through which route."""

    entry_id: str
    at: datetime
    actor: str
    role: str
    route: str
    record_kind: str
    record_id: str
    reason: str | None = None
    details: dict[str, Any] | None = Field(
        default=None,
        description="What a replay or re-drive did: range, filters, source, rules versions "
        "and counts (null for a read)",
    )


class TtlOut(_Out):
    """Configured against actual TTL of one table."""

    table: str
    expected_days: int | None
    actual_days: int | None
    ok: bool


class HealthOut(_Out):
    """``GET /healthz``."""

    status: str
    storage: str
    mode: str
    ttl_ok: bool
    ttl: list[TtlOut]


class ErrorOut(_Out):
    """Every error body: a stable code and a sentence a person can act on."""

    error: str
    message: str
