"""Replay on the embedded path: a rule change, a dry run, then a replay through CLI and API."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from projectors.store import Store
from safetrail.cli import app as cli
from tests.api.conftest import ADMIN, HMAC_KEY, SERVICE, SUPPORT, recent, signup_events
from tests.engineers.helpers import (
    NEW_LABEL,
    OLD_LABEL,
    app_client,
    auth,
    post_json,
    redactor,
    rules_v2,
    stored_rows,
)

TRACE, OTHER = "tr_replay01", "tr_replay02"


def _labels(store: Store, trace_id: str) -> dict[str, tuple[str, str]]:
    return {e.event_id: (e.label, e.rules_version) for e in store.trace_events(trace_id)}


def _row_count(store: Store) -> int:
    return int(stored_rows(store, "SELECT count() FROM timeline_events")[0][0])


@pytest.fixture(scope="module")
def seeded(timeline_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two traces ingested under the packaged rules; returns the changed rules directory."""
    tmp = tmp_path_factory.mktemp("replay")
    at = recent(30)
    with app_client(timeline_store, tmp, redactor()) as client:
        for trace in (TRACE, OTHER):
            body = orjson.dumps(signup_events(trace, "48291", f"job_{trace[3:]}", at))
            r = client.post(
                "/v1/events",
                content=body,
                headers={**auth(SERVICE), "Content-Type": "application/json"},
            )
            assert r.status_code == 202, r.text
    return rules_v2(tmp)


def test_when_dry_run_after_rule_change_then_counts_shown_and_nothing_written(
    timeline_store: Store, seeded: Path, tmp_path: Path
) -> None:
    before, rows_before = _labels(timeline_store, TRACE), _row_count(timeline_store)
    new_rules = redactor(seeded)
    body = {
        "from": (recent(60)).isoformat(),
        "to": (recent(0) + timedelta(minutes=5)).isoformat(),
        "trace_id": TRACE,
        "reason": "INC-42 label fix",
        "dry_run": True,
    }
    with app_client(timeline_store, tmp_path, new_rules) as client:
        r = post_json(client, "/v1/replays", body, auth())
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["dry_run"] is True and report["read"] == 6 and report["written"] == 0
    assert report["rules_after"] == new_rules.version
    assert report["rules_before"] == {redactor().version: 6}
    assert report["per_type"]["signup_email.bounced"]["changed"] == 1
    assert report["per_type"]["signup.submitted"] == {
        "events": 1,
        "changed": 0,
        "new": 0,
        "rejected": 0,
    }
    assert _labels(timeline_store, TRACE) == before
    assert _row_count(timeline_store) == rows_before


def test_when_cli_replays_after_rule_change_then_timeline_updated_without_duplicates(
    timeline_store: Store, seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAFETRAIL_CLICKHOUSE_URL", timeline_store.url)
    monkeypatch.setenv("SAFETRAIL_HMAC_KEY", HMAC_KEY)
    monkeypatch.setenv("SAFETRAIL_RULES_PATH", str(seeded))
    monkeypatch.delenv("SAFETRAIL_KAFKA_BOOTSTRAP", raising=False)
    args = ["replay", "--from", "-2h", "--to", "now", "--type", "signup_email.*"]
    args += ["--reason", "INC-42 label fix", "--actor", "eli.engineer", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout[result.stdout.index("{") :])
    # Both traces, email events only: 4 per trace, one bounce each changes.
    assert (report["read"], report["written"], report["changed"]) == (8, 8, 2)
    new_version = redactor(seeded).version
    for trace in (TRACE, OTHER):
        events = timeline_store.trace_events(trace)
        assert len(events) == len({e.event_id for e in events}) == 6
        bounce = next(e for e in events if e.type == "signup_email.bounced")
        assert (bounce.label, bounce.rules_version) == (NEW_LABEL, new_version)
        signup = next(e for e in events if e.type == "signup.submitted")
        assert signup.rules_version == redactor().version  # outside the type filter
    assert all(label != OLD_LABEL for label, _ in _labels(timeline_store, TRACE).values())
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert orjson.loads(again.stdout[again.stdout.index("{") :])["changed"] == 0


def test_when_replay_runs_then_audit_log_records_who_range_filters_rules_and_counts(
    timeline_store: Store, seeded: Path, tmp_path: Path
) -> None:
    body = {
        "from": recent(60).isoformat(),
        "to": (recent(0) + timedelta(minutes=5)).isoformat(),
        "type": "signup.*",
        "reason": "INC-43",
    }
    with app_client(timeline_store, tmp_path, redactor(seeded)) as client:
        r = post_json(client, "/v1/replays", body, auth())
        denied = post_json(client, "/v1/replays", body, auth(SUPPORT))
        replay_id = r.json()["replay_id"]
        # An admin reads what the replay did, on the API and on the admin page (the details
        # were stored but neither showed them).
        listed = client.get(
            "/v1/access-log",
            params={"record_kind": "replay", "record_id": replay_id},
            headers=auth(ADMIN, reason="audit of INC-43"),
        )
        assert client.post("/support/login", data={"token": ADMIN}).status_code == 200
        page = client.get(
            "/support/admin/access-log", params={"record_kind": "replay", "record_id": replay_id}
        )
    assert r.status_code == 200, r.text
    assert denied.status_code == 403
    assert listed.status_code == 200, listed.text
    shown = [e["details"] for e in listed.json()["data"]]
    assert [d["status"] for d in shown] == ["started", "finished"]
    assert shown[1]["read"] == 2 and shown[1]["per_type"]["signup.submitted"]["events"] == 2
    assert shown[1]["type"] == "signup.*" and shown[1]["rules_after"] == redactor(seeded).version
    assert page.status_code == 200
    assert "status: finished; read: 2; accepted: 2" in page.text and "type: signup.*" in page.text
    rows = stored_rows(
        timeline_store,
        "SELECT actor, route, reason, details FROM access_log "
        "WHERE record_kind = 'replay' AND record_id = {id:String} ORDER BY seq",
        {"id": replay_id},
    )
    assert [row[0] for row in rows] == ["eli.engineer", "eli.engineer"]
    assert rows[0][1] == "/v1/replays" and rows[0][2] == "INC-43"
    started, finished = (orjson.loads(row[3]) for row in rows)
    assert started["status"] == "started" and finished["status"] == "finished"
    assert finished["type"] == "signup.*" and finished["from"] == body["from"]
    assert finished["rules_after"] == redactor(seeded).version
    assert finished["read"] == 2 and finished["per_type"]["signup.submitted"]["events"] == 2
    assert timeline_store.verify_access_chain().ok
