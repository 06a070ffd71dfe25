"""Where replays read and write: the raw table and store (embedded), Kafka (scale-out).

``StoreRawSource`` pages through the restricted raw table by time received; ``StoreSink``
inserts timeline rows; ``DeadLetterSource`` feeds chosen dead letters to a re-drive.

``KafkaRawSource`` turns the time range into offsets with ``offsets_for_times`` (the first
message at or after ``start`` per partition, up to the first at or after ``end``), reads only
those messages with a throw-away consumer that never commits, and filters by trace (message
key) and type glob. The range is message time: when the event reached the raw topic.

``KafkaTimelineSink`` publishes accepted events to the customer or system timeline topic with
the trace ID as key, exactly as the processor does; the projector then writes them. Because
they land after the original messages of the same trace in the same partition, the projector
stores them later, and the newest version wins at read.

``replay_endpoints`` picks the raw table and the store in the embedded mode, Kafka otherwise.
"""

from __future__ import annotations

import fnmatch
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from ingest.kafka_sink import PARTITIONER, max_message_bytes
from ingest.process import Accepted
from ingest.schema import Lane
from projectors.replay import Coordinates, ReplayItem, ReplaySource, TimelineSink
from projectors.restricted import RawRange
from projectors.rows import micros
from projectors.store import Store
from safetrail.settings import Settings


def _ms(moment: datetime) -> int:
    return micros(moment) // 1000


class KafkaRawSource:
    """The raw topic between two times, read once without a consumer group commit."""

    name = "raw_topic"

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        selection: RawRange,
        *,
        batch_size: int = 1000,
        timeout: float = 120.0,
    ) -> None:
        self._topic, self._selection = topic, selection
        self._batch, self._timeout = batch_size, timeout
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"safetrail-replay-{uuid.uuid4().hex[:12]}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": "read_committed",
            }
        )
        self._ranges = self._plan()

    def _plan(self) -> dict[int, tuple[int, int]]:
        meta = self._consumer.list_topics(self._topic, timeout=30).topics[self._topic]
        if meta.error is not None:
            raise KafkaException(meta.error)
        parts = sorted(meta.partitions)
        start_ms, end_ms = _ms(self._selection.start), _ms(self._selection.end)
        starts = self._consumer.offsets_for_times(
            [TopicPartition(self._topic, p, start_ms) for p in parts], timeout=30
        )
        ends = self._consumer.offsets_for_times(
            [TopicPartition(self._topic, p, end_ms) for p in parts], timeout=30
        )
        ranges = {}
        for first, last in zip(starts, ends, strict=True):
            if first.offset < 0:
                continue  # no message at or after start in this partition
            end = last.offset
            if end < 0:  # nothing at or after end: read to the high watermark
                end = self._consumer.get_watermark_offsets(
                    TopicPartition(self._topic, first.partition), timeout=30
                )[1]
            if end > first.offset:
                ranges[first.partition] = (first.offset, end)
        return ranges

    def total(self) -> int:
        """Messages in the offset ranges (an upper bound when filtering by trace or type)."""
        return sum(end - start for start, end in self._ranges.values())

    def _matches(self, key: bytes | None, value: bytes) -> bool:
        sel = self._selection
        if sel.trace_id and key is not None and key != sel.trace_id.encode():
            return False
        if not (sel.trace_id or sel.type_glob):
            return True
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError:
            return False  # cannot match a filter; replays without filters still take it
        if not isinstance(obj, dict):
            return False
        if sel.trace_id and obj.get("trace_id") != sel.trace_id:
            return False
        kind = obj.get("type")
        return not sel.type_glob or (
            isinstance(kind, str) and fnmatch.fnmatchcase(kind, sel.type_glob)
        )

    def batches(self) -> Iterator[tuple[list[ReplayItem], int]]:
        """Matching messages, batch by batch, until every partition reached its end offset."""
        remaining = dict(self._ranges)
        if not remaining:
            self._consumer.close()
            return
        self._consumer.assign(
            [TopicPartition(self._topic, p, s) for p, (s, _) in remaining.items()]
        )
        deadline = time.monotonic() + self._timeout
        try:
            while remaining:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"raw topic not read to the end in {self._timeout:.0f}s")
                items, scanned = [], 0
                for msg in self._consumer.consume(self._batch, timeout=0.5):
                    err, part = msg.error(), msg.partition()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            remaining.pop(part or 0, None)
                            continue
                        raise KafkaException(err)
                    offset = msg.offset() or 0
                    part = part or 0
                    if part not in remaining or offset >= remaining[part][1]:
                        remaining.pop(part, None)
                        continue
                    scanned += 1
                    if offset + 1 >= remaining[part][1]:
                        remaining.pop(part, None)
                    value = bytes(msg.value() or b"")
                    if self._matches(msg.key(), value):
                        items.append(ReplayItem(value, Coordinates(self._topic, part, offset)))
                if items or scanned:
                    yield items, scanned
        finally:
            self._consumer.close()


