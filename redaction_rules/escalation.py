"""Escalation hints: who should act on a trace (support or engineering), why, and what to do next.

The conditions and the wording live in a rule file (``rules/escalation.yaml``) so a support lead
can change when a case goes to engineering, or how the next step is phrased, without touching
code. Rules are checked in file order and the first one whose conditions all hold wins; the
``fallback`` answers when none does, so every trace gets a hint.

The decision is a pure function over ``TraceFacts``: states, error codes, counts and minutes,
never personal data, so a hint can be shown, copied and logged safely.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_ESCALATION_PATH = Path(__file__).parent / "rules" / "escalation.yaml"

Owner = Literal["support", "engineering"]
OWNER_HEADLINES: dict[str, str] = {
    "support": "Support can act",
    "engineering": "Engineering should take over",
}
# The only values wording may refer to; all of them are safe to show (numbers and codes).
PLACEHOLDERS = frozenset({"threshold", "quiet_for", "error_code", "scheduled_for"})
Codes = Annotated[list[Annotated[str, Field(min_length=1, max_length=128)]], Field(min_length=1)]
Wording = Annotated[str, Field(min_length=3, max_length=400)]


class EscalationRuleError(ValueError):
    """The escalation rule file is invalid; the message names the file, the rule and the problem."""


class TraceFacts(BaseModel):
    """What a hint is decided from, derived from one trace's redacted timeline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    found: bool = True
    final_state: str | None = None
    error_codes: tuple[str, ...] = ()
    job_missing: bool = False
    removed_by_retention: bool = False
    quiet_minutes: float | None = None  # unfinished job: minutes since its last event
    # An unfinished job waits for the time its events said it is due (a nightly run, a retry
    # set for tomorrow): that time, still ahead. Its stuck limit counts from then.
    scheduled_for: datetime | None = None

    @property
    def last_error_code(self) -> str | None:
        """The most recent error code of the trace, if any."""
        return self.error_codes[-1] if self.error_codes else None


def _matches(code: str | None, patterns: Sequence[str]) -> bool:
    """Whether ``code`` is one of ``patterns``; a pattern may hold ``*`` or ``?``
    (``WEBHOOK_HTTP_5*``), matched case-sensitively as codes are."""
    if code is None:
        return False
    return any(fnmatchcase(code, p) if "*" in p or "?" in p else code == p for p in patterns)


class Condition(BaseModel):
    """Conditions of one rule; every condition given must hold (unset ones are ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    found: bool | None = None
    final_state_in: Codes | None = None
    last_error_in: Codes | None = None
    any_error_in: Codes | None = None
    job_missing: bool | None = None
    removed_by_retention: bool | None = None
    stuck: bool | None = Field(
        default=None, description="an unfinished job has had no news for longer than the threshold"
    )
    scheduled: bool | None = Field(
        default=None, description="an unfinished job is waiting for the time it is due to run"
    )

    def is_empty(self) -> bool:
        """True when no condition is set (such a rule would match every trace)."""
        return all(value is None for value in self.model_dump().values())

    def matches(self, facts: TraceFacts, stuck_after_minutes: int) -> bool:
        """Whether every condition set here holds for ``facts``."""
        stuck = facts.quiet_minutes is not None and facts.quiet_minutes > stuck_after_minutes
        checks = (
            self.found is None or self.found == facts.found,
            self.final_state_in is None or facts.final_state in self.final_state_in,
            self.last_error_in is None or _matches(facts.last_error_code, self.last_error_in),
            self.any_error_in is None
            or any(_matches(c, self.any_error_in) for c in facts.error_codes),
            self.job_missing is None or self.job_missing == facts.job_missing,
            self.removed_by_retention is None
            or self.removed_by_retention == facts.removed_by_retention,
            self.stuck is None or self.stuck == stuck,
            self.scheduled is None or self.scheduled == (facts.scheduled_for is not None),
        )
        return all(checks)


class Outcome(BaseModel):
    """Who acts, why (plain words), and the next step."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
    owner: Owner
    reason: Wording
    next_step: Wording

    @model_validator(mode="after")
    def _known_placeholders(self) -> Self:
        for text in (self.reason, self.next_step):
            for _, name, _, _ in string.Formatter().parse(text):
                if name is not None and name not in PLACEHOLDERS:
                    raise ValueError(
                        f"unknown placeholder {{{name}}}; use one of {sorted(PLACEHOLDERS)}"
                    )
        return self


