"""The redaction benchmark stays runnable and measures what it claims (not a timed test)."""

from __future__ import annotations

import orjson
import pytest

from bench.redaction import reference_events, run
from ingest.process import Accepted, process
from redaction_rules.engine import default_redactor


def test_when_reference_events_are_built_then_they_are_valid_deterministic_and_about_1kb() -> None:
    for mix in ("flows", "unique"):
        events = reference_events(260, mix=mix)
        assert events == reference_events(260, mix=mix)
        sizes = [len(orjson.dumps(event)) for event in events]
        assert 800 <= sum(sizes) / len(sizes) <= 1200, mix
        redactor = default_redactor(b"bench-test-key-0123456789")
        assert all(isinstance(process(event, redactor), Accepted) for event in events)


def test_when_the_benchmark_runs_small_then_it_reports_both_engines_and_the_ratio() -> None:
    result = run(events=130, presidio_events=5, passes=1)
    assert result["safetrail_redact_events_per_s"] > 0
    assert result["safetrail_redact_unique_events_per_s"] > 0
    assert result["safetrail_end_to_end_events_per_s"] > 0
    assert result["presidio_events_per_s"] > 0
    ratio = result["safetrail_redact_events_per_s"] / result["presidio_events_per_s"]
    assert result["ratio_vs_presidio"] == pytest.approx(ratio, rel=0.01)


def test_when_another_process_is_sampled_then_its_busiest_function_is_named() -> None:
    import subprocess
    import sys
    import time

    from bench.common import sampled

    busy = "def spin():\n    while True:\n        sum(range(1000))\nspin()\n"
    child = subprocess.Popen([sys.executable, "-c", busy])  # noqa: S603 - our interpreter
    try:
        time.sleep(0.5)
        with sampled(child.pid) as frames:
            time.sleep(1.5)
    finally:
        child.kill()
        child.wait()
    assert frames, "py-spy (a dev dependency) sampled nothing"
    assert frames[0].startswith("spin (<string>)"), frames
    shares = [int(f.rsplit(" ", 1)[1].rstrip("%")) for f in frames]
    assert sum(shares) <= 101 and shares == sorted(shares, reverse=True)


def test_when_samples_end_in_native_code_then_the_engine_or_loop_is_named() -> None:
    from bench.common import _own_frames

    raw = (
        "main (app.py:1);Connection.query (chdb/state/sqlitelike.py:756) 6\n"
        "main (app.py:1);Worker.execute_from_commandline (mode/worker.py:264) 3\n"
        "main (app.py:1);work (/srv/app/jobs.py:9) 1\n"
        "a line that is not a sample\n"
    )
    assert _own_frames(raw, 3) == [
        "chDB engine (Connection.query) 60%",
        "faust's event loop (uvloop, native: fetch, tasks, waits) 30%",
        "work (jobs.py) 10%",
    ]
