"""Planted canaries through the embedded pipeline; every output is scanned for them.

Events carry generated emails, phones, cards, IBANs, tokens and IPs in kept fields, error
messages, free text and debug blobs. Outputs scanned: API JSON (trace, job, customer timeline),
summary.txt, CSV, the support HTML pages, every log record emitted meanwhile, /metrics, and all
rows of the support-facing tables (timeline_events, trace_index, subject_index, customer_lookup).
The raw and dead-letter tables are the restricted copies by design and are not support outputs.
20,000 events in ``make test``; 100,000 under ``make soak``.
"""

from __future__ import annotations

import logging
import random
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from projectors.store import Store
from query_api.app import create_app
from tests.api.conftest import ADMIN, SERVICE, SUPPORT, api_settings, recent
from tests.redaction.canaries import MAKERS, Canary
from tests.store_fixtures import open_store

KINDS = ("email", "phone", "card", "iban", "token", "ip")
PER_TRACE = 5
BATCH = 1000


def _events(count: int, seed: int) -> tuple[list[dict[str, Any]], dict[str, list[Canary]]]:
    rnd = random.Random(seed)
    events, planted = [], defaultdict(list)
    at = recent(120)
    for i in range(count):
        trace = f"tr_leak{seed}x{i // PER_TRACE:06d}"
        customer = str(700000 + i // PER_TRACE)
        a, b, c = (MAKERS[KINDS[(i + k) % len(KINDS)]](rnd) for k in range(3))
        planted[trace] += [a, b, c]
        common = {
            "event_id": f"ev_leak{seed}x{i:07d}",
            "trace_id": trace,
            "occurred_at": at.isoformat(),
            "subject": {
                "customer_id": customer,
                "job_id": f"job_leak{seed}x{i // PER_TRACE}",
                "order_id": f"ord_leak{seed}x{i // PER_TRACE}",  # so subject_index has rows
            },
        }
        if i % 2:
            events.append(
                {
                    **common,
                    "type": "signup_email.retry",
                    "source": "mail-worker",
                    "status": "running",
                    "attempt": 2,
                    "data": {
                        "to": a.value if a.kind == "email" else f"x{i}@example.com",
                        "smtp_response": f"421 try later for {a.text}",
                        "template": "signup_verification",
                        "debug": {"note": c.text, "headers": {"authorization": b.text}},
                    },
                    "error": {"code": "SMTP_421", "message": f"deferred: {b.text}"},
                }
            )
        else:
            events.append(
                {
                    **common,
                    "type": "signup.submitted",
                    "source": "web",
                    "actor": "customer",
                    "status": "done",
                    "data": {
                        "email": a.value if a.kind == "email" else f"y{i}@example.com",
                        "plan": "team",
                        "referrer": f"https://example.net/c?token={b.text}",
                        "comment": f"my card {c.text} please",
                    },
                }
            )
    return events, planted


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


# Keyed HMACs and hashes (lookup keys, ids): 32+ hex characters carry no value, but a short
# hex-only fragment of a canary can occur in one by chance.
_HEX_RUN = re.compile(r"[0-9a-f]{32,}")


def _leaks(text: str, canaries: list[Canary]) -> list[str]:
    text = _HEX_RUN.sub("#", text)
    return [f"{c.kind}:{s}" for c in canaries for s in c.forbidden if s in text]


def _run(tmp: Path, count: int, seed: int, sample_traces: int) -> None:
    events, planted = _events(count, seed)
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
        rows = _table_rows(store)
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
        store.close()
    everything = [c for cs in planted.values() for c in cs]
    found: list[str] = []
    for trace, text in outputs.items():
        found += [f"{trace} {leak}" for leak in _leaks(text, planted[trace])]
    for key, text in rows.items():
        # A customer's lookup rows are checked against the canaries of that customer's trace.
        trace = key
        if key.startswith("customer:"):
            trace = f"tr_leak{seed}x{int(key.split(':')[1]) - 700000:06d}"
        found += [f"row {key} {leak}" for leak in _leaks(text, planted[trace])]
    found += [f"log {leak}" for leak in _leaks("\n".join(capture.lines), everything)]
    found += [f"metrics {leak}" for leak in _leaks(metrics, everything)]
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


def _table_rows(store: Store) -> dict[str, str]:
    """All support-facing rows as text, grouped by trace (customer_lookup by customer)."""
    grouped: dict[str, list[str]] = defaultdict(list)
    with store._pool.client() as c:  # noqa: SLF001 - reading every row, not an API view
        for table in ("timeline_events", "trace_index", "subject_index"):
            result = c.query(f"SELECT trace_id, * FROM {table}")  # noqa: S608
            assert result.result_rows, f"{table} is empty: scanning it would prove nothing"
            for row in result.result_rows:
                grouped[str(row[0])].append(repr(row))
        for row in c.query("SELECT customer_id, * FROM customer_lookup").result_rows:
            grouped[f"customer:{row[0]}"].append(repr(row))
    return {k: "\n".join(v) for k, v in grouped.items()}


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def test_when_20k_canary_events_pass_then_no_output_holds_a_canary(work: Path) -> None:
    _run(work, 20_000, seed=11, sample_traces=60)


@pytest.mark.soak
def test_soak_when_100k_canary_events_pass_then_no_output_holds_a_canary(work: Path) -> None:
    _run(work, 100_000, seed=12, sample_traces=300)
