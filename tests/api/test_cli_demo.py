"""``safetrail demo`` (what ``make demo`` runs) as a real process: it loads synthetic traffic
through the SDK and collector into an embedded store of its own, prints traces worth opening
and the demo tokens, and never writes to a ClickHouse server or broker the environment names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.common import free_port


def test_when_the_demo_loads_then_it_prints_traces_and_keeps_its_data_apart(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETRAIL_")}
    env.update(
        SAFETRAIL_DEMO="1",
        SAFETRAIL_DATA_DIR=str(tmp_path / "data"),
        # Real-data settings a developer's shell may hold: the demo must ignore both.
        SAFETRAIL_CLICKHOUSE_URL="http://default:@127.0.0.1:9/prod",
        SAFETRAIL_KAFKA_BOOTSTRAP="127.0.0.1:9",
    )
    argv = [sys.executable, "-m", "safetrail.cli", "demo", "--port", str(free_port())]
    argv += ["--customers", "40", "--days", "3", "--exit-after-load"]
    done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        argv, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "(0 rejected)" in out and "Traces worth opening first" in out
    assert "/support/traces/tr_" in out and "demo-support-token" in out
    assert "search the order ID ord_" in out and "/support/guide" in out
    assert (tmp_path / "data" / "demo" / "chdb").is_dir()  # demo/ under SAFETRAIL_DATA_DIR
