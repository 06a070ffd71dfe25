"""The tamper-evident access log: concurrent writers keep one chain; edits and deletions of a
single entry make ``safetrail audit verify`` fail and name that entry."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from projectors.audit_chain import entry_hash
from projectors.store import Store
from safetrail.cli import app as cli
from tests.api.conftest import HMAC_KEY
from tests.engineers.helpers import stored_rows
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

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
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
        "seq, entry_id, at, actor, role, route, record_kind, record_id, reason, details, prev_hash"
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
