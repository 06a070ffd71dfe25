"""Query latency with 10 million stored events, bytes per stored event, peak memory.

The events are generated inside ClickHouse (``INSERT ... SELECT FROM numbers()``) straight into
the real ``timeline_events`` table created by ``projectors/migrations``, so its materialized
views fill ``trace_index`` and ``customer_lookup`` as they do in production. Shape: traces of 8
events (2 customer-lane, 6 system-lane; the last 4 belong to one job), 100,000 customers with
about 100 events each, spread over 300 days, realistic redacted field maps. Reads go through the
real API routes of a ``safetrail serve`` process on the loaded data, over HTTP on 127.0.0.1, a
trace, a job and a customer timeline page (100 events) picked at random each time; the same
reads straight on the store (no HTTP) are timed too; every read also writes its access-log
entry durably before it answers, as in production (on chDB: synced to the access journal,
stored in ``access_log`` by the shipper; see ``projectors/access_writer.py``).

Before the reads, the parts the bulk load left are merged (``OPTIMIZE ... FINAL``): a production
table loaded over months has long been merged by background merges, which a freshly bulk-loaded
one has not. The figures say so, and how many active parts the reads met.
"""

from __future__ import annotations

import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.common import own_peak_rss_mb, percentiles, proc_peak_rss_mb, top_frames
from bench.ingest import SUPPORT, start_server, stop_server
from projectors.reads import TimelineQuery
from projectors.retention import RetentionPolicy
from projectors.rows import VIEW_PACKED_COLUMNS
from projectors.store import Store

CUSTOMERS = 100_000
PER_TRACE = 8
TARGETS_MS = {"trace": 20.0, "job": 50.0, "customer": 50.0}
# Requests each route answers for other records before the timed ones (see _route_latencies).
WARM_UP = 100

_TYPES = (
    "['signup.submitted','account.created','signup_email.queued','signup_email.started',"
    "'signup_email.retry','signup_email.retry','signup_email.retry','signup_email.bounced']"
)
_LABELS = (
    "['Customer submitted signup form','Account created','Signup email queued',"
    "'Signup email started','Signup email retry','Signup email retry','Signup email retry',"
    "'Signup email bounced']"
)

# The view column as the store writes it (``rows.timeline_columns``): the shown columns as a JSON
# array, ``occurred_at`` in microseconds.
_PACKED = ", ".join(
    "toUnixTimestamp64Micro(occurred_at)" if c == "occurred_at" else c for c in VIEW_PACKED_COLUMNS
)

# One statement per chunk; {start} and {count} select the event numbers.
_INSERT = f"""
INSERT INTO timeline_events
SELECT
    concat('ev_', lower(hex(sipHash64(number)))) AS event_id,
    concat('tr_', lower(hex(intHash64(intDiv(number, {PER_TRACE}))))) AS trace_id,
    arrayElement({_TYPES}, toUInt32(number % {PER_TRACE}) + 1) AS type,
    arrayElement({_LABELS}, toUInt32(number % {PER_TRACE}) + 1) AS label,
    if(number % {PER_TRACE} < 2, 'customer', 'system') AS lane,
    now64(6) - toIntervalSecond((intDiv(number, {PER_TRACE}) * 21) % 25920000)
        + toIntervalSecond(number % {PER_TRACE}) AS occurred_at,
    arrayElement(['web','api','mail-worker','mail-worker','mail-worker','mail-worker',
                  'mail-worker','mail-worker'], toUInt32(number % {PER_TRACE}) + 1) AS source,
    if(number % {PER_TRACE} = 7, 'failed', 'done') AS status,
    if(number % {PER_TRACE} >= 4, toUInt16(number % {PER_TRACE} - 3), NULL) AS attempt,
    if(number % {PER_TRACE} = 7, 'SMTP_550', '') AS error_code,
    if(number % {PER_TRACE} = 7, 'Recipient mailbox does not exist', '') AS reason,
    toString(1000000 + intDiv(number, {PER_TRACE}) % {CUSTOMERS}) AS customer_id,
    '' AS workspace_id,
    '' AS order_id,
    if(number % {PER_TRACE} >= 4,
       concat('job_', lower(hex(intHash32(intDiv(number, {PER_TRACE}))))), '') AS job_id,
    concat('req_', lower(hex(intHash32(intDiv(number, {PER_TRACE}) + 7)))) AS request_id,
    map('to', concat(substring(lower(hex(sipHash64(intDiv(number, {PER_TRACE})))), 1, 1),
                     '***.s*****@gmail.com'),
        'template', 'signup_verification', 'provider', 'postmark',
        'provider_message_id', lower(hex(sipHash64(number, 1)))) AS fields,
    map('to', 'signup_email.*:to', 'template', 'signup_email.*:template',
        'provider', 'signup_email.*:provider',
        'provider_message_id', 'signup_email.*:provider_message_id') AS field_rules,
    if(number % {PER_TRACE} = 0,
       [lower(hex(MD5(toString(intDiv(number, {PER_TRACE}) % {CUSTOMERS}))))],
       []) AS lookup_keys,
    toUInt32(3) AS dropped,
    'rs_bench' AS rules_version,
    toUInt8(1) AS schema_version,
    now64(6) AS ingested_at,
    toJSONString(tuple({_PACKED})) AS view
FROM numbers({{start}}, {{count}})
"""  # noqa: S608 - constants only, no input