class HintRule(Outcome):
    """An outcome with the conditions that select it."""

    when: Condition

    @model_validator(mode="after")
    def _has_conditions(self) -> Self:
        if self.when.is_empty():
            raise ValueError("'when' has no conditions; put a catch-all answer in 'fallback'")
        return self


class EscalationRules(BaseModel):
    """The whole escalation rule file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    rules: Annotated[list[HintRule], Field(min_length=1)]
    fallback: Outcome

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        seen: set[str] = set()
        for rule in [*self.rules, self.fallback]:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice")
            seen.add(rule.id)
        return self


class EscalationHint(BaseModel):
    """The answer shown on the trace page: owner, rule, reason and next step (wording filled in)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    owner: Owner
    rule_id: str
    reason: str
    next_step: str

    @property
    def headline(self) -> str:
        """ "Support can act" or "Engineering should take over"."""
        return OWNER_HEADLINES[self.owner]


def _describe(exc: ValidationError, data: object) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc) or "file"
        # Name the rule by its id, not only its position, so the author finds it.
        if (
            len(loc) >= 2
            and loc[0] == "rules"
            and isinstance(loc[1], int)
            and isinstance(data, dict)
        ):
            rules = data.get("rules")
            if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
                where = f"rule {rules[loc[1]].get('id', '?')!r} ({where})"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def load_escalation_rules(path: Path | None = None) -> EscalationRules:
    """Load and validate the escalation rule file (the packaged default when ``path`` is None).

    Raises ``EscalationRuleError`` naming the file, the rule and what is wrong.
    """
    source = path or DEFAULT_ESCALATION_PATH
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise EscalationRuleError(f"{source}: cannot read: {exc}") from exc
    try:
        return EscalationRules.model_validate(data)
    except ValidationError as exc:
        raise EscalationRuleError(f"{source}: {_describe(exc, data)}") from exc


def _quiet_for(minutes: float | None) -> str:
    """``45 minutes`` or, past two hours, ``4 h 58 min``: what a person reads fastest."""
    if minutes is None:
        return "an unknown time"
    whole = int(minutes)
    if whole < 120:
        return f"{whole} minutes"
    hours, rest = divmod(whole, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def evaluate(
    facts: TraceFacts, rules: EscalationRules, *, stuck_after_minutes: int
) -> EscalationHint:
    """Decide who acts on a trace: the first matching rule, else the fallback."""
    chosen: Outcome = next(
        (r for r in rules.rules if r.when.matches(facts, stuck_after_minutes)), rules.fallback
    )
    values = {
        "threshold": str(stuck_after_minutes),
        "quiet_for": _quiet_for(facts.quiet_minutes),
        "error_code": facts.last_error_code or "none sent",  # "(last error code: none sent)"
        "scheduled_for": _when(facts.scheduled_for),
    }
    return _worded(chosen, values)


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if at else "the time set"


def _worded(rule: Outcome, values: dict[str, str]) -> EscalationHint:
    """``rule``'s answer with its placeholders filled in from ``values``."""
    return EscalationHint(
        owner=rule.owner,
        rule_id=rule.id,
        reason=rule.reason.format_map(values),
        next_step=rule.next_step.format_map(values),
    )


def describe_rules(rules: EscalationRules, *, stuck_after_minutes: int) -> list[EscalationHint]:
    """Every rule and the fallback in order, worded for a guide rather than one trace (the
    quiet time and error code are described, not filled in)."""
    values = {
        "threshold": str(stuck_after_minutes),
        "quiet_for": "some time",
        "error_code": "as shown on the trace",
        "scheduled_for": "the time shown on the trace",
    }
    return [_worded(rule, values) for rule in [*rules.rules, rules.fallback]]
