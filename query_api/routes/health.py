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


@router.get("/healthz", response_model=HealthOut, responses={503: {"model": HealthOut}})
async def healthz(store: StoreDep, settings: SettingsDep) -> JSONResponse:
    """Whether storage answers, and whether the TTL in force matches configured retention.

    Answers 503 when storage is down or a table's TTL differs from settings.
    """
    policy = RetentionPolicy.from_settings(settings)
    try:
        await run_in_threadpool(store.ping)
        statuses = await run_in_threadpool(store.ttl_status, policy)
        storage = "ok"
    except Exception:  # noqa: BLE001 - health reports the failure instead of raising it
        statuses, storage = [], "unavailable"
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
