"""``safetrail migrate`` in-process and ``safetrail serve`` as the one real process it is."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from safetrail.cli import app
from tests.api.conftest import HMAC_KEY, RAW_EMAIL, SERVICE, SUPPORT, TOKENS, recent
from tests.api.conftest import signup_events as seed

ENV: dict[str, str | None] = {
    "SAFETRAIL_HMAC_KEY": HMAC_KEY,
    "SAFETRAIL_API_TOKENS": json.dumps({t: i.model_dump(mode="json") for t, i in TOKENS.items()}),
    "SAFETRAIL_DEMO": "0",
    # embedded mode on a data dir of the test's own, whatever the developer's shell says
    "SAFETRAIL_CLICKHOUSE_URL": None,
    "SAFETRAIL_KAFKA_BOOTSTRAP": None,
}


def test_when_migrating_a_fresh_data_dir_then_schema_and_ttl_are_reported(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["migrate", "--data-dir", str(tmp_path)], env=ENV)
    again = runner.invoke(app, ["migrate", "--data-dir", str(tmp_path)], env=ENV)
    shorter = runner.invoke(
        app, ["migrate", "--data-dir", str(tmp_path)], env={**ENV, "SAFETRAIL_RETENTION_DAYS": "90"}
    )

    assert first.exit_code == 0, first.output
    assert "applied: 0001_timeline, 0002_restricted, 0003_access_log" in first.output
    assert "timeline_events  TTL 400 days" in first.output
    assert again.exit_code == 0 and "schema is up to date" in again.output
    assert shorter.exit_code == 0
    assert "TTL updated to match retention: timeline_events, customer_lookup" in shorter.output
    assert "timeline_events  TTL 90 days   (configured 90 days) ok" in shorter.output
    assert "MISMATCH" not in first.output + again.output + shorter.output


def test_when_the_hmac_key_is_a_placeholder_then_commands_refuse_to_start(tmp_path: Path) -> None:
    env = {**ENV, "SAFETRAIL_HMAC_KEY": "changeme"}
    result = CliRunner().invoke(app, ["migrate", "--data-dir", str(tmp_path)], env=env)
    assert result.exit_code == 2
    assert "configuration error" in result.output and "SAFETRAIL_HMAC_KEY" in result.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(proc: subprocess.Popen[bytes], base: str, log: Path) -> None:
    """Wait until the ``safetrail serve`` in ``proc`` answers ``/healthz`` (its log if it died)."""
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "serve did not become healthy"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``safetrail serve`` in its own process (chDB: one process per data dir)."""
    port = _free_port()
    data_dir = tmp_path_factory.mktemp("serve")
    log = (data_dir / "serve.log").open("wb")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SAFETRAIL_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "safetrail.cli",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        env={**clean, **{k: v for k, v in ENV.items() if v is not None}},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, base, data_dir / "serve.log")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_when_serving_then_one_process_ingests_processes_and_answers(served: str) -> None:
    auth = {"Authorization": f"Bearer {SERVICE}", "Content-Type": "application/json"}
    events = seed("tr_served", "48600", "job_served", recent())
    posted = httpx.post(
        f"{served}/v1/events", content=orjson.dumps(events, default=str), headers=auth, timeout=30
    )
    assert posted.status_code == 202 and posted.json()["accepted"] == 6

    read = {"Authorization": f"Bearer {SUPPORT}"}
    chain = httpx.get(f"{served}/v1/traces/tr_served", headers=read, timeout=30)
    text = httpx.get(f"{served}/v1/traces/tr_served/summary.txt", headers=read, timeout=30)

    assert chain.status_code == 200
    assert chain.json()["summary"]["status"] == "failed"
    assert "Job: job_served (Signup email, failed)" in text.text
    assert RAW_EMAIL not in chain.text + text.text
    assert httpx.get(f"{served}/docs", timeout=30).status_code == 200
