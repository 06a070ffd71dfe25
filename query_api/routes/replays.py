"""``POST /v1/replays`` (role engineer): re-run the current rules over raw events, or dry-run.

The same ``projectors.replay.run_replay`` as ``safetrail replay``: embedded, it reads the
restricted raw table and writes the timeline table; with Kafka, it reads the raw topic by time
and publishes to the timeline topics. It runs within the request and answers with the report;
the access log holds a start and an end entry with who, why, range, filters, rules versions
and counts.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from projectors.replay import ReplayReport, ReplayRequest, run_replay
from projectors.replay_sources import replay_endpoints
from query_api.deps import SettingsDep, StoreDep
from query_api.engineer_deps import Engineer, RedactorDep
from query_api.engineer_models import ReplayIn, ReplayOut
from query_api.errors import ApiError, error_responses

router = APIRouter(prefix="/v1/replays", tags=["engineers"])


def report_out(report: ReplayReport) -> ReplayOut:
    """The API form of a replay report."""
    return ReplayOut.model_validate(report.as_dict())


@router.post("", response_model=ReplayOut, responses=error_responses(400, 401, 403))
async def post_replay(
    request: Request,
    body: ReplayIn,
    user: Engineer,
    store: StoreDep,
    settings: SettingsDep,
    redactor: RedactorDep,
) -> ReplayOut:
    """Replay raw events received in ``[from, to)``; ``dry_run`` reports and writes nothing."""
    if body.start.tzinfo is None or body.end.tzinfo is None:
        raise ApiError(400, "bad_range", "'from' and 'to' need a time zone (e.g. ...Z).")
    if not (1900 <= body.start.year <= 2299 and 1900 <= body.end.year <= 2299):
        # ClickHouse's DateTime64 covers 1900-2299; outside it the query could not be built.
        raise ApiError(400, "bad_range", "'from' and 'to' must be between 1900 and 2299.")
    if body.end <= body.start:
        raise ApiError(400, "bad_range", "'to' must be later than 'from'.")
    route = getattr(request.scope.get("route"), "path", request.url.path)
    replay = ReplayRequest(
        start=body.start,
        end=body.end,
        reason=body.reason,
        actor=user.name,
        role=user.role.value,
        route=route,
        trace_id=body.trace_id,
        type_glob=body.type,
        dry_run=body.dry_run,
    )

    def run() -> ReplayReport:
        source, sink = replay_endpoints(settings, store, replay.selection())
        return run_replay(store, redactor, replay, source, sink)

    return report_out(await run_in_threadpool(run))
