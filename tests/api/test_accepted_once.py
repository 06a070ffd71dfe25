"""Every event the system accepts is queryable exactly once; every event it refuses has a reason.

Edges of that promise, each on the real pipeline (collector, processor routing, replay and
re-drive on a real engine): events older than the timeline retention, and an event re-sent
with a corrected time on the other side of a partition boundary.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from ingest.process import Retention, message_time
from ingest.processor_app import H_REASON, Source, route
from ingest.schema import RawEvent
from projectors.replay import ReplayRequest, run_replay
from projectors.replay_sources import DeadLetterSource, StoreRawSource, StoreSink
from projectors.restricted import RawRange
from projectors.store import Store
from query_api.app import create_app
from safetrail.redactor import build_redactor
from safetrail.settings import Settings
from tests.api.conftest import SUPPORT, api_settings, post_events, raw_event

RETENTION_DAYS = 400


@pytest.fixture(scope="module")
def client(timeline_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = api_settings(tmp_path_factory.mktemp("accepted_once"))
    with TestClient(create_app(settings, store=timeline_store)) as c:
        yield c


def _get(client: TestClient, path: str, bearer: str = SUPPORT, **kw: Any) -> Any:
    return client.get(path, headers={"Authorization": f"Bearer {bearer}"}, **kw)


def _login(trace_id: str, n: int, at: datetime, customer: str, **kw: Any) -> dict[str, Any]:
    subject = {"customer_id": customer}
    return raw_event(trace_id, n, "login.succeeded", at, status="done", subject=subject, **kw)


# --- events older than the timeline retention ---------------------------------------------


def test_when_an_event_is_older_than_retention_then_it_is_rejected_with_the_reason(
    client: TestClient, timeline_store: Store
) -> None:
    now = datetime.now(UTC)
    inside = now - timedelta(days=RETENTION_DAYS) + timedelta(minutes=10)
    outside = now - timedelta(days=RETENTION_DAYS) - timedelta(minutes=10)
    batch = [
        _login("tr_ret_good", 1, now - timedelta(minutes=5), "c_ret"),
        _login("tr_ret_old", 1, outside, "c_ret"),  # was 202 "accepted", then never shown
        _login("tr_ret_edge", 1, inside, "c_ret"),
        _login("tr_ret_good", 2, now - timedelta(minutes=4), "c_ret"),
    ]
    body = post_events(client, batch).json()
    assert (body["accepted"], body["rejected"]) == (3, 1)
    old = body["results"][1]
    assert old["status"] == "rejected" and old["event_id"] == "tr_ret_old_1"
    assert f"older than the {RETENTION_DAYS}-day timeline retention" in old["reason"]
    # the good ones of the same request are all stored and shown, once each
    assert [e["event_id"] for e in _get(client, "/v1/traces/tr_ret_good").json()["events"]] == [
        "tr_ret_good_1",
        "tr_ret_good_2",
    ]
    assert len(_get(client, "/v1/traces/tr_ret_edge").json()["events"]) == 1
    assert _get(client, "/v1/customers/c_ret/timeline").json()["count"] == 3
    # the refused one is a dead letter with the reason, and nowhere on the timeline
    assert _get(client, "/v1/traces/tr_ret_old").status_code == 404
    [letter] = [d for d in timeline_store.dead_letters() if d.event_id == "tr_ret_old_1"]
    assert "older than the 400-day timeline retention" in letter.reason
    # re-sending it changes nothing: the same reason, one dead letter
    again = post_events(client, [batch[1]]).json()
    assert again["results"][0]["reason"] == old["reason"]
    assert len([d for d in timeline_store.dead_letters() if d.event_id == "tr_ret_old_1"]) == 1


def test_when_the_processor_routes_an_old_event_then_it_goes_to_the_dead_letter_topic() -> None:
    settings = Settings(_env_file=None, demo=True, retention_days=30)
    redactor = build_redactor(settings)
    reached = datetime.now(UTC) - timedelta(days=3)  # when it reached the raw topic
    source = Source(settings.topic_raw, 0, 42)

    def routed(occurred_at: datetime, at: datetime | None) -> Any:
        event = _login("tr_ret_kafka", 1, occurred_at, "c_kafka", source="web")
        payload = orjson.dumps(event, default=datetime.isoformat)
        return route(payload, source, redactor, settings, at)

    old = routed(reached - timedelta(days=31), reached)
    assert old.topic == settings.topic_dlq
    reason = dict(old.headers)[H_REASON].decode()
    assert "older than the 30-day timeline retention" in reason
    # Judged when the message reached the topic: a worker that reads it days later (lag,
    # restart) routes it as the first attempt did, never to both places.
    kept = routed(reached - timedelta(days=29), reached)
    assert kept.topic == settings.topic_customer
    assert message_time(reached.timestamp()) == reached
    assert message_time(None) is None and message_time(-1.0) is None


def test_when_a_replay_meets_input_that_aged_past_retention_then_it_is_a_dead_letter(
    client: TestClient, timeline_store: Store
) -> None:
    redactor = client.app.state.redactor  # type: ignore[attr-defined]
    received = datetime.now(UTC) - timedelta(days=2)
    # Inside retention when it arrived (399 days old), past it now (401 days).
    event = _login("tr_ret_replay", 1, received - timedelta(days=399), "c_replay", source="web")
    payload = orjson.dumps(event, default=datetime.isoformat)
    raw = RawEvent.model_validate_json(payload)
    timeline_store.insert_raw([raw], received_at=received, payloads=[payload])
    request = ReplayRequest(
        received - timedelta(minutes=1),
        received + timedelta(minutes=1),
        reason="INC-4711",
        actor="eli",
        trace_id="tr_ret_replay",
    )
    selection = RawRange(request.start, request.end, "tr_ret_replay")
    report = run_replay(
        timeline_store,
        redactor,
        request,
        StoreRawSource(timeline_store, selection),
        StoreSink(timeline_store),
    )
    assert (report.read, report.accepted, report.rejected, report.written) == (1, 0, 1, 0)
    [letter] = [d for d in timeline_store.dead_letters() if d.event_id == "tr_ret_replay_1"]
    assert "older than the 400-day timeline retention" in letter.reason
    # A re-drive of it is refused again with the reason; it stays pending, never "re-driven"
    # into a timeline that cannot show it.
    redrive = ReplayRequest(
        received, datetime.now(UTC), reason="INC-4712", actor="eli", route="cli:redrive"
    )
    source = DeadLetterSource(timeline_store, [letter.dead_letter_id])
    again = run_replay(
        timeline_store, redactor, redrive, source, StoreSink(timeline_store), kind="redrive"
    )
    assert (again.accepted, again.rejected) == (0, 1)
    [status] = timeline_store.dead_letter_status(ids=[letter.dead_letter_id])
    assert status.redriven_at is None
    assert "older than the 400-day timeline retention" in status.letter.reason
    assert timeline_store.trace_events("tr_ret_replay") == []


def test_when_retention_is_judged_then_the_boundary_itself_is_still_kept() -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    window = Retention(10, at)
    assert window.oldest == datetime(2026, 2, 19, tzinfo=UTC)
    assert window.problem(window.oldest) is None
    assert window.problem(window.oldest - timedelta(microseconds=1)) is not None


# --- one event re-sent with a corrected time, across a partition boundary -----------------


def test_when_an_event_is_resent_across_a_year_boundary_then_each_range_shows_it_once(
    client: TestClient,
) -> None:
    # The timeline is partitioned by year: the two versions sit in two partitions that merges
    # never fold. Each range of the customer timeline, page and CSV, used to pick the newest
    # version among the rows of its own range: the half before the boundary still showed
    # the version the re-send replaced, so the event was in both halves of a split export.
    year = datetime.now(UTC).year
    boundary = datetime(year, 1, 1, tzinfo=UTC)
    if datetime.now(UTC) - boundary > timedelta(days=RETENTION_DAYS - 30):
        pytest.skip("the year boundary is near the retention limit")
    first = _login("tr_once_year", 1, boundary - timedelta(seconds=10), "c_once_year")
    fixed = {**first, "occurred_at": boundary + timedelta(seconds=30)}
    later = _login("tr_once_year", 2, boundary + timedelta(days=2), "c_once_year")
    assert post_events(client, [first, later]).json()["accepted"] == 2
    assert post_events(client, [fixed]).json()["accepted"] == 1
    cut = boundary.isoformat()
    path = "/v1/customers/c_once_year/timeline"
    whole = _get(client, path).json()
    before = _get(client, path, params={"until": cut}).json()
    after = _get(client, path, params={"since": cut}).json()
    assert whole["count"] == 2
    assert [e["occurred_at"] for e in before["data"]] == []
    assert (before["count"], after["count"]) == (0, 2)
    assert [e["event_id"] for e in after["data"]] == ["tr_once_year_1", "tr_once_year_2"]

    def exported(**params: str) -> list[str]:
        text = _get(client, f"{path}.csv", params=params).text.lstrip("\ufeff")
        return [row["event_id"] for row in csv.DictReader(io.StringIO(text))]

    assert exported(until=cut) + exported(since=cut) == exported()
    assert exported() == ["tr_once_year_1", "tr_once_year_2"]
    # a page of one event at a time walks each event once
    seen, cursor = [], None
    while True:
        params = {"since": cut, "limit": "1", **({"cursor": cursor} if cursor else {})}
        page = _get(client, path, params=params).json()
        seen += [e["event_id"] for e in page["data"]]
        if not (cursor := page["next"]):
            break
    assert seen == ["tr_once_year_1", "tr_once_year_2"]
    # the trace and the lane filter agree
    trace = _get(client, "/v1/traces/tr_once_year").json()
    assert [e["occurred_at"] for e in trace["events"]][0] == fixed[
        "occurred_at"
    ].isoformat().replace("+00:00", "Z")
    assert _get(client, path, params={"lane": "customer", "until": cut}).json()["count"] == 0


class _Captured:
    """A sink that keeps what the Kafka collector sends (value, key, message time)."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes | None, int]] = []

    def send_bytes(self, value: bytes, key: bytes | None, timestamp_ms: int = 0) -> None:
        self.sent.append((value, key, timestamp_ms))

    def flush(self, timeout: float = 30.0) -> None:
        return None


