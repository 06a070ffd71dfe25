"""Faults the embedded path must survive: the API process killed with -9 during ingest, and
ClickHouse writes failing under the collector. After recovery exactly the accepted events are
queryable, none twice. (kill -9 of processor and projector and a 3-broker cluster with a
broker killed are in tests/kafka/.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from bench.common import descendants
from ingest.journal import IngestJournal, journal_dir
from ingest.schema import TimelineEvent
from projectors.retention import RetentionPolicy
from projectors.store import Store
from query_api.app import create_app
from tests.api.conftest import HMAC_KEY, SERVICE, SUPPORT, api_settings, recent
from tests.kafka_fixtures import free_port
from tests.store_fixtures import open_store

BATCH = 200


def _batches(count: int, tag: str) -> list[list[dict[str, Any]]]:
    at = recent(60).isoformat()
    events = [
        {
            "event_id": f"ev_{tag}{i:06d}",
            "trace_id": f"tr_{tag}{i // 4:06d}",
            "type": "signup.submitted",
            "occurred_at": at,
            "source": "web",
            "actor": "customer",
            "subject": {"customer_id": str(600000 + i // 4)},
            "data": {"email": f"kill{i}@example.com", "plan": "team"},
        }
        for i in range(count)
    ]
    return [events[i : i + BATCH] for i in range(0, count, BATCH)]


class Server:
    """``safetrail serve`` as a child process on one data directory."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir, self.log = data_dir, log
        self.child: subprocess.Popen[bytes] | None = None
        self.base = ""

    def start(self) -> None:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETRAIL_")}
        tokens = {
            SERVICE: {"name": "svc", "role": "service"},
            SUPPORT: {"name": "sup", "role": "support"},
        }
        env.update(SAFETRAIL_HMAC_KEY=HMAC_KEY, SAFETRAIL_API_TOKENS=orjson.dumps(tokens).decode())
        argv = [sys.executable, "-m", "safetrail.cli", "serve", "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--data-dir", str(self.data_dir)]
        self.child = subprocess.Popen(
            argv, env=env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT
        )
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.child.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("serve did not come up")

    def stop(self, sig: int) -> None:
        assert self.child is not None
        self.child.send_signal(sig)
        self.child.wait(60)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "data", tmp_path / "serve.log")
    yield s
    if s.child is not None and s.child.poll() is None:
        s.stop(signal.SIGTERM)


