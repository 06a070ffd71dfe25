"""``safetrail rules check|test|coverage`` through Typer's test runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from safetrail.cli_rules import register

EVENT = {
    "trace_id": "tr_9c1f2a7b",
    "type": "signup.submitted",
    "occurred_at": "2026-11-26T10:12:15Z",
    "source": "web",
    "subject": {"customer_id": "48291"},
    "data": {"email": "maria.santos@gmail.com", "password": "hunter2", "debug": {"a": 1, "b": 2}},
}


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> typer.Typer:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("SAFETRAIL_HMAC_KEY", "cli-test-key-0123456789")
    monkeypatch.delenv("SAFETRAIL_RULES_PATH", raising=False)
    app = typer.Typer()
    app.callback()(lambda: None)  # keep "rules" as a sub-command
    register(app)
    return app


def events_file(tmp_path: Path, *lines: bytes) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_when_checking_the_packaged_rules_then_it_reports_ok(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["rules", "check"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: ") and "version rs_" in result.stdout


def test_when_checking_broken_rules_then_it_lists_problems_and_exits_1(
    app: typer.Typer, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yaml").write_text(
        "kind: redaction\ntypes:\n  x.y:\n    label: X\n    lane: nowhere\n", encoding="utf-8"
    )
    result = CliRunner().invoke(app, ["rules", "check", str(rules)])
    assert result.exit_code == 1
    assert "a.yaml: rule 'x.y': lane:" in result.stderr


def test_when_testing_events_then_each_valid_line_prints_what_support_sees(
    app: typer.Typer, tmp_path: Path
) -> None:
    path = events_file(tmp_path, orjson.dumps(EVENT), b"", orjson.dumps({**EVENT, "type": "x.y"}))
    result = CliRunner().invoke(app, ["rules", "test", str(path)])
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [line["label"] for line in lines] == [
        "Customer submitted signup form",
        "Other system event",
    ]
    assert lines[0]["fields"] == {"email": "m****.s*****@gmail.com"}
    assert "hunter2" not in result.stdout and "maria.santos@" not in result.stdout


def test_when_testing_invalid_lines_then_each_gets_a_reason_and_exit_1(
    app: typer.Typer, tmp_path: Path
) -> None:
    bad_type = orjson.dumps({**EVENT, "type": "Not A Type"})
    path = events_file(tmp_path, b"{not json", orjson.dumps(EVENT), bad_type, b"[1, 2]")
    result = CliRunner().invoke(app, ["rules", "test", str(path)])
    assert result.exit_code == 1
    assert len(result.stdout.splitlines()) == 1  # the one valid event
    errors = result.stderr.splitlines()
    assert errors[0].startswith("line 1: not valid JSON")
    assert errors[1].startswith("line 3: type: String should match pattern")
    assert errors[2] == "line 4: event must be a JSON object, got list"


def test_when_measuring_coverage_then_dropped_paths_are_counted(
    app: typer.Typer, tmp_path: Path
) -> None:
    path = events_file(tmp_path, orjson.dumps(EVENT), orjson.dumps(EVENT), b"nope")
    result = CliRunner().invoke(app, ["rules", "coverage", str(path)])
    assert result.exit_code == 1  # the invalid line
    assert "line 3: not valid JSON" in result.stderr
    table = result.stdout
    assert "(2 events" in table
    for path_name in ("debug.a", "debug.b", "password"):
        row = next(line for line in table.splitlines() if f" {path_name} " in line)
        assert "│     2 │" in row, row
    assert "drop rule signup.submitted:password" in table
    assert "hunter2" not in table


def test_when_no_hmac_key_is_configured_then_the_demo_key_is_used_with_a_note(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAFETRAIL_HMAC_KEY")
    result = CliRunner().invoke(
        app, ["rules", "test", str(events_file(tmp_path, orjson.dumps(EVENT)))]
    )
    assert result.exit_code == 0
    assert "using the demo key" in result.stderr


@pytest.mark.parametrize("command", ["test", "coverage"])
def test_when_no_hmac_key_is_configured_then_safetrail_rules_path_is_still_used(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "own.yaml").write_text(
        "kind: redaction\ntypes:\n  signup.submitted:\n    label: Own signup label\n"
        "    lane: customer\n    fields:\n      email: mask_email\n",
        encoding="utf-8",
    )
    monkeypatch.delenv("SAFETRAIL_HMAC_KEY")
    monkeypatch.setenv("SAFETRAIL_RULES_PATH", str(rules))
    result = CliRunner().invoke(
        app, ["rules", command, str(events_file(tmp_path, orjson.dumps(EVENT)))]
    )
    assert result.exit_code == 0, result.output
    assert "using the demo key" in result.stderr
    if command == "test":
        assert orjson.loads(result.stdout)["label"] == "Own signup label"
    else:  # own.yaml has no drop rule for the password, the packaged rules do
        row = next(line for line in result.stdout.splitlines() if " password " in line)
        assert "no rule" in row, row


def test_when_run_as_the_safetrail_command_then_the_rules_group_is_registered() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "safetrail.cli", "rules", "check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: ")
