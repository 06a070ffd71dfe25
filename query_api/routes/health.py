"""Liveness, storage and retention check, and Prometheus metrics (no token needed)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from projectors.retention import RetentionPolicy
from query_api.deps import SettingsDep, StoreDep
from query_api.metrics import Metrics
from query_api.models import HealthOut, TtlOut

router = APIRouter(tags=["operations"])

# Events answered (journaled) but not inserted for this long with no insert getting through:
# storage is behind, reads wait for them, so the instance reports itself unhealthy.
JOURNAL_STALL_SECONDS = 30.0


@router.get("/healthz", response_model=HealthOut, responses={503: {"model": HealthOut}})
async def healthz(request: Request, store: StoreDep, settings: SettingsDep) -> JSONResponse:
    """Whether storage answers and keeps up, and whether the TTL in force matches configured
    retention.

    Answers 503 when storage is down, when accepted events have waited in the ingest journal
    for ``JOURNAL_STALL_SECONDS`` with no insert getting through (storage ``behind``), or
    when a table's TTL differs from settings.
    """
    policy = RetentionPolicy.from_settings(settings)
    # On a cluster the TTL is in force on the ``_local`` tables (as ``safetrail migrate`` reads it).
    cluster = settings.store_cluster is not None
    try:
        await run_in_threadpool(store.ping)
        statuses = await run_in_threadpool(lambda: store.ttl_status(policy, cluster=cluster))
        storage = "ok"
    except Exception:  # noqa: BLE001 - health reports the failure instead of raising it
        statuses, storage = [], "unavailable"
    registry: Metrics = request.app.state.metrics
    if storage == "ok" and registry.journal_stalled_seconds() >= JOURNAL_STALL_SECONDS:
        storage = "behind"
    ttl = [
        TtlOut(table=s.table, expected_days=s.expected_days, actual_days=s.actual_days, ok=s.ok)
        for s in statuses
    ]
    ttl_ok = bool(ttl) and all(t.ok for t in ttl)
    healthy = storage == "ok" and ttl_ok
    body = HealthOut(
        status="ok" if healthy else "degraded",
        storage=storage,
        mode="embedded" if settings.embedded else "scale-out",
        ttl_ok=ttl_ok,
        ttl=ttl,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if healthy else 503)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text format: ingest counts (accepted/rejected) and request latency."""
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)
