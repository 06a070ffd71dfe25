"""The fail-closed walk over ``data``: only values a rule names survive, everything else is
dropped and counted, at any depth, in lists, and inside JSON that arrives as a string.

A string that parses as a JSON object or array is treated as that object or array: a ``keep``
on a field carrying a JSON blob therefore drops the blob (its inner values were not named),
while rules such as ``response_body.error`` reach into it.

``dropped`` counts the values removed where the walk stopped: an unkept object or list counts
once. ``Redactor.dropped_paths`` (explain mode) lists every scalar path inside them instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from redaction_rules.operators import ApplyContext, Operator
from redaction_rules.ruleset import FieldRule, PathNode
from redaction_rules.scanners import TextScanner

MAX_DEPTH = 32
NO_RULE = "no rule"
_CACHE_MAX_LEN = 256
_KEY_MAX_LEN = 120
_CACHE_SIZE = 50_000
# An operator's output and the emails/phones it found.
CacheHit = tuple[str | None, tuple[str, ...]]
# Scalars cached under (value, type). Floats are not: 0.0 == -0.0 would share a result.
_PLAIN = frozenset({int, bool, type(None)})
# First characters of a JSON object or array, and the whitespace JSON may start with (the
# parser skips it: " {...}" is an object too, and must not be kept as text).
_JSON_START = "{[ \t\n\r"
_INDEX = re.compile(r"\[\d+\]")
# Tuples, not ``dict | list``: a union is built anew and checked slowly on every call.
_PARSED = (dict, list)
_SEQUENCE = (list, tuple)
_CONTAINER = (dict, list, tuple)


class OperatorCache:
    """Recent results of pure operators, shared by one redactor's walks: a table per operator,
    keyed by the value itself for strings and by ``(value, type)`` for other scalars (so
    ``True`` and ``1`` stay apart; a string never equals a tuple). A table per operator
    spares building and hashing an ``(operator, value)`` key for every kept value.

    Bounded: when ``_CACHE_SIZE`` results are held, all tables start afresh.
    """

    __slots__ = ("tables", "size")

    def __init__(self) -> None:
        self.tables: dict[Operator[Any], dict[Any, CacheHit]] = {}
        self.size = 0

    def table(self, operator: Operator[Any]) -> dict[Any, CacheHit]:
        """The (possibly new) table of ``operator``."""
        table = self.tables.get(operator)
        if table is None:
            table = self.tables[operator] = {}
        return table

    def add(self, table: dict[Any, CacheHit], key: Any, hit: CacheHit) -> None:
        """Remember ``hit`` under ``key`` in ``table`` (one of this cache's tables)."""
        if self.size >= _CACHE_SIZE:
            for old in self.tables.values():
                old.clear()
            self.size = 0
        table[key] = hit
        self.size += 1


def _json_container(text: str) -> Any:
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, _PARSED) else None


def leaf_paths(value: Any, path: str) -> list[str]:
    """Paths of every scalar under ``value`` (itself if it is a scalar)."""
    out: list[str] = []
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        current, where = stack.pop()
        if isinstance(current, dict):
            stack.extend((v, f"{where}.{k}" if where else str(k)) for k, v in current.items())
        elif isinstance(current, _SEQUENCE):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(current))
        else:
            out.append(where)
    return out


def generic_path(path: str) -> str:
    """``items[3].sku`` -> ``items[*].sku``, the form rules are written in."""
    return _INDEX.sub("[*]", path)


