"""Support's one search box with every stable ID a ticket may carry: trace and job IDs without
the usual ``tr_``/``job_`` prefix open their page, and an order, workspace or request ID lists
the traces that named it (``subject_index``), with each lookup in the access log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from projectors.reads import AccessLogQuery
from projectors.store import Store
from tests.api.conftest import (
    SERVICE,
    recent,
    signup_events,
    store_events,
    support_client,
)

TRACE = "CHK-7731-ab"  # a trace ID some other system minted, without our prefix
JOB = "mailer-4471"
ORDER = "100045678"  # long digits: could be a phone number, is an order
WORKSPACE = "ws_blue_harbor"


REORDER_TRACE = "CHK-7732-cd"  # a second order by another customer with the same order ID


def _events() -> list[dict[str, Any]]:
    events = signup_events(TRACE, "c_search", JOB, recent())
    for event in events:
        event["subject"] = {**event["subject"], "order_id": ORDER, "workspace_id": WORKSPACE}
    again = signup_events(REORDER_TRACE, "c_search_2", "mailer-4472", recent())
    for event in again:
        event["subject"] = {**event["subject"], "order_id": ORDER}
    return events + again


@pytest.fixture(scope="module")
def client(timeline_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with support_client(timeline_store, tmp_path_factory.mktemp("search"), _events()) as c:
        yield c


def _search(client: TestClient, typed: str) -> Any:
    return client.post("/support/search", data={"q": typed}, follow_redirects=False)


def _results(client: TestClient, typed: str) -> Any:
    # A list of results is shown after a redirect to a URL that does not hold what was typed.
    response = _search(client, typed)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/support/search?r=") and typed not in location
    return client.get(location)


@pytest.mark.parametrize(
    ("typed", "opens"),
    [
        (TRACE, f"/support/traces/{TRACE}"),
        (JOB, f"/support/jobs/{JOB}"),
        ("c_search", "/support/customers/c_search"),  # a customer's ID still wins
    ],
)
def test_when_an_id_without_a_prefix_is_searched_then_its_own_page_opens(
    client: TestClient, typed: str, opens: str
) -> None:
    response = _search(client, typed)
    assert response.status_code == 303 and response.headers["location"] == opens


def test_when_an_id_matches_nothing_then_the_search_says_what_was_tried_without_echoing_it(
    client: TestClient,
) -> None:
    # Was a redirect to "Customer not found", which misled when an order ID was typed.
    response = _search(client, "nobody-4471")
    assert response.status_code == 404
    assert "Nothing matched" in response.text and "order, workspace or request ID" in response.text
    assert "nobody-4471" not in response.text


@pytest.mark.parametrize("typed", [ORDER, ORDER.upper() + " "])
def test_when_an_order_id_named_by_two_traces_is_searched_then_both_are_listed(
    client: TestClient, timeline_store: Store, typed: str
) -> None:
    page = _results(client, typed)
    assert page.status_code == 200
    for trace_id, customer_id in ((TRACE, "c_search"), (REORDER_TRACE, "c_search_2")):
        assert f'href="/support/traces/{trace_id}"' in page.text
        assert f'href="/support/customers/{customer_id}"' in page.text
    assert "2 traces named the ID you typed" in page.text
    assert f"order ID {ORDER}," in page.text
    logged = timeline_store.access_log(AccessLogQuery(record_kind="subject_lookup", limit=500))
    assert {TRACE, REORDER_TRACE} <= {r.record_id for r in logged if r.actor == "ana.support"}


@pytest.mark.parametrize(
    "typed",
    [
        WORKSPACE,
        WORKSPACE.upper(),  # read out over the phone, typed in capitals
        f"req_{TRACE[3:]}",  # the request ID of the trace
    ],
)
def test_when_an_id_only_one_trace_named_is_searched_then_that_trace_opens(
    client: TestClient, timeline_store: Store, typed: str
) -> None:
    # A list of one would only cost a click; the lookup is still in the access log.
    response = _search(client, typed)
    assert response.status_code == 303
    assert response.headers["location"] == f"/support/traces/{TRACE}"
    logged = timeline_store.access_log(AccessLogQuery(record_kind="subject_lookup", limit=500))
    assert any(r.actor == "ana.support" and r.record_id == TRACE for r in logged)


def test_when_long_digits_match_no_id_then_they_are_looked_up_as_a_phone_number(
    client: TestClient,
) -> None:
    page = _results(client, "4155550199")
    assert page.status_code == 200
    assert "No customer used the email or phone number you typed" in page.text


PREFIXED_TRACE, PREFIXED_JOB = "tr_zybhatj76fehchgd", "job_tiuio5np"
PREFIXED_AT = recent()


@pytest.mark.parametrize(
    ("typed", "opens"),
    [
        # the ticket quoted the IDs without their prefix
        ("zybhatj76fehchgd", f"/support/traces/{PREFIXED_TRACE}"),
        ("tiuio5np", f"/support/jobs/{PREFIXED_JOB}"),
        # with the prefix they open as before
        (PREFIXED_TRACE, f"/support/traces/{PREFIXED_TRACE}"),
        (PREFIXED_JOB, f"/support/jobs/{PREFIXED_JOB}"),
    ],
)
def test_when_our_id_is_typed_without_its_prefix_then_its_page_opens(
    client: TestClient, typed: str, opens: str
) -> None:
    stored = client.post(
        "/v1/events",
        content=orjson.dumps(
            signup_events(PREFIXED_TRACE, "48292", PREFIXED_JOB, PREFIXED_AT), default=str
        ),
        headers={"Authorization": f"Bearer {SERVICE}", "Content-Type": "application/json"},
    )
    assert stored.status_code == 202 and stored.json()["rejected"] == 0, stored.text

    response = _search(client, typed)
    assert response.status_code == 303 and response.headers["location"] == opens
    assert client.get(opens).status_code == 200


def test_when_a_search_lists_many_traces_then_each_one_shown_is_in_the_access_log(
    client: TestClient, timeline_store: Store
) -> None:
    # 40 traces name one order: the list shows all of them, and "who saw trace X" must find
    # each (one comma-joined entry, cut at 512 characters, kept 26 and found none by ID).
    shared = "ord_shared_by_forty"
    traces = [f"tr_shared{n:02d}xyzabcdefghij" for n in range(40)]
    events = []
    for n, trace in enumerate(traces):
        for event in signup_events(trace, f"c_shared_{n}", f"job_shared_{n}", recent()):
            event["subject"] = {**event["subject"], "order_id": shared}
            events.append(event)
    store_events(client, events)
    page = _results(client, shared)
    assert page.status_code == 200
    assert all(f'href="/support/traces/{t}"' in page.text for t in traces)
    for trace in traces:
        logged = timeline_store.access_log(AccessLogQuery(record_id=trace, limit=10))
        assert [(r.record_kind, r.actor) for r in logged] == [("subject_lookup", "ana.support")]


CUT_TRACE, CUT_ORDER = "tr_cutorder0000001", "ord_ud2whkf4"
CUT_TRACES = ("tr_cutshared000001", "tr_cutshared000002")


@pytest.fixture(scope="module")
def cut_orders(client: TestClient) -> None:
    # Orders a receipt shows without their prefix: one named by a single trace, and "7731"
    # ending two different IDs (an order and a workspace).
    events = []
    for event in signup_events(CUT_TRACE, "c_cut", "job_cut_1", recent()):
        event["subject"] = {**event["subject"], "order_id": CUT_ORDER}
        events.append(event)
    subjects = ({"order_id": "ord_7731"}, {"workspace_id": "ws-7731"})
    for trace, subject in zip(CUT_TRACES, subjects, strict=True):
        for event in signup_events(trace, f"c_{trace}", f"job_{trace}", recent()):
            event["subject"] = {**event["subject"], **subject}
            events.append(event)
    store_events(client, events)


@pytest.mark.parametrize("typed", ["UD2WHKF4", "ud2whkf4", "#UD2WHKF4", " # ud2whkf4 "])
def test_when_an_order_id_is_typed_as_a_receipt_shows_it_then_its_trace_opens(
    client: TestClient, cut_orders: None, timeline_store: Store, typed: str
) -> None:
    # Was "Nothing matched": the receipt's "Order #UD2WHKF4" is ord_ud2whkf4 in the events.
    response = _search(client, typed)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/support/traces/{CUT_TRACE}"
    logged = timeline_store.access_log(AccessLogQuery(record_id=CUT_TRACE, limit=10))
    assert ("subject_lookup", "ana.support") in [(r.record_kind, r.actor) for r in logged]


def test_when_a_cut_id_ends_several_ids_then_each_is_listed_with_the_id_it_matched(
    client: TestClient, cut_orders: None
) -> None:
    page = _results(client, "7731")
    assert page.status_code == 200
    assert all(f'href="/support/traces/{t}"' in page.text for t in CUT_TRACES)
    assert "order ID ord_7731," in page.text and "workspace ID ws-7731," in page.text


@pytest.mark.parametrize("typed", ["HKF4", "whkf4", "ud2", "#"])
def test_when_only_part_of_an_id_is_typed_then_nothing_matches(
    client: TestClient, cut_orders: None, typed: str
) -> None:
    # Only a whole cut-off prefix counts: the end of an ID after "_" or "-", never any suffix.
    response = _search(client, typed)
    assert response.status_code in (400, 404), response.headers.get("location")
