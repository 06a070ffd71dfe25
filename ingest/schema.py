"""Versioned event contracts: what services send (raw v1) and what support sees (timeline v1).

Raw events are validated strictly: unknown top-level keys are rejected (loud on bad input), only
``data`` is free-form. Timeline events hold nothing but what a redaction rule kept.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 1

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]
TraceId = Annotated[str, Field(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
# The same shapes as one regex each, for checks outside a model (fullmatch).
IDENTIFIER_SHAPE = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
TRACE_ID_SHAPE = re.compile(r"[A-Za-z0-9_\-]{4,64}")
_LONG_NUMBER = re.compile(r"\d{7}")
_JOINED_DIGITS = re.compile(r"(?<=\d)[._](?=\d)")


def _named(value: str) -> str:
    # A type is shown to support as it is, and the scanner reads digits joined to letters and
    # dots as part of a name: a phone or account number in a type would be shown whole.
    # Digit groups joined by dots or underscores count as one ("failed.4242.4242.4242.4242").
    if _LONG_NUMBER.search(_JOINED_DIGITS.sub("", value)):
        raise ValueError("event types are names: a run of 7 or more digits is not allowed")
    return value


EventType = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$"),
    AfterValidator(_named),
]


# The timeline's retention TTL counts from ``occurred_at`` in ClickHouse ``DateTime``, which
# ends in February 2106: a later time wraps around, reads as long expired, and the accepted
# event vanished from the timeline without a word. A fixed bound (not "now + skew") keeps
# ``process`` pure, so the collector, the Kafka processor and a replay give one verdict.
LATEST_OCCURRED_AT = datetime(2100, 1, 1, tzinfo=UTC)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("occurred_at needs a timezone (use Z or +00:00)")
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the last representable instant
        raise ValueError("occurred_at is out of range once converted to UTC") from None
    if value >= LATEST_OCCURRED_AT:
        raise ValueError(
            "occurred_at is too far in the future (the latest accepted is 2099-12-31): "
            "send when the event happened"
        )
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class Lane(StrEnum):
    """Which side of the story an event belongs to."""

    CUSTOMER = "customer"
    SYSTEM = "system"


class Subject(BaseModel):
    """Stable identifiers support follows across systems (never personal data)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    customer_id: Identifier | None = None
    workspace_id: Identifier | None = None
    order_id: Identifier | None = None
    job_id: Identifier | None = None
    request_id: Identifier | None = None


class ErrorInfo(BaseModel):
    """An error as the service saw it; ``message`` is free text and may contain PII."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Annotated[str, Field(max_length=128)] | None = None
    message: Annotated[str, Field(max_length=65536)] | None = None


class RawEvent(BaseModel):
    """Raw event v1, exactly as a service emits it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Identifier | None = None
    trace_id: TraceId
    type: EventType
    occurred_at: AwareDatetime
    source: Annotated[str, Field(min_length=1, max_length=128)]
    actor: Literal["customer", "system"] | None = None
    subject: Subject = Subject()
    status: Annotated[str, Field(max_length=32, pattern=r"^[a-z_]+$")] | None = None
    attempt: Annotated[int, Field(ge=0, le=10_000)] | None = None
    error: ErrorInfo | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    def with_event_id(self) -> RawEvent:
        """Return the event with an ``event_id``; a missing one is derived from the content.

        Deriving it (instead of a random UUID) keeps a re-sent batch idempotent even when the
        service did not set an idempotency key.
        """
        if self.event_id is not None:
            return self
        body = orjson.dumps(
            self.model_dump(mode="json", exclude={"event_id"}), option=orjson.OPT_SORT_KEYS
        )
        digest = hashlib.blake2b(body, digest_size=12).hexdigest()
        return self.model_copy(update={"event_id": f"ev_{digest}"})


class TimelineEvent(BaseModel):
    """Timeline event v1: the redacted, labelled record support reads.

    ``fields`` maps a kept ``data`` path (``user.email``, ``items[0].sku``) to its masked value;
    ``field_rules`` maps the same path to the id of the rule that kept it. ``lookup_keys`` are
    keyed HMACs of emails/phones seen in kept fields so support can find a customer by what the
    customer says without the value ever being stored.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
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
    fields: dict[str, str] = Field(default_factory=dict)
    field_rules: dict[str, str] = Field(default_factory=dict)
    lookup_keys: list[str] = Field(default_factory=list)
    dropped: int = 0
    rules_version: str


class Topic(StrEnum):
    """Kafka topics, named once. Deployments may override names through settings."""

    RAW = "safetrail.raw.v1"
    CUSTOMER = "safetrail.timeline.customer.v1"
    SYSTEM = "safetrail.timeline.system.v1"
    DLQ = "safetrail.dlq.v1"


def describe_validation_error(exc: ValidationError, shown: Callable[[str], str] = str) -> str:
    """One line per invalid field, in words a service engineer can act on.

    Field names pass through ``shown``: an unknown key is input too, and may be an email or
    a card number (``{"maria@x.com": 1}``); the processing step masks them as free text.
    """
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(shown(str(p)) for p in err["loc"]) or "event"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
