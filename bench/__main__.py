"""``python -m bench``: run every benchmark, write bench/results/latest.json, print a table.

``--only redaction,query`` picks modules; ``--quick`` shrinks every workload (smoke run, figures
not comparable). A module that fails is reported as an error row; the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
MARKDOWN = Path(__file__).resolve().parent / "RESULTS.md"
MODULES = ("redaction", "ingest", "kafka", "query")
FULL: dict[str, dict[str, Any]] = {
    "redaction": {},
    "ingest": {"events": 60_000},
    "kafka": {"burst": 60_000, "seconds": 10.0},
    "query": {"events": 10_000_000, "samples": 300},
}
QUICK: dict[str, dict[str, Any]] = {
    "redaction": {"events": 1000, "presidio_events": 40, "passes": 2},
    "ingest": {"events": 5_000},
    "kafka": {"burst": 10_000, "seconds": 3.0},
    "query": {"events": 500_000, "samples": 50},
}

# (label, module, key, target, higher_is_better, unit[, key of what limits it])
Row = (
    tuple[str, str, str, float | None, bool, str]
    | tuple[str, str, str, float | None, bool, str, str]
)
ROWS: tuple[Row, ...] = (
    ("Redaction, one core", "redaction", "safetrail_redact_events_per_s", 50_000, True, "ev/s"),
    (
        "Presidio, same events",
        "redaction",
        "presidio_events_per_s",
        None,
        True,
        "ev/s",
        "limited_by_presidio",
    ),
    ("Redaction vs Presidio", "redaction", "ratio_vs_presidio", None, True, "x", "-"),
    ("Embedded ingest until queryable", "ingest", "events_per_s", 20_000, True, "ev/s"),
    (
        "  baseline: storage-only insert",
        "ingest",
        "storage_only_events_per_s",
        None,
        True,
        "ev/s",
        "=one chDB bulk insert per 5,000 events: fsync, 2 materialized views, 2 projections",
    ),
    ("Kafka path sustained", "kafka", "events_per_s", 20_000, True, "ev/s"),
    (
        "Kafka emit->queryable p50 @5k/s",
        "kafka",
        "latency_p50_ms",
        None,
        False,
        "ms",
        "limited_by_paced",
    ),
    (
        "Kafka emit->queryable p99 @5k/s",
        "kafka",
        "latency_p99_ms",
        1000,
        False,
        "ms",
        "limited_by_paced",
    ),
    (
        "Kafka emit->queryable p50 @1k/s",
        "kafka",
        "light_latency_p50_ms",
        None,
        False,
        "ms",
        "limited_by_light",
    ),
    (
        "Kafka emit->queryable p99 @1k/s",
        "kafka",
        "light_latency_p99_ms",
        None,
        False,
        "ms",
        "limited_by_light",
    ),
    ("Stored events for the query figures", "query", "events", None, True, "", "-"),
    (
        "Trace query p50",
        "query",
        "trace_p50_ms",
        None,
        False,
        "ms",
        "limited_by_trace",
    ),
    ("Trace query p99", "query", "trace_p99_ms", 20, False, "ms", "limited_by_trace"),
    ("Job query p50", "query", "job_p50_ms", None, False, "ms", "limited_by_job"),
    ("Job query p99", "query", "job_p99_ms", 50, False, "ms", "limited_by_job"),
    ("Customer page p50", "query", "customer_p50_ms", None, False, "ms"),
    ("Customer page p99", "query", "customer_p99_ms", 50, False, "ms"),
    ("Bytes/event on disk (timeline)", "query", "bytes_per_event_timeline", None, False, "B", "-"),
    (
        "Bytes/event on disk (all tables)",
        "query",
        "bytes_per_event_all_tables",
        None,
        False,
        "B",
        "-",
    ),
    (
        "Peak RSS: API+collector (embedded)",
        "ingest",
        "api_process_peak_rss_mb",
        None,
        False,
        "MiB",
        "-",
    ),
    ("Peak RSS: processor", "kafka", "processor_peak_rss_mb", None, False, "MiB", "-"),
    ("Peak RSS: projector (chDB)", "kafka", "projector_peak_rss_mb", None, False, "MiB", "-"),
    ("Peak RSS: query bench (chDB, loaded)", "query", "peak_rss_mb", None, False, "MiB", "-"),
    (
        "Peak RSS: API serving the query figures' store",
        "query",
        "api_process_peak_rss_mb",
        None,
        False,
        "MiB",
        "-",
    ),
)


def _limit(module: str, results: dict[str, Any], key: str) -> str:
    data = results.get(module, {})
    if "error" in data:
        return f"error: {data['error']}"
    if key == "-":
        return ""
    if key.startswith("="):
        return key[1:]
    return str(data.get(key, ""))


def _redaction_limits(result: dict[str, Any]) -> None:
    """Name what limits the redaction figures: a short profile of each engine."""
    from bench.common import top_frames
    from bench.redaction import reference_events
    from ingest.schema import RawEvent
    from redaction_rules.engine import Redactor, load_rules

    events = reference_events(3000)
    raws = [RawEvent.model_validate(e) for e in events]
    redact = Redactor(load_rules(), b"bench-hmac-key-0123456789").redact
    frames = top_frames(lambda: [redact(r) for r in raws], limit=3)
    result["limited_by"] = "CPU in the rule walk (one pinned core): " + "; ".join(frames)
    result["limited_by_presidio"] = (
        "every regex recognizer over the whole serialized event, plus the anonymizer"
    )


def rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per table row: label, value, target, verdict, what limits it."""
    out = []
    for label, module, key, target, higher, unit, *why in ROWS:
        if module not in results:
            continue
        value = results[module].get(key)
        verdict = "-"
        if target is not None and isinstance(value, int | float):
            ok = value >= target if higher else value <= target
            verdict = "pass" if ok else "miss"
        elif target is not None:
            verdict = "error"
        out.append(
            {
                "figure": label,
                "value": value,
                "unit": unit,
                "target": (f"≥ {target:,}" if higher else f"≤ {target:,}") if target else "",
                "verdict": verdict,
                "limited_by": _limit(module, results, why[0] if why else "limited_by"),
            }
        )
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "n/a" if value is None else str(value)


