"""The tamper-evident access log: every entry is chained to the one before it by hash.

Each entry stores ``seq`` (1, 2, 3, ... in write order), ``prev_hash`` (the hash of entry
``seq - 1``; empty for the first) and ``hash`` = SHA-256 over the canonical serialisation of
the entry: a JSON object with sorted keys of every column, the time as integer microseconds
since the epoch (the stored precision, so a round trip through the database cannot change it)
and ``prev_hash`` itself. Editing any column of an entry breaks its own hash; deleting an entry
leaves a gap in ``seq`` and a ``prev_hash`` that names no stored entry; re-computing the hashes
after an edit breaks nothing only if every later entry is rewritten too, which is why the head
hash printed by ``safetrail audit verify`` is worth copying somewhere else (a ticket, a chat)
now and then: a later head must extend it.

Writers append through ``Store.log_access`` only, which chains under one lock, so threads of
one process always extend their chain in order (``projectors.access_writer``). A lock cannot
span processes, so every process writing to a ClickHouse server (API replicas, replays) keeps
a chain of its own, named in ``chain`` (host, process, a random part) and numbered from 1;
the embedded engine's single process keeps the unnamed chain. Verification checks each chain.
What a chain cannot show is the removal of its own newest entries, or of a whole chain: the
heads ``safetrail audit verify`` prints are what to copy elsewhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from projectors.rows import ACCESS_LOG_COLUMNS, micros

# The access-log columns, with the chain's own around them: same names, same order.
CHAIN_COLUMNS: tuple[str, ...] = (
    "chain",
    "seq",
    *ACCESS_LOG_COLUMNS,
    "details",
    "prev_hash",
    "hash",
)
# The chain of the embedded engine's single writer (and of every entry from before chains had
# names): its entries are hashed without the ``chain`` key, exactly as they always were.
UNNAMED = ""


def canonical_details(details: Mapping[str, Any] | None) -> str:
    """``details`` as compact JSON with sorted keys (empty string for none)."""
    if not details:
        return ""
    return orjson.dumps(dict(details), option=orjson.OPT_SORT_KEYS, default=str).decode()


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical serialisation of an entry (every column but ``hash``;
    ``chain`` only when the entry belongs to a named chain)."""
    body: dict[str, Any] = {name: entry[name] for name in CHAIN_COLUMNS if name != "hash"}
    if body["chain"] == UNNAMED:
        del body["chain"]
    at = body["at"]
    body["at"] = micros(at) if isinstance(at, datetime) else int(at)
    body["seq"] = int(body["seq"])
    blob = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True, slots=True)
class BrokenLink:
    """The first entry where a chain does not hold, and why."""

    chain: str
    seq: int
    entry_id: str
    problem: str

    def describe(self) -> str:
        """One line naming the record and the problem."""
        where = f"chain {self.chain} " if self.chain else ""
        return f"{where}entry seq={self.seq} entry_id={self.entry_id}: {self.problem}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Result of checking every chain from its first entry to its head."""

    checked: int
    unchained: int
    heads: dict[str, tuple[int, str]]  # chain -> (head seq, head hash), for the chains checked
    broken: BrokenLink | None

    @property
    def ok(self) -> bool:
        """True when every chained entry is intact and none is missing."""
        return self.broken is None


def verify_rows(rows: Iterable[Sequence[Any]], unchained: int = 0) -> ChainReport:
    """Check rows in CHAIN_COLUMNS order, sorted by ``chain`` then ``seq``; stop at the first
    broken entry.

    Within its chain an entry is broken when its stored hash differs from the recomputed one
    (edited), when its ``prev_hash`` differs from the previous entry's hash or its ``seq``
    skips numbers (an entry before it was deleted), or when two entries share a ``seq``.
    """
    heads: dict[str, tuple[int, str]] = {}
    checked = 0
    chain: str | None = None
    expected_seq, prev_hash = 1, ""
    for row in rows:
        entry = dict(zip(CHAIN_COLUMNS, row, strict=True))
        if entry["chain"] != chain or chain is None:
            chain, expected_seq, prev_hash = str(entry["chain"]), 1, ""
        seq, entry_id = int(entry["seq"]), str(entry["entry_id"])
        problem = None
        if seq < expected_seq:
            problem = f"seq {seq} appears twice (an inserted or copied entry)"
        elif seq > expected_seq:
            missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}..{seq - 1}"
            problem = f"entry seq {missing} before it is missing (deleted)"
        elif entry["prev_hash"] != prev_hash:
            problem = "prev_hash does not match the previous entry (an entry was replaced)"
        elif entry_hash(entry) != entry["hash"]:
            problem = "content does not match its hash (the entry was edited)"
        if problem is not None:
            return ChainReport(checked, unchained, heads, BrokenLink(chain, seq, entry_id, problem))
        checked += 1
        expected_seq, prev_hash = seq + 1, str(entry["hash"])
        heads[chain] = (seq, prev_hash)
    return ChainReport(checked, unchained, heads, None)
