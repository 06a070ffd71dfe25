"""Versioned SQL migrations: ``migrations/NNNN_name.sql``, applied in order, recorded once.

Files are templates: ``${retention_days}`` and ``${raw_retention_days}`` are filled from the
retention policy at apply time. The checksum is taken over the template, so changing retention
in settings never looks like an edited migration (``retention.enforce`` handles that change).
Statements use ``IF NOT EXISTS`` so a migration interrupted half-way can simply run again.
Files are written for one node; with a cluster name each statement is applied in its
``ON CLUSTER`` form (``projectors.cluster``), the ledger included.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any

from projectors.cluster import cluster_statements
from projectors.retention import RetentionPolicy

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_STATEMENT_END = re.compile(r";\s*(?:\n|$)")
# A migration that moves stored rows (copy, then exchange) says so in a comment line.
_OFFLINE = re.compile(r"^--\s*offline:", re.M)

BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version     UInt32,
    name        String,
    checksum    String,
    applied_at  DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version
"""


class MigrationError(RuntimeError):
    """The database and the migration files disagree in a way that needs a person."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    template: str

    @property
    def offline(self) -> bool:
        """True when the migration moves stored rows, so nothing may write while it runs."""
        return bool(_OFFLINE.search(self.template))

    @property
    def checksum(self) -> str:
        """SHA-256 of the file as written (before retention values are filled in)."""
        return hashlib.sha256(self.template.encode()).hexdigest()

    def statements(self, policy: RetentionPolicy) -> list[str]:
        """The SQL statements with retention filled in, comments removed."""
        sql = Template(self.template).substitute(
            retention_days=policy.retention_days,
            raw_retention_days=policy.raw_retention_days,
        )
        body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
        return [part.strip() for part in _STATEMENT_END.split(body) if part.strip()]


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All migration files in version order; refuses gaps in naming and duplicate versions."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations share version {version}")
        found[version] = Migration(version, match.group(2), path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def applied_versions(client: Any, cluster: str | None = None) -> dict[int, str]:
    """Version -> checksum of every migration recorded in ``schema_migrations``."""
    if cluster is None:
        client.command(BOOTSTRAP)
    else:
        for statement in cluster_statements([BOOTSTRAP], cluster, _database(client)):
            client.command(statement)
        engine = client.command(
            "SELECT engine FROM system.tables "
            "WHERE database = currentDatabase() AND name = 'schema_migrations'"
        )
        if engine != "Distributed":
            raise MigrationError(
                "this database was migrated without a cluster; migrate a fresh database "
                "with --cluster instead of converting this one in place"
            )
    rows = client.query(
        "SELECT version, argMax(checksum, applied_at) FROM schema_migrations GROUP BY version"
    ).result_rows
    return {int(version): str(checksum) for version, checksum in rows}


def _database(client: Any) -> str:
    return str(client.command("SELECT currentDatabase()"))


def apply_pending(
    client: Any,
    policy: RetentionPolicy,
    migrations: list[Migration] | None = None,
    *,
    cluster: str | None = None,
    offline: bool = True,
) -> list[str]:
    """Apply every migration not yet recorded; return the names applied (empty when current).

    With ``cluster``, statements run in their ``ON CLUSTER`` form and the ledger row is written
    through the Distributed table synchronously, so it is recorded once the insert returns.
    Without ``offline`` a pending migration that moves stored rows is refused before anything
    is applied: the caller may be one of several processes writing to the store.
    """
    todo = discover() if migrations is None else migrations
    done = applied_versions(client, cluster)
    blocked = [m for m in todo if m.offline and m.version not in done]
    if blocked and not offline:
        first = blocked[0]
        raise MigrationError(
            f"migration {first.version:04d}_{first.name} moves stored rows and must run while "
            "nothing writes to the store: stop every `safetrail serve`, `project` and `up` on "
            "it, run `safetrail migrate`, then start them again"
        )
    database = _database(client) if cluster is not None else ""
    insert_settings = None if cluster is None else {"insert_distributed_sync": 1}
    applied: list[str] = []
    for migration in todo:
        recorded = done.get(migration.version)
        if recorded is not None:
            if recorded != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} was edited after it "
                    "was applied; add a new migration instead of changing an applied one"
                )
            continue
        statements = migration.statements(policy)
        if cluster is not None:
            statements = cluster_statements(statements, cluster, database)
        for statement in statements:
            client.command(statement)
        client.insert(
            "schema_migrations",
            [[migration.version, migration.name, migration.checksum, datetime.now(UTC)]],
            column_names=["version", "name", "checksum", "applied_at"],
            settings=insert_settings,
        )
        applied.append(f"{migration.version:04d}_{migration.name}")
    return applied
