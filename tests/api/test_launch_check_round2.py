"""Launch check, second round: the ticket types support sends most after signup emails (a data
export that never arrived, a plan change, a webhook the customer's endpoint never took, "I can't
log in", a phone number typed another way) answered from the support page alone, with the
right owner and next step, and the same answer in the JSON API and the copied summary."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from projectors.store import Store
from query_api.app import create_app
from safetrail.demo_traffic import generate
from tests.api.conftest import (
    SUPPORT,
    api_settings,
    raw_event,
    recent,
    store_events,
    support_client,
)

CUSTOMER = "c_launch2"
EXPORT, EXPORT_JOB = "tr_launch2_export", "job_launch2_export"
PLAN_FAILED, PLAN_DONE = "tr_launch2_planfail", "tr_launch2_plandone"
HOOK_5XX, HOOK_TIMEOUT = "tr_launch2_hook5xx", "tr_launch2_hooktimeout"
LOCKED, MFA, RESET = "tr_launch2_locked", "tr_launch2_mfa", "tr_launch2_reset"
EXPORT_EMAIL = "lena.kowalski@proton.me"
AT = recent(40)


def _export() -> list[dict[str, Any]]:
    sub = {"customer_id": CUSTOMER, "job_id": EXPORT_JOB}
    tonight = (AT + timedelta(hours=10)).isoformat()
    return [
        raw_event(
            EXPORT,
            1,
            "export.requested",
            AT,
            actor="customer",
            status="done",
            subject={**sub, "request_id": "req_launch2_export"},
            data={"format": "csv", "email": EXPORT_EMAIL},
        ),
        raw_event(
            EXPORT,
            2,
            "export_job.scheduled",
            AT + timedelta(seconds=1),
            status="queued",
            subject=sub,
            data={"run_at": tonight, "format": "csv"},
        ),
    ]


def _login_then_plan(trace_id: str, plan_ok: bool) -> list[dict[str, Any]]:
    return [
        raw_event(
            trace_id,
            1,
            "login.succeeded",
            AT,
            actor="customer",
            status="done",
            subject={"customer_id": CUSTOMER},
            data={"method": "password", "mfa": True},
        ),
        raw_event(
            trace_id,
            2,
            "plan.changed",
            AT + timedelta(minutes=2),
            actor="customer",
            status="done" if plan_ok else "failed",
            subject={"customer_id": CUSTOMER},
            data={"from_plan": "free", "to_plan": "team"},
            error=None if plan_ok else {"code": "CARD_DECLINED", "message": "declined"},
        ),
    ]


def _webhook(trace_id: str, code: str) -> list[dict[str, Any]]:
    sub = {"customer_id": CUSTOMER, "job_id": f"job_{trace_id[3:]}"}
    hook = {"url": "https://hooks.customer.example/in", "http_status": 503}
    events = [
        raw_event(
            trace_id,
            1,
            "plan.changed",
            AT,
            actor="customer",
            status="done",
            subject={"customer_id": CUSTOMER},
            data={"from_plan": "team", "to_plan": "business"},
        )
    ]
    for attempt in (1, 2):
        events.append(
            raw_event(
                trace_id,
                1 + attempt,
                "webhook.attempt",
                AT + timedelta(minutes=5 * attempt),
                status="running",
                attempt=attempt,
                subject=sub,
                data=hook,
                error={"code": code, "message": "endpoint failed"},
            )
        )
    events.append(
        raw_event(
            trace_id,
            9,
            "webhook.failed",
            AT + timedelta(minutes=10, seconds=1),
            status="failed",
            attempt=2,
            subject=sub,
            data=hook,
            error={"code": code, "message": "endpoint failed, giving up"},
        )
    )
    return events


def _login_failed(trace_id: str, code: str) -> list[dict[str, Any]]:
    return [
        raw_event(
            trace_id,
            1,
            "login.failed",
            AT,
            actor="customer",
            status="failed",
            subject={"customer_id": CUSTOMER},
            data={"method": "password", "mfa": False},
            error={"code": code, "message": "login refused"},
        )
    ]


@pytest.fixture(scope="module")
def client(timeline_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    events = [
        *_export(),
        *_login_then_plan(PLAN_FAILED, plan_ok=False),
        *_login_then_plan(PLAN_DONE, plan_ok=True),
        *_webhook(HOOK_5XX, "WEBHOOK_HTTP_5XX"),
        *_webhook(HOOK_TIMEOUT, "WEBHOOK_TIMEOUT"),
        *_login_failed(LOCKED, "ACCOUNT_LOCKED"),
        *_login_failed(MFA, "MFA_FAILED"),
        *_login_failed(RESET, "RESET_TOKEN_EXPIRED"),
    ]
    with support_client(timeline_store, tmp_path_factory.mktemp("launch2"), events) as c:
        yield c


def _trace(client: TestClient, trace_id: str) -> Any:
    response = client.get(f"/v1/traces/{trace_id}", headers={"Authorization": f"Bearer {SUPPORT}"})
    assert response.status_code == 200, response.text
    return response.json()


def _glance(page: str, question: str) -> str:
    found = re.search(rf"{re.escape(question)}</dt>\s*<dd>(.*?)</dd>", page, re.S)
    assert found, question
    return html.unescape(found.group(1).strip())


# -- "I asked for a data export and never got it" --------------------------------------------


def test_when_an_export_waits_for_tonight_then_no_attempt_is_claimed_and_no_start_shown(
    client: TestClient,
) -> None:
    page = client.get(f"/support/traces/{EXPORT}").text
    sent = _glance(page, "Did the system send it or retry?")
    assert "attempt 0" not in sent
    assert sent.startswith("Not yet:") and "has not started" in sent
    # The job step's time is when it was queued; "Started" there read as if it had run.
    step = re.search(r"Job <a[^>]*>job_launch2_export</a> · (.*?)</p>", page, re.S)
    assert step is not None
    assert "Queued at" in step.group(1) and "Started" not in step.group(1)
    job_page = client.get(f"/support/jobs/{EXPORT_JOB}").text
    assert "<dt>Queued at</dt>" in job_page and "<dt>Started</dt>" not in job_page


def test_when_an_export_names_where_it_is_sent_then_the_masked_address_is_shown_everywhere(
    client: TestClient,
) -> None:
    body = _trace(client, EXPORT)
    masked = body["summary"]["email"]
    assert masked and masked != EXPORT_EMAIL and masked.endswith("@proton.me")
    page = client.get(f"/support/traces/{EXPORT}").text
    summary = client.get(
        f"/v1/traces/{EXPORT}/summary.txt", headers={"Authorization": f"Bearer {SUPPORT}"}
    ).text
    csv = client.get(f"/support/customers/{CUSTOMER}.csv").text
    assert f"Email: {masked}" in summary.splitlines()
    assert masked in html.unescape(page) and masked in csv
    for shown in (page, summary, csv, str(body)):
        assert "lena" not in shown and "kowalski" not in shown


# -- "I changed my plan, did it work?" / "charged but my plan didn't change" ---------------


def test_when_a_plan_change_failed_after_a_login_then_the_customer_did_not_finish(
    client: TestClient,
) -> None:
    body = _trace(client, PLAN_FAILED)
    assert body["summary"]["customer_finished_action"] is False
    page = client.get(f"/support/traces/{PLAN_FAILED}").text
    finished = _glance(page, "Did the customer finish the action?")
    assert finished.startswith("No:") and "changed plan" in finished
    assert "logged in" not in finished


def test_when_a_plan_change_went_through_after_a_login_then_the_glance_names_the_plan_change(
    client: TestClient,
) -> None:
    assert _trace(client, PLAN_DONE)["summary"]["customer_finished_action"] is True
    page = client.get(f"/support/traces/{PLAN_DONE}").text
    finished = _glance(page, "Did the customer finish the action?")
    assert finished.startswith("Yes: Customer changed plan at")
    assert "MFA" in page and "Mfa" not in page  # the kept field's label


# -- "my webhook endpoint never received the event" ------------------------------------------


@pytest.mark.parametrize("trace_id", [HOOK_5XX, HOOK_TIMEOUT])
def test_when_the_customers_endpoint_kept_failing_then_support_tells_the_customer(
    client: TestClient, trace_id: str
) -> None:
    body = _trace(client, trace_id)
    hint = body["escalation"]
    assert (hint["owner"], hint["rule_id"]) == ("support", "webhook_endpoint_failed")
    assert "endpoint" in hint["reason"] and "provider" not in hint["reason"]
    page = client.get(f"/support/traces/{trace_id}").text
    assert "Support can act" in page and "Engineering should take over" not in page
    assert hint["next_step"] in html.unescape(page)


# -- "I can't log in" -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trace_id", "rule_id", "says"),
    [
        (LOCKED, "account_locked", "reset their password"),
        (MFA, "mfa_failed", "backup code"),
        (RESET, "reset_link_expired", "new reset link"),
    ],
)
def test_when_a_login_is_blocked_then_support_has_the_next_step(
    client: TestClient, trace_id: str, rule_id: str, says: str
) -> None:
    hint = _trace(client, trace_id)["escalation"]
    assert (hint["owner"], hint["rule_id"]) == ("support", rule_id)
    assert says in hint["next_step"]
    page = html.unescape(client.get(f"/support/traces/{trace_id}").text)
    assert f"Support can act: {hint['next_step']}" in page


# -- a phone number in another format --------------------------------------------------------


def test_when_support_opens_the_search_then_it_says_phone_numbers_need_the_country_code(
    client: TestClient,
) -> None:
    page = client.get("/support").text
    help_text = re.search(r'<p id="q-help"[^>]*>(.*?)</p>', page, re.S)
    assert help_text is not None
    assert "country code" in help_text.group(1) and "as dialled in US" in help_text.group(1)


# -- the demo has a case for each ticket type, and the earlier cases keep their IDs ----------


def test_when_the_demo_is_generated_then_webhook_and_locked_login_cases_are_there() -> None:
    traffic = generate()  # what the demo loads: the IDs the README prints
    hl = traffic.highlights
    assert hl["data export scheduled for tonight"] == "tr_pooptfbfxrzrb25p"
    hook = [
        e
        for e in traffic.events
        if e["trace_id"] == hl["webhook failed, customer endpoint gave 503"]
    ]
    assert hook[-1]["type"] == "webhook.failed" and hook[-1]["status"] == "failed"
    locked = [
        e for e in traffic.events if e["trace_id"] == hl["wrong passwords, then account locked"]
    ]
    assert [e["error"]["code"] for e in locked] == ["ACCOUNT_LOCKED"]


FRENCH = "c_launch2_fr"


def _french_login() -> list[dict[str, Any]]:
    return [
        raw_event(
            "tr_launch2_fr",
            1,
            "signup.submitted",
            AT,
            actor="customer",
            status="done",
            subject={"customer_id": FRENCH},
            data={"phone": "+33 6 12 34 56 78", "plan": "team"},
        )
    ]


@pytest.mark.parametrize(
    ("region", "typed", "found"),
    [
        ("US", "0033 6 12 34 56 78", True),  # the international prefix dialled for "+"
        ("US", "+33 6 12 34 56 78", True),
        ("FR", "06 12 34 56 78", True),  # as the customer says it, in a French deployment
        ("US", "06 12 34 56 78", False),  # read as dialled in the US: someone else
    ],
)
def test_when_support_types_a_phone_number_as_dialled_locally_then_the_region_decides(
    timeline_store: Store,
    tmp_path_factory: pytest.TempPathFactory,
    region: str,
    typed: str,
    found: bool,
) -> None:
    settings = api_settings(tmp_path_factory.mktemp("region"), phone_region=region)
    with TestClient(create_app(settings, store=timeline_store)) as client:
        store_events(client, _french_login())
        assert client.post("/support/login", data={"token": SUPPORT}).status_code == 200
        assert f"as dialled in {region}" in client.get("/support").text
        page = client.post("/support/search", data={"q": typed})
    assert (f"Customer {FRENCH}" in page.text) is found, page.text[-600:]
