"""How access-log entries become durable: group commit, the hash chain, and where they land.

Every view waits for its entry, so this write sits on every read's path. Two writers:

* ``DirectWriter`` (ClickHouse servers): chains each group of entries on the writer's own
  named chain and inserts it (``distributed_foreground_insert``, fsync on the server). API
  replicas stay stateless, and several of them never fork one chain.
* ``JournaledWriter`` (the embedded engine): chains the group on the unnamed chain after the
  head it holds and appends it to a journal file beside the chDB directory with one
  ``fdatasync`` (≈0.3 ms here, where an fsync'd insert creates a new part: ≈15 ms), then
  answers. A shipper thread
  inserts journaled entries into ``access_log`` in batches (every ``SHIP_SECONDS``) and
  empties the journal once everything in it is stored. The journal lives on the same disk as
  the chDB data, so an entry is exactly as durable as a stored row would be. After a crash the
  next open inserts the entries the journal still holds that the table does not (by ``seq``:
  one writer, consecutive numbers), so none is lost and none stored twice. Anything that reads
  ``access_log`` calls ``flush`` first and sees every entry written before.

chDB allows one process per data directory, and every ``Store`` of a process on one directory
shares one ``JournaledWriter`` (``journaled_writer``), so the chain has one head.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from projectors import audit_chain
from projectors.clients import connect

log = logging.getLogger(__name__)

SHIP_SECONDS = 0.2
_NAMES = list(audit_chain.CHAIN_COLUMNS)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class _Pending:
    """An entry waiting for a group commit, and how that commit went."""

    entry: dict[str, Any]
    done: bool = False
    error: BaseException | None = None


class AccessWriter:
    """Group commit: a caller that finds the lock taken queues its entry, and whoever takes the
    lock next chains and commits every queued entry at once; nobody returns before the commit
    holding its entry has returned. Subclasses say what a commit is."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[_Pending] = []
        self._pending_lock = threading.Lock()

    def log(self, entry: dict[str, Any]) -> None:
        """Chain ``entry`` (given ``seq``, ``prev_hash``, ``hash``) and make it durable."""
        pending = _Pending(entry)
        with self._pending_lock:
            self._pending.append(pending)
        with self._lock:
            if not pending.done:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                try:
                    self._commit([p.entry for p in batch])
                except BaseException as exc:
                    for queued in batch:
                        queued.error = exc
                    raise
                finally:
                    for queued in batch:
                        queued.done = True
        if pending.error is not None:
            raise RuntimeError("the access-log entry was not stored") from pending.error

    def _commit(self, entries: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Make every entry logged so far visible in ``access_log``."""

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """Every entry so far is stored, and no new one is written until the block ends."""
        self.flush()
        with self._lock:
            yield

    def close(self) -> None:
        """Release what the writer holds."""


def _chain(entries: list[dict[str, Any]], seq: int, prev_hash: str) -> tuple[int, str]:
    for entry in entries:
        seq += 1
        entry.update(seq=seq, prev_hash=prev_hash)
        entry["hash"] = prev_hash = audit_chain.entry_hash(entry)
    return seq, prev_hash


def _stored_head(client: Any) -> tuple[int, str]:
    """The stored entry of the unnamed chain with the highest seq (0 and "" when none)."""
    head = client.query(
        "SELECT seq, hash FROM access_log WHERE chain = '' ORDER BY seq DESC LIMIT 1"
    ).result_rows
    return (int(head[0][0]), str(head[0][1])) if head else (0, "")


def _insert(client: Any, entries: Sequence[Mapping[str, Any]]) -> None:
    client.insert("access_log", [[e[n] for n in _NAMES] for e in entries], column_names=_NAMES)


def chain_name() -> str:
    """A name no other writer uses: host, process and a random part."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:12]}"


class DirectWriter(AccessWriter):
    """Each group is chained on this writer's own named chain and inserted before anyone
    returns. The chain starts at seq 1 with this writer, so its head never has to be read
    back: no other process writes to it."""

    def __init__(self, client: Callable[[], Any], chain: str | None = None) -> None:
        super().__init__()
        self._client = client  # a context manager factory: ``ClientPool.client``
        self.chain = chain or chain_name()
        self._head: tuple[int, str] = (0, "")

    def _commit(self, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            entry["chain"] = self.chain
        head = _chain(entries, *self._head)
        with self._client() as client:
            _insert(client, entries)
        self._head = head


def append_synced(fd: int, data: bytes, size: int) -> None:
    """Append ``data`` to the file of ``fd`` (opened ``O_APPEND``, ``size`` bytes long) and
    return once it is on disk. On any failure the file is cut back to ``size``: the caller was
    not answered, and the next append starts clean."""
    try:
        written = 0
        while written < len(data):
            written += os.write(fd, memoryview(data)[written:])
        os.fdatasync(fd)
    except BaseException:
        os.ftruncate(fd, size)
        raise


class Journal:
    """An append-only file of chained entries, one JSON object a line, synced on append."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)

    def append(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Write ``entries`` and return once they are on disk."""
        lines = b"".join(orjson.dumps(_encode(e)) + b"\n" for e in entries)
        append_synced(self._fd, lines, os.fstat(self._fd).st_size)

    def read(self) -> list[dict[str, Any]]:
        """Every complete entry, oldest first. A torn last line (the process died while
        writing it) was never synced, so its caller was never answered: it is skipped."""
        with self.path.open("rb") as f:
            lines = f.read().split(b"\n")
        entries = []
        for line in lines[:-1]:  # the part after the last newline is incomplete
            entries.append(_decode(orjson.loads(line)))
        return entries

    def empty(self) -> bool:
        """True when the journal holds nothing."""
        return os.fstat(self._fd).st_size == 0

    def clear(self) -> None:
        """Drop every entry (all of them are stored in ``access_log``)."""
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


def _encode(entry: Mapping[str, Any]) -> dict[str, Any]:
    out = {n: entry[n] for n in _NAMES}
    out["at"] = (entry["at"] - _EPOCH) // timedelta(microseconds=1)
    return out


def _decode(raw: dict[str, Any]) -> dict[str, Any]:
    raw["at"] = _EPOCH + timedelta(microseconds=int(raw["at"]))
    return raw


class JournaledWriter(AccessWriter):
    """Each group is chained after the head held here, synced to the journal, shipped later."""

    def __init__(self, url: str, journal: Path, ship_seconds: float = SHIP_SECONDS) -> None:
        super().__init__()
        self._client = connect(url)  # one more client on the same chDB path
        self._client_lock = threading.Lock()
        self._journal = Journal(journal)
        self._unshipped: list[dict[str, Any]] = []
        self._head: tuple[int, str] | None = None  # (seq, hash) once recovered
        self._ship_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._ship_seconds = ship_seconds
        self._shipper = threading.Thread(target=self._ship_loop, name="access-log", daemon=True)
        self._shipper.start()

    def _ready(self) -> tuple[int, str]:
        """The chain head; on first use, first store what a previous process left journaled."""
        if self._head is None:
            left = self._journal.read()
            with self._client_lock:
                head = _stored_head(self._client)
                missing = [e for e in left if int(e["seq"]) > head[0]]
                if missing:
                    _insert(self._client, missing)
                    log.warning("stored %d access-log entries left in the journal", len(missing))
                    # The journal continues the chain in order: its last entry is the head.
                    head = (int(missing[-1]["seq"]), str(missing[-1]["hash"]))
                self._journal.clear()
                self._head = head
        return self._head

    def _commit(self, entries: list[dict[str, Any]]) -> None:
        seq, prev_hash = self._ready()
        for entry in entries:
            entry["chain"] = audit_chain.UNNAMED
        head = _chain(entries, seq, prev_hash)
        self._journal.append(entries)
        self._head = head
        self._unshipped.extend(entries)
        self._wake.set()

    def flush(self) -> None:
        """Insert every journaled entry not yet stored; raises when the insert fails."""
        with self._ship_lock:
            with self._lock:
                if self._head is None and self._journal.empty():
                    return  # nothing written, nothing left over (the table may not exist yet)
                self._ready()
                batch = list(self._unshipped)
            if not batch:
                return
            with self._client_lock:
                _insert(self._client, batch)
            with self._lock:
                del self._unshipped[: len(batch)]
                if not self._unshipped:
                    self._journal.clear()

    def _ship_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._stop.wait(self._ship_seconds)  # let a batch gather
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - kept in the journal, retried next round
                log.exception("access-log entries stay journaled; retrying")
                self._stop.wait(1.0)
                self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._shipper.join(30)
        try:
            self.flush()
        finally:
            self._journal.close()
            self._client.close()


# One JournaledWriter per chDB directory in this process, shared by every Store open on it.
_SHARED: dict[Path, tuple[JournaledWriter, int]] = {}
_SHARED_LOCK = threading.Lock()


def journal_path(chdb_dir: Path) -> Path:
    """Where the journal of the chDB data in ``chdb_dir`` lives: beside it, same disk."""
    return chdb_dir.parent / f"{chdb_dir.name}.access-journal"


def journaled_writer(url: str, chdb_dir: Path) -> JournaledWriter:
    """The writer of ``chdb_dir``, shared; give it back with ``release``."""
    key = chdb_dir.resolve()
    with _SHARED_LOCK:
        writer, users = _SHARED.get(key, (None, 0))
        if writer is None:
            writer = JournaledWriter(url, journal_path(key))
        _SHARED[key] = (writer, users + 1)
        return writer


def release(writer: AccessWriter) -> None:
    """Give back a writer from ``journaled_writer`` (the last user closes it) or close it."""
    if not isinstance(writer, JournaledWriter):
        writer.close()
        return
    with _SHARED_LOCK:
        for key, (shared, users) in list(_SHARED.items()):
            if shared is writer:
                if users > 1:
                    _SHARED[key] = (shared, users - 1)
                    return
                del _SHARED[key]
    writer.close()