class KafkaTimelineSink:
    """Publishes accepted events to the timeline topics (idempotent producer, key trace_id)."""

    def __init__(self, settings: Settings) -> None:
        assert settings.kafka_bootstrap  # noqa: S101 - chosen by replay_endpoints
        self._settings = settings
        self._producer = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "compression.type": "none",
                # A replayed event must land in its original's partition, or the projector
                # could store the two versions in either order (one key, one partition).
                "partitioner": PARTITIONER,
                # As large as the processor's outputs: a replayed event as large as the
                # collector takes is carried the same way.
                "message.max.bytes": max_message_bytes(settings.max_body_bytes),
            }
        )
        self._failed: list[str] = []

    def _on_delivery(self, err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            self._failed.append(err.str())

    def write(self, accepted: Sequence[tuple[ReplayItem, Accepted]], *, keep_raw: bool) -> None:
        """Publish and wait for the broker; raise if any message was not delivered.

        ``keep_raw`` is ignored: the raw topic already holds (or never held) the input.
        """
        del keep_raw
        s = self._settings
        for _, item in accepted:
            topic = s.topic_customer if item.lane is Lane.CUSTOMER else s.topic_system
            value = item.timeline.model_dump_json().encode()
            key = item.timeline.trace_id.encode()
            self._producer.produce(topic, value=value, key=key, on_delivery=self._on_delivery)
            self._producer.poll(0)
        left = self._producer.flush(60)
        if left or self._failed:
            raise RuntimeError(f"replayed events not delivered: {left} waiting, {self._failed[:3]}")


class StoreSink:
    """Embedded mode: timeline rows (and raw rows for re-driven input) straight into the store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def write(self, accepted: Sequence[tuple[ReplayItem, Accepted]], *, keep_raw: bool) -> None:
        """Insert the events; the newest ``ingested_at`` wins at read, so they replace the old."""
        now = datetime.now(UTC)
        if keep_raw:
            raws = [a.raw for _, a in accepted]
            self._store.insert_raw(raws, received_at=now, payloads=[i.payload for i, _ in accepted])
        self._store.insert_timeline([a.timeline for _, a in accepted], ingested_at=now)


class StoreRawSource:
    """Embedded mode: the restricted raw table, by time received, in keyset pages."""

    name = "raw_events"

    def __init__(self, store: Store, selection: RawRange, batch_size: int = 2000) -> None:
        self._store, self._selection, self._batch = store, selection, batch_size

    def total(self) -> int:
        """Distinct raw events in the range."""
        return self._store.count_raw_range(self._selection)

    def batches(self) -> Iterator[tuple[list[ReplayItem], int]]:
        """Pages of raw events in event_id order."""
        after = ""
        while True:
            page = self._store.raw_range_page(self._selection, after, self._batch)
            if not page:
                return
            after = page[-1][0]
            yield [ReplayItem(payload) for _, payload in page], len(page)


class DeadLetterSource:
    """Re-drive: chosen dead letters (or every one not yet re-driven), newest first."""

    name = "dead_letters"

    def __init__(self, store: Store, ids: Sequence[str] | None, limit: int = 10_000) -> None:
        pending = ids is None
        rows = store.dead_letter_status(limit=limit, pending_only=pending, ids=ids)
        self._letters = [row.letter for row in rows]

    def total(self) -> int:
        """How many dead letters will be re-driven."""
        return len(self._letters)

    def batches(self) -> Iterator[tuple[list[ReplayItem], int]]:
        """All chosen dead letters in one batch (they are few by nature)."""
        if self._letters:
            yield [ReplayItem(d.payload, letter=d) for d in self._letters], len(self._letters)


def replay_endpoints(
    settings: Settings, store: Store, selection: RawRange
) -> tuple[ReplaySource, TimelineSink]:
    """Source and sink for a replay: raw table and store (embedded) or raw and timeline topics."""
    if settings.kafka_bootstrap:
        source = KafkaRawSource(settings.kafka_bootstrap, settings.topic_raw, selection)
        return source, KafkaTimelineSink(settings)
    return StoreRawSource(store, selection), StoreSink(store)


def redrive_sink(settings: Settings, store: Store) -> TimelineSink:
    """Where re-driven dead letters go: the same place replayed events go."""
    return KafkaTimelineSink(settings) if settings.kafka_bootstrap else StoreSink(store)
