"""Small helpers shared by the Kafka tests: unique topics and reading a topic to its end."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic


def unique(prefix: str) -> str:
    """A topic or group name no other test (or earlier run on the same broker) uses."""
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


def create_topics(bootstrap: str, names: Iterable[str], partitions: int = 3) -> None:
    """Create topics and wait until the broker confirms them."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=partitions, replication_factor=-1) for n in names],
        operation_timeout=30,
    )
    for fut in futures.values():
        fut.result(timeout=60)


def read_all(
    bootstrap: str,
    topic: str,
    *,
    expect: int,
    isolation: str = "read_committed",
    timeout: float = 60.0,
    settle: float = 1.0,
) -> list[Message]:
    """Every message of ``topic`` from the beginning: waits for ``expect`` of them, then reads
    on for ``settle`` seconds so that extra ones (duplicates) are seen too.

    Counting, not end offsets: with transactions the log also holds commit markers and
    aborted records, so offsets say nothing exact about how many messages a reader sees.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique("reader"),
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": isolation,
        }
    )
    deadline = time.monotonic() + timeout
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
        out: list[Message] = []
        settled_at: float | None = None
        while settled_at is None or time.monotonic() < settled_at:
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {len(out)} of {expect} messages from {topic}")
            for msg in consumer.consume(num_messages=10_000, timeout=0.2):
                if msg.error():
                    raise KafkaException(msg.error())
                out.append(msg)
            if settled_at is None and len(out) >= expect:
                settled_at = time.monotonic() + settle
        return out
    finally:
        consumer.close()
