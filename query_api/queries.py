"""Read functions shared by the JSON routes and the support page.

Each takes the store and the current time and returns a response model (or None when the record
is unknown). They do not write the access log: the caller does, once per record shown.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from ingest.schema import Lane
from projectors.reads import TimelineQuery
from projectors.rows import CustomerTrace, utc
from projectors.store import Store
from query_api.chain import DEFAULT_STUCK_AFTER, build_chain, build_job_history
from query_api.models import EventOut, JobHistory, Page, TraceChain, TraceStatus

MAX_PAGE = 500
MAX_EXPORT_ROWS = 100_000


class BadCursor(ValueError):
    """A page cursor that this API did not issue (or that was altered)."""


def _cursor_check(when: str, event_id: str, as_of: str | None, scope: Sequence[object]) -> str:
    """A short digest of the position and what the page was asked for (customer, filters)."""
    parts = [when, event_id, as_of, *map(_scope_part, scope)]
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()[:16]


def _scope_part(part: object) -> str | None:
    if part is None:
        return None
    return utc(part).isoformat() if isinstance(part, datetime) else str(part)


def encode_cursor(
    occurred_at: datetime,
    event_id: str,
    scope: Sequence[object] = (),
    as_of: datetime | None = None,
) -> str:
    """Opaque cursor for the position after an event, valid only for the same ``scope`` (the
    record and the filters of the page it came from); ``as_of`` is the moment the first page
    was read (later pages show what was stored by then)."""
    when = utc(occurred_at).isoformat()
    stamp = utc(as_of).isoformat() if as_of is not None else None
    raw = orjson.dumps([when, event_id, stamp, _cursor_check(when, event_id, stamp, scope)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, scope: Sequence[object]) -> tuple[datetime, str, datetime | None]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, event_id, stamp, check = orjson.loads(raw)
        position = utc(datetime.fromisoformat(when))
        as_of = utc(datetime.fromisoformat(stamp)) if stamp is not None else None
    except (binascii.Error, ValueError, TypeError, OverflowError) as exc:
        raise BadCursor("the cursor is not valid; start again without it") from exc
    if not isinstance(event_id, str) or check != _cursor_check(when, event_id, stamp, scope):
        raise BadCursor(
            "the cursor does not belong to this query (other filters, or altered); "
            "start again without it"
        )
    # The digest is no secret (it catches mistakes, not forgers): a made-up position outside
    # ClickHouse's DateTime64 range (1900-2299) would make a query that cannot be built.
    if not all(1900 <= t.year <= 2299 for t in (position, as_of) if t is not None):
        raise BadCursor("the cursor is not valid; start again without it")
    return position, event_id, as_of


def decode_cursor(cursor: str, scope: Sequence[object] = ()) -> tuple[datetime, str]:
    """The position a cursor stands for; ``BadCursor`` if it is not one of ours, was altered,
    or was made for another record or other filters (its position would skip events there)."""
    position, event_id, _ = _decode(cursor, scope)
    return position, event_id


def _retention(store: Store) -> timedelta:
    return timedelta(days=store.policy.retention_days)


def get_trace_chain(
    store: Store, trace_id: str, *, now: datetime, stuck_after: timedelta = DEFAULT_STUCK_AFTER
) -> TraceChain | None:
    """The trace chain, or None when neither the timeline nor the index knows the trace."""
    events, index = store.trace_view(trace_id, now=now)
    if not events and not index:
        return None
    return build_chain(events, index, now, _retention(store), stuck_after=stuck_after)


def get_customer_traces(
    store: Store,
    traces: Sequence[CustomerTrace],
    *,
    now: datetime,
    stuck_after: timedelta = DEFAULT_STUCK_AFTER,
) -> list[tuple[CustomerTrace, TraceStatus]]:
    """A customer's latest traces, each with the status its trace page shows.

    The line's own columns cover only the customer's rows, and the latest of them says little
    (a signup is "done" while its email job never started or failed): each trace's status is
    derived from all of its events as ``get_trace_chain`` does, read together for the short
    list shown.
    """
    views = store.traces_view([t.trace_id for t in traces], now=now)
    retention = _retention(store)
    out: list[tuple[CustomerTrace, TraceStatus]] = []
    for line in traces:
        events, index = views.get(line.trace_id, ([], []))
        if not events and not index:
            continue  # gone between the two reads: nothing true to say about it
        chain = build_chain(events, index, now, retention, stuck_after=stuck_after)
        out.append((line, chain.summary.status))
    return out


def get_job_history(
    store: Store, job_id: str, *, now: datetime, stuck_after: timedelta = DEFAULT_STUCK_AFTER
) -> JobHistory | None:
    """One job's history, or None when nothing names the job."""
    events, index = store.job_view(job_id, now=now)
    return build_job_history(job_id, events, index, now, _retention(store), stuck_after=stuck_after)


