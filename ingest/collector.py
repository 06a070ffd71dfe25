"""The embedded collector: process a request's events and make them durable, with group commit.

``POST /v1/events`` hands a list of payloads to an ``Ingestor``. In the embedded default that is
``EmbeddedCollector``: every payload goes through the same pure ``process`` step the Kafka
processor uses (in the request thread, or for large requests in worker processes, one per
core up to 8: ``ingest.workers``), then a single background writer thread makes what concurrent
requests produced durable in one step. A request returns only after the group holding its
events is durable, so an answer of "accepted" means durable, and many small requests still
cost one write.

Two ways to be durable. On the embedded engine with a data directory the group is appended to
the ingest journal beside it with one ``fdatasync`` (``ingest.journal``) and a shipper thread
inserts what accumulated in large batches (once ``ship_events`` wait, up to twice that, or
after ``ship_seconds``):
an insert's fixed cost is then paid once per few thousand events instead of once per group.
Reads wait for the shipper (``flush``, registered as the store's read barrier), so an
acknowledged event is readable by the next read. Without a journal (a ClickHouse server, where
API replicas stay stateless) the group is inserted before anyone is answered.

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
from pathlib import Path
from typing import Any, Protocol

from ingest.batch import (
    BadBody,
    EventResult,
    IngestReport,
    Payload,
    ProcessedBatch,
    results_for,
)
from ingest.journal import IngestJournal, JournalBusy, JournalRecord
from ingest.process import Rejected
from ingest.workers import ProcessingPool
from projectors.blocks import RAW_TABLE, TIMELINE_TABLE, NativeEncoder
from projectors.reads import StoreBehind
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
# Told after every store insert: how many events it stored and how long the insert took.
CommitListener = Callable[[int, float], None]
_STOP = object()


class EmbeddedCollector:
    """Ingestor of the embedded mode: process (in the caller's thread or ``workers`` worker
    processes), make durable by group commit, store (see the module docstring).

    ``max_batch_events`` bounds one group; requests queue behind the running one and go out
    together in the next. With ``journal`` (a directory), groups are journaled and shipped once
    ``ship_events`` have piled up (or after ``ship_seconds``, or when a reader waits), up to
    twice ``ship_events`` an insert (a single larger group goes whole); at most
    ``max_unshipped_events`` wait in memory (past that, requests wait for the shipper: back
    pressure, not loss).
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
        journal: Path | None = None,
        ship_events: int = 5_000,
        ship_seconds: float = 1.0,
        max_unshipped_events: int = 200_000,
    ) -> None:
        self._store = store
        self._on_commit = on_commit
        self._max_batch = max_batch_events
        self._listener = listener
        self._timeout = write_timeout_seconds
        self._queue: queue.Queue[Any] = queue.Queue()
        self._closed = False
        # Held while enqueueing and while closing, so nothing can queue up behind the stop
        # marker and wait for a writer that has already left.
        self._gate = threading.Lock()
        # Rows come back from processing as the Native bytes the insert sends.
        self._encoder = store.native_encoder()
        self._journal: IngestJournal | None = None
        self._shipper: threading.Thread | None = None
        if journal is not None:
            try:
                self._journal = IngestJournal(journal)
            except JournalBusy as exc:
                # Another collector journals into this directory (two apps on one store, as
                # in tests): this one inserts before it answers, which is as durable.
                log.info("%s; inserting without a journal", exc)
        if self._journal is not None:
            try:
                self._recover(self._journal)
            except BaseException:
                self._journal.close()  # gives the directory back; its records stay for a retry
                raise
            self._ship_events = ship_events
            self._ship_seconds = ship_seconds
            self._max_unshipped = max_unshipped_events
            # Journaled records not yet inserted: (sequence number, record, when journaled).
            self._unshipped: list[tuple[int, JournalRecord, float]] = []
            self._unshipped_events = 0
            self._appended = self._shipped = 0
            self._flush_wanted = False
            self._stopping = False
            self._ship_error: BaseException | None = None
            self._cond = threading.Condition()
            self._journal_lock = threading.Lock()
            self._shipper = threading.Thread(
                target=self._ship_loop, args=(self._journal,), name="safetrail-shipper", daemon=True
            )
            self._shipper.start()
        # Events older than the store's timeline retention are refused with the reason: its
        # reads and TTL would never show them.
        self._processing = ProcessingPool(
            redactor, workers, self._encoder, store.policy.retention_days
        )
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

    def flush(self) -> None:
        """Return once every event acknowledged so far is stored (readable); ``StoreBehind``
        when storage does not take the rows in time. A no-op without a journal."""
        if self._journal is None:
            return
        with self._cond:
            target = self._appended
            if self._shipped >= target:
                return
            self._flush_wanted = True
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: self._shipped >= target, self._timeout):
                reason = f": {self._ship_error}" if self._ship_error is not None else ""
                raise StoreBehind(
                    "acknowledged events are not stored yet (storage is not taking writes"
                    f"{reason}); they are kept in the ingest journal, retry"
                )

    def unshipped_events(self) -> int:
        """Events answered and journaled but not yet inserted (0 without a journal)."""
        if self._journal is None:
            return 0
        with self._cond:
            return self._unshipped_events

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
        """Make what is queued durable, store what is journaled, then stop the threads."""
        with self._gate:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._writer.join(timeout=self._timeout)
        self._processing.close()
        if self._journal is not None and self._shipper is not None:
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
            self._shipper.join(timeout=self._timeout)
            with self._journal_lock:
                self._journal.close()

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
        now = datetime.now(UTC)
        record = JournalRecord(
            raw=self._encoder.join(RAW_TABLE, (b.raw for b in batches)),
            dead_letters=tuple(_dead_letter(r, now) for b in batches for r in b.rejected),
            timeline=self._encoder.join(TIMELINE_TABLE, (b.timeline for b in batches)),
        )
        error: BaseException | None = None
        try:
            if self._journal is None:
                self._insert(record)
            else:
                self._journal_record(self._journal, record)
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request
            log.exception("making %d events durable failed", record.events)
            error = exc
        for item in pending:
            item.error = error
            item.done.set()

    def _insert(self, record: JournalRecord) -> None:
        started = time.perf_counter()
        # Raw first: if the timeline insert then fails, the client retries and the raw
        # rows it re-sends deduplicate; the reverse order could show events nobody can replay.
        if record.raw is not None:
            self._store.insert_raw(record.raw)
        self._store.insert_dead_letters(list(record.dead_letters))
        if record.timeline is not None:
            self._store.insert_timeline(record.timeline)
        if self._on_commit is not None:
            try:
                self._on_commit(record.events, time.perf_counter() - started)
            except Exception:  # noqa: BLE001 - the events are durable; metrics must not undo that
                log.exception("commit listener failed")

    # --- journaled mode -----------------------------------------------------------------

    def _recover(self, journal: IngestJournal) -> None:
        """Store what a previous process journaled (acknowledged) but may not have stored."""
        left = journal.leftover()
        if left:
            self._insert(_merge(left, self._encoder))
            log.warning("stored %d events left in the ingest journal", sum(r.events for r in left))
        journal.drop_leftover()

    def _journal_record(self, journal: IngestJournal, record: JournalRecord) -> None:
        with self._cond:
            # Back pressure: wait while the shipper is far behind (the requests wait, and
            # with them their clients; nothing is dropped).
            if not self._cond.wait_for(
                lambda: self._unshipped_events < self._max_unshipped, self._timeout
            ):
                raise IngestUnavailable("storage is behind; retry")
        with self._journal_lock:
            seq = journal.append([record])
        with self._cond:
            self._unshipped.append((seq, record, time.monotonic()))
            self._unshipped_events += record.events
            self._appended = seq
            self._cond.notify_all()

    def _take(self) -> list[tuple[int, JournalRecord, float]] | None:
        """The records to ship next: wait for some, then until enough gathered, a reader
        waits, or the oldest has waited ``ship_seconds``; ``None`` when stopping with none."""
        with self._cond:
            self._cond.wait_for(lambda: bool(self._unshipped) or self._stopping)
            if not self._unshipped:
                return None
            deadline = self._unshipped[0][2] + self._ship_seconds
            while not (
                self._unshipped_events >= self._ship_events or self._flush_wanted or self._stopping
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            taken: list[tuple[int, JournalRecord, float]] = []
            events = 0
            for item in self._unshipped:
                if taken and events + item[1].events > self._ship_events * 2:
                    break  # a backlog goes out in bounded inserts
                taken.append(item)
                events += item[1].events
            return taken

    def _ship_loop(self, journal: IngestJournal) -> None:
        failures = 0
        while True:
            taken = self._take()
            if taken is None:
                return
            try:
                self._insert(_merge([record for _, record, _ in taken], self._encoder))
            except Exception as exc:  # noqa: BLE001 - still journaled; retried
                failures += 1
                log.exception("insert of %d journaled events failed; retrying", len(taken))
                with self._cond:
                    self._ship_error = exc
                    if self._stopping and failures >= 3:
                        return  # left in the journal: the next start stores them
                    self._cond.wait(min(5.0, 0.1 * 2**failures))
                continue
            failures = 0
            seq = taken[-1][0]
            with self._cond:
                del self._unshipped[: len(taken)]
                self._unshipped_events -= sum(record.events for _, record, _ in taken)
                self._shipped = seq
                self._ship_error = None
                if self._shipped >= self._appended:
                    self._flush_wanted = False
                self._cond.notify_all()
            try:
                with self._journal_lock:
                    journal.shipped(seq)
            except OSError:  # the records are stored: keeping them costs a re-insert after a crash
                log.exception("could not trim the ingest journal; its stored records stay in it")


def _merge(records: list[JournalRecord], encoder: NativeEncoder) -> JournalRecord:
    """One record holding the rows of ``records`` (one insert per table); records a previous
    version journaled as column lists are encoded here."""
    return JournalRecord(
        raw=encoder.join(RAW_TABLE, (r.raw for r in records)),
        dead_letters=tuple(d for r in records for d in r.dead_letters),
        timeline=encoder.join(TIMELINE_TABLE, (r.timeline for r in records)),
    )
