"""The embedded collector: durable before it answers, group commit, idempotent, loud on failure."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ingest.collector import EmbeddedCollector, IngestReport, IngestUnavailable
from ingest.schema import TimelineEvent
from projectors.store import Store
from redaction_rules.engine import default_redactor

REDACTOR = default_redactor(b"collector-tests-hmac-key")
AT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


class CountingStore(Store):
    """The real store on the same connections, counting timeline inserts (no behaviour change)."""

    def __init__(self, store: Store, fail: bool = False) -> None:
        super().__init__(store._pool, store.policy)
        self.timeline_inserts = 0
        self.fail = fail

    def insert_timeline(self, events: Sequence[TimelineEvent], **kw: Any) -> None:
        if self.fail:
            raise RuntimeError("disk full")
        self.timeline_inserts += 1
        super().insert_timeline(events, **kw)


def events(trace_id: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{trace_id}_{i}",
            "trace_id": trace_id,
            "type": "login.succeeded",
            "occurred_at": (AT + timedelta(seconds=i)).isoformat(),
            "source": "web",
            "status": "done",
            "subject": {"customer_id": "c_collector"},
            "data": {"email": "someone@example.com"},
        }
        for i in range(n)
    ]


@pytest.fixture
def counting(timeline_store: Store) -> Iterator[tuple[CountingStore, EmbeddedCollector]]:
    store = CountingStore(timeline_store)
    collector = EmbeddedCollector(store, REDACTOR)
    yield store, collector
    collector.close()


def test_when_requests_arrive_together_then_they_share_inserts_and_each_is_durable_on_return(
    counting: tuple[CountingStore, EmbeddedCollector],
) -> None:
    store, collector = counting
    requests = 16
    start = threading.Barrier(requests)
    visible: dict[str, int] = {}

    def send(n: int) -> None:
        trace = f"tr_group_{n:02d}"
        start.wait()
        collector.ingest(events(trace, 20))
        visible[trace] = len(store.trace_events(trace))  # read right after the answer

    threads = [threading.Thread(target=send, args=(n,)) for n in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert visible == {f"tr_group_{n:02d}": 20 for n in range(requests)}
    assert 1 <= store.timeline_inserts < requests


def test_when_a_batch_is_ingested_twice_then_results_match_and_counts_stay(
    counting: tuple[CountingStore, EmbeddedCollector],
) -> None:
    store, collector = counting
    batch: list[Any] = [*events("tr_twice", 3), {"trace_id": "tr_twice"}, b"{not json"]
    first = collector.ingest(batch)
    counts = store.counts()

    second = collector.ingest(batch)

    assert first == second
    assert (first.accepted, first.rejected) == (3, 2)
    assert [r.status for r in first.results] == ["accepted"] * 3 + ["rejected"] * 2
    assert "not valid JSON" in (first.results[4].reason or "")
    assert store.counts() == counts


def test_when_storage_fails_then_ingest_raises_and_acknowledges_nothing(
    timeline_store: Store,
) -> None:
    failing = CountingStore(timeline_store, fail=True)
    seen: list[IngestReport] = []
    collector = EmbeddedCollector(failing, REDACTOR, listener=seen.append)
    try:
        with pytest.raises(IngestUnavailable, match="disk full"):
            collector.ingest(events("tr_fails", 2))
        failing.fail = False
        assert collector.ingest(events("tr_fails", 2)).accepted == 2  # the writer survived
    finally:
        collector.close()
    assert [r.accepted for r in seen] == [2]  # only the durable request was counted


def test_when_the_collector_is_closed_then_it_refuses_new_events(timeline_store: Store) -> None:
    collector = EmbeddedCollector(timeline_store, REDACTOR)
    assert collector.ingest(events("tr_close", 1)).accepted == 1
    collector.close()
    with pytest.raises(IngestUnavailable, match="shut down"):
        collector.ingest(events("tr_close", 1))
    assert collector.ingest([]).results == ()  # nothing to write needs no writer
