"""Events as large as a request body travel the Kafka path as they travel the embedded one.

The collector takes a body of up to ``SAFETRAIL_MAX_BODY_BYTES`` (5 MiB); a broker's default
message limit is about 1 MB. Here a ~2 MiB event goes through the Kafka-mode collector, the raw
topic, the faust processor, the timeline or dead-letter topic, the projector and a replay, and
is stored exactly once; an event over the limit is refused alone, with its size and the limit.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka.admin import AdminClient
from fastapi.testclient import TestClient

from ingest.kafka_collector import KafkaIngestor
from ingest.kafka_sink import DEFAULT_MAX_EVENT_BYTES, KafkaSink, MessageTooLargeError
from ingest.processor_app import (
    H_REASON,
    Source,
    ensure_topics,
    message_limit,
    route,
    topic_specs,
    undersized_topics,
)
from ingest.sdk import DeliveryError
from projectors.kafka_projector import KafkaProjector
from projectors.replay import ReplayRequest, run_replay
from projectors.replay_sources import replay_endpoints
from projectors.retention import RetentionPolicy
from projectors.store import Store
from query_api.app import create_app
from safetrail.redactor import build_redactor
from safetrail.settings import Settings
from tests.kafka.helpers import create_topics, read_all, unique
from tests.kafka.pipeline import Pipeline, wait_until
from tests.kafka_fixtures import free_port
from tests.store_fixtures import store_url

MIB = 1024 * 1024
SERVICE = {"Authorization": "Bearer demo-service-token"}


def _import_failed(trace_id: str, event_id: str, rows: int, **overrides: Any) -> dict[str, Any]:
    """A real large event: an import that failed on many rows, each with its error (~80 B/row)."""
    return {
        "event_id": event_id,
        "trace_id": trace_id,
        "type": "import_job.failed",
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        "source": "importer",
        "subject": {"customer_id": "48291", "job_id": f"job_{event_id}"},
        "status": "failed",
        "data": {
            "rows_total": rows,
            "error_rows": [
                {"row": i, "column": "email", "error": f"invalid address user{i}@example.com"}
                for i in range(rows)
            ],
        },
        **overrides,
    }


def _small(trace_id: str, event_id: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "trace_id": trace_id,
        "type": "import.requested",
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=6)).isoformat(),
        "source": "web",
        "subject": {"customer_id": "48291"},
        "data": {"file_name": "customers.csv"},
    }


# --- fast: no broker ------------------------------------------------------------------------


def test_when_an_event_is_over_the_sink_limit_then_send_raises_delivery_error_and_holds_none() -> (
    None
):
    sink = KafkaSink(f"127.0.0.1:{free_port()}", "nowhere", max_event_bytes=MIB)
    big = {"trace_id": "tr_big000001", "event_id": "ev_big", "data": {"blob": "x" * MIB}}
    with pytest.raises(DeliveryError, match=r"event of 10\d{5} bytes is larger than the 1048576"):
        sink.send(big)
    with pytest.raises(MessageTooLargeError) as caught:
        sink.send_bytes(orjson.dumps(big), b"tr_big000001")
    assert (caught.value.size, caught.value.limit) == (len(orjson.dumps(big)), MIB)
    # Refused at once, not queued: nothing waits for a delivery that cannot succeed, and the
    # next event is not held up behind it.
    assert sink.buffered() == 0
    assert sink.undelivered == []
    sink.send({"trace_id": "tr_big000001", "event_id": "ev_small"})
    assert sink.buffered() == 1


def test_when_an_event_is_as_large_as_a_request_body_then_the_default_sink_queues_it() -> None:
    sink = KafkaSink(f"127.0.0.1:{free_port()}", "nowhere")
    sink.send({"trace_id": "tr_big000002", "data": {"blob": "x" * (2 * MIB)}})
    assert sink.buffered() == 1
    with pytest.raises(DeliveryError, match=f"larger than the {DEFAULT_MAX_EVENT_BYTES} bytes"):
        sink.send({"trace_id": "tr_big000002", "data": {"blob": "x" * DEFAULT_MAX_EVENT_BYTES}})


def test_when_topics_are_specified_then_they_take_a_whole_request_body_with_headers() -> None:
    settings = Settings(demo=True, max_body_bytes=3 * MIB)
    limit = message_limit(settings)
    assert limit > settings.max_body_bytes
    for spec in topic_specs(settings):
        assert spec.config is not None
        assert int(spec.config["max.message.bytes"]) == limit


def test_when_a_dead_letter_would_not_fit_a_message_then_it_keeps_reason_without_the_bytes() -> (
    None
):
    settings = Settings(demo=True, max_body_bytes=1024)
    payload = b"{" + b"x" * (message_limit(settings) + 1)
    out = route(payload, Source("raw", 1, 7), build_redactor(settings), settings)
    reason = dict(out.headers)[H_REASON].decode()
    assert out.topic == settings.topic_dlq
    assert out.value == b""
    assert "not valid JSON" in reason
    assert f"larger than the {message_limit(settings)} bytes a dead letter may take" in reason


# --- against the broker -------------------------------------------------------------------


@pytest.mark.kafka
def test_when_a_2_mib_event_takes_the_kafka_path_then_it_is_stored_dead_lettered_and_replayed_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    pipeline = Pipeline(kafka_bootstrap, store_url(tmp_path / "store"), tmp_path)
    settings = pipeline.settings
    redactor = build_redactor(settings)
    ensure_topics(settings)
    trace, bad_trace = "tr_large0000001", "tr_large0000002"
    big = _import_failed(trace, "ev_large_big", 28_000)
    bad = _import_failed(bad_trace, "ev_large_bad", 28_000, occurred_at="2026-11-26T10:00:00")
    request = [_small(trace, "ev_large_a"), big, bad, _small(trace, "ev_large_b")]
    big_bytes, bad_bytes = orjson.dumps(big), orjson.dumps(bad)
    assert 2 * MIB < len(big_bytes) < 3 * MIB
    started = datetime.now(UTC)

    store = Store.open(pipeline.store_url, RetentionPolicy())
    try:
        store.migrate()
        sink = KafkaSink(
            kafka_bootstrap, settings.topic_raw, max_event_bytes=settings.max_body_bytes
        )
        ingestor = KafkaIngestor(sink, redactor)
        with TestClient(
            create_app(settings, store=store, ingestor=ingestor, redactor=redactor)
        ) as client:
            answer = client.post("/v1/events", content=orjson.dumps(request), headers=SERVICE)
        ingestor.close()
        assert answer.status_code == 202, answer.text
        body = answer.json()
        assert (body["accepted"], body["rejected"]) == (3, 1)
        assert "timezone" in body["results"][2]["reason"]

        worker = pipeline.start("process")
        try:
            raw = [settings.topic_raw]
            wait_until(lambda: pipeline.caught_up(pipeline.processor_group, raw), 120, "processor")
        finally:
            assert pipeline.stop(worker) == 0
        everything = [settings.topic_raw, *pipeline.outputs]
        KafkaProjector(settings, store, batch_seconds=0.3).run(
            until=lambda: pipeline.caught_up(settings.consumer_group, everything)
        )

        # Queryable exactly once, the large event with its rows (masked), the raw input whole.
        events = store.trace_events(trace)
        assert sorted(e.event_id for e in events) == ["ev_large_a", "ev_large_b", "ev_large_big"]
        stored_big = next(e for e in events if e.event_id == "ev_large_big")
        assert stored_big.label == "Import failed"
        assert b"user27999@example.com" not in orjson.dumps(stored_big.model_dump(mode="json"))
        raw_big = [r for r in store.raw_trace(trace) if r.event_id == "ev_large_big"]
        assert len(raw_big) == 1
        assert len(raw_big[0].data["error_rows"]) == 28_000
        # The invalid one is a dead letter with its reason and its raw bytes exactly.
        [letter] = [d for d in store.dead_letters(limit=20) if d.trace_id == bad_trace]
        assert "timezone" in letter.reason
        assert letter.payload == bad_bytes
        [message] = read_all(kafka_bootstrap, settings.topic_dlq, expect=1)
        assert message.value() == bad_bytes

        # A replay reads the large raw message back and publishes its timeline again.
        replay = ReplayRequest(
            start=started - timedelta(seconds=5),
            end=datetime.now(UTC) + timedelta(minutes=1),
            reason="INC-8 large events",
            actor="eli.engineer",
        )
        source, timeline_sink = replay_endpoints(settings, store, replay.selection())
        report = run_replay(store, redactor, replay, source, timeline_sink)
        assert (report.read, report.accepted, report.written, report.status) == (
            4,
            3,
            3,
            "finished",
        )
        KafkaProjector(settings, store, batch_seconds=0.3).run(
            until=lambda: pipeline.caught_up(settings.consumer_group, everything)
        )
        again = store.trace_events(trace)
        assert sorted(e.event_id for e in again) == ["ev_large_a", "ev_large_b", "ev_large_big"]
        assert [d.trace_id for d in store.dead_letters(limit=20)].count(bad_trace) == 1
    finally:
        pipeline.stop_all()
        store.close()


@pytest.mark.kafka
def test_when_one_event_is_over_the_collectors_limit_then_only_it_is_rejected_with_the_reason(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = Pipeline(kafka_bootstrap, store_url(tmp_path), tmp_path).settings
    ensure_topics(settings)
    sink = KafkaSink(kafka_bootstrap, settings.topic_raw, max_event_bytes=MIB)
    ingestor = KafkaIngestor(sink, build_redactor(settings))
    trace = "tr_large0000003"
    request = [_small(trace, "ev_over_a"), _import_failed(trace, "ev_over_big", 28_000)]
    request.append(_small(trace, "ev_over_b"))
    report = ingestor.ingest(request)
    ingestor.close()
    assert [r.status for r in report.results] == ["accepted", "rejected", "accepted"]
    reason = report.results[1].reason or ""
    assert "larger than the 1048576 bytes one event may take" in reason
    assert report.results[1].event_id == "ev_over_big"
    got = [
        orjson.loads(m.value() or b"{}")["event_id"]
        for m in read_all(kafka_bootstrap, settings.topic_raw, expect=2)
    ]
    assert sorted(got) == ["ev_over_a", "ev_over_b"]


@pytest.mark.kafka
def test_when_a_topic_takes_smaller_messages_then_it_is_named_and_delivery_fails_with_the_fix(
    kafka_bootstrap: str,
) -> None:
    topic = unique("large.small")
    create_topics(kafka_bootstrap, [topic], partitions=1)  # the broker's default (~1 MB)
    limit = message_limit(Settings(demo=True))
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    [problem] = undersized_topics(admin, [topic], limit)
    assert f"set its max.message.bytes to {limit}" in problem
    sink = KafkaSink(kafka_bootstrap, topic)
    sink.send({"trace_id": "tr_large0000004", "data": {"blob": "x" * (2 * MIB)}})
    with pytest.raises(DeliveryError, match=f"max.message.bytes to at least {limit}"):
        sink.flush(30)
    assert len(sink.undelivered) == 1  # kept for a resend once the topic is sized
