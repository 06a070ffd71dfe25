"""The cluster form of every migration: replicated ``_local`` tables behind Distributed tables.

chDB cannot run ``ON CLUSTER``, so the generated statements are proven to parse with ClickHouse's
own parser (``formatQuery``, inside chDB or the test server); a real cluster run needs a server
that has a cluster.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from typer.testing import CliRunner

from projectors.clients import connect
from projectors.cluster import ClusterDdlError, cluster_ddl, cluster_statements
from projectors.migrate import Migration, apply_pending, discover
from projectors.retention import TTL_TABLES, RetentionPolicy
from projectors.store import Store
from safetrail.cli import app
from tests.store_fixtures import SERVER_URL_ENV

CLUSTER, DATABASE = "prod_cluster", "safetrail"
POLICY = RetentionPolicy()
MIGRATIONS = discover()
_CREATE = re.compile(r"^CREATE TABLE (?:IF NOT EXISTS )?(\w+)\s*\(", re.I)
# A copy or backfill: INSERT INTO <table> SELECT ... FROM <table> (plain names both).
_COPY = re.compile(r"^INSERT INTO (\w+)\s+SELECT\s.+?\sFROM (\w+)\b", re.S)
_MV = re.compile(r"^CREATE MATERIALIZED VIEW (?:IF NOT EXISTS )?\w+ TO (\w+) AS (.*)$", re.I | re.S)


def _format(store: Store, sql: str) -> str:
    """ClickHouse's own formatting of ``sql``; raises when its parser rejects the statement."""
    with store._pool.client() as client:
        return str(client.command("SELECT formatQuery({sql:String})", parameters={"sql": sql}))


def _by_file() -> list[Any]:
    return [pytest.param(m, id=f"{m.version:04d}_{m.name}") for m in MIGRATIONS]


@pytest.mark.parametrize("migration", _by_file())
def test_when_a_migration_goes_to_a_cluster_then_every_table_is_replicated_and_distributed(
    migration: Migration,
) -> None:
    for statement in migration.statements(POLICY):
        created = _CREATE.match(statement)
        if created is None:
            continue
        table = created[1]
        local, distributed = cluster_ddl(statement, CLUSTER, DATABASE)
        assert local.startswith(f"CREATE TABLE IF NOT EXISTS {table}_local ON CLUSTER '{CLUSTER}'")
        path = f"'/clickhouse/tables/{{shard}}/{DATABASE}/{table}_local', '{{replica}}'"
        assert re.search(rf"ENGINE = Replicated\w*MergeTree\({re.escape(path)}", local)
        key = "cityHash64(trace_id)" if re.search(r"^\s*trace_id\s", statement, re.M) else ""
        assert distributed.startswith(
            f"CREATE TABLE IF NOT EXISTS {table} ON CLUSTER '{CLUSTER}' AS {table}_local"
        )
        assert f"Distributed('{CLUSTER}', {DATABASE}, {table}_local, {key}" in distributed


@pytest.mark.parametrize("migration", _by_file())
def test_when_a_migration_goes_to_a_cluster_then_views_and_alters_use_local_tables(
    migration: Migration,
) -> None:
    for statement in migration.statements(POLICY):
        out = cluster_ddl(statement, CLUSTER, DATABASE)
        if view := _MV.match(statement):
            (mv,) = out
            assert f"ON CLUSTER '{CLUSTER}' TO {view[1]}_local AS" in mv
            for source in re.findall(r"\bFROM\s+(\w+)", view[2]):
                assert f"FROM {source}_local" in mv
        elif statement.upper().startswith("EXCHANGE TABLES"):
            _, first, _, second = statement.split()[1:5]
            assert out == [
                f"EXCHANGE TABLES {first}_local AND {second}_local ON CLUSTER '{CLUSTER}'"
            ]
        elif copy := _COPY.match(statement):
            assert out == [statement], "a copy goes through the Distributed tables, once"
            assert not copy[1].endswith("_local") and not copy[2].endswith("_local")
        elif statement.upper().startswith("ALTER TABLE"):
            table = statement.split()[2]
            assert out[0].startswith(f"ALTER TABLE {table}_local ON CLUSTER '{CLUSTER}' ")
            if " COLUMN " in statement.upper():
                assert out[1].startswith(f"ALTER TABLE {table} ON CLUSTER '{CLUSTER}' ")


