"""What the support page does with what people type or paste: a secret pasted into the search
box or a URL is neither shown nor logged, a bad filter is explained without echoing it, a search
result survives Back without resending the form, wrong paths get a page (not JSON), and IDs
copied in capitals still open their record."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from projectors.reads import AccessLogQuery
from projectors.store import Store
from query_api.app import create_app
from query_api.pages_results import SearchResults
from tests.api.conftest import (
    ENGINEER,
    RAW_EMAIL,
    SUPPORT,
    api_settings,
    recent,
    signup_events,
    store_events,
)

TRACE, CUSTOMER, JOB = "tr_caps7k2m9q4w", "c_input_48291", "job_caps4471"
SECRETS = [
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "AKIAIOSFODNN7EXAMPLE",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PSR0dc5q1Xcc",
    "4242424242424242",
]
TYPED_EMAIL = "ines.garcia84@gmail.com"


@pytest.fixture(scope="module")
def app(timeline_store: Store, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    return create_app(api_settings(tmp_path_factory.mktemp("input")), store=timeline_store)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        store_events(c, signup_events(TRACE, CUSTOMER, JOB, recent()))
        # A second account with the same email, so a lookup lists customers (one would open).
        store_events(c, signup_events(f"{TRACE}x", f"{CUSTOMER}_b", f"{JOB}_b", recent()))
        assert c.post("/support/login", data={"token": SUPPORT}).status_code == 200
        yield c


def _search(client: TestClient, typed: str) -> Any:
    return client.post("/support/search", data={"q": typed}, follow_redirects=False)


def _logged(store: Store, record_id: str) -> list[Any]:
    return list(store.access_log(AccessLogQuery(record_id=record_id, limit=10)))


# --- secrets pasted where an ID belongs ---------------------------------------------------


@pytest.mark.parametrize("secret", SECRETS)
def test_when_a_secret_is_searched_then_it_goes_into_no_url_page_or_access_log(
    client: TestClient, timeline_store: Store, secret: str
) -> None:
    response = _search(client, secret)

    assert response.status_code == 400
    assert secret not in response.headers.get("location", "")
    assert secret not in response.text
    assert 'role="alert"' in response.text
    assert _logged(timeline_store, secret) == []


@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize(
    "path",
    [
        "/support/customers/{}",
        "/support/customers/{}.csv",
        "/support/jobs/{}",
        "/support/traces/{}",
    ],
)
def test_when_a_page_url_holds_a_secret_then_a_404_page_neither_echoes_nor_logs_it(
    client: TestClient, timeline_store: Store, secret: str, path: str
) -> None:
    response = client.get(path.format(secret))

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "That is not a valid" in response.text
    assert secret not in response.text
    assert _logged(timeline_store, secret) == []


@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize(
    "path",
    [
        "/v1/customers/{}/timeline",
        "/v1/customers/{}/timeline.csv",
        "/v1/jobs/{}",
        "/v1/traces/{}",
        "/v1/traces/{}/summary.txt",
    ],
)
def test_when_the_api_is_asked_for_a_secret_id_then_it_is_neither_echoed_nor_logged(
    client: TestClient, timeline_store: Store, secret: str, path: str
) -> None:
    response = client.get(path.format(secret), headers={"Authorization": f"Bearer {SUPPORT}"})

    # 404 when the path has the shape of an ID; 422 when it does not (a JWT's dots in a trace).
    assert response.status_code in (404, 422)
    assert secret not in response.text
    assert _logged(timeline_store, secret) == []


def test_when_digits_match_no_id_then_they_are_still_looked_up_as_a_phone_number(
    client: TestClient,
) -> None:
    response = _search(client, "4155550199")

    assert response.status_code == 303
    page = client.get(response.headers["location"])
    assert "No customer used the email or phone number you typed" in page.text


# --- the timeline filter ------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".csv"])
def test_when_the_lane_filter_holds_an_email_then_a_fixed_message_explains_without_echo(
    client: TestClient, suffix: str
) -> None:
    response = client.get(f"/support/customers/{CUSTOMER}{suffix}", params={"lane": TYPED_EMAIL})

    assert "Choose customer actions or system work." in response.text
    assert TYPED_EMAIL not in response.text and "ines.garcia84" not in response.text


def test_when_a_time_filter_holds_an_email_then_it_is_neither_in_the_message_nor_the_form(
    client: TestClient,
) -> None:
    page = client.get(f"/support/customers/{CUSTOMER}", params={"since": TYPED_EMAIL})

    assert "&#39;From&#39; is not a date and time." in page.text
    assert "ines.garcia84" not in page.text


# --- search results: Post/Redirect/Get ----------------------------------------------------


def test_when_the_search_page_is_opened_by_url_then_it_shows_the_search_box(
    client: TestClient,
) -> None:
    page = client.get("/support/search")

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="q"' in page.text


def test_when_a_lookup_finds_customers_then_the_result_is_a_get_page_without_what_was_typed(
    client: TestClient, timeline_store: Store
) -> None:
    response = _search(client, RAW_EMAIL)

    assert response.status_code == 303
    location = response.headers["location"]
    assert re.fullmatch(r"/support/search\?r=[A-Za-z0-9_\-]{16,}", location)
    before = _logged(timeline_store, CUSTOMER)
    assert [r.record_kind for r in before].count("customer_lookup") == 1
    for _ in range(2):  # opened again (Back, reload): the same list, no further entry
        page = client.get(location)
        assert page.status_code == 200
        assert f'href="/support/customers/{CUSTOMER}"' in page.text
        assert f'href="/support/customers/{CUSTOMER}_b"' in page.text
        assert "2 customers used the email or phone number you typed" in page.text
        assert page.text.count("last used it") == 2
        assert RAW_EMAIL not in page.text
    assert _logged(timeline_store, CUSTOMER) == before


def test_when_a_result_id_is_unknown_then_the_search_page_says_it_expired_without_echo(
    client: TestClient,
) -> None:
    page = client.get("/support/search", params={"r": "not-a-kept-search-4242"})

    assert "That search has expired; search again." in page.text
    assert "not-a-kept-search-4242" not in page.text


def test_when_another_user_opens_a_result_link_then_it_is_expired_for_them(
    app: FastAPI, client: TestClient
) -> None:
    location = _search(client, RAW_EMAIL).headers["location"]
    other = TestClient(app)
    assert other.post("/support/login", data={"token": ENGINEER}).status_code == 200

    page = other.get(location)

    assert "That search has expired; search again." in page.text
    assert CUSTOMER not in page.text


def test_when_ten_minutes_pass_then_a_kept_result_is_gone() -> None:
    results = SearchResults()
    key = results.keep("ana.support", {"matches": ["48291"]}, now=0.0)

    assert results.get("ana.support", key, now=599.0) == {"matches": ["48291"]}
    assert results.get("ana.support", key, now=600.0) is None
    assert results.get("eli.engineer", key, now=1.0) is None


def test_when_more_results_are_kept_than_the_limit_then_the_oldest_go_first() -> None:
    results = SearchResults(limit=2)
    first, second, third = (results.keep("u", {"n": n}, now=float(n)) for n in range(3))

    assert results.get("u", first, now=3.0) is None
    assert results.get("u", second, now=3.0) == {"n": 1}
    assert results.get("u", third, now=3.0) == {"n": 2}


# --- wrong paths ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/support/nope-4242424242424242", 404),
        ("/support/traces/", 404),
        ("/support/traces/tr_x%2Fsk_live_4eC39HqLyjWDarjtT1zdp7dc", 404),
        ("/support/logout", 405),  # a POST-only page opened by URL
    ],
)
def test_when_a_support_path_is_wrong_then_an_html_page_links_back_without_echo(
    client: TestClient, path: str, status: int
) -> None:
    response = client.get(path, follow_redirects=False)

    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert '<a href="/support">Back to search</a>' in response.text
    assert "4242424242424242" not in response.text and "sk_live" not in response.text
    assert "not_found" not in response.text


def test_when_an_api_path_is_wrong_then_the_answer_stays_json(client: TestClient) -> None:
    response = client.get("/v1/nope", headers={"Authorization": f"Bearer {SUPPORT}"})

    assert response.status_code == 404 and response.json()["error"] == "not_found"


# --- IDs copied in capitals ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "opens"),
    [
        (TRACE.upper(), f"/support/traces/{TRACE}"),
        ("tr_" + TRACE[3:].upper(), f"/support/traces/{TRACE}"),
        (TRACE[3:].upper(), f"/support/traces/{TRACE}"),
        (JOB.upper(), f"/support/jobs/{JOB}"),
        ("job_" + JOB[4:].upper(), f"/support/jobs/{JOB}"),
    ],
)
def test_when_an_id_is_typed_in_capitals_then_its_lower_case_record_opens(
    client: TestClient, typed: str, opens: str
) -> None:
    response = _search(client, typed)

    assert response.status_code == 303 and response.headers["location"] == opens
    assert client.get(opens).status_code == 200


@pytest.mark.parametrize("secret", ["sk_live_4eC39HqLyjWDarjtT1zdp7dc", "4242424242424242"])
def test_when_an_engineer_asks_raw_events_of_a_secret_id_then_it_is_neither_echoed_nor_logged(
    client: TestClient, timeline_store: Store, secret: str
) -> None:
    headers = {"Authorization": f"Bearer {ENGINEER}", "X-Access-Reason": "INC-1"}
    response = client.get(f"/v1/raw/traces/{secret}", headers=headers)
    assert response.status_code == 404 and secret not in response.text
    assert _logged(timeline_store, secret) == []
