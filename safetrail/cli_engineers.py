"""The engineers' commands: ``replay``, ``audit verify``, ``dead-letters list|redrive``.

They open the store named by the settings (``SAFETRAIL_CLICKHOUSE_URL`` or chDB under
``SAFETRAIL_DATA_DIR``). The embedded engine allows one process per data directory, so while
``safetrail serve`` runs on it, use ``POST /v1/replays`` and ``/v1/dead-letters`` instead.
Every replay and re-drive is written to the access log as the user running the command
(``--actor``, by default the login name) with the stated ``--reason``.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from projectors.replay import (
    ReplayReport,
    ReplayRequest,
    ReplaySource,
    TimelineSink,
    reason_problem,
    run_replay,
)
from projectors.replay_sources import DeadLetterSource, redrive_sink, replay_endpoints
from projectors.retention import RetentionPolicy
from projectors.store import Store
from redaction_rules.engine import Redactor, id_problem
from redaction_rules.scanners import scan_text
from safetrail.cli_serve import load_settings
from safetrail.redactor import build_redactor
from safetrail.settings import Settings

_RELATIVE = re.compile(r"^-(\d+)([smhd])$")
_TRACE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_GLOB = re.compile(r"^[A-Za-z0-9_.*?\-]{1,128}$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
ReasonOpt = Annotated[str, typer.Option("--reason", help="ticket or incident ID (required)")]
ActorOpt = Annotated[
    str | None, typer.Option("--actor", help="name recorded in the audit log (default: login)")
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="show what would change; write nothing")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the report as JSON")]


def parse_time(value: str) -> datetime:
    """ISO 8601 (no zone = UTC), ``now``, or relative to now: ``-90m``, ``-2h``, ``-3d``."""
    now = datetime.now(UTC)
    if value == "now":
        return now
    match = _RELATIVE.match(value)
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not ISO 8601, 'now' or like -2h") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _check_reason(reason: str) -> None:
    """The same rule for ``--reason`` as on the API: a ticket or incident ID on one line."""
    problem = reason_problem(reason.strip())
    if problem is not None:
        raise typer.BadParameter(f"--reason: {problem}")


@contextmanager
def _open_store(settings: Settings) -> Iterator[Store]:
    store = Store.open(settings.effective_clickhouse_url, RetentionPolicy.from_settings(settings))
    try:
        store.migrate(cluster=settings.store_cluster)
        yield store
    finally:
        store.close()


class RateColumn(ProgressColumn):
    """Events per second."""

    def render(self, task: Task) -> Text:
        """The current rate, or a dash before there is one."""
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} ev/s" if speed else "- ev/s", style="progress.data.speed")


def _run(
    store: Store,
    redactor: Redactor,
    request: ReplayRequest,
    source: ReplaySource,
    sink: TimelineSink,
    kind: str,
) -> ReplayReport:
    columns = (BarColumn(), MofNCompleteColumn(), RateColumn(), TimeElapsedColumn())
    with Progress(
        "[progress.description]{task.description}",
        *columns,
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task(kind, total=source.total())
        return run_replay(
            store,
            redactor,
            request,
            source,
            sink,
            kind=kind,
            progress=lambda n: bar.advance(task, n),
        )


def _show(report: ReplayReport, as_json: bool) -> None:
    if as_json:
        typer.echo(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(
        title=f"{report.kind} {report.replay_id}" + (" (dry run)" if report.dry_run else "")
    )
    for name in (
        "type",
        "events",
        "would change" if report.dry_run else "changed",
        "new",
        "rejected",
    ):
        table.add_column(name, justify="left" if name == "type" else "right")
    for kind, c in sorted(report.per_type.items()):
        table.add_row(kind, str(c.events), str(c.changed), str(c.new), str(c.rejected))
    Console().print(table)
    before = ", ".join(f"{v} ×{n}" for v, n in sorted(report.rules_before.items())) or "none"
    typer.echo(f"rules version before: {before}")
    typer.echo(f"rules version after:  {report.rules_after}")
    verb = "would write" if report.dry_run else "wrote"
    typer.echo(
        f"read {report.read}, {verb} {report.changed if report.dry_run else report.written}, "
        f"rejected {report.rejected}; status {report.status}"
    )


def replay_cmd(
    start: Annotated[str, typer.Option("--from", help="start, inclusive (ISO 8601, now, -2h)")],
    end: Annotated[str, typer.Option("--to", help="end, exclusive (ISO 8601, now, -2h)")],
    reason: ReasonOpt,
    trace: Annotated[str | None, typer.Option("--trace", help="only this trace ID")] = None,
    type_glob: Annotated[str | None, typer.Option("--type", help="event type glob")] = None,
    dry_run: DryRunOpt = False,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-run the current rules over raw events received between --from and --to."""
    settings = load_settings()
    request = ReplayRequest(
        start=parse_time(start),
        end=parse_time(end),
        reason=reason,
        actor=actor or getpass.getuser(),
        trace_id=trace,
        type_glob=type_glob,
        dry_run=dry_run,
    )
    _check_reason(reason)
    if trace is not None and (not _TRACE.match(trace) or id_problem(trace) is not None):
        # Not echoed, nor kept in the audit entry: it may be a secret pasted by mistake.
        raise typer.BadParameter("--trace is not a valid trace ID")
    if type_glob is not None and not _GLOB.match(type_glob):
        raise typer.BadParameter("--type takes letters, digits, . _ - and the wildcards * ?")
    if request.end <= request.start:
        raise typer.BadParameter("--to must be later than --from")
    with _open_store(settings) as store:
        source, sink = replay_endpoints(settings, store, request.selection())
        report = _run(store, build_redactor(settings), request, source, sink, "replay")
    _show(report, as_json)


