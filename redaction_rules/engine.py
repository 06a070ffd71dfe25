"""The redaction engine: one raw event in, the timeline event support sees out.

``Redactor.redact`` is pure and deterministic for a given rule set and HMAC key. It is
fail-closed: ``data`` values survive only where a rule names them; unknown event types keep
the envelope (ids, type, times, status, attempt, error code) and a generic label. Every kept
string, envelope strings and ids included, is scanned for PII and secrets.

Typical use::

    redactor = default_redactor(settings.effective_hmac_key)
    timeline = redactor.redact(raw_event)
    token = redactor.lookup_key("Maria.Santos@gmail.com")   # matches timeline.lookup_keys
"""

from __future__ import annotations

import hashlib
import hmac
import re

from ingest.schema import ErrorInfo, Lane, RawEvent, TimelineEvent
from redaction_rules import masks
from redaction_rules.loader import load_rules
from redaction_rules.models import RuleError
from redaction_rules.operators import ApplyContext, bounded_scan
from redaction_rules.ruleset import RuleSet
from redaction_rules.scanners import TextScanner
from redaction_rules.walker import OperatorCache, Walk

__all__ = ["Redactor", "RuleError", "RuleSet", "default_redactor", "load_rules"]

_TRACEBACK = "Traceback (most recent call last)"
# Lines that are stack frames in Python, Java, Node, Go and gdb-style traces.
_FRAME = re.compile(
    r'(?:File "|at [\w$.<>\[\]]+ ?\(|at /\S+:\d+|#\d+ |goroutine \d+|\^+$|~+$|Traceback \()'
)


def summarize_message(message: str) -> str:
    """The line of an error message worth showing: the first one that is not a stack frame,
    or for a Python traceback the exception line at its end. Frames are never shown."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if lines and lines[0].startswith(_TRACEBACK):
        lines.reverse()
    return next((line for line in lines if not _FRAME.match(line)), "")


class Redactor:
    """Applies a ``RuleSet`` to raw events.

    Thread-safe: per-event state lives in a ``Walk``; what is shared are bounded caches of
    pure results (scanned strings, operator outputs, lookup tokens), which only make repeated
    values cheaper and never change an output.
    """

    def __init__(self, rules: RuleSet, hmac_key: bytes) -> None:
        if not hmac_key:
            raise ValueError("hmac_key must not be empty")
        self.rules = rules
        self._key = hmac_key
        self._scanner = TextScanner()
        self._cache: OperatorCache = {}
        self._mac = hmac.new(hmac_key, digestmod=hashlib.sha256)
        self._tokens: dict[str, str] = {}

    def __reduce__(self) -> tuple[type[Redactor], tuple[RuleSet, bytes]]:
        # Pickled as its rules and key (the HMAC state and caches are rebuilt), so a process
        # pool can run the same redactor in worker processes.
        return (Redactor, (self.rules, self._key))

    @property
    def version(self) -> str:
        """Content hash of the rule set; stored on every timeline event."""
        return self.rules.version

    def _token(self, identity: str) -> str:
        token = self._tokens.get(identity)
        if token is None:
            mac = self._mac.copy()  # copying the keyed state skips the key schedule
            mac.update(identity.encode())
            token = mac.hexdigest()[:32]
            if len(self._tokens) >= 50_000:
                self._tokens.clear()
            self._tokens[identity] = token  # a customer's email recurs in all their events
        return token

    def lookup_key(self, value: str, region: str = "US") -> str | None:
        """HMAC token for an email or phone number typed by support, or None if it is neither.

        Normalized the same way as values seen in events (lower-cased email without plus tag,
        E.164 phone; numbers without ``+`` read in ``region``), so the token equals an entry
        of ``TimelineEvent.lookup_keys``.
        """
        text = value.strip()
        parts = masks.split_email(text)
        if parts is not None:
            return self._token("email:" + masks.normalize_email(*parts))
        if "@" in text or sum(c.isdigit() for c in text) < 7:
            return None
        number = masks.parse_phone(text, region)
        if number is None:
            return None
        return self._token("phone:" + masks.normalize_phone(number))

    def _reason(self, error: ErrorInfo, known_type: bool, ctx: ApplyContext) -> str | None:
        if error.code:
            reason = self.rules.reason_for_code(error.code)
            if reason is not None:
                return reason
        if not known_type or not error.message:
            # Unknown types keep the envelope only: their free text is never shown.
            return None
        line = summarize_message(error.message)
        limit = self.rules.defaults.reason_max_chars
        return bounded_scan(line, limit, self._scanner, ctx.found) or None

    def redact(self, raw: RawEvent) -> TimelineEvent:
        """Redact, label and place one event on its lane; see the module docstring."""
        return self._redact(raw, Walk(ApplyContext(self._scanner, self._key), self._cache, 0))

    def dropped_paths(self, raw: RawEvent) -> list[tuple[str, str]]:
        """``(path, why)`` for every ``data`` value the rules drop (``items[*].sku`` form)."""
        walk = Walk(ApplyContext(self._scanner, self._key), self._cache, 0, explain=True)
        self._redact(raw, walk)
        return list(walk.drops or [])

    def _redact(self, raw: RawEvent, walk: Walk) -> TimelineEvent:
        rules = self.rules
        rule = rules.match(raw.type)
        found = walk.ctx.found
        walk.max_fields = rules.defaults.max_fields
        walk.run(raw.data, rule.root if rule is not None else None)
        if rule is not None:
            label, lane = rule.label_for(raw.type, raw.attempt), rule.lane
        else:
            lane = Lane(raw.actor) if raw.actor else rules.defaults.lane
            defaults = rules.defaults
            label = defaults.customer_label if lane is Lane.CUSTOMER else defaults.system_label
        scan = self._scanner.scan
        subject = raw.subject  # attribute access: iterating a pydantic model is slow
        # Envelope strings and ids are scanned too: a service may put anything in them.
        values: dict[str, object] = {
            "event_id": scan(raw.event_id or raw.with_event_id().event_id or "", found),
            "trace_id": scan(raw.trace_id, found),
            "type": scan(raw.type, found),
            "label": label,
            "lane": lane,
            "occurred_at": raw.occurred_at,
            "source": bounded_scan(raw.source, 128, self._scanner, found),
            "status": raw.status,
            "attempt": raw.attempt,
            "customer_id": subject.customer_id and scan(subject.customer_id, found),
            "workspace_id": subject.workspace_id and scan(subject.workspace_id, found),
            "order_id": subject.order_id and scan(subject.order_id, found),
            "job_id": subject.job_id and scan(subject.job_id, found),
            "request_id": subject.request_id and scan(subject.request_id, found),
            "fields": walk.fields,
            "field_rules": walk.field_rules,
            "dropped": walk.dropped,
            "rules_version": rules.version,
        }
        error = raw.error
        if error is not None:
            values["error_code"] = error.code and scan(error.code, found)
            values["reason"] = self._reason(error, rule is not None, walk.ctx)
        if found:
            values["lookup_keys"] = sorted({self._token(identity) for identity in found})
        return TimelineEvent.model_validate(values)


def default_redactor(hmac_key: bytes) -> Redactor:
    """A redactor over the packaged default rules (``redaction_rules/rules/*.yaml``)."""
    return Redactor(load_rules(), hmac_key)
