"""Rule file models: YAML is loaded into these once, validated strictly (``extra="forbid"``).

A rule file looks like::

    kind: redaction
    types:
      signup_email.*:                     # event type, glob allowed
        label: Signup email               # plain words support reads
        lane: system                      # customer action or system work
        labels: {queued: Signup email queued, sent: Signup email sent}   # by last segment
        retry_labels: {failed: Signup email retry failed}                # when attempt >= 2
        fields:                           # data paths kept, each with one operator
          to: mask_email
          smtp_response: {op: truncate, max_chars: 160}
          headers.Message-ID: keep
          error_rows[*].row: keep
    errors:
      PROVIDER_TIMEOUT: Email provider timeout
    defaults:
      system_label: Other system event

Paths: keys separated by ``.``, ``*`` for any key, ``[*]`` for every list item; keys match
case-insensitively (HTTP headers arrive in any case).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from ingest.schema import Lane
from redaction_rules.operators import build_operator


class RuleError(ValueError):
    """Invalid rule files. Each problem names the file, the rule and what is wrong."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


_PATH_PART = re.compile(r"^(?:\*|[^.\[\]\s*]+)(?:\[\*\])?$|^\[\*\]$")
MAX_PATH_DEPTH = 12


def parse_path(path: str) -> tuple[str, ...]:
    """``items[*].sku`` -> ``('items', '[*]', 'sku')``; raises ``ValueError`` if malformed."""
    if not path or len(path) > 200:
        raise ValueError("path must be 1-200 characters")
    segments: list[str] = []
    for part in path.split("."):
        if not _PATH_PART.match(part):
            raise ValueError(
                f"bad path segment {part!r} (use key, *, key[*] or [*], separated by '.')"
            )
        if part.endswith("[*]"):
            if part != "[*]":
                segments.append(part[:-3])
            segments.append("[*]")
        else:
            segments.append(part)
    if len(segments) > MAX_PATH_DEPTH:
        raise ValueError(f"path deeper than {MAX_PATH_DEPTH} segments")
    return tuple(segments)


def _plain_words(text: str) -> str:
    # Labels and reasons are read by support: "Signup email sent", never "signup_email_v2".
    if "_" in text or not text[:1].isupper():
        raise ValueError("write plain words starting with a capital letter (no '_')")
    return text


PlainText = Annotated[str, Field(min_length=2, max_length=120), AfterValidator(_plain_words)]
Label = Annotated[str, Field(min_length=2, max_length=80), AfterValidator(_plain_words)]
TypePattern = Annotated[str, Field(pattern=r"^[a-z0-9_*]+(\.[a-z0-9_*]+)*$", max_length=128)]
Suffix = Annotated[str, Field(pattern=r"^[a-z0-9_]+$", max_length=64)]
ErrorCode = Annotated[str, Field(pattern=r"^[A-Z0-9_.\-*]{2,128}$")]


class FieldSpec(BaseModel):
    """One kept path: ``mask_email`` or ``{op: truncate, max_chars: 120}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flat_form(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"op": data}
        if isinstance(data, dict) and "op" in data:
            return {"op": data["op"], "params": {k: v for k, v in data.items() if k != "op"}}
        return data

    @model_validator(mode="after")
    def _known_operator(self) -> Self:
        build_operator(self.op, self.params)  # raises ValueError naming the problem
        return self


class TypeRuleSpec(BaseModel):
    """Label, lane and kept fields for the event types one pattern matches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: Label
    lane: Lane
    labels: dict[Suffix, Label] = Field(default_factory=dict)
    retry_labels: dict[Suffix, Label] = Field(default_factory=dict)
    fields: dict[str, FieldSpec] = Field(default_factory=dict)

    @field_validator("fields")
    @classmethod
    def _paths(cls, fields: dict[str, FieldSpec]) -> dict[str, FieldSpec]:
        seen: dict[tuple[str, ...], str] = {}
        for path in fields:
            try:
                key = tuple(s.lower() for s in parse_path(path))
            except ValueError as exc:
                raise ValueError(f"field {path!r}: {exc}") from None
            if key in seen:
                raise ValueError(f"fields {seen[key]!r} and {path!r} name the same path")
            seen[key] = path
        return fields


class DefaultsSpec(BaseModel):
    """What unknown event types get, and bounds shared by all rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    customer_label: Label = "Other customer action"
    system_label: Label = "Other system event"
    lane: Lane = Lane.SYSTEM
    reason_max_chars: int = Field(default=160, ge=20, le=500)
    max_fields: int = Field(default=200, ge=1, le=5000)


class RuleFileSpec(BaseModel):
    """One YAML file. ``kind: redaction`` tells it apart from other rule files nearby."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["redaction"]
    types: dict[TypePattern, TypeRuleSpec] = Field(default_factory=dict)
    errors: dict[ErrorCode, PlainText] = Field(default_factory=dict)
    defaults: DefaultsSpec | None = None
