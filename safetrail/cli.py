"""The ``safetrail`` command. Each area registers its verbs from its own small module."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="safetrail",
    help="Customer-safe debug timelines: ingest, redact, store and serve support views.",
    no_args_is_help=True,
    add_completion=False,
)

# Each module exposes ``register(app: typer.Typer) -> None``.
_COMMAND_MODULES: tuple[str, ...] = (
    "safetrail.cli_demo",
    "safetrail.cli_serve",
    "safetrail.cli_kafka",
    "safetrail.cli_rules",
    "safetrail.cli_engineers",
)

for _name in _COMMAND_MODULES:
    importlib.import_module(_name).register(app)


if __name__ == "__main__":  # pragma: no cover
    app()
