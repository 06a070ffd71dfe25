"""Read queries behind the API. Every answer shows each ``event_id`` at most once.

Deduplication is ``ORDER BY event_id, ingested_at DESC LIMIT 1 BY event_id`` over the rows the
filter selects: the newest version of each event wins, exactly what ReplacingMergeTree keeps
after merges, but correct before merges run. Unlike ``FINAL`` it dedupes by ``event_id`` even
across sort keys and partitions, and it still lets the customer projection serve the
read (``FINAL`` reads the base table). The trace and job views, which read a handful of rows,
pick the newest version of each event in Python instead (same rule, one stage less).

A customer timeline's range and lane apply after that choice (``_deduped``'s ``filtered``):
a re-send may move an event to another time, partition or lane, and only its newest
version may be shown.

Timeline reads also filter ``occurred_at >= now - retention``, so an answer honours retention
exactly even while TTL merges have not removed old rows yet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ingest.schema import Lane, TimelineEvent
from projectors.access_writer import AccessWriter
from projectors.clients import ClientPool
from projectors.retention import RetentionPolicy
from projectors.rows import (
    ACCESS_LOG_COLUMNS,
    DEAD_LETTER_COLUMNS,
    TIMELINE_COLUMNS,
    TRACE_INDEX_COLUMNS,
    VIEW_COLUMNS,
    AccessRecord,
    CustomerContact,
    CustomerMatch,
    CustomerProblem,
    CustomerTrace,
    DeadLetter,
    SubjectMatch,
    TraceIndexRow,
    contact_from,
    dead_letter_from_row,
    timeline_from_row,
    timeline_view_from_packed,
    timeline_view_from_row,
    utc,
)

# SQL is assembled only from the column constants above and fixed fragments; every value a
# caller supplies travels as a server-side {name:Type} parameter (hence the S608 waivers).
_COLS = ", ".join(TIMELINE_COLUMNS)
_VIEW = ", ".join(VIEW_COLUMNS)
_TS = "DateTime64(6, 'UTC')"
# The shortest value a search matches against the end of order, workspace and request IDs.
MIN_CUT_ID = 4
_VIEW_EVENT_ID = VIEW_COLUMNS.index("event_id")
_VIEW_OCCURRED_AT = VIEW_COLUMNS.index("occurred_at")

# Reads a view runs beside its main one (a trace's index rows): threads are started on demand
# and each borrows its own connection from the store's pool.
_SIDE_READS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="safetrail-read")


def _newest_versions(rows: Sequence[Sequence[Any]], id_at: int) -> list[Sequence[Any]]:
    """The newest version of each event among ``rows`` (its id at ``id_at``, its
    ``ingested_at`` last), as ReplacingMergeTree keeps after merges."""
    newest: dict[str, Sequence[Any]] = {}
    for row in rows:
        kept = newest.get(row[id_at])
        if kept is None or row[-1] > kept[-1]:
            newest[row[id_at]] = row
    return list(newest.values())


def _deduped(where: str, cols: str = _COLS, *, filtered: str = "") -> str:
    """Newest version of each event matching ``where``, as a subquery; with ``filtered``, only
    those whose newest version matches it (``filter_at`` is its ``occurred_at``,
    ``filter_lane`` its lane).

    A filter that may differ between two versions of one event (its time, its lane) belongs
    in ``filtered``, applied after the newest version is picked: applied before, it would pick
    the newest of the versions it lets through, and show a version a later re-send replaced
    (one that merges never fold, when its time falls in another partition).
    """
    extra = ", occurred_at AS filter_at, lane AS filter_lane" if filtered else ""
    inner = (
        f"SELECT {cols}{extra} FROM timeline_events WHERE {where} "  # noqa: S608
        "ORDER BY event_id, ingested_at DESC LIMIT 1 BY event_id"
    )
    return f"SELECT {cols} FROM ({inner}) WHERE {filtered}" if filtered else inner  # noqa: S608


@dataclass(frozen=True, slots=True)
class TimelineQuery:
    """Filters and page position for a customer timeline (``until`` is exclusive)."""

    since: datetime | None = None
    until: datetime | None = None
    lane: Lane | None = None
    after: tuple[datetime, str] | None = None
    limit: int = 100
    # Only rows stored (``ingested_at``) by then: later pages of one read see what its first
    # page saw, whatever arrives meanwhile.
    stored_by: datetime | None = None


@dataclass(frozen=True, slots=True)
class AccessLogQuery:
    """Filters and page position for the access log, oldest first."""

    actor: str | None = None
    record_kind: str | None = None
    record_id: str | None = None
    after: tuple[datetime, str] | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class StoreCounts:
    """Distinct records per table (what any answer can show, before or after merges)."""

    timeline_events: int
    trace_index: int
    raw_events: int
    dead_letters: int
    access_log: int


class StoreBehind(RuntimeError):
    """Acknowledged events are not readable yet: the writer that holds them (the embedded
    collector's ingest journal) could not store them in time. They are kept; retry."""


class StoreReads:
    """Read side of ``Store``; kept apart so each module stays about one thing."""

    _pool: ClientPool
    _access: AccessWriter
    policy: RetentionPolicy
    _read_barriers: tuple[Callable[[], None], ...] = ()
    # Views of events read their ``view`` column (migration 0008); off, they read the columns
    # themselves, as on a schema from before that migration.
    view_column: bool = True

    def add_read_barrier(self, barrier: Callable[[], None]) -> None:
        """Call ``barrier`` before every read: a writer that acknowledges before it inserts
        (the embedded collector's journal) makes each read wait until what it acknowledged is
        stored, so every acknowledged event is readable."""
        self._read_barriers = (*self._read_barriers, barrier)

    def remove_read_barrier(self, barrier: Callable[[], None]) -> None:
        """Stop calling ``barrier`` (its writer has stored everything and closed)."""
        self._read_barriers = tuple(b for b in self._read_barriers if b != barrier)

    def _wait_for_writers(self) -> None:
        for barrier in self._read_barriers:
            barrier()

    def flush_access(self) -> None:
        """Make every access-log entry written so far visible to SQL on ``access_log`` (the
        embedded engine journals entries first; see ``projectors.access_writer``)."""
        self._access.flush()

    def _rows(self, sql: str, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
        self._wait_for_writers()
        with self._pool.client() as client:
            rows: Sequence[Sequence[Any]] = client.query(sql, parameters=params).result_rows
            return rows

    def _cutoff(self, now: datetime | None) -> datetime:
        return self.policy.timeline_cutoff(utc(now) if now else datetime.now(UTC))

    def _timeline(self, where: str, params: dict[str, Any]) -> list[TimelineEvent]:
        sql = f"SELECT {_COLS} FROM ({_deduped(where)}) ORDER BY occurred_at, event_id"  # noqa: S608
        return [timeline_from_row(row) for row in self._rows(sql, params)]

    def _timeline_view(self, where: str, params: dict[str, Any]) -> list[TimelineEvent]:
        """``_timeline`` for the API's views of a trace or job (``rows.VIEW_COLUMNS``).

        For the small row sets of one trace or job: the rows come back as stored and the
        newest version of each event is picked here, which costs ClickHouse a sort stage and a
        subquery less (about 15% of the read) and gives the same answer. Each row is read as
        its ``view`` column (the shown columns serialized at insert, migration 0008): a read of
        a handful of rows costs ClickHouse per column it opens. Should the newest version of
        an event have no view (stored before that migration) the columns are read instead.
        """
        if not self.view_column:
            return self._timeline_columns(where, params)
        sql = f"SELECT event_id, view, ingested_at FROM timeline_events WHERE {where}"  # noqa: S608
        newest = _newest_versions(self._rows(sql, params), 0)
        if not all(row[1] for row in newest):
            return self._timeline_columns(where, params)
        events = [timeline_view_from_packed(row[0], row[1]) for row in newest]
        return sorted(events, key=lambda e: (e.occurred_at, e.event_id))

    def _timeline_columns(self, where: str, params: dict[str, Any]) -> list[TimelineEvent]:
        """``_timeline_view`` from the columns themselves (rows stored without a view)."""
        sql = f"SELECT {_VIEW}, ingested_at FROM timeline_events WHERE {where}"  # noqa: S608
        newest = _newest_versions(self._rows(sql, params), _VIEW_EVENT_ID)
        ordered = sorted(newest, key=lambda r: (r[_VIEW_OCCURRED_AT], r[_VIEW_EVENT_ID]))
        return [timeline_view_from_row(row[:-1]) for row in ordered]

    def trace_events(self, trace_id: str, *, now: datetime | None = None) -> list[TimelineEvent]:
        """Events of a trace within retention, oldest first."""
        where = f"trace_id = {{trace_id:String}} AND occurred_at >= {{since:{_TS}}}"
        return self._timeline(where, {"trace_id": trace_id, "since": self._cutoff(now)})

    def job_events(self, job_id: str, *, now: datetime | None = None) -> list[TimelineEvent]:
        """Events naming a job (its own and the request that enqueued it), oldest first.

        The job's traces come from ``trace_index``; the timeline is read by ``trace_id``, its
        sorting key (see ``_job_traces``).
        """
        traces = self._job_traces(job_id)
        if not traces:
            return []
        where = (
            "trace_id IN {traces:Array(String)} AND job_id = {job_id:String} "
            f"AND occurred_at >= {{since:{_TS}}}"
        )
        params = {"traces": traces, "job_id": job_id, "since": self._cutoff(now)}
        return self._timeline(where, params)

    def _job_traces(self, job_id: str) -> list[str]:
        """The traces holding events that name ``job_id``: the trace index answers through its
        ``by_job`` projection, so the timeline needs no copy of its rows sorted by job."""
        sql = "SELECT DISTINCT trace_id FROM trace_index WHERE job_id = {job_id:String}"
        return sorted(str(row[0]) for row in self._rows(sql, {"job_id": job_id}))

    def _index(self, where: str, params: dict[str, Any]) -> list[TraceIndexRow]:
        sql = (
            f"SELECT {', '.join(TRACE_INDEX_COLUMNS)} FROM trace_index WHERE {where} "  # noqa: S608
            "ORDER BY event_id LIMIT 1 BY event_id"
        )
        rows = [TraceIndexRow.from_row(row) for row in self._rows(sql, params)]
        return sorted(rows, key=lambda r: (r.occurred_at, r.event_id))

    def _index_versions(self, where: str, params: dict[str, Any]) -> list[TraceIndexRow]:
        sql = f"SELECT {', '.join(TRACE_INDEX_COLUMNS)} FROM trace_index WHERE {where}"  # noqa: S608
        return [TraceIndexRow.from_row(row) for row in self._rows(sql, params)]

    def _indexed_timeline(
        self, where: str, params: dict[str, Any], now: datetime | None, *, by_trace: bool = False
    ) -> tuple[list[TimelineEvent], list[TraceIndexRow]]:
        """Live events matching ``where`` and their index rows.

        Every stored event has an index row with the same ``occurred_at``, written by the
        insert that stored it (``trace_index_mv``). A trace's events are found by the
        timeline's sorting key, so its two reads run at the same time on two connections.
        With ``by_trace`` (a job's events: ``where`` alone would need a copy of the timeline
        sorted by job) the index is read first: its rows (every version, before any merge
        folds them) name the traces, which the timeline read then carries so its sorting key
        serves it, and bound the events' times, so it opens only the parts that hold them.
        Should an event the index calls live be missing from the timeline read (an insert
        landing between the two reads, or a re-sent version with another time that merges
        already folded in the index), the read is repeated within retention alone.
        """
        cutoff = self._cutoff(now)
        since = f"{where} AND occurred_at >= {{since:{_TS}}}"
        events: list[TimelineEvent] | None = None
        if by_trace:
            versions = self._index_versions(where, params)
            if versions:
                where = f"trace_id IN {{traces:Array(String)}} AND {where}"
                since = f"{where} AND occurred_at >= {{since:{_TS}}}"
                params = {**params, "traces": sorted({r.trace_id for r in versions})}
                times = [r.occurred_at for r in versions]
                bounds = {"since": max(cutoff, min(times)), "upto": max(times)}
                if bounds["since"] <= bounds["upto"]:
                    bounded = f"{since} AND occurred_at <= {{upto:{_TS}}}"
                    events = self._timeline_view(bounded, {**params, **bounds})
        else:
            pending = _SIDE_READS.submit(self._index_versions, where, params)
            events = self._timeline_view(since, {**params, "since": cutoff})
            versions = pending.result()
        if not versions:
            return [], []
        index = sorted(
            {r.event_id: r for r in sorted(versions, key=lambda r: r.event_id)}.values(),
            key=lambda r: (r.occurred_at, r.event_id),
        )
        live = {r.event_id for r in versions if r.occurred_at >= cutoff}
        if not live:
            return [], index
        if events is None or not live <= {e.event_id for e in events}:
            events = self._timeline_view(since, {**params, "since": cutoff})
        return events, index

    def trace_view(
        self, trace_id: str, *, now: datetime | None = None
    ) -> tuple[list[TimelineEvent], list[TraceIndexRow]]:
        """``trace_events`` and ``trace_index`` of a trace, read faster together; the events
        carry the columns the API's views show (``rows.VIEW_COLUMNS``)."""
        return self._indexed_timeline("trace_id = {trace_id:String}", {"trace_id": trace_id}, now)

    def traces_view(
        self, trace_ids: Sequence[str], *, now: datetime | None = None
    ) -> dict[str, tuple[list[TimelineEvent], list[TraceIndexRow]]]:
        """``trace_view`` of several traces in the same two reads, by trace; a trace neither
        the timeline nor the index knows is left out. For a short list (a customer's latest
        traces, whose status is the one each trace page derives from all of its events)."""
        if not trace_ids:
            return {}
        events, index = self._indexed_timeline(
            "trace_id IN {trace_ids:Array(String)}", {"trace_ids": sorted(set(trace_ids))}, now
        )
        views: dict[str, tuple[list[TimelineEvent], list[TraceIndexRow]]] = {}
        for event in events:
            views.setdefault(event.trace_id, ([], []))[0].append(event)
        for row in index:
            views.setdefault(row.trace_id, ([], []))[1].append(row)
        return views

    def job_view(
        self, job_id: str, *, now: datetime | None = None
    ) -> tuple[list[TimelineEvent], list[TraceIndexRow]]:
        """``job_events`` and ``job_index`` of a job, read faster together; the events carry
        the columns the API's views show (``rows.VIEW_COLUMNS``)."""
        return self._indexed_timeline(
            "job_id = {job_id:String}", {"job_id": job_id}, now, by_trace=True
        )

    def trace_index(self, trace_id: str) -> list[TraceIndexRow]:
        """Every event ever accepted for a trace (ids only, regardless of retention)."""
        return self._index("trace_id = {trace_id:String}", {"trace_id": trace_id})

    def job_index(self, job_id: str) -> list[TraceIndexRow]:
        """Every event ever accepted naming a job (ids only, regardless of retention)."""
        return self._index("job_id = {job_id:String}", {"job_id": job_id})

    def _customer_where(
        self, customer_id: str, now: datetime | None, lane: Lane | None = None
    ) -> tuple[str, dict[str, Any]]:
        """The customer's rows within retention (in ``lane``, if given), for the reads that
        aggregate them; pages pick each event's newest version first (``_customer_versions``)."""
        where = f"customer_id = {{customer_id:String}} AND occurred_at >= {{since:{_TS}}}"
        params: dict[str, Any] = {"customer_id": customer_id, "since": self._cutoff(now)}
        if lane is not None:
            where += " AND lane = {lane:String}"
            params["lane"] = lane.value
        return where, params

    def _customer_versions(
        self, customer_id: str, q: TimelineQuery, now: datetime | None
    ) -> tuple[str, str, dict[str, Any]]:
        """The customer's rows within retention (and stored by ``q.stored_by``), the filter
        of ``q`` their newest versions must match (``_deduped``'s ``filtered``), and the
        parameters of both."""
        where, params = self._customer_where(customer_id, now)
        if q.stored_by is not None:
            where += f" AND ingested_at <= {{stored_by:{_TS}}}"
            params["stored_by"] = utc(q.stored_by)
        filtered = ["1"]
        if q.since is not None:
            filtered.append(f"filter_at >= {{from:{_TS}}}")
            params["from"] = utc(q.since)
        if q.until is not None:
            filtered.append(f"filter_at < {{until:{_TS}}}")
            params["until"] = utc(q.until)
        if q.lane is not None:
            filtered.append("filter_lane = {lane:String}")
            params["lane"] = q.lane.value
        return where, " AND ".join(filtered), params

    def customer_exists(self, customer_id: str, *, now: datetime | None = None) -> bool:
        """True when the customer has any event within retention."""
        where, params = self._customer_where(customer_id, now)
        return bool(self._rows(f"SELECT 1 FROM timeline_events WHERE {where} LIMIT 1", params))  # noqa: S608

    def customer_overview(
        self, customer_id: str, *, now: datetime | None = None
    ) -> tuple[CustomerContact, list[CustomerTrace], list[CustomerProblem]]:
        """``customer_contact``, ``customer_traces`` and ``customer_problems``, read at the
        same time."""
        contact = _SIDE_READS.submit(self.customer_contact, customer_id, now=now)
        problems = _SIDE_READS.submit(self.customer_problems, customer_id, now=now)
        traces = self.customer_traces(customer_id, now=now)
        return contact.result(), traces, problems.result()

    def customer_contact(self, customer_id: str, *, now: datetime | None = None) -> CustomerContact:
        """The masked email and phone kept by the customer's latest actions within retention."""
        where, params = self._customer_where(customer_id, now, Lane.CUSTOMER)
        sql = (
            f"SELECT fields FROM timeline_events WHERE {where} AND notEmpty(fields) "  # noqa: S608
            "ORDER BY occurred_at DESC LIMIT 20"
        )
        return contact_from([dict(row[0]) for row in self._rows(sql, params)])

    def customer_traces(
        self, customer_id: str, *, now: datetime | None = None, limit: int = 10
    ) -> list[CustomerTrace]:
        """The customer's latest traces within retention, one line each, latest first."""
        where, params = self._customer_where(customer_id, now)
        params["limit"] = limit
        sql = (
            "SELECT trace_id, min(occurred_at), max(occurred_at) AS last_at, "  # noqa: S608
            "argMin(label, occurred_at), argMax(label, occurred_at), "
            "argMax(status, occurred_at), uniqExactIf(event_id, error_code != ''), "
            "argMaxIf(reason, occurred_at, reason != ''), "
            "argMaxIf(label, occurred_at, lane = 'customer'), anyIf(order_id, order_id != '') "
            f"FROM timeline_events WHERE {where} "
            "GROUP BY trace_id ORDER BY last_at DESC, trace_id LIMIT {limit:UInt32}"
        )
        return [
            CustomerTrace(
                trace_id=str(trace),
                started_at=utc(started),
                last_at=utc(last),
                first_label=str(first),
                last_label=str(latest),
                last_status=str(status) or None,
                errors=int(errors),
                last_reason=str(reason) or None,
                last_action=str(action) or None,
                order_id=str(order) or None,
            )
            for trace, started, last, first, latest, status, errors, reason, action, order in (
                self._rows(sql, params)
            )
        ]

    def customer_problems(
        self, customer_id: str, *, now: datetime | None = None, limit: int = 5
    ) -> list[CustomerProblem]:
        """The errors the customer's traces met within retention, the most widespread first:
        has this customer hit the same problem before?"""
        where, params = self._customer_where(customer_id, now)
        params["limit"] = limit
        sql = (
            "SELECT error_code, argMax(reason, occurred_at), uniqExact(trace_id) AS traces, "  # noqa: S608
            f"max(occurred_at) AS last_at FROM timeline_events WHERE {where} "
            "AND error_code != '' "
            "GROUP BY error_code ORDER BY traces DESC, last_at DESC LIMIT {limit:UInt32}"
        )
        return [
            CustomerProblem(str(code), str(reason) or None, int(traces), utc(last))
            for code, reason, traces, last in self._rows(sql, params)
        ]

    def traces_naming(
        self,
        subject_id: str,
        *,
        now: datetime | None = None,
        limit: int = 50,
        prefix_cut: bool = False,
    ) -> list[SubjectMatch]:
        """Traces whose events named ``subject_id`` as an order, workspace or request ID
        within retention, latest first (at most ``limit``).

        With ``prefix_cut``, IDs that end in ``subject_id`` after a ``_`` or ``-`` match
        instead: a receipt or an email shows ``UD2WHKF4`` for ``ord_ud2whkf4``. That reads
        every ID of the index rather than one granule, so it is the last thing a search
        tries, and only for values of at least ``MIN_CUT_ID`` characters.
        """
        if prefix_cut:
            if len(subject_id) < MIN_CUT_ID:
                return []
            match = "(endsWith(id, {cut_a:String}) OR endsWith(id, {cut_b:String}))"
        else:
            match = "id = {id:String}"
        sql = (
            "SELECT kind, id, trace_id, any(customer_id), max(occurred_at) AS last_at "  # noqa: S608
            "FROM subject_index WHERE kind IN ('order', 'workspace', 'request') "
            f"AND {match} AND occurred_at >= {{since:{_TS}}} "
            "GROUP BY kind, id, trace_id ORDER BY last_at DESC, trace_id, id LIMIT {limit:UInt32}"
        )
        params = {
            "id": subject_id,
            "cut_a": f"_{subject_id}",
            "cut_b": f"-{subject_id}",
            "since": self._cutoff(now),
            "limit": limit,
        }
        return [
            SubjectMatch(str(kind), str(named), str(trace), str(customer) or None, utc(at))
            for kind, named, trace, customer, at in self._rows(sql, params)
        ]

    def customer_timeline(
        self, customer_id: str, query: TimelineQuery, *, now: datetime | None = None
    ) -> list[TimelineEvent]:
        """One page of a customer's timeline, oldest first, starting after ``query.after``.

        Deduplication runs before the page position is applied so a re-sent event can never
        appear on two pages.
        """
        where, filtered, params = self._customer_versions(customer_id, query, now)
        sql = f"SELECT {_COLS} FROM ({_deduped(where, filtered=filtered)})"  # noqa: S608
        if query.after is not None:
            sql += f" WHERE (occurred_at, event_id) > ({{after_ts:{_TS}}}, {{after_id:String}})"
            params["after_ts"], params["after_id"] = utc(query.after[0]), query.after[1]
        sql += " ORDER BY occurred_at, event_id LIMIT {limit:UInt32}"
        params["limit"] = query.limit
        return [timeline_from_row(row) for row in self._rows(sql, params)]

    def customer_page(
        self, customer_id: str, query: TimelineQuery, *, now: datetime | None = None
    ) -> tuple[list[TimelineEvent], int] | None:
        """``customer_timeline`` and ``count_customer_timeline`` in one statement; None when
        the customer has no event within retention (``customer_exists`` is false).

        The count rides on each row as a window over the deduplicated events, taken before the
        page position applies, so it is the same number ``count_customer_timeline`` gives. Only
        an empty page needs the other two statements, to tell "no such customer" from "past
        the last page". The events carry the columns the API's views show
        (``rows.VIEW_COLUMNS``).
        """
        where, filtered, params = self._customer_versions(customer_id, query, now)
        if query.after is not None:
            params["after_ts"], params["after_id"] = utc(query.after[0]), query.after[1]
        params["limit"] = query.limit
        # Each event as its ``view`` column (see ``_timeline_view``); a page holding an event
        # stored before migration 0008 is read again from the columns.
        packed = self.view_column
        cols = "event_id, occurred_at, view" if packed else _VIEW
        rows = self._rows(self._page_sql(where, filtered, cols, query), params)
        if packed and not all(row[2] for row in rows):
            sql = self._page_sql(where, filtered, _VIEW, query)
            packed, rows = False, self._rows(sql, params)
        if rows:
            if packed:
                page = [timeline_view_from_packed(row[0], row[2]) for row in rows]
            else:
                page = [timeline_view_from_row(row[:-1]) for row in rows]
            return page, int(rows[0][-1])
        if not self.customer_exists(customer_id, now=now):
            return None
        return [], self.count_customer_timeline(customer_id, query, now=now)

    @staticmethod
    def _page_sql(where: str, filtered: str, cols: str, query: TimelineQuery) -> str:
        """One customer page in ``cols`` (which hold ``occurred_at`` and ``event_id``), each row
        with the count of the deduplicated events before the page position applies."""
        sql = (
            f"SELECT {cols}, total FROM (SELECT {cols}, count() OVER () AS total "  # noqa: S608
            f"FROM ({_deduped(where, cols, filtered=filtered)}))"
        )
        if query.after is not None:
            sql += f" WHERE (occurred_at, event_id) > ({{after_ts:{_TS}}}, {{after_id:String}})"
        return sql + " ORDER BY occurred_at, event_id LIMIT {limit:UInt32}"

    def count_customer_timeline(
        self, customer_id: str, query: TimelineQuery, *, now: datetime | None = None
    ) -> int:
        """How many distinct events match the filters (ignores page position)."""
        where, filtered, params = self._customer_versions(customer_id, query, now)
        deduped = _deduped(where, "event_id", filtered=filtered)
        return int(self._rows(f"SELECT count() FROM ({deduped})", params)[0][0])  # noqa: S608

    def customers_by_lookup_key(self, lookup_key: str, *, now: datetime | None = None) -> list[str]:
        """Customer ids whose kept emails/phones hash to ``lookup_key`` within retention."""
        return sorted(m.customer_id for m in self.customers_by_lookup_keys([lookup_key], now=now))

    def customers_by_lookup_keys(
        self, lookup_keys: Sequence[str], *, now: datetime | None = None
    ) -> list[CustomerMatch]:
        """Customers whose kept emails/phones hash to any of ``lookup_keys`` (one value's
        token under the current and the retired HMAC keys) within retention, the one seen
        last with it first."""
        if not lookup_keys:
            return []
        sql = (
            "SELECT customer_id, max(last_seen) AS seen FROM customer_lookup "  # noqa: S608
            f"WHERE lookup_key IN {{keys:Array(String)}} AND last_seen >= {{since:{_TS}}} "
            "GROUP BY customer_id ORDER BY seen DESC, customer_id"
        )
        rows = self._rows(sql, {"keys": list(lookup_keys), "since": self._cutoff(now)})
        return [CustomerMatch(str(customer), utc(seen)) for customer, seen in rows]

    def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """Restricted: the most recent dead letters, newest first."""
        sql = (
            f"SELECT {', '.join(DEAD_LETTER_COLUMNS)} FROM dead_letters "  # noqa: S608
            "ORDER BY dead_letter_id, received_at DESC LIMIT 1 BY dead_letter_id"
        )
        sql = f"SELECT * FROM ({sql}) ORDER BY received_at DESC LIMIT {{limit:UInt32}}"  # noqa: S608
        return [dead_letter_from_row(row) for row in self._rows(sql, {"limit": limit})]

    def _access_where(self, query: AccessLogQuery) -> tuple[str, dict[str, Any]]:
        conditions, params = ["1"], dict[str, Any](limit=query.limit)
        for name in ("actor", "record_kind", "record_id"):
            value = getattr(query, name)
            if value is not None:
                conditions.append(f"{name} = {{{name}:String}}")
                params[name] = value
        return " AND ".join(conditions), params

    def access_log(self, query: AccessLogQuery) -> list[AccessRecord]:
        """Access-log entries matching the filters, oldest first, after ``query.after``."""
        self.flush_access()
        where, params = self._access_where(query)
        if query.after is not None:
            where += f" AND (at, entry_id) > ({{after_ts:{_TS}}}, {{after_id:String}})"
            params["after_ts"], params["after_id"] = utc(query.after[0]), query.after[1]
        sql = (
            f"SELECT {', '.join(ACCESS_LOG_COLUMNS)}, details FROM access_log "  # noqa: S608
            f"WHERE {where} ORDER BY at, entry_id LIMIT {{limit:UInt32}}"
        )
        return [AccessRecord.from_row(row) for row in self._rows(sql, params)]

    def count_access_log(self, query: AccessLogQuery) -> int:
        """How many access-log entries match the filters (ignores page position)."""
        self.flush_access()
        where, params = self._access_where(query)
        return int(self._rows(f"SELECT count() FROM access_log WHERE {where}", params)[0][0])  # noqa: S608

    def counts(self) -> StoreCounts:
        """Distinct records per table, counted the way reads deduplicate."""
        self.flush_access()
        sql = (
            "SELECT (SELECT uniqExact(event_id) FROM timeline_events),"
            " (SELECT uniqExact(trace_id, event_id) FROM trace_index),"
            " (SELECT uniqExact(event_id) FROM raw_events),"
            " (SELECT uniqExact(dead_letter_id) FROM dead_letters),"
            " (SELECT count() FROM access_log)"
        )
        row = self._rows(sql, {})[0]
        return StoreCounts(*(int(v) for v in row))
