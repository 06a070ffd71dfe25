"""``safetrail serve`` and ``safetrail migrate``: the embedded pipeline in one process.

chDB lets one process open a data directory, so ``serve`` runs the collector, the processing
step and the API together under a single uvicorn worker. ``migrate`` applies the schema and
checks that the TTL in force matches the configured retention, for scripts and deploys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from safetrail.gc_tuning import tune_gc
from safetrail.settings import Settings

DataDirOption = Annotated[
    Path | None,
    typer.Option(help="data directory (default: SAFETRAIL_DATA_DIR or ./.safetrail)"),
]


def load_settings(data_dir: Path | None) -> Settings:
    """Settings from the environment, with ``--data-dir`` taking precedence; exit 2 if invalid."""
    try:
        return Settings(data_dir=data_dir) if data_dir is not None else Settings()
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            typer.echo(f"configuration error: {where + ': ' if where else ''}{message}", err=True)
        raise typer.Exit(2) from None


def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to serve on")] = 8000,
    data_dir: DataDirOption = None,
) -> None:
    """Run collector, processing and the query API in one process on HOST:PORT."""
    import uvicorn  # deferred: keeps `safetrail --help` fast

    from query_api.app import create_app

    settings = load_settings(data_dir)
    mode = "embedded (chDB)" if settings.embedded else "scale-out"
    typer.echo(f"safetrail serving on http://{host}:{port} ({mode}); API docs at /docs")
    app = create_app(settings)
    tune_gc()
    uvicorn.run(app, host=host, port=port, workers=1, log_level="info")


def migrate(
    data_dir: DataDirOption = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            help="ClickHouse cluster: replicated _local tables behind Distributed tables, "
            "created ON CLUSTER (default: SAFETRAIL_CLICKHOUSE_CLUSTER)"
        ),
    ] = None,
) -> None:
    """Apply pending schema migrations and check the TTL in force against retention settings.

    Exits 1 when a table's TTL still differs from the configured retention, 2 when the
    configuration or the cluster name is unusable.
    """
    from projectors.clients import is_chdb
    from projectors.cluster import ClusterDdlError
    from projectors.retention import RetentionPolicy
    from projectors.store import Store

    settings = load_settings(data_dir)
    policy = RetentionPolicy.from_settings(settings)
    cluster = cluster or settings.clickhouse_cluster or None
    if cluster and is_chdb(settings.effective_clickhouse_url):
        typer.echo("configuration error: --cluster needs SAFETRAIL_CLICKHOUSE_URL", err=True)
        raise typer.Exit(2)
    with Store.open(settings.effective_clickhouse_url, policy) as store:
        try:
            report = store.migrate(cluster=cluster, offline=True)
        except ClusterDdlError as exc:
            typer.echo(f"configuration error: {exc}", err=True)
            raise typer.Exit(2) from None
        statuses = store.ttl_status(cluster=cluster is not None)
        typer.echo(f"storage: {store.url}" + (f" (cluster {cluster})" if cluster else ""))
    if report.applied:
        typer.echo("applied: " + ", ".join(report.applied))
    else:
        typer.echo("schema is up to date")
    if report.ttl_changed:
        typer.echo("TTL updated to match retention: " + ", ".join(report.ttl_changed))
    for status in statuses:
        expected = "none" if status.expected_days is None else f"{status.expected_days} days"
        actual = "none" if status.actual_days is None else f"{status.actual_days} days"
        mark = "ok" if status.ok else "MISMATCH"
        typer.echo(f"  {status.table:<16} TTL {actual:<9} (configured {expected}) {mark}")
    if not all(s.ok for s in statuses):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``serve`` and ``migrate`` commands."""
    app.command()(serve)
    app.command()(migrate)
