"""``POST /v1/events``: the collector's HTTP face (role ``service``)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from ingest.collector import BadBody, IngestUnavailable
from query_api.deps import IngestorDep, ServiceUser, SettingsDep
from query_api.errors import ApiError, error_responses
from query_api.models import IngestResponse

router = APIRouter(prefix="/v1", tags=["ingest"])

_ERRORS = error_responses(400, 401, 403, 413, 503)


async def _read_limited(request: Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it is larger than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    too_large = ApiError(413, "too_large", f"The request body is larger than {limit} bytes.")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/events",
    status_code=202,
    response_model=IngestResponse,
    responses=_ERRORS,
    summary="Ingest a JSON array of raw events",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}}
            },
        }
    },
)
async def post_events(
    request: Request, _: ServiceUser, ingestor: IngestorDep, settings: SettingsDep
) -> Response:
    """Validate, redact and store each event; answer once they are durable.

    Every event gets a result: accepted with its ``event_id``, or rejected with the reason (the
    rejected input is kept in the restricted dead-letter table). Re-sending is safe.
    """
    body = await _read_limited(request, settings.max_body_bytes)
    try:
        report = await run_in_threadpool(ingestor.ingest_body, body)
    except BadBody as exc:
        raise ApiError(400, exc.code, exc.message) from exc
    except IngestUnavailable as exc:
        raise ApiError(503, "ingest_unavailable", f"{exc}; nothing was stored, retry.") from exc
    # The answer has one result per event: encoded directly (same shape as IngestResponse)
    # rather than through a model object per event.
    content = {
        "accepted": report.accepted,
        "rejected": report.rejected,
        "results": [
            {"index": r.index, "event_id": r.event_id, "status": r.status, "reason": r.reason}
            for r in report.results
        ],
    }
    return Response(orjson.dumps(content), status_code=202, media_type="application/json")
