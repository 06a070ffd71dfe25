"""The SDK services use to start a trace at the first user action and emit raw events.

Typical use in a web handler and a worker::

    from ingest.sdk import Emitter, HttpSink, extract_trace_id, inject_headers, trace

    emitter = Emitter(HttpSink("http://127.0.0.1:8000", token="..."), source="web")

    # web app: the customer clicks "Sign up" - this is where the trace starts
    with trace() as trace_id:
        emitter.emit("signup.submitted", actor="customer", subject={"customer_id": "48291"})
        queue.publish(job, headers=inject_headers({}))   # carries X-Trace-Id onwards

    # worker: continue the same trace from the message headers
    with trace(extract_trace_id(message.headers)):
        emitter.emit("signup_email.retry", status="running", attempt=2)

The trace ID is short (``tr_`` + 16 base32 characters, 80 random bits) so support can copy it
from a ticket, and it travels through ``contextvars`` and HTTP or queue headers (``X-Trace-Id``;
a W3C ``traceparent`` from OpenTelemetry is honoured on the way in). Each thread and each asyncio
task has its own current trace: a task (and ``asyncio.to_thread``) starts with a copy of its
creator's, but a new ``threading.Thread``, a ``ThreadPoolExecutor`` job or
``loop.run_in_executor`` starts with none. Hand the ID over explicitly there::

    with trace() as trace_id:
        pool.submit(work, trace_id)      # def work(trace_id): with trace(trace_id): ...
    # or run the function inside a copy of the context:
    pool.submit(contextvars.copy_context().run, work)

Kafka clients deliver headers as a list of ``(name, bytes)`` pairs (or ``None``):
``extract_trace_id(message.headers())`` takes them as they come.
"""

from __future__ import annotations

import base64
import contextvars
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

TRACE_HEADER = "X-Trace-Id"
TRACEPARENT_HEADER = "traceparent"
# The event contract's trace ID (``ingest.schema.TraceId``): a trace another system minted
# (``tr_9c1f2a7b``, a 32-hex OpenTelemetry ID) continues as well as one made here.
_TRACE_RE = re.compile(r"^[A-Za-z0-9_\-]{4,64}$")
# version-trace_id-parent_id-flags; a later version may append fields ("-..."), version 00 not.
_TRACEPARENT_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-[^\s]*)?$")

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "safetrail_trace_id", default=None
)


def new_trace_id() -> str:
    """A fresh trace ID such as ``tr_k3j9x2m4q8w7e5r1``: short, copyable, 80 random bits."""
    return "tr_" + base64.b32encode(secrets.token_bytes(10)).decode().lower()


def new_event_id() -> str:
    """A random event ID; sent with the event so a retried send stays idempotent."""
    return "ev_" + secrets.token_hex(12)


def current_trace_id() -> str | None:
    """The trace ID of the current context, if a trace was started or continued."""
    return _current.get()


def trace_id_from_traceparent(value: str) -> str | None:
    """Derive a stable safetrail trace ID from a W3C ``traceparent`` header.

    Every service derives the same ID from the same OpenTelemetry trace, so traces already
    propagated by OpenTelemetry join up without extra headers.
    """
    match = _TRACEPARENT_RE.match(value.strip().lower())
    if match is None:
        return None
    version, trace_hex, parent_hex, rest = match.groups()
    # Invalid per W3C trace context: version ff, an all-zero trace or parent ID, and fields
    # after the flags in version 00.
    if version == "ff" or (version == "00" and rest) or set(trace_hex) == {"0"}:
        return None
    if set(parent_hex) == {"0"}:
        return None
    raw = bytes.fromhex(trace_hex)[:10]
    return "tr_" + base64.b32encode(raw).decode().lower()


Headers = Mapping[str, Any] | Iterable[tuple[str | bytes, Any]]


def _header_text(value: object) -> str | None:
    """A header name or value as text; ``None`` for what no valid trace header can be."""
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("ascii")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