def fill(store: Store, events: int, chunk: int = 2_000_000) -> float:
    """Insert ``events`` generated events; returns the seconds it took."""
    client = store._pool  # noqa: SLF001 - the bench drives the engine directly for bulk load
    start = time.perf_counter()
    with client.client() as c:
        for first in range(0, events, chunk):
            c.command(_INSERT.format(start=first, count=min(chunk, events - first)))
    return time.perf_counter() - start


def settle(store: Store) -> float:
    """Merge what the bulk load left, as background merges do over the hours after a load.

    Partitions of the timeline are merged two at a time (one per core); the trace index
    and the lookup table after. Returns the seconds it took.
    """
    client = store._pool  # noqa: SLF001 - maintenance statements on the bench's own engine
    with client.client() as c:
        partitions = c.query(
            "SELECT DISTINCT partition_id FROM system.parts WHERE active "
            "AND database = currentDatabase() AND table = 'timeline_events' ORDER BY 1"
        ).result_rows
    statements = [
        f"OPTIMIZE TABLE timeline_events PARTITION ID '{p}' FINAL" for (p,) in partitions
    ] + ["OPTIMIZE TABLE trace_index FINAL", "OPTIMIZE TABLE customer_lookup FINAL"]

    def run(statement: str) -> None:
        with client.client() as c:
            c.command(statement)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(run, statements))
    return time.perf_counter() - start


def _disk(store: Store) -> dict[str, int]:
    with store._pool.client() as c:  # noqa: SLF001
        rows = c.query(
            "SELECT table, sum(bytes_on_disk), sum(rows) FROM system.parts "
            "WHERE active AND database = currentDatabase() GROUP BY table"
        ).result_rows
    return {str(t): int(b) for t, b, _ in rows}


