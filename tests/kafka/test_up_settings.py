"""``safetrail up`` reads its Kafka settings the way every command does: environment, then
``.env``. The broker script sees only the environment, so ``up`` hands it the port.

No broker is started here: the script call and the pipeline run are recorded instead.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from safetrail import cli_kafka
from safetrail.settings import Settings


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """Run ``up`` from ``tmp_path`` with a clean environment; record broker calls and settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETRAIL_")}
    env["SAFETRAIL_DEMO"] = "1"
    monkeypatch.setattr(os, "environ", env)
    monkeypatch.chdir(tmp_path)
    seen: dict[str, Any] = {"broker": []}

    def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
        seen["broker"].append((argv[-1], kw["env"].get("SAFETRAIL_KAFKA_PORT")))
        return subprocess.CompletedProcess(argv, 0)

    def run_up(settings: Settings, host: str, port: int) -> None:
        seen["settings"] = settings

    monkeypatch.setattr(cli_kafka.subprocess, "run", run)
    monkeypatch.setattr(cli_kafka, "_run_up", run_up)
    return seen


def test_when_env_file_sets_the_kafka_port_then_the_local_broker_and_bootstrap_use_it(
    recorded: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("SAFETRAIL_KAFKA_PORT=19193\n")
    cli_kafka.up_cmd()
    assert recorded["broker"] == [("up", "19193"), ("down", "19193")]
    assert recorded["settings"].kafka_bootstrap == "127.0.0.1:19193"


def test_when_env_file_names_a_broker_then_no_local_broker_is_started(
    recorded: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("SAFETRAIL_KAFKA_BOOTSTRAP=kafka.internal:9092\n")
    cli_kafka.up_cmd()
    assert recorded["broker"] == []
    assert recorded["settings"].kafka_bootstrap == "kafka.internal:9092"