class Walk(ApplyContext):
    """One event's walk, which is also the context its operators run in (one object to set
    up per event instead of two). ``explain=True`` also records why each dropped value was
    dropped."""

    __slots__ = ("cache", "max_fields", "fields", "field_rules", "dropped", "drops")

    def __init__(
        self,
        scanner: TextScanner,
        hmac_key: bytes,
        cache: OperatorCache,
        max_fields: int,
        explain: bool = False,
    ) -> None:
        # ApplyContext's fields, set here: its generated __init__ would be a second call.
        self.scanner = scanner
        self.hmac_key = hmac_key
        self.found: list[str] = []
        self.cache = cache
        self.max_fields = max_fields
        self.fields: dict[str, str] = {}
        self.field_rules: dict[str, str] = {}
        self.dropped = 0
        self.drops: list[tuple[str, str]] | None = [] if explain else None

    def run(self, data: Mapping[str, Any], root: PathNode | None) -> Walk:
        """Walk ``data`` from ``root``; ``None`` (no rule for the type) drops all of it."""
        if root is None:
            for key, value in data.items():  # unknown type: the envelope only
                self._drop(value, key, NO_RULE)
        else:
            self._walk_object(data, root, "", 0)
        return self

    def _drop(self, value: Any, path: str, why: str) -> None:
        # One per value removed where the walk stopped: an unkept object or list counts once.
        # (Counting every leaf of a dropped debug blob cost more than redacting the event.)
        self.dropped += 1
        if self.drops is not None:
            self._record(value, path, why)

    def _record(self, value: Any, path: str, why: str) -> None:
        assert self.drops is not None  # noqa: S101 - only called in explain mode
        self.drops.extend((generic_path(p), why) for p in leaf_paths(value, path))

    def _walk_object(self, obj: Mapping[str, Any], node: PathNode, prefix: str, depth: int) -> None:
        children, any_key = node.children, node.any_key
        tables, fields, field_rules = self.cache.tables, self.fields, self.field_rules
        explain = self.drops is not None
        limit = self.max_fields
        for key, value in obj.items():
            child = children.get(key)
            if child is None:
                # Keys match case-insensitively (rules store them lower-cased), then "*".
                child = children.get(key.lower()) if type(key) is str else None
                if child is None:
                    child = any_key
                    if child is None:
                        self.dropped += 1  # inlined _drop: most dropped keys need no path
                        if explain:
                            self._record(value, f"{prefix}.{key}" if prefix else key, NO_RULE)
                        continue
                    # A key no rule names is data too ({"maria@x.com": "ok"}), and the path
                    # shows it: scanned like a kept value.
                    key = self.scan(str(key), _KEY_MAX_LEN)
            path = f"{prefix}.{key}" if prefix else key
            rule = child.rule
            if rule is None:
                # An object under a node without a rule: walked as _visit would, one call less.
                if (
                    type(value) is dict
                    and depth < MAX_DEPTH
                    and (child.children or child.any_key is not None)
                ):
                    self._walk_object(value, child, path, depth + 1)
                else:
                    self._visit(value, child, path, depth)
                continue
            if rule.constant and not explain:
                # secret/drop: the same output for any value, objects and JSON blobs included.
                if rule.output is None or len(fields) >= limit:
                    self.dropped += 1
                else:
                    fields[path] = rule.output
                    field_rules[path] = rule.rule_id
                continue
            # A single value: _apply inlined (results of pure operators are remembered).
            kind = type(value)
            if kind is str:
                if value and value[0] in _JSON_START:  # indexing: cheaper than value[:1]
                    self._visit(value, child, path, depth)
                    continue
                cache_key: Any = value
            elif kind in _PLAIN:
                cache_key = (value, kind)
            else:
                self._visit(value, child, path, depth)
                continue
            if len(fields) >= limit:
                self._drop(value, path, "too many fields in one event")
                continue
            table = tables.get(rule.operator)
            hit = table.get(cache_key) if table is not None else None
            if hit is None:
                hit = self._compute(rule.operator, value, cache_key)
            elif hit[1]:
                self.found.extend(hit[1])
            text = hit[0]
            if text is None:
                self._drop(value, path, f"drop rule {rule.rule_id}")
                continue
            fields[path] = text
            field_rules[path] = rule.rule_id

    def _visit(self, value: Any, node: PathNode, path: str, depth: int) -> None:
        if isinstance(value, str) and value and value[0] in _JSON_START:
            parsed = _json_container(value)
            if parsed is not None:
                value = parsed
        rule = node.rule
        if isinstance(value, _CONTAINER):
            if rule is not None and rule.operator.accepts_objects:
                self._apply(value, rule, path)
            elif depth >= MAX_DEPTH:
                self._drop(value, path, "nested too deep")
            # node.has_keys, inlined (a property call per nested object).
            elif isinstance(value, dict) and (node.children or node.any_key is not None):
                self._walk_object(value, node, path, depth + 1)
            elif isinstance(value, _SEQUENCE) and node.items is not None:
                items, inner = node.items, depth + 1
                # Objects under an item node without a rule of its own are walked directly
                # (what _visit would do with each of them, one call less per item).
                direct = (
                    items.rule is None
                    and inner < MAX_DEPTH
                    and (items.children or items.any_key is not None)
                )
                for index, item in enumerate(value):
                    if direct and type(item) is dict:
                        self._walk_object(item, items, f"{path}[{index}]", inner + 1)
                    else:
                        self._visit(item, items, f"{path}[{index}]", inner)
            else:
                why = (
                    f"{rule.rule_id} keeps single values, not objects or lists" if rule else NO_RULE
                )
                self._drop(value, path, why)
        elif rule is None:
            self._drop(value, path, NO_RULE)
        else:
            self._apply(value, rule, path)

    def _compute(self, operator: Operator[Any], value: Any, key: Any) -> CacheHit:
        """Apply ``operator`` (a cache miss); remember the result under ``key`` (the value,
        or ``(value, type)``) unless it is ``None`` (a container: never remembered)."""
        found = self.found
        mark = len(found)
        hit = (operator.apply(value, self), tuple(found[mark:]))
        # Long strings are not remembered: they rarely recur and would pin memory.
        if key is not None and (type(value) is not str or len(value) <= _CACHE_MAX_LEN):
            self.cache.add(self.cache.table(operator), key, hit)
        return hit

    def _apply(self, value: Any, rule: FieldRule, path: str) -> None:
        fields = self.fields
        if len(fields) >= self.max_fields:
            self._drop(value, path, "too many fields in one event")
            return
        operator = rule.operator
        kind = type(value)
        # Operators are pure, and a customer's email, phone, IP, plan and user agent recur in
        # every event of their flows: remember recent results. (The type is part of the key
        # for non-strings so that True and 1 stay apart.)
        if kind is str:
            key: Any = value
        else:
            key = (value, kind) if kind in _PLAIN else None
        table = self.cache.tables.get(operator) if key is not None else None
        hit = table.get(key) if table is not None else None
        if hit is None:
            hit = self._compute(operator, value, key)
        elif hit[1]:
            self.found.extend(hit[1])
        text = hit[0]
        if text is None:
            self._drop(value, path, f"drop rule {rule.rule_id}")
            return
        fields[path] = text
        self.field_rules[path] = rule.rule_id
