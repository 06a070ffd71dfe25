"""Request and response models of the engineers' routes (raw data: never shown to support)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from projectors.replay import MAX_REASON, MIN_REASON, reason_problem
from redaction_rules.engine import id_problem


def _stated(reason: str) -> str:
    # Spaces pass a length check but name no ticket, and a line break or control character
    # would not read back as typed: refused here by the same rule as the raw route's.
    problem = reason_problem(reason.strip())
    if problem is not None:
        raise ValueError(problem)
    return reason.strip()


def _plain_trace_id(trace_id: str | None) -> str | None:
    # A value that reads as a secret or personal data is no trace ID (ingest refuses such
    # IDs), and the replay's audit entry, kept for good, must not keep it.
    if trace_id is not None and id_problem(trace_id) is not None:
        raise ValueError("that is not a valid trace ID")
    return trace_id


Reason = Annotated[
    str,
    Field(min_length=MIN_REASON, max_length=MAX_REASON, description="ticket or incident ID"),
    AfterValidator(_stated),
]


class RawTraceOut(BaseModel):
    """The raw events of one trace as services sent them, oldest first."""

    trace_id: str
    reason: str
    count: int
    events: list[dict[str, Any]]


class DeadLetterOut(BaseModel):
    """One dead letter: why it was rejected, where it came from, the bytes as text."""

    dead_letter_id: str
    received_at: datetime
    reason: str
    origin: str
    topic: str
    partition: int | None
    offset: int | None
    event_id: str | None
    trace_id: str | None
    payload: str = Field(description="the input as received (UTF-8, invalid bytes replaced)")
    redriven_at: datetime | None
    replay_id: str | None


class DeadLettersOut(BaseModel):
    """Dead letters, newest first."""

    count: int
    data: list[DeadLetterOut]


class ReplayIn(BaseModel):
    """A replay: raw events received in ``[from, to)``, optionally one trace and a type glob."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: datetime = Field(alias="from", description="inclusive, ISO 8601 with zone")
    end: datetime = Field(alias="to", description="exclusive, ISO 8601 with zone")
    trace_id: Annotated[
        str | None,
        Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$"),
        AfterValidator(_plain_trace_id),
    ] = None
    type: str | None = Field(
        default=None, max_length=128, pattern=r"^[A-Za-z0-9_.*?\-]+$", description="glob: * and ?"
    )
    reason: Reason
    dry_run: bool = False


class RedriveIn(BaseModel):
    """Re-drive chosen dead letters (or every pending one) through the replay path."""

    model_config = ConfigDict(extra="forbid")

    # No key: every pending dead letter. An empty list is refused rather than re-driving
    # nothing while answering 200 (the CLI reads "no IDs" as "all pending").
    ids: list[str] | None = Field(default=None, min_length=1, max_length=10_000)
    reason: Reason
    dry_run: bool = False


class TypeCountsOut(BaseModel):
    """Per event type: read, changed (or would change), new, rejected."""

    events: int
    changed: int
    new: int
    rejected: int


class ReplayOut(BaseModel):
    """What a replay or re-drive read, changed and wrote, under which rules versions."""

    replay_id: str
    kind: str
    dry_run: bool
    status: str
    read: int
    accepted: int
    changed: int
    rejected: int
    written: int
    rules_before: dict[str, int]
    rules_after: str
    per_type: dict[str, TypeCountsOut]
