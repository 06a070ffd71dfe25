"""The projector against a real broker and the real ClickHouse engine: batch ▶ insert ▶ commit."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from threading import Timer
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from ingest.processor_app import Source, ensure_topics, route
from ingest.schema import TimelineEvent
from projectors.blocks import ColumnBlock
from projectors.kafka_projector import LAG, KafkaProjector
from projectors.retention import RetentionPolicy
from projectors.store import Store
from safetrail.redactor import build_redactor
from tests.kafka.helpers import unique
from tests.kafka.pipeline import Pipeline
from tests.store_fixtures import store_url

pytestmark = pytest.mark.kafka


class FlakyStore(Store):
    """The real store, failing its first ``failures`` timeline inserts (ClickHouse away)."""

    failures = 0
    attempts = 0
    committed_during_failures: list[int]
    probe: Any = None

    def insert_timeline(
        self,
        events: Sequence[TimelineEvent] | ColumnBlock,
        *,
        ingested_at: datetime | None = None,
    ) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            self.committed_during_failures.append(self.probe())
            raise ConnectionError("ClickHouse is restarting")
        super().insert_timeline(events, ingested_at=ingested_at)


@pytest.fixture
def pipeline(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Pipeline]:
    p = Pipeline(kafka_bootstrap, store_url(tmp_path), tmp_path)
    ensure_topics(p.settings)
    yield p


def _publish(pipeline: Pipeline, payloads: list[bytes]) -> None:
    """Route raw payloads with the real processing step and publish what it produces."""
    settings = pipeline.settings
    redactor = build_redactor(settings)
    producer = Producer({"bootstrap.servers": pipeline.bootstrap, "enable.idempotence": True})
    for offset, payload in enumerate(payloads):
        out = route(payload, Source(settings.topic_raw, 0, offset), redactor, settings)
        headers: list[tuple[str, str | bytes | None]] = list(out.headers)
        producer.produce(out.topic, value=out.value, key=out.key, headers=headers)
    assert producer.flush(30) == 0


def _events(n: int) -> list[bytes]:
    return [
        orjson.dumps(
            {
                "event_id": f"ev_proj{i:05d}",
                "trace_id": f"tr_proj{i // 3:05d}",
                "type": "signup.submitted",
                "occurred_at": "2026-11-26T10:00:00Z",
                "source": "web",
                "subject": {"customer_id": "48291"},
            }
        )
        for i in range(n)
    ]


def test_when_clickhouse_fails_then_offsets_stay_uncommitted_until_the_insert_succeeds(
    pipeline: Pipeline,
) -> None:
    settings = pipeline.settings
    _publish(pipeline, [*_events(300), b"definitely not json"])
    group, outputs = settings.consumer_group, pipeline.outputs

    store = FlakyStore.open(pipeline.store_url, RetentionPolicy())
    assert isinstance(store, FlakyStore)
    store.failures, store.committed_during_failures = 2, []
    store.probe = lambda: pipeline.committed(group, outputs)
    try:
        store.migrate()
        projector = KafkaProjector(settings, store, batch_seconds=0.3)
        projector.run(until=lambda: pipeline.caught_up(group, outputs))
        counts = store.counts()
    finally:
        store.close()

    assert store.committed_during_failures == [0, 0]  # nothing acknowledged while failing
    assert store.attempts >= 3
    assert counts.timeline_events == 300
    assert counts.dead_letters == 1


def test_when_a_timeline_message_is_not_valid_then_it_becomes_a_dead_letter_not_a_gap(
    pipeline: Pipeline,
) -> None:
    settings = pipeline.settings
    _publish(pipeline, _events(10))
    producer = Producer({"bootstrap.servers": pipeline.bootstrap})
    producer.produce(settings.topic_customer, value=b'{"event_id": "half a message"')
    producer.produce(settings.topic_dlq, value=b"no headers at all")
    assert producer.flush(30) == 0

    store = Store.open(pipeline.store_url, RetentionPolicy())
    try:
        store.migrate()
        projector = KafkaProjector(settings, store, batch_seconds=0.3)
        projector.run(until=lambda: pipeline.caught_up(settings.consumer_group, pipeline.outputs))
        counts, letters = store.counts(), store.dead_letters(limit=10)
    finally:
        store.close()

    assert counts.timeline_events == 10
    reasons = sorted(d.reason.split(":")[0] for d in letters)
    assert reasons == [
        "dead letter without reason or source coordinates",
        "timeline message not valid",
    ]
    # Their own coordinates, so the same bad message read twice is still one dead letter.
    assert {d.topic for d in letters} == {settings.topic_customer, settings.topic_dlq}
    assert all(d.offset is not None for d in letters)


def _exported_lag(topics: list[str]) -> float:
    return sum(
        sample.value
        for metric in LAG.collect()
        for sample in metric.samples
        if sample.labels["topic"] in topics
    )


def test_when_the_projector_runs_behind_then_its_lag_is_exported(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    _publish(pipeline, _events(50))
    seen: list[float] = []
    store = Store.open(pipeline.store_url, RetentionPolicy())

    def first_row_stored() -> bool:
        if store.counts().timeline_events >= 1:
            seen.append(_exported_lag(pipeline.outputs))
            return True
        return False

    try:
        store.migrate()
        # One-message batches: after the first step most of the topic is still ahead.
        projector = KafkaProjector(settings, store, batch_size=1, batch_seconds=5)
        projector.run(until=first_row_stored)
    finally:
        store.close()
    assert len(seen) == 1
    assert 0 < seen[0] < 50


def test_when_events_reach_the_raw_topic_then_the_engineers_drill_down_reads_them_once(
    pipeline: Pipeline,
) -> None:
    settings = pipeline.settings
    events = _events(6)
    producer = Producer({"bootstrap.servers": pipeline.bootstrap, "enable.idempotence": True})
    for payload in [*events, b"definitely not json"]:
        producer.produce(settings.topic_raw, value=payload, key=b"tr_proj00000")
    assert producer.flush(30) == 0
    _publish(pipeline, events)
    topics = [settings.topic_raw, *pipeline.outputs]

    deadline = time.monotonic() + 120

    def caught_up(group: str) -> bool:
        return pipeline.caught_up(group, topics) or time.monotonic() > deadline

    store = Store.open(pipeline.store_url, RetentionPolicy())
    try:
        store.migrate()
        # A second group reads every message again, as after a crash before the commit.
        for group in (settings.consumer_group, unique("again")):
            projector = KafkaProjector(settings, store, group=group, batch_seconds=0.3)
            projector.run(until=partial(caught_up, group))
        raw, counts = store.raw_trace("tr_proj00000"), store.counts()
    finally:
        store.close()

    assert [r.event_id for r in raw] == ["ev_proj00000", "ev_proj00001", "ev_proj00002"]
    assert raw[0].subject.customer_id == "48291"
    assert counts.raw_events == 6
    assert counts.dead_letters == 0  # invalid raw input is the processor's to dead-letter


def test_when_events_trickle_in_then_a_batch_is_stored_without_waiting_out_the_window(
    pipeline: Pipeline,
) -> None:
    settings = pipeline.settings
    store = Store.open(pipeline.store_url, RetentionPolicy())
    try:
        store.migrate()
        # A long window: a batch that waited it out would take 5 s.
        projector = KafkaProjector(settings, store, batch_seconds=5)
        projector._consumer.subscribe(projector.topics)  # noqa: SLF001 - drive steps by hand
        _publish(pipeline, _events(1))
        deadline = time.monotonic() + 60
        while projector.step() == 0:  # joins the group, then stores the first event
            assert time.monotonic() < deadline
        _publish(pipeline, _events(4)[1:])
        started = time.monotonic()
        stored = 0
        while stored < 3:
            stored += projector.step()
        took = time.monotonic() - started
        projector._consumer.close()  # noqa: SLF001
        counts = store.counts()
    finally:
        store.close()
    assert counts.timeline_events == 4
    assert took < 2.0  # the batch closed once the consumer ran dry, not after 5 s


class _SecondWave(KafkaProjector):
    """Publishes ``wave`` 0.3 s after its first message arrived (more traffic under load)."""

    wave: list[bytes]
    pipeline: Pipeline

    def _add(self, batch: Any, msg: Any) -> None:
        if self.wave:
            wave, self.wave = self.wave, []
            Timer(0.3, _publish, (self.pipeline, wave)).start()
        super()._add(batch, msg)


@pytest.mark.parametrize(("fill", "in_first_batch"), [(1.5, 10), (0.0, 5)])
def test_when_more_arrives_while_a_batch_fills_then_one_insert_takes_it(
    pipeline: Pipeline, fill: float, in_first_batch: int
) -> None:
    settings = pipeline.settings
    events = _events(10)
    store = Store.open(pipeline.store_url, RetentionPolicy())
    try:
        store.migrate()
        projector = _SecondWave(settings, store, batch_seconds=5, batch_min_seconds=fill)
        projector.wave, projector.pipeline = events[5:], pipeline
        projector._consumer.subscribe(projector.topics)  # noqa: SLF001 - drive steps by hand
        _publish(pipeline, events[:5])
        deadline = time.monotonic() + 60
        first = 0
        while first == 0:  # joins the group, then stores the first batch
            assert time.monotonic() < deadline
            first = projector.step()
        stored = first
        while stored < 10:
            assert time.monotonic() < deadline
            stored += projector.step()
        projector._consumer.close()  # noqa: SLF001
        counts = store.counts()
    finally:
        store.close()
    assert counts.timeline_events == 10
    # With a fill window the second wave joins the open batch; without, the batch closed
    # once the consumer ran dry and the second wave is a batch (an insert) of its own.
    assert first == in_first_batch
