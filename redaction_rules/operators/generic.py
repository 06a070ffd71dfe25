"""General operators: keep (scanned), drop, secret, hmac, truncate, enum, timestamp."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from redaction_rules import masks
from redaction_rules.operators.base import (
    MAX_TEXT,
    ApplyContext,
    NoParams,
    Operator,
    as_text,
    register,
)
from redaction_rules.scanners import SHORTEST_HIT


@register
class Keep(Operator[NoParams]):
    """Keep the value as text, scanned for PII and secrets."""

    name = "keep"

    def apply(self, value: Any, ctx: ApplyContext) -> str | None:
        if type(value) is int:  # counts and row numbers (bool is not int here)
            text = str(value)  # as_text(value)
            return text if len(text) < SHORTEST_HIT else ctx.scan(text)
        return ctx.scan(value if type(value) is str else as_text(value))


@register
class Drop(Operator[NoParams]):
    """Drop the value on purpose (documents intent; unnamed values are dropped anyway)."""

    name = "drop"
    accepts_objects = True
    constant = True
    constant_output = None

    def apply(self, value: Any, ctx: ApplyContext) -> str | None:
        return self.constant_output


@register
class Secret(Operator[NoParams]):
    """A fixed ``[secret]``: shows that a value was present, nothing about it."""

    name = "secret"
    accepts_objects = True
    constant = True
    constant_output = masks.SECRET

    def apply(self, value: Any, ctx: ApplyContext) -> str | None:
        return self.constant_output


class HmacParams(NoParams):
    """Token length in hex characters and how to normalize before hashing."""

    length: int = Field(default=16, ge=8, le=64)
    normalize: str = Field(default="none", pattern=r"^(none|lower|email|phone)$")


def _normalizer(kind: str) -> Callable[[str], str]:
    def email(text: str) -> str:
        parts = masks.split_email(text)
        return masks.normalize_email(*parts) if parts else text.strip().lower()

    def phone(text: str) -> str:
        number = masks.parse_phone(text)
        return masks.normalize_phone(number) if number else text.strip()

    table: dict[str, Callable[[str], str]] = {
        "none": lambda text: text,
        "lower": lambda text: text.strip().lower(),
        "email": email,
        "phone": phone,
    }
    return table[kind]


@register
class Hmac(Operator[HmacParams]):
    """Keyed HMAC-SHA256 token: stable for joins, useless without the key."""

    name = "hmac"
    params_model = HmacParams

    def __init__(self, params: HmacParams) -> None:
        super().__init__(params)
        self._normalize = _normalizer(params.normalize)

    def apply(self, value: Any, ctx: ApplyContext) -> str | None:
        data = self._normalize(as_text(value)).encode()
        digest = hmac.new(ctx.hmac_key, b"value:" + data, hashlib.sha256).hexdigest()
        return "h:" + digest[: self.params.length]


class TruncateParams(NoParams):
    """Maximum characters shown."""

    max_chars: int = Field(default=80, ge=1, le=MAX_TEXT)


@register
class Truncate(Operator[TruncateParams]):
    """Scan, then cut to ``max_chars`` (``…`` marks the cut)."""

    name = "truncate"
    params_model = TruncateParams

    def apply(self, value: Any, ctx: ApplyContext) -> str | None:
        return ctx.scan(value if type(value) is str else as_text(value), self.params.max_chars)


class EnumParams(NoParams):
    """Allowed values (compared as text) and what to show for anything else."""

    values: list[str] = Field(min_length=1)
    other: str = Field(default="[other]", max_length=40)
    case_sensitive: bool = False


@register
class EnumValues(Operator[EnumParams]):
    """Allow-listed values pass; anything else becomes ``other`` (never the raw value)."""

    name = "enum"
    params_model = EnumParams

    def __init__(self, params: EnumParams) -> None:
        super().__init__(params)
        fold: Callable[[str], str] = (lambda s: s) if params.case_sensitive else str.lower
        self._fold = fold
        self._allowed = {fold(v): v for v in params.values}

    def apply(self, value: Any, ctx: ApplyContext) -> str | None:
        return self._allowed.get(self._fold(as_text(value)), self.params.other)


@register
class Timestamp(Operator[NoParams]):
    """An ISO 8601 time with its zone (when a job is due to run), shown in UTC to the second
    (``2026-11-28T02:00:00Z``); anything else is dropped (fail-closed: nothing is scanned or
    kept of a value that is not such a time)."""

    name = "timestamp"

    def apply(self, value: Any, ctx: ApplyContext) -> str | None:
        if type(value) is not str or len(value) > 40:
            return None
        try:
            when = datetime.fromisoformat(value)
            if when.utcoffset() is None:  # a time without its zone is no time support can use
                return None
            return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        except (ValueError, OverflowError):
            return None
