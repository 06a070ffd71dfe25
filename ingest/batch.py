"""One request's events processed as a batch: a result per event and the rows to write.

``process_batch`` is pure (payloads in, values out) like ``process`` itself. The embedded
collector runs it in the request thread for small requests and in worker processes for large
ones, so processing uses every core while one writer thread owns the storage connection.
Its output is cheap to send between processes: small result tuples, column blocks, and the
rejected inputs with their reasons.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson

from ingest.process import Accepted, Rejected, Routed, process
from projectors.blocks import ColumnBlock, raw_block, timeline_block
from redaction_rules.engine import Redactor

Payload = bytes | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class EventResult:
    """What happened to one event of a request, by its position in the request."""

    index: int
    event_id: str | None
    status: Literal["accepted", "rejected"]
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class IngestReport:
    """Per-event results in request order, with the counts."""

    results: tuple[EventResult, ...]

    @property
    def accepted(self) -> int:
        """How many events were accepted (stored on the timeline)."""
        return sum(1 for r in self.results if r.status == "accepted")

    @property
    def rejected(self) -> int:
        """How many events were rejected (kept as dead letters with their reason)."""
        return len(self.results) - self.accepted


def results_for(routed: Sequence[Routed], offset: int = 0) -> IngestReport:
    """Per-event results of processed payloads; ``offset`` is the first one's request index."""
    results = []
    for index, item in enumerate(routed, start=offset):
        if isinstance(item, Accepted):
            results.append(EventResult(index, item.raw.event_id, "accepted"))
        else:
            results.append(EventResult(index, item.event_id, "rejected", item.reason))
    return IngestReport(tuple(results))


class BadBody(ValueError):
    """A request body that is not a JSON array of events; nothing of it is processed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code, self.message = code, message

    def __str__(self) -> str:
        return self.message


MAX_NESTING = 128


def too_deep(value: object, limit: int = MAX_NESTING) -> bool:
    """True when JSON containers nest deeper than ``limit`` (iterative: no recursion limit)."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def parse_body(body: bytes) -> list[Payload]:
    """The events of a request body, or ``BadBody`` saying why it is not a JSON array.

    A non-object item still gets its own result later ("must be a JSON object") rather than
    failing the whole request, so it is kept as its JSON bytes.
    """
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadBody("malformed_json", f"The body is not valid JSON: {exc}.") from exc
    if not isinstance(parsed, list):
        raise BadBody(
            "not_an_array",
            f"The body must be a JSON array of events, not {type(parsed).__name__}.",
        )
    # The JSON reader accepts 1,024 levels but the encoder that writes dead letters and raw
    # rows stops at 254; no real event nests anywhere near this, so refuse the body up front.
    if too_deep(parsed):
        raise BadBody(
            "nested_too_deep",
            f"The body nests JSON deeper than {MAX_NESTING} levels; nothing was stored.",
        )
    return [item if isinstance(item, dict) else orjson.dumps(item) for item in parsed]


def as_bytes(payload: Payload) -> bytes:
    """The payload as JSON bytes (bytes are passed through untouched)."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload)
    return orjson.dumps(payload, default=str)


@dataclass(frozen=True, slots=True)
class ProcessedBatch:
    """A batch after ``process``: results (request indexes), raw and timeline rows, rejects."""

    results: tuple[EventResult, ...]
    raw: ColumnBlock
    timeline: ColumnBlock
    rejected: tuple[Rejected, ...]


def process_batch(
    payloads: Sequence[Payload], redactor: Redactor, at: datetime, offset: int = 0
) -> ProcessedBatch:
    """Process each payload; accepted ones become raw and timeline rows stamped ``at``.

    The raw rows keep each payload's bytes as the service sent them; ``offset`` is the request
    index of ``payloads[0]`` (a large request is split across workers).
    """
    routed = [process(p, redactor) for p in payloads]
    accepted: list[Accepted] = []
    raw_bytes: list[bytes] = []
    rejected: list[Rejected] = []
    for payload, item in zip(payloads, routed, strict=True):
        if isinstance(item, Accepted):
            accepted.append(item)
            raw_bytes.append(as_bytes(payload))
        else:
            rejected.append(item)
    return ProcessedBatch(
        results=results_for(routed, offset).results,
        raw=raw_block([a.raw for a in accepted], at, "http", raw_bytes),
        timeline=timeline_block([a.timeline for a in accepted], at),
        rejected=tuple(rejected),
    )
