"""Rows built once as column blocks, ready for one bulk insert, wherever they were processed.

A ``ColumnBlock`` is plain data (no connection): a collector worker process can build it next
to the processing step and hand it to the writer, which joins the blocks of a group of requests
and inserts them in one call. Column-oriented lists are what clickhouse-connect serialises
fastest (measured against ``JSONEachRow`` bytes built with orjson: 1.5-2.5x less CPU per
event, encoding included), and they pickle cheaply between processes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingest.schema import RawEvent, TimelineEvent
from projectors.rows import RAW_COLUMNS, TIMELINE_COLUMNS, raw_columns, timeline_columns

TIMELINE_INSERT_COLUMNS = (*TIMELINE_COLUMNS, "ingested_at", "view")


@dataclass(frozen=True, slots=True)
class ColumnBlock:
    """``count`` rows for one table: ``data[i]`` holds the values of column ``columns[i]``."""

    columns: tuple[str, ...]
    data: list[list[Any]]
    count: int

    @staticmethod
    def join(blocks: Iterable[ColumnBlock]) -> ColumnBlock | None:
        """One block out of several built for the same columns (``None`` when all are empty)."""
        parts = [b for b in blocks if b.count]
        if not parts:
            return None
        columns = parts[0].columns
        if any(p.columns != columns for p in parts):
            raise ValueError("cannot join blocks built for different columns")
        if len(parts) == 1:
            return parts[0]
        data: list[list[Any]] = [[] for _ in columns]
        for part in parts:
            for target, values in zip(data, part.data, strict=True):
                target.extend(values)
        return ColumnBlock(columns, data, sum(p.count for p in parts))


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
