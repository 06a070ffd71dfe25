"""The one storage API: open, migrate, bulk writes, the access log, and the reads of ``reads``.

Works the same on the embedded engine (``chdb:///path``) and on a ClickHouse server URL: every
statement goes through clickhouse-connect, nothing here knows which backend answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from clickhouse_connect.driver.compression import get_compressor

from ingest.schema import RawEvent, TimelineEvent
from projectors import audit_chain, retention
from projectors import cluster as cluster_schema
from projectors import migrate as migrations
from projectors.access_writer import AccessWriter, DirectWriter, journaled_writer, release
from projectors.blocks import (
    RAW_TABLE,
    TIMELINE_TABLE,
    Block,
    ColumnBlock,
    NativeBlock,
    NativeEncoder,
    raw_block,
    timeline_block,
)
from projectors.clients import ClientPool, is_chdb, safe_url
from projectors.reads import StoreReads
from projectors.restricted import RestrictedStore
from projectors.retention import RetentionPolicy, TtlStatus
from projectors.rows import (
    ACCESS_LOG_COLUMNS,
    DEAD_LETTER_COLUMNS,
    AccessRecord,
    DeadLetter,
    dead_letter_columns,
    utc,
)

# Tables OPTIMIZE FINAL touches (maintenance and tests; never needed for correct answers).
_MERGED_TABLES = (
    "timeline_events",
    "trace_index",
    "customer_lookup",
    "subject_index",
    "raw_events",
    "dead_letters",
)


def _chdb_directory(url: str) -> Path | None:
    """The data directory of a ``chdb:///path`` URL; ``None`` on a server or chDB in memory."""
    directory = urlsplit(url).path if is_chdb(url) else ""
    return None if directory in ("", "/") else Path(directory)


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What ``Store.migrate`` changed: migrations applied and tables whose TTL was reset."""

    applied: list[str]
    ttl_changed: list[str]


class Store(StoreReads, RestrictedStore):
    """ClickHouse storage for timelines, the trace index, raw events, dead letters, access log.

    Thread-safe: calls borrow a client from a small pool. Use ``Store.open`` and ``close`` (or
    ``with``); on chDB only one path can be open per process, so close before opening another.
    """

    def __init__(
        self, pool: ClientPool, policy: RetentionPolicy, access: AccessWriter | None = None
    ) -> None:
        self._pool = pool
        self.policy = policy
        self._access = access or DirectWriter(pool.client)
        # Encoders by the tables they know, their column types read by DESCRIBE TABLE on first
        # use (after a migration here, read again). Inserts then send Native bytes without
        # asking for the types, and each column type is parsed once.
        self._encoders: dict[tuple[str, ...], NativeEncoder] = {}

    @classmethod
    def open(cls, url: str, policy: RetentionPolicy | None = None, *, pool_size: int = 4) -> Store:
        """Connect to ``url`` (``chdb:///path`` or ``http(s)://...``); does not migrate.

        On chDB the access log is journaled beside the data directory
        (``projectors.access_writer``); on a server it is inserted directly.
        """
        pool = ClientPool(url, size=pool_size)
        directory = _chdb_directory(url)
        if directory is None:  # a server, or chDB in memory: nothing to journal beside
            return cls(pool, policy or RetentionPolicy())
        try:
            access = journaled_writer(url, directory)
        except BaseException:
            pool.close()
            raise
        return cls(pool, policy or RetentionPolicy(), access)

    @property
    def chdb_directory(self) -> Path | None:
        """The embedded engine's data directory (``None`` on a server or chDB in memory);
        journals of this store's writers live beside it."""
        directory = _chdb_directory(self._pool.url)
        return None if directory is None else directory.resolve()

    @property
    def url(self) -> str:
        """The connection URL without credentials."""
        return safe_url(self._pool.url)

    def close(self) -> None:
        """Store what the access log still holds, close all connections (releases the chDB
        path)."""
        try:
            release(self._access)
        finally:
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

    def migrate(
        self, *, cluster: str | None = None, offline: bool | None = None
    ) -> MigrationReport:
        """Apply pending migrations, then make every TTL match the retention policy.

        With ``cluster``, tables are created ``ON CLUSTER`` as replicated ``_local`` tables
        behind Distributed tables of the plain names (``projectors.cluster``); reads and writes
        are unchanged. Idempotent: a second call applies nothing and changes nothing.
        Migrations that move stored rows run only with ``offline`` (``safetrail migrate``);
        by default they do on chDB, where this process is the only writer, and are refused
        with the reason on a server, where other processes may be writing.
        """
        if offline is None:
            offline = is_chdb(self._pool.url)
        with self._pool.client() as client:
            applied = migrations.apply_pending(
                client, self.policy, cluster=cluster, offline=offline
            )
            self._encoders.clear()
            if cluster is None:
                changed = retention.enforce(client, self.policy)
            else:
                changed = cluster_schema.enforce(client, self.policy, cluster)
        return MigrationReport(applied=applied, ttl_changed=changed)

    def ttl_status(
        self, policy: RetentionPolicy | None = None, *, cluster: bool = False
    ) -> list[TtlStatus]:
        """Actual TTL of every table with a retention rule, next to ``policy`` (default: the
        store's own), so a caller can check the TTL in force against its settings. With
        ``cluster``, the TTL read is that of the ``_local`` tables, where it is in force."""
        status = cluster_schema.ttl_status if cluster else retention.ttl_status
        with self._pool.client() as client:
            return status(client, policy or self.policy)

    def ping(self) -> bool:
        """True when the engine answers a trivial query."""
        with self._pool.client() as client:
            return bool(client.command("SELECT 1") == 1)

    def optimize(self) -> None:
        """Force merges (and with them deduplication and TTL) on the merge-tree tables."""
        self._wait_for_writers()
        with self._pool.client() as client:
            for table in _MERGED_TABLES:
                client.command(f"OPTIMIZE TABLE {table} FINAL")

    # --- writes -------------------------------------------------------------------------

    def native_encoder(self, tables: Sequence[str] = (TIMELINE_TABLE, RAW_TABLE)) -> NativeEncoder:
        """An encoder with the column types of ``tables`` (the collector hands it to its
        worker processes, which encode rows where they are processed)."""
        key = tuple(tables)
        encoder = self._encoders.get(key)
        if encoder is None:
            with self._pool.client() as client:
                types = {
                    table: {
                        row["name"]: row["type"]
                        for row in client.query(f"DESCRIBE TABLE {table}").named_results()
                    }
                    for table in key
                }
            encoder = self._encoders[key] = NativeEncoder(types)
        return encoder

    def _insert(self, table: str, columns: list[list[Any]], names: Sequence[str]) -> None:
        self._insert_block(table, ColumnBlock(tuple(names), columns, len(columns[0])))

    def _insert_block(self, table: str, block: Block) -> None:
        if not block.count:
            return
        if not isinstance(block, NativeBlock):
            block = self.native_encoder((table,)).encode(table, block)
        with self._pool.client() as client:
            # A server takes the body compressed the way the client writes its own inserts.
            compression = client.write_compression
            if compression in ("lz4", "zstd"):
                body = get_compressor(compression).compress_block(block.data)
            else:
                body, compression = block.data, None
            client.raw_insert(
                table, list(block.columns), body, fmt="Native", compression=compression
            )

    def insert_timeline(
        self,
        events: Sequence[TimelineEvent] | Block,
        *,
        ingested_at: datetime | None = None,
    ) -> None:
        """Bulk-insert timeline events (the trace index and lookup keys follow by views).

        ``events`` may come as a block built where they were processed
        (``projectors.blocks.timeline_block``, which carries its own ``ingested_at``, or that
        block encoded: ``NativeEncoder``).
        Re-inserting an ``event_id`` is harmless: every read shows each ``event_id`` once.
        """
        if isinstance(events, ColumnBlock | NativeBlock):
            self._insert_block(TIMELINE_TABLE, events)
            return
        at = utc(ingested_at) if ingested_at else datetime.now(UTC)
        self._insert_block(TIMELINE_TABLE, timeline_block(events, at))

    def insert_raw(
        self,
        raws: Sequence[RawEvent] | Block,
        *,
        received_at: datetime | None = None,
        origin: str = "http",
        payloads: Sequence[bytes] | None = None,
    ) -> None:
        """Bulk-insert raw events into the restricted replay table (short TTL).

        ``payloads``, aligned with ``raws``, keep the bytes exactly as the service sent them;
        ``raws`` may come as a block already (``projectors.blocks.raw_block``, or encoded).
        """
        if isinstance(raws, ColumnBlock | NativeBlock):
            self._insert_block(RAW_TABLE, raws)
            return
        at = utc(received_at) if received_at else datetime.now(UTC)
        self._insert_block(RAW_TABLE, raw_block(raws, at, origin, payloads))

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
        details: Mapping[str, Any] | None = None,
    ) -> AccessRecord:
        """Record that ``actor`` read (or replayed) a record. The only way rows reach
        ``access_log``. Returns once the entry is durable: inserted with fsync on a server,
        synced to the access journal on chDB (``projectors.access_writer``).

        Each entry is chained to the previous one by hash (``projectors.audit_chain``) under
        one lock, so concurrent writers of this process stay on one unbroken chain. Writes are
        group-committed: concurrent readers share one write instead of queueing one each.
        ``details`` (replays, re-drives) is stored as canonical JSON.
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
        entry: dict[str, Any] = dict(zip(ACCESS_LOG_COLUMNS, record.columns(), strict=True))
        entry["details"] = audit_chain.canonical_details(details)
        self._access.log(entry)
        return record

    def verify_access_chain(self) -> audit_chain.ChainReport:
        """Check the access-log hash chain; the report names the first broken entry."""
        cols = ", ".join(audit_chain.CHAIN_COLUMNS)
        with self._access.quiet(), self._pool.client() as client:
            unchained = int(client.command("SELECT count() FROM access_log WHERE seq = 0"))
            rows = client.query(
                f"SELECT {cols} FROM access_log WHERE seq > 0 "  # noqa: S608
                "ORDER BY chain, seq, entry_id"
            ).result_rows
            # Entries without a chain position are those written before chains existed
            # (migration 0004): one written after the first chained entry had its seq
            # cleared, which would otherwise take it, and the chain's tail, out of the check.
            late = client.query(
                "SELECT entry_id FROM access_log WHERE seq = 0 "
                "AND at >= (SELECT minOrNull(at) FROM access_log WHERE seq > 0) "
                "ORDER BY at, entry_id LIMIT 1"
            ).result_rows
        report = audit_chain.verify_rows(rows, unchained)
        if report.broken is None and late:
            problem = "an entry newer than the chain's start has no chain position (seq cleared)"
            broken = audit_chain.BrokenLink("", 0, str(late[0][0]), problem)
            return replace(report, broken=broken)
        return report
