"""Planted canaries through the scale-out path; every output of its stages is scanned.

The canary events of ``canary_events`` go through the SDK's Kafka sink to the raw topic, the
faust processor (``safetrail process``) and the projector (``safetrail project``), each a real
process. Outputs scanned: every message on both timeline topics (key, value, headers), the
processor's ``/metrics``, both processes' logs, and every row of the support-facing tables the
projector wrote. The raw topic and the dead-letter topic are the restricted copies by design;
the dead-letter topic must stay empty here (every canary event is valid and accepted).
5,000 events in ``make test``; 100,000 under ``make soak``.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from bench.common import free_port
from ingest.kafka_sink import KafkaSink
from ingest.processor_app import ensure_topics
from projectors.retention import RetentionPolicy
from projectors.store import Store
from tests.kafka.helpers import read_all
from tests.kafka.pipeline import Pipeline, wait_until
from tests.reliability.canary_events import (
    KINDS,
    PER_TRACE,
    canary_events,
    leaks,
    row_leaks,
    table_rows,
)
from tests.store_fixtures import store_url

pytestmark = pytest.mark.kafka


def _run(bootstrap: str, tmp: Path, count: int, seed: int) -> None:
    events, planted = canary_events(count, seed)
    everything = [c for cs in planted.values() for c in cs]
    pipeline = Pipeline(bootstrap, store_url(tmp), tmp)
    settings = pipeline.settings
    ensure_topics(settings)
    try:
        metrics_port = free_port()
        pipeline.start_stages(metrics_port)
        sink = KafkaSink(bootstrap, settings.topic_raw)
        for event in events:
            sink.send(event)
        sink.close()
        wait_until(
            lambda: pipeline.caught_up(pipeline.processor_group, [settings.topic_raw]),
            300,
            "the processor",
        )
        wait_until(
            lambda: pipeline.caught_up(settings.consumer_group, pipeline.outputs),
            300,
            "the projector",
        )
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        # Even events are the customer's signups, odd ones the system's email retries.
        lanes = {
            settings.topic_customer: read_all(
                bootstrap, settings.topic_customer, expect=(count + 1) // 2
            ),
            settings.topic_system: read_all(bootstrap, settings.topic_system, expect=count // 2),
        }
        dead = read_all(bootstrap, settings.topic_dlq, expect=0, settle=1.0)
        raw = read_all(bootstrap, settings.topic_raw, expect=count, settle=0.0)
    finally:
        pipeline.stop_all()

    # The scan finds what was planted: the raw topic (restricted) holds canaries of every kind
    # (each message checked against its own trace's canaries, until every kind was seen).
    kinds: set[str] = set()
    for msg in raw:
        text = (msg.value() or b"").decode()
        kinds |= {
            leak.split(":")[0] for leak in leaks(text, planted[orjson.loads(text)["trace_id"]])
        }
        if kinds == set(KINDS):
            break
    assert kinds == set(KINDS)

    found: list[str] = []
    seen: set[str] = set()
    for topic, messages in lanes.items():
        for msg in messages:
            value = orjson.loads(msg.value() or b"{}")
            trace = value["trace_id"]
            seen.add(value["event_id"])
            text = "\n".join(
                [
                    (msg.key() or b"").decode(),
                    (msg.value() or b"").decode(),
                    *(f"{name}={(raw or b'').decode()}" for name, raw in msg.headers() or []),
                ]
            )
            found += [f"{topic} {trace} {leak}" for leak in leaks(text, planted[trace])]
    assert not dead, [m.value()[:200] for m in dead[:3]]  # every canary event was valid
    assert len(seen) == count, f"{count - len(seen)} events missing from the timeline topics"
    assert sum(map(len, lanes.values())) == count, "an event is on a timeline topic twice"

    logs = "\n".join(p.read_text(errors="replace") for p in sorted(tmp.glob("*.log")))
    found += [f"log {leak}" for leak in leaks(logs, everything)]
    found += [f"metrics {leak}" for leak in leaks(metrics, everything)]

    store = Store.open(pipeline.store_url, RetentionPolicy.from_settings(settings))
    try:
        assert store.counts().timeline_events == count
        rows = table_rows(store)
    finally:
        store.close()
    assert len(rows) >= count // PER_TRACE
    found += row_leaks(rows, planted, seed)
    assert not found, found[:20]


def test_when_5k_canary_events_pass_the_kafka_path_then_no_output_holds_a_canary(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    _run(kafka_bootstrap, tmp_path, 5_000, seed=21)


@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_soak_when_100k_canary_events_pass_the_kafka_path_then_no_output_holds_a_canary(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    _run(kafka_bootstrap, tmp_path, 100_000, seed=22)
