"""One request's events processed as a batch: a result per event and the rows to write.

``process_batch`` is pure (payloads in, values out) like ``process`` itself. The embedded
collector runs it in the request thread for small requests and in worker processes for large
ones, so processing uses every core while one writer thread owns the storage connection.
Its output is cheap to send between processes: small result tuples, the rows as Native bytes
(``encode_batch``), and the rejected inputs with their reasons.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import accumulate
from typing import Any, Literal

import orjson

from ingest.process import Accepted, Rejected, Retention, Routed, process
from projectors.blocks import (
    RAW_TABLE,
    TIMELINE_TABLE,
    Block,
    NativeEncoder,
    raw_block,
    timeline_block,
)
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
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth >= limit:
            return True
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):  # only containers can nest further
                stack.append((child, depth + 1))
    return False


_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
# Opening brackets become 1 and closing ones 255, which a signed-byte view reads as -1.
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def bracket_depth_bound(body: bytes) -> int:
    """An upper bound of a JSON text's nesting depth (brackets inside strings count too).

    Scans only the bracket bytes (in C: a running sum of +1/-1 steps), so a body whose bound
    is within the limit skips the exact walk over every parsed value.
    """
    steps = memoryview(body.translate(_STEPS, _NOT_BRACKETS)).cast("b")
    return max(0, max(accumulate(steps), default=0))


def parse_body(body: bytes, part: int = 0, parts: int = 1) -> tuple[int, list[Payload]]:
    """Share ``part`` of ``parts`` of a request body's events, with the request index of its
    first event; ``BadBody`` saying why the body is not a JSON array.

    Each share is checked for depth on its own, so workers that split one body split that
    work too (any share refused refuses the whole request). A non-object item still gets its
    own result later ("must be a JSON object") rather than failing the whole request, so it
    is kept as its JSON bytes.
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
    size = -(-len(parsed) // parts)
    start = part * size
    share = parsed[start : start + size]
    # The JSON reader accepts 1,024 levels but the encoder that writes dead letters and raw
    # rows stops at 254; no real event nests anywhere near this, so refuse the body up front.
    # The array is bracket level 1, so a container at level >= MAX_NESTING (array at 0) has
    # a bound above MAX_NESTING; the share stands where the array stood: same levels.
    if bracket_depth_bound(body) > MAX_NESTING and too_deep(share):
        raise BadBody(
            "nested_too_deep",
            f"The body nests JSON deeper than {MAX_NESTING} levels; nothing was stored.",
        )
    return start, [item if isinstance(item, dict) else orjson.dumps(item) for item in share]


def as_bytes(payload: Payload) -> bytes:
    """The payload as JSON bytes (bytes are passed through untouched)."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload)
    return orjson.dumps(payload, default=str)


@dataclass(frozen=True, slots=True)
class ProcessedBatch:
    """A batch after ``process``: results (request indexes), raw and timeline rows, rejects."""

    results: tuple[EventResult, ...]
    raw: Block
    timeline: Block
    rejected: tuple[Rejected, ...]


def process_batch(
    payloads: Sequence[Payload],
    redactor: Redactor,
    at: datetime,
    offset: int = 0,
    retention_days: int | None = None,
) -> ProcessedBatch:
    """Process each payload; accepted ones become raw and timeline rows stamped ``at``.

    The raw rows keep each payload's bytes as the service sent them; ``offset`` is the request
    index of ``payloads[0]`` (a large request is split across workers). With
    ``retention_days`` (the timeline's), events older than it at ``at`` are rejected.
    """
    retention = None if retention_days is None else Retention(retention_days, at)
    routed = [process(p, redactor, retention) for p in payloads]
    accepted: list[Accepted] = []
    rejected: list[Rejected] = []
    for item in routed:
        if isinstance(item, Accepted):
            accepted.append(item)
        else:
            rejected.append(item)
    return ProcessedBatch(
        results=results_for(routed, offset).results,
        raw=raw_block([a.raw for a in accepted], at, "http", [a.payload for a in accepted]),
        timeline=timeline_block([a.timeline for a in accepted], at),
        rejected=tuple(rejected),
    )


def encode_batch(batch: ProcessedBatch, encoder: NativeEncoder) -> ProcessedBatch:
    """``batch`` with its raw and timeline rows encoded as Native bytes for their tables."""
    return replace(
        batch,
        raw=encoder.encode(RAW_TABLE, batch.raw),
        timeline=encoder.encode(TIMELINE_TABLE, batch.timeline),
    )