def _send(
    base: str, batches: Sequence[list[dict[str, Any]]], acked: set[int], stop: threading.Event
) -> None:
    headers = {"Authorization": f"Bearer {SERVICE}", "Content-Type": "application/json"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for index, batch in enumerate(batches):
            if index in acked:
                continue
            if stop.is_set():
                return
            try:
                r = client.post("/v1/events", content=orjson.dumps(batch))
            except httpx.HTTPError:
                return  # the server died mid-request: this batch is unacknowledged
            if r.status_code == 202 and r.json()["accepted"] == len(batch):
                acked.add(index)


def _wait_gone(pids: set[int], seconds: float = 15) -> None:
    """Processes the killed API started must exit on their own (nothing left running)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = {p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)}
        if not alive:
            return
        time.sleep(0.2)
    raise AssertionError(f"processes of the killed API still running: {sorted(alive)}")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def test_when_the_api_is_killed_mid_load_then_resending_unacked_batches_stores_each_once(
    server: Server, tmp_path: Path
) -> None:
    batches = _batches(12_000, "k9")
    acked: set[int] = set()
    kills = 0
    started: set[int] = set()
    for kill_after in (0.8, 1.5, 0.5):
        server.start()
        stop = threading.Event()
        sender = threading.Thread(target=_send, args=(server.base, batches, acked, stop))
        before = len(acked)
        sender.start()
        time.sleep(kill_after)
        assert server.child is not None
        helpers = set(descendants(server.child.pid))  # fork server and processing workers
        started |= helpers
        server.stop(signal.SIGKILL)
        kills += 1
        _wait_gone(helpers)
        stop.set()
        sender.join(60)
        assert len(acked) < len(batches), "the kill came after the load; nothing was tested"
        assert len(acked) >= before
    server.start()
    stop = threading.Event()
    _send(server.base, batches, acked, stop)  # resend everything not acknowledged
    assert acked == set(range(len(batches)))
    sample = [f"tr_k9{n:06d}" for n in (0, 777, 1499, 2999)]
    for trace in sample:
        r = httpx.get(
            f"{server.base}/v1/traces/{trace}", headers={"Authorization": f"Bearer {SUPPORT}"}
        )
        ids = [e["event_id"] for e in r.json()["events"]]
        assert len(ids) == len(set(ids)) == 4, (trace, ids)
    server.stop(signal.SIGTERM)
    store = Store.open(f"chdb://{(tmp_path / 'data' / 'chdb').resolve()}", RetentionPolicy())
    try:
        assert store.counts().timeline_events == 12_000
    finally:
        store.close()
    assert kills == 3
    assert started, "no processing worker was running at any kill; the pool went untested"


class FlakyStore:
    """A real store whose timeline inserts fail on a schedule (disk full, server restarting)."""

    def __init__(self, store: Store, fail_every: int) -> None:
        self._store, self._every, self.calls, self.failures = store, fail_every, 0, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def insert_timeline(self, events: Sequence[TimelineEvent], **kw: Any) -> None:
        self.calls += 1
        if self.calls % self._every == 0:
            self.failures += 1
            raise ConnectionError("ClickHouse: Code: 243. NOT_ENOUGH_SPACE (injected)")
        self._store.insert_timeline(events, **kw)


def test_when_writes_fail_without_a_journal_then_503_with_reason_and_retries_store_each_once(
    tmp_path: Path,
) -> None:
    # Without the ingest journal (a ClickHouse server; here the journal directory is held by
    # someone else), a request is answered only after its insert: a failed insert is a 503.
    real = open_store(tmp_path)
    assert real.chdb_directory is not None
    held = IngestJournal(journal_dir(real.chdb_directory))
    flaky = FlakyStore(real, fail_every=3)
    batches = _batches(4_000, "ch")
    try:
        app = create_app(api_settings(tmp_path / "api"), store=flaky)  # type: ignore[arg-type]
        headers = {"Authorization": f"Bearer {SERVICE}", "Content-Type": "application/json"}
        refused = 0
        with TestClient(app) as client:
            for batch in batches:
                for _attempt in range(5):
                    r = client.post("/v1/events", content=orjson.dumps(batch), headers=headers)
                    if r.status_code == 202:
                        break
                    assert r.status_code == 503, r.text
                    assert r.json()["error"] == "ingest_unavailable" and r.json()["message"]
                    refused += 1
                else:
                    pytest.fail("never accepted")
        assert flaky.failures > 0 and refused == flaky.failures
        assert real.counts().timeline_events == 4_000
        trace = real.trace_events("tr_ch000123")
        assert len(trace) == len({e.event_id for e in trace}) == 4
    finally:
        held.close()
        real.close()


def test_when_clickhouse_writes_fail_behind_the_journal_then_every_acked_event_is_stored_once(
    tmp_path: Path,
) -> None:
    # With the journal, a request is answered once its events are journaled; failed inserts
    # are retried by the shipper, and a read waits until what was acknowledged is stored.
    real = open_store(tmp_path)
    flaky = FlakyStore(real, fail_every=2)
    batches = _batches(4_000, "jr")
    try:
        app = create_app(api_settings(tmp_path / "api"), store=flaky)  # type: ignore[arg-type]
        headers = {"Authorization": f"Bearer {SERVICE}", "Content-Type": "application/json"}
        support = {"Authorization": f"Bearer {SUPPORT}"}
        with TestClient(app) as client:
            for index, batch in enumerate(batches):
                r = client.post("/v1/events", content=orjson.dumps(batch), headers=headers)
                assert r.status_code == 202 and r.json()["accepted"] == len(batch), r.text
                if index % 4 == 3:  # read the batch's last trace: all four events, once each
                    trace = batch[-1]["trace_id"]
                    events = client.get(f"/v1/traces/{trace}", headers=support).json()["events"]
                    assert sorted(e["event_id"] for e in events) == [
                        e["event_id"] for e in batch if e["trace_id"] == trace
                    ]
        assert flaky.failures > 0
        assert real.counts().timeline_events == 4_000
        trace_events = real.trace_events("tr_jr000123")
        assert len(trace_events) == len({e.event_id for e in trace_events}) == 4
    finally:
        real.close()
