"""One behaviour, two paths: the same request through the embedded collector and through the
scale-out path (collector ▶ Kafka ▶ faust ▶ Kafka ▶ projector) gives the same answer and the
same timelines, because both run the same pure ``process`` step.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ingest.collector import EmbeddedCollector, IngestReport
from ingest.kafka_collector import KafkaIngestor
from ingest.kafka_sink import KafkaSink
from ingest.processor_app import ensure_topics
from ingest.schema import TimelineEvent
from projectors.kafka_projector import KafkaProjector
from projectors.retention import RetentionPolicy
from projectors.rows import DeadLetter
from projectors.store import Store
from safetrail.redactor import build_redactor
from tests.kafka.pipeline import BAD_PAYLOADS, Pipeline, wait_until
from tests.store_fixtures import store_url

pytestmark = pytest.mark.kafka

TRACES = [f"tr_both{n:04d}" for n in range(40)]


def _request() -> list[bytes]:
    """A realistic request: customer and system events with PII, plus bad input."""
    events = []
    for i in range(200):
        events.append(
            {
                "event_id": f"ev_both{i:05d}",
                "trace_id": TRACES[i % len(TRACES)],
                "type": ["signup.submitted", "account.created", "email_job.retry"][i % 3],
                "occurred_at": f"2026-11-26T10:{i // 60:02d}:{i % 60:02d}Z",
                "source": "web",
                "subject": {"customer_id": str(48000 + i % 7), "job_id": f"job_{i % 11}"},
                "status": "failed" if i % 5 == 0 else "done",
                "error": {"code": "PROVIDER_TIMEOUT", "message": f"user{i}@example.com timed out"},
                "data": {"email": f"user{i}@example.com", "card": "4242 4242 4242 4242"},
            }
        )
    payloads = [orjson.dumps(e) for e in events]
    return payloads[:100] + BAD_PAYLOADS + payloads[100:]


def _read(store: Store) -> tuple[dict[str, list[TimelineEvent]], list[tuple[bytes, str]]]:
    timelines = {trace: store.trace_events(trace) for trace in TRACES}
    letters: list[DeadLetter] = store.dead_letters(limit=100)
    return timelines, sorted((d.payload, d.reason) for d in letters)


def test_when_one_request_takes_either_path_then_answers_and_timelines_are_identical(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    pipeline = Pipeline(kafka_bootstrap, store_url(tmp_path / "kafka"), tmp_path)
    settings = pipeline.settings
    redactor = build_redactor(settings)
    request = _request()

    embedded_store = Store.open(store_url(tmp_path / "embedded"), RetentionPolicy())
    try:
        embedded_store.migrate()
        collector = EmbeddedCollector(embedded_store, redactor)
        embedded_answer: IngestReport = collector.ingest(request)
        collector.close()
        embedded = _read(embedded_store)
    finally:
        embedded_store.close()

    ensure_topics(settings)
    ingestor = KafkaIngestor(KafkaSink(kafka_bootstrap, settings.topic_raw), redactor)
    kafka_answer = ingestor.ingest(request)
    ingestor.close()
    worker = pipeline.start("process")
    try:
        raw = [settings.topic_raw]
        wait_until(lambda: pipeline.caught_up(pipeline.processor_group, raw), 120, "processor")
    finally:
        pipeline.stop(worker)
    kafka_store = Store.open(pipeline.store_url, RetentionPolicy())
    try:
        kafka_store.migrate()
        projector = KafkaProjector(settings, kafka_store, batch_seconds=0.3)
        projector.run(until=lambda: pipeline.caught_up(settings.consumer_group, pipeline.outputs))
        through_kafka = _read(kafka_store)
    finally:
        kafka_store.close()

    assert kafka_answer == embedded_answer
    assert (kafka_answer.accepted, kafka_answer.rejected) == (200, len(BAD_PAYLOADS))
    assert through_kafka[0] == embedded[0]  # same events, same masks, same labels and lanes
    assert sum(len(events) for events in embedded[0].values()) == 200
    assert through_kafka[1] == embedded[1]  # same bad input, same reasons
