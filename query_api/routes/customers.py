"""Customer timeline, JSON pages and CSV export (roles support, engineer, admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ingest.schema import Lane
from projectors.rows import utc
from query_api.deps import AuditDep, NowDep, StoreDep, SupportUser
from query_api.errors import (
    ApiError,
    error_responses,
    not_found,
    refuse_unstorable_id,
    text_responses,
)
from query_api.exports import timeline_csv
from query_api.models import EventOut, Page
from query_api.queries import (
    MAX_PAGE,
    BadCursor,
    ExportTooLarge,
    TimelineFilter,
    export_customer_timeline,
    get_customer_timeline,
)

router = APIRouter(prefix="/v1/customers", tags=["customers"])

CustomerIdPath = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$", examples=["48291"])
]
_ERRORS = error_responses(400, 401, 403, 404, 503)


def _query_time(name: str, value: datetime | None) -> datetime | None:
    """``value`` in UTC; 400 outside ClickHouse's DateTime64 range (1900-2299), where the query
    could not be built, or at the edge of Python's (year 1 or 9999 with an offset: no UTC)."""
    if value is None:
        return None
    try:
        value = utc(value)
    except OverflowError:
        value = None
    if value is None or not 1900 <= value.year <= 2299:
        raise ApiError(400, "bad_range", f"'{name}' must be between 1900 and 2299.")
    return value


def timeline_filter(
    lane: Annotated[Lane | None, Query(description="customer or system")] = None,
    since: Annotated[datetime | None, Query(description="from this time (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="up to this time (exclusive)")] = None,
) -> TimelineFilter:
    """Lane and time range from the query string; a range that ends before it starts is 400.

    Times without a zone are read as UTC, like every time the API returns.
    """
    since, until = _query_time("since", since), _query_time("until", until)
    if since is not None and until is not None and until <= since:
        raise ApiError(400, "bad_range", "'until' must be later than 'since'.")
    return TimelineFilter(lane=lane, since=since, until=until)


FilterDep = Annotated[TimelineFilter, Depends(timeline_filter)]


@router.get("/{customer_id}/timeline", response_model=Page[EventOut], responses=_ERRORS)
async def get_timeline(
    customer_id: CustomerIdPath,
    _: SupportUser,
    store: StoreDep,
    audit: AuditDep,
    now: NowDep,
    filters: FilterDep,
    cursor: Annotated[str | None, Query(description="'next' of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> Page[EventOut]:
    """The customer's events oldest first, paginated; ``next`` is null on the last page
    and is valid only with the same filters (else 400 ``bad_cursor``)."""
    refuse_unstorable_id("customer", customer_id)
    try:
        page = await audit.around(
            "customer",
            customer_id,
            get_customer_timeline,
            store,
            customer_id,
            now=now,
            filters=filters,
            cursor=cursor,
            limit=limit,
        )
    except BadCursor as exc:
        raise ApiError(400, "bad_cursor", str(exc)) from exc
    if page is None:
        raise not_found("customer", customer_id)
    return page


@router.get(
    "/{customer_id}/timeline.csv",
    response_model=None,
    response_class=Response,  # documents the 200 as CSV only (errors stay JSON)
    responses=text_responses("text/csv", 400, 401, 403, 404, 503),
)
async def get_timeline_csv(
    customer_id: CustomerIdPath,
    _: SupportUser,
    store: StoreDep,
    audit: AuditDep,
    now: NowDep,
    filters: FilterDep,
) -> Response:
    """The whole filtered timeline as one CSV file (no paging), with the same masks; cells a
    spreadsheet would run as a formula start with ``'``. UTF-8 with a byte order mark, a header
    row, then these columns in this order: occurred_at, lane, label, type, status, attempt,
    error_code, reason, trace_id, job_id, request_id, customer_id, fields (``key=value; ...``),
    event_id. More than 100,000 events is 400 ``export_too_large``: narrow ``since``/``until``
    rather than get a cut file."""
    refuse_unstorable_id("customer", customer_id)
    await run_in_threadpool(audit.record, "customer_export", customer_id)
    try:
        events = await run_in_threadpool(
            export_customer_timeline, store, customer_id, now=now, filters=filters
        )
    except ExportTooLarge as exc:
        raise ApiError(400, "export_too_large", str(exc)) from None
    if events is None:
        raise not_found("customer", customer_id)
    return Response(
        timeline_csv(events),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{customer_id}-timeline.csv"'},
    )
