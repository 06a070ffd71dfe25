"""The whole scale-out pipeline on a three-broker cluster with one broker killed mid-stream.

SDK ▶ raw topic ▶ faust worker ▶ timeline and dead-letter topics ▶ projector ▶ ClickHouse ▶
API, every topic replicated three times (``SAFETRAIL_TOPIC_REPLICATION=3``, the cluster's
``min.insync.replicas=2``). The broker killed with -9 is the projector group's coordinator,
so the projector must find a new coordinator for its commits while the leaders of the
partitions that broker led move to the other two, under both stages. It stays down until
every event has been stored: two brokers carry the stream on their own. Afterwards exactly
the accepted events are readable through the API, each once, and every bad event is a dead
letter with its reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from bench.common import free_port
from ingest.kafka_sink import KafkaSink
from ingest.processor_app import ensure_topics
from tests.kafka.helpers import read_all
from tests.kafka.pipeline import BAD_PAYLOADS, Pipeline, check_outcome, emit, wait_until
from tests.kafka_fixtures import LocalKafka, cluster_bootstrap
from tests.store_fixtures import store_url

pytestmark = pytest.mark.kafka

TOTAL = 6_000
CHUNK = 500
KILL_AFTER = 2_000  # events the projector has committed when the broker is killed


def _coordinator(bootstrap: str, group: str) -> int:
    """The node id (1, 2 or 3: ``kafka.sh`` numbers nodes by id) coordinating ``group``."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_consumer_groups([group], request_timeout=30)[group]
    return int(described.result(timeout=30).coordinator.id)


def _leaders(bootstrap: str, topics: list[str]) -> dict[int, int]:
    """Partitions led by each node over ``topics``."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    led: dict[int, int] = {}
    for topic in admin.list_topics(timeout=30).topics.values():
        if topic.topic in topics:
            for partition in topic.partitions.values():
                led[partition.leader] = led.get(partition.leader, 0) + 1
    return led


def test_when_a_broker_dies_under_the_running_pipeline_then_every_event_is_readable_once(
    local_kafka_cluster: LocalKafka, tmp_path: Path
) -> None:
    cluster = local_kafka_cluster
    for node in ("1", "2", "3"):  # an earlier test may have left a node down; whole again
        cluster.run("node-start", node)
    bootstrap = cluster_bootstrap(cluster)
    pipeline = Pipeline(bootstrap, store_url(tmp_path), tmp_path, replication=3)
    settings = pipeline.settings
    ensure_topics(settings)
    topics = [settings.topic_raw, *pipeline.outputs]
    victim: int | None = None
    try:
        worker, projector = pipeline.start_stages(free_port())
        stages = {"process": worker, "project": projector}
        sink = KafkaSink(bootstrap, settings.topic_raw)
        expected: list[str] = []
        for start in range(0, TOTAL, CHUNK):
            expected += emit(sink, start, CHUNK)
            if start == TOTAL // 2:
                for payload in BAD_PAYLOADS:
                    sink.send_bytes(payload, None)
            sink.flush(60)
            if start == KILL_AFTER:
                # The rest is emitted after the kill: both stages meet it mid-stream.
                wait_until(
                    lambda: (
                        pipeline.committed(settings.consumer_group, pipeline.outputs) >= KILL_AFTER
                    ),
                    180,
                    f"the projector to commit {KILL_AFTER} events",
                )
                victim = _coordinator(bootstrap, settings.consumer_group)
                assert _leaders(bootstrap, topics).get(victim), "the victim leads no partition"
                cluster.run("node-kill", str(victim))
        sink.close()
        assert victim is not None

        # Both stages drain everything with the victim still down. The test plays the
        # supervisor (compose `restart`, Kubernetes): a faust worker whose broker connection
        # breaks mid-fetch may crash (aiokafka), and is started again; it re-reads from its
        # last commit, so nothing is lost, and the projector folds what is routed twice.
        raw_topic = [settings.topic_raw]

        def caught_up(group: str, topics: list[str]) -> bool:
            pipeline.revive(stages)
            return pipeline.caught_up(group, topics)

        wait_until(lambda: caught_up(pipeline.processor_group, raw_topic), 240, "processor")
        wait_until(lambda: caught_up(settings.consumer_group, pipeline.outputs), 240, "projector")
        assert victim not in _leaders(bootstrap, topics), "the killed broker still leads"
        dlq_messages = read_all(bootstrap, settings.topic_dlq, expect=len(BAD_PAYLOADS))
    finally:
        pipeline.stop_all()
        if victim is not None:
            cluster.run("node-start", str(victim))

    assert len(set(expected)) == TOTAL
    check_outcome(pipeline, expected, dlq_messages)
