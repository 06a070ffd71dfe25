"""The scale-out projector: Kafka topics ─▶ ClickHouse, batch ▶ insert ▶ commit.

One loop, read top to bottom in ``KafkaProjector.step``:

1. poll until ``batch_size`` messages or ``batch_seconds`` have passed;
2. decode: raw messages become ``RawEvent`` for the restricted raw table (the engineers'
   drill-down; invalid ones are skipped, the processor dead-letters them); timeline messages
   become ``TimelineEvent``; dead-letter messages become ``DeadLetter`` with the reason and
   source coordinates from their headers; a timeline or dead-letter message that does not
   decode becomes a dead letter itself (never skipped);
3. insert through ``Store`` and retry with backoff while ClickHouse fails (the partitions are
   paused meanwhile, so the consumer stays in its group without fetching more);
4. commit the offsets of exactly that batch, only after the insert succeeded.

A crash anywhere before 4 means the batch is read again; that is harmless because the store
is idempotent (timeline and raw rows are keyed by ``event_id``, dead letters by source
coordinates).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from prometheus_client import Counter, Gauge
from pydantic import ValidationError

from ingest.processor_app import H_EVENT_ID, H_OFFSET, H_PARTITION, H_REASON, H_TOPIC, H_TRACE_ID
from ingest.schema import RawEvent, TimelineEvent
from projectors.rows import DeadLetter
from projectors.store import Store
from safetrail.settings import Settings

log = logging.getLogger(__name__)

LAG = Gauge(
    "safetrail_projector_consumer_lag",
    "Messages in the topic not yet projected (high watermark minus position)",
    ["topic", "partition"],
)
ROWS = Counter("safetrail_projector_rows_total", "Rows inserted", ["table"])
STORE_FAILURES = Counter("safetrail_projector_store_failures_total", "Failed insert attempts")
COMMIT_FAILURES = Counter("safetrail_projector_commit_failures_total", "Failed offset commits")

MAX_BACKOFF = 30.0
# How long a started batch waits for more messages once the consumer has none at hand.
LINGER = 0.02
FETCH_WAIT_MS = 20


@dataclass
class Batch:
    """Decoded rows of one poll round and the offsets to commit once they are stored."""

    timeline: list[TimelineEvent] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    raws: list[RawEvent] = field(default_factory=list)
    raw_payloads: list[bytes] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.timeline) + len(self.dead_letters) + len(self.raws)


def _header(msg: Message, name: str) -> str | None:
    headers = msg.headers() or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    for key, value in pairs:
        if key == name and value is not None:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return None


def _int_header(msg: Message, name: str) -> int | None:
    value = _header(msg, name)
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


def decode(msg: Message, dlq_topic: str) -> TimelineEvent | DeadLetter:
    """One consumed message as a row; anything undecodable becomes a dead letter."""
    value = bytes(msg.value() or b"")
    if msg.topic() == dlq_topic:
        reason = _header(msg, H_REASON)
        topic = _header(msg, H_TOPIC)
        partition, offset = _int_header(msg, H_PARTITION), _int_header(msg, H_OFFSET)
        if (
            reason is not None
            and topic is not None
            and partition is not None
            and offset is not None
        ):
            return DeadLetter(
                reason=reason,
                payload=value,
                origin="kafka",
                topic=topic,
                partition=partition,
                offset=offset,
                event_id=_header(msg, H_EVENT_ID),
                trace_id=_header(msg, H_TRACE_ID),
            )
        problem = "dead letter without reason or source coordinates"
    else:
        try:
            return TimelineEvent.model_validate_json(value)
        except ValidationError as exc:
            problem = f"timeline message not valid: {exc.errors()[0]['msg']}"
    # Coordinates of the message itself, so a redelivery lands on the same dead letter.
    return DeadLetter(
        reason=problem,
        payload=value,
        origin="kafka",
        topic=msg.topic() or "",
        partition=msg.partition(),
        offset=msg.offset(),
    )


def decode_raw(msg: Message) -> RawEvent | None:
    """One raw-topic message as a raw event, or ``None`` when it is not valid (the processor
    dead-letters those with the reason, so they are only logged here)."""
    try:
        return RawEvent.model_validate_json(bytes(msg.value() or b"")).with_event_id()
    except ValidationError as exc:
        log.debug(
            "raw message %s[%s]@%s not valid, skipped: %s",
            msg.topic(),
            msg.partition(),
            msg.offset(),
            exc.errors()[0]["msg"],
        )
        return None


class KafkaProjector:
    """Consumer group member that projects the raw, timeline and dead-letter topics into a
    store."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        group: str | None = None,
        batch_size: int | None = None,
        batch_seconds: float | None = None,
        batch_min_seconds: float | None = None,
        consumer_config: dict[str, Any] | None = None,
    ) -> None:
        if not settings.kafka_bootstrap:
            raise ValueError("SAFETRAIL_KAFKA_BOOTSTRAP is not set")
        self.settings = settings
        self.store = store
        self.batch_size = batch_size or settings.projector_batch_size
        self.batch_seconds = batch_seconds or settings.projector_batch_seconds
        self.linger = min(LINGER, self.batch_seconds)
        if batch_min_seconds is None:
            batch_min_seconds = settings.projector_batch_min_seconds
        self.batch_min_seconds = min(batch_min_seconds, self.batch_seconds)
        self.topics = [
            settings.topic_raw,
            settings.topic_customer,
            settings.topic_system,
            settings.topic_dlq,
        ]
        self.stopping = threading.Event()
        self._assigned: set[tuple[str, int]] = set()
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": group or settings.consumer_group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                # Only what the processor committed (it writes no transactions today, but a
                # transactional producer upstream must never leak aborted rows).
                "isolation.level": "read_committed",
                # A projector killed with -9 holds its partitions until this expires.
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 2_000,
                # Under load, one fetch brings many messages rather than one per arrival (the
                # broker's CPU is shared); at a trickle it costs at most FETCH_WAIT_MS.
                "fetch.min.bytes": 64 * 1024,
                "fetch.wait.max.ms": FETCH_WAIT_MS,
                **(consumer_config or {}),
            }
        )

    # --- the loop --------------------------------------------------------------------------

    def run(self, *, until: Callable[[], bool] | None = None) -> None:
        """Project until ``stop()`` is called (or ``until()`` is true), then leave the group."""
        self._consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while not self.stopping.is_set() and not (until and until()):
                self.step()
        finally:
            self._consumer.close()

    def step(self) -> int:
        """Poll one batch, store it, commit it; return how many rows it held."""
        batch = self._poll()
        if not batch.offsets:
            return 0
        if not self._store_with_retry(batch):
            return 0
        self._commit(batch)
        self._report_lag()
        return len(batch)

    def stop(self) -> None:
        """Ask ``run`` to finish the current batch and return (thread- and signal-safe)."""
        self.stopping.set()

    # --- steps -----------------------------------------------------------------------------

    def _poll(self) -> Batch:
        """Up to ``batch_size`` messages: the batch opens with the first message, takes all
        that arrives for ``batch_min_seconds``, then closes as soon as the consumer ran dry for
        ``LINGER``, or ``batch_seconds`` after it opened.

        Every insert has a fixed cost (a new part per table, its fsync, the views), so a
        batch of a few hundred rows spends most of the projector's CPU on that; filling for a
        moment keeps batches large under load, and after it what is already at hand is taken
        without waiting out a whole window. (``consume`` returns early only once it has
        ``num_messages``: the first call asks for one message so that it returns as soon as
        there is something to do.)
        """
        batch = Batch()
        for msg in self._consumer.consume(num_messages=1, timeout=self.batch_seconds):
            self._add(batch, msg)
        if not batch.offsets:
            return batch
        opened = time.monotonic()
        deadline, filled = opened + self.batch_seconds, opened + self.batch_min_seconds
        while len(batch) < self.batch_size and not self.stopping.is_set():
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                break
            filling = now < filled
            wait = min(filled - now, left) if filling else min(self.linger, left)
            wanted = self.batch_size - len(batch)
            msgs = self._consumer.consume(num_messages=wanted, timeout=wait)
            for msg in msgs:
                self._add(batch, msg)
            if not filling and len(msgs) < wanted:
                break  # ran dry: nothing more at hand, store what we have
        return batch

    def _add(self, batch: Batch, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                # Topics are created by `safetrail process`; until then there is nothing to do.
                log.info("waiting for topics: %s", err.str())
                return
            if err.fatal():
                raise KafkaException(err)
            log.warning("consumer error: %s", err.str())
            return
        if msg.topic() == self.settings.topic_raw:
            raw = decode_raw(msg)
            if raw is not None:
                batch.raws.append(raw)
                batch.raw_payloads.append(bytes(msg.value() or b""))
        else:
            row = decode(msg, self.settings.topic_dlq)
            if isinstance(row, TimelineEvent):
                batch.timeline.append(row)
            else:
                batch.dead_letters.append(row)
        batch.offsets[(msg.topic() or "", msg.partition() or 0)] = (msg.offset() or 0) + 1

    def _store_with_retry(self, batch: Batch) -> bool:
        delay, paused = 0.5, False
        # One insert stamps every row with the same ingested_at, so an original and its replayed
        # version in one batch would tie; keep the later message (same key, same partition, so
        # Kafka order is the order they were written).
        batch.timeline = list({event.event_id: event for event in batch.timeline}.values())
        try:
            while True:
                try:
                    # What support reads first; the engineers' raw rows after it (a retry
                    # repeats both, and reads show each ``event_id`` once).
                    self.store.insert_timeline(batch.timeline)
                    self.store.insert_raw(batch.raws, origin="kafka", payloads=batch.raw_payloads)
                    self.store.insert_dead_letters(batch.dead_letters)
                    ROWS.labels(table="raw_events").inc(len(batch.raws))
                    ROWS.labels(table="timeline_events").inc(len(batch.timeline))
                    ROWS.labels(table="dead_letters").inc(len(batch.dead_letters))
                    return True
                except Exception as exc:  # noqa: BLE001 - any store failure: retry, never skip
                    STORE_FAILURES.inc()
                    log.warning("insert failed, retrying in %.1fs: %s", delay, exc)
                if not paused:
                    # Stay in the group (poll keeps heartbeats and rebalances going) without
                    # fetching more while ClickHouse is away.
                    self._consumer.pause(self._consumer.assignment())
                    paused = True
                if self._idle(delay):
                    return False
                delay = min(delay * 2, MAX_BACKOFF)
        finally:
            if paused:
                self._consumer.resume(self._consumer.assignment())

    def _idle(self, seconds: float) -> bool:
        """Wait ``seconds`` while serving the consumer; true when asked to stop."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for msg in self._consumer.consume(num_messages=100, timeout=0.2):
                # Paused partitions deliver nothing, but one assigned during the pause does:
                # rewind it and pause it too, so nothing is skipped once we resume.
                topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
                if msg.error() is None and topic and partition is not None and offset is not None:
                    tp = TopicPartition(topic, partition, offset)
                    self._consumer.seek(tp)
                    self._consumer.pause([tp])
            if self.stopping.is_set():
                return True
        return False

    def _commit(self, batch: Batch) -> None:
        # Only partitions still ours: a revoked one is re-read by its new owner, and the
        # idempotent store absorbs the repeat.
        offsets = [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in batch.offsets.items()
            if (topic, partition) in self._assigned
        ]
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            COMMIT_FAILURES.inc()
            log.warning(
                "offset commit failed (rows are stored; redelivery is deduplicated): %s", exc
            )

    def _report_lag(self) -> None:
        for topic, partition in list(self._assigned):
            tp = TopicPartition(topic, partition)
            _low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            position = self._consumer.position([tp])[0].offset
            if high is not None and high >= 0 and position is not None and position >= 0:
                LAG.labels(topic=topic, partition=str(partition)).set(max(0, high - position))

    def lag(self) -> int:
        """Total messages behind across assigned partitions (asks the broker)."""
        total = 0
        for topic, partition in list(self._assigned):
            tp = TopicPartition(topic, partition)
            _low, high = self._consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            committed = self._consumer.committed([tp], timeout=10)[0].offset
            total += max(0, high - max(committed, 0))
        return total

    # --- rebalance callbacks ------------------------------------------------------------

    def _on_assign(self, _consumer: Consumer, partitions: Sequence[TopicPartition]) -> None:
        self._assigned.update((tp.topic, tp.partition) for tp in partitions)
        log.info("assigned %s", sorted(self._assigned))

    def _on_revoke(self, _consumer: Consumer, partitions: Sequence[TopicPartition]) -> None:
        for tp in partitions:
            self._assigned.discard((tp.topic, tp.partition))
            with contextlib.suppress(KeyError):  # never reported for this partition
                LAG.remove(tp.topic, str(tp.partition))
