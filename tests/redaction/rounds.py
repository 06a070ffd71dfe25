"""The event the adversarial redaction rounds send (``test_redaction_round*.py``).

Each round fixes a source, subject and the failure type whose reason and webhook body it
reads (``Flow``); every helper goes through ``process``, the path a collector runs (parse,
validate, redact), and fails the test unless the event is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ingest.process import Accepted, process
from ingest.schema import TimelineEvent
from redaction_rules.engine import Redactor, load_rules

KEY = b"k" * 32


def default_redactor() -> Redactor:
    """The default rules with the rounds' key."""
    return Redactor(load_rules(), KEY)


@dataclass(frozen=True)
class Flow:
    """What one round's events have in common."""

    source: str
    failure: str  # the type whose error reason support reads (``reason``)
    subject: dict[str, str] = field(default_factory=dict)

    def event(self, event_type: str, data: dict[str, Any], **envelope: Any) -> bytes:
        """The raw event as a service sends it."""
        raw: dict[str, Any] = {
            "event_id": "ev_7emwvjugyjf5d3kzan2a",
            "trace_id": "tr_9c1f2a7b",
            "type": event_type,
            "occurred_at": "2026-11-26T10:12:15Z",
            "source": self.source,
            "data": data,
        }
        if self.subject:
            raw["subject"] = self.subject
        return orjson.dumps({**raw, **envelope})

    def redact(
        self, redactor: Redactor, event_type: str, data: dict[str, Any], **envelope: Any
    ) -> TimelineEvent:
        """The timeline event support sees."""
        result = process(self.event(event_type, data, **envelope), redactor)
        assert isinstance(result, Accepted), result
        return result.timeline

    def reason(self, redactor: Redactor, message: str) -> str:
        """What support reads for a failure whose code has no reason of its own."""
        error = {"code": "E_UNKNOWN", "message": message}
        return self.redact(redactor, self.failure, {}, error=error).reason or ""

    def body(self, redactor: Redactor, text: str) -> str:
        """A webhook's response body as support sees it (kept with truncate)."""
        event = self.redact(redactor, "webhook.failed", {"response_body": text})
        return event.fields["response_body"]
