"""The demo's synthetic traffic: valid, deterministic, and covering the cases support sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.schema import RawEvent
from ingest.sdk import Emitter
from safetrail.demo_traffic import generate
from tests.sdk.test_sdk import ListSink

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_when_generated_twice_with_one_seed_then_the_events_are_identical() -> None:
    a = generate(customers=50, days=10, seed=3, now=NOW)
    b = generate(customers=50, days=10, seed=3, now=NOW)
    assert a.events == b.events and a.highlights == b.highlights


def test_when_emitted_through_the_sdk_then_every_event_is_a_valid_raw_event() -> None:
    traffic = generate(customers=100, days=30, seed=1, now=NOW)
    sink = ListSink()
    for event in traffic.events:
        kwargs = dict(event)
        Emitter(sink, source=kwargs.pop("source")).emit(kwargs.pop("type"), **kwargs)
    parsed = [RawEvent.model_validate(e) for e in sink.events]
    assert len({e.event_id for e in parsed}) == len(parsed)
    assert len({e.subject.customer_id for e in parsed}) >= 90


def test_when_the_default_demo_is_built_then_it_has_the_named_cases_and_scale() -> None:
    traffic = generate(now=NOW)
    assert len(traffic.customers) >= 1000
    assert set(traffic.highlights) >= {
        "signup email timed out, retried, then sent",
        "signup email bounced after a retry",
        "password reset",
        "payment retry finally failed",
        "import stuck in running",
        "signup whose email job never started",
        "signup older than retention",
    }
    times = [e["occurred_at"] for e in traffic.events]
    assert min(times) < NOW - timedelta(days=400)
    assert max(times) - sorted(times)[1] >= timedelta(days=25)
