"""Rows built once, ready for one bulk insert, wherever they were processed.

A ``ColumnBlock`` holds a table's rows as column lists (plain data, no connection). A
``NativeEncoder`` turns it into a ``NativeBlock``: the same rows in ClickHouse's Native format,
the bytes an insert sends. The encoder carries only the tables' column type names, so it
pickles to the embedded collector's worker processes, which encode the rows next to the
processing step; the process that owns storage then only concatenates bytes (Native blocks back
to back are one valid stream) and sends them. Encoding costs the same wherever it runs, so
moving it to the workers takes it off the one process that inserts; sending bytes skips
pickling column lists between processes and into the ingest journal, and the ``DESCRIBE``
an insert of column lists runs first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.transform import NativeTransform

from ingest.schema import RawEvent, TimelineEvent
from projectors.rows import RAW_COLUMNS, TIMELINE_COLUMNS, raw_columns, timeline_columns

if TYPE_CHECKING:
    from clickhouse_connect.datatypes.base import ClickHouseType

TIMELINE_TABLE = "timeline_events"
RAW_TABLE = "raw_events"
TIMELINE_INSERT_COLUMNS = (*TIMELINE_COLUMNS, "ingested_at", "view")


@dataclass(frozen=True, slots=True)
class ColumnBlock:
    """``count`` rows for one table: ``data[i]`` holds the values of column ``columns[i]``."""

    columns: tuple[str, ...]
    data: list[list[Any]]
    count: int


def timeline_block(events: Sequence[TimelineEvent], ingested_at: datetime) -> ColumnBlock:
    """Rows for ``timeline_events``; ``ingested_at`` is the version that wins on re-sends."""
    return ColumnBlock(
        TIMELINE_INSERT_COLUMNS,
        timeline_columns(events, ingested_at) if events else [],
        len(events),
    )


def raw_block(
    raws: Sequence[RawEvent],
    received_at: datetime,
    origin: str = "http",
    payloads: Sequence[bytes] | None = None,
) -> ColumnBlock:
    """Rows for ``raw_events``; ``payloads`` (aligned with ``raws``) keep the bytes as sent."""
    data = raw_columns(raws, received_at, origin, payloads) if raws else []
    return ColumnBlock(RAW_COLUMNS, data, len(raws))


@dataclass(frozen=True, slots=True)
class NativeBlock:
    """``count`` rows of ``columns`` for one table, encoded in ClickHouse's Native format."""

    columns: tuple[str, ...]
    data: bytes
    count: int

    @staticmethod
    def join(blocks: Iterable[NativeBlock]) -> NativeBlock | None:
        """One block out of several encoded for the same columns (``None`` when all are
        empty): Native blocks back to back are one stream, and one insert stores them in one
        part, however many blocks it holds."""
        parts = [b for b in blocks if b.count]
        if not parts:
            return None
        columns = parts[0].columns
        if any(p.columns != columns for p in parts):
            raise ValueError("cannot join blocks encoded for different columns")
        if len(parts) == 1:
            return parts[0]
        return NativeBlock(columns, b"".join(p.data for p in parts), sum(p.count for p in parts))


Block = ColumnBlock | NativeBlock


class NativeEncoder:
    """Encodes column blocks as Native blocks with the column types of the tables it knows.

    ``types`` maps a table to its columns' ClickHouse type names, as ``DESCRIBE TABLE``
    gives them (``Store.native_encoder``). Encoding is clickhouse-connect's own, the one its
    ``insert`` runs, so the rows stored are the same either way.
    """

    def __init__(self, types: Mapping[str, Mapping[str, str]]) -> None:
        self.types = {table: dict(columns) for table, columns in types.items()}
        self._resolved: dict[tuple[str, str], ClickHouseType] = {}

    def __getstate__(self) -> dict[str, dict[str, str]]:
        return self.types  # type objects are rebuilt from the names where it is unpickled

    def __setstate__(self, state: dict[str, dict[str, str]]) -> None:
        self.__init__(state)  # type: ignore[misc]

    def _type(self, table: str, column: str) -> ClickHouseType:
        key = (table, column)
        found = self._resolved.get(key)
        if found is None:
            try:
                name = self.types[table][column]
            except KeyError:
                raise ValueError(f"no column type known for {table}.{column}") from None
            found = self._resolved[key] = get_from_name(name)
        return found

    def encode(self, table: str, block: Block) -> NativeBlock:
        """``block``'s rows as Native bytes for ``table`` (a Native block is returned as is)."""
        if isinstance(block, NativeBlock):
            return block
        if not block.count:
            return NativeBlock(block.columns, b"", 0)
        context = InsertContext(
            table,
            list(block.columns),
            [self._type(table, column) for column in block.columns],
            data=block.data,
            column_oriented=True,
        )
        body = b"".join(NativeTransform.build_insert(context))
        # The first chunk starts with the statement an HTTP request body would carry
        # ("INSERT INTO ... FORMAT Native\n"); the block holds the rows only.
        if not body.startswith(b"INSERT INTO "):
            raise ValueError("unexpected start of a Native insert body")
        return NativeBlock(block.columns, body[body.index(b"\n") + 1 :], block.count)

    def join(self, table: str, blocks: Iterable[Block | None]) -> NativeBlock | None:
        """One Native block for ``table`` out of blocks of either kind (``None`` when all are
        empty)."""
        return NativeBlock.join(self.encode(table, b) for b in blocks if b is not None)
