"""The ingest journal: acknowledged events survive a crash before their insert, torn writes are
never replayed, shipped segments go away, reads see every acknowledged event, one owner."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.batch import process_batch
from ingest.collector import EmbeddedCollector
from ingest.journal import IngestJournal, JournalBusy, JournalRecord, journal_dir
from projectors.rows import DeadLetter
from projectors.store import Store
from tests.storage.test_collector import REDACTOR, CountingStore, events


def _record(trace_id: str, n: int) -> JournalRecord:
    batch = process_batch(events(trace_id, n), REDACTOR, datetime.now(UTC))
    letters = (DeadLetter(reason="bad", payload=b"{}"),)
    return JournalRecord(raw=batch.raw, dead_letters=letters, timeline=batch.timeline)


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.journal"))


def test_when_a_process_dies_before_shipping_then_the_next_one_reads_every_record(
    tmp_path: Path,
) -> None:
    first = IngestJournal(tmp_path / "j")
    first.append([_record("tr_jr_a", 3)])
    first.append([_record("tr_jr_b", 2), _record("tr_jr_c", 1)])
    os.close(first._lock_fd)  # noqa: SLF001 - what process death does to the lock
    second = IngestJournal(tmp_path / "j")
    left = second.leftover()
    assert [r.events for r in left] == [4, 3, 2]  # timeline events + one dead letter each
    assert left[0].timeline is not None and left[0].timeline.count == 3
    second.drop_leftover()
    assert second.leftover() == []
    second.close()


def test_when_the_last_write_is_torn_or_corrupt_then_reading_stops_before_it(
    tmp_path: Path,
) -> None:
    journal = IngestJournal(tmp_path / "j")
    journal.append([_record("tr_jr_t", 2)])
    (segment,) = _segments(tmp_path / "j")
    whole = segment.read_bytes()
    with segment.open("ab") as f:  # a second record cut short: never synced, never answered
        f.write(_record("tr_jr_u", 2).encode()[:50])
    os.close(journal._lock_fd)  # noqa: SLF001
    assert [r.events for r in IngestJournal(tmp_path / "j").leftover()] == [3]

    flipped = bytearray(whole)
    flipped[-1] ^= 0xFF  # a flipped bit in the payload fails the checksum
    segment.write_bytes(bytes(flipped))
    for lock in (tmp_path / "j").glob("owner.lock"):
        lock.unlink()
    assert IngestJournal(tmp_path / "j").leftover() == []


def test_when_records_are_shipped_then_their_segments_are_emptied_and_removed(
    tmp_path: Path,
) -> None:
    journal = IngestJournal(tmp_path / "j", segment_bytes=1)  # one record a segment
    seqs = [journal.append([_record(f"tr_jr_s{i}", 2)]) for i in range(3)]
    assert seqs == [1, 2, 3]
    assert len([p for p in _segments(tmp_path / "j") if p.stat().st_size]) == 3
    journal.shipped(2)
    assert len([p for p in _segments(tmp_path / "j") if p.stat().st_size]) == 1
    journal.shipped(3)
    assert all(p.stat().st_size == 0 for p in _segments(tmp_path / "j"))
    journal.close()


def test_when_another_collector_holds_the_directory_then_a_second_journal_is_refused(
    tmp_path: Path,
) -> None:
    journal = IngestJournal(tmp_path / "j")
    with pytest.raises(JournalBusy, match="in use"):
        IngestJournal(tmp_path / "j")
    journal.close()
    IngestJournal(tmp_path / "j").close()  # free again once closed


def test_when_events_are_acknowledged_then_the_next_read_sees_them_without_waiting_for_a_batch(
    timeline_store: Store, tmp_path: Path
) -> None:
    collector = EmbeddedCollector(
        timeline_store, REDACTOR, journal=tmp_path / "j", ship_events=10**9, ship_seconds=3600
    )
    timeline_store.add_read_barrier(collector.flush)
    try:
        assert collector.ingest(events("tr_jr_read", 5)).accepted == 5
        # Nothing would ship for an hour, but the read waits for what was acknowledged.
        assert len(timeline_store.trace_events("tr_jr_read")) == 5
    finally:
        timeline_store.remove_read_barrier(collector.flush)
        collector.close()
    assert all(p.stat().st_size == 0 for p in _segments(tmp_path / "j"))


_CHILD = textwrap.dedent(
    """
    import os, sys
    from ingest.collector import EmbeddedCollector
    from ingest.journal import journal_dir
    from projectors.retention import RetentionPolicy
    from projectors.store import Store
    from tests.storage.test_collector import REDACTOR, events

    store = Store.open(sys.argv[1], RetentionPolicy())
    store.migrate()
    directory = journal_dir(store.chdb_directory)
    collector = EmbeddedCollector(
        store, REDACTOR, journal=directory, ship_events=10**9, ship_seconds=3600
    )
    report = collector.ingest(events("tr_jr_crash", 7) + [{"not": "an event"}])
    print(report.accepted, report.rejected, flush=True)
    os._exit(0)  # dies before any insert: what kill -9 leaves behind
    """
)


_RESTART = textwrap.dedent(
    """
    import sys
    from ingest.collector import EmbeddedCollector
    from ingest.journal import journal_dir
    from projectors.retention import RetentionPolicy
    from projectors.store import Store
    from tests.storage.test_collector import REDACTOR

    store = Store.open(sys.argv[1], RetentionPolicy())
    directory = journal_dir(store.chdb_directory)
    print(store.counts().timeline_events, flush=True)
    for _ in range(2):  # a second start finds nothing left to store
        EmbeddedCollector(store, REDACTOR, journal=directory).close()
        counts = store.counts()
        print(counts.timeline_events, counts.raw_events, counts.dead_letters, flush=True)
    print(len(store.trace_events("tr_jr_crash")), flush=True)
    store.close()
    """
)


def _child(script: str, url: str) -> list[str]:
    # chDB opens one data directory per process, and this module's store holds another.
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


def test_when_the_process_dies_after_acknowledging_then_the_next_collector_stores_it_once(
    tmp_path: Path,
) -> None:
    url = f"chdb://{(tmp_path / 'chdb').resolve()}"
    assert _child(_CHILD, url) == ["7 1"]
    directory = journal_dir((tmp_path / "chdb").resolve())
    assert any(p.stat().st_size for p in _segments(directory))
    # Nothing inserted before the restart; after it, every event once, the dead letter too.
    assert _child(_RESTART, url) == ["0", "7 7 1", "7 7 1", "7"]
    assert not any(p.stat().st_size for p in _segments(directory))


def test_when_storage_fails_at_startup_then_the_collector_refuses_and_keeps_the_journal(
    timeline_store: Store, tmp_path: Path
) -> None:
    left = IngestJournal(tmp_path / "j")
    left.append([_record("tr_jr_boot", 3)])
    left.close()  # what a previous process left: one record, not inserted
    failing = CountingStore(timeline_store, fail=True)
    with pytest.raises(RuntimeError, match="disk full"):
        EmbeddedCollector(failing, REDACTOR, journal=tmp_path / "j")
    assert any(p.stat().st_size for p in _segments(tmp_path / "j"))  # kept for the next start
    EmbeddedCollector(timeline_store, REDACTOR, journal=tmp_path / "j").close()
    assert len(timeline_store.trace_events("tr_jr_boot")) == 3
    assert not any(p.stat().st_size for p in _segments(tmp_path / "j"))
