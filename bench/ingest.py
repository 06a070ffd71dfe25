"""Embedded ingest: events/s through ``POST /v1/events`` until queryable, with a baseline.

A real ``safetrail serve`` process (chDB, embedded collector) runs on 127.0.0.1; client threads
in this process post the reference mix (``bench.redaction.reference_events``) in batches. An
answer means durable (synced to the ingest journal); the run ends when the last trace is
readable through the API (a read waits until every answered event is inserted). The
baseline in the same run is the storage-only insert rate: the same events, already redacted,
bulk-inserted into a separate chDB store with ``Store.insert_timeline``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.common import (
    free_port,
    proc_cpu_seconds,
    proc_peak_rss_mb,
    sampled,
    top_frames,
    tree_cpu_seconds,
)
from bench.redaction import reference_events
from ingest.process import Accepted, process
from ingest.schema import TimelineEvent
from projectors.retention import RetentionPolicy
from projectors.store import Store
from redaction_rules.engine import Redactor, load_rules

SERVICE, SUPPORT = "bench-service-token", "bench-support-token"
HMAC_KEY = "bench-hmac-key-0123456789"
TARGET = 20_000


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETRAIL_")}
    tokens = {
        SERVICE: {"name": "bench-service", "role": "service"},
        SUPPORT: {"name": "bench-support", "role": "support"},
    }
    env.update(
        SAFETRAIL_HMAC_KEY=HMAC_KEY,
        SAFETRAIL_API_TOKENS=orjson.dumps(tokens).decode(),
        SAFETRAIL_DATA_DIR=str(data_dir),
    )
    return env


def start_server(data_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``safetrail serve`` on a free 127.0.0.1 port; wait for /healthz."""
    port = free_port()
    argv = [sys.executable, "-m", "safetrail.cli", "serve", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--data-dir", str(data_dir)]
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        argv, env=_env(data_dir), stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"safetrail serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return child, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    child.kill()
    raise RuntimeError("safetrail serve did not become healthy in 60 s")


def stop_server(child: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """Stop a server from ``start_server`` (SIGTERM, then SIGKILL after ``seconds``)."""
    child.terminate()
    try:
        child.wait(seconds)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(10)


def _post_all(base: str, bodies: Sequence[bytes], threads: int) -> tuple[int, float]:
    """Post every body from ``threads`` clients; (accepted, seconds until the last answer)."""
    accepted = 0
    lock = threading.Lock()
    cursor = iter(range(len(bodies)))
    errors: list[str] = []

    def worker() -> None:
        nonlocal accepted
        headers = {"Authorization": f"Bearer {SERVICE}", "Content-Type": "application/json"}
        with httpx.Client(base_url=base, timeout=120, headers=headers) as client:
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                response = client.post("/v1/events", content=bodies[index])
                if response.status_code != 202:
                    errors.append(f"{response.status_code} {response.text[:200]}")
                    return
                with lock:
                    accepted += int(response.json()["accepted"])

    start = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise RuntimeError(f"ingest failed: {errors[0]}")
    return accepted, time.perf_counter() - start


def _wait_queryable(base: str, trace_id: str, expected: int, timeout: float = 60) -> float:
    start = time.perf_counter()
    headers = {"Authorization": f"Bearer {SUPPORT}"}
    while time.perf_counter() - start < timeout:
        r = httpx.get(f"{base}/v1/traces/{trace_id}", headers=headers, timeout=30)
        if r.status_code == 200 and len(r.json().get("events", [])) >= expected:
            return time.perf_counter() - start
        time.sleep(0.01)
    raise RuntimeError(f"trace {trace_id} not queryable after {timeout}s")


def _commits(base: str) -> tuple[float, float]:
    """(events per store insert, ms per insert) so far, from the server's metrics."""
    values: dict[str, float] = {}
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line.startswith("safetrail_group_commit_"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    count = values.get("safetrail_group_commit_events_count", 0.0)
    if not count:
        return 0.0, 0.0
    events = values["safetrail_group_commit_events_sum"] / count
    return events, values["safetrail_group_commit_seconds_sum"] / count * 1000


def _storage_baseline(events: Sequence[TimelineEvent], batch: int) -> float:
    """Events/s of bulk inserts of already-redacted events into a fresh chDB store."""
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        store = Store.open(f"chdb://{tmp}/chdb", RetentionPolicy())
        try:
            store.migrate()
            start = time.perf_counter()
            for i in range(0, len(events), batch):
                store.insert_timeline(events[i : i + batch])
            return len(events) / (time.perf_counter() - start)
        finally:
            store.close()


def run(events: int = 60_000, batch: int = 500, threads: int = 4) -> dict[str, Any]:
    """Measure the embedded ingest rate and the storage-only baseline."""
    raw = reference_events(events)
    bodies = [orjson.dumps(raw[i : i + batch]) for i in range(0, events, batch)]
    redactor = Redactor(load_rules(), HMAC_KEY.encode())
    routed = [process(orjson.dumps(e), redactor) for e in raw]
    timeline = [r.timeline for r in routed if isinstance(r, Accepted)]
    last = timeline[-1]
    last_trace_events = sum(1 for t in timeline if t.trace_id == last.trace_id)

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        child, base = start_server(Path(tmp) / "data", Path(tmp) / "serve.log")
        try:
            # Warm-up: the first large request starts the processing workers.
            _post_all(base, bodies[:2], 1)
            cpu0 = proc_cpu_seconds(child.pid) or 0.0
            workers0 = tree_cpu_seconds(child.pid)
            with sampled(child.pid) as api_frames:
                accepted, acked_s = _post_all(base, bodies[2:], threads)
            queryable_s = _wait_queryable(base, last.trace_id, last_trace_events)
            cpu1 = proc_cpu_seconds(child.pid) or 0.0
            workers1 = tree_cpu_seconds(child.pid)
            server_rss = proc_peak_rss_mb(child.pid)
            commits = _commits(base)
        finally:
            stop_server(child)
    wall = acked_s + queryable_s
    rate = accepted / wall
    server_cores = (cpu1 - cpu0) / wall
    worker_cores = (workers1 - workers0) / wall
    baseline = _storage_baseline(timeline, 5_000)
    sample = [orjson.dumps(e) for e in raw[:3000]]
    frames = top_frames(lambda: [process(p, redactor) for p in sample])
    per_commit, commit_ms = commits
    limit = (
        f"{server_cores + worker_cores:.2f} of 2 cores busy: API process {server_cores:.2f} "
        f"(HTTP, the ingest journal, and the shipper's inserts into chDB with their merges: "
        f"{per_commit:,.0f} events and {commit_ms:.0f} ms per insert on average; sampled own "
        "time: "
        f"{'; '.join(api_frames) or 'not sampled'}), processing workers {worker_cores:.2f}; "
        f"the client threads share the same 2 cores; per-event CPU in the process step: "
        f"{'; '.join(frames[:3])}"
    )
    return {
        "events": events,
        "accepted": accepted,
        "batch": batch,
        "client_threads": threads,
        "events_per_s": round(rate, 1),
        "ack_seconds": round(acked_s, 2),
        "last_ack_to_queryable_ms": round(queryable_s * 1000, 1),
        "storage_only_events_per_s": round(baseline, 1),
        "events_per_group_commit": round(per_commit, 1),
        "group_commit_ms": round(commit_ms, 1),
        "api_process_cpu_cores": round(server_cores, 2),
        "worker_processes_cpu_cores": round(worker_cores, 2),
        "api_process_peak_rss_mb": server_rss,
        "target_events_per_s": TARGET,
        "limited_by": limit,
    }


if __name__ == "__main__":
    print(orjson.dumps(run(events=10_000), option=orjson.OPT_INDENT_2).decode())