def run(events: int = 10_000_000, samples: int = 300) -> dict[str, Any]:
    """Load ``events``, time the store reads in this process, then the three routes through a
    ``safetrail serve`` on the same data over HTTP (chDB opens a data directory in one process
    at a time, so the two phases take turns)."""
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        store = Store.open(f"chdb://{tmp}/chdb", RetentionPolicy())
        try:
            store.migrate()
            load_s = fill(store, events)
            loaded_parts = _parts(store)
            settle_s = settle(store)
            disk = _disk(store)
            ids = _ids(store, rng, events // PER_TRACE, samples)
            warm = _ids(store, rng, events // PER_TRACE, WARM_UP)
            engine = _engine_latencies(store, ids)
            audit = _audit_latencies(store, ids["trace"][:40])
            frames = {
                kind: top_frames(_batch(fn, ids[kind][:20]), limit=2)
                for kind, fn in _readers(store).items()
            }
            parts = _parts(store)
        finally:
            store.close()
        latencies, server_rss = _route_latencies(Path(tmp), ids, warm)
    result: dict[str, Any] = {
        "events": events,
        "load_seconds": round(load_s, 1),
        "load_events_per_s": round(events / load_s),
        "samples_per_query": samples,
        "warm_up_requests_per_route": WARM_UP,
        "bytes_on_disk": disk,
        "bytes_per_event_timeline": round(disk.get("timeline_events", 0) / events, 1),
        "bytes_per_event_all_tables": round(sum(disk.values()) / events, 1),
        "peak_rss_mb": own_peak_rss_mb(),
        "api_process_peak_rss_mb": server_rss,
        "timeline_parts_after_load": loaded_parts,
        "settle_seconds": round(settle_s, 1),
        "timeline_active_parts": parts,
        "access_log_write_p50_ms": percentiles(audit)["p50_ms"],
    }
    write_ms = result["access_log_write_p50_ms"]
    for kind, values in latencies.items():
        stats = percentiles(values)
        result[f"{kind}_p50_ms"] = stats["p50_ms"]
        result[f"{kind}_p99_ms"] = stats["p99_ms"]
        result[f"{kind}_target_p99_ms"] = TARGETS_MS[kind]
        result[f"{kind}_engine_p50_ms"] = percentiles(engine[kind])["p50_ms"]
        read_ms = result[f"{kind}_engine_p50_ms"]
        first = (
            "access-log write" if write_ms > read_ms else f"ClickHouse read ({STATEMENTS[kind]})"
        )
        if read_ms < stats["p50_ms"] / 2:
            # Most of the time is the request around the read (HTTP, the app, the client).
            first = f"the request around the read (HTTP, routing, JSON) and the {first}"
        result[f"limited_by_{kind}"] = (
            f"{first}, of {stats['p50_ms']} ms p50 over HTTP: the read alone is {read_ms} ms, "
            f"the access-log write it waits for (synced to the access journal, run alongside "
            f"the read) {write_ms} ms; chDB, {parts} active timeline parts after merging the "
            f"{loaded_parts} the bulk load left (OPTIMIZE FINAL, {round(settle_s)} s, standing "
            "in for hours of background merges); own time: " + "; ".join(frames[kind])
        )
    result["limited_by"] = result["limited_by_customer"]
    return result


def _paths(ids: dict[str, list[str]]) -> dict[str, list[str]]:
    return {
        "trace": [f"/v1/traces/{t}" for t in ids["trace"]],
        "job": [f"/v1/jobs/{j}" for j in ids["job"]],
        "customer": [f"/v1/customers/{c}/timeline?limit=100" for c in ids["customer"]],
    }


def _route_latencies(
    data_dir: Path, ids: dict[str, list[str]], warm: dict[str, list[str]]
) -> tuple[dict[str, list[float]], float | None]:
    """Each read through ``safetrail serve`` on ``data_dir`` over HTTP on 127.0.0.1, one at a
    time on a kept-alive connection, as a support page or script asks; and the server's peak
    memory.

    A server that has just opened the store still fills the engine's caches (marks, primary
    index) on its first reads: on a 2 M-event store the first 100 trace reads had a p99 of
    54 ms, the next five hundreds 24-28 ms. A support team's server has been up for hours, so
    each route first answers ``WARM_UP`` requests for other records (not the timed ones)."""
    paths, warm_paths = _paths(ids), _paths(warm)
    latencies: dict[str, list[float]] = {kind: [] for kind in paths}
    child, base = start_server(data_dir, data_dir / "serve.log")
    try:
        headers = {"Authorization": f"Bearer {SUPPORT}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            for kind, urls in paths.items():
                for url in warm_paths[kind]:
                    client.get(url)
                for url in urls:
                    t0 = time.perf_counter()
                    r = client.get(url)
                    latencies[kind].append((time.perf_counter() - t0) * 1000)
                    if r.status_code != 200:
                        raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")
        return latencies, proc_peak_rss_mb(child.pid)
    finally:
        stop_server(child, 60)  # closing a 10 M-event store takes longer


def _batch(fn: Any, values: list[str]) -> Any:
    return lambda: [fn(v) for v in values]


# What each read runs in ClickHouse (see projectors/reads.py).
STATEMENTS = {
    "trace": "trace index and timeline, read at the same time on two connections",
    "job": "job's index rows, then the timeline within their time bounds",
    "customer": "one statement: page and count over the customer projection",
}


def _readers(store: Store) -> dict[str, Any]:
    """The store calls behind the three routes."""
    return {
        "trace": store.trace_view,
        "job": store.job_view,
        "customer": lambda c: store.customer_page(c, TimelineQuery(limit=101)),
    }


def _audit_latencies(store: Store, record_ids: list[str]) -> list[float]:
    """The access-log write alone, as each read does it (one at a time)."""
    out = []
    for record_id in record_ids:
        t0 = time.perf_counter()
        store.log_access(
            actor="bench",
            role="support",
            route="/v1/traces/{trace_id}",
            record_kind="trace",
            record_id=record_id,
        )
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _engine_latencies(store: Store, ids: dict[str, list[str]]) -> dict[str, list[float]]:
    """The same reads as the API's, straight on the store (no HTTP, no rendering)."""
    out: dict[str, list[float]] = {}
    for kind, fn in _readers(store).items():
        out[kind] = []
        for value in ids[kind][:40]:
            t0 = time.perf_counter()
            fn(value)
            out[kind].append((time.perf_counter() - t0) * 1000)
    return out


def _parts(store: Store) -> int:
    with store._pool.client() as c:  # noqa: SLF001
        return int(
            c.command(
                "SELECT count() FROM system.parts WHERE active AND database = currentDatabase() "
                "AND table = 'timeline_events'"
            )
        )


def _ids(store: Store, rng: random.Random, traces: int, samples: int) -> dict[str, list[str]]:
    picks = [rng.randrange(traces) for _ in range(samples)]
    with store._pool.client() as c:  # noqa: SLF001
        rows = c.query(
            "SELECT concat('tr_', lower(hex(intHash64(toUInt64(n))))), "  # noqa: S608
            "concat('job_', lower(hex(intHash32(toUInt64(n))))), "
            f"toString(1000000 + toUInt64(n) % {CUSTOMERS}) "
            "FROM (SELECT arrayJoin({picks:Array(UInt64)}) AS n)",
            parameters={"picks": picks},
        ).result_rows
    return {
        "trace": [str(r[0]) for r in rows],
        "job": [str(r[1]) for r in rows],
        "customer": [str(r[2]) for r in rows],
    }


if __name__ == "__main__":
    import orjson

    print(orjson.dumps(run(events=1_000_000, samples=50), option=orjson.OPT_INDENT_2).decode())
