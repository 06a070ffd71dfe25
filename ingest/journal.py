"""The embedded collector's ingest journal: acknowledged batches, on disk before any insert.

An insert into the embedded engine costs a fixed ~20-30 ms (a new part per table, view and
projection, fsync'd) on top of the rows, so many small inserts spend most of their time on
that fixed part. With the journal, a group of requests is acknowledged once its rows are
appended here with one ``fdatasync`` (well under a millisecond), and a shipper inserts what
accumulated in large batches. The journal sits beside the chDB directory, on the same disk, so
an acknowledged event is exactly as durable as a stored row.

Format: segment files ``<n>.journal``, each a sequence of records
``[length: u32][crc32: u32][payload]``. A record that is torn (the process died while writing
it) was never synced, so its request was never answered: reading stops there. A segment is
deleted once every record in it is stored; the current one is truncated when everything is.
After a crash the next collector re-inserts what the segments still hold before it takes input;
inserts are idempotent (stable event ids, keyed dead letters), so a record stored before the
crash and again after it still shows each event once.

The payload is a pickle of rows this process built itself (``NativeBlock``s, the bytes the
insert sends, or ``ColumnBlock``s as earlier versions wrote them, and ``DeadLetter``s). Only
the collector that owns the data directory writes and reads it; the directory is created
``0700`` like the chDB data beside it.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from projectors.access_writer import append_synced
from projectors.blocks import Block
from projectors.rows import DeadLetter

_HEADER = struct.Struct("<II")
SEGMENT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One group commit's rows: raw, dead letters, timeline (what one insert round stores)."""

    raw: Block | None
    dead_letters: tuple[DeadLetter, ...]
    timeline: Block | None

    @property
    def events(self) -> int:
        """How many events (accepted and rejected) the record holds."""
        accepted = self.timeline.count if self.timeline is not None else 0
        return accepted + len(self.dead_letters)

    def encode(self) -> bytes:
        """Framed bytes of this record: length, checksum, payload."""
        payload = pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)
        return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def journal_dir(chdb_dir: Path) -> Path:
    """Where the ingest journal of the chDB data in ``chdb_dir`` lives: beside it, same disk."""
    return chdb_dir.parent / f"{chdb_dir.name}.ingest-journal"


def _records(data: bytes) -> Iterator[JournalRecord]:
    at = 0
    while at + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, at)
        payload = data[at + _HEADER.size : at + _HEADER.size + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            return  # torn tail: never synced, never acknowledged
        # Our own rows, written by this collector into its own 0700 directory.
        record = pickle.loads(payload)  # noqa: S301
        if not isinstance(record, JournalRecord):
            raise ValueError("ingest journal holds something other than a journal record")
        yield record
        at += _HEADER.size + length


class JournalBusy(RuntimeError):
    """Another collector (in this process or another) holds the journal directory."""


class IngestJournal:
    """Append-only segments of ``JournalRecord``s; not thread-safe (one writer, one shipper,
    coordinated by the collector). One owner at a time: opening a directory another journal
    holds raises ``JournalBusy``."""

    def __init__(self, directory: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / "owner.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise JournalBusy(f"{directory} is in use by another collector") from None
        self._segment_bytes = segment_bytes
        numbers = sorted(int(p.stem) for p in directory.glob("*.journal") if p.stem.isdigit())
        self._current = (numbers[-1] + 1) if numbers else 1
        self._left = numbers  # segments a previous process left (read by ``leftover``)
        self._fd = self._open(self._current)
        _sync_dir(directory)  # the new segment's name is durable before anything in it
        self._size = 0
        # Last record sequence number written to each segment (1, 2, ... within this process).
        self._seq = 0
        self._last_in: dict[int, int] = {}

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:012d}.journal"

    def _open(self, number: int) -> int:
        return os.open(self._path(number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def leftover(self) -> list[JournalRecord]:
        """Every complete record the segments of a previous process hold, oldest first."""
        out: list[JournalRecord] = []
        for number in self._left:
            out.extend(_records(self._path(number).read_bytes()))
        return out

    def drop_leftover(self) -> None:
        """Delete the previous process's segments (their records are stored)."""
        for number in self._left:
            self._path(number).unlink(missing_ok=True)
        self._left = []
        _sync_dir(self.directory)

    def append(self, records: list[JournalRecord]) -> int:
        """Write ``records`` and return once they are on disk; the sequence number of the
        last one (``shipped`` takes it back)."""
        data = b"".join(r.encode() for r in records)
        append_synced(self._fd, data, self._size)
        self._size += len(data)
        self._seq += len(records)
        self._last_in[self._current] = self._seq
        if self._size >= self._segment_bytes:
            self._rotate()
        return self._seq

    def _rotate(self) -> None:
        os.close(self._fd)
        self._current += 1
        self._fd = self._open(self._current)
        self._size = 0
        _sync_dir(self.directory)

    def shipped(self, seq: int) -> None:
        """Every record up to ``seq`` is stored: forget the segments that hold only those,
        and empty the current one when it holds nothing newer."""
        for number, last in list(self._last_in.items()):
            if last > seq:
                continue
            if number == self._current:
                if self._size:
                    os.ftruncate(self._fd, 0)  # a crash that undoes this only re-inserts
                    self._size = 0
            else:
                self._path(number).unlink(missing_ok=True)
            del self._last_in[number]

    def close(self) -> None:
        """Close the current segment (and delete it when it is empty)."""
        os.close(self._fd)
        if not self._size and self._current not in self._last_in:
            self._path(self._current).unlink(missing_ok=True)
        os.close(self._lock_fd)  # releases the directory


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
