"""The query API app: ``create_app(settings, store=None)``.

The lifespan opens the store on ``settings.effective_clickhouse_url`` (unless one is given) and
applies migrations. In the embedded mode it also owns the collector, so one process runs
ingest, processing, storage and the API, as chDB allows one process per data directory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.collector import EmbeddedCollector, Ingestor
from ingest.journal import journal_dir
from ingest.workers import default_workers
from projectors.retention import RetentionPolicy
from projectors.store import Store
from query_api.auth import TokenBook
from query_api.deps import Clock
from query_api.errors import install_error_handlers
from query_api.metrics import Metrics, MetricsMiddleware
from query_api.pages_render import escalation_path
from query_api.routes import (
    access_log,
    customers,
    dead_letters,
    events,
    health,
    jobs,
    pages_raw,
    raw,
    replays,
    traces,
)
from query_api.routes.pages import install_support_pages
from redaction_rules.engine import Redactor
from redaction_rules.escalation import load_escalation_rules
from safetrail.redactor import build_redactor
from safetrail.settings import Settings


def _utc_now() -> datetime:
    return datetime.now(UTC)


class NoStoreMiddleware:
    """``Cache-Control: no-store`` on every ``/v1`` answer (JSON, summary.txt, CSV, errors).

    They carry masked personal data and are read with a bearer token: no shared proxy or
    browser cache may keep them. The support pages set it themselves (``SECURITY_HEADERS``).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/v1/"):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_no_store)


def _kafka_ingestor(settings: Settings, rules: Redactor) -> Ingestor:
    """Scale-out mode: ``POST /v1/events`` publishes to the raw topic and answers on broker ack."""
    # Deferred: the embedded path never needs the Kafka client.
    from ingest.kafka_collector import KafkaIngestor
    from ingest.kafka_sink import KafkaSink

    assert settings.kafka_bootstrap is not None  # noqa: S101 - checked by the caller
    # Whatever fits in a request body goes to Kafka too (the topics take it: deploy/README.md).
    sink = KafkaSink(
        settings.kafka_bootstrap, settings.topic_raw, max_event_bytes=settings.max_body_bytes
    )
    return KafkaIngestor(sink, rules, retention_days=settings.retention_days)


def create_app(
    settings: Settings,
    store: Store | None = None,
    *,
    ingestor: Ingestor | None = None,
    redactor: Redactor | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """Build the API app.

    ``store``: an open store to use (the caller keeps ownership); otherwise the app opens one
    at startup and closes it at shutdown. ``ingestor``: where ``POST /v1/events`` sends events;
    by default the embedded collector in embedded mode, the Kafka raw-topic publisher when
    ``SAFETRAIL_KAFKA_BOOTSTRAP`` is set.
    ``redactor``/``clock`` replace the configured ones (tests, the demo).
    """
    metrics = Metrics()
    # Built once, at creation: a broken rule file stops the app before it serves anything.
    rules = redactor or build_redactor(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = store is None
        if store is None:
            policy = RetentionPolicy.from_settings(settings)
            active = await run_in_threadpool(Store.open, settings.effective_clickhouse_url, policy)
        else:
            active = store
        owned: Ingestor | None = None
        try:
            await run_in_threadpool(partial(active.migrate, cluster=settings.store_cluster))
            chosen = ingestor
            if chosen is None and settings.embedded:
                workers = settings.ingest_workers
                chdb_dir = active.chdb_directory
                collector = EmbeddedCollector(
                    active,
                    rules,
                    listener=metrics.observe_ingest,
                    on_commit=metrics.observe_commit,
                    workers=default_workers() if workers is None else workers,
                    journal=None if chdb_dir is None else journal_dir(chdb_dir),
                )
                owned = chosen = collector
                active.add_read_barrier(collector.flush)
                metrics.watch_journal(collector.unshipped_events)
            elif chosen is None and settings.kafka_bootstrap:
                owned = chosen = _kafka_ingestor(settings, rules)
            app.state.store = active
            app.state.ingestor = chosen
            yield
        finally:
            app.state.ingestor = None
            if owned is not None:
                await run_in_threadpool(owned.close)
                if isinstance(owned, EmbeddedCollector):
                    active.remove_read_barrier(owned.flush)
            app.state.store = None
            if opened:
                active.close()

    app = FastAPI(
        title="safetrail query API",
        version="1",
        summary="Customer-safe debug timelines: trace chains, job history, customer timelines.",
        lifespan=lifespan,
        docs_url="/docs",
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.token_book = TokenBook(settings.effective_tokens)
    app.state.clock = clock or _utc_now
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(NoStoreMiddleware)
    app.state.redactor = rules
    for module in (events, traces, jobs, customers, access_log, health):
        app.include_router(module.router)
    # Loaded once, at creation (a broken file stops the start-up); the trace route and the
    # support page answer "support or engineering?" from these rules (``EscalationDep``).
    app.state.escalation = load_escalation_rules(escalation_path(settings))
    install_support_pages(app, settings, rules)
    for module in (raw, replays, dead_letters, pages_raw):  # the engineers' route
        app.include_router(module.router)
    return app
