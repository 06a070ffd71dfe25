"""The ClickHouse cluster form of the single-node migrations, and the TTL check that goes with it.

Migration files are written for one node. On a cluster each table ``t`` becomes two:

* ``t_local``, created ``ON CLUSTER`` with the ``Replicated*`` variant of its engine, holding
  each shard's rows (replicated between the replicas of that shard), and
* ``t``, a ``Distributed`` table over ``t_local`` on every shard, which every read and insert
  keeps using by its plain name.

The sharding key keeps one trace on one shard (``cityHash64(trace_id)``), so a trace chain is
answered by one shard and re-sent events meet their earlier copy there, where
``ReplacingMergeTree`` can fold them. Tables without ``trace_id`` shard by their sorting key
when their engine deduplicates by it, else at random. Materialized views are created ``ON
CLUSTER``, read the ``_local`` table (they fire on the shard an insert lands on) and write to the
``_local`` target. ``ALTER``s apply to ``t_local``; column changes also to ``t``, whose columns
were copied from ``t_local`` when it was created. A table moved to a new layout (copy, then
``EXCHANGE TABLES``) is copied once through the Distributed tables and its ``_local`` tables
are exchanged on every node.

The transformation is a pure function of the statement text, so every migration file, present
or future, gets its cluster form without a second copy of the schema.
"""

from __future__ import annotations

import re
from typing import Any

from projectors.retention import TTL_TABLES, RetentionPolicy, TtlStatus, parse_ttl_days

LOCAL_SUFFIX = "_local"

_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ON_CLUSTER = re.compile(r"\bON\s+CLUSTER\b", re.I)
_CREATE_TABLE = re.compile(r"^CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s*\(", re.I)
_CREATE_MV = re.compile(
    r"^CREATE\s+MATERIALIZED\s+VIEW\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s+TO\s+(\w+)\s+AS\s+(.*)$",
    re.I | re.S,
)
_CREATE_VIEW = re.compile(
    r"^CREATE\s+(OR\s+REPLACE\s+)?VIEW\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s", re.I
)
_ALTER = re.compile(r"^ALTER\s+TABLE\s+(\w+)\s+(.*)$", re.I | re.S)
_DROP = re.compile(r"^DROP\s+TABLE\s+(IF\s+EXISTS\s+)?(\w+)$", re.I)
_EXCHANGE = re.compile(r"^EXCHANGE\s+TABLES\s+(\w+)\s+AND\s+(\w+)$", re.I)
_COPY = re.compile(r"^INSERT\s+INTO\s+(\w+)\s+SELECT\s+.+?\s+FROM\s+(\w+)\b", re.I | re.S)
_ENGINE = re.compile(r"\bENGINE\s*=\s*(\w+)", re.I)
_ORDER_BY = re.compile(r"\bORDER\s+BY\s+", re.I)
_COLUMN_COMMAND = re.compile(r"^(ADD|DROP|MODIFY|RENAME|COMMENT)\s+COLUMN\b", re.I)
# A table read by a view: FROM/JOIN followed by a bare name (not db.table, not a table function).
_SOURCE = re.compile(r"\b(FROM|JOIN)(\s+)(\w+)\b(?!\s*[.(])", re.I)
_NOT_COLUMNS = frozenset({"INDEX", "PROJECTION", "CONSTRAINT"})


class ClusterDdlError(ValueError):
    """A statement has no automatic cluster form; it needs to be written by hand."""


