"""``safetrail process``, ``safetrail project`` and ``safetrail up``: the scale-out path.

``process`` runs faust workers (raw topic ─▶ timeline and dead-letter topics), ``project`` runs a
projector (the raw topic and those ─▶ ClickHouse), ``up`` runs the whole pipeline on one
machine against a local Apache Kafka broker: collector, API and projector in this process (chDB
allows one process per data directory) and a supervised faust worker as a second process.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from safetrail.cli_serve import load_settings
from safetrail.gc_tuning import tune_gc
from safetrail.redactor import build_redactor
from safetrail.settings import Settings

REPO = Path(__file__).resolve().parent.parent
KAFKA_SH = REPO / "deploy" / "local" / "kafka.sh"
log = logging.getLogger("safetrail.kafka")


MetricsHost = Annotated[str, typer.Option(help="address for the metrics server")]


def _serve_metrics(port: int, host: str) -> None:
    """Serve this process's Prometheus metrics on ``host:port`` (0: not at all)."""
    if port:
        from prometheus_client import start_http_server

        start_http_server(port, addr=host)


def _settings(bootstrap: str | None) -> Settings:
    settings = load_settings(kafka_bootstrap=bootstrap) if bootstrap else load_settings()
    if not settings.kafka_bootstrap:
        raise typer.BadParameter("set SAFETRAIL_KAFKA_BOOTSTRAP (or --bootstrap) to a broker")
    return settings


def _on_stop(callback: Callable[[], None]) -> None:
    """Run ``callback()`` on SIGTERM and SIGINT."""

    def handler(_sig: int, _frame: FrameType | None) -> None:
        callback()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: only a call into libc loaded beforehand.
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def supervise(argv: list[str], stop: threading.Event, name: str) -> None:
    """Keep one child process running until ``stop`` is set; restart it when it exits.

    A faust worker exits on purpose (code 75) when it could not deliver a batch; restarting
    it re-reads from the last commit. Restarts back off up to 30 s so a broken setup does not
    spin. On stop the child gets SIGTERM (graceful: it commits what it finished).
    """
    delay = 1.0
    while not stop.is_set():
        # The child gets SIGTERM if this process dies (kill -9 of ``up``), on Linux, so no
        # worker is left running beside the next ``up``'s.
        child = subprocess.Popen(argv, preexec_fn=_die_with_parent)  # noqa: S603, PLW1509
        started = time.monotonic()
        while child.poll() is None and not stop.wait(0.5):
            pass
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
            return
        if time.monotonic() - started > 60:
            delay = 1.0
        log.warning("%s exited with %s; restarting in %.0fs", name, child.returncode, delay)
        stop.wait(delay)
        delay = min(delay * 2, 30.0)