def print_table(table_rows: list[dict[str, Any]], title: str) -> None:
    """The results as a rich table."""
    table = Table(title=title)
    for name in ("figure", "value", "target", "pass/miss", "limited by"):
        table.add_column(name, overflow="fold")
    for r in table_rows:
        colour = {"pass": "green", "miss": "red", "error": "red"}.get(r["verdict"], "")
        verdict = f"[{colour}]{r['verdict']}[/]" if colour else r["verdict"]
        table.add_row(
            r["figure"], f"{_fmt(r['value'])} {r['unit']}", r["target"], verdict, r["limited_by"]
        )
    Console(width=200).print(table)


def markdown(document: dict[str, Any]) -> str:
    """The results table as markdown (bench/RESULTS.md, shown in the README)."""
    machine = document["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"`make bench` on {machine['cpus']} cores, Python {machine['python']}, "
        f"{document['generated_at']}{' (quick run)' if document['quick'] else ''}. "
        "Raw figures: `bench/results/latest.json`.",
        "",
        "| figure | value | target | pass/miss | limited by |",
        "|---|---:|---|---|---|",
    ]
    for r in document["table"]:
        limit = str(r["limited_by"]).replace("|", "\\|")
        value = f"{_fmt(r['value'])} {r['unit']}".strip()
        lines.append(f"| {r['figure']} | {value} | {r['target']} | {r['verdict']} | {limit} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks; 0 unless a module crashed."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", default=",".join(MODULES), help="comma-separated modules")
    parser.add_argument("--quick", action="store_true", help="small workloads (smoke run)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--markdown", action="store_true", help="only rewrite bench/RESULTS.md from --out"
    )
    args = parser.parse_args(argv)
    if args.markdown:  # the table is derived from the stored results: rebuild both
        document = orjson.loads(args.out.read_bytes())
        document["table"] = rows(document["results"])
        args.out.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
        MARKDOWN.write_text(markdown(document))
        return 0
    chosen = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = set(chosen) - set(MODULES)
    if unknown:
        parser.error(f"unknown modules: {', '.join(sorted(unknown))}")
    sizes = QUICK if args.quick else FULL
    results: dict[str, Any] = {}
    failed = False
    for name in chosen:
        started = time.perf_counter()
        Console().print(f"[bold]bench {name}[/] …")
        run: Callable[..., dict[str, Any]] = importlib.import_module(f"bench.{name}").run
        try:
            results[name] = run(**sizes[name])
            if name == "redaction":
                _redaction_limits(results[name])
        except Exception as exc:  # noqa: BLE001 - one broken module must not hide the others
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            failed = True
        results[name]["seconds"] = round(time.perf_counter() - started, 1)
    table_rows = rows(results)
    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": {"cpus": _cpus(), "python": platform.python_version()},
        "table": table_rows,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    if not args.quick and set(chosen) == set(MODULES):
        MARKDOWN.write_text(markdown(document))
    print_table(table_rows, f"safetrail bench ({'quick' if args.quick else 'full'}) → {args.out}")
    return 1 if failed else 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


if __name__ == "__main__":
    raise SystemExit(main())
