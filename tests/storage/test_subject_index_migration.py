"""Migration 0009 indexes the order, workspace and request IDs of events stored before it,
and its view indexes those stored after it. (A chDB engine per process: its own module.)"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from projectors.retention import RetentionPolicy
from projectors.store import Store
from tests.storage.test_subject_index import NOW, case
from tests.store_fixtures import insert_without_view, migrate_before, store_url


def test_when_events_were_stored_before_the_migration_then_it_indexes_them(
    tmp_path: Path,
) -> None:
    with Store.open(store_url(tmp_path), RetentionPolicy()) as store:
        migrate_before(store, 9)
        insert_without_view(store, case("bf", NOW - timedelta(days=3)))
        assert store.migrate().applied == ["0009_subject_index"]

        assert [m.trace_id for m in store.traces_naming("1001", now=NOW)] == [
            "tr_bf_b",
            "tr_bf_a",
        ]
        store.insert_timeline(case("af", NOW - timedelta(days=1)))  # the view feeds it after
        assert [m.trace_id for m in store.traces_naming("1001", now=NOW)] == [
            "tr_af_b",
            "tr_af_a",
            "tr_bf_b",
            "tr_bf_a",
        ]
        assert store.migrate().applied == []
