"""Worker processes that run ``process_batch`` for the embedded collector.

One Python process can use one core for pure-Python work, and the embedded engine (chDB) may be
opened by one process only. So the API process keeps storage and HTTP, and large requests are
processed by a small pool of worker processes, each with its own copy of the redactor (rules
and key, pickled once at start). Workers never touch storage; they send back the rows encoded
as the insert will send them (``projectors.blocks.NativeEncoder``, also pickled once at start),
so the process that inserts only joins bytes.

Workers are forked from a fork server that has imported only this module; like every
multiprocessing program, a script that starts a pool at import time of its ``__main__`` must
guard it with ``if __name__ == "__main__"`` (the ``safetrail`` commands do).

Fail safe: if a worker dies (killed, out of memory) the request is processed in the calling
thread instead and a fresh pool is started for the next one; workers exit on their own when
the API process is gone, so a kill -9 of the API leaves nothing running.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime

from ingest.batch import (
    Payload,
    ProcessedBatch,
    as_bytes,
    encode_batch,
    parse_body,
    process_batch,
)
from projectors.blocks import NativeEncoder
from redaction_rules.engine import Redactor
from safetrail.gc_tuning import tune_gc

log = logging.getLogger(__name__)

# Below this many events (or body bytes: some 30 events of 1 KB) a request is processed
# in the calling thread: handing it to another process costs more than it saves.
MIN_POOLED_EVENTS = 64
MIN_POOLED_BYTES = 32 * 1024
# From this size on a body is split across every worker (each parses it whole and processes
# its share): one huge request then uses every core. Below it one worker takes the whole
# body, so the body is parsed once; concurrent requests still spread over the workers.
# Measured with 4 clients posting 460 KB (500-event) bodies: splitting them cost each event
# a second parse, about a tenth of a worker's time per event.
MIN_SPLIT_BYTES = 2 * 1024 * 1024

_redactor: Redactor | None = None
_encoder: NativeEncoder | None = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exit_with_owner(owner: int) -> None:
    # Our parent is the fork server, which exits with the API process; check both.
    parent = os.getppid()
    while os.getppid() == parent and _alive(owner):
        time.sleep(1.0)
    os._exit(0)


def _start_worker(redactor: Redactor, encoder: NativeEncoder | None, owner: int) -> None:
    global _redactor, _encoder  # noqa: PLW0603 - one of each per worker process, set at start
    _redactor, _encoder = redactor, encoder
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the API, which stops us
    threading.Thread(target=_exit_with_owner, args=(owner,), daemon=True).start()
    tune_gc()


def _encoded(batch: ProcessedBatch, encoder: NativeEncoder | None) -> ProcessedBatch:
    return batch if encoder is None else encode_batch(batch, encoder)


def _run(
    payloads: list[bytes], at: datetime, offset: int, retention_days: int | None
) -> ProcessedBatch:
    if _redactor is None:
        raise RuntimeError("worker started without a redactor")
    batch = process_batch(payloads, _redactor, at, offset, retention_days)
    return _encoded(batch, _encoder)


def _run_body(
    body: bytes, part: int, parts: int, at: datetime, retention_days: int | None
) -> ProcessedBatch:
    # Every worker parses the whole body (cheap next to processing) and takes its own share,
    # so the API process neither parses nor copies events one by one.
    if _redactor is None:
        raise RuntimeError("worker started without a redactor")
    start, payloads = parse_body(body, part, parts)
    return _encoded(process_batch(payloads, _redactor, at, start, retention_days), _encoder)


def default_workers() -> int:
    """Worker processes for this machine: one per core, none on a single core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 0 if not cores or cores < 2 else min(cores, 8)


class ProcessingPool:
    """``process_batch`` on ``workers`` processes, started on first use; ``workers=0`` runs
    everything in the calling thread. With an ``encoder`` the batches come back with their
    rows encoded (``ingest.batch.encode_batch``), wherever they were processed; with
    ``retention_days`` events older than the timeline retention are rejected."""

    def __init__(
        self,
        redactor: Redactor,
        workers: int,
        encoder: NativeEncoder | None = None,
        retention_days: int | None = None,
    ) -> None:
        self._redactor = redactor
        self._encoder = encoder
        self._retention_days = retention_days
        self.workers = max(0, workers)
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def _pool(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._closed:
                return None
            if self._executor is None:
                # A fork server started before any thread or engine exists forks each worker
                # from a clean process that has preloaded only this module: no inherited locks,
                # no re-import of the caller's __main__, fast starts.
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload([__name__])
                self._executor = ProcessPoolExecutor(
                    self.workers,
                    mp_context=context,
                    initializer=_start_worker,
                    initargs=(self._redactor, self._encoder, os.getpid()),
                )
            return self._executor

    def _discard(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)

    def process(self, payloads: Sequence[Payload], at: datetime) -> list[ProcessedBatch]:
        """Process ``payloads``; the batches come back in request order."""
        if self.workers == 0 or len(payloads) < MIN_POOLED_EVENTS:
            return [self._here(payloads, at)]
        pool = self._pool()
        if pool is None:
            return [self._here(payloads, at)]
        size = -(-len(payloads) // self.workers)
        try:
            futures = [
                pool.submit(
                    _run, [as_bytes(p) for p in payloads[i : i + size]], at, i, self._retention_days
                )
                for i in range(0, len(payloads), size)
            ]
            return [f.result() for f in futures]
        except BrokenProcessPool:
            log.warning("a processing worker died; processing this request in-process")
            self._discard(pool)
            return [self._here(payloads, at)]

    def process_body(self, body: bytes, at: datetime) -> list[ProcessedBatch]:
        """Parse a request body (``BadBody`` if it is not a JSON array) and process its events;
        the batches come back in request order."""
        pool = None if self.workers == 0 or len(body) < MIN_POOLED_BYTES else self._pool()
        if pool is None:
            return [self._here(parse_body(body)[1], at)]
        try:
            parts = self.workers if len(body) >= MIN_SPLIT_BYTES else 1
            futures = [
                pool.submit(_run_body, body, k, parts, at, self._retention_days)
                for k in range(parts)
            ]
            return [f.result() for f in futures]
        except BrokenProcessPool:
            log.warning("a processing worker died; processing this request in-process")
            self._discard(pool)
            return [self._here(parse_body(body)[1], at)]

    def _here(self, payloads: Sequence[Payload], at: datetime) -> ProcessedBatch:
        batch = process_batch(payloads, self._redactor, at, 0, self._retention_days)
        return _encoded(batch, self._encoder)

    def close(self) -> None:
        """Stop the workers (what they are running finishes first)."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
