"""The customer page opens with the customer's latest traces and the problems they met before
(the same error in several traces), over all of retention, masks intact."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import orjson
import pytest
from fastapi.testclient import TestClient

from projectors.rows import CustomerContact, contact_from
from projectors.store import Store
from tests.api.conftest import (
    RAW_EMAIL,
    SERVICE,
    recent,
    signup_events,
    support_client,
)

CUSTOMER = "c_overview"
START = recent(minutes=600)
# Two signups whose email bounced (a pattern), then a plan change without any error.
TRACES = ["tr_over_first", "tr_over_second", "tr_over_third"]


@pytest.fixture(scope="module")
def client(timeline_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    later = START + timedelta(hours=4)
    events = [
        *signup_events(TRACES[0], CUSTOMER, "job_over_1", START),
        *signup_events(TRACES[1], CUSTOMER, "job_over_2", START + timedelta(hours=2)),
        *signup_events(TRACES[2], CUSTOMER, "job_over_3", later, email_job=False),
    ]
    # two posts: the second re-sends the first trace
    with support_client(
        timeline_store, tmp_path_factory.mktemp("overview"), events, events[:6]
    ) as c:
        yield c


def test_when_support_opens_a_customer_then_their_latest_traces_come_first(
    client: TestClient, timeline_store: Store
) -> None:
    page = client.get(f"/support/customers/{CUSTOMER}")
    assert page.status_code == 200
    latest = page.text.index("Latest traces")
    links = re.findall(r'href="/support/traces/(tr_over_\w+)"', page.text[latest:])
    assert links[:3] == TRACES[::-1]  # latest first, above the timeline's own links

    lines = {t.trace_id: t for t in timeline_store.customer_traces(CUSTOMER)}
    first = lines[TRACES[0]]
    assert first.errors == 2  # the retry and the bounce, once each although re-sent
    assert first.last_status == "failed" and first.first_label == "Customer submitted signup form"
    assert first.last_reason is not None and "mailbox" in first.last_reason.lower()
    assert lines[TRACES[2]].errors == 0 and lines[TRACES[2]].last_reason is None


def test_when_the_same_error_hit_several_traces_then_the_page_says_so(
    client: TestClient, timeline_store: Store
) -> None:
    problems = {p.error_code: p for p in timeline_store.customer_problems(CUSTOMER)}
    assert set(problems) == {"SMTP_550", "SMTP_421"}
    assert problems["SMTP_550"].traces == 2

    page = client.get(f"/support/customers/{CUSTOMER}").text
    section = page[page.index("Problems before") : page.index("<h2>Filter")]
    assert "SMTP_550" in section and "in 2 traces" in section
    assert RAW_EMAIL not in page  # the bounce message named the address; the reason does not


def test_when_a_customer_never_met_an_error_then_the_page_says_none(
    client: TestClient,
) -> None:
    stored = client.post(
        "/v1/events",
        content=orjson.dumps(
            signup_events("tr_over_calm", "c_calm", "job_calm", START, email_job=False),
            default=str,
        ),
        headers={"Authorization": f"Bearer {SERVICE}", "Content-Type": "application/json"},
    )
    assert stored.status_code == 202
    page = client.get("/support/customers/c_calm").text
    assert "No errors in this customer's traces within retention." in page


def test_when_support_opens_a_customer_then_the_masked_contact_confirms_who_it_is(
    client: TestClient, timeline_store: Store
) -> None:
    contact = timeline_store.customer_contact(CUSTOMER)
    assert contact.email is not None and contact.phone is not None
    assert "*" in contact.email and contact.email.endswith("@gmail.com")
    assert "*" in contact.phone and contact.phone.endswith("67")
    page = client.get(f"/support/customers/{CUSTOMER}").text
    assert contact.email in page and contact.phone in page
    assert RAW_EMAIL not in page and "4155550167" not in page.replace(" ", "")


def test_when_kept_fields_are_read_newest_first_then_the_first_email_and_phone_win() -> None:
    newest = {"plan": "team", "email": "n***@new.io"}
    older = {"user.email": "o***@old.io", "contact.phone": "+1 ***-***-**67", "to": "x@y.z"}
    assert contact_from([newest, older]) == CustomerContact("n***@new.io", "+1 ***-***-**67")
    assert contact_from([{"note": "call me"}]) == CustomerContact(None, None)


def test_when_a_customer_paid_twice_then_each_line_names_its_order_and_latest_action(
    timeline_store: Store, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # "I was charged twice": two payments are two lines with their two orders (one order
    # twice would be the same ID); a plan change after the login it began with is named too.
    who, at = "c_overview_paid", recent(minutes=90)

    def event(trace: str, n: int, type_: str, minutes: int, **subject: str) -> dict[str, object]:
        return {
            "event_id": f"{trace}_{n}",
            "trace_id": trace,
            "type": type_,
            "occurred_at": at + timedelta(minutes=minutes),
            "source": "web",
            "actor": "customer",
            "status": "done",
            "subject": {"customer_id": who, **subject},
        }

    events = [
        event("tr_paid_one", 1, "payment.submitted", 0, order_id="ord_first1"),
        event("tr_paid_two", 1, "payment.submitted", 5, order_id="ord_second2"),
        event("tr_paid_login", 1, "login.succeeded", 10),
        event("tr_paid_login", 2, "plan.changed", 11),
    ]
    with support_client(timeline_store, tmp_path_factory.mktemp("paid"), events) as client:
        page = client.get(f"/support/customers/{who}").text
    table = page[page.index("Latest traces") : page.index("</table>")]
    assert "ord_first1" in table and "ord_second2" in table
    assert "Customer logged in, then Customer changed plan" in table
