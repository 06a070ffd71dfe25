"""The support guide: a note for every status, step state and broken link the pages can show,
masked examples made by the redactor in force (never the clear values), and the escalation
rules the server loaded, for signed-in people only and without an access-log entry."""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from projectors.reads import AccessLogQuery
from projectors.store import Store
from query_api.app import create_app
from query_api.guide import _SAMPLES, BROKEN_NOTES, KIND_NOTES, STATUS_NOTES, STEP_NOTES
from query_api.models import BrokenLink, StepKind, StepState, TraceStatus
from redaction_rules.escalation import load_escalation_rules
from redaction_rules.loader import DEFAULT_RULES_DIR
from tests.api.conftest import SERVICE, SUPPORT, api_settings, recent, signup_events

CUSTOM_RULE = """
version: 1
rules:
  - id: refund_pending
    when: {last_error_in: [REFUND_PENDING]}
    owner: support
    reason: The refund is waiting for the bank.
    next_step: Tell the customer refunds take up to {threshold} minutes to show.
fallback:
  id: anything_else
  owner: engineering
  reason: Nothing above fits.
  next_step: Hand the trace ID to engineering.
"""


def _client(settings_dir: Path, store: Store, **overrides: object) -> TestClient:
    return TestClient(create_app(api_settings(settings_dir, **overrides), store=store))


@pytest.fixture(scope="module")
def client(timeline_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with _client(tmp_path_factory.mktemp("guide"), timeline_store) as c:
        assert c.post("/support/login", data={"token": SUPPORT, "next": "/support"}).is_success
        yield c


def test_every_status_step_and_broken_link_the_pages_show_has_a_note() -> None:
    assert set(STATUS_NOTES) == set(TraceStatus)
    assert set(STEP_NOTES) == set(StepState)
    assert set(BROKEN_NOTES) == set(BrokenLink)
    assert set(KIND_NOTES) == set(StepKind)


def test_when_support_opens_the_guide_then_each_status_is_explained_in_words(
    client: TestClient,
) -> None:
    page = client.get("/support/guide")
    assert page.status_code == 200
    text = html.unescape(page.text)
    for notes in (STATUS_NOTES, STEP_NOTES, BROKEN_NOTES, KIND_NOTES):
        for note in notes.values():
            assert note in text
    for status in TraceStatus:
        assert f'class="status status-{status.value}"' in page.text
    assert "no news past 30 minutes" in " ".join(text.split())  # the stuck limit in force
    assert 'href="/support/guide"' in client.get("/support").text  # in the top bar


def test_when_the_guide_shows_masks_then_they_are_the_redactors_and_never_the_values(
    client: TestClient,
) -> None:
    text = html.unescape(client.get("/support/guide").text)
    for _kind, _type, data, _path, _confirm in _SAMPLES:
        for value in _leaves(data):
            assert value not in text  # a made-up value is still never printed clear
    assert re.search(r"m\*+\.s\*+@gmail\.com", text)
    assert "**** 4242" in text and "+1 ***-***-**67" in text and "203.0.113.0/24" in text
    password_row = re.search(r"<td>Password</td><td[^>]*>([^<]*)</td>", text)
    assert password_row is not None and password_row[1] == "not shown"


def _leaves(data: object) -> list[str]:
    if isinstance(data, dict):
        return [leaf for value in data.values() for leaf in _leaves(value)]
    return [str(data)]


def test_the_guide_lists_every_escalation_rule_in_force_in_order(
    client: TestClient, timeline_store: Store, tmp_path: Path
) -> None:
    text = html.unescape(client.get("/support/guide").text)
    rules = load_escalation_rules()
    at = [text.index(rule.reason.split("{")[0].strip()) for rule in rules.rules]
    assert at == sorted(at)  # the order the page's hint checks them in

    custom = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, custom)
    (custom / "escalation.yaml").write_text(CUSTOM_RULE)
    with _client(tmp_path / "data", timeline_store, rules_path=custom) as other:
        assert other.post("/support/login", data={"token": SUPPORT, "next": "/support"}).is_success
        own = html.unescape(other.get("/support/guide").text)
    assert "Tell the customer refunds take up to 30 minutes to show." in own
    assert "Hand the trace ID to engineering." in own and "Support can act" in own
    assert rules.rules[1].next_step not in own  # the default rules are not the ones in force


def test_when_signed_out_the_guide_asks_for_sign_in_and_viewing_it_logs_no_record(
    client: TestClient, timeline_store: Store, tmp_path: Path
) -> None:
    with _client(tmp_path, timeline_store) as anonymous:
        response = anonymous.get("/support/guide", follow_redirects=False)
    assert response.status_code in (302, 303) and "/support/login" in response.headers["location"]
    before = timeline_store.access_log(AccessLogQuery(actor="ana.support", limit=1000))
    assert client.get("/support/guide").status_code == 200
    timeline_store.flush_access()
    after = timeline_store.access_log(AccessLogQuery(actor="ana.support", limit=1000))
    assert len(after) == len(before)


def test_the_trace_page_links_its_status_and_hint_to_the_guide(client: TestClient) -> None:
    events = signup_events("tr_guide_link", "c_guide", "job_guide_link", recent())
    stored = client.post(
        "/v1/events",
        content=orjson.dumps(events, default=str),
        headers={"Authorization": f"Bearer {SERVICE}", "Content-Type": "application/json"},
    )
    assert stored.status_code == 202 and stored.json()["rejected"] == 0
    page = client.get("/support/traces/tr_guide_link")
    assert page.status_code == 200
    assert 'href="/support/guide#statuses"' in page.text
    assert 'href="/support/guide#escalation"' in page.text
