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

Writers append through ``Store.log_access`` only, which holds a lock around "read the last
entry, insert the next", so threads of one process always extend the chain in order. Several
processes writing to one ClickHouse server would each need that lock to be shared; the
embedded engine allows only one process anyway.
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
CHAIN_COLUMNS: tuple[str, ...] = ("seq", *ACCESS_LOG_COLUMNS, "details", "prev_hash", "hash")


def canonical_details(details: Mapping[str, Any] | None) -> str:
    """``details`` as compact JSON with sorted keys (empty string for none)."""
    if not details:
        return ""
    return orjson.dumps(dict(details), option=orjson.OPT_SORT_KEYS, default=str).decode()


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical serialisation of an entry (every column but ``hash``)."""
    body: dict[str, Any] = {name: entry[name] for name in CHAIN_COLUMNS if name != "hash"}
    at = body["at"]
    body["at"] = micros(at) if isinstance(at, datetime) else int(at)
    body["seq"] = int(body["seq"])
    blob = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True, slots=True)
class BrokenLink:
    """The first entry where the chain does not hold, and why."""

    seq: int
    entry_id: str
    problem: str

    def describe(self) -> str:
        """One line naming the record and the problem."""
        return f"entry seq={self.seq} entry_id={self.entry_id}: {self.problem}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Result of checking the chain from its first entry to its head."""

    checked: int
    unchained: int
    head_seq: int
    head_hash: str
    broken: BrokenLink | None

    @property
    def ok(self) -> bool:
        """True when every chained entry is intact and none is missing."""
        return self.broken is None


def verify_rows(rows: Iterable[Sequence[Any]], unchained: int = 0) -> ChainReport:
    """Check rows in CHAIN_COLUMNS order, sorted by ``seq``; stop at the first broken entry.

    An entry is broken when its stored hash differs from the recomputed one (edited), when
    its ``prev_hash`` differs from the previous entry's hash or its ``seq`` skips numbers
    (an entry before it was deleted), or when two entries share a ``seq``.
    """
    expected_seq, prev_hash, checked = 1, "", 0
    for row in rows:
        entry = dict(zip(CHAIN_COLUMNS, row, strict=True))
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
            broken = BrokenLink(seq, entry_id, problem)
            return ChainReport(checked, unchained, expected_seq - 1, prev_hash, broken)
        checked += 1
        expected_seq, prev_hash = seq + 1, str(entry["hash"])
    return ChainReport(checked, unchained, expected_seq - 1, prev_hash, None)
