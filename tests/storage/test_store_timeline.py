"""Customer timelines: oldest first, pages without gaps or repeats, lane and range filters,
retention applied at read time, and the customer projection serving the read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.schema import Lane
from projectors.reads import TimelineQuery
from projectors.store import Store
from tests.store_fixtures import make_event

NOW = datetime.now(UTC).replace(microsecond=0)
CUSTOMER = "c_timeline"


@pytest.fixture(scope="module", autouse=True)
def loaded(timeline_store: Store) -> None:
    # 30 events a minute apart, alternating lanes; two share a timestamp to test tie-breaks.
    events = [
        make_event(
            f"ev_tl_{i:02d}",
            trace_id=f"tr_tl_{i // 3}",
            type_="login.succeeded" if i % 2 == 0 else "signup_email.sent",
            lane=Lane.CUSTOMER if i % 2 == 0 else Lane.SYSTEM,
            at=NOW - timedelta(minutes=60 - i) if i != 11 else NOW - timedelta(minutes=50),
            customer_id=CUSTOMER,
        )
        for i in range(30)
    ]
    timeline_store.insert_timeline(events)
    timeline_store.insert_timeline(events[:10])  # a re-sent batch must not show on any page


def _ids(events: list) -> list[str]:  # type: ignore[type-arg]
    return [e.event_id for e in events]


def test_when_paging_through_a_timeline_then_every_event_shows_once_oldest_first(
    timeline_store: Store,
) -> None:
    seen, after = [], None
    while True:
        page = timeline_store.customer_timeline(CUSTOMER, TimelineQuery(after=after, limit=7))
        seen.extend(page)
        if len(page) < 7:
            break
        after = (page[-1].occurred_at, page[-1].event_id)

    assert len(seen) == 30 == len(set(_ids(seen)))
    assert [(e.occurred_at, e.event_id) for e in seen] == sorted(
        (e.occurred_at, e.event_id) for e in seen
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # lane filter keeps one side of the story
        (TimelineQuery(lane=Lane.CUSTOMER), 15),
        (TimelineQuery(lane=Lane.SYSTEM), 15),
        # since is inclusive: the event exactly at since is in
        (TimelineQuery(since=NOW - timedelta(minutes=40)), 10),
        # until is exclusive: the event exactly at until is out
        (TimelineQuery(until=NOW - timedelta(minutes=55)), 5),
        # both together, with a lane
        (
            TimelineQuery(
                since=NOW - timedelta(minutes=55),
                until=NOW - timedelta(minutes=45),
                lane=Lane.SYSTEM,
            ),
            5,
        ),
    ],
)
def test_when_filtering_by_lane_and_range_then_count_and_rows_agree(
    timeline_store: Store, query: TimelineQuery, expected: int
) -> None:
    rows = timeline_store.customer_timeline(CUSTOMER, query)
    assert len(rows) == expected
    assert timeline_store.count_customer_timeline(CUSTOMER, query) == expected
    if query.lane is not None:
        assert {e.lane for e in rows} == {query.lane}


def test_when_events_are_older_than_retention_then_reads_leave_them_out_before_ttl_runs(
    timeline_store: Store,
) -> None:
    # Seen 400 days less 45 minutes from now, the cutoff falls 45 minutes ago: the 15 newer
    # events are within retention, the 15 older ones are not, though TTL has not run yet.
    later = NOW + timedelta(days=400) - timedelta(minutes=45)
    visible = timeline_store.customer_timeline(CUSTOMER, TimelineQuery(limit=100), now=later)
    assert _ids(visible) == [f"ev_tl_{i:02d}" for i in range(15, 30)]
    assert timeline_store.count_customer_timeline(CUSTOMER, TimelineQuery(), now=later) == 15
    assert timeline_store.customer_exists(CUSTOMER, now=later)
    assert not timeline_store.customer_exists(CUSTOMER, now=NOW + timedelta(days=401))
    assert timeline_store.trace_events("tr_tl_0", now=NOW + timedelta(days=401)) == []
    # the id-only index still knows the events existed
    assert len(timeline_store.trace_index("tr_tl_0")) == 3


def test_when_reading_a_customer_then_the_customer_projection_serves_the_read(
    timeline_store: Store,
) -> None:
    with timeline_store._pool.client() as client:
        plan = client.query(
            "EXPLAIN indexes = 1, projections = 1 SELECT event_id FROM timeline_events "
            "WHERE customer_id = 'c_timeline' ORDER BY event_id LIMIT 1 BY event_id"
        ).result_rows
    text = "\n".join(str(row[0]) for row in plan)
    assert "by_customer" in text
