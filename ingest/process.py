"""The one processing step both paths share: validate ▶ redact ▶ label ▶ route.

``process`` is pure: bytes (or an already-parsed mapping) in, an ``Accepted`` or ``Rejected``
value out. The embedded collector calls it in-process; the faust agent calls it per message.
Bad input is a value with a reason, never an exception, so nothing is lost on the way to the
dead-letter store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from ingest.schema import (
    IDENTIFIER_SHAPE,
    TRACE_ID_SHAPE,
    Lane,
    RawEvent,
    TimelineEvent,
    describe_validation_error,
)
from redaction_rules.engine import IdentifierError, Redactor
from redaction_rules.scanners import scan_text


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid event: the raw original (restricted), what support will see, and the payload
    as JSON bytes (as sent, or as serialised from a mapping) for the restricted raw store."""

    raw: RawEvent
    timeline: TimelineEvent
    payload: bytes

    @property
    def lane(self) -> Lane:
        return self.timeline.lane


@dataclass(frozen=True, slots=True)
class Rejected:
    """Input that cannot become a timeline event, with the reason and the original bytes."""

    reason: str
    payload: bytes
    event_id: str | None = None
    trace_id: str | None = None


Routed = Accepted | Rejected


@dataclass(frozen=True, slots=True)
class Retention:
    """The timeline retention where an event arrives: ``days`` before ``received_at``.

    Reads show events from ``now - days`` on and the table TTL drops older ones, so an event
    that occurred before ``oldest`` could never be shown: accepting it would answer
    "accepted" for an event nobody can ever read. It is refused with the reason instead, the
    same way on every path (collector, Kafka processor, replay, re-drive), each passing the
    moment it receives the event (the processor: when the event reached the raw topic, so a
    lagging or restarted worker gives the verdict the collector gave).
    """

    days: int
    received_at: datetime
    # The oldest ``occurred_at`` a timeline still shows at ``received_at`` (computed once: a
    # batch judges every event against it).
    oldest: datetime = field(init=False)

    def __post_init__(self) -> None:
        oldest = self.received_at.astimezone(UTC) - timedelta(days=self.days)
        object.__setattr__(self, "oldest", oldest)

    def problem(self, occurred_at: datetime) -> str | None:
        """Why an event of ``occurred_at`` cannot be kept, or None when it can."""
        if occurred_at >= self.oldest:
            return None
        # The same words for the same event whenever it is sent (a re-send, a replay).
        return (
            f"occurred_at {occurred_at.astimezone(UTC).isoformat()} is older than the "
            f"{self.days}-day timeline retention: it could never be shown, so it is not stored"
        )


def message_time(seconds: float | None) -> datetime | None:
    """When a raw message reached the topic, from its timestamp in seconds (faust's
    ``Message.timestamp``; the Kafka collector stamps each message with the millisecond it
    judged it at, ``ms / 1000``); None when it has none.

    Judging retention at this moment rather than at processing time gives one verdict per
    message: a worker that lags, or re-reads the uncommitted tail after a restart, routes
    the message as the first attempt (and the collector's answer) did, so it can never be
    stored by one attempt and dead-lettered by the next. One function on both sides, so
    the two moments are the same ``datetime`` to the microsecond.
    """
    if seconds is None or seconds <= 0:
        return None
    return datetime.fromtimestamp(seconds, UTC)


def _best_effort_ids(obj: object) -> tuple[str | None, str | None]:
    if not isinstance(obj, Mapping):
        return None, None
    ev, tr = obj.get("event_id"), obj.get("trace_id")
    # Only values with the shape of an ID: anything else (an email sent as a trace ID) is
    # input that stays in the payload, not a label of the dead letter.
    return (
        ev if isinstance(ev, str) and IDENTIFIER_SHAPE.fullmatch(ev) else None,
        tr if isinstance(tr, str) and TRACE_ID_SHAPE.fullmatch(tr) else None,
    )


def process(
    payload: bytes | Mapping[str, Any], redactor: Redactor, retention: Retention | None = None
) -> Routed:
    """Validate, redact, label and route one raw event.

    Returns ``Accepted`` with the raw event (``event_id`` filled in) and its timeline event, or
    ``Rejected`` with a reason a service engineer can act on and the original bytes. With
    ``retention``, an event older than the timeline keeps is rejected too (``Retention``);
    without it (checking rule files) only the event itself is judged.
    """
    if isinstance(payload, bytes | bytearray | memoryview):
        raw_bytes = bytes(payload)
        try:
            obj: object = orjson.loads(raw_bytes)
        except orjson.JSONDecodeError as exc:
            return Rejected(reason=f"not valid JSON: {exc}", payload=raw_bytes)
    else:
        obj = payload
        try:
            raw_bytes = orjson.dumps(payload, default=str)
        except TypeError as exc:
            return Rejected(reason=f"not serialisable: {exc}", payload=repr(payload).encode())
    if not isinstance(obj, Mapping):
        return Rejected(
            reason=f"event must be a JSON object, got {type(obj).__name__}", payload=raw_bytes
        )
    try:
        raw = RawEvent.model_validate(obj).with_event_id()
    except ValidationError as exc:
        event_id, trace_id = _best_effort_ids(obj)
        return Rejected(
            reason=describe_validation_error(exc, scan_text),
            payload=raw_bytes,
            event_id=event_id,
            trace_id=trace_id,
        )
    expired = None if retention is None else retention.problem(raw.occurred_at)
    if expired is not None:
        return Rejected(
            reason=expired, payload=raw_bytes, event_id=raw.event_id, trace_id=raw.trace_id
        )
    try:
        timeline = redactor.redact(raw)
    except IdentifierError as exc:  # an id that is personal data: refused, never masked
        # (The dead letter keeps the raw payload anyway: the restricted copy, by design.)
        return Rejected(
            reason=str(exc), payload=raw_bytes, event_id=raw.event_id, trace_id=raw.trace_id
        )
    except Exception as exc:  # noqa: BLE001 - a rule bug must not lose the event
        return Rejected(
            reason=f"redaction failed: {type(exc).__name__}",
            payload=raw_bytes,
            event_id=raw.event_id,
            trace_id=raw.trace_id,
        )
    return Accepted(raw=raw, timeline=timeline, payload=raw_bytes)
