"""POST /v1/events end to end, and the seed case read back through the trace routes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import orjson
import pytest
from fastapi.testclient import TestClient

from ingest.schema import RawEvent
from query_api.app import create_app
from redaction_rules.engine import default_redactor
from tests.api.conftest import HMAC_KEY, RAW_EMAIL, SERVICE, SUPPORT, Api, api_settings, recent
from tests.api.conftest import signup_events as seed

SECRETS = (RAW_EMAIL, "Maria Santos", "hunter2", "4155550167", "maria.santos")


def test_when_the_seed_case_is_ingested_then_the_chain_shows_request_job_retry_and_bounce(
    api: Api,
) -> None:
    events = seed("tr_seedcase", "48291", "job_9c1f", recent())
    response = api.post_events(events)
    assert response.status_code == 202
    assert (response.json()["accepted"], response.json()["rejected"]) == (6, 0)

    trace = api.get("/v1/traces/tr_seedcase")
    assert trace.status_code == 200
    chain = trace.json()
    kinds = [(s["kind"], s["state"]) for s in chain["steps"]]
    assert kinds == [("request", "done"), ("job", "failed"), ("error", "failed")]
    job = chain["steps"][1]
    assert (job["job_id"], job["attempts"], job["retries"]) == ("job_9c1f", 2, 1)
    assert job["retry_delays_seconds"] == [240.0]
    assert job["label"] == "Signup email"
    # the reason support reads is the rule's plain words for SMTP 550, not the raw message
    redactor = default_redactor(HMAC_KEY.encode())
    bounce = redactor.redact(RawEvent.model_validate(events[-1]))
    assert job["error_code"] == "SMTP_550"
    assert job["reason"] == bounce.reason and bounce.reason
    summary = chain["summary"]
    assert summary["status"] == "failed"
    assert summary["customer_finished_action"] is True
    masked = redactor.redact(RawEvent.model_validate(events[0])).fields["email"]
    assert summary["email"] == masked != RAW_EMAIL
    assert [e["event_id"] for e in chain["events"]] == [e["event_id"] for e in events]
    assert not any(secret in trace.text for secret in SECRETS)


def test_when_the_summary_text_is_copied_then_it_holds_only_redacted_facts(api: Api) -> None:
    at = recent()
    api.post_events(seed("tr_seedtext", "48292", "job_text", at))

    response = api.get("/v1/traces/tr_seedtext/summary.txt")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert lines[0] == "Customer ID: 48292"
    assert lines[1] == "Trace: tr_seedtext"
    assert lines[2] == "Job: job_text (Signup email, failed)"
    assert lines[3] == "Started: " + at.strftime("%Y-%m-%d %H:%M UTC")
    assert any(line.startswith("Email: m") and "*" in line for line in lines)
    assert any(line.startswith("Error: SMTP_550 - ") for line in lines)
    assert any(line.startswith("Last retry: ") for line in lines)
    assert not any(secret in response.text for secret in SECRETS)


def test_when_a_batch_is_sent_again_then_no_count_changes(api: Api) -> None:
    events = seed("tr_resend", "48293", "job_resend", recent())
    events.append({"trace_id": "tr_resend", "type": "signup.submitted"})  # bad: rejected
    first = api.post_events(events)
    counts = api.store.counts()

    second = api.post_events(events)

    assert second.status_code == 202
    assert second.json() == first.json()
    assert api.store.counts() == counts  # timeline, index, raw, dead letters, access log
    assert api.get("/v1/customers/48293/timeline").json()["count"] == 6
    assert len(api.get("/v1/traces/tr_resend").json()["events"]) == 6


def test_when_one_event_is_bad_then_it_is_rejected_with_reason_and_the_rest_are_stored(
    api: Api,
) -> None:
    good = seed("tr_mixed", "48294", "job_mixed", recent(), email_job=False)
    batch = [
        good[0],
        {"trace_id": "tr_mixed", "type": "signup.submitted", "source": "web"},  # no time
        42,  # not an object
        {**good[1], "surprise": True},  # unknown top-level key
        good[1],
    ]
    before = api.store.counts().dead_letters

    body = api.post_events(batch).json()

    assert (body["accepted"], body["rejected"]) == (2, 3)
    statuses = [(r["index"], r["status"]) for r in body["results"]]
    assert statuses == [
        (0, "accepted"),
        (1, "rejected"),
        (2, "rejected"),
        (3, "rejected"),
        (4, "accepted"),
    ]
    reasons = [r["reason"] for r in body["results"]]
    assert "occurred_at" in reasons[1]
    assert "JSON object" in reasons[2]
    assert "surprise" in reasons[3]
    assert [e["event_id"] for e in api.get("/v1/traces/tr_mixed").json()["events"]] == [
        good[0]["event_id"],
        good[1]["event_id"],
    ]
    assert api.store.counts().dead_letters == before + 3
    stored = {d.reason for d in api.store.dead_letters(limit=1000)}
    assert {reasons[1], reasons[2], reasons[3]} <= stored


def test_when_every_event_is_bad_then_all_are_rejected_with_reasons_and_kept(api: Api) -> None:
    before = api.store.counts()
    response = api.post_events([{"trace_id": "tr_allbad"}, "text", None])

    assert response.status_code == 202
    assert (response.json()["accepted"], response.json()["rejected"]) == (0, 3)
    assert all(r["reason"] for r in response.json()["results"])
    after = api.store.counts()
    assert after.dead_letters == before.dead_letters + 3
    assert after.timeline_events == before.timeline_events


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'[{"trace_id": ', "malformed_json"),  # cut off mid-way
        (b'{"trace_id": "tr_x"}', "not_an_array"),  # one object instead of an array
    ],
)
def test_when_the_body_is_not_a_json_array_then_400_says_why(
    api: Api, body: bytes, code: str
) -> None:
    response = api.client.post(
        "/v1/events", content=body, headers={"Authorization": f"Bearer {SERVICE}"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == code
    assert response.json()["message"]


@pytest.fixture(scope="module")
def small_limit_client(api: Api, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = api_settings(tmp_path_factory.mktemp("small"), max_body_bytes=1024)
    with TestClient(create_app(settings, store=api.store)) as client:
        yield client


def test_when_the_body_is_too_large_then_413_with_or_without_content_length(
    small_limit_client: TestClient,
) -> None:
    auth = {"Authorization": f"Bearer {SERVICE}"}
    big = b"[" + b" " * 2048 + b"]"

    declared = small_limit_client.post("/v1/events", content=big, headers=auth)
    streamed = small_limit_client.post(
        "/v1/events", content=(chunk for chunk in (big[:1000], big[1000:])), headers=auth
    )
    fits = small_limit_client.post("/v1/events", content=b"[]", headers=auth)

    assert declared.status_code == streamed.status_code == 413
    assert declared.json()["error"] == "too_large"
    assert fits.status_code == 202


def test_when_events_are_ingested_then_metrics_count_them_and_time_requests(api: Api) -> None:
    api.post_events(seed("tr_metrics", "48295", "job_metrics", recent() - timedelta(hours=1)))
    assert api.post_events([{"bad": "event"}]).status_code == 202
    # A read waits until every acknowledged event is stored, so the inserts are all counted.
    assert api.get("/v1/traces/tr_metrics").status_code == 200

    text = api.client.get("/metrics").text

    accepted = _metric(text, 'safetrail_ingest_events_total{result="accepted"}')
    rejected = _metric(text, 'safetrail_ingest_events_total{result="rejected"}')
    assert accepted >= 6 and rejected >= 1
    assert 'safetrail_http_request_duration_seconds_count{method="POST",route="/v1/events"}' in text
    # Every event is in one store insert (several requests may share one).
    commits = _metric(text, "safetrail_group_commit_events_count")
    stored = _metric(text, "safetrail_group_commit_events_sum")
    assert 1 <= commits <= stored and stored >= accepted + rejected
    assert _metric(text, "safetrail_group_commit_seconds_count") == commits
    assert _metric(text, "safetrail_ingest_journal_events") == 0  # the read stored them all


def _metric(text: str, name: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(name))
    return float(line.rsplit(" ", 1)[1])


def test_when_the_broker_is_unreachable_then_ingest_answers_503_and_reads_still_work(
    api: Api, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from ingest.kafka_collector import KafkaIngestor
    from ingest.kafka_sink import KafkaSink

    settings = api_settings(tmp_path_factory.mktemp("scaleout"), kafka_bootstrap="127.0.0.1:9")
    api.post_events(seed("tr_scaleout", "48296", "job_scaleout", recent()))
    ingestor = KafkaIngestor(
        KafkaSink("127.0.0.1:9", settings.topic_raw, delivery_timeout=1.0),
        default_redactor(b"k" * 16),
        timeout=1.0,
    )
    with TestClient(create_app(settings, store=api.store, ingestor=ingestor)) as client:
        body = orjson.dumps(seed("tr_scaleout2", "48297", "job_scaleout2", recent()))
        posted = client.post(
            "/v1/events", content=body, headers={"Authorization": f"Bearer {SERVICE}"}
        )
        read = client.get("/v1/traces/tr_scaleout", headers={"Authorization": f"Bearer {SUPPORT}"})
    ingestor.sink.discard_undelivered()
    assert posted.status_code == 503
    assert posted.json()["error"] == "ingest_unavailable"
    assert read.status_code == 200
