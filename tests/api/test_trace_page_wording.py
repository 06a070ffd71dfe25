"""The trace, job and customer pages say what the copied summary says, and stay readable on a
narrow or ordinary screen: wide tables scroll in their own box, long values wrap."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from projectors.store import Store
from query_api.pages_render import STATIC_DIR
from tests.api.conftest import (
    SUPPORT,
    recent,
    recovered_signup_events,
    signup_events,
    store_aged,
    support_client,
)

FAILED, RECOVERED, ANCIENT = "tr_wording_failed", "tr_wording_recovered", "tr_wording_ancient"
RUNNING = "tr_wording_running"
CUSTOMER = "c_wording"


@pytest.fixture(scope="module")
def client(timeline_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    events = [
        *signup_events(FAILED, CUSTOMER, "job_wording_failed", recent()),
        *recovered_signup_events(RECOVERED, CUSTOMER, "job_wording_recovered", recent()),
        # up to the retry: the email job is still running
        *signup_events(RUNNING, CUSTOMER, "job_wording_running", recent())[:5],
    ]
    # Stored when it happened, older than retention now.
    ancient = signup_events(
        ANCIENT, "c_wording_old", "job_wording_old", recent() - timedelta(days=420)
    )
    with support_client(timeline_store, tmp_path_factory.mktemp("wording"), events) as c:
        store_aged(c, ancient)
        yield c


def _statusbar(page: str) -> str:
    return page[page.index('<dl class="statusbar"') : page.index("</dl>")]


def _fact(page: str, name: str) -> str:
    found = re.search(rf"<dt>{name}</dt><dd>(.*?)</dd>", _statusbar(page), re.S)
    assert found, name
    return found.group(1)


def test_when_every_event_of_a_trace_is_past_retention_then_finished_says_so(
    client: TestClient,
) -> None:
    page = client.get(f"/support/traces/{ANCIENT}").text

    assert _fact(page, "Finished") == "Unknown (removed by retention)"


def test_when_a_trace_is_past_retention_then_its_customer_is_said_removed_not_unknown(
    client: TestClient,
) -> None:
    # The index kept for a trace past retention holds no customer: say why none is shown.
    page = client.get(f"/support/traces/{ANCIENT}").text
    summary = client.get(
        f"/v1/traces/{ANCIENT}/summary.txt", headers={"Authorization": f"Bearer {SUPPORT}"}
    ).text

    assert _fact(page, "Customer ID") == "Not kept (removed by retention)"
    assert summary.splitlines()[0] == "Customer ID: Not kept (removed by retention)"
    fresh = client.get(f"/support/traces/{RUNNING}").text
    assert f'href="/support/customers/{CUSTOMER}"' in _fact(fresh, "Customer ID")


def test_when_a_trace_is_running_then_finished_still_says_not_finished(
    client: TestClient,
) -> None:
    page = client.get(f"/support/traces/{RUNNING}").text

    assert _fact(page, "Finished") == "Not finished"


def test_when_a_trace_succeeded_after_an_error_then_the_page_says_recovered_as_the_summary(
    client: TestClient,
) -> None:
    page = client.get(f"/support/traces/{RECOVERED}").text
    summary = client.get(
        f"/v1/traces/{RECOVERED}/summary.txt", headers={"Authorization": f"Bearer {SUPPORT}"}
    ).text

    assert "(recovered)" in next(line for line in summary.splitlines() if line.startswith("Error"))
    assert "(recovered)" in _fact(page, "Last error")


def test_when_a_trace_failed_then_its_last_error_is_not_called_recovered(
    client: TestClient,
) -> None:
    page = client.get(f"/support/traces/{FAILED}").text

    assert "SMTP_550" in _fact(page, "Last error")
    assert "(recovered)" not in _fact(page, "Last error")


@pytest.mark.parametrize(
    "path",
    [
        f"/support/traces/{FAILED}",
        "/support/jobs/job_wording_failed",
        f"/support/customers/{CUSTOMER}",
    ],
)
def test_when_a_page_shows_tables_then_each_scrolls_in_its_own_box(
    client: TestClient, path: str
) -> None:
    # A wide table outside the box makes the whole page scroll sideways at 800 px.
    page = client.get(path).text

    tables = page.count("<table>")
    assert tables >= 1
    assert len(re.findall(r'<div class="table-wrap">\s*<table>', page)) == tables


def test_when_the_status_bar_holds_a_long_value_then_it_wraps_inside_its_cell() -> None:
    css = (STATIC_DIR / "support.css").read_text()

    rule = re.search(r"\.statusbar dd \{([^}]*)\}", css)
    assert rule and "overflow-wrap: anywhere" in rule.group(1)
