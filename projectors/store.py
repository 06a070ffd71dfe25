"""The one storage API: open, migrate, bulk writes, the access log, and the reads of ``reads``.

Works the same on the embedded engine (``chdb:///path``) and on a ClickHouse server URL: every
statement goes through clickhouse-connect, nothing here knows which backend answers.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from ingest.schema import RawEvent, TimelineEvent
from projectors import migrate as migrations
from projectors import retention
from projectors.clients import ClientPool, safe_url
from projectors.reads import StoreReads
from projectors.retention import RetentionPolicy, TtlStatus
from projectors.rows import (
    ACCESS_LOG_COLUMNS,
    DEAD_LETTER_COLUMNS,
    RAW_COLUMNS,
    TIMELINE_COLUMNS,
    AccessRecord,
    DeadLetter,
    dead_letter_columns,
    raw_columns,
    timeline_columns,
    utc,
)

# Tables OPTIMIZE FINAL touches (maintenance and tests; never needed for correct answers).
_MERGED_TABLES = (
    "timeline_events",
    "trace_index",
    "customer_lookup",
    "raw_events",
    "dead_letters",
)


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What ``Store.migrate`` changed: migrations applied and tables whose TTL was reset."""

    applied: list[str]
    ttl_changed: list[str]


class Store(StoreReads):
    """ClickHouse storage for timelines, the trace index, raw events, dead letters, access log.

    Thread-safe: calls borrow a client from a small pool. Use ``Store.open`` and ``close`` (or
    ``with``); on chDB only one path can be open per process, so close before opening another.
    """

    def __init__(self, pool: ClientPool, policy: RetentionPolicy) -> None:
        self._pool = pool
        self.policy = policy
        self._access_lock = threading.Lock()

    @classmethod
    def open(cls, url: str, policy: RetentionPolicy | None = None, *, pool_size: int = 4) -> Store:
        """Connect to ``url`` (``chdb:///path`` or ``http(s)://...``); does not migrate."""
        return cls(ClientPool(url, size=pool_size), policy or RetentionPolicy())

    @property
    def url(self) -> str:
        """The connection URL without credentials."""
        return safe_url(self._pool.url)

    def close(self) -> None:
        """Close all connections (releases the chDB path)."""
        self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- schema -------------------------------------------------------------------------

    def migrate(self) -> MigrationReport:
        """Apply pending migrations, then make every TTL match the retention policy.

        Idempotent: a second call applies nothing and changes nothing.
        """
        with self._pool.client() as client:
            applied = migrations.apply_pending(client, self.policy)
            changed = retention.enforce(client, self.policy)
        return MigrationReport(applied=applied, ttl_changed=changed)

    def ttl_status(self, policy: RetentionPolicy | None = None) -> list[TtlStatus]:
        """Actual TTL of every table with a retention rule, next to ``policy`` (default: the
        store's own), so a caller can check the TTL in force against its settings."""
        with self._pool.client() as client:
            return retention.ttl_status(client, policy or self.policy)

    def ping(self) -> bool:
        """True when the engine answers a trivial query."""
        with self._pool.client() as client:
            return bool(client.command("SELECT 1") == 1)

    def optimize(self) -> None:
        """Force merges (and with them deduplication and TTL) on the merge-tree tables."""
        with self._pool.client() as client:
            for table in _MERGED_TABLES:
                client.command(f"OPTIMIZE TABLE {table} FINAL")

    # --- writes -------------------------------------------------------------------------

    def _insert(self, table: str, columns: list[list[Any]], names: Sequence[str]) -> None:
        with self._pool.client() as client:
            client.insert(table, columns, column_names=list(names), column_oriented=True)

    def insert_timeline(
        self, events: Sequence[TimelineEvent], *, ingested_at: datetime | None = None
    ) -> None:
        """Bulk-insert timeline events (the trace index and lookup keys follow by views).

        Re-inserting an ``event_id`` is harmless: every read shows each ``event_id`` once.
        """
        if not events:
            return
        at = utc(ingested_at) if ingested_at else datetime.now(UTC)
        names = (*TIMELINE_COLUMNS, "ingested_at")
        self._insert("timeline_events", timeline_columns(events, at), names)

    def insert_raw(
        self,
        raws: Sequence[RawEvent],
        *,
        received_at: datetime | None = None,
        origin: str = "http",
        payloads: Sequence[bytes] | None = None,
    ) -> None:
        """Bulk-insert raw events into the restricted replay table (short TTL).

        ``payloads``, aligned with ``raws``, keep the bytes exactly as the service sent them.
        """
        if not raws:
            return
        at = utc(received_at) if received_at else datetime.now(UTC)
        self._insert("raw_events", raw_columns(raws, at, origin, payloads), RAW_COLUMNS)

    def insert_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Bulk-insert rejected input with its reason and source coordinates."""
        if not letters:
            return
        self._insert("dead_letters", dead_letter_columns(letters), DEAD_LETTER_COLUMNS)

    def log_access(
        self,
        *,
        actor: str,
        role: str,
        route: str,
        record_kind: str,
        record_id: str,
        reason: str | None = None,
        at: datetime | None = None,
    ) -> AccessRecord:
        """Record that ``actor`` read a record. The only way rows reach ``access_log``.

        Writes are serialised so entries are appended in order, which a tamper-evident chain
        over the log will rely on.
        """
        record = AccessRecord(
            entry_id=uuid.uuid4().hex,
            at=utc(at) if at else datetime.now(UTC),
            actor=actor,
            role=role,
            route=route,
            record_kind=record_kind,
            record_id=record_id,
            reason=reason,
        )
        with self._access_lock, self._pool.client() as client:
            client.insert("access_log", [record.columns()], column_names=list(ACCESS_LOG_COLUMNS))
        return record
