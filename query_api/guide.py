"""The support guide: one page on how to read what safetrail shows, built from what is in force.

Support needs "a short note for each field and a plain rule for when to escalate". Each note
here belongs to a value the code can show (every trace status, step state and broken link has
one, and a test keeps it so); the masked examples are what the running redactor makes of
made-up values, and the escalation table is the loaded rule file, so the page cannot drift
from what the other pages show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ingest.schema import RawEvent
from query_api.models import BrokenLink, StepKind, StepState, TraceStatus
from redaction_rules.engine import Redactor
from redaction_rules.escalation import EscalationHint, EscalationRules, describe_rules

STATUS_NOTES: dict[TraceStatus, str] = {
    TraceStatus.FAILED: "A step ended in an error. The hint at the top says who acts next.",
    TraceStatus.INCOMPLETE: (
        "The customer's request went through, but a job it should have started has had no "
        "events at all for longer than the stuck limit: the work never began. Engineering's "
        "case. (Before that limit such a job shows as queued: its first event may be on its "
        "way.)"
    ),
    TraceStatus.STUCK: (
        "A job is queued or running and has had no news for longer than the stuck limit (for "
        "a job scheduled for a later time: since that time). Engineering's case."
    ),
    TraceStatus.RUNNING: (
        "Work is still going and has had news recently. Check the last event's time before "
        "calling it stuck."
    ),
    TraceStatus.QUEUED: (
        "The job is waiting for a worker to pick it up, or, when it shows “Scheduled for”, "
        "for that time (a nightly run, a retry set for later): not stuck before then."
    ),
    TraceStatus.DONE: (
        "Every step finished. An error on the way that a retry got past is still listed, marked "
        "“recovered”: nothing is left to fix."
    ),
    TraceStatus.UNKNOWN: (
        "Every event of this trace is older than the retention period and was removed; only "
        "the fact that it happened is kept."
    ),
}

STEP_NOTES: dict[StepState, str] = {
    StepState.QUEUED: "Waiting for a worker, or for the time shown as “Scheduled for”.",
    StepState.RUNNING: "A worker has it; more attempts may follow.",
    StepState.DONE: "Finished.",
    StepState.FAILED: "Ended in an error; the reason is under the step.",
    StepState.UNKNOWN: "Nothing left to tell: see the note beside the step.",
}

BROKEN_NOTES: dict[BrokenLink, str] = {
    BrokenLink.JOB_NOT_FOUND: (
        "The request named a job that sent no event within the stuck limit: it was never started."
    ),
    BrokenLink.REMOVED_BY_RETENTION: (
        "The step happened, but its details are older than the retention period and were removed."
    ),
}

KIND_NOTES: dict[StepKind, str] = {
    StepKind.REQUEST: "What the customer did (the Customer rows of the history).",
    StepKind.JOB: "Background work the request started, with every attempt and retry.",
    StepKind.ERROR: "The error record that ended a job or the trace.",
    StepKind.EVENT: "System work that belongs to no request or job.",
}


@dataclass(frozen=True, slots=True)
class MaskExample:
    """How one kind of personal value is shown, and what support may do with it."""

    kind: str
    shown: str
    confirm: str


# Made-up values of each kind, as a service would send them, and the field each is kept in.
_SAMPLES: tuple[tuple[str, str, dict[str, Any], str, str], ...] = (
    (
        "Email address",
        "signup.submitted",
        {"email": "maria.santos@gmail.com"},
        "email",
        "Ask the customer to spell the address; compare the first letters and the domain.",
    ),
    (
        "Phone number",
        "signup.submitted",
        {"phone": "+1 415 555 0167"},
        "phone",
        "Ask for the number; compare the country code and the last two digits.",
    ),
    (
        "Name",
        "signup.submitted",
        {"name": "Maria Santos"},
        "name",
        "Compare the first letters and lengths with the name on the ticket.",
    ),
    (
        "Card number",
        "plan.changed",
        {"card": {"number": "4242 4242 4242 4242"}},
        "card.number",
        "Ask for the last four digits only, never the whole number.",
    ),
    (
        "IP address",
        "signup.submitted",
        {"ip": "203.0.113.57"},
        "ip",
        "Only the network is shown: enough to tell a country or provider, not a device.",
    ),
    (
        "Password",
        "signup.submitted",
        {"password": "correct horse battery"},
        "password",
        "Never shown, never asked for. Send the customer the password reset link instead.",
    ),
)
_SAMPLE_AT = datetime(2026, 1, 1, tzinfo=UTC)
NOT_SHOWN = "not shown"


def mask_examples(redactor: Redactor) -> list[MaskExample]:
    """What the redactor in force shows for a made-up value of each kind (``not shown`` when
    its rules drop the field)."""
    examples = []
    for kind, event_type, data, path, confirm in _SAMPLES:
        raw = RawEvent(
            trace_id="tr_guide_example",
            type=event_type,
            occurred_at=_SAMPLE_AT,
            source="guide",
            data=data,
        )
        shown = redactor.redact(raw).fields.get(path, NOT_SHOWN)
        examples.append(MaskExample(kind, shown, confirm))
    return examples


@dataclass(frozen=True, slots=True)
class Guide:
    """Everything the guide page shows."""

    statuses: list[tuple[TraceStatus, str]]
    kinds: list[tuple[StepKind, str]]
    steps: list[tuple[StepState, str]]
    broken: list[tuple[BrokenLink, str]]
    masks: list[MaskExample]
    escalation: list[EscalationHint]
    stuck_after_minutes: int


def build_guide(redactor: Redactor, rules: EscalationRules, *, stuck_after_minutes: int) -> Guide:
    """The guide for the rules, redactor and stuck limit this server runs with."""
    return Guide(
        statuses=[(s, STATUS_NOTES[s]) for s in TraceStatus],
        kinds=[(k, KIND_NOTES[k]) for k in StepKind],
        steps=[(s, STEP_NOTES[s]) for s in StepState],
        broken=[(b, BROKEN_NOTES[b]) for b in BrokenLink],
        masks=mask_examples(redactor),
        escalation=describe_rules(rules, stuck_after_minutes=stuck_after_minutes),
        stuck_after_minutes=stuck_after_minutes,
    )
