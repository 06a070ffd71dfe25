"""Planted canaries through the embedded pipeline; every output is scanned for them.

Events carry generated emails, phones, cards, IBANs, tokens and IPs in kept fields, error
messages, free text and debug blobs (``canary_events``). Outputs scanned: API JSON (trace,
job, customer timeline), summary.txt, CSV, the support HTML pages, every log record emitted
meanwhile, /metrics, and all rows of the support-facing tables (timeline_events, trace_index,
subject_index, customer_lookup). The raw and dead-letter tables are the restricted copies by
design and are not support outputs. The Kafka path: ``test_kafka_leaks``.
20,000 events in ``make test``; 100,000 under ``make soak``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from projectors.store import Store
from query_api.app import create_app
from tests.api.conftest import ADMIN, SERVICE, SUPPORT, api_settings
from tests.redaction.canaries import Canary
from tests.reliability.canary_events import (
    PER_TRACE,
    canary_events,
    leaks,
    row_leaks,
    table_rows,
)
from tests.store_fixtures import open_store

BATCH = 1000


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _run(tmp: Path, count: int, seed: int, sample_traces: int) -> None:
    events, planted = canary_events(count, seed)
    capture = _Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.INFO)  # what a server logs by default
    store: Store = open_store(tmp)
    try:
        settings = api_settings(tmp / "api")
        with TestClient(create_app(settings, store=store)) as client:
            svc = {"Authorization": f"Bearer {SERVICE}", "Content-Type": "application/json"}
            accepted = 0
            for i in range(0, count, BATCH):
                r = client.post(
                    "/v1/events", content=orjson.dumps(events[i : i + BATCH]), headers=svc
                )
                assert r.status_code == 202, r.text[:300]
                accepted += r.json()["accepted"]
            assert accepted == count  # every canary-carrying event made it to the timeline
            outputs = _api_outputs(client, planted, sample_traces, seed)
            metrics = client.get("/metrics").text
        rows = table_rows(store)
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
        store.close()
    everything = [c for cs in planted.values() for c in cs]
    found: list[str] = []
    for trace, text in outputs.items():
        found += [f"{trace} {leak}" for leak in leaks(text, planted[trace])]
    found += row_leaks(rows, planted, seed)
    found += [f"log {leak}" for leak in leaks("\n".join(capture.lines), everything)]
    found += [f"metrics {leak}" for leak in leaks(metrics, everything)]
    assert len(rows) >= count // PER_TRACE
    assert not found, found[:20]


def _api_outputs(
    client: TestClient, planted: dict[str, list[Canary]], sample: int, seed: int
) -> dict[str, str]:
    """Every API and page view of ``sample`` traces (spread over the run), keyed by trace."""
    traces = sorted(planted)
    step = max(1, len(traces) // sample)
    bearer = {"Authorization": f"Bearer {SUPPORT}"}
    login = client.post("/support/login", data={"token": ADMIN, "next": "/support"})
    assert login.status_code in (200, 303), login.text[:300]
    out: dict[str, str] = {}
    for trace in traces[::step]:
        n = int(trace.rsplit("x", 1)[1])
        customer, job = str(700000 + n), f"job_leak{seed}x{n}"
        urls = [
            f"/v1/traces/{trace}",
            f"/v1/traces/{trace}/summary.txt",
            f"/v1/jobs/{job}",
            f"/v1/customers/{customer}/timeline",
            f"/v1/customers/{customer}/timeline.csv",
        ]
        pages = [
            f"/support/traces/{trace}",
            f"/support/jobs/{job}",
            f"/support/customers/{customer}",
            f"/support/customers/{customer}.csv",
        ]
        texts = []
        for url in urls:
            r = client.get(url, headers=bearer)
            assert r.status_code == 200, (url, r.status_code)
            texts.append(r.text)
        for url in pages:
            r = client.get(url)
            assert r.status_code == 200, (url, r.status_code)
            texts.append(r.text)
        out[trace] = "\n".join(texts)
    assert len(out) >= min(sample, len(traces))
    return out


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def test_when_20k_canary_events_pass_then_no_output_holds_a_canary(work: Path) -> None:
    _run(work, 20_000, seed=11, sample_traces=60)


@pytest.mark.soak
def test_soak_when_100k_canary_events_pass_then_no_output_holds_a_canary(work: Path) -> None:
    _run(work, 100_000, seed=12, sample_traces=300)
