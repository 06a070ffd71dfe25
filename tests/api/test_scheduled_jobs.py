"""A job set to run later (a nightly export, a retry set for tomorrow) follows the customer's
trace like any other, and reads "scheduled for <time>" until then, not "stuck, engineering's
case": its stuck limit counts from the time it was due. The time comes from a ``run_at`` field
kept by the ``timestamp`` operator, which keeps nothing that is not a time with its zone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from projectors.store import Store
from redaction_rules.operators.base import NoParams
from redaction_rules.operators.generic import Timestamp
from tests.api.conftest import SUPPORT, raw_event, recent, support_client

WAITING, OVERDUE, STARTED, NOT_A_TIME = (
    "tr_sched_waiting",
    "tr_sched_overdue",
    "tr_sched_started",
    "tr_sched_notatime",
)
CUSTOMER = "c_scheduled"
NOW = datetime.now(UTC).replace(microsecond=0)
TONIGHT = NOW + timedelta(hours=8)
LAST_NIGHT = NOW - timedelta(hours=3)  # three hours overdue, past the 30-minute limit


def _export(trace: str, at: datetime, run_at: object, *, started: datetime | None = None) -> Any:
    sub = {"customer_id": CUSTOMER, "job_id": f"job_{trace[3:]}"}
    events = [
        raw_event(
            trace,
            1,
            "export.requested",
            at,
            source="web",
            actor="customer",
            status="done",
            subject=sub,
            data={"format": "csv"},
        ),
        raw_event(
            trace,
            2,
            "export_job.scheduled",
            at + timedelta(seconds=1),
            source="api",
            status="queued",
            subject=sub,
            data={"run_at": run_at, "format": "csv"},
        ),
    ]
    if started is not None:
        events.append(
            raw_event(
                trace,
                3,
                "export_job.started",
                started,
                source="export-worker",
                status="running",
                attempt=1,
                subject=sub,
            )
        )
    return events


@pytest.fixture(scope="module")
def client(timeline_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    events = [
        *_export(WAITING, recent(20), TONIGHT.isoformat()),
        *_export(OVERDUE, recent(600), LAST_NIGHT.astimezone(UTC).isoformat()),
        # due three hours ago, started then and still running within the limit of its news
        *_export(STARTED, recent(600), LAST_NIGHT.isoformat(), started=NOW - timedelta(minutes=5)),
        *_export(NOT_A_TIME, recent(20), "maria.santos@gmail.com"),
    ]
    with support_client(timeline_store, tmp_path_factory.mktemp("scheduled"), events) as c:
        yield c


def _trace(client: TestClient, trace: str) -> Any:
    response = client.get(f"/v1/traces/{trace}", headers={"Authorization": f"Bearer {SUPPORT}"})
    assert response.status_code == 200, response.text
    return response.json()


def _job(body: Any) -> Any:
    return next(s for s in body["steps"] if s["kind"] == "job")


def _glance(page: str, question: str) -> str:
    found = re.search(rf"{re.escape(question)}</dt>\s*<dd>(.*?)</dd>", page, re.S)
    assert found, question
    return found.group(1).strip()


def test_when_a_job_waits_for_its_time_then_it_reads_scheduled_and_support_can_answer(
    client: TestClient,
) -> None:
    body = _trace(client, WAITING)
    job = _job(body)
    assert job["state"] == "queued" and job["stuck"] is False
    assert datetime.fromisoformat(job["scheduled_for"]) == TONIGHT
    assert body["escalation"]["rule_id"] == "scheduled"
    assert body["escalation"]["owner"] == "support"
    due = TONIGHT.strftime("%Y-%m-%d %H:%M UTC")
    assert due in body["escalation"]["reason"] and due in body["escalation"]["next_step"]
    assert body["summary"]["headline"] == f"Data export is queued, scheduled for {due}"

    page = client.get(f"/support/traces/{WAITING}").text
    shown = f">{TONIGHT.strftime('%Y-%m-%d %H:%M:%S UTC')}</time>"
    assert re.search(r"Scheduled for <time[^>]*" + re.escape(shown), page)
    assert "scheduled to run at" in page and "Stuck" not in page
    summary = client.get(
        f"/v1/traces/{WAITING}/summary.txt", headers={"Authorization": f"Bearer {SUPPORT}"}
    ).text
    assert f"Scheduled for: {due}" in summary.splitlines()


def test_when_a_scheduled_job_is_past_its_time_and_the_limit_then_it_is_stuck_since_then(
    client: TestClient,
) -> None:
    body = _trace(client, OVERDUE)
    job = _job(body)
    assert job["stuck"] is True and body["summary"]["status"] == "stuck"
    assert body["escalation"]["rule_id"] == "stuck_running"
    # Quiet since the time it was due (3 h), not since it was scheduled (10 h).
    assert "2 h 59 min" in body["escalation"]["reason"] or "3 h" in body["escalation"]["reason"]
    page = client.get(f"/support/traces/{OVERDUE}").text
    assert "was due to run at" in page


def test_when_a_scheduled_job_started_then_its_limit_counts_from_its_news(
    client: TestClient,
) -> None:
    body = _trace(client, STARTED)
    job = _job(body)
    assert job["state"] == "running" and job["stuck"] is False
    assert body["escalation"]["rule_id"] == "in_progress"
    assert "scheduled for" not in body["summary"]["headline"]


def test_when_run_at_is_not_a_time_then_it_is_dropped_and_the_job_is_an_ordinary_one(
    client: TestClient,
) -> None:
    body = _trace(client, NOT_A_TIME)
    job = _job(body)
    assert job["scheduled_for"] is None and body["escalation"]["rule_id"] == "in_progress"
    everything = client.get(f"/support/traces/{NOT_A_TIME}").text + str(body)
    assert "maria" not in everything and "gmail" not in everything


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-11-28T02:00:00+01:00", "2026-11-28T01:00:00Z"),
        ("2026-11-28T02:00Z", "2026-11-28T02:00:00Z"),
        ("2026-11-28T02:00:00", None),  # no zone: no time support can use
        ("2026-11-28", None),
        ("tomorrow at 2", None),
        ("+14155550134", None),
        (1764295200, None),
        ("0001-01-01T00:00+05:00", None),
        ("2026-11-28T02:00:00+00:00 maria@example.com", None),
    ],
)
def test_when_the_timestamp_operator_meets_a_value_then_only_a_zoned_time_is_kept(
    value: object, shown: str | None
) -> None:
    assert Timestamp(NoParams()).apply(value, None) == shown  # type: ignore[arg-type]
