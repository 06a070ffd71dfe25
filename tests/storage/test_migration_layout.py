"""Migration 0007 moves a timeline that already holds events to its new layout (yearly
partitions, no ``by_job`` copy): every event, index row and lookup key is still there, each
read answers as before, and inserts after the move still feed the index and lookup views."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest.schema import TimelineEvent
from projectors.migrate import MigrationError, discover
from projectors.reads import TimelineQuery
from projectors.retention import RetentionPolicy
from projectors.store import Store
from safetrail.cli import app as cli
from tests.store_fixtures import insert_without_view, make_event, migrate_before, store_url

NOW = datetime.now(UTC)
MONTHS = 9


def _events(start: int, count: int) -> list[TimelineEvent]:
    return [
        make_event(
            f"ev_layout_{i:05d}",
            trace_id=f"tr_layout_{i // 4:04d}",
            type_="email_job.retry" if i % 2 else "signup.submitted",
            at=NOW - timedelta(days=30 * (i % MONTHS), minutes=i),
            customer_id=f"c{i % 7}",
            job_id=f"job_{i // 4:04d}" if i % 2 else None,
            lookup_keys=[f"lk_{i % 7}"],
        )
        for i in range(start, start + count)
    ]


def _layout(store: Store) -> tuple[str, str]:
    with store._pool.client() as client:  # noqa: SLF001
        key, create = client.query(
            "SELECT partition_key, create_table_query FROM system.tables "
            "WHERE database = currentDatabase() AND name = 'timeline_events'"
        ).result_rows[0]
    return str(key), str(create)


def _answers(store: Store) -> tuple[object, ...]:
    return (
        store.counts(),
        [e.event_id for e in store.trace_events("tr_layout_0003")],
        [e.event_id for e in store.job_events("job_0005")],
        [e.event_id for e in store.job_view("job_0005")[0]],
        [r.event_id for r in store.job_index("job_0005")],
        store.customer_page("c3", TimelineQuery(limit=500)),
        store.customers_by_lookup_key("lk_3"),
    )


def test_when_the_timeline_moves_to_its_new_layout_then_every_event_and_answer_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store.open(store_url(tmp_path), RetentionPolicy()) as store:
        migrate_before(store, 7)
        insert_without_view(store, _events(0, 400))
        assert _layout(store)[0] == "toYYYYMM(occurred_at)"
        with monkeypatch.context() as m:  # read as the code of that time did: no view column
            m.setattr(Store, "view_column", False)
            before = _answers(store)

        assert store.migrate().applied == [
            "0007_timeline_layout",
            "0008_timeline_view",
            "0009_subject_index",
        ]

        key, create = _layout(store)
        assert key == "toYear(occurred_at)"
        assert "by_job" not in create and "by_customer" in create
        assert _answers(store) == before
        assert before[0].timeline_events == 400

        store.insert_timeline(_events(400, 40))  # the views feed the index and lookups again
        assert store.counts().timeline_events == 440
        assert store.counts().trace_index == 440
        assert sorted(r.event_id for r in store.trace_index("tr_layout_0105")) == [
            f"ev_layout_{i:05d}" for i in range(420, 424)
        ]
        assert store.migrate().applied == []


def test_when_rows_must_move_and_other_writers_may_exist_then_migrating_is_refused_first(
    tmp_path: Path,
) -> None:
    # On a server several processes migrate at start; a copy-and-exchange must not race them
    # or their inserts. ``offline=False`` is what those processes pass on a server.
    with Store.open(store_url(tmp_path), RetentionPolicy()) as store:
        migrate_before(store, 7)
        insert_without_view(store, _events(0, 20))
        with pytest.raises(MigrationError, match="0007_timeline_layout moves stored rows"):
            store.migrate(offline=False)
        assert _layout(store)[0] == "toYYYYMM(occurred_at)"  # nothing applied
        assert [m.name for m in discover() if m.offline] == ["timeline_layout"]

        result = CliRunner().invoke(
            cli, ["migrate"], env={"SAFETRAIL_CLICKHOUSE_URL": store.url, "SAFETRAIL_DEMO": "1"}
        )
    assert result.exit_code == 0, result.output
    assert "0007_timeline_layout" in result.output
