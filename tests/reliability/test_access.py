"""Every API route x every role x missing/invalid token gives the expected status, every support
page x every role signed in (or signed out, or with a forged session) too, and injection
strings in every path and query parameter change nothing."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from query_api.pages_auth import SESSION_COOKIE
from tests.api.conftest import ADMIN, ENGINEER, SERVICE, SUPPORT, Api, recent, signup_events

TRACE, CUSTOMER, JOB = "tr_accessmx", "48777", "job_accessmx"
OTHER_TRACE, OTHER_CUSTOMER = "tr_accessother", "48778"
ROLES = {"service": SERVICE, "support": SUPPORT, "engineer": ENGINEER, "admin": ADMIN}
READ = {"service": 403, "support": 200, "engineer": 200, "admin": 200}
ADMIN_ONLY = {"service": 403, "support": 403, "engineer": 403, "admin": 200}
# (method, path, expected status by role). Missing or invalid token: 401 on every route
# except the public health and metrics endpoints.
MATRIX: list[tuple[str, str, dict[str, int]]] = [
    ("POST", "/v1/events", {"service": 202, "support": 403, "engineer": 403, "admin": 403}),
    ("GET", f"/v1/traces/{TRACE}", READ),
    ("GET", f"/v1/traces/{TRACE}/summary.txt", READ),
    ("GET", f"/v1/jobs/{JOB}", READ),
    ("GET", f"/v1/customers/{CUSTOMER}/timeline", READ),
    ("GET", f"/v1/customers/{CUSTOMER}/timeline.csv", READ),
    ("GET", "/v1/access-log", ADMIN_ONLY),
]
PUBLIC = ["/healthz", "/metrics"]
INJECTIONS = [
    "' OR 1=1 --",
    "x') UNION SELECT * FROM raw_events --",
    "{trace_id:String}",
    "\\'; DROP TABLE timeline_events; --",
    "../../etc/passwd",
    "%00",
    "<script>alert(1)</script>",
    "${jndi:ldap://127.0.0.1/a}",
    "tr_accessmx' OR trace_id != '",
    "48777 OR 1=1",
]


@pytest.fixture(scope="module", autouse=True)
def _loaded(api: Api) -> None:
    for trace, customer in ((TRACE, CUSTOMER), (OTHER_TRACE, OTHER_CUSTOMER)):
        response = api.post_events(signup_events(trace, customer, JOB, recent()))
        assert response.status_code == 202 and response.json()["rejected"] == 0
    rejected = api.post_events([{"trace_id": "tr_accessdead", "type": "Not A Type"}])
    assert rejected.status_code == 202 and rejected.json()["rejected"] == 1  # a dead letter


def _call(api: Api, method: str, path: str, headers: dict[str, str]) -> Any:
    if method == "POST":
        return api.client.post(path, content=b"[]", headers=headers)
    return api.client.get(path, headers=headers)


@pytest.mark.parametrize(("method", "path", "by_role"), MATRIX)
@pytest.mark.parametrize("who", [*ROLES, "missing", "invalid", "wrong-scheme"])
def test_when_a_route_is_called_then_the_role_decides_the_status(
    api: Api, method: str, path: str, by_role: dict[str, int], who: str
) -> None:
    headers = {
        "missing": {},
        "invalid": {"Authorization": "Bearer not-a-configured-token"},
        "wrong-scheme": {"Authorization": f"Basic {SUPPORT}"},
    }.get(who, {"Authorization": f"Bearer {ROLES.get(who, '')}"})
    response = _call(api, method, path, headers)
    expected = by_role.get(who, 401)
    assert response.status_code == expected, (who, path, response.text[:300])
    if expected in (401, 403):
        body = response.json()
        assert body["error"] in ("unauthorized", "forbidden") and body["message"]
        if expected == 401:
            assert response.headers["www-authenticate"].startswith("Bearer")


def test_every_documented_api_route_is_in_the_matrix(api: Api) -> None:
    documented = {
        (method.upper(), path)
        for path, item in api.client.get("/openapi.json").json()["paths"].items()
        if path.startswith("/v1/")
        for method in item
    }
    templated = {
        (
            m,
            p.replace(TRACE, "{trace_id}")
            .replace(JOB, "{job_id}")
            .replace(CUSTOMER, "{customer_id}"),
        )
        for m, p, _ in MATRIX
    }
    missing = sorted(documented - templated)
    # A route outside the table must at least refuse callers without a valid token.
    for method, path in missing:
        concrete = path.replace("{trace_id}", TRACE).replace("{job_id}", JOB)
        concrete = concrete.replace("{customer_id}", CUSTOMER)
        concrete = concrete.replace("{event_id}", f"{TRACE}_1")
        for headers in ({}, {"Authorization": "Bearer not-a-configured-token"}):
            if method == "GET":
                response = api.client.get(concrete, headers=headers)
            else:
                response = api.client.request(method, concrete, content=b"{}", headers=headers)
            assert response.status_code == 401, (method, path, response.status_code)


@pytest.mark.parametrize("path", PUBLIC)
def test_when_public_endpoints_are_called_without_a_token_then_they_answer(
    api: Api, path: str
) -> None:
    assert api.client.get(path).status_code == 200


# Every route with a path parameter.
PATH_ROUTES = [
    "/v1/traces/{trace_id}",
    "/v1/traces/{trace_id}/summary.txt",
    "/v1/jobs/{job_id}",
    "/v1/customers/{customer_id}/timeline",
    "/v1/customers/{customer_id}/timeline.csv",
    "/v1/raw/traces/{trace_id}",
]
TIMELINE, CSV = f"/v1/customers/{CUSTOMER}/timeline", f"/v1/customers/{CUSTOMER}/timeline.csv"
RAW, DEAD_LETTERS, ACCESS_LOG = f"/v1/raw/traces/{TRACE}", "/v1/dead-letters", "/v1/access-log"
REASON = {"X-Access-Reason": "TICKET-1"}
# Every query parameter of every route, with the token (and reason) that gets past the checks
# before it: the raw route's budget is spent by the admin, the dead-letter listing's by the
# engineer, so neither runs out over the ten strings.
QUERY_PARAMETERS: list[tuple[str, str, dict[str, str], list[str]]] = [
    (TIMELINE, SUPPORT, {}, ["lane", "since", "until", "cursor", "limit"]),
    (CSV, SUPPORT, {}, ["lane", "since", "until"]),
    (ACCESS_LOG, ADMIN, {}, ["actor", "record_kind", "record_id", "cursor", "limit"]),
    (DEAD_LETTERS, ENGINEER, REASON, ["status", "limit"]),
    (DEAD_LETTERS, ENGINEER, {}, ["reason"]),
    (RAW, ADMIN, {}, ["reason"]),
]


def test_every_documented_parameter_is_tried_with_injection_strings(api: Api) -> None:
    documented_paths, documented_queries = set(), set()
    for path, item in api.client.get("/openapi.json").json()["paths"].items():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    documented_paths.add(path)
                elif parameter["in"] == "query":
                    documented_queries.add((path, parameter["name"]))
    assert documented_paths == set(PATH_ROUTES)
    tried = {
        (path.replace(TRACE, "{trace_id}").replace(CUSTOMER, "{customer_id}"), name)
        for path, _, _, names in QUERY_PARAMETERS
        for name in names
    }
    assert tried == documented_queries


def _check_query_answer(
    path: str, name: str, value: str, response: Any, baseline: dict[str, Any]
) -> None:
    """What each query parameter may answer with a crafted value, and what the answer holds."""
    where = (path, name, response.status_code, response.text[:300])
    if path == DEAD_LETTERS and name != "reason":
        assert response.status_code == 422, where  # a fixed choice or a number
        return
    if path in (RAW, DEAD_LETTERS):  # any text is a reason; the answer is the usual one
        assert response.status_code == 200, where
        body = response.json()
        if path == RAW:
            assert body["events"] == baseline[RAW]["events"], where
        else:
            assert body["data"] == baseline[DEAD_LETTERS]["data"], where
        return
    assert response.status_code in (200, 400, 422), where
    if response.status_code != 200:
        return
    if path == TIMELINE:
        assert {e["trace_id"] for e in response.json()["data"]} <= {TRACE}, where
    elif path == CSV:
        assert OTHER_TRACE not in response.text, where
    elif name in ("actor", "record_kind", "record_id"):  # an exact match, never a wider one
        assert all(entry[name] == value for entry in response.json()["data"]), where


@pytest.mark.parametrize("value", INJECTIONS)
def test_when_parameters_carry_injection_strings_then_nothing_changes(api: Api, value: str) -> None:
    before = api.get(f"/v1/traces/{TRACE}").json()
    baseline = {
        RAW: api.get(RAW, ADMIN, headers=REASON).json(),
        DEAD_LETTERS: api.get(DEAD_LETTERS, ENGINEER, headers=REASON).json(),
    }
    assert baseline[RAW]["count"] > 0 and baseline[DEAD_LETTERS]["count"] > 0
    count_before = api.store.counts()
    for route in PATH_ROUTES:
        path = re.sub(r"\{\w+\}", lambda _: quote(value, safe=""), route)
        response = api.get(path, ADMIN, headers=REASON)
        assert response.status_code < 500, (route, value, response.text[:300])
        text = response.text
        # Data of real records never answers a crafted id.
        assert TRACE not in text and OTHER_TRACE not in text and "Santos" not in text
    for path, bearer, headers, names in QUERY_PARAMETERS:
        for name in names:
            response = api.get(path, bearer, headers=headers, params={name: value})
            _check_query_answer(path, name, value, response, baseline)
    assert api.get(f"/v1/traces/{TRACE}").json() == before
    counts = api.store.counts()
    assert counts.timeline_events == count_before.timeline_events
    assert counts.raw_events == count_before.raw_events
    assert counts.dead_letters == count_before.dead_letters
    assert orjson.dumps(before)  # the record itself is intact and serializable


# The support page: (path, expected status by who signed in). Signed out, every page sends the
# browser to the sign-in form; a service token cannot sign in at all.
PAGE_READ = {"support": 200, "engineer": 200, "admin": 200}
PAGES: list[tuple[str, dict[str, int]]] = [
    ("/support", PAGE_READ),
    ("/support/guide", PAGE_READ),
    (f"/support/traces/{TRACE}", PAGE_READ),
    (f"/support/jobs/{JOB}", PAGE_READ),
    (f"/support/customers/{CUSTOMER}", PAGE_READ),
    (f"/support/customers/{CUSTOMER}.csv", PAGE_READ),
    (
        f"/support/traces/{TRACE}/raw?reason=TICKET-1",
        {"support": 403, "engineer": 200, "admin": 200},
    ),
    ("/support/admin/access-log", {"support": 403, "engineer": 403, "admin": 200}),
]


def test_when_each_role_signs_in_then_the_role_decides_what_each_page_answers(api: Api) -> None:
    client = api.client
    try:
        for who, token in ROLES.items():
            client.cookies.clear()
            signed_in = client.post("/support/login", data={"token": token, "next": "/support"})
            assert signed_in.is_success == (who != "service"), (who, signed_in.status_code)
            for path, by_role in PAGES:
                response = client.get(path, follow_redirects=False)
                if who == "service":
                    assert response.status_code == 303, (who, path, response.status_code)
                    assert response.headers["location"].startswith("/support/login?next=")
                else:
                    assert response.status_code == by_role[who], (who, path, response.status_code)
        client.cookies.clear()
        for path, _ in PAGES:  # signed out, or a cookie that is not a session
            for cookies in ({}, {SESSION_COOKIE: "forged.0.cafe"}):
                client.cookies.clear()
                client.cookies.update(cookies)
                response = client.get(path, follow_redirects=False)
                assert response.status_code == 303, (path, cookies, response.status_code)
    finally:
        client.cookies.clear()
