"""The combined read paths behind the API answer exactly what the single reads answer.

``trace_view``/``job_view`` bound the timeline read by the index rows' times, and
``customer_page`` carries the count on its rows; each must agree with the plain reads, also for
re-sent events, events moved in time by a re-send, cursors past the end and unknown ids. The
group-committed access log keeps one unbroken chain when many threads write at once.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from ingest.schema import Lane, TimelineEvent
from projectors.reads import TimelineQuery
from projectors.rows import TraceIndexRow
from projectors.store import Store
from query_api.models import EventOut
from tests.store_fixtures import make_event

NOW = datetime.now(UTC).replace(microsecond=0)
MONTHS_AGO = NOW - timedelta(days=75)


@pytest.fixture(scope="module", autouse=True)
def loaded(timeline_store: Store) -> None:
    # A trace spread over three months, one event of it older than retention.
    spread = [
        make_event("ev_rp_a", trace_id="tr_rp_spread", at=NOW - timedelta(days=70)),
        make_event(
            "ev_rp_b",
            trace_id="tr_rp_spread",
            type_="signup_email.queued",
            at=NOW - timedelta(days=40),
            job_id="job_rp",
        ),
        make_event(
            "ev_rp_c",
            trace_id="tr_rp_spread",
            type_="signup_email.started",
            at=NOW - timedelta(days=1),
            job_id="job_rp",
        ),
        make_event("ev_rp_old", trace_id="tr_rp_spread", at=NOW - timedelta(days=800)),
    ]
    # A re-sent event whose second version carries another time (a month later).
    moved = [make_event("ev_rp_moved", trace_id="tr_rp_moved", at=MONTHS_AGO, job_id="job_mv")]
    moved_again = [
        make_event(
            "ev_rp_moved",
            trace_id="tr_rp_moved",
            at=MONTHS_AGO + timedelta(days=31),
            job_id="job_mv",
        )
    ]
    customer = [
        make_event(
            f"ev_rp_cu_{i:02d}",
            trace_id=f"tr_rp_cu_{i}",
            lane=Lane.CUSTOMER if i % 2 else Lane.SYSTEM,
            type_="login.succeeded" if i % 2 else "signup_email.sent",
            at=NOW - timedelta(days=3 * i + 1),
            customer_id="c_rp",
        )
        for i in range(25)
    ]
    timeline_store.insert_timeline(spread + moved + customer)
    timeline_store.insert_timeline(spread[:2] + customer[:5])  # re-sent as they were
    timeline_store.insert_timeline(moved_again)


def _ids(events: list) -> list[str]:  # type: ignore[type-arg]
    return [e.event_id for e in events]


def _shown(events: list[TimelineEvent]) -> list[EventOut]:
    # View reads leave out what no view shows; compare what the API renders.
    return [EventOut.from_timeline(e) for e in events]


def _same_index(got: list[TraceIndexRow], expected: list[TraceIndexRow]) -> bool:
    # Index rows of one event_id are the same event; when a re-send moved it in time, either
    # version may stand for it until merges keep one (so only its id is compared then).
    if {r.event_id for r in got} == {"ev_rp_moved"}:
        return _ids(got) == _ids(expected)
    return got == expected


@pytest.mark.parametrize("trace_id", ["tr_rp_spread", "tr_rp_moved", "tr_rp_cu_3", "tr_rp_none"])
def test_when_reading_a_trace_view_then_it_matches_the_plain_reads(
    timeline_store: Store, trace_id: str
) -> None:
    events, index = timeline_store.trace_view(trace_id)

    assert _shown(events) == _shown(timeline_store.trace_events(trace_id))
    assert _same_index(index, timeline_store.trace_index(trace_id))
    assert len(_ids(events)) == len(set(_ids(events)))


@pytest.mark.parametrize("job_id", ["job_rp", "job_mv", "job_none"])
def test_when_reading_a_job_view_then_it_matches_the_plain_reads(
    timeline_store: Store, job_id: str
) -> None:
    events, index = timeline_store.job_view(job_id)

    assert _shown(events) == _shown(timeline_store.job_events(job_id))
    assert _same_index(index, timeline_store.job_index(job_id))


def test_when_a_resent_event_moved_in_time_then_the_trace_view_shows_its_newest_version(
    timeline_store: Store,
) -> None:
    events, _ = timeline_store.trace_view("tr_rp_moved")

    assert [e.occurred_at for e in events] == [MONTHS_AGO + timedelta(days=31)]


def test_when_part_of_a_trace_is_past_retention_then_the_view_keeps_its_index_row(
    timeline_store: Store,
) -> None:
    events, index = timeline_store.trace_view("tr_rp_spread")

    assert _ids(events) == ["ev_rp_a", "ev_rp_b", "ev_rp_c"]
    assert "ev_rp_old" in _ids(index)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "query",
    [
        TimelineQuery(limit=10),
        TimelineQuery(limit=100),
        TimelineQuery(lane=Lane.CUSTOMER, limit=4),
        TimelineQuery(since=NOW - timedelta(days=30), until=NOW - timedelta(days=5), limit=3),
        TimelineQuery(after=(NOW - timedelta(days=40), "ev_rp_cu_13"), limit=5),
        TimelineQuery(after=(NOW + timedelta(days=1), "ev_zz"), limit=5),  # past the end
        TimelineQuery(since=NOW + timedelta(days=1), limit=5),  # nothing in range
    ],
)
def test_when_reading_a_customer_page_then_rows_and_count_match_the_plain_reads(
    timeline_store: Store, query: TimelineQuery
) -> None:
    found = timeline_store.customer_page("c_rp", query)

    assert found is not None
    rows, count = found
    assert _shown(rows) == _shown(timeline_store.customer_timeline("c_rp", query))
    assert count == timeline_store.count_customer_timeline("c_rp", query)


def test_when_the_customer_is_unknown_then_the_customer_page_is_none(
    timeline_store: Store,
) -> None:
    assert timeline_store.customer_page("c_rp_nobody", TimelineQuery()) is None


def test_when_many_threads_log_reads_at_once_then_the_chain_holds_every_entry_once(
    timeline_store: Store,
) -> None:
    before = timeline_store.counts().access_log
    errors: list[BaseException] = []

    def read(n: int) -> None:
        try:
            for i in range(5):
                timeline_store.log_access(
                    actor=f"agent-{n}",
                    role="support",
                    route="/v1/traces/{trace_id}",
                    record_kind="trace",
                    record_id=f"tr_{n}_{i}",
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert timeline_store.counts().access_log == before + 40
    report = timeline_store.verify_access_chain()
    assert report.ok, report
