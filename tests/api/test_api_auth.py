"""Bearer tokens and roles, as a table: who may call what, and what the refusal says."""

from __future__ import annotations

import orjson
import pytest

from tests.api.conftest import ADMIN, ENGINEER, SERVICE, SUPPORT, Api, recent, signup_events

READS = [
    "/v1/traces/tr_authcase",
    "/v1/traces/tr_authcase/summary.txt",
    "/v1/jobs/job_auth",
    "/v1/customers/48400/timeline",
    "/v1/customers/48400/timeline.csv",
]


@pytest.fixture(scope="module", autouse=True)
def _loaded(api: Api) -> None:
    assert api.post_events(signup_events("tr_authcase", "48400", "job_auth", recent())).is_success


@pytest.mark.parametrize(
    ("bearer", "status"),
    [
        (SUPPORT, 200),  # support reads redacted views
        (ENGINEER, 200),  # engineer includes support
        (ADMIN, 200),  # admin includes everything that reads
        (SERVICE, 403),  # a service token may only send events
    ],
)
@pytest.mark.parametrize("path", READS)
def test_when_reading_a_record_then_the_role_decides(
    api: Api, path: str, bearer: str, status: int
) -> None:
    response = api.get(path, bearer)
    assert response.status_code == status
    if status == 403:
        assert response.json() == {
            "error": "forbidden",
            "message": "Role 'service' may not use this route; it needs one of: "
            "support, engineer, admin.",
        }


@pytest.mark.parametrize(
    ("bearer", "status"),
    [
        (SERVICE, 202),  # the only role that ingests
        (SUPPORT, 403),  # support is read-only
        (ENGINEER, 403),
        (ADMIN, 403),  # admin reads everything but is no service
    ],
)
def test_when_posting_events_then_only_a_service_token_may(
    api: Api, bearer: str, status: int
) -> None:
    assert api.post_events([], bearer=bearer).status_code == status


@pytest.mark.parametrize(
    ("bearer", "status"),
    [(ADMIN, 200), (ENGINEER, 403), (SUPPORT, 403), (SERVICE, 403)],  # admin only
)
def test_when_reading_the_access_log_then_only_admin_may(
    api: Api, bearer: str, status: int
) -> None:
    assert api.get("/v1/access-log", bearer).status_code == status


@pytest.mark.parametrize(
    ("headers", "challenge"),
    [
        ({}, 'Bearer realm="safetrail"'),  # no header at all
        ({"Authorization": "Bearer nope"}, 'Bearer realm="safetrail", error="invalid_token"'),
        ({"Authorization": f"Basic {SUPPORT}"}, 'Bearer realm="safetrail", error="invalid_token"'),
        ({"Authorization": "Bearer"}, 'Bearer realm="safetrail"'),  # scheme without a token
    ],
)
@pytest.mark.parametrize("path", [*READS, "/v1/access-log"])
def test_when_the_token_is_missing_or_wrong_then_401_with_a_challenge(
    api: Api, path: str, headers: dict[str, str], challenge: str
) -> None:
    response = api.get(path, None, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == challenge
    assert response.json()["error"] == "unauthorized"
    assert "token" in response.json()["message"]


def test_when_posting_without_a_token_then_401_and_nothing_is_stored(api: Api) -> None:
    before = api.store.counts()
    body = orjson.dumps(signup_events("tr_noauth", "1", "j", recent()))
    response = api.client.post("/v1/events", content=body)
    assert response.status_code == 401
    assert api.store.counts() == before


def test_when_probing_health_metrics_and_docs_then_no_token_is_needed(api: Api) -> None:
    for path in ("/healthz", "/metrics", "/docs", "/openapi.json"):
        assert api.get(path, None).status_code == 200, path
