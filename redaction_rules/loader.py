"""Reading rule files: YAML (duplicate keys refused) -> validated models -> ``RuleSet``.

All problems in all files are collected and raised together as one ``RuleError`` so
``safetrail rules check`` can show everything that needs fixing in one go.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from redaction_rules.models import RuleError, RuleFileSpec
from redaction_rules.ruleset import RuleSet, compile_rules

DEFAULT_RULES_DIR = Path(__file__).parent / "rules"
_SECTIONS = frozenset({"types", "errors", "defaults"})


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _describe(name: str, exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [str(p) for p in err["loc"]]
        where = "file"
        if loc[:1] == ["types"] and len(loc) >= 2:
            where, loc = f"rule {loc[1]!r}", loc[2:]
            if loc[:1] == ["fields"] and len(loc) >= 2:
                where, loc = f"{where}, field {loc[1]!r}", loc[2:]
        elif loc[:1] == ["errors"] and len(loc) >= 2:
            where, loc = f"error code {loc[1]!r}", loc[2:]
        loc = ["(name)" if p == "[key]" else p for p in loc]
        message = err["msg"].removeprefix("Value error, ")
        detail = f"{'.'.join(loc)}: " if loc else ""
        problems.append(f"{name}: {where}: {detail}{message}")
    return problems


def _read(path: Path, explicit: bool) -> tuple[RuleFileSpec | None, list[str], bool]:
    """Parse one file: (spec, problems, skipped)."""
    name = path.name if not explicit else str(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return None, [f"{name}: file: cannot read: {exc}".replace("\n", " ")], False
    if not isinstance(data, dict):
        return None, [f"{name}: file: expected a mapping at the top level"], False
    if data.get("kind") != "redaction" and not explicit and not (_SECTIONS & set(data)):
        # Another kind of rule file living in the same directory (e.g. escalation.yaml).
        return None, [], True
    try:
        return RuleFileSpec.model_validate(data), [], False
    except ValidationError as exc:
        return None, _describe(name, exc), False


def _conflicts(files: list[tuple[str, RuleFileSpec]]) -> list[str]:
    problems = []
    owners: dict[tuple[str, str], str] = {}
    defaults_in: list[str] = []
    for name, spec in files:
        keys = [("rule", p) for p in spec.types] + [("error code", c) for c in spec.errors]
        for kind, key in keys:
            if (kind, key) in owners:
                problems.append(f"{name}: {kind} {key!r}: already defined in {owners[kind, key]}")
            owners.setdefault((kind, key), name)
        if spec.defaults is not None:
            defaults_in.append(name)
    if len(defaults_in) > 1:
        problems.append(f"{defaults_in[1]}: file: defaults already defined in {defaults_in[0]}")
    return problems


def load_rules(path: Path | None = None) -> RuleSet:
    """Load and validate rule files: ``None`` = the packaged defaults, else a file or directory.

    In a directory every ``*.yaml``/``*.yml`` is read; files that are clearly another kind of
    rule file (no ``kind: redaction`` and none of the redaction sections) are skipped and
    listed in ``RuleSet.skipped``. Raises ``RuleError`` listing every problem found.
    """
    root = DEFAULT_RULES_DIR if path is None else path
    if root.is_dir():
        paths = sorted([*root.glob("*.yaml"), *root.glob("*.yml")])
        explicit = False
    elif root.is_file():
        paths, explicit = [root], True
    else:
        raise RuleError([f"{root}: file: no such file or directory"])
    files: list[tuple[str, RuleFileSpec]] = []
    problems: list[str] = []
    skipped: list[str] = []
    for file in paths:
        spec, errors, was_skipped = _read(file, explicit)
        problems.extend(errors)
        if was_skipped:
            skipped.append(file.name)
        elif spec is not None:
            files.append((file.name, spec))
    if not files and not problems:
        problems.append(f"{root}: file: no redaction rule files found")
    problems.extend(_conflicts(files))
    if problems:
        raise RuleError(problems)
    return compile_rules(files, skipped)
