"""Storage fixtures: a real ClickHouse engine per test module, no mocks.

chDB allows one engine path per process at a time (a second path fails until every client of
the first is closed), while several clients on one path are fine. So each module gets its own
store in its own temporary directory, opened once for the module and closed at its end; modules
never overlap, so their paths never do.

With ``SAFETRAIL_CLICKHOUSE_URL`` set to a server, each module gets a fresh database there
instead, so the same tests run against a real server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from ingest.schema import Lane, TimelineEvent
from projectors.blocks import TIMELINE_INSERT_COLUMNS, ColumnBlock
from projectors.clients import connect
from projectors.migrate import apply_pending, discover
from projectors.retention import RetentionPolicy
from projectors.rows import timeline_columns
from projectors.store import Store

SERVER_URL_ENV = "SAFETRAIL_CLICKHOUSE_URL"


def store_url(tmp_dir: Path) -> str:
    """A URL for a fresh, empty store: a server database if configured, else chDB in a dir."""
    server = os.environ.get(SERVER_URL_ENV)
    if not server:
        return f"chdb://{tmp_dir.resolve() / 'chdb'}"
    database = f"safetrail_test_{uuid.uuid4().hex[:12]}"
    admin = connect(server)
    try:
        admin.command(f"CREATE DATABASE {database}")
    finally:
        admin.close()
    parts = urlsplit(server)
    return urlunsplit(parts._replace(path=f"/{database}"))


def open_store(tmp_dir: Path, policy: RetentionPolicy | None = None) -> Store:
    """Open and migrate a fresh store; the caller closes it."""
    store = Store.open(store_url(tmp_dir), policy or RetentionPolicy())
    store.migrate()
    return store


@pytest.fixture(scope="module")
def timeline_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A migrated store with default retention, shared by the tests of one module."""
    store = open_store(tmp_path_factory.mktemp("store"))
    try:
        yield store
    finally:
        store.close()


def make_event(
    event_id: str,
    *,
    trace_id: str = "tr_test",
    type_: str = "signup.submitted",
    label: str | None = None,
    lane: Lane | None = None,
    at: datetime | None = None,
    **fields: Any,
) -> TimelineEvent:
    """A redacted timeline event with sensible defaults, for tests that need no redactor."""
    if lane is None:
        lane = Lane.SYSTEM if "_" in type_.split(".")[0] or "job" in type_ else Lane.CUSTOMER
    return TimelineEvent(
        event_id=event_id,
        trace_id=trace_id,
        type=type_,
        label=label or type_.replace("_", " ").replace(".", " ").capitalize(),
        lane=lane,
        occurred_at=at or datetime.now(UTC) - timedelta(minutes=5),
        source="test",
        rules_version="test-rules",
        **fields,
    )


def migrate_before(store: Store, version: int) -> None:
    """Apply the migrations older than ``version`` only: the schema a store had before it
    (tests of a migration then fill it as the code of that time did, and migrate)."""
    with store._pool.client() as client:  # noqa: SLF001 - test setup below the public API
        apply_pending(client, store.policy, [m for m in discover() if m.version < version])


def insert_without_view(store: Store, events: list[TimelineEvent]) -> None:
    """Store ``events`` as the code before migration 0008 did: without the ``view`` column
    (it stays empty, so reads fall back to the columns)."""
    columns = timeline_columns(events, datetime.now(UTC))[:-1]
    store.insert_timeline(ColumnBlock(TIMELINE_INSERT_COLUMNS[:-1], columns, len(events)))
