"""Rows encoded as Native bytes where they are processed: stored exactly as clickhouse-connect's
own insert of column lists stores them, joined blocks go in as one insert, the encoder travels
to worker processes, and journals earlier versions wrote (column lists) are still stored."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import lz4.frame
import pytest

from ingest.batch import encode_batch, process_batch
from ingest.collector import EmbeddedCollector
from ingest.journal import IngestJournal, JournalRecord, journal_dir
from projectors.blocks import RAW_TABLE, TIMELINE_TABLE, ColumnBlock, NativeBlock
from projectors.store import Store
from tests.storage.test_collector import REDACTOR, events

AT = datetime(2026, 11, 27, 8, 0, 0, 123000, tzinfo=UTC)


def _rows(store: Store, table: str, trace_id: str) -> list[tuple[Any, ...]]:
    with store._pool.client() as client:  # noqa: SLF001 - reading back what was stored
        return list(
            client.query(
                "SELECT * FROM {table:Identifier} WHERE trace_id = {t:String} ORDER BY event_id",
                parameters={"table": table, "t": trace_id},
            ).result_rows
        )


def _parts(store: Store, table: str) -> int:
    with store._pool.client() as client:  # noqa: SLF001
        return int(
            client.command(
                "SELECT count() FROM system.parts WHERE active AND database = currentDatabase()"
                " AND table = {t:String}",
                parameters={"t": table},
            )
        )


def _events_with_everything(trace_id: str, n: int) -> list[dict[str, Any]]:
    # Nulls, maps, arrays, lookup keys, errors, attempts: every column kind the tables have.
    out = events(trace_id, n)
    for i, event in enumerate(out):
        if i % 2:
            event["error"] = {"code": "smtp_421", "message": "try again for someone@example.com"}
            event["attempt"] = i
            event["subject"] = {"customer_id": "c_native", "order_id": f"ord_{i}"}
    return out


def test_encoded_rows_are_stored_exactly_as_an_insert_of_column_lists_stores_them(
    timeline_store: Store,
) -> None:
    batch = process_batch(_events_with_everything("tr_native_a", 7), REDACTOR, AT)
    assert isinstance(batch.timeline, ColumnBlock) and isinstance(batch.raw, ColumnBlock)
    with timeline_store._pool.client() as client:  # noqa: SLF001
        for table in (TIMELINE_TABLE, RAW_TABLE):
            client.command(f"CREATE TABLE {table}_copy AS {table}")
        client.insert(
            f"{TIMELINE_TABLE}_copy",
            batch.timeline.data,
            column_names=list(batch.timeline.columns),
            column_oriented=True,
        )
        client.insert(
            f"{RAW_TABLE}_copy",
            batch.raw.data,
            column_names=list(batch.raw.columns),
            column_oriented=True,
        )
    encoded = encode_batch(batch, timeline_store.native_encoder())
    assert isinstance(encoded.timeline, NativeBlock) and isinstance(encoded.raw, NativeBlock)
    timeline_store.insert_timeline(encoded.timeline)
    timeline_store.insert_raw(encoded.raw)
    for table in (TIMELINE_TABLE, RAW_TABLE):
        stored = _rows(timeline_store, table, "tr_native_a")
        assert len(stored) == 7
        assert stored == _rows(timeline_store, f"{table}_copy", "tr_native_a")


def test_joined_blocks_go_in_as_one_insert_and_one_part(timeline_store: Store) -> None:
    encoder = timeline_store.native_encoder()
    blocks = [
        encode_batch(process_batch(events(f"tr_native_j{i}", 3 + i), REDACTOR, AT), encoder)
        for i in range(4)
    ]
    joined = encoder.join(TIMELINE_TABLE, [b.timeline for b in blocks] + [None])
    assert joined is not None and joined.count == 3 + 4 + 5 + 6
    before = _parts(timeline_store, TIMELINE_TABLE)
    timeline_store.insert_timeline(joined)
    assert _parts(timeline_store, TIMELINE_TABLE) == before + 1
    for i in range(4):
        assert len(_rows(timeline_store, TIMELINE_TABLE, f"tr_native_j{i}")) == 3 + i
    # Blocks of either kind join: column lists are encoded on the way.
    plain = process_batch(events("tr_native_k", 2), REDACTOR, AT).timeline
    mixed = encoder.join(TIMELINE_TABLE, [plain, blocks[0].timeline])
    assert mixed is not None and mixed.count == 5
    assert encoder.join(TIMELINE_TABLE, [None]) is None


def test_the_encoder_travels_by_pickle_and_names_a_column_it_does_not_know(
    timeline_store: Store,
) -> None:
    encoder = timeline_store.native_encoder()
    batch = process_batch(events("tr_native_p", 3), REDACTOR, AT)
    copy = pickle.loads(pickle.dumps(encoder))  # noqa: S301 - our own object
    assert copy.encode(TIMELINE_TABLE, batch.timeline) == encoder.encode(
        TIMELINE_TABLE, batch.timeline
    )
    stray = ColumnBlock(("event_id", "no_such_column"), [["ev_1"], ["x"]], 1)
    with pytest.raises(ValueError, match=r"timeline_events\.no_such_column"):
        encoder.encode(TIMELINE_TABLE, stray)


def test_when_a_journal_holds_column_lists_from_an_earlier_version_then_they_are_stored(
    timeline_store: Store,
) -> None:
    directory = timeline_store.chdb_directory
    if directory is None:
        pytest.skip("the ingest journal is the embedded engine's")
    journal = IngestJournal(journal_dir(directory))
    old = process_batch(events("tr_native_old", 4), REDACTOR, AT)
    new = process_batch(events("tr_native_new", 2), REDACTOR, AT)
    new = encode_batch(new, timeline_store.native_encoder())
    for batch in (old, new):
        journal.append([JournalRecord(raw=batch.raw, dead_letters=(), timeline=batch.timeline)])
    os.close(journal._lock_fd)  # noqa: SLF001 - what process death does to the lock
    collector = EmbeddedCollector(timeline_store, REDACTOR, journal=journal_dir(directory))
    collector.close()
    assert len(_rows(timeline_store, TIMELINE_TABLE, "tr_native_old")) == 4
    assert len(_rows(timeline_store, RAW_TABLE, "tr_native_old")) == 4
    assert len(_rows(timeline_store, TIMELINE_TABLE, "tr_native_new")) == 2


class _RecordingClient:
    """Stands in for a server's HTTP client: it compresses what it writes (lz4)."""

    write_compression = "lz4"

    def __init__(self) -> None:
        self.inserts: list[tuple[str, list[str], bytes, str, str | None]] = []

    def raw_insert(
        self, table: str, columns: list[str], body: bytes, *, fmt: str, compression: str | None
    ) -> None:
        self.inserts.append((table, columns, body, fmt, compression))


class _OnePool:
    url = "http://clickhouse.invalid:8123/default"

    def __init__(self, client: _RecordingClient) -> None:
        self._client = client

    @contextmanager
    def client(self) -> Iterator[_RecordingClient]:
        yield self._client


def test_when_the_store_is_a_server_then_native_inserts_go_compressed_like_the_clients_own(
    timeline_store: Store,
) -> None:
    encoded = encode_batch(
        process_batch(events("tr_native_http", 3), REDACTOR, AT), timeline_store.native_encoder()
    )
    client = _RecordingClient()
    server = Store(_OnePool(client), timeline_store.policy)  # type: ignore[arg-type]
    server.insert_timeline(encoded.timeline)
    ((table, columns, body, fmt, compression),) = client.inserts
    assert (table, fmt, compression) == (TIMELINE_TABLE, "Native", "lz4")
    assert tuple(columns) == encoded.timeline.columns
    assert isinstance(encoded.timeline, NativeBlock)
    assert lz4.frame.decompress(body) == encoded.timeline.data
