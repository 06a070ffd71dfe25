"""Replay against a real broker: the raw topic is read by time (offsets for times), the current
rules re-run, the results published to the timeline topics and projected without duplicates."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka.partitioner import murmur2  # type: ignore[import-untyped]
from confluent_kafka import Consumer, Producer, TopicPartition

from ingest.kafka_sink import KafkaSink
from ingest.processor_app import Source, ensure_topics, route
from projectors.kafka_projector import KafkaProjector
from projectors.replay import ReplayRequest, run_replay
from projectors.replay_sources import replay_endpoints
from projectors.store import Store
from redaction_rules.engine import Redactor, load_rules
from safetrail.settings import Settings
from tests.api.conftest import recent, signup_events
from tests.engineers.helpers import NEW_LABEL, OLD_LABEL, rules_v2
from tests.kafka.helpers import read_all, unique
from tests.kafka.pipeline import Pipeline, wait_until
from tests.store_fixtures import open_store, store_url

pytestmark = pytest.mark.kafka
EARLY, LATE = "tr_kafkaearly", "tr_kafkalate"


def _high_watermarks(settings: Settings) -> int:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": unique("hw")})
    try:
        total = 0
        for topic in (settings.topic_customer, settings.topic_system, settings.topic_dlq):
            parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            for p in parts:
                total += consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        return total
    finally:
        consumer.close()


def _processor_partition(key: bytes | None, partitions: int) -> int:
    """The partition the faust processor sends a key to (``processor_app``: murmur2)."""
    assert key is not None
    return int((murmur2(key) & 0x7FFFFFFF) % partitions)


def _partitions_by_key(settings: Settings) -> dict[tuple[str, bytes], set[int]]:
    """Every message of both timeline topics: the partitions each key was written to."""
    seen: dict[tuple[str, bytes], set[int]] = {}
    for topic in (settings.topic_customer, settings.topic_system):
        for msg in read_all(settings.kafka_bootstrap or "", topic, expect=1, settle=1.0):
            seen.setdefault((topic, msg.key() or b""), set()).add(msg.partition() or 0)
    return seen


@pytest.fixture
def projected(kafka_bootstrap: str, tmp_path: Path) -> Iterator[tuple[Settings, Store, datetime]]:
    """Two traces in the raw topic, the second after a cut time, both projected under the
    packaged rules by the real processing step and projector (which keeps running)."""
    settings = Pipeline(kafka_bootstrap, store_url(tmp_path), tmp_path).settings
    ensure_topics(settings)
    store = open_store(tmp_path)
    old_rules = Redactor(load_rules(), settings.effective_hmac_key)
    sink = KafkaSink(kafka_bootstrap, settings.topic_raw)
    at = recent(10)
    sink.publish(signup_events(EARLY, "48291", "job_early", at))
    time.sleep(0.05)
    cut = datetime.now(UTC)
    time.sleep(0.05)
    sink.publish(signup_events(LATE, "48292", "job_late", at))
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    for i, event in enumerate(signup_events(EARLY, "48291", "job_early", at)):
        out = route(orjson.dumps(event), Source(settings.topic_raw, 0, i), old_rules, settings)
        part = _processor_partition(out.key, settings.topic_partitions)
        producer.produce(out.topic, value=out.value, key=out.key, partition=part)
    for i, event in enumerate(signup_events(LATE, "48292", "job_late", at)):
        out = route(orjson.dumps(event), Source(settings.topic_raw, 1, i), old_rules, settings)
        part = _processor_partition(out.key, settings.topic_partitions)
        producer.produce(out.topic, value=out.value, key=out.key, partition=part)
    assert producer.flush(30) == 0
    projector = KafkaProjector(settings, store, group=unique("proj"), batch_seconds=0.2)
    worker = threading.Thread(target=projector.run, daemon=True)
    worker.start()
    try:
        wait_until(
            lambda: len(store.trace_events(EARLY)) == len(store.trace_events(LATE)) == 6,
            60,
            "initial projection",
        )
        yield settings, store, cut
    finally:
        projector.stop()
        worker.join(30)
        store.close()


def _bounce_label(store: Store, trace_id: str) -> str:
    return next(e.label for e in store.trace_events(trace_id) if e.type == "signup_email.bounced")


def test_when_rules_change_then_dry_run_changes_nothing_and_replay_by_time_updates_timelines(
    projected: tuple[Settings, Store, datetime], tmp_path: Path
) -> None:
    settings, store, cut = projected
    new_rules = Redactor(load_rules(rules_v2(tmp_path)), settings.effective_hmac_key)
    request = ReplayRequest(
        start=cut,
        end=datetime.now(UTC) + timedelta(minutes=1),
        reason="INC-5 label fix",
        actor="eli.engineer",
        dry_run=True,
    )
    published = _high_watermarks(settings)
    source, sink = replay_endpoints(settings, store, request.selection())
    dry = run_replay(store, new_rules, request, source, sink)
    # Only the trace sent after the cut: the raw topic was read from offsets for that time.
    assert (dry.read, dry.written, dry.changed) == (6, 0, 1)
    assert dict(dry.rules_before) == {Redactor(load_rules(), b"x").version: 6}
    assert _high_watermarks(settings) == published
    assert _bounce_label(store, LATE) == OLD_LABEL

    real = replace(request, dry_run=False)
    source, sink = replay_endpoints(settings, store, real.selection())
    report = run_replay(store, new_rules, real, source, sink)
    assert (report.read, report.written, report.status) == (6, 6, "finished")
    wait_until(lambda: _bounce_label(store, LATE) == NEW_LABEL, 60, "replayed events projected")
    late = store.trace_events(LATE)
    assert len(late) == len({e.event_id for e in late}) == 6
    assert {e.rules_version for e in late} == {new_rules.version}
    assert _bounce_label(store, EARLY) == OLD_LABEL  # before the cut: untouched
    assert store.verify_access_chain().ok
    # Each replayed event went to its original's partition (the processor's murmur2): in
    # another one, a lagging projector could store the old version after the new one.
    by_key = _partitions_by_key(settings)
    assert by_key and all(len(parts) == 1 for parts in by_key.values()), by_key