def extract_trace_id(headers: Headers | None) -> str | None:
    """Read the trace ID from incoming headers (``X-Trace-Id`` first, then ``traceparent``).

    ``headers`` is a mapping (HTTP frameworks) or a sequence of ``(name, value)`` pairs (Kafka
    clients, which may also give ``None``); names match in any case and values may be ``str``
    or ``bytes``. A value that is not a valid trace ID is ignored, never trusted.
    """
    if headers is None:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    found: dict[str, list[str]] = {}
    for name, value in pairs:
        key, text = _header_text(name), _header_text(value)
        if key is not None and text is not None:
            found.setdefault(key.lower(), []).append(text.strip())
    for value in found.get(TRACE_HEADER.lower(), []):
        if _TRACE_RE.match(value):
            return value
    for value in found.get(TRACEPARENT_HEADER, []):
        trace_id = trace_id_from_traceparent(value)
        if trace_id is not None:
            return trace_id
    return None


def inject_headers(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Add the current trace ID to outgoing HTTP or queue headers and return them."""
    trace_id = current_trace_id()
    if trace_id is not None:
        headers[TRACE_HEADER] = trace_id
    return headers


@contextmanager
def trace(trace_id: str | None = None) -> Iterator[str]:
    """Start a new trace (no argument) or continue one (an ID from headers) for this block.

    Raises ``ValueError`` for an ID the event contract refuses (4-64 letters, digits, ``_``
    or ``-``): every event of the block would be rejected at ingest otherwise.
    """
    if trace_id is not None and not _TRACE_RE.match(trace_id):
        raise ValueError("not a trace ID: 4-64 letters, digits, '_' or '-' (see new_trace_id)")
    value = trace_id or new_trace_id()
    token = _current.set(value)
    try:
        yield value
    finally:
        _current.reset(token)


class Sink(Protocol):
    """Where emitted events go: the HTTP collector (embedded) or Kafka (scale-out)."""

    def send(self, event: Mapping[str, Any]) -> None:
        """Queue one raw event; raise if it cannot be buffered (never drop silently)."""

    def flush(self, timeout: float = 30.0) -> None:
        """Deliver everything queued; raise if some events could not be delivered."""

    def close(self) -> None:
        """Flush and release resources."""


class Emitter:
    """Builds raw v1 events for one service and hands them to a sink."""

    def __init__(self, sink: Sink, source: str) -> None:
        self.sink = sink
        self.source = source

    def emit(
        self,
        type: str,  # noqa: A002 - mirrors the event field name
        *,
        actor: str | None = None,
        subject: Mapping[str, str] | None = None,
        status: str | None = None,
        attempt: int | None = None,
        error: Mapping[str, str] | None = None,
        data: Mapping[str, Any] | None = None,
        occurred_at: datetime | None = None,
        trace_id: str | None = None,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        """Emit one raw event in the current trace and return it as sent.

        Raises ``LookupError`` when no trace is active and none is given: an event without a
        trace cannot be followed by support, so it is refused here rather than later. Raises
        ``ValueError`` for an ``occurred_at`` without a timezone, which the event contract
        refuses too (it is never guessed to be local time or UTC).
        """
        tid = trace_id or current_trace_id()
        if tid is None:
            raise LookupError(
                "no active trace: wrap the call in `with trace(...)`, or pass trace_id=; a new "
                "thread or executor job does not inherit the caller's trace (see ingest.sdk)"
            )
        if occurred_at is not None and occurred_at.utcoffset() is None:
            raise ValueError(
                "occurred_at needs a timezone: use datetime.now(UTC) or an aware datetime"
            )
        when = (occurred_at or datetime.now(UTC)).astimezone(UTC)
        event: dict[str, Any] = {
            "event_id": event_id or new_event_id(),
            "trace_id": tid,
            "type": type,
            "occurred_at": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "source": self.source,
        }
        optional: dict[str, Any] = {
            "actor": actor,
            "subject": dict(subject) if subject else None,
            "status": status,
            "attempt": attempt,
            "error": dict(error) if error else None,
            "data": dict(data) if data else None,
        }
        event.update({k: v for k, v in optional.items() if v is not None})
        self.sink.send(event)
        return event

    def flush(self, timeout: float = 30.0) -> None:
        """Deliver everything emitted so far."""
        self.sink.flush(timeout)

    def close(self) -> None:
        """Flush and close the sink."""
        self.sink.close()


class DeliveryError(RuntimeError):
    """Events could not be delivered; they are still held by the sink (nothing dropped)."""


class BufferFullError(DeliveryError):
    """The bounded local buffer is full: the collector or broker is not keeping up or is down."""


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Split a sequence into slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