def process_cmd(
    bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap servers")] = None,
    workers: Annotated[int, typer.Option(min=1, help="worker processes on this machine")] = 1,
    app_id: Annotated[str, typer.Option(help="faust app id (consumer group)")] = "",
    loglevel: Annotated[str, typer.Option(help="log level")] = "INFO",
    metrics_port: Annotated[
        int,
        typer.Option(
            help="serve Prometheus metrics (events routed, by outcome) on 127.0.0.1:PORT "
            "(0: off); with --workers N, worker i serves on PORT+i"
        ),
    ] = 0,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Run the faust processor: raw topic ─▶ timeline topics, bad input ─▶ dead-letter topic."""
    settings = _settings(bootstrap)
    from ingest.processor_app import (
        APP_ID,
        build_watchdog,
        create_app,
        ensure_topics,
        run_worker,
    )

    created = ensure_topics(settings)
    if created:
        typer.echo(f"created topics: {', '.join(created)}", err=True)
    if workers > 1:
        stop = threading.Event()
        _on_stop(stop.set)
        argv = [sys.executable, "-m", "safetrail.cli", "process", "--workers", "1"]
        argv += ["--app-id", app_id or APP_ID, "--loglevel", loglevel]
        argv += ["--metrics-host", metrics_host]
        if bootstrap:
            argv += ["--bootstrap", bootstrap]

        def worker_argv(i: int) -> list[str]:
            return [*argv, "--metrics-port", str(metrics_port + i if metrics_port else 0)]

        threads = [
            threading.Thread(
                target=supervise, args=(worker_argv(i), stop, f"worker {i}"), daemon=True
            )
            for i in range(workers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return
    _serve_metrics(metrics_port, metrics_host)
    watchdog = build_watchdog(settings, app_id or APP_ID)
    app = create_app(settings, build_redactor(settings), app_id=app_id or APP_ID, watchdog=watchdog)
    watchdog.start()
    tune_gc()
    run_worker(app, loglevel=loglevel)


def project_cmd(
    bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap servers")] = None,
    metrics_port: Annotated[
        int, typer.Option(help="serve Prometheus metrics on 127.0.0.1:PORT (0: off)")
    ] = 0,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Run a projector: raw, timeline and dead-letter topics ─▶ ClickHouse.

    Each batch is inserted, then its offsets are committed.
    """
    settings = _settings(bootstrap)
    from projectors.kafka_projector import KafkaProjector
    from projectors.retention import RetentionPolicy
    from projectors.store import Store

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    _serve_metrics(metrics_port, metrics_host)
    with Store.open(
        settings.effective_clickhouse_url, RetentionPolicy.from_settings(settings)
    ) as store:
        store.migrate(cluster=settings.store_cluster)
        projector = KafkaProjector(settings, store)
        _on_stop(projector.stop)
        tune_gc()
        projector.run()


def up_cmd(
    host: Annotated[str, typer.Option(help="API address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port")] = 8000,
    keep_broker: Annotated[
        bool, typer.Option(help="leave a broker this command started running on exit")
    ] = False,
) -> None:
    """Run the scale-out pipeline on one machine against a local Apache Kafka broker."""
    started_broker = False
    configured = load_settings()  # environment and .env, as every other command reads them
    # The broker script reads the environment only: hand it the port .env may have set.
    broker_env = {**os.environ, "SAFETRAIL_KAFKA_PORT": str(configured.kafka_port)}
    if not configured.kafka_bootstrap:
        # A broker already running (make kafka-up, another shell) is used, and left running.
        running = subprocess.run(  # noqa: S603
            ["bash", str(KAFKA_SH), "status"],  # noqa: S607
            env=broker_env,
            capture_output=True,
            check=False,
        )
        if running.returncode != 0:
            subprocess.run(["bash", str(KAFKA_SH), "up"], check=True, env=broker_env)  # noqa: S603, S607
            started_broker = True
        os.environ["SAFETRAIL_KAFKA_BOOTSTRAP"] = f"127.0.0.1:{configured.kafka_port}"
    settings = _settings(None)
    try:
        _run_up(settings, host, port)
    finally:
        if started_broker and not keep_broker:
            subprocess.run(["bash", str(KAFKA_SH), "down"], check=False, env=broker_env)  # noqa: S603, S607


def _run_up(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from ingest.kafka_collector import KafkaIngestor
    from ingest.kafka_sink import KafkaSink
    from ingest.processor_app import ensure_topics
    from projectors.kafka_projector import KafkaProjector
    from projectors.retention import RetentionPolicy
    from projectors.store import Store
    from query_api.app import create_app

    assert settings.kafka_bootstrap  # noqa: S101 - checked by _settings
    ensure_topics(settings)
    stop = threading.Event()
    worker_argv = [sys.executable, "-m", "safetrail.cli", "process"]
    worker = threading.Thread(target=supervise, args=(worker_argv, stop, "faust worker"))
    worker.start()
    store = Store.open(settings.effective_clickhouse_url, RetentionPolicy.from_settings(settings))
    try:
        store.migrate(cluster=settings.store_cluster)
        projector = KafkaProjector(settings, store)
        projecting = threading.Thread(target=projector.run, name="projector")
        projecting.start()
        redactor = build_redactor(settings)
        sink = KafkaSink(
            settings.kafka_bootstrap, settings.topic_raw, max_event_bytes=settings.max_body_bytes
        )
        ingestor = KafkaIngestor(sink, redactor, retention_days=settings.retention_days)
        api = create_app(settings, store, ingestor=ingestor, redactor=redactor)
        typer.echo(
            f"safetrail (scale-out) on http://{host}:{port}, Kafka {settings.kafka_bootstrap}"
        )
        # uvicorn stops on SIGINT/SIGTERM, then re-raises the signal to the handler it found;
        # a no-op handler lets the shutdown below (projector, worker, broker) run.
        _on_stop(lambda: None)
        tune_gc()
        uvicorn.run(api, host=host, port=port, log_level="warning")
        projector.stop()
        projecting.join()
        ingestor.close()
    finally:
        stop.set()
        worker.join()
        store.close()


def register(app: typer.Typer) -> None:
    """Add ``process``, ``project`` and ``up`` to the ``safetrail`` command."""
    app.command("process")(process_cmd)
    app.command("project")(project_cmd)
    app.command("up")(up_cmd)
