"""``safetrail up`` reads its Kafka settings the way every command does: environment, then
``.env``. The broker script sees only the environment, so ``up`` hands it the port.

No broker is started here: the script call and the pipeline run are recorded instead.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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
    seen: dict[str, Any] = {"broker": [], "running": False}

    def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
        seen["broker"].append((argv[-1], kw["env"].get("SAFETRAIL_KAFKA_PORT")))
        if argv[-1] == "status":  # the script's answer: 0 running, 1 stopped
            return subprocess.CompletedProcess(argv, 0 if seen["running"] else 1)
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
    assert recorded["broker"] == [("status", "19193"), ("up", "19193"), ("down", "19193")]
    assert recorded["settings"].kafka_bootstrap == "127.0.0.1:19193"


def test_when_a_local_broker_already_runs_then_up_uses_it_and_leaves_it_running(
    recorded: dict[str, Any],
) -> None:
    recorded["running"] = True  # started by make kafka-up, or another shell
    cli_kafka.up_cmd()
    assert recorded["broker"] == [("status", "9092")]  # neither started nor stopped
    assert recorded["settings"].kafka_bootstrap == "127.0.0.1:9092"


def test_when_up_is_killed_then_its_supervised_worker_does_not_outlive_it(
    tmp_path: Path,
) -> None:
    # A stand-in for ``up``: supervise() runs a long child from a thread, then the process is
    # killed with SIGKILL (no handler runs). The child must go too.
    pid_file, child_py = tmp_path / "child.pid", tmp_path / "child.py"
    child_py.write_text(
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n"
    )
    script = (
        "import sys, threading, time\n"
        "from safetrail.cli_kafka import supervise\n"
        f"child = [sys.executable, {str(child_py)!r}]\n"
        "threading.Thread(target=supervise, args=(child, threading.Event(), 'w')).start()\n"
        "time.sleep(120)\n"
    )
    up = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[2])
    try:
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text()):
            assert time.monotonic() < deadline and up.poll() is None, "child never started"
            time.sleep(0.05)
        child = int(pid_file.read_text())
        up.send_signal(signal.SIGKILL)
        up.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child):
            if time.monotonic() > deadline:
                os.kill(child, signal.SIGKILL)
                raise AssertionError("the supervised child outlived its killed parent")
            time.sleep(0.05)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (reaped by init shortly).
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_when_env_file_names_a_broker_then_no_local_broker_is_started(
    recorded: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("SAFETRAIL_KAFKA_BOOTSTRAP=kafka.internal:9092\n")
    cli_kafka.up_cmd()
    assert recorded["broker"] == []
    assert recorded["settings"].kafka_bootstrap == "kafka.internal:9092"
