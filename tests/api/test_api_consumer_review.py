"""The JSON/CSV API as a helpdesk integration uses it: caching, paging, cursors, CSV, schema."""

from __future__ import annotations

import base64
import csv
import io
from datetime import timedelta

import orjson
import pytest

from query_api.exports import CSV_COLUMNS
from tests.api.conftest import ADMIN, SUPPORT, Api, recent, signup_events, store_events

CUSTOMER, OTHER = "cust_review_1", "cust_review_2"
TRACE, JOB = "tr_review01", "job_review01"
AT = recent(90)


@pytest.fixture(scope="module", autouse=True)
def _events(api: Api) -> None:
    store_events(api.client, signup_events(TRACE, CUSTOMER, JOB, AT))
    store_events(api.client, signup_events("tr_review02", OTHER, "job_review02", AT))


def _forged(position: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(position)).decode().rstrip("=")


@pytest.mark.parametrize(
    ("path", "bearer"),
    [
        (f"/v1/traces/{TRACE}", None),
        (f"/v1/traces/{TRACE}/summary.txt", None),
        (f"/v1/jobs/{JOB}", None),
        (f"/v1/customers/{CUSTOMER}/timeline", None),
        (f"/v1/customers/{CUSTOMER}/timeline.csv", None),
        ("/v1/access-log", ADMIN),
        ("/v1/traces/tr_unknown99", None),  # errors name the record too
    ],
)
def test_when_a_record_is_read_then_no_cache_may_keep_the_answer(
    api: Api, path: str, bearer: str | None
) -> None:
    response = api.get(path, bearer or SUPPORT)
    assert response.status_code in (200, 404)
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "params",
    [
        {"since": "0001-01-01T00:00:00+01:00"},
        {"until": "9999-12-31T23:59:59-01:00"},
    ],
)
def test_when_a_time_has_no_utc_equivalent_then_400_not_500(
    api: Api, params: dict[str, str]
) -> None:
    for suffix in ("timeline", "timeline.csv"):
        response = api.get(f"/v1/customers/{CUSTOMER}/{suffix}", params=params)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "bad_range"


@pytest.mark.parametrize(
    "position",
    [
        ["0001-01-01T00:00:00", "a"],  # before ClickHouse's range: the query cannot be built
        ["2026-01-01T00:00:00", None],
    ],
)
def test_when_a_cursor_is_made_up_then_400(api: Api, position: list[object]) -> None:
    timeline = api.get(f"/v1/customers/{CUSTOMER}/timeline", params={"cursor": _forged(position)})
    log = api.get("/v1/access-log", ADMIN, params={"cursor": _forged(position)})
    for response in (timeline, log):
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "bad_cursor"


def test_when_paging_with_the_same_filters_then_each_event_comes_once(api: Api) -> None:
    path = f"/v1/customers/{CUSTOMER}/timeline"
    whole = api.get(path, params={"lane": "system", "limit": 500}).json()
    assert whole["next"] is None and whole["count"] == len(whole["data"]) == 5
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 2, "lane": "system"}
    while True:
        page = api.get(path, params=params).json()
        seen += [e["event_id"] for e in page["data"]]
        assert page["count"] == 5
        if page["next"] is None:
            break
        params["cursor"] = page["next"]
    assert seen == [e["event_id"] for e in whole["data"]]


def test_when_a_cursor_is_used_with_other_filters_or_customer_then_400(api: Api) -> None:
    first = api.get(f"/v1/customers/{CUSTOMER}/timeline", params={"limit": 1}).json()
    cursor = first["next"]
    assert cursor
    # Each would skip, without a word, the events before the cursor's position.
    for path, params in [
        (f"/v1/customers/{CUSTOMER}/timeline", {"lane": "system"}),
        (f"/v1/customers/{CUSTOMER}/timeline", {"since": (AT + timedelta(hours=-1)).isoformat()}),
        (f"/v1/customers/{OTHER}/timeline", {}),
    ]:
        response = api.get(path, params={**params, "cursor": cursor})
        assert response.status_code == 400, (path, params)
        assert response.json()["error"] == "bad_cursor"
    same = api.get(f"/v1/customers/{CUSTOMER}/timeline", params={"limit": 1, "cursor": cursor})
    assert same.status_code == 200
    assert same.json()["data"][0]["event_id"] == f"{TRACE}_2"


def test_when_a_cursor_is_altered_then_400(api: Api) -> None:
    cursor = api.get(f"/v1/customers/{CUSTOMER}/timeline", params={"limit": 1}).json()["next"]
    when, _, *rest = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    altered = _forged([when, f"{TRACE}_5", *rest])
    response = api.get(f"/v1/customers/{CUSTOMER}/timeline", params={"cursor": altered})
    assert response.status_code == 400
    assert response.json()["error"] == "bad_cursor"


