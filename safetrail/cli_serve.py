"""``safetrail serve`` and ``safetrail migrate``: the embedded pipeline in one process.

chDB lets one process open a data directory, so ``serve`` runs the collector, the processing
step and the API together under a single uvicorn worker. ``migrate`` applies the schema and
checks that the TTL in force matches the configured retention, for scripts and deploys.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import signal
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from safetrail.gc_tuning import tune_gc
from safetrail.settings import Settings

DataDirOption = Annotated[
    Path | None,
    typer.Option(help="data directory (default: SAFETRAIL_DATA_DIR or ./.safetrail)"),
]


def _variable(loc: tuple[int | str, ...]) -> str:
    """Where a settings error is, as the operator wrote it: ``SAFETRAIL_RETENTION_DAYS``.

    Keys of ``SAFETRAIL_API_TOKENS`` are the tokens themselves, so they are never shown.
    """
    if not loc:
        return ""
    name, *rest = (str(part) for part in loc)
    if name == "api_tokens" and rest:
        rest[0] = "<token>"
    return ".".join([f"SAFETRAIL_{name.upper()}", *rest])


def _refuse(message: str, kind: str = "configuration error") -> typer.Exit:
    typer.echo(f"{kind}: {message}", err=True)
    return typer.Exit(2)


def load_settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, with ``--data-dir`` (and ``overrides``) taking
    precedence; exit 2 if invalid, naming the variable and never echoing its value."""
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_input=False, include_context=False):
            where = _variable(err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            typer.echo(f"configuration error: {where + ': ' if where else ''}{message}", err=True)
        raise typer.Exit(2) from None
    except SettingsError as exc:  # a JSON-valued variable (tokens, previous keys) is not JSON
        field = re.search(r'field "(\w+)"', str(exc))
        where = _variable((field[1],)) if field else "a SAFETRAIL_* variable"
        cause = exc.__cause__
        detail = f" ({cause.msg})" if isinstance(cause, json.JSONDecodeError) else ""
        raise _refuse(f"{where}: not valid JSON{detail}") from None
    url = settings.clickhouse_url
    if url and not url.startswith("chdb:"):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _refuse(
                "SAFETRAIL_CLICKHOUSE_URL: expected http(s)://[user:password@]host[:port]/database "
                "or chdb:///path"
            )
    return settings


def refuse_busy_data_dir(settings: Settings) -> None:
    """Exit 2 when another process has the embedded engine's data directory open.

    chDB lets one process open a directory and holds an ``flock`` on its ``status`` file
    (which names its PID); without this check a second process fails deep inside the engine
    with "Error initializing EmbeddedServer".
    """
    url = settings.effective_clickhouse_url
    if not url.startswith("chdb:"):
        return
    status = Path(urlsplit(url).path) / "status"
    try:
        fd = os.open(status, os.O_RDONLY)
    except OSError:
        return  # never opened yet; any other problem is reported by the open that follows
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        owner = re.search(rb"PID: (\d+)", os.pread(fd, 256, 0))
        if owner is not None and int(owner[1]) == os.getpid():
            return  # this process has it open (tests, the demo): chDB shares it in-process
        by = f" (process {int(owner[1])})" if owner else ""
        raise _refuse(
            f"the data directory {settings.data_dir} is in use by another safetrail process"
            f"{by}; stop it first, or use the API of the running `safetrail serve`",
            kind="error",
        ) from None
    finally:
        os.close(fd)  # also drops the probe's lock, if it got one


class JsonLogFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and the fields passed as
    ``extra`` (the access log's route template, method, status and duration)."""

    FIELDS = ("route", "method", "status", "duration_ms")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: getattr(record, k) for k in self.FIELDS if hasattr(record, k)})
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(entry, default=str)


# uvicorn's own access log writes the raw path and query string (IDs typed into a URL, an
# email, a token someone put in ``?token=``): it is off, and the app logs each request by its
# route template instead (``query_api.metrics``, logger ``safetrail.access``).
LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": JsonLogFormatter}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "": {"handlers": ["stderr"], "level": "INFO"},
        "uvicorn": {"handlers": [], "level": "INFO", "propagate": True},
        "uvicorn.error": {"handlers": [], "level": "INFO", "propagate": True},
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}


def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to serve on", min=1, max=65535)] = 8000,
    data_dir: DataDirOption = None,
) -> None:
    """Run collector, processing and the query API in one process on HOST:PORT."""
    import uvicorn  # deferred: keeps `safetrail --help` fast

    from query_api.app import create_app
    from redaction_rules.escalation import EscalationRuleError
    from redaction_rules.models import RuleError

    settings = load_settings(data_dir)
    refuse_busy_data_dir(settings)
    try:
        app = create_app(settings)
    except (RuleError, EscalationRuleError) as exc:
        raise _refuse(f"SAFETRAIL_RULES_PATH: {exc}") from None
    mode = "embedded (chDB)" if settings.embedded else "scale-out"
    typer.echo(f"safetrail serving on http://{host}:{port} ({mode}); API docs at /docs")
    tune_gc()
    config = uvicorn.Config(
        app, host=host, port=port, workers=1, log_config=LOG_CONFIG, access_log=False
    )
    server = uvicorn.Server(config)
    # While it runs, uvicorn turns SIGTERM/SIGINT into a graceful shutdown (requests finish,
    # the collector stores its journal, the store closes), then raises the signal again for the
    # handler in place before it: this one, so a graceful stop exits 0, not 143. A signal that
    # comes before uvicorn listens makes it start and stop at once, just as gracefully.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda _sig, _frame: setattr(server, "should_exit", True))
    server.run()
    if not server.started:
        raise typer.Exit(3)  # uvicorn's code for a failed start-up; it logged why


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
    refuse_busy_data_dir(settings)
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
