"""Dead letters (role engineer): list them with their reasons; re-drive them after a fix.

Listing shows the input as received (it may hold personal data), so it needs a stated reason,
counts against the raw-read budget and is written to the access log. A re-drive runs the
chosen dead letters (default: every one not yet re-driven) through the replay path with the
current rules: accepted ones become timeline events and are marked re-driven, rejected ones
stay with their new reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from projectors.replay import ReplayReport, ReplayRequest, run_replay
from projectors.replay_sources import DeadLetterSource, redrive_sink
from query_api.deps import Audit, SettingsDep, StoreDep
from query_api.engineer_deps import (
    Engineer,
    RawLimiter,
    RedactorDep,
    RequiredReason,
    spend_raw_read,
)
from query_api.engineer_models import DeadLetterOut, DeadLettersOut, RedriveIn, ReplayOut
from query_api.errors import error_responses
from query_api.routes.replays import report_out

router = APIRouter(prefix="/v1/dead-letters", tags=["engineers"])
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _route(request: Request) -> str:
    return str(getattr(request.scope.get("route"), "path", request.url.path))


@router.get("", response_model=DeadLettersOut, responses=error_responses(400, 401, 403, 429))
async def list_dead_letters(
    request: Request,
    user: Engineer,
    reason: RequiredReason,
    store: StoreDep,
    limiter: RawLimiter,
    settings: SettingsDep,
    status: Annotated[Literal["pending", "all"], Query()] = "pending",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeadLettersOut:
    """Dead letters, newest first, with reasons; ``status=all`` includes re-driven ones."""
    spend_raw_read(limiter, user, settings.raw_reads_per_minute)
    audit = Audit(store, user, _route(request), reason)
    await run_in_threadpool(audit.record, "dead_letters", status)
    rows = await run_in_threadpool(
        lambda: store.dead_letter_status(limit=limit, pending_only=status == "pending")
    )
    data = [
        DeadLetterOut(
            dead_letter_id=r.letter.dead_letter_id,
            received_at=r.letter.received_at,
            reason=r.letter.reason,
            origin=r.letter.origin,
            topic=r.letter.topic,
            partition=r.letter.partition,
            offset=r.letter.offset,
            event_id=r.letter.event_id,
            trace_id=r.letter.trace_id,
            payload=r.letter.payload.decode("utf-8", "replace"),
            redriven_at=r.redriven_at,
            replay_id=r.replay_id,
        )
        for r in rows
    ]
    return DeadLettersOut(count=len(data), data=data)


@router.post("/redrive", response_model=ReplayOut, responses=error_responses(401, 403))
async def redrive_dead_letters(
    request: Request,
    body: RedriveIn,
    user: Engineer,
    store: StoreDep,
    settings: SettingsDep,
    redactor: RedactorDep,
) -> ReplayOut:
    """Re-run dead letters through the current rules; ``dry_run`` reports and writes nothing."""
    replay = ReplayRequest(
        start=_EPOCH,
        end=datetime.now(UTC),
        reason=body.reason,
        actor=user.name,
        role=user.role.value,
        route=_route(request),
        dry_run=body.dry_run,
    )

    def run() -> ReplayReport:
        source = DeadLetterSource(store, body.ids)
        sink = redrive_sink(settings, store)
        return run_replay(store, redactor, replay, source, sink, kind="redrive")

    return report_out(await run_in_threadpool(run))
