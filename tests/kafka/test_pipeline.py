"""Proof of the scale-out path on a real broker: 20,000 events through SDK ▶ Kafka ▶ faust ▶
Kafka ▶ projector ▶ ClickHouse ▶ API, with a kill -9 of the faust worker or of the projector in
the middle of the stream and a restart. Every event must be readable exactly once and every bad
event must be a dead letter exactly once, with its reason.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from bench.common import free_port
from ingest.kafka_sink import KafkaSink
from ingest.processor_app import ensure_topics
from tests.kafka.helpers import read_all
from tests.kafka.pipeline import (
    BAD_PAYLOADS,
    Pipeline,
    check_outcome,
    emit,
    routed_counts,
    wait_until,
)
from tests.store_fixtures import store_url

pytestmark = pytest.mark.kafka

TOTAL = 20_000
CHUNK = 1_000
KILL_AFTER = 5_000  # progress of the victim when it is killed


@pytest.mark.parametrize(
    "victim",
    [
        "process",  # the faust worker dies after routing ~5,000 events, outputs half sent
        "project",  # the projector dies after storing ~5,000 rows, mid-batch
    ],
)
def test_when_a_stage_is_killed_mid_stream_then_every_event_is_readable_exactly_once(
    kafka_bootstrap: str, tmp_path: Path, victim: str
) -> None:
    pipeline = Pipeline(kafka_bootstrap, store_url(tmp_path), tmp_path)
    settings = pipeline.settings
    ensure_topics(settings)
    try:
        metrics_port = free_port()
        worker, projector = pipeline.start_stages(metrics_port)

        def progress() -> int:
            if victim == "process":
                return pipeline.end_offsets(pipeline.outputs)
            return pipeline.committed(settings.consumer_group, pipeline.outputs)

        sink = KafkaSink(kafka_bootstrap, settings.topic_raw)
        expected: list[str] = []
        killed_at: int | None = None
        for start in range(0, TOTAL, CHUNK):
            expected += emit(sink, start, CHUNK)
            if start == TOTAL // 2:
                for payload in BAD_PAYLOADS:
                    sink.send_bytes(payload, None)
            sink.flush(30)
            if killed_at is None and (done := progress()) >= KILL_AFTER:
                target = worker if victim == "process" else projector
                pipeline.stop(target, signal.SIGKILL)
                killed_at = done
                pipeline.start(victim)
        sink.close()
        if killed_at is None:  # the stream outran the victim: kill it as soon as it gets there
            wait_until(lambda: progress() >= KILL_AFTER, 120, f"{victim} to reach {KILL_AFTER}")
            killed_at = progress()
            pipeline.stop(worker if victim == "process" else projector, signal.SIGKILL)
            pipeline.start(victim)
        assert killed_at < TOTAL, "the kill came after the stream had passed: not mid-stream"

        raw_topic = [settings.topic_raw]
        wait_until(
            lambda: pipeline.caught_up(pipeline.processor_group, raw_topic), 180, "processor"
        )
        wait_until(
            lambda: pipeline.caught_up(settings.consumer_group, pipeline.outputs), 180, "projector"
        )
        dlq_messages = read_all(kafka_bootstrap, settings.topic_dlq, expect=len(BAD_PAYLOADS))
        if victim == "project":  # the first worker ran throughout: its counts are the run's
            routed = routed_counts(f"http://127.0.0.1:{metrics_port}/metrics")
            assert routed["rejected"] == len(BAD_PAYLOADS)
            assert routed["customer"] + routed["system"] == TOTAL
    finally:
        pipeline.stop_all()

    assert len(set(expected)) == TOTAL
    # Redelivery after the kill may put a dead letter on the topic twice, but only when the
    # processor was the one killed; the store keeps each once either way.
    if victim == "project":
        assert len(dlq_messages) == len(BAD_PAYLOADS)
    check_outcome(pipeline, expected, dlq_messages)
