"""Restricted reads and writes behind the engineers' route: raw ranges, dead-letter status.

Only ``projectors.replay`` and the engineer-only API routes use these; every caller writes an
access-log entry first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.schema import RawEvent, TimelineEvent
from projectors.clients import ClientPool
from projectors.retention import RetentionPolicy
from projectors.rows import (
    DEAD_LETTER_COLUMNS,
    TIMELINE_COLUMNS,
    DeadLetter,
    dead_letter_from_row,
    timeline_from_row,
    utc,
)

_TS = "DateTime64(6, 'UTC')"


def glob_to_like(pattern: str) -> str:
    """A shell-style glob (``*`` any run, ``?`` one character) as a SQL LIKE pattern."""
    out = []
    for char in pattern:
        if char in "%_\\":
            out.append("\\" + char)
        elif char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        else:
            out.append(char)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class RawRange:
    """Raw events received in ``[start, end)``, optionally of one trace and matching a type glob."""

    start: datetime
    end: datetime
    trace_id: str | None = None
    type_glob: str | None = None

    def where(self) -> tuple[str, dict[str, Any]]:
        """SQL condition and parameters selecting the range in ``raw_events``."""
        where = f"received_at >= {{start:{_TS}}} AND received_at < {{end:{_TS}}}"
        params: dict[str, Any] = {"start": utc(self.start), "end": utc(self.end)}
        if self.trace_id:
            where += " AND trace_id = {trace_id:String}"
            params["trace_id"] = self.trace_id
        if self.type_glob:
            where += " AND type LIKE {type_like:String}"
            params["type_like"] = glob_to_like(self.type_glob)
        return where, params


@dataclass(frozen=True, slots=True)
class DeadLetterStatus:
    """A dead letter and, once a re-drive turned it into an event, when and by which replay."""

    letter: DeadLetter
    redriven_at: datetime | None
    replay_id: str | None


class RestrictedStore:
    """Mixin of ``Store`` for the engineers' route.

    Every read here honours raw retention exactly (``received_at`` within
    ``raw_retention_days``), as timeline reads honour theirs: TTL drops a day's partition only
    once its newest row expired, and only when a merge gets to it, so rows past retention can
    still be on disk for a day or more.
    """

    _pool: ClientPool
    policy: RetentionPolicy

    def _rows(self, sql: str, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
        raise NotImplementedError  # provided by StoreReads

    def _insert(self, table: str, columns: list[list[Any]], names: Sequence[str]) -> None:
        raise NotImplementedError  # provided by Store

    def _raw_since(self, params: dict[str, Any]) -> str:
        """The condition keeping rows received within raw retention; sets ``raw_since``."""
        params["raw_since"] = datetime.now(UTC) - timedelta(days=self.policy.raw_retention_days)
        return f"received_at >= {{raw_since:{_TS}}}"

    def raw_trace(self, trace_id: str) -> list[RawEvent]:
        """The raw events of a trace received within raw retention, oldest first (newest
        received version of each)."""
        params: dict[str, Any] = {"trace_id": trace_id}
        since = self._raw_since(params)
        sql = (
            "SELECT payload FROM (SELECT event_id, occurred_at, payload FROM raw_events "  # noqa: S608
            f"WHERE trace_id = {{trace_id:String}} AND {since} "
            "ORDER BY event_id, received_at DESC LIMIT 1 BY event_id) "
            "ORDER BY occurred_at, event_id"
        )
        rows = self._rows(sql, params)
        # Payloads are stored as sent; a missing event_id is derived again, as at ingest.
        return [RawEvent.model_validate_json(row[0]).with_event_id() for row in rows]

    def count_raw_range(self, selection: RawRange) -> int:
        """Distinct raw events in the range (what a replay will read)."""
        where, params = selection.where()
        where += " AND " + self._raw_since(params)
        sql = f"SELECT uniqExact(event_id) FROM raw_events WHERE {where}"  # noqa: S608
        return int(self._rows(sql, params)[0][0])

    def raw_range_page(
        self, selection: RawRange, after_event_id: str, limit: int
    ) -> list[tuple[str, bytes]]:
        """``(event_id, payload)`` of the next ``limit`` raw events after ``after_event_id``,
        newest received version of each, in event_id order (keyset paging)."""
        where, params = selection.where()
        where += " AND " + self._raw_since(params)
        params.update(after=after_event_id, limit=limit)
        sql = (
            f"SELECT event_id, payload FROM raw_events WHERE {where} "  # noqa: S608
            "AND event_id > {after:String} "
            "ORDER BY event_id, received_at DESC LIMIT 1 BY event_id LIMIT {limit:UInt32}"
        )
        rows = self._rows(sql, params)
        return [(str(e), p if isinstance(p, bytes) else str(p).encode()) for e, p in rows]

    def timeline_by_ids(self, event_ids: Sequence[str]) -> dict[str, TimelineEvent]:
        """The current (newest) timeline version of each of ``event_ids`` that exists."""
        if not event_ids:
            return {}
        sql = (
            f"SELECT {', '.join(TIMELINE_COLUMNS)} FROM timeline_events "  # noqa: S608
            "WHERE event_id IN {ids:Array(String)} "
            "ORDER BY event_id, ingested_at DESC LIMIT 1 BY event_id"
        )
        events = [timeline_from_row(r) for r in self._rows(sql, {"ids": list(event_ids)})]
        return {e.event_id: e for e in events}

    def dead_letter_status(
        self, *, limit: int = 100, pending_only: bool = False, ids: Sequence[str] | None = None
    ) -> list[DeadLetterStatus]:
        """Dead letters, newest first, with their re-drive (if any)."""
        cols = ", ".join(f"d.{c}" for c in DEAD_LETTER_COLUMNS)
        params: dict[str, Any] = {"limit": limit}
        inner = (
            f"SELECT {', '.join(DEAD_LETTER_COLUMNS)} FROM dead_letters "  # noqa: S608
            f"WHERE {self._raw_since(params)} "
            "ORDER BY dead_letter_id, received_at DESC LIMIT 1 BY dead_letter_id"
        )
        redrives = (
            "SELECT dead_letter_id, max(redriven_at) AS last_at, "
            "argMax(replay_id, redriven_at) AS last_replay "
            "FROM dead_letter_redrives GROUP BY dead_letter_id"
        )
        conditions = ["1"]
        if pending_only:
            conditions.append("r.dead_letter_id = ''")
        if ids is not None:
            conditions.append("d.dead_letter_id IN {ids:Array(String)}")
            params["ids"] = list(ids)
        sql = (
            f"SELECT {cols}, r.dead_letter_id != '', r.last_at, r.last_replay "  # noqa: S608
            f"FROM ({inner}) AS d LEFT JOIN ({redrives}) AS r "
            f"ON d.dead_letter_id = r.dead_letter_id WHERE {' AND '.join(conditions)} "
            "ORDER BY d.received_at DESC, d.dead_letter_id LIMIT {limit:UInt32}"
        )
        out = []
        width = len(DEAD_LETTER_COLUMNS)
        for row in self._rows(sql, params):
            done = bool(row[width])
            out.append(
                DeadLetterStatus(
                    dead_letter_from_row(row[:width]),
                    utc(row[width + 1]) if done else None,
                    str(row[width + 2]) if done else None,
                )
            )
        return out

    def mark_redriven(
        self, entries: Sequence[tuple[str, str]], replay_id: str, at: datetime
    ) -> None:
        """Record that dead letters ``(dead_letter_id, event_id)`` became timeline events."""
        if not entries:
            return
        columns: list[list[Any]] = [
            [d for d, _ in entries],
            [utc(at)] * len(entries),
            [replay_id] * len(entries),
            [e for _, e in entries],
        ]
        names = ("dead_letter_id", "redriven_at", "replay_id", "event_id")
        self._insert("dead_letter_redrives", columns, names)