def test_when_the_kafka_collector_answers_then_the_processor_decides_as_it_did_at_the_edge(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The answer was judged at the request's time and the processor at the message's, set by
    # the broker a few ms later: an event at the edge was answered "accepted", then became a
    # dead letter. The message now carries the moment of the answer.
    from ingest import kafka_collector
    from ingest.kafka_collector import KafkaIngestor

    settings = Settings(_env_file=None, demo=True, retention_days=30)
    redactor = build_redactor(settings)
    now_ms = 1_795_000_000_123
    monkeypatch.setattr(kafka_collector.time, "time", lambda: now_ms / 1000)
    oldest = datetime.fromtimestamp(now_ms / 1000, UTC) - timedelta(days=30)
    edge = [
        _login("tr_edge_kafka", n, oldest - timedelta(milliseconds=n), "c_edge") for n in (0, 1)
    ]
    sink = _Captured()
    ingestor = KafkaIngestor(sink, redactor, retention_days=30)  # type: ignore[arg-type]
    report = ingestor.ingest(
        [orjson.loads(orjson.dumps(e, default=datetime.isoformat)) for e in edge]
    )
    assert [r.status for r in report.results] == ["accepted", "rejected"]
    source = Source(settings.topic_raw, 0, 7)
    topics = [
        route(value, source, redactor, settings, message_time(stamp / 1000)).topic
        for value, _, stamp in sink.sent
    ]
    assert [stamp for _, _, stamp in sink.sent] == [now_ms, now_ms]
    assert topics == [settings.topic_customer, settings.topic_dlq]