def test_when_an_access_log_cursor_is_used_with_another_filter_then_400(api: Api) -> None:
    api.get(f"/v1/traces/{TRACE}")
    api.get(f"/v1/traces/{TRACE}")
    first = api.get("/v1/access-log", ADMIN, params={"limit": 1, "actor": "ana.support"}).json()
    assert first["next"]
    other = api.get("/v1/access-log", ADMIN, params={"cursor": first["next"], "actor": "ada.admin"})
    assert other.status_code == 400
    assert other.json()["error"] == "bad_cursor"
    same = api.get(
        "/v1/access-log", ADMIN, params={"cursor": first["next"], "actor": "ana.support"}
    )
    assert same.status_code == 200


def test_when_the_csv_is_opened_in_a_spreadsheet_then_it_is_read_as_utf8(api: Api) -> None:
    response = api.get(f"/v1/customers/{CUSTOMER}/timeline.csv")
    assert response.status_code == 200
    assert response.content.startswith(b"\xef\xbb\xbf")  # Excel needs the BOM for UTF-8
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{CUSTOMER}-timeline.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 1 + 6


def test_when_the_export_would_be_cut_then_400_says_to_narrow_it(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("query_api.queries.MAX_EXPORT_ROWS", 5)  # the customer has 6
    response = api.get(f"/v1/customers/{CUSTOMER}/timeline.csv")
    assert response.status_code == 400
    assert response.json()["error"] == "export_too_large"
    # The support page's export, the same function: a page saying why, not a cut file.
    assert api.client.post("/support/login", data={"token": SUPPORT}).status_code == 200
    page = api.client.get(f"/support/customers/{CUSTOMER}.csv")
    assert page.status_code == 400 and "narrow the export" in page.text
    narrowed = api.get(f"/v1/customers/{CUSTOMER}/timeline.csv", params={"lane": "system"})
    assert narrowed.status_code == 200
    assert len(list(csv.reader(io.StringIO(narrowed.text)))) == 1 + 5


def test_when_the_schema_is_read_then_it_says_what_the_routes_answer(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    text = {
        "/v1/traces/{trace_id}/summary.txt": "text/plain",
        "/v1/customers/{customer_id}/timeline.csv": "text/csv",
    }
    for path, media_type in text.items():
        ok = paths[path]["get"]["responses"]["200"]
        assert list(ok["content"]) == [media_type], path
    for path in [
        "/v1/traces/{trace_id}",
        "/v1/traces/{trace_id}/summary.txt",
        "/v1/jobs/{job_id}",
        "/v1/customers/{customer_id}/timeline",
        "/v1/customers/{customer_id}/timeline.csv",
        "/v1/access-log",
    ]:
        # storage_behind / storage_unavailable, in the error shape, with Retry-After
        assert "503" in paths[path]["get"]["responses"], path


def test_when_events_arrive_between_pages_then_no_event_is_skipped_or_shown_twice(
    api: Api,
) -> None:
    live, path = "cust_review_live", "/v1/customers/cust_review_live/timeline"
    events = signup_events("tr_review_live", live, "job_review_live", AT)
    store_events(api.client, events)
    first = api.get(path, params={"limit": 3}).json()
    shown = [e["event_id"] for e in first["data"]]
    # Meanwhile: one event dated before the page reached, and one of page 1 sent again with a
    # later time (a retried send whose service stamped it anew).
    late = {**events[0], "event_id": "ev_review_late", "occurred_at": AT - timedelta(minutes=5)}
    moved = {**events[1], "occurred_at": AT + timedelta(hours=1)}
    store_events(api.client, [late, moved])
    params: dict[str, str | int] = {"limit": 3, "cursor": first["next"]}
    while True:
        page = api.get(path, params=params).json()
        assert page["count"] == first["count"]  # the read is of one moment throughout
        shown += [e["event_id"] for e in page["data"]]
        if page["next"] is None:
            break
        params["cursor"] = page["next"]
    assert sorted(shown) == sorted(e["event_id"] for e in events)  # each once, none skipped
    # A new read shows what arrived: the late event first, the re-sent one at its new time.
    fresh = [e["event_id"] for e in api.get(path, params={"limit": 500}).json()["data"]]
    assert fresh[0] == "ev_review_late" and fresh[-1] == events[1]["event_id"]
    assert len(fresh) == len(set(fresh)) == len(events) + 1
