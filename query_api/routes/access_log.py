"""The access log itself (role admin); reading it is logged too."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from projectors.reads import AccessLogQuery
from query_api.deps import AdminUser, AuditDep, StoreDep, logged_filter
from query_api.errors import ApiError, error_responses
from query_api.models import AccessLogEntryOut, Page
from query_api.queries import MAX_PAGE, BadCursor, decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/access-log", tags=["audit"])
_ERRORS = error_responses(400, 401, 403, 503)


@router.get("", response_model=Page[AccessLogEntryOut], responses=_ERRORS)
async def get_access_log(
    _: AdminUser,
    store: StoreDep,
    audit: AuditDep,
    actor: str | None = None,
    record_kind: str | None = None,
    record_id: str | None = None,
    cursor: Annotated[str | None, Query(description="'next' of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> Page[AccessLogEntryOut]:
    """Who read which record, when and through which route; oldest first."""
    scope = (actor, record_kind, record_id)
    try:
        after = decode_cursor(cursor, scope) if cursor else None
    except BadCursor as exc:
        raise ApiError(400, "bad_cursor", str(exc)) from exc
    logged = logged_filter(record_id, record_kind, actor)
    await run_in_threadpool(audit.record, "access_log", logged)
    query = AccessLogQuery(actor, record_kind, record_id, after, limit + 1)
    rows = await run_in_threadpool(store.access_log, query)
    count = await run_in_threadpool(store.count_access_log, query)
    page, more = rows[:limit], len(rows) > limit
    return Page[AccessLogEntryOut](
        data=[AccessLogEntryOut.model_validate(r, from_attributes=True) for r in page],
        count=count,
        next=encode_cursor(page[-1].at, page[-1].entry_id, scope) if more else None,
    )
