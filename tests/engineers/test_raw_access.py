"""Raw drill-down and the other engineer routes: who may reach them, reasons, budget, audit."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient

from projectors.store import Store
from query_api.pages_auth import SESSION_COOKIE
from tests.api.conftest import ADMIN, ENGINEER, RAW_EMAIL, SERVICE, SUPPORT, recent, signup_events
from tests.engineers.helpers import app_client, auth, redactor, stored_rows

TRACE = "tr_rawaccess"
RANGE = {"from": "2026-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z", "reason": "INC-1"}
RAW_ROUTES = [
    ("get", f"/v1/raw/traces/{TRACE}", None),
    ("post", "/v1/replays", RANGE),
    ("get", "/v1/dead-letters", None),
    ("post", "/v1/dead-letters/redrive", {"reason": "INC-1", "dry_run": True}),
]


@pytest.fixture(scope="module")
def client(timeline_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app with a raw-read budget of 3 per minute, one trace ingested."""
    tmp = tmp_path_factory.mktemp("raw")
    with app_client(timeline_store, tmp, redactor(), raw_reads_per_minute=3) as c:
        body = orjson.dumps(signup_events(TRACE, "48291", "job_raw", recent(20), email_job=False))
        headers = {**auth(SERVICE), "Content-Type": "application/json"}
        assert c.post("/v1/events", content=body, headers=headers).status_code == 202
        yield c


@pytest.mark.parametrize(("token", "status"), [(SUPPORT, 403), (SERVICE, 403), (None, 401)])
@pytest.mark.parametrize(("method", "path", "body"), RAW_ROUTES)
def test_when_caller_is_not_engineer_then_every_raw_route_is_refused(
    client: TestClient, token: str | None, status: int, method: str, path: str, body: object
) -> None:
    headers = auth(token, reason="INC-1")
    r = client.request(method.upper(), path, headers=headers, json=body)
    assert r.status_code == status, r.text
    assert RAW_EMAIL not in r.text
    if token == SUPPORT:
        assert r.json()["error"] == "forbidden"
        assert "restricted to engineers" in r.json()["message"]


def test_when_engineer_states_no_reason_then_400_and_nothing_read(client: TestClient) -> None:
    r = client.get(f"/v1/raw/traces/{TRACE}", headers=auth(ENGINEER))
    assert r.status_code == 400 and r.json()["error"] == "reason_required"


def test_when_engineer_states_reason_then_raw_events_and_audited_with_reason(
    client: TestClient, timeline_store: Store
) -> None:
    r = client.get(f"/v1/raw/traces/{TRACE}", headers=auth(ENGINEER, reason="TICKET-7781"))
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 2 and r.json()["events"][0]["data"]["email"] == RAW_EMAIL
    rows = stored_rows(
        timeline_store,
        "SELECT actor, reason, route FROM access_log WHERE record_kind = 'raw_trace' "
        "AND record_id = {t:String}",
        {"t": TRACE},
    )
    assert ("eli.engineer", "TICKET-7781", "/v1/raw/traces/{trace_id}") in rows


def test_when_raw_budget_is_spent_then_429(client: TestClient) -> None:
    statuses = [
        client.get(f"/v1/raw/traces/{TRACE}", headers=auth(ADMIN, reason="INC-9")).status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]


def _sign_in(client: TestClient, token: str) -> None:
    """Set the support page's session cookie for ``token`` (as the sign-in form does)."""
    cookie = client.app.state.support_pages.signer.issue(token)  # type: ignore[attr-defined]
    assert cookie is not None
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, cookie, path="/support")


def test_when_support_opens_trace_page_then_no_raw_panel_and_raw_page_refused(
    client: TestClient,
) -> None:
    _sign_in(client, SUPPORT)
    page = client.get(f"/support/traces/{TRACE}")
    assert page.status_code == 200 and 'id="raw-panel"' not in page.text
    raw = client.get(f"/support/traces/{TRACE}/raw", params={"reason": "INC-1"})
    assert raw.status_code == 403 and RAW_EMAIL not in raw.text
    client.cookies.clear()


def test_when_engineer_opens_trace_page_then_raw_panel_opens_raw_events_with_reason(
    client: TestClient, timeline_store: Store
) -> None:
    _sign_in(client, ENGINEER)
    page = client.get(f"/support/traces/{TRACE}")
    assert page.status_code == 200 and 'id="raw-panel"' in page.text
    raw = client.get(f"/support/traces/{TRACE}/raw", params={"reason": "TICKET-9"})
    client.cookies.clear()
    assert raw.status_code == 200 and RAW_EMAIL in raw.text
    rows = stored_rows(
        timeline_store,
        "SELECT route FROM access_log WHERE record_kind = 'raw_trace' AND reason = 'TICKET-9'",
    )
    assert rows == [("/support/traces/{trace_id}/raw",)]