@dataclass(frozen=True, slots=True)
class TimelineFilter:
    """Customer timeline filters: lane and ``[since, until)`` range."""

    lane: Lane | None = None
    since: datetime | None = None
    until: datetime | None = None

    def query(
        self, after: tuple[datetime, str] | None, limit: int, stored_by: datetime | None
    ) -> TimelineQuery:
        """The store query for these filters at a page position."""
        return TimelineQuery(
            since=self.since,
            until=self.until,
            lane=self.lane,
            after=after,
            limit=limit,
            stored_by=stored_by,
        )


def get_customer_timeline(
    store: Store,
    customer_id: str,
    *,
    now: datetime,
    filters: TimelineFilter | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> Page[EventOut] | None:
    """One page of the customer's timeline, oldest first; None for an unknown customer."""
    filters = filters or TimelineFilter()
    limit = max(1, min(limit, MAX_PAGE))
    scope = (customer_id, filters.lane, filters.since, filters.until)
    # Every page reads the timeline as it was stored when the first page was read: an event
    # stored meanwhile, dated before the position reached, would otherwise be skipped (and
    # counted), and one re-sent with another time shown on two pages. It shows on a new read.
    as_of: datetime | None = now
    after: tuple[datetime, str] | None = None
    try:
        if cursor:
            at, event_id, as_of = _decode(cursor, scope)
            after = (at, event_id)
    except BadCursor:
        # An unknown customer is 404 whatever the cursor says.
        if not store.customer_exists(customer_id, now=now):
            return None
        raise
    # One extra row tells whether a next page exists.
    query = filters.query(after, limit + 1, as_of)
    found = store.customer_page(customer_id, query, now=now)
    if found is None:
        return None
    rows, count = found
    page, more = rows[:limit], len(rows) > limit
    return Page[EventOut](
        data=[EventOut.from_timeline(e) for e in page],
        count=count,
        next=encode_cursor(page[-1].occurred_at, page[-1].event_id, scope, as_of) if more else None,
    )


class ExportTooLarge(ValueError):
    """More events match than one export holds; the caller should narrow the filters."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"More than {limit} events match; narrow the export with 'since' and 'until' (or "
            "the lane) and export each part."
        )


def export_customer_timeline(
    store: Store,
    customer_id: str,
    *,
    now: datetime,
    filters: TimelineFilter | None = None,
) -> list[EventOut] | None:
    """Every event of the filtered timeline, oldest first, as stored at ``now``.

    Raises ``ExportTooLarge`` when more than ``MAX_EXPORT_ROWS`` match: a file cut short
    without a word would read as the whole history.
    """
    if not store.customer_exists(customer_id, now=now):
        return None
    limit = MAX_EXPORT_ROWS
    filters = filters or TimelineFilter()
    out: list[EventOut] = []
    after: tuple[datetime, str] | None = None
    while True:
        # One row more than the limit tells the file would be cut; the parts are read of one
        # moment (``now``), as pages are.
        query = filters.query(after, min(10_000, limit + 1 - len(out)), now)
        rows = store.customer_timeline(customer_id, query, now=now)
        out.extend(EventOut.from_timeline(e) for e in rows)
        if len(out) > limit:
            raise ExportTooLarge(limit)
        if len(rows) < query.limit:
            return out
        after = (rows[-1].occurred_at, rows[-1].event_id)
