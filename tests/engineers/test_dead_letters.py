"""Dead letters: listed with reasons for engineers, re-driven via the replay path after a fix."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from projectors.store import Store
from redaction_rules.engine import load_rules
from safetrail.cli import app as cli
from tests.api.conftest import HMAC_KEY, RAW_EMAIL, SERVICE, recent, signup_events
from tests.engineers.helpers import FlakyRedactor, app_client, auth, post_json, redactor

TRACE = "tr_deadletter"
BROKEN = "signup_email.bounced"


@pytest.fixture(scope="module")
def buggy(timeline_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One trace ingested while a rule bug rejects its bounce event."""
    tmp = tmp_path_factory.mktemp("dl")
    flaky = FlakyRedactor(load_rules(), HMAC_KEY.encode(), BROKEN)
    with app_client(timeline_store, tmp, flaky) as client:
        body = orjson.dumps(signup_events(TRACE, "48291", "job_dl", recent(15)))
        headers = {**auth(SERVICE), "Content-Type": "application/json"}
        r = client.post("/v1/events", content=body, headers=headers)
        assert r.status_code == 202 and r.json()["rejected"] == 1, r.text
    return tmp


def test_when_engineer_lists_dead_letters_then_reasons_and_payload_shown_and_audited(
    timeline_store: Store, buggy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with app_client(timeline_store, tmp_path, redactor()) as client:
        no_reason = client.get("/v1/dead-letters", headers=auth())
        r = client.get("/v1/dead-letters", headers=auth(reason="INC-77"))
    assert no_reason.status_code == 400
    assert r.status_code == 200, r.text
    (letter,) = [d for d in r.json()["data"] if d["trace_id"] == TRACE]
    assert letter["reason"] == "redaction failed: RuntimeError"
    assert RAW_EMAIL in letter["payload"] and letter["redriven_at"] is None
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAFETRAIL_CLICKHOUSE_URL", timeline_store.url)
    monkeypatch.setenv("SAFETRAIL_HMAC_KEY", HMAC_KEY)
    listed = CliRunner().invoke(cli, ["dead-letters", "list"])
    assert listed.exit_code == 0, listed.output
    assert f"{letter['dead_letter_id']}" in listed.output and "redaction failed" in listed.output


def test_when_redriven_before_and_after_the_fix_then_only_the_fix_turns_it_into_an_event(
    timeline_store: Store, buggy: Path, tmp_path: Path
) -> None:
    assert len(timeline_store.trace_events(TRACE)) == 5
    (letter,) = [d for d in timeline_store.dead_letters() if d.trace_id == TRACE]
    received = letter.received_at
    time.sleep(0.01)  # a redrive stamping "now" would be visibly later
    flaky = FlakyRedactor(load_rules(), HMAC_KEY.encode(), BROKEN)
    body = {"reason": "INC-77 rule fix"}
    with app_client(timeline_store, tmp_path, flaky) as client:
        still_broken = post_json(client, "/v1/dead-letters/redrive", body, auth())
    assert still_broken.status_code == 200, still_broken.text
    assert (still_broken.json()["rejected"], still_broken.json()["written"]) == (1, 0)
    # Rejected again: same letter, same receive time (not restarted: retention, list order).
    (again_letter,) = [d for d in timeline_store.dead_letters() if d.trace_id == TRACE]
    assert again_letter.received_at - received < timedelta(milliseconds=1)
    assert again_letter.received_at >= received
    with app_client(timeline_store, tmp_path, redactor()) as client:
        dry = post_json(client, "/v1/dead-letters/redrive", {**body, "dry_run": True}, auth())
        assert dry.json()["accepted"] == 1 and dry.json()["written"] == 0
        assert len(timeline_store.trace_events(TRACE)) == 5
        fixed = post_json(client, "/v1/dead-letters/redrive", body, auth())
        assert fixed.status_code == 200, fixed.text
        assert (fixed.json()["kind"], fixed.json()["written"]) == ("redrive", 1)
        pending = client.get("/v1/dead-letters", headers=auth(reason="INC-77"))
        everything = client.get(
            "/v1/dead-letters", params={"status": "all"}, headers=auth(reason="INC-77")
        )
        again = post_json(client, "/v1/dead-letters/redrive", body, auth())
    events = timeline_store.trace_events(TRACE)
    assert len(events) == len({e.event_id for e in events}) == 6
    assert any(e.type == BROKEN and e.label == "Signup email bounced" for e in events)
    assert all(d["trace_id"] != TRACE for d in pending.json()["data"])
    (done,) = [d for d in everything.json()["data"] if d["trace_id"] == TRACE]
    assert done["replay_id"] == fixed.json()["replay_id"] and done["redriven_at"] is not None
    assert again.json()["read"] == 0
    raw_types = {e.type for e in timeline_store.raw_trace(TRACE)}
    assert BROKEN in raw_types  # re-driven input can be replayed later like any other


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/dead-letters/redrive", {"reason": "     ", "dry_run": True}),
        (
            "/v1/replays",
            {"from": "2026-11-26T00:00:00Z", "to": "2026-11-27T00:00:00Z", "reason": " \t  ",
             "dry_run": True},
        ),
    ],
)  # fmt: skip
def test_when_the_reason_is_only_spaces_then_the_request_is_refused_with_that_reason(
    timeline_store: Store, tmp_path: Path, path: str, body: dict[str, object]
) -> None:
    with app_client(timeline_store, tmp_path, redactor()) as client:
        response = post_json(client, path, body, auth())
    assert response.status_code == 422, response.text
    assert "a reason (ticket or incident ID) is required" in response.text


def test_when_a_redrive_names_no_ids_in_an_empty_list_then_it_is_refused(
    timeline_store: Store, tmp_path: Path
) -> None:
    # `"ids": []` answered 200 and re-drove nothing; the CLI reads "no IDs" as "all pending".
    body = {"ids": [], "reason": "INC-9 fixed rules", "dry_run": True}
    with app_client(timeline_store, tmp_path, redactor()) as client:
        response = post_json(client, "/v1/dead-letters/redrive", body, auth())
    assert response.status_code == 422, response.text
    assert "ids" in response.text


def test_when_rejected_input_holds_personal_data_then_the_unaudited_cli_list_masks_it(
    timeline_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `dead-letters list` asks no reason and writes no access-log entry: what it prints of
    # bad input (IDs, reasons) must hold no email or card number.
    base = signup_events("tr_dlpii", "48291", "job_dlpii", recent(5))[0]
    bad = [
        {**base, "trace_id": "maria.santos@gmail.com"},  # not an ID at all
        {**base, "event_id": "4111111111111111"},  # an ID that is a card number
        {**base, "subject": {**base["subject"], "joao.silva@example.com": "x"}},  # a key
    ]
    with app_client(timeline_store, tmp_path, redactor()) as client:
        headers = {**auth(SERVICE), "Content-Type": "application/json"}
        r = client.post("/v1/events", content=orjson.dumps(bad, default=str), headers=headers)
        assert r.status_code == 202 and r.json()["rejected"] == 3, r.text
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAFETRAIL_CLICKHOUSE_URL", timeline_store.url)
    monkeypatch.setenv("SAFETRAIL_HMAC_KEY", HMAC_KEY)
    for args in (["dead-letters", "list"], ["dead-letters", "list", "--json"]):
        listed = CliRunner().invoke(cli, args)
        assert listed.exit_code == 0, listed.output
        assert "subject.j***.s****@example.com: Extra inputs" in listed.output
        for personal in ("maria.santos", "4111111111111111", "joao.silva"):
            assert personal not in listed.output, (args, listed.output)
