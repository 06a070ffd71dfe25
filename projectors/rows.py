"""Storage rows: how contract objects become columns for bulk inserts, and columns come back.

Optional identifiers and codes are stored as ``''`` (identifiers are never empty by contract)
so they can take part in sort keys without ``Nullable``; they come back as ``None``.
Inserts are column-oriented: one Python list per column, built in a single pass each, which is
what clickhouse-connect serialises fastest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

import orjson

from ingest.schema import Lane, RawEvent, TimelineEvent

TIMELINE_COLUMNS: tuple[str, ...] = (
    "event_id",
    "trace_id",
    "type",
    "label",
    "lane",
    "occurred_at",
    "source",
    "status",
    "attempt",
    "error_code",
    "reason",
    "customer_id",
    "workspace_id",
    "order_id",
    "job_id",
    "request_id",
    "fields",
    "field_rules",
    "lookup_keys",
    "dropped",
    "rules_version",
    "schema_version",
)
_OPTIONAL_TEXT = frozenset(
    [
        "status",
        "error_code",
        "reason",
        "customer_id",
        "workspace_id",
        "order_id",
        "job_id",
        "request_id",
    ]
)
RAW_COLUMNS: tuple[str, ...] = (
    "event_id",
    "trace_id",
    "type",
    "occurred_at",
    "received_at",
    "origin",
    "payload",
)
DEAD_LETTER_COLUMNS: tuple[str, ...] = (
    "dead_letter_id",
    "received_at",
    "reason",
    "payload",
    "origin",
    "topic",
    "partition",
    "offset",
    "event_id",
    "trace_id",
)
TRACE_INDEX_COLUMNS: tuple[str, ...] = (
    "trace_id",
    "event_id",
    "type",
    "lane",
    "job_id",
    "request_id",
    "occurred_at",
)
ACCESS_LOG_COLUMNS: tuple[str, ...] = (
    "entry_id",
    "at",
    "actor",
    "role",
    "route",
    "record_kind",
    "record_id",
    "reason",
)


def utc(value: datetime) -> datetime:
    """The same instant as an aware UTC datetime (naive values are taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_TIMELINE_GETTER = itemgetter(*TIMELINE_COLUMNS)


def micros(value: datetime) -> int:
    """Microseconds since the epoch: DateTime64(6) ticks, which the driver writes as they are
    (converting a datetime per value in the driver costs more than the insert itself)."""
    return (utc(value) - _EPOCH) // _MICROSECOND


# What the API's views of an event show: every column but the rule ids, the lookup keys and
# the bookkeeping counters (``EventOut`` has none of them), so view reads leave them unread.
VIEW_COLUMNS: tuple[str, ...] = tuple(
    c
    for c in TIMELINE_COLUMNS
    if c not in ("field_rules", "lookup_keys", "dropped", "schema_version")
)


# The ``view`` column: an event's VIEW_COLUMNS but ``event_id`` (read beside it, to pick the
# newest version) as one JSON array of the column values, so a trace or job read opens three
# columns instead of nineteen (migration 0008).
VIEW_PACKED_COLUMNS: tuple[str, ...] = tuple(c for c in VIEW_COLUMNS if c != "event_id")
_PACKED_AT = tuple(TIMELINE_COLUMNS.index(c) for c in VIEW_PACKED_COLUMNS)
_VIEW_EVENT_ID = VIEW_COLUMNS.index("event_id")
_VIEW_OCCURRED_AT = VIEW_COLUMNS.index("occurred_at")


def timeline_columns(events: Sequence[TimelineEvent], ingested_at: datetime) -> list[list[Any]]:
    """Column lists for ``timeline_events`` (TIMELINE_COLUMNS order, then ``ingested_at`` and
    ``view``).

    One C-level sweep over each event's field dict (pydantic keeps field values in
    ``__dict__``; reading it is several times faster than attribute access), then per-column
    fix-ups, instead of a Python loop per column and event.
    """
    rows = [_TIMELINE_GETTER(event.__dict__) for event in events]
    columns = [list(column) for column in zip(*rows, strict=True)]
    for index, name in enumerate(TIMELINE_COLUMNS):
        if name in _OPTIONAL_TEXT:
            columns[index] = [value or "" for value in columns[index]]
    lane = TIMELINE_COLUMNS.index("lane")
    columns[lane] = [value.value for value in columns[lane]]
    occurred = TIMELINE_COLUMNS.index("occurred_at")
    columns[occurred] = [micros(value) for value in columns[occurred]]
    columns.append([micros(ingested_at)] * len(events))
    dumps = orjson.dumps
    packed = zip(*(columns[i] for i in _PACKED_AT), strict=True)
    columns.append([dumps(values) for values in packed])
    return columns


def _event_from(names: Sequence[str], row: Sequence[Any]) -> TimelineEvent:
    """A ``TimelineEvent`` from a row selected in ``names`` order (TIMELINE_COLUMNS or a
    subset holding every optional text, ``lane``, ``occurred_at`` and ``fields``).

    The row was validated before it was stored and the column types hold every field in its
    model type (after the fix-ups below), so the model is built without validating it again;
    columns not read stay unset and hold their defaults.
    """
    values = dict(zip(names, row, strict=True))
    read = set(values)
    for name in _OPTIONAL_TEXT:
        values[name] = values[name] or None
    values["lane"] = Lane(values["lane"])
    values["occurred_at"] = utc(values["occurred_at"])
    values["fields"] = dict(values["fields"])
    # Columns with a default factory get their empty value here: for a missing one,
    # model_construct inspects the factory's signature on every call (pydantic), which cost
    # more than building the event. ``model_fields_set`` still names only the columns read.
    values["field_rules"] = dict(values["field_rules"]) if "field_rules" in read else {}
    values["lookup_keys"] = list(values["lookup_keys"]) if "lookup_keys" in read else []
    return TimelineEvent.model_construct(read, **values)


def timeline_from_row(row: Sequence[Any]) -> TimelineEvent:
    """Rebuild a ``TimelineEvent`` from a row selected in TIMELINE_COLUMNS order."""
    return _event_from(TIMELINE_COLUMNS, row)


def timeline_view_from_row(row: Sequence[Any]) -> TimelineEvent:
    """A ``TimelineEvent`` from a row selected in VIEW_COLUMNS order, for the API's views:
    ``model_fields_set`` leaves out the columns not read, which nothing that renders a view
    reads."""
    return _event_from(VIEW_COLUMNS, row)


def timeline_view_from_packed(event_id: str, view: str | bytes) -> TimelineEvent:
    """The same event as ``timeline_view_from_row``, from its ``event_id`` and ``view`` column
    (the values as they were written: ``occurred_at`` in microseconds)."""
    values = orjson.loads(view)
    values.insert(_VIEW_EVENT_ID, event_id)
    values[_VIEW_OCCURRED_AT] = _EPOCH + values[_VIEW_OCCURRED_AT] * _MICROSECOND
    return _event_from(VIEW_COLUMNS, values)


def raw_columns(
    raws: Sequence[RawEvent],
    received_at: datetime,
    origin: str = "http",
    payloads: Sequence[bytes] | None = None,
) -> list[list[Any]]:
    """Column lists for ``raw_events``.

    ``payloads`` are the bytes as the service sent them, aligned with ``raws``; without them
    the validated event is stored as JSON.
    """
    if payloads is None:
        payloads = [orjson.dumps(r.model_dump(mode="json", exclude_none=True)) for r in raws]
    elif len(payloads) != len(raws):
        raise ValueError("payloads must be aligned with raws")
    return [
        [r.event_id or "" for r in raws],
        [r.trace_id for r in raws],
        [r.type for r in raws],
        [micros(r.occurred_at) for r in raws],
        [micros(received_at)] * len(raws),
        [origin] * len(raws),
        list(payloads),
    ]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Input that could not become a timeline event, with its reason and where it came from.

    ``origin`` is ``http`` for the collector or ``kafka`` for a consumer, which also fills
    ``topic``/``partition``/``offset``.
    """

    reason: str
    payload: bytes
    origin: str = "http"
    topic: str = ""
    partition: int | None = None
    offset: int | None = None
    event_id: str | None = None
    trace_id: str | None = None
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def dead_letter_id(self) -> str:
        """Stable id: the source coordinates when known, else the payload itself.

        Re-delivery of the same message, or the same bad body re-sent over HTTP, lands on the
        same id, so dead letters are as idempotent as timeline rows.
        """
        if self.offset is not None:
            key = f"{self.origin}\x00{self.topic}\x00{self.partition}\x00{self.offset}".encode()
        else:
            key = self.origin.encode() + b"\x00" + self.payload
        return "dl_" + hashlib.blake2b(key, digest_size=12).hexdigest()


def dead_letter_columns(letters: Sequence[DeadLetter]) -> list[list[Any]]:
    """Column lists for ``dead_letters``."""
    return [
        [d.dead_letter_id for d in letters],
        [utc(d.received_at) for d in letters],
        [d.reason for d in letters],
        [d.payload for d in letters],
        [d.origin for d in letters],
        [d.topic for d in letters],
        [d.partition for d in letters],
        [d.offset for d in letters],
        [d.event_id or "" for d in letters],
        [d.trace_id or "" for d in letters],
    ]


def dead_letter_from_row(row: Sequence[Any]) -> DeadLetter:
    """Rebuild a ``DeadLetter`` from a row in DEAD_LETTER_COLUMNS order."""
    v = dict(zip(DEAD_LETTER_COLUMNS, row, strict=True))
    payload = v["payload"]
    return DeadLetter(
        reason=v["reason"],
        payload=payload if isinstance(payload, bytes) else str(payload).encode(),
        origin=v["origin"],
        topic=v["topic"],
        partition=v["partition"],
        offset=v["offset"],
        event_id=v["event_id"] or None,
        trace_id=v["trace_id"] or None,
        received_at=utc(v["received_at"]),
    )


@dataclass(frozen=True, slots=True)
class CustomerTrace:
    """One of a customer's traces in a line: when it ran, how it began, where it stands."""

    trace_id: str
    started_at: datetime
    last_at: datetime
    first_label: str  # the trace's first event
    last_label: str  # its latest event
    last_status: str | None  # the latest event's status
    errors: int  # events that carried an error
    last_reason: str | None  # the latest error's human reason
    # The customer's latest own action (a plan change after the login the trace began with)
    # and the order the trace named: "charged twice" is two lines with two orders, or one.
    last_action: str | None = None
    order_id: str | None = None


@dataclass(frozen=True, slots=True)
class CustomerContact:
    """The masked email and phone a customer's latest actions kept (rules masked them at
    ingest: support confirms who is on the line without seeing the value)."""

    email: str | None
    phone: str | None


def _field_name(key: str) -> str:
    """The last part of a kept field's path, lower-cased: ``user.Email`` -> ``email``."""
    return key.rsplit(".", 1)[-1].lower()


def holds_email(key: str, value: str, *, recipient: bool = False) -> bool:
    """True when a kept field holds a (masked) email address: the last part of its path
    names an email (or, with ``recipient``, is the ``to`` of a message) and the value has
    an ``@``. The one test of the customer page's contact and the trace summary's email."""
    name = _field_name(key)
    return "@" in value and ("email" in name or (recipient and name == "to"))


def contact_from(fields: Sequence[Mapping[str, str]]) -> CustomerContact:
    """The first masked email and phone among kept fields, newest event first."""
    email = phone = None
    for kept in fields:
        for key, value in kept.items():
            if email is None and holds_email(key, value):
                email = value
            elif phone is None and "phone" in _field_name(key) and any(c.isdigit() for c in value):
                phone = value
        if email is not None and phone is not None:
            break
    return CustomerContact(email, phone)


@dataclass(frozen=True, slots=True)
class CustomerProblem:
    """An error a customer met, with how many of their traces met it."""

    error_code: str
    reason: str | None
    traces: int
    last_at: datetime


@dataclass(frozen=True, slots=True)
class SubjectMatch:
    """A trace that named an order, workspace or request ID (``subject_index``)."""

    kind: str  # "order", "workspace" or "request"
    subject_id: str  # the ID as the events named it
    trace_id: str
    customer_id: str | None
    last_at: datetime  # the trace's latest event naming it


@dataclass(frozen=True, slots=True)
class CustomerMatch:
    """A customer whose kept email or phone hashed to a looked-up key (``customer_lookup``)."""

    customer_id: str
    last_seen: datetime  # the customer's latest event carrying that email or phone


@dataclass(frozen=True, slots=True)
class TraceIndexRow:
    """That an event existed, without its content: kept after the timeline TTL removes it."""

    trace_id: str
    event_id: str
    type: str
    lane: Lane
    job_id: str | None
    request_id: str | None
    occurred_at: datetime

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> TraceIndexRow:
        """Rebuild from a row in TRACE_INDEX_COLUMNS order."""
        trace_id, event_id, type_, lane, job_id, request_id, occurred_at = row
        lane_ = Lane(lane)
        return cls(
            trace_id, event_id, type_, lane_, job_id or None, request_id or None, utc(occurred_at)
        )


@dataclass(frozen=True, slots=True)
class AccessRecord:
    """One access-log entry: who read which record, when, through which route, and why."""

    entry_id: str
    at: datetime
    actor: str
    role: str
    route: str
    record_kind: str
    record_id: str
    reason: str | None = None
    # What a replay or re-drive did (its range, filters, rules versions and counts), as the
    # ``details`` column holds it; not one of ACCESS_LOG_COLUMNS (the chain hashes it apart).
    details: Mapping[str, Any] | None = None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> AccessRecord:
        """Rebuild from a row in ACCESS_LOG_COLUMNS order, optionally followed by the
        ``details`` column."""
        entry_id, at, actor, role, route, kind, record_id, reason, *rest = row
        details = orjson.loads(rest[0]) if rest and rest[0] else None
        return cls(entry_id, utc(at), actor, role, route, kind, record_id, reason, details)

    def columns(self) -> list[Any]:
        """The entry as one row in ACCESS_LOG_COLUMNS order."""
        return [
            self.entry_id,
            utc(self.at),
            self.actor,
            self.role,
            self.route,
            self.record_kind,
            self.record_id,
            self.reason,
        ]
