"""The embedded engine's access journal: a view's entry is synced to the journal before the view
is answered and stored in ``access_log`` shortly after. A process killed in between loses no
entry and stores none twice; a journal that cannot be written refuses the view."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from projectors.access_writer import Journal, journal_path
from projectors.retention import RetentionPolicy
from projectors.store import Store
from tests.store_fixtures import open_store

pytestmark = pytest.mark.skipif(
    "SAFETRAIL_CLICKHOUSE_URL" in os.environ,
    reason="the journal belongs to the embedded engine",
)

REPO = Path(__file__).resolve().parents[2]
ENTRIES = 300

# A process that logs ENTRIES views from 6 threads and dies at once (no close, no flush).
_CHILD = textwrap.dedent(
    """
    import os, sys, threading
    from projectors.store import Store
    store = Store.open(sys.argv[1])
    store.migrate()
    def views(worker):
        for n in range(int(sys.argv[2]) // 6):
            store.log_access(actor=f"agent{worker}", role="support", route="/v1/traces/{id}",
                             record_kind="trace", record_id=f"tr_{worker}_{n}")
    threads = [threading.Thread(target=views, args=(w,)) for w in range(6)]
    for t in threads: t.start()
    for t in threads: t.join()
    os._exit(0)
    """
)


def _crash_after_views(tmp_path: Path) -> tuple[str, Path]:
    url = f"chdb://{tmp_path / 'chdb'}"
    subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", _CHILD, url, str(ENTRIES)], cwd=REPO, check=True, timeout=120
    )
    return url, journal_path(tmp_path / "chdb")


def _stored(store: Store) -> list[tuple[int, str]]:
    store.flush_access()
    rows = store._rows("SELECT seq, record_id FROM access_log ORDER BY seq", {})  # noqa: SLF001
    return [(int(seq), str(rid)) for seq, rid in rows]


def test_when_the_process_dies_before_shipping_then_the_next_open_stores_every_entry_once(
    tmp_path: Path,
) -> None:
    url, journal = _crash_after_views(tmp_path)
    assert journal.stat().st_size > 0, "the crash left nothing journaled: nothing tested"

    with Store.open(url, RetentionPolicy()) as store:
        stored = _stored(store)
        report = store.verify_access_chain()
    assert [seq for seq, _ in stored] == list(range(1, ENTRIES + 1))
    assert len({rid for _, rid in stored}) == ENTRIES
    assert report.ok and report.checked == ENTRIES
    assert journal.stat().st_size == 0


def test_when_entries_already_stored_are_still_journaled_then_none_is_stored_twice(
    tmp_path: Path,
) -> None:
    # The process died after shipping a batch but before emptying the journal.
    url, journal = _crash_after_views(tmp_path)
    left = journal.read_bytes()
    Store.open(url, RetentionPolicy()).close()  # recovers and empties the journal
    journal.write_bytes(left)  # as if the journal had not been emptied

    with Store.open(url, RetentionPolicy()) as store:
        assert [seq for seq, _ in _stored(store)] == list(range(1, ENTRIES + 1))
        store.log_access(
            actor="agent", role="support", route="/r", record_kind="trace", record_id="tr_next"
        )
        assert _stored(store)[-1] == (ENTRIES + 1, "tr_next")
        assert store.verify_access_chain().ok


def test_when_the_last_journal_line_is_torn_then_it_is_skipped(tmp_path: Path) -> None:
    # A line cut short was never synced, so the view it belonged to was never answered.
    url, journal = _crash_after_views(tmp_path)
    with journal.open("ab") as f:
        f.write(b'{"seq": 99999, "entry_id": "half')
    with Store.open(url, RetentionPolicy()) as store:
        assert len(_stored(store)) == ENTRIES
        assert store.verify_access_chain().ok


def test_when_the_journal_cannot_be_written_then_the_view_is_refused_and_the_chain_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path / "store")
    try:

        def view(record_id: str) -> None:
            store.log_access(
                actor="agent", role="support", route="/r", record_kind="trace", record_id=record_id
            )

        view("tr_1")

        def disk_full(self: Journal, entries: Any) -> None:
            raise OSError(28, "No space left on device")

        with monkeypatch.context() as patch:
            patch.setattr(Journal, "append", disk_full)
            with pytest.raises(OSError, match="No space left"):
                view("tr_refused")
        view("tr_2")
        assert _stored(store) == [(1, "tr_1"), (2, "tr_2")]
        assert store.verify_access_chain().ok
    finally:
        store.close()
