"""The broker the Kafka tests run on is real Apache Kafka and speaks what our clients need.

These are the checks that chose the Kafka version (deploy/local/pom.xml): confluent-kafka's
idempotent and transactional producer, read_committed consumers, and aiokafka 0.14 (what
faust-streaming runs on) with an idempotent producer and a consumer group.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]
from confluent_kafka import Producer
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported at runtime
    AdminClient,
    ConfigResource,
)

from tests.kafka.helpers import create_topics, read_all, unique

pytestmark = pytest.mark.kafka


def test_when_the_broker_config_is_read_then_it_is_kafka_4_in_kraft_mode(
    kafka_bootstrap: str,
) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    cluster = admin.describe_cluster(request_timeout=10).result(timeout=15)
    assert cluster.nodes, "the broker reports no nodes"
    node = ConfigResource(ConfigResource.Type.BROKER, str(cluster.nodes[0].id))
    configs = admin.describe_configs([node])[node].result(timeout=15)
    # Kafka 4 removed ZooKeeper (and every zookeeper.* setting); KRaft nodes have roles.
    assert not any(name.startswith("zookeeper.") for name in configs)
    assert "broker" in (configs["process.roles"].value or "")


def test_when_an_idempotent_producer_sends_then_each_message_arrives_once_in_order(
    kafka_bootstrap: str,
) -> None:
    topic = unique("smoke.idem")
    create_topics(kafka_bootstrap, [topic], partitions=3)
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "acks": "all"}
    )
    failures: list[str] = []

    def report(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    for i in range(2_000):
        producer.produce(
            topic, key=f"tr_{i % 17}".encode(), value=str(i).encode(), on_delivery=report
        )
        producer.poll(0)
    assert producer.flush(30) == 0
    assert failures == []

    got = read_all(kafka_bootstrap, topic, expect=2_000)
    values = [int(m.value() or b"-1") for m in got]
    assert sorted(values) == list(range(2_000))
    # Same key, same partition, in send order: what makes a trace readable top to bottom.
    per_key: dict[bytes, list[int]] = {}
    for m, v in zip(got, values, strict=True):
        per_key.setdefault(m.key() or b"", []).append(v)
    assert all(vs == sorted(vs) for vs in per_key.values())


def test_when_a_transaction_aborts_then_read_committed_consumers_never_see_it(
    kafka_bootstrap: str,
) -> None:
    topic = unique("smoke.txn")
    create_topics(kafka_bootstrap, [topic], partitions=1)
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "transactional.id": unique("smoke-txn")}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, value=f"kept-{i}".encode())
    producer.commit_transaction(30)
    producer.begin_transaction()
    for i in range(5):
        producer.produce(topic, value=f"aborted-{i}".encode())
    producer.abort_transaction(30)

    got = [m.value() for m in read_all(kafka_bootstrap, topic, expect=5)]
    assert got == [f"kept-{i}".encode() for i in range(5)]


def test_when_aiokafka_produces_and_consumes_in_a_group_then_it_reads_everything(
    kafka_bootstrap: str,
) -> None:
    topic, group = unique("smoke.aio"), unique("smoke-aio")
    create_topics(kafka_bootstrap, [topic], partitions=2)

    async def roundtrip() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
        await producer.start()
        try:
            for i in range(200):
                await producer.send(topic, key=b"k%d" % (i % 5), value=b"%d" % i)
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        seen: list[bytes] = []
        try:
            async with asyncio.timeout(60):
                while len(seen) < 200:
                    batch = await consumer.getmany(timeout_ms=500)
                    seen.extend(m.value or b"" for msgs in batch.values() for m in msgs)
            await consumer.commit()
        finally:
            await consumer.stop()
        return seen

    seen = asyncio.run(roundtrip())
    assert sorted(int(v) for v in seen) == list(range(200))
