"""The worker's liveness watchdog: a partition with lag and no new commit for ``stall_seconds``
makes the worker exit for a restart; progress, an empty backlog or a broker outage do not."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from ingest.liveness import KafkaOffsets, Offsets, OffsetSource, StallDetector, Watchdog
from ingest.processor_app import build_watchdog
from safetrail.settings import Settings
from tests.kafka.helpers import create_topics, unique

pytestmark = pytest.mark.kafka

LAG = Offsets(committed=10, end=50)


def test_when_a_partition_keeps_its_lag_and_commit_then_it_is_stuck_after_the_stall_time() -> None:
    detector = StallDetector(stall_seconds=30)
    assert detector.observe(0, {0: LAG, 1: Offsets(5, 5)}) == []
    assert detector.observe(29, {0: LAG, 1: Offsets(5, 5)}) == []
    assert detector.observe(30, {0: LAG, 1: Offsets(5, 5)}) == [0]


@pytest.mark.parametrize(
    "later",
    [Offsets(committed=11, end=50), Offsets(committed=50, end=50)],
    ids=["the commit moved", "the lag is gone"],
)
def test_when_the_partition_moves_then_its_clock_restarts(later: Offsets) -> None:
    detector = StallDetector(stall_seconds=30)
    detector.observe(0, {0: LAG})
    assert detector.observe(40, {0: later}) == []
    assert detector.observe(69, {0: later}) == []


def test_when_only_new_events_arrive_then_the_partition_is_still_stuck() -> None:
    detector = StallDetector(stall_seconds=30)
    detector.observe(0, {0: LAG})
    assert detector.observe(40, {0: Offsets(committed=10, end=10_000)}) == [0]


def test_when_the_broker_cannot_be_asked_then_the_outage_does_not_count() -> None:
    detector = StallDetector(stall_seconds=30)
    detector.observe(0, {0: LAG})
    assert detector.observe(100, None) == []  # outage: restarting would not help
    assert detector.observe(110, {0: LAG}) == []  # the clock starts again after it
    assert detector.observe(140, {0: LAG}) == [0]


def test_when_the_worker_holds_partitions_then_only_those_are_watched() -> None:
    detector = StallDetector(stall_seconds=30)
    offsets = {0: LAG, 1: LAG}
    detector.observe(0, offsets, scope={1})
    assert detector.observe(30, offsets, scope={1}) == [1]
    assert detector.observe(30, offsets, scope=()) == [0, 1]  # holds none: every partition


class _Script:
    """An ``OffsetSource`` that replays a list of answers (an exception: broker down)."""

    def __init__(self, answers: list[Mapping[int, Offsets] | Exception]) -> None:
        self.answers = answers
        self.closed = False

    def offsets(self) -> Mapping[int, Offsets]:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        self.closed = True


def test_when_the_source_fails_then_the_watchdog_treats_it_as_an_outage() -> None:
    now = [0.0]
    script = _Script([{0: LAG}, ConnectionError("down"), {0: LAG}, {0: LAG}])
    watchdog = Watchdog(lambda: script, stall_seconds=30, clock=lambda: now[0])
    source: OffsetSource = script
    assert watchdog.check(source) == []
    now[0] = 40
    assert watchdog.check(source) == []
    now[0] = 50
    assert watchdog.check(source) == []
    now[0] = 80
    assert watchdog.check(source) == [0]


def _watching(
    source: Callable[[], OffsetSource], *, stall_seconds: float, interval: float
) -> tuple[Watchdog, list[list[int]]]:
    """A started watchdog that records what it would exit for instead of exiting."""
    fired: list[list[int]] = []
    watchdog = Watchdog(source, stall_seconds, interval=interval, on_stall=fired.append)
    watchdog.start()
    return watchdog, fired


def _produce(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(count):
        producer.produce(topic, value=b"x", partition=i % 2)
    assert producer.flush(30) == 0


def _commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(topic, p, o) for p, o in offsets.items()]
        consumer.commit(offsets=tps, asynchronous=False)
    finally:
        consumer.close()


def test_when_a_group_stops_committing_on_a_real_broker_then_the_watchdog_fires(
    kafka_bootstrap: str,
) -> None:
    topic, group = unique("live"), unique("live-group")
    create_topics(kafka_bootstrap, [topic], partitions=2)
    _produce(kafka_bootstrap, topic, 20)
    _commit(kafka_bootstrap, group, topic, {0: 10})  # partition 0 drained, 1 never read

    source = KafkaOffsets(kafka_bootstrap, group, topic)
    try:
        assert source.offsets() == {0: Offsets(10, 10), 1: Offsets(0, 10)}
    finally:
        source.close()

    watchdog, fired = _watching(
        lambda: KafkaOffsets(kafka_bootstrap, group, topic), stall_seconds=1.0, interval=0.25
    )
    deadline = time.monotonic() + 30
    while not fired and time.monotonic() < deadline:
        time.sleep(0.1)
    watchdog.stop()
    assert fired == [[1]]


def test_when_a_group_keeps_committing_then_the_watchdog_stays_quiet(kafka_bootstrap: str) -> None:
    topic, group = unique("live"), unique("live-group")
    create_topics(kafka_bootstrap, [topic], partitions=2)
    _produce(kafka_bootstrap, topic, 400)
    watchdog, fired = _watching(
        lambda: KafkaOffsets(kafka_bootstrap, group, topic), stall_seconds=1.0, interval=0.2
    )
    for step in range(1, 16):  # a slow but steady consumer: one commit every 0.3 s
        _commit(kafka_bootstrap, group, topic, {0: step * 10, 1: step * 10})
        time.sleep(0.3)
    watchdog.stop()
    assert fired == []


def test_when_no_broker_answers_then_the_watchdog_never_fires() -> None:
    watchdog, fired = _watching(
        lambda: KafkaOffsets("127.0.0.1:1", "g", "t", timeout=0.5), stall_seconds=0.5, interval=0.2
    )
    time.sleep(3)
    watchdog.stop()
    assert fired == []


def test_when_a_worker_is_built_then_its_watchdog_watches_its_group_on_the_raw_topic() -> None:
    settings = Settings(
        demo=True,
        kafka_bootstrap="127.0.0.1:1",
        topic_raw="orders.raw",
        processor_stall_seconds=40,
    )
    watchdog = build_watchdog(settings, "orders-processor")
    source = watchdog._source_factory()  # noqa: SLF001
    try:
        assert isinstance(source, KafkaOffsets)
        assert (source.group, source.topic) == ("orders-processor", "orders.raw")
    finally:
        source.close()
    assert watchdog.detector.stall_seconds == 40
    assert watchdog.interval == 5.0  # looks often enough to catch a stall within the time
