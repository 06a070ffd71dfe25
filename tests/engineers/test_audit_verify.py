"""The tamper-evident access log: concurrent writers keep one chain; edits and deletions of a
single entry make ``safetrail audit verify`` fail and name that entry."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner, Result

from projectors.access_writer import DirectWriter
from projectors.audit_chain import entry_hash
from projectors.store import Store
from safetrail.cli import app as cli
from tests.api.conftest import HMAC_KEY
from tests.engineers.helpers import at_once, stored_rows
from tests.store_fixtures import open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh store whose log holds 40 entries written by 8 threads at once."""
    timeline_store = open_store(tmp_path / "store")

    def write(worker: int) -> None:
        for n in range(5):
            details = {"n": n} if n % 2 else None
            timeline_store.log_access(
                actor=f"user{worker}",
                role="engineer",
                route="/v1/raw/traces/{trace_id}",
                record_kind="raw_trace",
                record_id=f"tr_{worker}_{n}",
                reason="INC-1",
                details=details,
            )

    at_once(write, [(w,) for w in range(8)])
    try:
        yield timeline_store
    finally:
        timeline_store.close()


def _verify(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Result:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAFETRAIL_CLICKHOUSE_URL", store.url)
    monkeypatch.setenv("SAFETRAIL_HMAC_KEY", HMAC_KEY)
    return CliRunner().invoke(cli, ["audit", "verify"])


def _entry(store: Store, seq: int) -> str:
    rows = stored_rows(store, "SELECT entry_id FROM access_log WHERE seq = {s:UInt64}", {"s": seq})
    return str(rows[0][0])


def _mutate(store: Store, sql: str) -> None:
    stored_rows(store, f"{sql} SETTINGS mutations_sync = 2")


def test_when_threads_write_at_once_then_chain_is_intact(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seqs = [int(r[0]) for r in stored_rows(store, "SELECT seq FROM access_log ORDER BY seq")]
    assert seqs == list(range(1, 41))
    result = _verify(store, tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "OK: 40 entries" in result.output


@pytest.mark.parametrize(
    ("change", "seq", "named_seq", "words"),
    [
        ("ALTER TABLE access_log UPDATE actor = 'mallory' WHERE seq = 17", 17, 17, "edited"),
        ("ALTER TABLE access_log UPDATE reason = 'none' WHERE seq = 1", 1, 1, "edited"),
        ("ALTER TABLE access_log UPDATE details = 'tampered' WHERE seq = 30", 30, 30, "edited"),
        ("ALTER TABLE access_log DELETE WHERE seq = 12", 12, 13, "seq 12 before it is missing"),
    ],
)
def test_when_one_entry_is_edited_or_deleted_then_verify_fails_naming_it(
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: str,
    seq: int,
    named_seq: int,
    words: str,
) -> None:
    named = _entry(store, named_seq)
    _mutate(store, change)
    result = _verify(store, tmp_path, monkeypatch)
    assert result.exit_code == 1, result.output
    assert f"seq={named_seq} entry_id={named}" in result.output
    assert words in result.output


def test_when_an_entry_is_edited_and_rehashed_then_the_next_entry_is_named(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cols = (
        "chain, seq, entry_id, at, actor, role, route, record_kind, record_id, reason, details, "
        "prev_hash"
    )
    row = stored_rows(store, f"SELECT {cols} FROM access_log WHERE seq = 20")[0]  # noqa: S608
    forged = dict(zip(cols.split(", "), row, strict=True))
    forged["actor"] = "mallory"
    new_hash = entry_hash(forged)
    _mutate(
        store,
        f"ALTER TABLE access_log UPDATE actor = 'mallory', hash = '{new_hash}' WHERE seq = 20",
    )
    result = _verify(store, tmp_path, monkeypatch)
    assert result.exit_code == 1
    assert f"seq=21 entry_id={_entry(store, 21)}" in result.output
    assert "prev_hash does not match" in result.output


def test_when_the_chains_tail_has_its_seq_cleared_then_verify_fails_naming_an_entry(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # seq 0 means "written before chains existed"; entries newer than the chain's start with
    # seq 0 had it cleared, which hid their edit and left a shorter, intact-looking chain.
    cleared = {_entry(store, seq) for seq in range(35, 41)}
    _mutate(store, "ALTER TABLE access_log UPDATE seq = 0, reason = 'routine' WHERE seq >= 35")
    result = _verify(store, tmp_path, monkeypatch)
    assert result.exit_code == 1, result.output
    assert "no chain position (seq cleared)" in result.output
    assert any(f"entry_id={entry}" in result.output for entry in cleared), result.output


def test_when_entries_predate_the_chain_then_verify_passes_and_counts_them(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored_rows(
        store,
        "INSERT INTO access_log (entry_id, at, actor, role, route, record_kind, record_id, seq) "
        "VALUES ('e_before_chains', '2025-01-02 03:04:05', 'old', 'support', '/v1/traces', "
        "'trace', 'tr_old', 0)",
    )
    result = _verify(store, tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    assert "1 entries predate the chain and are not covered" in result.output


def test_when_two_api_replicas_write_at_once_then_each_keeps_its_own_intact_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two writers on one ClickHouse (API replicas): a lock in one cannot order the other, so
    # each chains on its own named chain; a deletion in either is still found.
    base = open_store(tmp_path / "store")
    replicas = [
        Store(base._pool, base.policy, DirectWriter(base._pool.client))  # noqa: SLF001
        for _ in range(2)
    ]

    def write(replica: Store, worker: int) -> None:
        for n in range(10):
            replica.log_access(
                actor=f"agent{worker}",
                role="support",
                route="/v1/traces/{trace_id}",
                record_kind="trace",
                record_id=f"tr_{worker}_{n}",
            )

    at_once(write, [(replicas[w % 2], w) for w in range(6)])
    try:
        report = base.verify_access_chain()
        assert report.ok, report.broken
        assert report.checked == 60
        names = {r._access.chain for r in replicas}  # type: ignore[attr-defined]  # noqa: SLF001
        assert set(report.heads) == names
        assert all(seq == 30 for seq, _ in report.heads.values())
        result = _verify(base, tmp_path, monkeypatch)
        assert result.exit_code == 0, result.output
        assert "OK: 60 entries in 2 chains" in result.output

        victim = sorted(names)[1]
        _mutate(
            base,
            f"ALTER TABLE access_log DELETE WHERE chain = '{victim}' AND seq = 7",
        )
        result = _verify(base, tmp_path, monkeypatch)
        assert result.exit_code == 1
        assert f"chain {victim} entry seq=8" in result.output
        assert "seq 7 before it is missing" in result.output
    finally:
        base.close()


def test_when_an_entry_is_on_the_embedded_chain_then_its_hash_is_the_one_from_before_chains() -> (
    None
):
    # Entries written before chains had names must still verify: the unnamed chain's hash body
    # has no ``chain`` key.
    entry = {
        "chain": "",
        "seq": 3,
        "entry_id": "e3",
        "at": datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
        "actor": "agent",
        "role": "support",
        "route": "/v1/traces/{trace_id}",
        "record_kind": "trace",
        "record_id": "tr_1",
        "reason": None,
        "details": "",
        "prev_hash": "ab" * 32,
    }
    before = {k: v for k, v in entry.items() if k != "chain"}
    before["at"] = 1_795_687_200_000_000  # microseconds since the epoch
    legacy = hashlib.sha256(orjson.dumps(before, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert entry_hash(entry) == legacy
    assert entry_hash({**entry, "chain": "api-0/1/abc"}) != legacy