@pytest.mark.parametrize("migration", _by_file())
def test_when_cluster_statements_are_generated_then_clickhouse_parses_every_one(
    migration: Migration, timeline_store: Store
) -> None:
    statements = cluster_statements(migration.statements(POLICY), CLUSTER, DATABASE)
    assert statements
    for statement in statements:
        formatted = _format(timeline_store, statement)
        if not _COPY.match(statement):  # a copy runs once, through the Distributed tables
            assert f"ON CLUSTER {CLUSTER}" in formatted


def test_when_tables_are_sharded_then_each_keeps_its_trace_or_its_dedup_key_on_one_shard() -> None:
    keys = {}
    for migration in MIGRATIONS:
        for statement in cluster_statements(migration.statements(POLICY), CLUSTER, DATABASE):
            if found := re.search(r"Distributed\('[^']+', \w+, (\w+)_local, (.+)\)$", statement):
                keys[found[1]] = found[2]
    assert keys["timeline_events"] == keys["trace_index"] == "cityHash64(trace_id)"
    assert keys["raw_events"] == "cityHash64(trace_id)"
    assert keys["customer_lookup"] == "cityHash64(lookup_key, customer_id)"
    assert keys["access_log"] == "rand()"
    assert set(TTL_TABLES) <= set(keys)


def test_when_the_ledger_goes_to_a_cluster_then_it_is_replicated_too() -> None:
    recorder = _Recorder()
    apply_pending(recorder, POLICY, MIGRATIONS, cluster=CLUSTER)
    assert recorder.commands
    assert all(
        "ON CLUSTER" in c for c in recorder.commands if not c.startswith(("SELECT", "INSERT"))
    )
    assert any(
        c.startswith("CREATE TABLE IF NOT EXISTS schema_migrations_local")
        for c in recorder.commands
    )
    assert [row[0][0] for row in recorder.inserted] == [m.version for m in MIGRATIONS]


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("CREATE TABLE t ON CLUSTER c (a String) ENGINE = MergeTree ORDER BY a", "single-node"),
        ("CREATE TABLE t (a String) ENGINE = Memory", "MergeTree"),
        ("CREATE MATERIALIZED VIEW v AS SELECT 1", "no cluster form"),
        ("INSERT INTO t VALUES (1)", "no cluster form"),
    ],
)
def test_when_a_statement_has_no_automatic_cluster_form_then_it_is_refused(
    statement: str, message: str
) -> None:
    with pytest.raises(ClusterDdlError, match=message):
        cluster_ddl(statement, CLUSTER, DATABASE)


@pytest.mark.parametrize(("cluster", "database"), [("c' x", DATABASE), (CLUSTER, "db; DROP")])
def test_when_a_name_would_need_quoting_then_it_is_refused(cluster: str, database: str) -> None:
    with pytest.raises(ClusterDdlError, match="name"):
        cluster_ddl("ALTER TABLE t MODIFY TTL toDateTime(a) + INTERVAL 1 DAY", cluster, database)


