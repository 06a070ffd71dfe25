"""Replay: re-run the current redaction rules over stored raw input and write the results.

One function, ``run_replay``, serves ``safetrail replay``, ``POST /v1/replays`` and the
dead-letter re-drive. It reads ``ReplayItem`` batches from a source (the restricted raw table in
the embedded mode, the raw Kafka topic by time in scale-out, or chosen dead letters), runs the
same pure ``process`` step as ingest, and hands accepted events to a sink (timeline table, or
the timeline topics where the projector picks them up). Writes are idempotent: a replayed event
keeps its ``event_id`` and every read shows the newest version of each ``event_id`` once, so a
replay replaces what support sees and never duplicates it. Input the current rules reject is
stored as a dead letter with the new reason (same id as before, so it replaces the old one).

A dry run reads and processes everything but writes nothing except its audit entries; its
report gives, per event type, how many events would change and the rules versions now stored
next to the version that would be written.

Every run writes two access-log entries (kind ``replay`` or ``redrive``): one before reading
anything (who, why, range, filters, rules version) and one at the end with the counts and
whether it finished or failed.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ingest.process import Accepted, Rejected, Retention, process
from projectors.restricted import RawRange
from projectors.rows import DeadLetter
from projectors.store import Store
from redaction_rules.engine import Redactor

Progress = Callable[[int], None]

MIN_REASON, MAX_REASON = 3, 200
# Line breaks, control and format characters (ESC, NUL, bidi overrides, ...): a reason holding
# one would not read back in the access log as it was typed, or could pass for two lines.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def reason_problem(reason: str) -> str | None:
    """Why a stated reason (already stripped) cannot go into the access log as it is, or None.

    The one rule for every engineers' route (API, support page, CLI): a ticket or incident ID
    of ``MIN_REASON`` to ``MAX_REASON`` characters on one line, kept exactly as stated (never
    cut short).
    """
    if len(reason) < MIN_REASON:
        return "a reason (ticket or incident ID) is required"
    if len(reason) > MAX_REASON:
        return f"the reason must be at most {MAX_REASON} characters"
    if any(unicodedata.category(char) in _UNPRINTABLE for char in reason):
        return "the reason must be one line without control characters"
    return None


@dataclass(frozen=True, slots=True)
class Coordinates:
    """Where a raw message sits in Kafka (a replay from the raw topic)."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class ReplayItem:
    """One input to re-process: the bytes, and where they came from when that matters."""

    payload: bytes
    coordinates: Coordinates | None = None
    letter: DeadLetter | None = None


class ReplaySource(Protocol):
    """Where a replay reads from."""

    name: str

    def total(self) -> int:
        """How many inputs will be scanned (for the progress bar; may be an upper bound)."""
        ...

    def batches(self) -> Iterator[tuple[list[ReplayItem], int]]:
        """Batches of matching items, each with how many inputs were scanned to find them."""
        ...


class TimelineSink(Protocol):
    """Where accepted events go."""

    def write(self, accepted: Sequence[tuple[ReplayItem, Accepted]], *, keep_raw: bool) -> None:
        """Store (or publish) the events; ``keep_raw`` also stores the raw input."""
        ...


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    """Who asks for a replay and why, and what it covers (``end`` is exclusive)."""

    start: datetime
    end: datetime
    reason: str
    actor: str
    role: str = "engineer"
    route: str = "cli:replay"
    trace_id: str | None = None
    type_glob: str | None = None
    dry_run: bool = False

    def selection(self) -> RawRange:
        """The raw range this request reads."""
        return RawRange(self.start, self.end, self.trace_id, self.type_glob)


@dataclass
class TypeCounts:
    """Per event type: read, changed (new, or output other than the rules version differs),
    new (no timeline row yet), rejected by the current rules."""

    events: int = 0
    changed: int = 0
    new: int = 0
    rejected: int = 0


