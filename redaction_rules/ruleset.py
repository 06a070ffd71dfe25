"""The compiled rule set: type rules with their path tries, the error catalog, the defaults.

Compiled once at load so per-event work is dictionary lookups: the type is resolved through
a small cache, kept paths through a trie whose keys are lower-cased.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import orjson

from ingest.schema import Lane
from redaction_rules.models import DefaultsSpec, RuleFileSpec, TypeRuleSpec, parse_path
from redaction_rules.operators import Operator, build_operator

# Bump when masks or scanning change what the same rules produce, so the version moves too.
ENGINE_REVISION = 1


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One kept path: its id (``type pattern:path``) and its operator.

    ``constant`` and ``output`` copy the operator's ``constant``/``constant_output`` (``secret``,
    ``drop``) so the walk reads them from the rule it already holds.
    """

    rule_id: str
    operator: Operator[Any]
    constant: bool = field(init=False, default=False)
    output: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "constant", self.operator.constant)
        object.__setattr__(self, "output", self.operator.constant_output)


@dataclass(slots=True)
class PathNode:
    """A trie node: exact children (lower-cased keys), ``*`` child, ``[*]`` child, and the
    rule for a value that stops here."""

    children: dict[str, PathNode] = field(default_factory=dict)
    any_key: PathNode | None = None
    items: PathNode | None = None
    rule: FieldRule | None = None

    def child(self, segment: str) -> PathNode:
        """Get or create the node for one path segment."""
        if segment == "*":
            self.any_key = self.any_key or PathNode()
            return self.any_key
        if segment == "[*]":
            self.items = self.items or PathNode()
            return self.items
        return self.children.setdefault(segment.lower(), PathNode())

    @property
    def has_keys(self) -> bool:
        """Whether an object at this node has any kept keys."""
        return bool(self.children) or self.any_key is not None


@dataclass(frozen=True, slots=True)
class TypeRule:
    """The compiled rule for the event types one pattern matches."""

    pattern: str
    label: str
    lane: Lane
    labels: Mapping[str, str]
    retry_labels: Mapping[str, str]
    root: PathNode

    def label_for(self, event_type: str, attempt: int | None) -> str:
        """Plain label by the type's last segment; ``retry_labels`` win from attempt 2."""
        suffix = event_type[event_type.rfind(".") + 1 :]
        if attempt is not None and attempt >= 2 and suffix in self.retry_labels:
            return self.retry_labels[suffix]
        return self.labels.get(suffix, self.label)


# Operators built so far in one compile, by name and validated params.
_Operators = dict[tuple[str, bytes], Operator[Any]]


def _operator(name: str, params: Mapping[str, Any], built: _Operators) -> Operator[Any]:
    """One operator per distinct name and params: operators are pure, so rules that spell the
    same one (``mask_email`` on ``signup.email`` and ``login.*.email``) can share it, and
    with it the redactor's cached results for a customer's values that recur across them."""
    operator = build_operator(name, params)
    key = (name, orjson.dumps(operator.params.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS))
    return built.setdefault(key, operator)


def _compile_type(pattern: str, spec: TypeRuleSpec, built: _Operators) -> TypeRule:
    root = PathNode()
    for path, field_spec in spec.fields.items():
        node = root
        for segment in parse_path(path):
            node = node.child(segment)
        operator = _operator(field_spec.op, field_spec.params, built)
        node.rule = FieldRule(f"{pattern}:{path}", operator)
    return TypeRule(pattern, spec.label, spec.lane, spec.labels, spec.retry_labels, root)


def _specificity(pattern: str) -> tuple[int, str]:
    return (-len(pattern.replace("*", "")), pattern)


@dataclass(frozen=True)
class RuleSet:
    """Everything the redactor needs, validated and compiled; ``version`` is a content hash."""

    exact: Mapping[str, TypeRule]
    globs: Sequence[TypeRule]
    errors: Mapping[str, str]
    error_globs: Sequence[tuple[str, str]]
    defaults: DefaultsSpec
    version: str
    sources: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    _cache: dict[str, TypeRule | None] = field(default_factory=dict, compare=False, repr=False)
    _reasons: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)

    @property
    def type_patterns(self) -> list[str]:
        """All type patterns, exact ones first."""
        return [*sorted(self.exact), *(rule.pattern for rule in self.globs)]

    def match(self, event_type: str) -> TypeRule | None:
        """The rule for an event type: exact pattern first, then the most specific glob."""
        try:
            return self._cache[event_type]
        except KeyError:
            pass
        rule = self.exact.get(event_type)
        if rule is None:
            rule = next((g for g in self.globs if fnmatchcase(event_type, g.pattern)), None)
        if len(self._cache) > 10_000:  # types are few; a flood of junk types must not grow it
            self._cache.clear()
        self._cache[event_type] = rule
        return rule

    def reason_for_code(self, code: str) -> str | None:
        """Catalog reason for an error code (exact, then glob such as ``WEBHOOK_HTTP_5*``)."""
        try:
            return self._reasons[code]
        except KeyError:
            pass
        upper = code.strip().upper()
        reason = self.errors.get(upper)
        if reason is None:
            reason = next(
                (r for pattern, r in self.error_globs if fnmatchcase(upper, pattern)), None
            )
        if len(self._reasons) > 10_000:  # codes are few; junk codes must not grow it
            self._reasons.clear()
        self._reasons[code] = reason
        return reason


def compile_rules(
    files: Sequence[tuple[str, RuleFileSpec]], skipped: Sequence[str] = ()
) -> RuleSet:
    """Merge validated files into one ``RuleSet``. Callers check cross-file conflicts first."""
    types: dict[str, TypeRuleSpec] = {}
    errors: dict[str, str] = {}
    defaults = DefaultsSpec()
    for _name, spec in files:
        types.update(spec.types)
        errors.update(spec.errors)
        if spec.defaults is not None:
            defaults = spec.defaults
    built: _Operators = {}
    compiled = {pattern: _compile_type(pattern, spec, built) for pattern, spec in types.items()}
    exact = {p: r for p, r in compiled.items() if "*" not in p}
    globs = sorted(
        (r for p, r in compiled.items() if "*" in p), key=lambda r: _specificity(r.pattern)
    )
    content = {
        "engine": ENGINE_REVISION,
        "types": {p: s.model_dump(mode="json") for p, s in types.items()},
        "errors": errors,
        "defaults": defaults.model_dump(mode="json"),
    }
    digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return RuleSet(
        exact=exact,
        globs=tuple(globs),
        errors={c: r for c, r in errors.items() if "*" not in c},
        error_globs=tuple(
            sorted(
                ((c, r) for c, r in errors.items() if "*" in c), key=lambda x: _specificity(x[0])
            )
        ),
        defaults=defaults,
        version="rs_" + digest[:12],
        sources=tuple(name for name, _ in files),
        skipped=tuple(skipped),
    )
