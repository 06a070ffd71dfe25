"""``safetrail demo``: the embedded pipeline with realistic synthetic traffic, zero setup."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import uvicorn
from rich.console import Console

from ingest.http_sink import HttpSink
from ingest.sdk import Emitter
from safetrail.cli_serve import load_settings, refuse_busy_data_dir
from safetrail.demo_traffic import DemoTraffic, generate
from safetrail.gc_tuning import tune_gc
from safetrail.settings import DEMO_TOKENS, Role, Settings

console = Console(soft_wrap=True)


def _token(role: Role) -> str:
    return next(tok for tok, info in DEMO_TOKENS.items() if info.role is role)


def start_server(
    settings: Settings, host: str, port: int
) -> tuple[uvicorn.Server, threading.Thread]:
    """Run the API (collector + processing + queries) in a background thread; wait until ready."""
    from query_api.app import create_app  # deferred: keeps `safetrail --help` fast

    config = uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning")
    tune_gc()
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="safetrail-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError(f"the server did not start on {host}:{port} (port in use?)")
        try:
            # ``started``: this server listens (another process answering on a port in use
            # must not be taken for it, nor be sent the synthetic traffic).
            healthy = httpx.get(f"http://{host}:{port}/healthz", timeout=1).status_code == 200
            if healthy and server.started:
                return server, thread
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not become healthy within 60 s")


def store_aged(traffic: DemoTraffic, settings: Settings) -> int:
    """Store the traffic's events already past retention as the collector stored them when
    they happened, and take them out of what ``load`` sends; returns how many.

    The collector refuses an event older than retention (no read would show it), so the
    demo's trace "older than retention" is written straight into the store before the server
    opens it: what a timeline looks like once its events have aged.
    """
    from ingest.process import Accepted, Retention, process  # deferred: keeps --help fast
    from projectors.retention import RetentionPolicy
    from projectors.store import Store
    from safetrail.redactor import build_redactor

    oldest = Retention(settings.retention_days, datetime.now(UTC)).oldest
    aged = [e for e in traffic.events if e["occurred_at"] < oldest]
    if not aged:
        return 0
    traffic.events = [e for e in traffic.events if e["occurred_at"] >= oldest]
    redactor = build_redactor(settings)
    routed = [process({**e, "occurred_at": e["occurred_at"].isoformat()}, redactor) for e in aged]
    events = [r.timeline for r in routed if isinstance(r, Accepted)]
    policy = RetentionPolicy.from_settings(settings)
    with Store.open(settings.effective_clickhouse_url, policy) as store:
        store.migrate()
        store.insert_timeline(events, ingested_at=min(e["occurred_at"] for e in aged))
    return len(events)


def load(
    traffic: DemoTraffic, base_url: str, progress: Callable[[int], None] | None = None
) -> HttpSink:
    """Send the synthetic traffic through the real SDK and collector, one emitter per service."""
    sink = HttpSink(base_url, _token(Role.SERVICE), batch_size=1000)
    emitters: dict[str, Emitter] = {}
    for n, event in enumerate(traffic.events, 1):
        kwargs: dict[str, Any] = dict(event)
        source = kwargs.pop("source")
        emitter = emitters.setdefault(source, Emitter(sink, source=source))
        emitter.emit(kwargs.pop("type"), **kwargs)
        if progress and n % 1000 == 0:
            progress(n)
    sink.flush(timeout=120)
    return sink


def _print_intro(traffic: DemoTraffic, sink: HttpSink, base: str, aged: int = 0) -> None:
    console.print(
        f"[bold green]safetrail demo[/] loaded {sink.accepted + aged} events "
        f"({len(sink.rejected)} rejected) for {len(traffic.customers)} customers"
    )
    console.print("\n[bold]Traces worth opening first[/]")
    width = max(len(case) for case in traffic.highlights)
    for case, trace_id in traffic.highlights.items():
        console.print(
            f"  {case:<{width}}  [cyan]{trace_id}[/]  {base}/support/traces/{trace_id}",
            soft_wrap=True,
        )
    first = next(iter(traffic.highlights.values()))
    sup = _token(Role.SUPPORT)
    console.print("\n[bold]Demo tokens[/] (demo only; refused outside SAFETRAIL_DEMO=1):")
    for tok, info in DEMO_TOKENS.items():
        console.print(f"  {info.role.value:<9} {tok}")
    console.print("\n[bold]Try[/]:")
    console.print(f"  open {base}/support  (sign in with {sup})")
    order = next(
        (e["subject"]["order_id"] for e in traffic.events if e.get("subject", {}).get("order_id")),
        None,
    )
    if order is not None:
        console.print(
            f"  search the order ID {order} there: it opens the payment trace that named it"
        )
    console.print(f"  open {base}/support/guide  (what each status, step and mask means)")
    console.print(f"  curl -s -H 'Authorization: Bearer {sup}' {base}/v1/traces/{first}")
    console.print(
        f"  curl -s -H 'Authorization: Bearer {sup}' {base}/v1/traces/{first}/summary.txt"
    )
    console.print(
        f"  curl -s -H 'Authorization: Bearer {sup}' "
        f"'{base}/v1/customers/48291/timeline?lane=system'"
    )
    console.print(f"  API docs: {base}/docs    metrics: {base}/metrics\n")


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command."""

    @app.command()
    def demo(
        host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="port to serve on", min=1, max=65535)] = 8000,
        data_dir: Annotated[
            Path | None,
            typer.Option(
                help="where chDB keeps the demo data \\[default: demo/ under SAFETRAIL_DATA_DIR, "
                "./.safetrail/demo when unset]"
            ),
        ] = None,
        customers: Annotated[int, typer.Option(help="synthetic customers", min=1)] = 1000,
        days: Annotated[int, typer.Option(help="days of history to generate", min=1)] = 30,
        seed: Annotated[int, typer.Option(help="random seed (same seed, same data)")] = 7,
        exit_after_load: Annotated[
            bool, typer.Option(help="stop once the traffic is loaded (for scripts)")
        ] = False,
    ) -> None:
        """Serve the embedded pipeline on HOST:PORT after loading realistic synthetic traffic."""
        # Always the embedded engine in its own directory: synthetic traffic never goes to a
        # ClickHouse server or a broker the environment may name for real data.
        configured = load_settings(demo=True)
        data_dir = data_dir if data_dir is not None else configured.data_dir / "demo"
        settings = load_settings(data_dir, demo=True, clickhouse_url=None, kafka_bootstrap=None)
        refuse_busy_data_dir(settings)
        traffic = generate(customers=customers, days=days, seed=seed)
        aged = store_aged(traffic, settings)
        base = f"http://{host}:{port}"
        console.print(f"starting safetrail on {base} (data in {data_dir}) ...")
        try:
            server, thread = start_server(settings, host, port)
        except RuntimeError as exc:
            console.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None
        # The server runs in a thread, so uvicorn does not take SIGTERM here: stop it the same
        # graceful way as Ctrl+C (the collector stores its journal, the store closes).
        signal.signal(signal.SIGTERM, lambda _sig, _frame: setattr(server, "should_exit", True))
        with console.status("loading synthetic traffic through the SDK and collector"):
            sink = load(traffic, base)
        _print_intro(traffic, sink, base, aged)
        if exit_after_load:
            server.should_exit = True
            thread.join(timeout=30)
            return
        console.print("serving; press Ctrl+C to stop")
        try:
            while thread.is_alive():
                thread.join(timeout=0.5)
        except KeyboardInterrupt:
            server.should_exit = True
            thread.join(timeout=30)