@dataclass
class ReplayReport:
    """What a replay read, changed and wrote, and under which rules versions."""

    replay_id: str
    kind: str
    dry_run: bool
    rules_after: str
    read: int = 0
    accepted: int = 0
    changed: int = 0
    rejected: int = 0
    written: int = 0
    status: str = "started"
    rules_before: Counter[str] = field(default_factory=Counter)
    per_type: dict[str, TypeCounts] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (audit details, API answer, CLI output)."""
        data = asdict(self)
        data["rules_before"] = dict(sorted(self.rules_before.items()))
        data["per_type"] = {k: asdict(v) for k, v in sorted(self.per_type.items())}
        return data


_TICK = timedelta(microseconds=1)


def _rejected_letters(
    store: Store, rejected: Sequence[tuple[ReplayItem, Rejected]], now: datetime
) -> list[DeadLetter]:
    """The dead letters for inputs the current rules reject, under the ids they already have.

    A letter stored before (re-driven, or raw input rejected at ingest too) keeps its receive
    time, one microsecond later (the table's version, so this reason replaces the old one):
    a replay neither moves it in the list nor restarts the retention of a payload that may
    hold personal data.
    """
    letters = [
        item.letter
        or DeadLetter(
            reason=r.reason,
            payload=r.payload,
            event_id=r.event_id,
            trace_id=r.trace_id,
            received_at=now,
            **_origin(item.coordinates),
        )
        for item, r in rejected
    ]
    fresh = [
        d.dead_letter_id for (item, _), d in zip(rejected, letters, strict=True) if not item.letter
    ]
    stored = {}
    if fresh:
        rows = store.dead_letter_status(limit=len(fresh), pending_only=False, ids=fresh)
        stored = {row.letter.dead_letter_id: row.letter for row in rows}
    out = []
    for (item, r), letter in zip(rejected, letters, strict=True):
        before = item.letter or stored.get(letter.dead_letter_id)
        received = now if before is None else before.received_at + _TICK
        out.append(replace(letter, reason=r.reason, received_at=received))
    return out


def _count(
    store: Store, report: ReplayReport, routed: Sequence[tuple[ReplayItem, Accepted | Rejected]]
) -> None:
    accepted = [a for _, a in routed if isinstance(a, Accepted)]
    current = store.timeline_by_ids([a.timeline.event_id for a in accepted])
    for _, item in routed:
        if isinstance(item, Rejected):
            report.rejected += 1
            report.per_type.setdefault("(rejected)", TypeCounts()).rejected += 1
            continue
        new = item.timeline
        counts = report.per_type.setdefault(new.type, TypeCounts())
        counts.events += 1
        report.accepted += 1
        old = current.get(new.event_id)
        if old is None:
            counts.new += 1
            counts.changed += 1
            report.changed += 1
            report.rules_before["(none)"] += 1
        else:
            report.rules_before[old.rules_version] += 1
            # What support would see differently; the rules version alone does not count.
            if old.model_copy(update={"rules_version": new.rules_version}) != new:
                counts.changed += 1
                report.changed += 1


def _details(request: ReplayRequest, report: ReplayReport, source: ReplaySource) -> dict[str, Any]:
    return {
        "from": request.start.isoformat(),
        "to": request.end.isoformat(),
        "trace_id": request.trace_id,
        "type": request.type_glob,
        "source": source.name,
        **report.as_dict(),
    }


def run_replay(
    store: Store,
    redactor: Redactor,
    request: ReplayRequest,
    source: ReplaySource,
    sink: TimelineSink,
    *,
    kind: str = "replay",
    progress: Progress | None = None,
) -> ReplayReport:
    """Replay ``source`` through ``redactor`` into ``sink``; see the module docstring.

    Raises ``ValueError`` for an unusable reason (``reason_problem``) or an empty range before
    anything is read.
    """
    problem = reason_problem(request.reason.strip())
    if problem is not None:
        raise ValueError(problem)
    if request.end <= request.start:
        raise ValueError("'to' must be later than 'from'")
    report = ReplayReport("rp_" + uuid.uuid4().hex[:16], kind, request.dry_run, redactor.version)

    def audit() -> None:
        store.log_access(
            actor=request.actor,
            role=request.role,
            route=request.route,
            record_kind=kind,
            record_id=report.replay_id,
            reason=request.reason.strip(),
            details=_details(request, report, source),
        )

    audit()
    try:
        for items, scanned in source.batches():
            # Judged now, when the output is written: input that has aged past the timeline
            # retention since it was received is rejected with that reason (a dead letter)
            # rather than written where no read would show it.
            retention = Retention(store.policy.retention_days, datetime.now(UTC))
            routed = [(item, process(item.payload, redactor, retention)) for item in items]
            report.read += len(items)
            _count(store, report, routed)
            if not request.dry_run:
                _write(store, sink, routed, report, keep_raw=kind == "redrive")
            if progress is not None:
                progress(scanned)
        report.status = "finished"
    except BaseException:
        report.status = "failed"
        raise
    finally:
        audit()
    return report


def _origin(c: Coordinates | None) -> dict[str, Any]:
    if c is None:
        return {"origin": "http"}
    return {"origin": "kafka", "topic": c.topic, "partition": c.partition, "offset": c.offset}


def _write(
    store: Store,
    sink: TimelineSink,
    routed: Sequence[tuple[ReplayItem, Accepted | Rejected]],
    report: ReplayReport,
    *,
    keep_raw: bool,
) -> None:
    now = datetime.now(UTC)
    accepted = [(i, r) for i, r in routed if isinstance(r, Accepted)]
    rejected = [(i, r) for i, r in routed if isinstance(r, Rejected)]
    letters = _rejected_letters(store, rejected, now)
    if accepted:
        sink.write(accepted, keep_raw=keep_raw)
        report.written += len(accepted)
    store.insert_dead_letters(letters)
    redriven = [(i.letter.dead_letter_id, a.raw.event_id or "") for i, a in accepted if i.letter]
    store.mark_redriven(redriven, report.replay_id, now)
