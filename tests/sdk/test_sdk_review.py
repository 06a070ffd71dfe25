"""The SDK and the ingest contract as a service developer uses them: propagation through
threads and queues, timestamps, and what each sink does when the collector or broker says no."""

from __future__ import annotations

import contextvars
import decimal
import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest

from ingest.collector import EmbeddedCollector
from ingest.http_sink import HttpSink
from ingest.kafka_sink import KafkaSink
from ingest.process import Rejected, process
from ingest.processor_app import H_REASON, Source, route
from ingest.sdk import (
    DeliveryError,
    Emitter,
    current_trace_id,
    extract_trace_id,
    new_trace_id,
    trace,
    trace_id_from_traceparent,
)
from projectors.store import Store
from redaction_rules.engine import default_redactor
from safetrail.settings import Settings
from tests.kafka_fixtures import free_port

REDACTOR = default_redactor(b"sdk-review-tests-hmac-key")
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class ListSink:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def send(self, event: Any) -> None:
        self.events.append(dict(event))

    def flush(self, timeout: float = 30.0) -> None:
        return None

    def close(self) -> None:
        return None


# --- propagation -----------------------------------------------------------------------------


def test_when_kafka_headers_arrive_as_byte_pairs_then_the_trace_id_is_read() -> None:
    trace_id = new_trace_id()
    # confluent-kafka and aiokafka: a list of (name, bytes) pairs, or None without headers
    assert extract_trace_id([("content-type", b"json"), ("x-trace-id", trace_id.encode())]) == (
        trace_id
    )
    assert extract_trace_id({"X-TRACE-ID": trace_id.encode()}) == trace_id
    assert extract_trace_id([("traceparent", TRACEPARENT.encode())]) == (
        trace_id_from_traceparent(TRACEPARENT)
    )
    assert extract_trace_id(None) is None
    # hostile or broken values are ignored, never an exception in the consumer
    assert extract_trace_id([("X-Trace-Id", b"\xff\xfe"), ("X-Trace-Id", None)]) is None
    assert extract_trace_id({"X-Trace-Id": 5, "traceparent": b"\x00" * 55}) is None
    # a repeated header: the valid value is taken
    assert extract_trace_id(
        [("X-Trace-Id", b"not a trace id!"), ("X-Trace-Id", trace_id.encode())]
    ) == (trace_id)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (TRACEPARENT, True),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", False),  # version ff
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", False),  # zero parent
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", False),  # v00 + extra
        ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", True),  # later version
    ],
)
def test_when_a_traceparent_is_read_then_w3c_validity_rules_apply(value: str, valid: bool) -> None:
    got = trace_id_from_traceparent(value)
    assert (got == trace_id_from_traceparent(TRACEPARENT)) if valid else got is None


def test_when_a_worker_thread_emits_then_the_error_says_how_to_carry_the_trace() -> None:
    emitter = Emitter(ListSink(), source="web")
    with trace() as trace_id, ThreadPoolExecutor(1) as pool:
        with pytest.raises(LookupError, match="thread"):
            pool.submit(emitter.emit, "signup.submitted").result()
        # what the message (and the module docstring) point to
        event = pool.submit(contextvars.copy_context().run, emitter.emit, "signup.step").result()
    assert event["trace_id"] == trace_id
    assert current_trace_id() is None


# --- timestamps ------------------------------------------------------------------------------


def test_when_occurred_at_is_naive_then_emit_refuses_it_like_the_contract() -> None:
    sink = ListSink()
    emitter = Emitter(sink, source="web")
    with trace():
        with pytest.raises(ValueError, match="timezone"):
            emitter.emit("signup.submitted", occurred_at=datetime(2026, 11, 26, 10, 0))
        ist = timezone(timedelta(hours=5, minutes=30))
        event = emitter.emit(
            "signup.submitted", occurred_at=datetime(2026, 11, 26, 10, 0, tzinfo=ist)
        )
    assert [e["occurred_at"] for e in sink.events] == ["2026-11-26T04:30:00.000Z"]
    assert event["occurred_at"] == "2026-11-26T04:30:00.000Z"


def _event(when: str, n: int) -> dict[str, Any]:
    return {
        "event_id": f"ev_when_{n}",
        "trace_id": f"tr_when_{n}",
        "type": "login.succeeded",
        "occurred_at": when,
        "source": "web",
    }


