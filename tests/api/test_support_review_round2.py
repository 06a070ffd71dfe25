"""Second support review: what a new support agent reads on the trace, job, customer, search and
guide pages for the demo's ticket types (a failed login, a stuck import, a payment found by its
order ID, an email job still retrying) says what the events say, in words that cannot be misread.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from projectors.store import Store
from query_api.pages_view import utc_time
from tests.api.conftest import (
    SUPPORT,
    raw_event,
    recent,
    recovered_signup_events,
    signup_events,
    support_client,
)

CUSTOMER = "c_review2"
LOGIN, STUCK, PAYMENT = "tr_review2_login", "tr_review2_stuck", "tr_review2_payment"
RETRYING, RECOVERED = "tr_review2_retrying", "tr_review2_recovered"
STUCK_JOB, PAYMENT_JOB, ORDER = "job_review2_import", "job_review2_pay", "ord_review2x"
WORKSPACE = "ws_review2"
LOGIN_AT, STUCK_AT, PAYMENT_AT = recent(20), recent(180), recent(60)


def _login_failed() -> list[dict[str, Any]]:
    return [
        raw_event(
            LOGIN,
            1,
            "login.failed",
            LOGIN_AT,
            actor="customer",
            status="failed",
            subject={"customer_id": CUSTOMER},
            data={"email": "maria.santos@gmail.com", "method": "password"},
            error={"code": "INVALID_PASSWORD", "message": "wrong password"},
        )
    ]


def _stuck_import() -> list[dict[str, Any]]:
    sub = {"customer_id": CUSTOMER, "job_id": STUCK_JOB}
    return [
        raw_event(
            STUCK,
            1,
            "import.requested",
            STUCK_AT,
            actor="customer",
            status="done",
            subject={**sub, "request_id": "req_review2_import"},
            data={"rows": 12000, "source": "csv"},
        ),
        raw_event(
            STUCK,
            2,
            "import_job.started",
            STUCK_AT + timedelta(seconds=3),
            status="running",
            attempt=1,
            subject=sub,
        ),
        raw_event(
            STUCK,
            3,
            "import_job.progress",
            STUCK_AT + timedelta(minutes=2),
            status="running",
            attempt=1,
            subject=sub,
            data={"rows_total": 12000, "rows_done": 4000},
        ),
    ]


def _payment() -> list[dict[str, Any]]:
    sub = {"customer_id": CUSTOMER, "job_id": PAYMENT_JOB, "order_id": ORDER}
    return [
        raw_event(
            PAYMENT,
            1,
            "payment.submitted",
            PAYMENT_AT,
            actor="customer",
            status="done",
            subject={**sub, "request_id": "req_review2_pay", "workspace_id": WORKSPACE},
            data={"amount": "49.00", "currency": "EUR"},
        ),
        raw_event(
            PAYMENT,
            2,
            "billing_job.started",
            PAYMENT_AT + timedelta(seconds=2),
            status="running",
            attempt=1,
            subject=sub,
        ),
        raw_event(
            PAYMENT,
            3,
            "billing_job.succeeded",
            PAYMENT_AT + timedelta(seconds=5),
            status="done",
            attempt=1,
            subject=sub,
        ),
    ]


GHOST, GHOST_JOB = "tr_review2_ghost", "job_review2_ghost"


def _never_started() -> list[dict[str, Any]]:
    # The signup names its email job, which never sent an event (three hours ago).
    return signup_events(GHOST, CUSTOMER, GHOST_JOB, recent(180))[:1]


@pytest.fixture(scope="module")
def client(timeline_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    events = [
        *_login_failed(),
        *_stuck_import(),
        *_payment(),
        # up to the retry that carried SMTP 421: the email job is still running, a minute old
        *signup_events(RETRYING, CUSTOMER, "job_review2_retrying", recent(6))[:5],
        *recovered_signup_events(RECOVERED, CUSTOMER, "job_review2_recovered", recent(10)),
        *_never_started(),
    ]
    with support_client(timeline_store, tmp_path_factory.mktemp("review2"), events) as c:
        yield c


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _glance(page: str) -> dict[str, str]:
    block = page[page.index('id="glance"') : page.index("</dl>", page.index('id="glance"'))]
    pairs = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", block, re.S)
    return {_text(q): _text(a) for q, a in pairs}


def _statusbar(page: str) -> dict[str, str]:
    bar = page[page.index('<dl class="statusbar"') : page.index("</dl>")]
    return {_text(k): _text(v) for k, v in re.findall(r"<dt>(.*?)</dt><dd[^>]*>(.*?)</dd>", bar)}


def _summary(client: TestClient, trace_id: str) -> str:
    response = client.get(
        f"/v1/traces/{trace_id}/summary.txt", headers={"Authorization": f"Bearer {SUPPORT}"}
    )
    assert response.status_code == 200
    return response.text


def test_when_a_login_failed_then_the_glance_says_so_once_with_the_reason_and_no_missing_job(
    client: TestClient,
) -> None:
    answers = _glance(client.get(f"/support/traces/{LOGIN}").text)

    finished = answers["Did the customer finish the action?"]
    assert finished == f"No: Customer login failed at {utc_time(LOGIN_AT)}: Wrong password."
    assert "is failed" not in finished
    # a login starts no background work: that is not "the job never ran"
    sent = answers["Did the system send it or retry?"]
    assert "never ran" not in sent
    assert sent.startswith("Nothing to send: this trace started no background job")


def test_when_a_job_is_stuck_then_the_glance_and_the_job_page_say_since_when(
    client: TestClient,
) -> None:
    last_news = utc_time(STUCK_AT + timedelta(minutes=2))
    answers = _glance(client.get(f"/support/traces/{STUCK}").text)
    job_page = client.get(f"/support/jobs/{STUCK_JOB}").text

    assert answers["What state is the job in now?"] == (
        f"Stuck: Import is running with no news since {last_news}."
    )
    facts = _statusbar(job_page)
    assert facts["Status"] == "Running Stuck"
    assert facts["Last news"] == f"{last_news} (nothing since: stuck)"


def test_when_a_job_finished_then_the_job_page_shows_no_last_news_row(
    client: TestClient,
) -> None:
    assert "Last news" not in _statusbar(client.get(f"/support/jobs/{PAYMENT_JOB}").text)


def test_when_support_came_with_an_order_id_then_the_trace_and_its_summary_show_it(
    client: TestClient,
) -> None:
    page = client.get(f"/support/traces/{PAYMENT}").text
    summary = _summary(client, PAYMENT)

    assert _statusbar(page)["Order ID"] == ORDER
    assert _statusbar(page)["Workspace ID"] == WORKSPACE
    lines = summary.splitlines()
    assert lines[:4] == [
        f"Customer ID: {CUSTOMER}",
        f"Trace: {PAYMENT}",
        f"Order: {ORDER}",
        f"Workspace: {WORKSPACE}",
    ]
    # the page's copy button copies exactly what the API serves
    assert html.unescape(page).count(summary.rstrip("\n")) == 1
    # a trace naming no order gets no Order line
    assert not any(line.startswith("Order:") for line in _summary(client, LOGIN).splitlines())


def test_when_a_job_is_still_retrying_then_its_last_error_is_not_called_recovered(
    client: TestClient,
) -> None:
    page = client.get(f"/support/traces/{RETRYING}").text
    error_line = next(
        line for line in _summary(client, RETRYING).splitlines() if line.startswith("Error:")
    )

    assert _statusbar(page)["Status"].startswith("Running")
    assert "(recovered)" not in _statusbar(page)["Last error"]
    assert _statusbar(page)["Last error"].endswith("(not recovered yet)")
    assert error_line.endswith("(not recovered yet)")


def test_when_a_job_succeeded_after_a_retry_then_page_and_summary_still_say_recovered(
    client: TestClient,
) -> None:
    page = client.get(f"/support/traces/{RECOVERED}").text

    assert _statusbar(page)["Last error"].endswith("(recovered)")
    assert any(
        line.startswith("Error:") and line.endswith("(recovered)")
        for line in _summary(client, RECOVERED).splitlines()
    )


def test_when_a_request_started_a_job_then_its_step_does_not_read_as_the_jobs_state(
    client: TestClient,
) -> None:
    page = client.get(f"/support/traces/{STUCK}").text
    steps = page[page.index('id="steps"') : page.index("</ol>", page.index('id="steps"'))]
    start = steps.index(">", steps.index('class="step-request"')) + 1
    request = _text(steps[start : steps.index('<li class="step-job"')])

    # "Job job_x · Done" on the request row read as if the (stuck) job were done
    assert not re.search(r"Job job_\w+ · Done", request)
    assert request.startswith("Customer requested an import · customer request Done ·")
    assert f"Its background job: {STUCK_JOB}" in request


def test_when_a_customer_trace_recovered_then_its_errors_are_marked_recovered(
    client: TestClient,
) -> None:
    page = client.get(f"/support/customers/{CUSTOMER}").text
    rows = {
        trace_id: _text(row)
        for row in re.findall(r"<tr>(.*?)</tr>", page, re.S)
        for trace_id in re.findall(r">(tr_review2_\w+)</a>", row)
    }

    assert rows[RECOVERED].endswith(
        "1 (last: Receiving server busy, email will be retried), all recovered"
    )
    assert "recovered" not in rows[RETRYING]
    assert "recovered" not in rows[LOGIN]


def test_when_support_reads_the_guide_then_done_allows_for_recovered_errors(
    client: TestClient,
) -> None:
    text = _text(client.get("/support/guide").text)

    assert "Every step finished. An error on the way that a retry got past" in text
    assert "“recovered”" in text


def test_when_an_email_matches_no_customer_then_the_page_says_only_retention_is_searched(
    client: TestClient,
) -> None:
    page = client.post("/support/search", data={"q": "nobody.here@example.org"})

    assert page.status_code == 200
    text = _text(page.text)
    assert "No customer used the email or phone number you typed" in text
    assert "Only activity within the retention period is searched" in text


def test_when_a_job_never_started_then_its_step_and_page_say_it_once_each(
    client: TestClient,
) -> None:
    trace = client.get(f"/support/traces/{GHOST}").text
    assert "Background job · background job" not in _text(trace)
    job_page = client.get(f"/support/jobs/{GHOST_JOB}").text
    note = "no event of that job was received"
    assert _text(job_page).count(note) == 1, _text(job_page)
