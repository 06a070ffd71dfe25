"""Processing in worker processes: the same results and rows as in-process, survives a dead
worker, and leaves no process behind."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import orjson
import pytest

from bench.common import descendants
from ingest import workers
from ingest.collector import BadBody, EmbeddedCollector
from ingest.workers import MIN_POOLED_BYTES, MIN_POOLED_EVENTS
from projectors.store import Store
from tests.storage.test_collector import REDACTOR, events


def _workers() -> set[int]:
    """Our processing workers: the processes forked by our fork server (not the fork server
    itself, nor multiprocessing's resource tracker)."""
    servers = [p for p in descendants(os.getpid()) if "forkserver" in _cmdline(p)]
    return {w for server in servers for w in descendants(server)}


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _mixed(trace: str, n: int) -> list[Any]:
    """``n`` good events with two bad inputs in the middle (a reject keeps its index)."""
    good: list[Any] = events(trace, n)
    return [*good[: n // 2], {"trace_id": trace}, b"{not json", *good[n // 2 :]]


def test_when_workers_process_a_large_request_then_results_and_rows_match_in_process(
    timeline_store: Store,
) -> None:
    batch = _mixed("tr_pool", 3 * MIN_POOLED_EVENTS)
    inline = EmbeddedCollector(timeline_store, REDACTOR)
    pooled = EmbeddedCollector(timeline_store, REDACTOR, workers=2)
    try:
        first = inline.ingest(batch)
        timeline = timeline_store.trace_events("tr_pool")
        second = pooled.ingest(batch)
    finally:
        pooled.close()
        inline.close()

    assert first == second  # same ids, statuses, reasons, in request order
    assert [r.index for r in second.results] == list(range(len(batch)))
    assert (second.accepted, second.rejected) == (3 * MIN_POOLED_EVENTS, 2)
    assert timeline_store.trace_events("tr_pool") == timeline  # re-sent: nothing new, no twins
    assert len({e.event_id for e in timeline}) == len(timeline) == 3 * MIN_POOLED_EVENTS


def test_when_a_worker_is_killed_then_requests_still_succeed_and_nothing_is_lost(
    timeline_store: Store,
) -> None:
    collector = EmbeddedCollector(timeline_store, REDACTOR, workers=2)
    try:
        assert collector.ingest(events("tr_w1", 2 * MIN_POOLED_EVENTS)).accepted == 128
        workers = _workers()
        assert workers, "the large request did not start worker processes"
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        report = collector.ingest(events("tr_w2", 2 * MIN_POOLED_EVENTS))
        assert report.accepted == 2 * MIN_POOLED_EVENTS
        assert collector.ingest(events("tr_w3", 2 * MIN_POOLED_EVENTS)).accepted == 128
    finally:
        collector.close()
    for trace in ("tr_w1", "tr_w2", "tr_w3"):
        assert len(timeline_store.trace_events(trace)) == 2 * MIN_POOLED_EVENTS


def test_when_the_collector_closes_then_its_workers_are_gone(timeline_store: Store) -> None:
    collector = EmbeddedCollector(timeline_store, REDACTOR, workers=2)
    collector.ingest(events("tr_gone", 2 * MIN_POOLED_EVENTS))
    started = _workers()
    assert len(started) == 2
    collector.close()
    deadline = time.monotonic() + 10
    while started & _workers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not started & _workers()


@pytest.mark.parametrize("split", [True, False], ids=["split-across-workers", "one-worker"])
def test_when_workers_take_a_body_then_results_match_and_bad_bodies_are_refused_whole(
    timeline_store: Store, monkeypatch: pytest.MonkeyPatch, split: bool
) -> None:
    # Bodies from MIN_SPLIT_BYTES on are shared out across the workers, smaller ones go whole
    # to one worker; either way the answer is the in-process one.
    monkeypatch.setattr(workers, "MIN_SPLIT_BYTES", 0 if split else 1 << 40)
    batch = _mixed("tr_body", 4 * MIN_POOLED_EVENTS)
    body = orjson.dumps([b if isinstance(b, dict) else orjson.loads(b"[1]")[0] for b in batch])
    assert len(body) >= MIN_POOLED_BYTES
    inline = EmbeddedCollector(timeline_store, REDACTOR)
    pooled = EmbeddedCollector(timeline_store, REDACTOR, workers=2)
    deep = b"[" + b'{"a":' * 200 + b"1" + b"}" * 200 + b"," + body[1:]
    try:
        assert pooled.ingest_body(body) == inline.ingest_body(body)
        before = timeline_store.counts()
        for bad, code in (
            (body[:-1], "malformed_json"),
            (b'{"events": ' + body + b"}", "not_an_array"),
            (deep, "nested_too_deep"),
        ):
            with pytest.raises(BadBody) as refused:
                pooled.ingest_body(bad)
            assert refused.value.code == code
        assert timeline_store.counts() == before  # nothing of a refused body was stored
    finally:
        pooled.close()
        inline.close()