FAR = ["2106-02-08T00:00:00Z", "9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00"]


@pytest.mark.parametrize("when", FAR)
def test_when_occurred_at_is_out_of_range_then_both_paths_reject_it_with_a_reason(
    when: str,
) -> None:
    payload = orjson.dumps(_event(when, 0))
    rejected = process(payload, REDACTOR)  # raised OverflowError, or accepted, before
    assert isinstance(rejected, Rejected)
    assert rejected.reason.startswith("occurred_at: ")
    settings = Settings(demo=True)
    out = route(payload, Source(settings.topic_raw, 0, 1), REDACTOR, settings)
    assert out.topic == settings.topic_dlq
    assert dict(out.headers)[H_REASON] == rejected.reason.encode()


@pytest.fixture
def collector(timeline_store: Store) -> Iterator[EmbeddedCollector]:
    collector = EmbeddedCollector(timeline_store, REDACTOR)
    yield collector
    collector.close()


def test_when_an_event_is_dated_past_2106_then_it_is_rejected_not_accepted_and_vanished(
    collector: EmbeddedCollector, timeline_store: Store
) -> None:
    recent = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    report = collector.ingest([_event(FAR[0], 1), _event(recent, 2)])
    assert [r.status for r in report.results] == ["rejected", "accepted"]
    assert "too far in the future" in (report.results[0].reason or "")
    assert len(timeline_store.trace_events("tr_when_2")) == 1


# --- HttpSink --------------------------------------------------------------------------------


def _collector(
    *, limit: int | None = None, delay: float = 0.0, reject: str = "", got: list[str] | None = None
) -> httpx.Client:
    """A collector answering like ``POST /v1/events``: 413 over ``limit`` bytes, per-event
    results otherwise (events of type ``reject`` rejected)."""

    def handler(request: httpx.Request) -> httpx.Response:
        time.sleep(delay)
        if limit is not None and len(request.content) > limit:
            return httpx.Response(413, json={"error": "too_large", "message": "over the limit"})
        batch = orjson.loads(request.content)
        if got is not None:
            got.extend(e["event_id"] for e in batch)
        results = [
            {
                "index": i,
                "event_id": e["event_id"],
                "status": "rejected" if e["type"] == reject else "accepted",
                "reason": "type: not allowed" if e["type"] == reject else None,
            }
            for i, e in enumerate(batch)
        ]
        accepted = sum(r["status"] == "accepted" for r in results)
        body = {"accepted": accepted, "rejected": len(batch) - accepted, "results": results}
        return httpx.Response(202, json=body)

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_when_a_batch_is_too_large_then_it_is_split_and_only_the_oversized_event_is_held() -> None:
    got: list[str] = []
    sink = HttpSink("http://c", "tok", batch_size=100, client=_collector(limit=20_000, got=got))
    emitter = Emitter(sink, source="web")
    with trace():
        sent = [
            emitter.emit("import.row", data={"row": "x" * 1_000})["event_id"] for _ in range(50)
        ]
        huge = emitter.emit("import.row", data={"row": "x" * 30_000})["event_id"]
        sent.append(emitter.emit("import.row")["event_id"])
    with pytest.raises(DeliveryError, match="refused 1 events .*413"):
        sink.flush(timeout=5)
    assert sorted(got) == sorted(sent)  # before: nothing delivered, ever (413 on every flush)
    assert [orjson.loads(value)["event_id"] for value, _ in sink.refused] == [huge]
    sink.flush(timeout=5)  # nothing left behind the oversized event


def test_when_an_event_is_not_json_then_emit_fails_and_later_events_still_go() -> None:
    got: list[str] = []
    sink = HttpSink("http://c", "tok", batch_size=2, client=_collector(got=got))
    emitter = Emitter(sink, source="billing")
    with trace():
        with pytest.raises(TypeError, match="Decimal"):
            emitter.emit("payment.captured", data={"amount": decimal.Decimal("9.99")})
        ok = [emitter.emit("payment.captured")["event_id"] for _ in range(4)]
    sink.flush(timeout=5)
    assert got == ok


