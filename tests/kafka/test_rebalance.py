"""Rebalances under the scale-out processor: faust workers join and leave the group mid-stream.

Duplicates after a rebalance are what users of stream processors complain about most (a
partition moves while its events are in flight; faust can commit past them or hand them out
twice). Here one worker routes the first third of the stream, a second joins (the raw
partitions are split between them), the first leaves with a graceful stop while the second
third flows (its partitions move back), a third joins for the rest. Whatever was routed twice
on the way, exactly the accepted events are readable through the API, each once, and every
bad payload is one dead letter with its reason.

The projector is one process here: on chDB one process opens a store (several projectors
share a ClickHouse server, where the same idempotent inserts apply).
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

THIRD = 3_000


def _join(pipeline: Pipeline, port: int) -> None:
    """Start one more faust worker in the group; return once it is ready (has partitions)."""
    log = pipeline.logs / f"process-{len(pipeline.children)}.log"
    worker = pipeline.start("process", "--metrics-port", str(port))
    wait_until(
        lambda: worker.poll() is None and "Ready" in log.read_text(errors="replace"),
        120,
        "the joining worker",
    )


def _routed(port: int) -> float:
    counts = routed_counts(f"http://127.0.0.1:{port}/metrics")
    return sum(counts.values())


def test_when_workers_join_and_leave_mid_stream_then_every_event_is_readable_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    pipeline = Pipeline(kafka_bootstrap, store_url(tmp_path), tmp_path)
    settings = pipeline.settings
    ensure_topics(settings)
    ports = [free_port() for _ in range(3)]
    try:
        first, _ = pipeline.start_stages(ports[0])
        sink = KafkaSink(kafka_bootstrap, settings.topic_raw)
        expected = emit(sink, 0, THIRD)
        sink.flush(60)

        _join(pipeline, ports[1])  # a second worker: the partitions are split
        expected += emit(sink, THIRD, THIRD // 2)
        for payload in BAD_PAYLOADS:
            sink.send_bytes(payload, None)
        sink.flush(60)
        assert pipeline.stop(first, signal.SIGTERM) == 0  # leaves: its partitions move
        expected += emit(sink, THIRD + THIRD // 2, THIRD // 2)
        sink.flush(60)

        _join(pipeline, ports[2])  # a third joins for the rest
        expected += emit(sink, 2 * THIRD, THIRD)
        sink.flush(60)
        sink.close()

        raw_topic = [settings.topic_raw]
        wait_until(
            lambda: pipeline.caught_up(pipeline.processor_group, raw_topic), 240, "processor"
        )
        wait_until(
            lambda: pipeline.caught_up(settings.consumer_group, pipeline.outputs), 240, "projector"
        )
        # The later workers took part: each routed some of the stream.
        assert _routed(ports[1]) > 0 and _routed(ports[2]) > 0
        dlq_messages = read_all(kafka_bootstrap, settings.topic_dlq, expect=len(BAD_PAYLOADS))
    finally:
        pipeline.stop_all()

    assert len(set(expected)) == 3 * THIRD
    check_outcome(pipeline, expected, dlq_messages)
