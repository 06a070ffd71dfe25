"""Prometheus metrics: ingest counts and request latency, on a registry per app.

A registry per app (not the global one) keeps several apps in one process, as in tests,
from clashing over metric names.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.collector import IngestReport

# One entry per request: route template, method, status and duration, never the raw path or
# query string (they can hold whatever a caller typed: an email, a token).
access_log = logging.getLogger("safetrail.access")


class Metrics:
    """The metrics of one API app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.ingest_events = Counter(
            "safetrail_ingest_events",
            "Events received, by result (accepted or rejected).",
            ["result"],
            registry=self.registry,
        )
        self.requests = Counter(
            "safetrail_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "safetrail_http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ["route", "method"],
            registry=self.registry,
        )
        self.commit_events = Histogram(
            "safetrail_group_commit_events",
            "Events per store insert of the embedded collector (larger is cheaper).",
            buckets=(1, 10, 100, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000),
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "safetrail_group_commit_seconds",
            "Time of one store insert (every table) of the embedded collector.",
            registry=self.registry,
        )
        self.unshipped = Gauge(
            "safetrail_ingest_journal_events",
            "Events answered and held in the ingest journal, not yet inserted (embedded).",
            registry=self.registry,
        )
        # Which cases still go to engineering, and how often: the first thing to look at when
        # deciding what safe detail support needs next. Rule ids come from the rule file.
        self.hints = Counter(
            "safetrail_escalation_hints",
            "Escalation hints shown on trace pages, by rule and by who acts next.",
            ["rule", "owner"],
            registry=self.registry,
        )
        for result in ("accepted", "rejected"):
            self.ingest_events.labels(result=result)
        self._journal: Callable[[], int] | None = None
        self._last_commit = time.monotonic()
        self._backlog_since: float | None = None

    def watch_journal(self, unshipped: Callable[[], int]) -> None:
        """Report ``unshipped()`` (the collector's backlog) at every scrape."""
        self._journal = unshipped
        self.unshipped.set_function(unshipped)

    def journal_stalled_seconds(self) -> float:
        """How long events have waited in the ingest journal with no insert getting through
        (0 when it is empty or inserts go on). The shipper inserts within about a second while
        storage takes writes, so a growing figure means storage is behind; reads then wait."""
        now = time.monotonic()
        if self._journal is None or self._journal() == 0:
            self._backlog_since = None
            return 0.0
        if self._backlog_since is None:
            self._backlog_since = now
        return now - max(self._backlog_since, self._last_commit)

    def observe_ingest(self, report: IngestReport) -> None:
        """Count a request's events once they are durable."""
        self.ingest_events.labels(result="accepted").inc(report.accepted)
        self.ingest_events.labels(result="rejected").inc(report.rejected)

    def observe_commit(self, events: int, seconds: float) -> None:
        """Record one store insert of the embedded collector."""
        self._last_commit = time.monotonic()
        self.commit_events.observe(events)
        self.commit_seconds.observe(seconds)

    def observe_hint(self, rule: str, owner: str) -> None:
        """Count one escalation hint shown to someone."""
        self.hints.labels(rule=rule, owner=owner).inc()

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Times every HTTP request; labels by route template so ids do not explode cardinality."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = str(scope.get("method", ""))
            seconds = time.perf_counter() - started
            self.metrics.latency.labels(route, method).observe(seconds)
            self.metrics.requests.labels(route, method, str(status)).inc()
            access_log.info(
                "%s %s %d",
                method,
                route,
                status,
                extra={
                    "route": route,
                    "method": method,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                },
            )