def verify_cmd() -> None:
    """Check the access log's hash chain; exit 1 naming the first broken entry."""
    with _open_store(load_settings()) as store:
        report = store.verify_access_chain()
    if report.unchained:
        typer.echo(f"{report.unchained} entries predate the chain and are not covered")
    if report.broken is not None:
        typer.echo(f"BROKEN after {report.checked} intact entries: {report.broken.describe()}")
        raise typer.Exit(1)
    chains = len(report.heads)
    typer.echo(f"OK: {report.checked} entries in {chains} chain{'' if chains == 1 else 's'}")
    for chain, (seq, head) in sorted(report.heads.items()):
        typer.echo(f"  chain {chain or '(embedded)'}: head seq={seq} hash={head}")


def dead_letters_list_cmd(
    show_all: Annotated[bool, typer.Option("--all", help="include re-driven ones")] = False,
    limit: Annotated[int, typer.Option(min=1, help="most recent N")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Dead letters, newest first, with their reasons (pending ones unless --all).

    Unaudited (no reason asked), so it shows no payload and masks what it prints: a rejected
    event's IDs and reason come from bad input and may hold an email or a card number
    (``GET /v1/dead-letters``, with a reason and an access-log entry, shows everything).
    """
    with _open_store(load_settings()) as store:
        rows = store.dead_letter_status(limit=limit, pending_only=not show_all)

    def shown(text: str | None) -> str | None:
        return None if text is None else scan_text(text)

    if as_json:
        data = [
            {
                "dead_letter_id": r.letter.dead_letter_id,
                "received_at": r.letter.received_at.isoformat(),
                "reason": shown(r.letter.reason),
                "origin": r.letter.origin,
                "event_id": shown(r.letter.event_id),
                "trace_id": shown(r.letter.trace_id),
                "redriven_at": r.redriven_at.isoformat() if r.redriven_at else None,
            }
            for r in rows
        ]
        typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    for r in rows:
        done = f" (re-driven {r.redriven_at:%Y-%m-%d %H:%M}Z)" if r.redriven_at else ""
        when = f"{r.letter.received_at:%Y-%m-%d %H:%M:%S}Z"
        typer.echo(f"{r.letter.dead_letter_id}  {when}  {shown(r.letter.reason)}{done}")
    typer.echo(f"{len(rows)} dead letter(s)")


def dead_letters_redrive_cmd(
    reason: ReasonOpt,
    ids: Annotated[
        list[str] | None, typer.Argument(help="dead letter IDs (default: all pending)")
    ] = None,
    dry_run: DryRunOpt = False,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run dead letters through the current rules again (after a fix), via the replay path."""
    _check_reason(reason)
    settings = load_settings()
    now = datetime.now(UTC)
    request = ReplayRequest(
        start=datetime(1970, 1, 1, tzinfo=UTC),
        end=now,
        reason=reason,
        actor=actor or getpass.getuser(),
        route="cli:dead-letters redrive",
        dry_run=dry_run,
    )
    with _open_store(settings) as store:
        source = DeadLetterSource(store, ids or None)
        sink = redrive_sink(settings, store)
        report = _run(store, build_redactor(settings), request, source, sink, "redrive")
    _show(report, as_json)


def register(app: typer.Typer) -> None:
    """Add ``replay``, ``audit verify`` and ``dead-letters list|redrive``."""
    app.command("replay")(replay_cmd)
    audit = typer.Typer(help="The tamper-evident access log.", no_args_is_help=True)
    audit.command("verify")(verify_cmd)
    app.add_typer(audit, name="audit")
    letters = typer.Typer(help="Input that could not become timeline events.", no_args_is_help=True)
    letters.command("list")(dead_letters_list_cmd)
    letters.command("redrive")(dead_letters_redrive_cmd)
    app.add_typer(letters, name="dead-letters")