def cluster_ddl(sql: str, cluster: str, database: str) -> list[str]:
    """The ``ON CLUSTER`` statements that replace one single-node migration statement."""
    on = on_cluster(cluster)
    if not _IDENTIFIER.match(database):
        raise ClusterDdlError(f"database name {database!r} is not a plain identifier")
    statement = sql.strip().rstrip(";").strip()
    if _ON_CLUSTER.search(statement):
        raise ClusterDdlError("migration statements are single-node; remove ON CLUSTER")
    if match := _CREATE_TABLE.match(statement):
        return _create_table(statement, match, cluster, database)
    if match := _CREATE_MV.match(statement):
        exists, name, target, select = match.groups()
        local_select = _SOURCE.sub(lambda m: f"{m[1]}{m[2]}{m[3]}{LOCAL_SUFFIX}", select)
        return [
            f"CREATE MATERIALIZED VIEW {exists or ''}{name} {on} "
            f"TO {target}{LOCAL_SUFFIX} AS {local_select}"
        ]
    if match := _CREATE_VIEW.match(statement):
        return [f"{statement[: match.end(3)]} {on}{statement[match.end(3) :]}"]
    if match := _ALTER.match(statement):
        return _alter(match[1], match[2], on)
    if match := _EXCHANGE.match(statement):
        # The Distributed tables keep naming their ``_local`` tables, which change places.
        return [f"EXCHANGE TABLES {match[1]}{LOCAL_SUFFIX} AND {match[2]}{LOCAL_SUFFIX} {on}"]
    if _COPY.match(statement):
        # A copy (or backfill) between two tables runs once, through their Distributed tables:
        # every shard is read and each row goes to the shard its sharding key names, as any
        # insert does.
        return [statement]
    if match := _DROP.match(statement):
        exists, name = match[1] or "", match[2]
        return [
            f"DROP TABLE {exists}{name} {on} SYNC",
            f"DROP TABLE {exists}{name}{LOCAL_SUFFIX} {on} SYNC",
        ]
    first_line = statement.splitlines()[0] if statement else ""
    raise ClusterDdlError(f"no cluster form for statement: {first_line[:80]}")


def on_cluster(cluster: str) -> str:
    """The ``ON CLUSTER`` clause for ``cluster``; refuses names that would need quoting."""
    if not _CLUSTER_NAME.match(cluster):
        raise ClusterDdlError(f"cluster name {cluster!r} is not a plain ClickHouse name")
    return f"ON CLUSTER '{cluster}'"


def cluster_statements(statements: list[str], cluster: str, database: str) -> list[str]:
    """``cluster_ddl`` over a migration's statements, in order."""
    return [out for statement in statements for out in cluster_ddl(statement, cluster, database)]


def sharding_key(columns: list[str], engine: str, order_by: str | None) -> str:
    """Keep a trace on one shard; else colocate a deduplication key; else spread at random."""
    if "trace_id" in columns:
        return "cityHash64(trace_id)"
    if engine.removeprefix("Replicated") != "MergeTree" and order_by and order_by != "tuple()":
        return f"cityHash64({order_by})"
    return "rand()"


def _create_table(statement: str, match: re.Match[str], cluster: str, database: str) -> list[str]:
    exists, name = match[1] or "", match[2]
    local = f"{name}{LOCAL_SUFFIX}"
    close = _matching(statement, match.end() - 1)
    body, tail = statement[match.end() : close], statement[close + 1 :]
    engine = _ENGINE.search(tail)
    if engine is None or not engine[1].endswith("MergeTree"):
        raise ClusterDdlError(f"{name}: only *MergeTree tables have a replicated form")
    args_end = engine.end()
    args = ""
    rest = tail[args_end:]
    if rest.lstrip().startswith("("):
        open_at = args_end + len(rest) - len(rest.lstrip())
        args_end = _matching(tail, open_at) + 1
        args = tail[open_at + 1 : args_end - 1].strip()
    replicated = engine[1] if engine[1].startswith("Replicated") else f"Replicated{engine[1]}"
    if replicated == engine[1]:
        new_engine = f"ENGINE = {replicated}({args})" if args else f"ENGINE = {replicated}"
    else:
        path = f"'/clickhouse/tables/{{shard}}/{database}/{local}', '{{replica}}'"
        new_engine = f"ENGINE = {replicated}({path}{', ' + args if args else ''})"
    new_tail = tail[: engine.start()] + new_engine + tail[args_end:]
    columns = [part.split()[0].strip("`") for part in _split_top_level(body) if part.split()]
    key = sharding_key(
        [c for c in columns if c.upper() not in _NOT_COLUMNS], engine[1], _order_by(new_tail)
    )
    on = on_cluster(cluster)
    return [
        f"CREATE TABLE {exists}{local} {on}\n({body}){new_tail}",
        f"CREATE TABLE {exists}{name} {on} AS {local}\n"
        f"ENGINE = Distributed('{cluster}', {database}, {local}, {key})",
    ]


