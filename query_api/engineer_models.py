"""Request and response models of the engineers' routes (raw data: never shown to support)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _stated(reason: str) -> str:
    # Spaces pass a length check but name no ticket: refused here, as the raw route does.
    if len(reason.strip()) < 3:
        raise ValueError("a reason (ticket or incident ID) is required")
    return reason.strip()


Reason = Annotated[
    str,
    Field(min_length=3, max_length=200, description="ticket or incident ID"),
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
    trace_id: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    type: str | None = Field(
        default=None, max_length=128, pattern=r"^[A-Za-z0-9_.*?\-]+$", description="glob: * and ?"
    )
    reason: Reason
    dry_run: bool = False


class RedriveIn(BaseModel):
    """Re-drive chosen dead letters (or every pending one) through the replay path."""

    model_config = ConfigDict(extra="forbid")

    ids: list[str] | None = Field(default=None, max_length=10_000)
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
