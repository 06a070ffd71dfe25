"""Fault test on a three-broker cluster: a broker killed with -9 mid-stream loses no event and
duplicates none (acks=all, min.insync.replicas=2, idempotent producer)."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from ingest.kafka_sink import KafkaSink
from tests.kafka.helpers import read_all, unique
from tests.kafka_fixtures import LocalKafka, cluster_bootstrap

pytestmark = pytest.mark.kafka


def test_when_a_broker_is_killed_mid_stream_then_every_event_arrives_exactly_once(
    local_kafka_cluster: LocalKafka,
) -> None:
    bootstrap = cluster_bootstrap(local_kafka_cluster)
    topic = unique("cluster.raw")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    spec = NewTopic(topic, 3, 3, config={"min.insync.replicas": "2"})
    admin.create_topics([spec], operation_timeout=30)[topic].result(timeout=60)

    sink = KafkaSink(bootstrap, topic)
    for i in range(3_000):
        sink.send({"trace_id": f"tr_clus{i % 97:04d}", "event_id": f"ev_{i:05d}"})
        if i == 1_000:
            sink.flush(30)
            # Node 1 stays down: two in-sync replicas are still enough to accept writes.
            local_kafka_cluster.run("node-kill", "1")
    sink.flush(60)

    ids = Counter(
        orjson.loads(m.value() or b"{}")["event_id"]
        for m in read_all(bootstrap, topic, expect=3_000)
    )
    assert len(ids) == 3_000
    assert max(ids.values()) == 1
