"""``POST /v1/events``: the collector's HTTP face (role ``service``)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from ingest.collector import IngestUnavailable, Payload
from query_api.deps import IngestorDep, ServiceUser, SettingsDep
from query_api.errors import ApiError, error_responses
from query_api.models import EventResultOut, IngestResponse

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


MAX_NESTING = 128


def _too_deep(value: object, limit: int = MAX_NESTING) -> bool:
    """True when JSON containers nest deeper than ``limit`` (iterative: no recursion limit)."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _payloads(body: bytes) -> list[Payload]:
    """The events of a body, or a 400 saying why it is not a JSON array."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "malformed_json", f"The body is not valid JSON: {exc}.") from exc
    if not isinstance(parsed, list):
        raise ApiError(
            400,
            "not_an_array",
            f"The body must be a JSON array of events, not {type(parsed).__name__}.",
        )
    # The JSON reader accepts 1,024 levels but the encoder that writes dead letters and raw
    # rows stops at 254; no real event nests anywhere near this, so refuse the body up front.
    if _too_deep(parsed):
        raise ApiError(
            400,
            "nested_too_deep",
            f"The body nests JSON deeper than {MAX_NESTING} levels; nothing was stored.",
        )
    # A non-object item still gets its own result ("must be a JSON object") rather than
    # failing the whole request, so it goes to ``process`` as its JSON bytes.
    return [item if isinstance(item, dict) else orjson.dumps(item) for item in parsed]


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
) -> IngestResponse:
    """Validate, redact and store each event; answer once they are durable.

    Every event gets a result: accepted with its ``event_id``, or rejected with the reason (the
    rejected input is kept in the restricted dead-letter table). Re-sending is safe.
    """
    body = await _read_limited(request, settings.max_body_bytes)
    payloads = _payloads(body)
    try:
        report = await run_in_threadpool(ingestor.ingest, payloads)
    except IngestUnavailable as exc:
        raise ApiError(503, "ingest_unavailable", f"{exc}; nothing was stored, retry.") from exc
    return IngestResponse(
        accepted=report.accepted,
        rejected=report.rejected,
        results=[
            EventResultOut(index=r.index, event_id=r.event_id, status=r.status, reason=r.reason)
            for r in report.results
        ],
    )
