"""Writes are bulk, idempotent, and each record kind lands where the reads look for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.schema import Lane, RawEvent
from projectors.reads import AccessLogQuery, TimelineQuery
from projectors.rows import DeadLetter
from projectors.store import Store
from tests.store_fixtures import make_event

NOW = datetime.now(UTC)


def test_when_the_same_events_are_inserted_twice_then_every_answer_shows_each_once(
    timeline_store: Store,
) -> None:
    events = [
        make_event(f"ev_dup_{i}", trace_id="tr_dup", customer_id="c_dup", job_id="job_dup")
        for i in range(5)
    ]
    timeline_store.insert_timeline(events)
    before = timeline_store.counts()
    timeline_store.insert_timeline(events, ingested_at=NOW + timedelta(seconds=1))

    assert [e.event_id for e in timeline_store.trace_events("tr_dup")] == [
        f"ev_dup_{i}" for i in range(5)
    ]
    assert len(timeline_store.job_events("job_dup")) == 5
    assert len(timeline_store.customer_timeline("c_dup", TimelineQuery())) == 5
    assert timeline_store.count_customer_timeline("c_dup", TimelineQuery()) == 5
    assert len(timeline_store.trace_index("tr_dup")) == 5
    assert timeline_store.counts() == before


def test_when_merges_run_then_duplicates_are_gone_from_storage_too(timeline_store: Store) -> None:
    events = [make_event(f"ev_merge_{i}", trace_id="tr_merge") for i in range(3)]
    for _ in range(3):
        timeline_store.insert_timeline(events)
    timeline_store.optimize()

    with timeline_store._pool.client() as client:
        physical = client.command("SELECT count() FROM timeline_events WHERE trace_id = 'tr_merge'")
    assert physical == 3


def test_when_a_reused_event_id_arrives_with_new_content_then_the_newest_version_wins(
    timeline_store: Store,
) -> None:
    old = make_event("ev_version", trace_id="tr_version", status="running")
    new = old.model_copy(update={"status": "done"})
    timeline_store.insert_timeline([old], ingested_at=NOW)
    timeline_store.insert_timeline([new], ingested_at=NOW + timedelta(seconds=5))

    [shown] = timeline_store.trace_events("tr_version")
    assert shown.status == "done"


def test_when_an_event_round_trips_then_every_field_is_preserved(timeline_store: Store) -> None:
    event = make_event(
        "ev_round",
        trace_id="tr_round",
        type_="signup_email.retry",
        lane=Lane.SYSTEM,
        status="running",
        attempt=2,
        error_code="SMTP_421",
        reason="Mail server asked to try later",
        customer_id="48291",
        workspace_id="ws_1",
        order_id="ord_1",
        job_id="job_round",
        request_id="req_round",
        fields={"to": "m***.s*****@gmail.com"},
        field_rules={"to": "signup_email.*"},
        lookup_keys=["k1", "k2"],
        dropped=3,
    )
    timeline_store.insert_timeline([event])

    assert timeline_store.trace_events("tr_round") == [event]


def test_when_events_carry_lookup_keys_then_customers_are_found_by_key(
    timeline_store: Store,
) -> None:
    timeline_store.insert_timeline(
        [
            make_event("ev_lk_1", customer_id="c_lk_a", lookup_keys=["key_shared", "key_a"]),
            make_event("ev_lk_2", customer_id="c_lk_b", lookup_keys=["key_shared"]),
            make_event("ev_lk_3", lookup_keys=["key_nobody"]),  # no customer: nothing to find
        ]
    )

    assert timeline_store.customers_by_lookup_key("key_shared") == ["c_lk_a", "c_lk_b"]
    assert timeline_store.customers_by_lookup_key("key_a") == ["c_lk_a"]
    assert timeline_store.customers_by_lookup_key("key_nobody") == []


def test_when_raw_events_are_inserted_twice_then_replay_reads_each_once(
    timeline_store: Store,
) -> None:
    raw = RawEvent(
        trace_id="tr_raw",
        type="signup.submitted",
        occurred_at=NOW,
        source="web",
        data={"email": "maria.santos@gmail.com"},
    ).with_event_id()
    timeline_store.insert_raw([raw])
    timeline_store.insert_raw([raw], received_at=NOW + timedelta(seconds=1))

    assert timeline_store.raw_trace("tr_raw") == [raw]


def test_when_the_same_bad_input_arrives_twice_then_one_dead_letter_keeps_its_reason(
    timeline_store: Store,
) -> None:
    before = timeline_store.counts().dead_letters
    letter = DeadLetter(reason="trace_id: Field required", payload=b'{"type": "x"}')
    kafka = DeadLetter(
        reason="not valid JSON", payload=b"{", origin="kafka", topic="t", partition=2, offset=41
    )
    timeline_store.insert_dead_letters([letter, kafka])
    timeline_store.insert_dead_letters([letter, kafka])

    assert timeline_store.counts().dead_letters == before + 2
    stored = {d.dead_letter_id: d for d in timeline_store.dead_letters()}
    assert stored[letter.dead_letter_id].reason == "trace_id: Field required"
    assert stored[letter.dead_letter_id].payload == b'{"type": "x"}'
    assert (stored[kafka.dead_letter_id].topic, stored[kafka.dead_letter_id].offset) == ("t", 41)


def test_when_access_is_logged_then_it_is_read_back_in_order_with_filters(
    timeline_store: Store,
) -> None:
    first = timeline_store.log_access(
        actor="ana",
        role="support",
        route="/v1/traces/{trace_id}",
        record_kind="trace",
        record_id="tr_a",
    )
    second = timeline_store.log_access(
        actor="eli",
        role="engineer",
        route="/v1/jobs/{job_id}",
        record_kind="job",
        record_id="job_a",
        reason="ticket 4411",
    )

    everything = timeline_store.access_log(AccessLogQuery())
    assert [e.entry_id for e in everything][-2:] == [first.entry_id, second.entry_id]
    assert timeline_store.access_log(AccessLogQuery(actor="eli"))[-1].reason == "ticket 4411"
    assert timeline_store.count_access_log(AccessLogQuery(record_kind="job")) >= 1
    page = timeline_store.access_log(AccessLogQuery(after=(first.at, first.entry_id)))
    assert page[0].entry_id == second.entry_id


def test_when_a_write_has_nothing_in_it_then_nothing_happens(timeline_store: Store) -> None:
    before = timeline_store.counts()
    timeline_store.insert_timeline([])
    timeline_store.insert_raw([])
    timeline_store.insert_dead_letters([])
    assert timeline_store.counts() == before