def test_when_threads_emit_at_once_then_every_event_is_delivered_exactly_once() -> None:
    got: list[str] = []
    sink = HttpSink("http://c", "tok", batch_size=10, client=_collector(delay=0.02, got=got))
    emitter = Emitter(sink, source="web")
    start = threading.Barrier(4)
    sent: list[str] = []

    def worker() -> None:
        start.wait()
        with trace():
            for _ in range(60):
                sent.append(emitter.emit("login.succeeded")["event_id"])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink.flush(timeout=10)
    assert sorted(got) == sorted(sent)  # before: some posted twice, others never
    assert sink.accepted == 240


def test_when_the_collector_hangs_then_flush_gives_up_within_its_timeout() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        sink = HttpSink(f"http://127.0.0.1:{port}", "tok")  # the default client: 30 s
        with trace():
            Emitter(sink, source="web").emit("login.succeeded")
        started = time.monotonic()
        with pytest.raises(DeliveryError, match="still buffered"):
            sink.flush(timeout=1.0)
        assert time.monotonic() - started < 5
        sink._client.close()


def test_when_the_collector_rejects_some_events_then_the_service_is_told_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = HttpSink("http://c", "tok", client=_collector(reject="signup.bad"))
    emitter = Emitter(sink, source="web")
    with trace():
        emitter.emit("signup.submitted")
        bad = emitter.emit("signup.bad")["event_id"]
    with caplog.at_level(logging.WARNING, logger="ingest.http_sink"):
        sink.flush(timeout=5)
    assert sink.accepted == 1
    assert [r["event_id"] for r in sink.rejected] == [bad]
    assert f"collector rejected event {bad}: type: not allowed" in caplog.text


# --- KafkaSink -------------------------------------------------------------------------------


def test_when_a_send_is_refused_after_failed_deliveries_then_that_event_is_kept_too() -> None:
    sink = KafkaSink(f"127.0.0.1:{free_port()}", "nowhere", delivery_timeout=1.0)
    sink.send({"trace_id": "tr_kept0001", "event_id": "ev_first"})
    with pytest.raises(DeliveryError):
        sink.flush(timeout=10)
    with pytest.raises(DeliveryError, match="kept in KafkaSink.undelivered"):
        sink.send({"trace_id": "tr_kept0001", "event_id": "ev_second"})
    kept = [orjson.loads(value)["event_id"] for value, _key, _err in sink.undelivered]
    assert kept == ["ev_first", "ev_second"]  # before: ev_second was neither sent nor kept
    assert sink.buffered() == 0
    assert sink.discard_undelivered() == 2


def _numbered(n: int) -> dict[str, Any]:
    at = "2026-11-27T10:00:00Z"
    return {"event_id": f"ev_ra_{n}", "trace_id": "tr_retryafter", "type": "a.b", "occurred_at": at}


def test_when_the_collector_says_retry_after_then_the_sink_waits_that_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter(
        [
            httpx.Response(503, headers={"Retry-After": "5"}, json={"error": "storage_behind"}),
            httpx.Response(202, json={"accepted": 1, "rejected": 0, "results": []}),
        ]
    )
    client = httpx.Client(transport=httpx.MockTransport(lambda _: next(answers)))
    waits: list[float] = []
    monkeypatch.setattr("ingest.http_sink.time.sleep", waits.append)
    sink = HttpSink("http://collector.test", token="t", client=client)
    sink.send(_numbered(1))
    sink.flush(timeout=30)
    assert waits == [5.0] and sink.accepted == 1  # was 0.1 s: a retry storm on a busy store


def test_when_many_events_are_rejected_then_the_sink_keeps_the_latest_and_counts_all() -> None:
    def reject_all(request: httpx.Request) -> httpx.Response:
        events = orjson.loads(request.content)
        results = [
            {"index": i, "event_id": e["event_id"], "status": "rejected", "reason": "bad"}
            for i, e in enumerate(events)
        ]
        return httpx.Response(
            202, json={"accepted": 0, "rejected": len(events), "results": results}
        )

    client = httpx.Client(transport=httpx.MockTransport(reject_all))
    sink = HttpSink("http://collector.test", token="t", client=client, batch_size=500)
    for n in range(2500):
        sink.send(_numbered(n))
    sink.flush()
    # A long-running service must not grow without bound: the latest 1,000, and the count.
    assert sink.rejected_total == 2500 and len(sink.rejected) == 1000
    assert sink.rejected[-1]["event_id"] == "ev_ra_2499"
