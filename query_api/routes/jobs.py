"""Job history (roles support, engineer, admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from query_api.deps import AuditDep, NowDep, StoreDep, StuckAfter, SupportUser
from query_api.errors import error_responses, not_found, refuse_unstorable_id
from query_api.models import JobHistory
from query_api.queries import get_job_history

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

JobIdPath = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$", examples=["job_9c1f"])
]
_ERRORS = error_responses(401, 403, 404, 503)


@router.get("/{job_id}", response_model=JobHistory, responses=_ERRORS)
async def get_job(
    job_id: JobIdPath,
    _: SupportUser,
    store: StoreDep,
    audit: AuditDep,
    stuck: StuckAfter,
    now: NowDep,
) -> JobHistory:
    """Attempts, the delay before each retry, the final result and the human reasons."""
    refuse_unstorable_id("job", job_id)
    history = await audit.around(
        "job", job_id, get_job_history, store, job_id, now=now, stuck_after=stuck
    )
    if history is None:
        raise not_found("job", job_id)
    return history
