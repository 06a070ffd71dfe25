"""Order, workspace and request IDs find the traces that named them (``subject_index``,
migration 0009): fed by a view on every insert, back-filled for events stored before it,
within retention, each trace once however often its events were re-sent (the back-fill of
events stored before it: ``test_subject_index_migration``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.schema import TimelineEvent
from projectors.retention import RetentionPolicy
from projectors.store import Store
from tests.store_fixtures import make_event

NOW = datetime.now(UTC).replace(microsecond=0)


def case(prefix: str, at: datetime) -> list[TimelineEvent]:
    """Two traces of one customer naming order 1001 (one also a workspace), a third naming
    only a request ID."""
    return [
        make_event(f"{prefix}_1", trace_id=f"tr_{prefix}_a", at=at, customer_id="c_ord",
                   order_id="1001", workspace_id="ws_blue", request_id=f"req_{prefix}_1"),
        make_event(f"{prefix}_2", trace_id=f"tr_{prefix}_a", at=at + timedelta(seconds=5),
                   customer_id="c_ord", order_id="1001"),
        make_event(f"{prefix}_3", trace_id=f"tr_{prefix}_b", at=at + timedelta(minutes=3),
                   customer_id="c_ord", order_id="1001"),
        make_event(f"{prefix}_4", trace_id=f"tr_{prefix}_c", at=at, request_id=f"req_{prefix}_9"),
    ]  # fmt: skip


def test_when_events_name_an_order_then_its_traces_are_found_latest_first_once_each(
    timeline_store: Store,
) -> None:
    events = case("sx", NOW - timedelta(hours=2))
    timeline_store.insert_timeline(events)
    timeline_store.insert_timeline(events[:2])  # a re-send changes nothing

    found = timeline_store.traces_naming("1001", now=NOW)
    assert [(m.kind, m.trace_id, m.customer_id) for m in found] == [
        ("order", "tr_sx_b", "c_ord"),
        ("order", "tr_sx_a", "c_ord"),
    ]
    assert found[1].last_at == events[1].occurred_at
    assert [(m.kind, m.trace_id) for m in timeline_store.traces_naming("ws_blue", now=NOW)] == [
        ("workspace", "tr_sx_a")
    ]
    request = timeline_store.traces_naming("req_sx_9", now=NOW)
    assert [(m.kind, m.trace_id, m.customer_id) for m in request] == [("request", "tr_sx_c", None)]
    assert timeline_store.traces_naming("c_ord", now=NOW) == []  # customer IDs are not subjects
    assert timeline_store.traces_naming("", now=NOW) == []  # events without one add no row


def test_when_the_trace_left_retention_then_its_order_finds_nothing(timeline_store: Store) -> None:
    timeline_store.insert_timeline(case("old", NOW - timedelta(days=30)))
    assert [m.trace_id for m in timeline_store.traces_naming("req_old_9", now=NOW)] == ["tr_old_c"]
    later = NOW + timedelta(days=RetentionPolicy().retention_days)
    assert timeline_store.traces_naming("req_old_9", now=later) == []
