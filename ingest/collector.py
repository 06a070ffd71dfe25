"""The embedded collector: process a request's events and make them durable, with group commit.

``POST /v1/events`` hands a list of payloads to an ``Ingestor``. In the embedded default that is
``EmbeddedCollector``: every payload goes through the same pure ``process`` step the Kafka
processor uses (in the request thread, or for large requests in worker processes, one per
core: ``ingest.workers``), then a single background writer thread stores what concurrent
requests produced in one bulk insert per table (raw, dead letters, timeline). A request returns only
after the batch holding its events is written, so an answer of "accepted" means durable, and
many small requests still cost one insert.

Writes are idempotent: event ids are stable (given or derived from content) and dead letters
are keyed by content or source coordinates, so a client that retries after an error, or
re-sends a whole batch, changes no count.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ingest.batch import (
    BadBody,
    EventResult,
    IngestReport,
    Payload,
    ProcessedBatch,
    results_for,
)
from ingest.process import Rejected
from ingest.workers import ProcessingPool
from projectors.blocks import ColumnBlock
from projectors.rows import DeadLetter
from projectors.store import Store
from redaction_rules.engine import Redactor

log = logging.getLogger(__name__)

__all__ = [
    "BadBody",
    "EmbeddedCollector",
    "EventResult",
    "IngestReport",
    "IngestUnavailable",
    "Ingestor",
    "Payload",
    "results_for",
]


class IngestUnavailable(RuntimeError):
    """The events could not be made durable; nothing was acknowledged, the client may retry."""


class Ingestor(Protocol):
    """Where ``POST /v1/events`` sends a request's events.

    The embedded collector writes them to storage itself; a Kafka ingestor would publish them
    to the raw topic and return once the broker acknowledged. Either way ``ingest`` returns only
    when the events are durable, and raises ``IngestUnavailable`` when they are not.
    """

    def ingest(self, payloads: Sequence[Payload]) -> IngestReport:
        """Take a request's events; return one result per event, in order."""
        ...

    def ingest_body(self, body: bytes) -> IngestReport:
        """``ingest`` for a request body (a JSON array); ``BadBody`` if it is not one."""
        ...

    def close(self) -> None:
        """Finish what is in flight and release resources."""
        ...


@dataclass
class _Pending:
    batches: list[ProcessedBatch]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


def _dead_letter(rejected: Rejected, received_at: datetime) -> DeadLetter:
    return DeadLetter(
        reason=rejected.reason,
        payload=rejected.payload,
        origin="http",
        event_id=rejected.event_id,
        trace_id=rejected.trace_id,
        received_at=received_at,
    )


IngestListener = Callable[[IngestReport], None]
# Told after every group commit: how many events it stored and how long the write took.
CommitListener = Callable[[int, float], None]
_STOP = object()


class EmbeddedCollector:
    """Ingestor of the embedded mode: process (in the caller's thread or ``workers`` worker
    processes), write by group commit.

    ``max_batch_events`` bounds one insert; requests queue behind the running insert and go out
    together in the next one.
    """

    def __init__(
        self,
        store: Store,
        redactor: Redactor,
        *,
        max_batch_events: int = 50_000,
        listener: IngestListener | None = None,
        on_commit: CommitListener | None = None,
        write_timeout_seconds: float = 120.0,
        workers: int = 0,
    ) -> None:
        self._store = store
        self._on_commit = on_commit
        self._processing = ProcessingPool(redactor, workers)
        self._max_batch = max_batch_events
        self._listener = listener
        self._timeout = write_timeout_seconds
        self._queue: queue.Queue[Any] = queue.Queue()
        self._closed = False
        # Held while enqueueing and while closing, so nothing can queue up behind the stop
        # marker and wait for a writer that has already left.
        self._gate = threading.Lock()
        self._writer = threading.Thread(target=self._run, name="safetrail-writer", daemon=True)
        self._writer.start()

    def ingest(self, payloads: Sequence[Payload]) -> IngestReport:
        """Process and durably store ``payloads``; one result per payload, in order."""
        return self._store_batches(self._processing.process(payloads, datetime.now(UTC)))

    def ingest_body(self, body: bytes) -> IngestReport:
        """``ingest`` for a request body (a JSON array); ``BadBody`` if it is not one.

        Large bodies go to the worker processes whole: they parse and process their share,
        which keeps per-event work out of the API process.
        """
        batches = self._processing.process_body(body, datetime.now(UTC))
        return self._store_batches(batches)

    def _store_batches(self, batches: list[ProcessedBatch]) -> IngestReport:
        report = IngestReport(tuple(r for b in batches for r in b.results))
        if report.results:
            self._submit(_Pending(batches))
        if self._listener is not None:
            try:
                self._listener(report)
            except Exception:  # noqa: BLE001 - the events are durable; metrics must not undo that
                log.exception("ingest listener failed")
        return report

    def _submit(self, pending: _Pending) -> None:
        with self._gate:
            if self._closed:
                raise IngestUnavailable("the collector is shut down")
            self._queue.put(pending)
        if not pending.done.wait(self._timeout):
            raise IngestUnavailable("storage did not confirm the write in time; retry")
        if pending.error is not None:
            raise IngestUnavailable(f"storage write failed: {pending.error}") from pending.error

    def close(self) -> None:
        """Write what is queued, then stop the writer thread."""
        with self._gate:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._writer.join(timeout=self._timeout)
        self._processing.close()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[_Pending] = []
            item = self._queue.get()
            size = 0
            while True:
                if item is _STOP:
                    stopping = True
                else:
                    batch.append(item)
                    size += sum(len(b.results) for b in item.batches)
                if stopping or size >= self._max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(batch)

    def _write(self, pending: list[_Pending]) -> None:
        batches = [b for p in pending for b in p.batches]
        rejected = [r for b in batches for r in b.rejected]
        now = datetime.now(UTC)
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            # Raw first: if the timeline insert then fails, the client retries and the raw
            # rows it re-sends deduplicate; the reverse order could show events nobody can replay.
            raw = ColumnBlock.join(b.raw for b in batches)
            if raw is not None:
                self._store.insert_raw(raw)
            self._store.insert_dead_letters([_dead_letter(r, now) for r in rejected])
            timeline = ColumnBlock.join(b.timeline for b in batches)
            if timeline is not None:
                self._store.insert_timeline(timeline)
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request
            log.exception("group commit of %d events failed", sum(len(b.results) for b in batches))
            error = exc
        if error is None and self._on_commit is not None:
            try:
                self._on_commit(sum(len(b.results) for b in batches), time.perf_counter() - started)
            except Exception:  # noqa: BLE001 - the events are durable; metrics must not undo that
                log.exception("commit listener failed")
        for item in pending:
            item.error = error
            item.done.set()
