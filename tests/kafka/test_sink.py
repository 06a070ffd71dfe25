"""The SDK's Kafka sink: keyed, idempotent delivery; loud, never silent, when Kafka is away."""

from __future__ import annotations

import time

import orjson
import pytest

from ingest.kafka_sink import KafkaSink
from ingest.sdk import BufferFullError, DeliveryError, Emitter, trace
from tests.kafka.helpers import create_topics, read_all, unique
from tests.kafka_fixtures import free_port


@pytest.mark.kafka
def test_when_events_are_emitted_then_each_arrives_once_keyed_by_trace_in_order(
    kafka_bootstrap: str,
) -> None:
    topic = unique("sink.raw")
    create_topics(kafka_bootstrap, [topic], partitions=3)
    sink = KafkaSink(kafka_bootstrap, topic)
    emitter = Emitter(sink, source="web")
    sent: dict[str, list[str]] = {}
    for _trace in range(50):
        with trace() as trace_id:
            for step in range(20):
                event = emitter.emit("signup.step", actor="customer", attempt=step)
                sent.setdefault(trace_id, []).append(event["event_id"])
    emitter.close()
    assert sink.delivered == 1_000
    assert sink.undelivered == []

    got: dict[str, list[str]] = {}
    for msg in read_all(kafka_bootstrap, topic, expect=1_000):
        body = orjson.loads(msg.value() or b"{}")
        assert msg.key() == body["trace_id"].encode()
        got.setdefault(body["trace_id"], []).append(body["event_id"])
    # One partition per trace, so each trace reads back complete and in emit order.
    assert got == sent


def test_when_the_broker_is_unreachable_then_a_full_buffer_raises_instead_of_dropping() -> None:
    sink = KafkaSink(f"127.0.0.1:{free_port()}", "nowhere", max_buffer=10)
    for i in range(10):
        sink.send({"trace_id": "tr_full0001", "event_id": f"ev_{i}"})
    with pytest.raises(BufferFullError, match="10 events buffered .* not taking them"):
        sink.send({"trace_id": "tr_full0001", "event_id": "ev_10"})
    # librdkafka queues its own reports meanwhile (connection refused, all brokers down):
    # they are not events, and the count of held events does not move with them.
    time.sleep(0.5)
    assert sink.buffered() == 10  # the ten accepted ones are still held, not dropped
    with pytest.raises(DeliveryError, match="10 events still waiting"):
        sink.flush(timeout=0.5)


def test_when_delivery_times_out_then_the_events_are_kept_and_reported() -> None:
    sink = KafkaSink(f"127.0.0.1:{free_port()}", "nowhere", delivery_timeout=1.0)
    for i in range(3):
        sink.send({"trace_id": "tr_late0001", "event_id": f"ev_{i}"})
    with pytest.raises(DeliveryError, match="3 events could not be delivered"):
        sink.flush(timeout=10)
    kept = [orjson.loads(value)["event_id"] for value, _key, _err in sink.undelivered]
    assert kept == ["ev_0", "ev_1", "ev_2"]
    assert all(key == b"tr_late0001" for _value, key, _err in sink.undelivered)
    # The next send refuses too, so a service learns of the loss before its shutdown.
    with pytest.raises(DeliveryError):
        sink.send({"trace_id": "tr_late0001", "event_id": "ev_3"})


@pytest.mark.kafka
def test_when_failed_events_are_resent_after_the_broker_returns_then_they_arrive(
    kafka_bootstrap: str,
) -> None:
    topic = unique("sink.resend")
    create_topics(kafka_bootstrap, [topic], partitions=1)
    down = KafkaSink(f"127.0.0.1:{free_port()}", topic, delivery_timeout=1.0)
    down.send({"trace_id": "tr_again0001", "event_id": "ev_a"})
    with pytest.raises(DeliveryError):
        down.flush(timeout=10)

    up = KafkaSink(kafka_bootstrap, topic)
    up.undelivered = down.undelivered  # what a service would persist and replay
    assert up.resend_undelivered() == 1
    up.flush(timeout=30)
    [msg] = read_all(kafka_bootstrap, topic, expect=1)
    assert orjson.loads(msg.value() or b"{}")["event_id"] == "ev_a"
