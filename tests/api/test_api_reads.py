"""Reads: job history, broken links, customer pages and CSV, 404s, access log, health."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from query_api.app import create_app
from tests.api.conftest import (
    ADMIN,
    RAW_EMAIL,
    Api,
    api_settings,
    recent,
    signup_events,
    store_aged,
)

CUSTOMER = "48500"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


def login(n: int, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"ev_login_{n:02d}",
        "trace_id": f"tr_login_{n:02d}",
        "type": "login.succeeded",
        "occurred_at": at,
        "source": "web",
        "status": "done",
        "subject": {"customer_id": CUSTOMER},
        "data": {"email": RAW_EMAIL, **extra},
    }


@pytest.fixture(scope="module", autouse=True)
def _loaded(api: Api) -> None:
    events = signup_events("tr_reads", CUSTOMER, "job_reads", START)  # 2 customer, 4 system
    events += [login(n, START + timedelta(hours=n + 1)) for n in range(6)]
    # a request whose job never produced an event
    events += signup_events("tr_nojob", "48501", "job_never", recent(), email_job=False)
    # text a spreadsheet would run as a formula, in a field the rules keep
    events.append(login(99, START + timedelta(hours=20), user_agent="=HYPERLINK(1)"))
    body = api.post_events(events).json()
    assert body["rejected"] == 0
    # a signup stored when it happened and older than retention now: TTL drops it, the
    # id-only index remembers it
    store_aged(
        api.client,
        signup_events("tr_ancient", "48502", "job_ancient", recent() - timedelta(days=420)),
    )


def test_when_a_job_is_read_then_attempts_delays_and_final_result_show(api: Api) -> None:
    body = api.get("/v1/jobs/job_reads").json()
    step = body["step"]
    assert body["trace_ids"] == ["tr_reads"]
    assert (step["state"], step["attempts"], step["retry_delays_seconds"]) == ("failed", 2, [240.0])
    history = step["attempt_history"]
    assert [a["state"] for a in history] == ["failed", "failed"]
    assert history[0]["error_code"] == "SMTP_421" and history[0]["reason"]
    assert history[1]["error_code"] == "SMTP_550" and history[1]["is_retry"]


def test_when_a_request_names_a_job_with_no_events_then_the_chain_says_job_not_found(
    api: Api,
) -> None:
    chain = api.get("/v1/traces/tr_nojob").json()
    [job] = [s for s in chain["steps"] if s["kind"] == "job"]
    assert (job["job_id"], job["broken_link"]) == ("job_never", "job not found")
    assert chain["summary"]["status"] == "incomplete"


def test_when_a_trace_is_older_than_retention_then_its_steps_say_removed_by_retention(
    api: Api,
) -> None:
    response = api.get("/v1/traces/tr_ancient")
    assert response.status_code == 200
    chain = response.json()
    assert chain["events"] == []
    assert {s["broken_link"] for s in chain["steps"]} == {"removed by retention"}
    assert chain["summary"]["status"] == "unknown"
    assert chain["removed_events"] == 6
    assert api.get("/v1/jobs/job_ancient").json()["step"]["broken_link"] == "removed by retention"


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/v1/traces/tr_nobody_knows", "trace_not_found"),
        ("/v1/jobs/job_nobody_knows", "job_not_found"),
        ("/v1/customers/nobody/timeline", "customer_not_found"),
        ("/v1/customers/nobody/timeline.csv", "customer_not_found"),
    ],
)
def test_when_a_record_is_unknown_then_404_says_so(api: Api, path: str, error: str) -> None:
    response = api.get(path)
    assert response.status_code == 404
    assert response.json()["error"] == error
    assert "No " in response.json()["message"]


def test_when_paging_a_customer_timeline_then_pages_chain_without_repeats(api: Api) -> None:
    seen, cursor, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = api.get(f"/v1/customers/{CUSTOMER}/timeline", params=params).json()
        assert page["count"] == 13
        seen += [e["event_id"] for e in page["data"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 13
    data = api.get(f"/v1/customers/{CUSTOMER}/timeline", params={"limit": 50}).json()["data"]
    times = [datetime.fromisoformat(e["occurred_at"]) for e in data]
    assert times == sorted(times)


@pytest.mark.parametrize(
    ("params", "count"),
    [
        ({"lane": "system"}, 5),  # account created and the four email job events
        ({"lane": "customer"}, 8),  # the signup and the seven logins
        ({"since": (START + timedelta(hours=3)).isoformat()}, 5),  # logins 2..5 and the formula
        ({"until": (START + timedelta(hours=3)).isoformat()}, 8),  # signup job and logins 0..1
        ({"since": START.isoformat(), "until": (START + timedelta(seconds=1)).isoformat()}, 2),
        # a time without a zone is UTC, and may meet one with a zone
        (
            {
                "since": START.replace(tzinfo=None).isoformat(),
                "until": (START + timedelta(seconds=1)).isoformat(),
            },
            2,
        ),
    ],
)
def test_when_filtering_a_customer_timeline_then_lane_and_range_apply(
    api: Api, params: dict[str, str], count: int
) -> None:
    page = api.get(f"/v1/customers/{CUSTOMER}/timeline", params=params).json()
    assert page["count"] == len(page["data"]) == count


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"cursor": "not-a-cursor"}, "bad_cursor"),
        ({"since": START.isoformat(), "until": START.isoformat()}, "bad_range"),
    ],
)
def test_when_paging_parameters_are_wrong_then_400_says_which(
    api: Api, params: dict[str, str], error: str
) -> None:
    response = api.get(f"/v1/customers/{CUSTOMER}/timeline", params=params)
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_when_exporting_csv_then_masks_hold_and_formulas_are_neutralised(api: Api) -> None:
    response = api.get(f"/v1/customers/{CUSTOMER}/timeline.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 13
    assert RAW_EMAIL not in response.text and "hunter2" not in response.text
    assert any("email=m" in r["fields"] and "*" in r["fields"] for r in rows)
    formula = [r for r in rows if "HYPERLINK" in r["fields"]]
    assert formula and all(not r["fields"].startswith("=") for r in formula)
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())


def test_when_records_are_read_then_the_access_log_names_who_what_and_where(api: Api) -> None:
    api.get("/v1/traces/tr_reads", headers={"X-Access-Reason": "ticket 7731"})
    api.get(f"/v1/customers/{CUSTOMER}/timeline.csv")

    log = api.get("/v1/access-log", ADMIN, params={"actor": "ana.support", "limit": 500}).json()
    entries = {(e["record_kind"], e["record_id"], e["route"]): e for e in log["data"]}
    trace = entries[("trace", "tr_reads", "/v1/traces/{trace_id}")]
    assert (trace["actor"], trace["role"], trace["reason"]) == (
        "ana.support",
        "support",
        "ticket 7731",
    )
    assert ("customer_export", CUSTOMER, "/v1/customers/{customer_id}/timeline.csv") in entries
    assert log["count"] == len(log["data"])

    again = api.get("/v1/access-log", ADMIN, params={"record_kind": "access_log"}).json()
    assert again["data"] and again["data"][-1]["actor"] == "ada.admin"  # reading it is logged


def test_when_settings_and_the_ttl_in_force_agree_then_health_is_ok(api: Api) -> None:
    body = api.get("/healthz", None).json()
    assert (body["status"], body["storage"], body["ttl_ok"]) == ("ok", "ok", True)
    days = {t["table"]: t["actual_days"] for t in body["ttl"]}
    assert days["timeline_events"] == api.settings.retention_days
    assert days["raw_events"] == api.settings.raw_retention_days


def test_when_settings_ask_for_other_retention_than_in_force_then_health_flags_it(
    api: Api, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The store keeps its own policy (400 days); settings now say 30: the UI-only-retention
    # mistake must show up instead of passing silently.
    settings = api_settings(tmp_path_factory.mktemp("drift"), retention_days=30)
    with TestClient(create_app(settings, store=api.store)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    ttl = {t["table"]: t for t in response.json()["ttl"]}
    assert (ttl["timeline_events"]["expected_days"], ttl["timeline_events"]["actual_days"]) == (
        30,
        400,
    )
    assert ttl["timeline_events"]["ok"] is False
