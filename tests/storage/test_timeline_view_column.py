"""The ``view`` column (migration 0008): trace and job views read one serialized column per
event instead of nineteen, and answer exactly what the columns themselves say, whichever way
each event was stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.query import PER_TRACE, fill
from ingest.schema import TimelineEvent
from projectors import reads
from projectors.reads import TimelineQuery
from projectors.rows import timeline_view_from_packed
from projectors.store import Store
from tests.store_fixtures import insert_without_view, make_event, open_store

NOW = datetime.now(UTC)


def _events(trace: str, count: int) -> list[TimelineEvent]:
    return [
        make_event(
            f"ev_{trace}_{i}",
            trace_id=f"tr_{trace}",
            type_="email_job.retry" if i % 2 else "signup.submitted",
            at=NOW - timedelta(minutes=30 - i, microseconds=i),
            status="failed" if i % 2 else None,
            attempt=2 if i % 2 else None,
            error_code="PROVIDER_TIMEOUT" if i % 2 else None,
            reason="The email provider did not answer in time" if i % 2 else None,
            customer_id="48291",
            job_id=f"job_{trace}" if i % 2 else None,
            request_id=f"req_{trace}_{i}",
            fields={"provider": "postmark", "to": "m***@gmail.com", "note": 'quote " and \\ é'},
        )
        for i in range(count)
    ]


def _shown(events: list[TimelineEvent]) -> list[tuple[dict[str, object], set[str]]]:
    return [(e.model_dump(), set(e.model_fields_set)) for e in events]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(tmp_path)


def _only_views(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object) -> list[TimelineEvent]:
        raise AssertionError("the columns were read although every event has a view")

    monkeypatch.setattr(Store, "_timeline_columns", refuse)


def _by_columns(store: Store, trace_id: str) -> list[TimelineEvent]:
    where = "trace_id = {trace_id:String}"
    return store._timeline_columns(where, {"trace_id": trace_id})  # noqa: SLF001


def test_when_a_trace_is_read_then_its_view_column_answers_what_its_columns_say(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.insert_timeline(_events("fresh", 6))
    with monkeypatch.context() as m:
        _only_views(m)
        events, _index = store.trace_view("tr_fresh")
    assert [e.event_id for e in events] == [f"ev_fresh_{i}" for i in range(6)]
    assert _shown(events) == _shown(_by_columns(store, "tr_fresh"))
    assert events[1].occurred_at == NOW - timedelta(minutes=29, microseconds=1)
    assert events[1].fields["note"] == 'quote " and \\ é'
    assert events[0].reason is None and events[1].attempt == 2
    store.close()


def test_when_events_were_stored_before_the_view_column_then_their_columns_are_read(
    store: Store,
) -> None:
    old, new = _events("mixed", 6)[:3], _events("mixed", 6)[3:]
    insert_without_view(store, old)
    store.insert_timeline(new)
    events, _index = store.trace_view("tr_mixed")
    assert [e.event_id for e in events] == [f"ev_mixed_{i}" for i in range(6)]
    assert _shown(events) == _shown(_by_columns(store, "tr_mixed"))
    jobs, _index = store.job_view("job_mixed")
    assert [e.event_id for e in jobs] == ["ev_mixed_1", "ev_mixed_3", "ev_mixed_5"]
    store.close()


@pytest.mark.parametrize("first_with_view", [True, False])
def test_when_an_event_is_sent_again_then_the_view_shows_its_newest_version(
    store: Store, monkeypatch: pytest.MonkeyPatch, first_with_view: bool
) -> None:
    first = _events("again", 3)
    store.insert_timeline(first) if first_with_view else insert_without_view(store, first)
    store.insert_timeline([first[1].model_copy(update={"label": "Email sending retried"})])
    with monkeypatch.context() as m:
        if first_with_view:
            _only_views(m)
        events, _index = store.trace_view("tr_again")
    assert [e.label for e in events] == [first[0].label, "Email sending retried", first[2].label]
    assert _shown(events) == _shown(_by_columns(store, "tr_again"))
    store.close()


def test_when_the_query_bench_generates_events_then_their_views_match_their_columns(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bench writes its 10 million rows in SQL; its views must be what the store writes.
    fill(store, 16)
    with store._pool.client() as client:  # noqa: SLF001
        trace = str(client.command("SELECT any(trace_id) FROM timeline_events"))
    with monkeypatch.context() as m:
        _only_views(m)
        events, _index = store.trace_view(trace)
    assert len(events) == PER_TRACE
    assert _shown(events) == _shown(_by_columns(store, trace))
    store.close()


@pytest.mark.parametrize("stored_before", [0, 2])
def test_when_a_customer_page_is_read_then_the_view_column_answers_what_the_columns_say(
    store: Store, monkeypatch: pytest.MonkeyPatch, stored_before: int
) -> None:
    events = _events("page", 7)
    if stored_before:
        insert_without_view(store, events[:stored_before])
    store.insert_timeline(events[stored_before:])
    packed: list[str] = []

    def counted(event_id: str, view: str | bytes) -> TimelineEvent:
        packed.append(event_id)
        return timeline_view_from_packed(event_id, view)

    monkeypatch.setattr(reads, "timeline_view_from_packed", counted)
    query = TimelineQuery(limit=5)
    page = store.customer_page("48291", query)
    with monkeypatch.context() as m:
        m.setattr(Store, "view_column", False)
        by_columns = store.customer_page("48291", query)
    assert page is not None and by_columns is not None
    assert [e.event_id for e in page[0]] == [f"ev_page_{i}" for i in range(5)]
    assert page[1] == by_columns[1] == 7
    assert _shown(page[0]) == _shown(by_columns[0])
    # Read from the view column unless the page holds an event stored without one.
    assert len(packed) == (0 if stored_before else 5)
    store.close()
