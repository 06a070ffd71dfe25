"""``safetrail rules``: check rule files, see what support would see, find what is dropped."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from ingest.process import Rejected, process
from ingest.schema import RawEvent, describe_validation_error
from redaction_rules.engine import Redactor, RuleError, load_rules
from safetrail.cli_serve import load_settings
from safetrail.settings import DEMO_HMAC_KEY, Settings

rules_app = typer.Typer(
    name="rules",
    help="Check redaction rule files and try them on events.",
    no_args_is_help=True,
    add_completion=False,
)

RulesOption = Annotated[
    Path | None,
    typer.Option(
        "--rules",
        help="Rule file or directory (default: SAFETRAIL_RULES_PATH, else the packaged rules).",
    ),
]
EventsArgument = Annotated[
    Path,
    typer.Argument(help="Raw events, one JSON object per line.", exists=True, dir_okay=False),
]


def register(app: typer.Typer) -> None:
    """Add the ``rules`` command group to the main ``safetrail`` app."""
    app.add_typer(rules_app, name="rules")


def _fail(problems: list[str]) -> typer.Exit:
    for problem in problems:
        typer.echo(problem, err=True)
    return typer.Exit(code=1)


def _redactor(rules_path: Path | None) -> Redactor:
    """Rules and HMAC key as the pipeline would use them, with a demo-key fallback."""
    try:
        settings = Settings()
        key = settings.effective_hmac_key
    except ValidationError:
        # Only the key may be missing here (any other bad variable stops the command, named):
        # a developer trying rules locally need not configure a production secret; say so,
        # because hmac/lookup tokens then differ from the deployment's.
        settings = load_settings(demo=True)
        typer.echo(
            "note: SAFETRAIL_HMAC_KEY not set (or a placeholder), using the demo key", err=True
        )
        key = DEMO_HMAC_KEY.encode()
    try:
        return Redactor(load_rules(rules_path or settings.rules_path), key)
    except RuleError as exc:
        raise _fail(exc.problems) from None


def _lines(path: Path) -> list[tuple[int, bytes]]:
    with path.open("rb") as handle:
        return [(n, line) for n, line in enumerate(handle, 1) if line.strip()]


@rules_app.command("check")
def check(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="Rule file or directory (default: SAFETRAIL_RULES_PATH, else the packaged rules)."
        ),
    ] = None,
) -> None:
    """Validate rule files; print every problem and exit 1 if there is any.

    Without PATH it checks the rules every other command would load, so a team's own rules
    (``SAFETRAIL_RULES_PATH``) are what "ok" speaks of.
    """
    if path is None:
        path = load_settings(demo=True).rules_path
    try:
        rules = load_rules(path)
    except RuleError as exc:
        raise _fail(exc.problems) from None
    typer.echo(
        f"ok: {len(rules.type_patterns)} event types, "
        f"{len(rules.errors) + len(rules.error_globs)} error codes, "
        f"version {rules.version} ({', '.join(rules.sources)})"
    )
    for name in rules.skipped:
        typer.echo(f"skipped {name}: not a redaction rule file (no `kind: redaction`)")


@rules_app.command("test")
def test(events: EventsArgument, rules: RulesOption = None) -> None:
    """Print the redacted timeline event for each raw event, one JSON object per line.

    Invalid lines are reported on stderr with the reason, and the exit code is 1.
    """
    redactor = _redactor(rules)
    invalid = 0
    for number, line in _lines(events):
        routed = process(line, redactor)
        if isinstance(routed, Rejected):
            invalid += 1
            typer.echo(f"line {number}: {routed.reason}", err=True)
            continue
        typer.echo(orjson.dumps(routed.timeline.model_dump(mode="json")).decode())
    if invalid:
        raise typer.Exit(code=1)


@rules_app.command("coverage")
def coverage(events: EventsArgument, rules: RulesOption = None) -> None:
    """List the data paths seen that no rule keeps, with counts.

    Shows a team what it is dropping. Invalid lines are reported on stderr (exit code 1).
    """
    redactor = _redactor(rules)
    dropped: Counter[tuple[str, str, str]] = Counter()
    seen = invalid = 0
    for number, line in _lines(events):
        try:
            raw = RawEvent.model_validate(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            invalid += 1
            typer.echo(f"line {number}: not valid JSON: {exc}", err=True)
            continue
        except ValidationError as exc:
            invalid += 1
            typer.echo(f"line {number}: {describe_validation_error(exc)}", err=True)
            continue
        seen += 1
        for path, why in redactor.dropped_paths(raw):
            dropped[raw.type, path, why] += 1
    table = Table(title=f"Data paths no rule keeps ({seen} events, rules {redactor.version})")
    table.add_column("event type")
    table.add_column("path")
    table.add_column("count", justify="right")
    table.add_column("why")
    for (event_type, path, why), count in sorted(dropped.items(), key=lambda i: (-i[1], i[0])):
        table.add_row(event_type, path, str(count), why)
    Console(width=140).print(table)
    if invalid:
        raise typer.Exit(code=1)