def _alter(name: str, commands: str, on: str) -> list[str]:
    out = [f"ALTER TABLE {name}{LOCAL_SUFFIX} {on} {commands}"]
    column_commands = [c for c in _split_top_level(commands) if _COLUMN_COMMAND.match(c)]
    if column_commands:
        out.append(f"ALTER TABLE {name} {on} " + ", ".join(column_commands))
    return out


def _order_by(tail: str) -> str | None:
    """The sorting key of a table's tail clauses, without its outer parentheses."""
    match = _ORDER_BY.search(tail)
    if match is None:
        return None
    if tail[match.end() :].startswith("("):
        return tail[match.end() + 1 : _matching(tail, match.end())].strip()
    word = re.match(r"\w+(\(\))?", tail[match.end() :])
    return word[0] if word else None


def _scan(text: str) -> list[tuple[int, str, int]]:
    """(index, char, depth) of every character outside quotes; depth counts parentheses."""
    out: list[tuple[int, str, int]] = []
    depth, quote, i = 0, "", 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'`\"":
            quote = char
        else:
            depth -= char == ")"
            out.append((i, char, depth))
            depth += char == "("
        i += 1
    return out


def _matching(text: str, open_at: int) -> int:
    """Index of the parenthesis closing the one at ``open_at``."""
    for index, char, depth in _scan(text[open_at:]):
        if char == ")" and depth == 0:
            return open_at + index
    raise ClusterDdlError("unbalanced parentheses")


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses and quotes; parts stripped, empty parts dropped."""
    cuts = [i for i, char, depth in _scan(text) if char == "," and depth == 0]
    bounds = zip([-1, *cuts], [*cuts, len(text)], strict=True)
    return [part for a, b in bounds if (part := text[a + 1 : b].strip())]


# --- retention on a cluster: the TTL lives on the _local tables ---------------------------


def ttl_status(client: Any, policy: RetentionPolicy) -> list[TtlStatus]:
    """``retention.ttl_status`` for a cluster: reads the TTL of each ``_local`` table."""
    rows = client.query(
        "SELECT name, engine_full FROM system.tables "
        "WHERE database = currentDatabase() AND name IN {names:Array(String)}",
        parameters={"names": [f"{t}{LOCAL_SUFFIX}" for t in TTL_TABLES]},
    ).result_rows
    engines = {str(name).removesuffix(LOCAL_SUFFIX): str(engine) for name, engine in rows}
    return [
        TtlStatus(table, policy.days_for(kind), parse_ttl_days(engines[table]))
        if table in engines
        else TtlStatus(table, policy.days_for(kind), None, exists=False)
        for table, (_, kind) in TTL_TABLES.items()
    ]


def enforce(client: Any, policy: RetentionPolicy, cluster: str) -> list[str]:
    """``retention.enforce`` for a cluster: ``MODIFY TTL`` on each ``_local`` table, ON CLUSTER."""
    changed = []
    for status in ttl_status(client, policy):
        if status.ok or not status.exists or status.expected_days is None:
            continue
        column = TTL_TABLES[status.table][0]
        ttl = f"MODIFY TTL toDateTime({column}) + INTERVAL {int(status.expected_days)} DAY"
        for statement in _alter(status.table, ttl, on_cluster(cluster)):
            client.command(statement)
        changed.append(status.table)
    return changed
