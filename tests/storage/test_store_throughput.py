"""Bulk writes stay bulk: a large batch is one columnar insert per table, not row by row."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import orjson

from ingest.schema import RawEvent
from projectors.reads import TimelineQuery
from projectors.store import Store
from tests.store_fixtures import make_event

N = 20_000
# Generous on purpose (shared 2-core CI machines): the bulk path does 20k events in well under
# a second on an idle machine; a per-row insert would take minutes.
MAX_SECONDS = 15.0


def test_when_twenty_thousand_events_are_written_then_they_are_queryable_within_bounds(
    timeline_store: Store,
) -> None:
    start = datetime.now(UTC) - timedelta(days=1)
    timeline = [
        make_event(
            f"ev_bulk_{i:05d}",
            trace_id=f"tr_bulk_{i // 10:04d}",
            at=start + timedelta(seconds=i),
            customer_id=f"c_bulk_{i % 500}",
            fields={"email": "m***@example.com"},
            lookup_keys=[f"k{i % 500}"],
        )
        for i in range(N)
    ]
    raws = [
        RawEvent(
            event_id=e.event_id,
            trace_id=e.trace_id,
            type=e.type,
            occurred_at=e.occurred_at,
            source="bench",
        )
        for e in timeline
    ]
    payloads = [orjson.dumps(r.model_dump(mode="json")) for r in raws]

    began = time.perf_counter()
    timeline_store.insert_raw(raws, payloads=payloads)
    timeline_store.insert_timeline(timeline)
    elapsed = time.perf_counter() - began

    assert elapsed < MAX_SECONDS, f"{N / elapsed:,.0f} events/s"
    assert timeline_store.count_customer_timeline("c_bulk_7", TimelineQuery()) == N // 500
    assert len(timeline_store.trace_events("tr_bulk_1999")) == 10
    assert timeline_store.customers_by_lookup_key("k7") == ["c_bulk_7"]
