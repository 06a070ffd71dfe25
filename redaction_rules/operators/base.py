"""Redaction operators: small named classes with typed params and a pure ``apply``.

A rule names an operator (``mask_email``, ``truncate``, ...) and its params; the params are
validated once when the rule file is loaded (pydantic, ``extra="forbid"``), never per event.
``apply`` turns one value into the string support sees, or ``None`` to drop it. Operators
that pass free text through (``keep``, ``truncate``, ``mask_address``) scan it first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from redaction_rules.scanners import TextScanner

MAX_TEXT = 2000  # upper bound for any kept string; a timeline is not a log store
_SAFE_CUT = re.compile(r"[^\d\s]\s+(?=[^\d\s])")


@dataclass(slots=True)
class ApplyContext:
    """What operators may use besides their value: the scanner, the HMAC key, and a list
    collecting normalized emails/phones for the event's lookup keys."""

    scanner: TextScanner
    hmac_key: bytes
    found: list[str] = field(default_factory=list)

    def scan(self, text: str, limit: int = MAX_TEXT) -> str:
        """Scan ``text`` and bound it to ``limit`` characters (``…`` marks a cut)."""
        if len(text) <= limit:  # the common case, one call less
            scanned = self.scanner.scan(text, self.found)
            if len(scanned) <= limit:
                return scanned
        return bounded_scan(text, limit, self.scanner, self.found)


def bounded_scan(text: str, limit: int, scanner: TextScanner, found: list[str]) -> str:
    """Scan, then cut to ``limit``.

    Huge text is first cut so the scan stays cheap, at a space between two words that are not
    digits, never inside a token or a grouped number: half a card number is no longer a card,
    and masks can shrink the text enough to bring the cut into view.
    """
    window = max(limit * 4, 512)
    if len(text) > window:
        cuts = [m.start() for m in _SAFE_CUT.finditer(text, 0, window)]
        text = text[: cuts[-1] + 1] if cuts else ""
        if not text:
            return "[long text withheld]"
    scanned = scanner.scan(text, found)
    if len(scanned) <= limit:
        return scanned
    return scanned[: limit - 1].rstrip() + "…"


def as_text(value: object) -> str:
    """JSON-style text for a scalar: ``true``, ``null``, ``12.5``."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return str(value)


class NoParams(BaseModel):
    """Operators without parameters still reject unknown ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=BaseModel)


class Operator(Generic[P]):
    """Base class. ``accepts_objects`` operators also receive dicts/lists; for the others a
    container value is dropped (fail-closed: its leaves were not named by any rule)."""

    name: ClassVar[str]
    params_model: ClassVar[type[BaseModel]] = NoParams
    accepts_objects: ClassVar[bool] = False
    # True when ``apply`` returns ``constant_output`` for every value (objects included) and
    # records nothing: the walk then skips parsing, caching and calling it.
    constant: ClassVar[bool] = False
    constant_output: ClassVar[str | None] = None

    def __init__(self, params: P) -> None:
        self.params = params

    def apply(self, value: Any, ctx: ApplyContext) -> str | None:
        """Return what support sees for ``value``, or ``None`` to drop it."""
        raise NotImplementedError


OPERATORS: dict[str, type[Operator[Any]]] = {}
OpClass = TypeVar("OpClass", bound=type[Operator[Any]])


def register(cls: OpClass) -> OpClass:
    """Class decorator: make an operator available to rule files under ``cls.name``."""
    if cls.name in OPERATORS:
        raise ValueError(f"operator {cls.name!r} registered twice")
    OPERATORS[cls.name] = cls
    return cls


def build_operator(name: str, params: Mapping[str, Any]) -> Operator[Any]:
    """Instantiate an operator by name; raises ``ValueError`` naming the problem."""
    cls = OPERATORS.get(name)
    if cls is None:
        raise ValueError(f"unknown operator {name!r} (known: {', '.join(sorted(OPERATORS))})")
    try:
        validated = cls.params_model.model_validate(dict(params))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise ValueError(f"operator {name!r}: {problems}") from None
    return cls(validated)