def test_when_values_hold_commas_and_parentheses_then_the_transformation_keeps_them(
    timeline_store: Store,
) -> None:
    sql = (
        "CREATE TABLE t (k String, m Map(String, String) DEFAULT map('a,(', 'b')) "
        "ENGINE = SummingMergeTree((n, m)) ORDER BY (k, toDate(now()))"
    )
    local, distributed = cluster_ddl(sql, CLUSTER, DATABASE)
    assert "ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/safetrail/t_local'" in local
    assert local.endswith("'{replica}', (n, m)) ORDER BY (k, toDate(now()))")
    assert distributed.endswith("cityHash64(k, toDate(now())))")
    assert _format(timeline_store, local) and _format(timeline_store, distributed)
    with pytest.raises(DatabaseError, match="Syntax error"):  # the parse check can fail
        _format(timeline_store, local.replace("ORDER BY", "ORDER"))


def test_when_no_cluster_is_given_then_the_single_node_schema_applies_untouched(
    timeline_store: Store,
) -> None:
    with timeline_store._pool.client() as client:
        engines = dict(
            client.query(
                "SELECT name, engine FROM system.tables WHERE database = currentDatabase()"
            ).result_rows
        )
    statuses = timeline_store.ttl_status()
    assert not any(e.startswith(("Replicated", "Distributed")) for e in engines.values())
    assert not any(name.endswith("_local") for name in engines)
    assert all(s.ok for s in statuses)


@pytest.mark.skipif(
    not (os.environ.get(SERVER_URL_ENV) and os.environ.get("SAFETRAIL_CLICKHOUSE_CLUSTER")),
    reason="needs SAFETRAIL_CLICKHOUSE_URL and SAFETRAIL_CLICKHOUSE_CLUSTER naming a cluster "
    "of that server (remote_servers, with {shard} and {replica} macros and Keeper)",
)
def test_when_migrating_a_server_cluster_then_tables_are_distributed_and_twice_is_a_no_op() -> None:
    server, cluster = os.environ[SERVER_URL_ENV], os.environ["SAFETRAIL_CLICKHOUSE_CLUSTER"]
    database = f"safetrail_test_{uuid.uuid4().hex[:12]}"
    admin = connect(server)
    try:
        admin.command(f"CREATE DATABASE {database} ON CLUSTER '{cluster}'")
        url = urlunsplit(urlsplit(server)._replace(path=f"/{database}"))
        with Store.open(url, POLICY) as store:
            first = store.migrate(cluster=cluster)
            second = store.migrate(cluster=cluster)
            statuses = store.ttl_status(cluster=True)
            with store._pool.client() as client:
                engine = client.command(
                    "SELECT engine FROM system.tables "
                    "WHERE database = currentDatabase() AND name = 'timeline_events'"
                )
        assert first.applied == [f"{m.version:04d}_{m.name}" for m in MIGRATIONS]
        assert (second.applied, second.ttl_changed) == ([], [])
        assert engine == "Distributed"
        assert all(s.ok for s in statuses)
    finally:
        admin.command(f"DROP DATABASE IF EXISTS {database} ON CLUSTER '{cluster}' SYNC")
        admin.close()


class _Recorder:
    """Stands in for a client to record what the cluster path sends, in order."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.inserted: list[list[list[Any]]] = []

    def command(self, sql: str) -> Any:
        self.commands.append(sql)
        if sql == "SELECT currentDatabase()":
            return DATABASE
        return "Distributed" if sql.startswith("SELECT engine") else None

    def query(self, sql: str) -> Any:
        self.commands.append(sql)
        return type("Result", (), {"result_rows": []})()

    def insert(self, table: str, rows: list[list[Any]], **kwargs: Any) -> None:
        assert table == "schema_migrations"
        assert kwargs["settings"] == {"insert_distributed_sync": 1}
        self.inserted.append(rows)


def test_when_a_cluster_is_asked_of_the_embedded_engine_then_migrate_refuses(
    tmp_path: Path,
) -> None:
    env = {"SAFETRAIL_DEMO": "1", "SAFETRAIL_CLICKHOUSE_URL": ""}
    args = ["migrate", "--cluster", CLUSTER, "--data-dir", str(tmp_path)]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 2
    assert "--cluster needs SAFETRAIL_CLICKHOUSE_URL" in result.output
