"""The SDK services use: trace IDs, propagation, emitting, and the HTTP sink's guarantees."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

import httpx
import orjson
import pytest
from pydantic import ValidationError

from ingest.http_sink import HttpSink
from ingest.schema import RawEvent
from ingest.sdk import (
    BufferFullError,
    DeliveryError,
    Emitter,
    current_trace_id,
    extract_trace_id,
    inject_headers,
    new_trace_id,
    trace,
    trace_id_from_traceparent,
)


class ListSink:
    def __init__(self) -> None:
        self.events: list[Mapping[str, Any]] = []

    def send(self, event: Mapping[str, Any]) -> None:
        self.events.append(event)

    def flush(self, timeout: float = 30.0) -> None:
        return None

    def close(self) -> None:
        return None


def test_when_many_trace_ids_are_made_then_they_are_short_copyable_and_unique() -> None:
    ids = {new_trace_id() for _ in range(20_000)}
    assert len(ids) == 20_000
    assert all(len(i) == 19 and i.startswith("tr_") and i == i.lower() for i in ids)


def test_when_a_trace_is_started_then_emitted_events_carry_it_and_validate() -> None:
    sink = ListSink()
    emitter = Emitter(sink, source="web")
    with trace() as trace_id:
        event = emitter.emit("signup.submitted", actor="customer", subject={"customer_id": "1"})
    assert current_trace_id() is None
    assert event["trace_id"] == trace_id
    assert RawEvent.model_validate(sink.events[0]).trace_id == trace_id


def test_when_no_trace_is_active_then_emit_refuses_instead_of_sending_an_orphan() -> None:
    with pytest.raises(LookupError):
        Emitter(ListSink(), source="web").emit("login.succeeded")


def test_when_headers_cross_a_service_boundary_then_the_trace_continues() -> None:
    with trace() as trace_id:
        headers = inject_headers({})
    assert extract_trace_id(headers) == trace_id
    with trace(extract_trace_id(headers)) as continued:
        assert continued == trace_id


@pytest.mark.parametrize(
    ("headers", "expected_prefix"),
    [
        # an OpenTelemetry service: the same traceparent always maps to the same trace ID
        ({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "tr_"),
        # all-zero trace IDs are invalid in W3C trace context
        ({"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}, None),
        # garbage in a header is ignored, not trusted
        ({"X-Trace-Id": "'; DROP TABLE events; --"}, None),
        ({}, None),
    ],
)
def test_when_headers_are_read_then_only_valid_trace_ids_are_taken(
    headers: dict[str, str], expected_prefix: str | None
) -> None:
    got = extract_trace_id(headers)
    if expected_prefix is None:
        assert got is None
    else:
        assert got is not None and got.startswith(expected_prefix)
        assert got == trace_id_from_traceparent(headers["traceparent"])


def test_when_threads_and_tasks_run_concurrently_then_each_keeps_its_own_trace() -> None:
    seen: dict[str, str | None] = {}

    def worker(name: str) -> None:
        with trace() as tid:
            seen[name] = tid if current_trace_id() == tid else None

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    async def task() -> bool:
        with trace() as tid:
            await asyncio.sleep(0)
            return current_trace_id() == tid

    async def many() -> list[bool]:
        return list(await asyncio.gather(*(task() for _ in range(8))))

    assert all(seen.values()) and len(set(seen.values())) == 8
    assert all(asyncio.run(many()))


def _collector(statuses: list[int], received: list[list[dict[str, Any]]]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        status = statuses.pop(0) if statuses else 202
        batch = orjson.loads(request.content)
        if status != 202:
            return httpx.Response(status, json={"detail": "unavailable"})
        received.append(batch)
        results = [{"index": i, "status": "accepted"} for i in range(len(batch))]
        return httpx.Response(202, json={"accepted": len(batch), "rejected": 0, "results": results})

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_when_the_collector_fails_briefly_then_the_sink_retries_and_delivers_once() -> None:
    received: list[list[dict[str, Any]]] = []
    sink = HttpSink(
        "http://collector", "tok", batch_size=10, client=_collector([503, 503], received)
    )
    emitter = Emitter(sink, source="api")
    with trace():
        for _ in range(25):
            emitter.emit("login.succeeded")
    sink.flush(timeout=10)
    assert sink.accepted == 25
    assert sum(len(b) for b in received) == 25


def test_when_the_collector_stays_down_then_flush_raises_and_keeps_the_events() -> None:
    received: list[list[dict[str, Any]]] = []
    sink = HttpSink(
        "http://collector", "tok", batch_size=100, client=_collector([503] * 100, received)
    )
    with trace():
        Emitter(sink, source="api").emit("login.succeeded")
    with pytest.raises(DeliveryError, match="still buffered"):
        sink.flush(timeout=0.5)
    assert received == []
    sink._client = _collector([], received)  # the collector is back
    sink.flush(timeout=5)
    assert sink.accepted == 1


def test_when_the_buffer_is_full_then_send_raises_instead_of_dropping() -> None:
    sink = HttpSink("http://collector", "tok", batch_size=10_000, max_buffer=3)
    with trace():
        emitter = Emitter(sink, source="api")
        for _ in range(3):
            emitter.emit("login.succeeded")
        with pytest.raises(BufferFullError):
            emitter.emit("login.succeeded")


def test_when_the_collector_refuses_a_batch_then_the_error_says_why() -> None:
    sink = HttpSink("http://collector", "tok", client=_collector([401], []))
    with trace():
        Emitter(sink, source="api").emit("login.succeeded")
    with pytest.raises(DeliveryError, match="401"):
        sink.flush()


@pytest.mark.parametrize(
    "minted", ["tr_9c1f2a7b", "4bf92f3577b34da6a3ce929d0e0e4736", "CHK-7731-ab"]
)
def test_when_another_system_minted_the_trace_id_then_the_worker_continues_it(minted: str) -> None:
    # Was ignored unless shaped like the SDK's own IDs: the worker quietly began a new trace
    # and support saw the job cut off from the request.
    headers = {"X-Trace-Id": minted}
    with trace(extract_trace_id(headers)) as continued:
        assert continued == minted
        event = Emitter(ListSink(), source="worker").emit("signup_email.sent", status="done")
    assert RawEvent.model_validate(event).trace_id == minted


@pytest.mark.parametrize("bad", ["ab", "x" * 65, "tr 9c1f", "maria@example.com", ""])
def test_when_a_trace_id_breaks_the_contract_then_trace_refuses_it(bad: str) -> None:
    assert extract_trace_id({"X-Trace-Id": bad}) is None
    if bad:  # "" is "no ID": a new trace starts
        with pytest.raises(ValueError, match="not a trace ID"), trace(bad):
            pass
        with pytest.raises(ValidationError):
            RawEvent.model_validate(
                {
                    "trace_id": bad,
                    "type": "a.b",
                    "occurred_at": "2026-11-27T10:00:00Z",
                    "source": "s",
                }
            )
