"""Raw drill-down (role engineer): the events of one trace exactly as services sent them.

Needs a stated reason, counts against the per-user raw-read budget, and writes the access-log
entry (with the reason) before anything is read. Support gets 403 with an explanation.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool

from query_api.deps import Audit, SettingsDep, StoreDep
from query_api.engineer_deps import Engineer, RawLimiter, RequiredReason, spend_raw_read
from query_api.engineer_models import RawTraceOut
from query_api.errors import ApiError, error_responses, refuse_unstorable_id

router = APIRouter(prefix="/v1/raw", tags=["engineers"])
TraceIdPath = Annotated[str, Path(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]


@router.get(
    "/traces/{trace_id}",
    response_model=RawTraceOut,
    responses=error_responses(400, 401, 403, 404, 429),
)
async def get_raw_trace(
    request: Request,
    trace_id: TraceIdPath,
    user: Engineer,
    reason: RequiredReason,
    store: StoreDep,
    limiter: RawLimiter,
    settings: SettingsDep,
) -> RawTraceOut:
    """The raw events of a trace still within raw retention, oldest first (audited)."""
    refuse_unstorable_id("trace", trace_id)  # a pasted secret is neither logged nor echoed
    spend_raw_read(limiter, user, settings.raw_reads_per_minute)
    route = getattr(request.scope.get("route"), "path", request.url.path)
    await run_in_threadpool(Audit(store, user, route, reason).record, "raw_trace", trace_id)
    events = await run_in_threadpool(store.raw_trace, trace_id)
    if not events:
        raise ApiError(
            404, "raw_not_found", f"No raw events of trace {trace_id!r} within raw retention."
        )
    data = [e.model_dump(mode="json", exclude_none=True) for e in events]
    return RawTraceOut(trace_id=trace_id, reason=reason, count=len(data), events=data)
