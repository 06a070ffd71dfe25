"""Migrations are versioned and idempotent; the TTL in force follows configured retention."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from projectors.migrate import Migration, MigrationError, apply_pending, discover
from projectors.retention import RetentionPolicy, parse_ttl_days
from projectors.store import Store
from tests.store_fixtures import SERVER_URL_ENV, open_store


def test_when_migrating_twice_then_the_second_run_changes_nothing(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        second = store.migrate()
        with store._pool.client() as client:
            rows = client.query("SELECT version FROM schema_migrations ORDER BY version")
            recorded = [row[0] for row in rows.result_rows]
    assert (second.applied, second.ttl_changed) == ([], [])
    assert recorded == [m.version for m in discover()]


def test_when_an_applied_migration_was_edited_then_migrate_refuses(tmp_path: Path) -> None:
    with open_store(tmp_path) as store, store._pool.client() as client:
        first = discover()[0]
        edited = replace(first, template=first.template + "\n-- edited later\n")
        with pytest.raises(MigrationError, match="edited after it was applied"):
            apply_pending(client, store.policy, [edited])


def test_when_a_migration_file_is_misnamed_then_discovery_says_how_to_name_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "add_things.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match="NNNN_name.sql"):
        discover(tmp_path)


def test_when_a_migration_is_a_template_then_retention_fills_it_and_comments_go() -> None:
    migration = Migration(9, "t", "-- keep ${retention_days};\nCREATE x TTL ${raw_retention_days};")
    assert migration.statements(RetentionPolicy(30, 7)) == ["CREATE x TTL 7"]


@pytest.mark.parametrize(
    ("engine_full", "days"),
    [
        # what ClickHouse prints for our TTL, with settings after it
        ("MergeTree ORDER BY a TTL toDateTime(t) + toIntervalDay(400) SETTINGS x = 1", 400),
        # no TTL at all
        ("MergeTree ORDER BY a SETTINGS index_granularity = 8192", None),
        # a TTL we did not write is reported as unknown, never as a match
        ("MergeTree ORDER BY a TTL t + toIntervalMonth(1)", -1),
    ],
)
def test_when_reading_a_table_engine_then_the_ttl_days_are_parsed(
    engine_full: str, days: int | None
) -> None:
    assert parse_ttl_days(engine_full) == days


def test_when_retention_is_configured_then_the_ttl_in_force_matches_it(tmp_path: Path) -> None:
    with open_store(tmp_path, RetentionPolicy(retention_days=30, raw_retention_days=7)) as store:
        statuses = {s.table: s for s in store.ttl_status()}
    assert all(s.ok for s in statuses.values())
    assert statuses["timeline_events"].actual_days == 30
    assert statuses["customer_lookup"].actual_days == 30
    assert statuses["raw_events"].actual_days == 7
    assert statuses["dead_letters"].actual_days == 7
    assert statuses["trace_index"].actual_days is None  # kept without TTL on purpose
    assert statuses["access_log"].actual_days is None


def test_when_retention_changes_then_the_check_flags_it_and_migrate_applies_it(
    tmp_path: Path,
) -> None:
    with open_store(tmp_path) as store:
        drift = {s.table: s.ok for s in store.ttl_status(RetentionPolicy(90, 3))}
    assert drift["timeline_events"] is False and drift["raw_events"] is False
    assert drift["trace_index"] is True

    with open_store(tmp_path, RetentionPolicy(90, 3)) as store:
        statuses = {s.table: s for s in store.ttl_status()}
    assert statuses["timeline_events"].actual_days == 90
    assert statuses["raw_events"].actual_days == 3
    assert all(s.ok for s in statuses.values())


@pytest.mark.skipif(bool(os.environ.get(SERVER_URL_ENV)), reason="a chDB engine fact")
def test_when_a_second_chdb_path_opens_then_it_must_wait_for_the_first_to_close(
    tmp_path: Path,
) -> None:
    # Why the fixtures give each module one store and close it at the module's end.
    first = Store.open(f"chdb://{tmp_path / 'a'}")
    try:
        same = Store.open(f"chdb://{tmp_path / 'a'}")  # the same path: shared engine, fine
        same.close()
        with pytest.raises(Exception, match="different path"):
            Store.open(f"chdb://{tmp_path / 'b'}")
    finally:
        first.close()
    Store.open(f"chdb://{tmp_path / 'b'}").close()  # once the first is closed, fine
