"""Every place a trace's status is shown says the same thing as the trace page: the customer
page's latest traces, retries that start the instant a try failed, and jobs whose events
share one instant."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from projectors.store import Store
from tests.api.conftest import SUPPORT, recent, support_client

CUSTOMER = "c_status_lines"
T = recent(minutes=120)  # long enough ago that a job still running is stuck
S = timedelta(seconds=1)
TR_AT_ONCE = "tr_status_at_once"  # attempt 2 starts the second attempt 1 failed, then sent
TR_TIE = "tr_status_tie"  # queued, started and failed in one instant
TR_NEVER = "tr_status_never"  # the signup names an email job that never started
TR_STUCK = "tr_status_stuck"  # the email job started two hours ago, no news since
TR_NO_CUSTOMER = "tr_status_nocust"  # the job's events do not carry the customer's ID
TR_ANONYMOUS = "tr_status_anon"  # no event names a customer (a nightly job)


def _event(trace: str, eid: str, type_: str, at: datetime, **extra: Any) -> dict[str, Any]:
    subject = {"customer_id": CUSTOMER, **extra.pop("subject", {})}
    return {
        "event_id": eid,
        "trace_id": trace,
        "type": type_,
        "occurred_at": at,
        "source": "mail-worker",
        "subject": {k: v for k, v in subject.items() if v is not None},
        **extra,
    }


def _signup(trace: str, job: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return _event(
        trace,
        f"{trace}_signup",
        "signup.submitted",
        at,
        actor="customer",
        subject={"job_id": job, "request_id": f"req_{trace}"},
        **extra,
    )


def _events() -> list[dict[str, Any]]:
    def job(trace: str, job_id: str, customer: str | None = CUSTOMER) -> Any:
        def one(eid: str, type_: str, at: datetime, **extra: Any) -> dict[str, Any]:
            sub = {"job_id": job_id, "customer_id": customer}
            return _event(trace, eid, f"signup_email.{type_}", at, subject=sub, **extra)

        return one

    once, tie = job(TR_AT_ONCE, "job_status_once"), job(TR_TIE, "job_status_tie")
    nocust = job(TR_NO_CUSTOMER, "job_status_nocust", customer=None)
    timeout = {"code": "PROVIDER_TIMEOUT", "message": "provider timed out"}
    return [
        _signup(TR_AT_ONCE, "job_status_once", T, status="done"),
        once("ev_qa1_e", "queued", T, status="queued"),
        once("ev_qa1_d", "started", T + 1 * S, status="running", attempt=1),
        once("ev_qa1_c", "failed", T + 2 * S, status="failed", attempt=1, error=timeout),
        once("ev_qa1_a", "started", T + 2 * S, status="running", attempt=2),  # id sorts first
        once("ev_qa1_b", "sent", T + 3 * S, status="done", attempt=2),
        tie("ev_qa5b_c", "queued", T + 10 * S, status="queued"),
        tie("ev_qa5b_b", "started", T + 10 * S, status="running"),
        tie("ev_qa5b_a", "failed", T + 10 * S, status="failed"),
        _signup(TR_NEVER, "job_status_never", T + 20 * S, status="done"),
        _signup(TR_STUCK, "job_status_stuck", T + 30 * S, status="done"),
        job(TR_STUCK, "job_status_stuck")(
            "ev_stuck_1", "started", T + 31 * S, status="running", attempt=1
        ),
        _signup(TR_NO_CUSTOMER, "job_status_nocust", T + 40 * S),  # no status of its own
        job(TR_ANONYMOUS, "job_status_anon", customer=None)(
            "ev_anon_a", "sent", T + 50 * S, status="done"
        ),
        nocust("ev_nocust_1", "started", T + 41 * S, status="running", attempt=1),
        nocust("ev_nocust_2", "failed", T + 42 * S, status="failed", attempt=1, error=timeout),
    ]


@pytest.fixture(scope="module")
def client(timeline_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with support_client(timeline_store, tmp_path_factory.mktemp("status_lines"), _events()) as c:
        yield c


def _trace_page_status(client: TestClient, trace_id: str) -> str:
    page = client.get(f"/support/traces/{trace_id}")
    assert page.status_code == 200
    found = re.search(r'id="trace-status"><span class="status status-(\w+)"', page.text)
    assert found is not None
    return found.group(1)


def test_when_a_retry_starts_the_instant_the_try_failed_then_its_zero_wait_is_shown(
    client: TestClient,
) -> None:
    trace = client.get(
        f"/v1/traces/{TR_AT_ONCE}", headers={"Authorization": f"Bearer {SUPPORT}"}
    ).json()
    [job] = [s for s in trace["steps"] if s["kind"] == "job"]
    assert (job["state"], job["attempts"], job["retries"]) == ("done", 2, 1)
    assert job["retry_delays_seconds"] == [0.0]

    page = client.get(f"/support/traces/{TR_AT_ONCE}").text
    assert "retried 1 time (waits 0 s)" in page
    assert "(waits )" not in page


def test_when_a_job_is_queued_started_and_failed_in_one_instant_then_it_reads_failed(
    client: TestClient,
) -> None:
    job = client.get(
        "/v1/jobs/job_status_tie", headers={"Authorization": f"Bearer {SUPPORT}"}
    ).json()
    assert (job["step"]["state"], job["step"]["attempts"], job["step"]["retries"]) == (
        "failed",
        1,
        0,
    )
    assert job["step"]["stuck"] is False
    assert _trace_page_status(client, TR_TIE) == "failed"


def test_when_support_opens_a_customer_then_each_latest_trace_shows_its_trace_page_status(
    client: TestClient,
) -> None:
    page = client.get(f"/support/customers/{CUSTOMER}").text
    table = page[page.index("Latest traces") : page.index("Problems before")]
    rows = re.findall(
        r'href="/support/traces/(tr_status_\w+)">.*?<span class="status status-(\w+)"',
        table,
        flags=re.DOTALL,
    )
    listed = dict(rows)
    expected = {
        TR_AT_ONCE: "done",
        TR_TIE: "failed",
        TR_NEVER: "incomplete",  # its last event (the signup) is done
        TR_STUCK: "stuck",  # its last event says running
        TR_NO_CUSTOMER: "failed",  # the customer's own rows carry no status: not "unknown"
    }
    assert listed == expected
    for trace_id, status in expected.items():
        assert _trace_page_status(client, trace_id) == status


def test_when_a_fresh_trace_holds_only_system_work_then_the_page_does_not_blame_retention(
    client: TestClient,
) -> None:
    page = client.get(f"/support/traces/{TR_TIE}").text  # a job's events, nothing else
    assert "this trace holds only system work; no customer action was recorded" in page
    assert "older than retention" not in page and "removed by retention" not in page
    # A trace whose events name no customer says so (was "Unknown", as past retention).
    nameless = client.get(f"/support/traces/{TR_ANONYMOUS}").text
    customer = re.search(r"<dt>Customer ID</dt><dd>(.*?)</dd>", nameless, re.S)
    assert customer is not None and customer.group(1) == "Not named by its events"


def test_when_a_job_is_stuck_then_the_copied_summary_says_so_on_its_job_line(
    client: TestClient,
) -> None:
    # "Job: ... (Signup email, running)" beside "Status: stuck" read as two different answers.
    summary = client.get(
        f"/v1/traces/{TR_STUCK}/summary.txt", headers={"Authorization": f"Bearer {SUPPORT}"}
    ).text
    job_line = next(line for line in summary.splitlines() if line.startswith("Job:"))
    assert job_line.endswith(", running, stuck)")
