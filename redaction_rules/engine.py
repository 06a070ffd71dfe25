"""The redaction engine: one raw event in, the timeline event support sees out.

``Redactor.redact`` is pure and deterministic for a given rule set and HMAC key. It is
fail-closed: ``data`` values survive only where a rule names them; unknown event types keep
the envelope (ids, type, times, status, attempt, error code) and a generic label. Every kept
string, envelope strings included, is scanned for PII and secrets. Ids are kept as they are
or the event is refused (``IdentifierError``): a masked id would merge records.

Typical use::

    redactor = default_redactor(settings.effective_hmac_key)
    timeline = redactor.redact(raw_event)
    token = redactor.lookup_key("Maria.Santos@gmail.com")   # matches timeline.lookup_keys
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from stdnum import iban

from ingest.schema import SCHEMA_VERSION, ErrorInfo, Lane, RawEvent, TimelineEvent
from redaction_rules import masks
from redaction_rules.credentials import JWT, PREFIXED, looks_random, mask_tokens
from redaction_rules.loader import load_rules
from redaction_rules.masks import SECRET
from redaction_rules.models import RuleError
from redaction_rules.numbers import NUMBER_RUN, mask_numbers
from redaction_rules.operators import ApplyContext, bounded_scan
from redaction_rules.ruleset import RuleSet, TypeRule
from redaction_rules.scanners import (
    SHORTEST_HIT,
    TextScanner,
    are_plain_ids,
    is_plain_id,
    mask_ipv6s,
)
from redaction_rules.walker import OperatorCache, Walk

__all__ = ["Redactor", "RuleError", "RuleSet", "default_redactor", "load_rules"]

_TRACEBACK = "Traceback (most recent call last)"
_SMALL_CACHE = 10_000
_SUMMARY_MAX_LEN = 1024
# rule, scanned type, its hits, label, label from attempt 2, lane (the default for no rule).
_TypeInfo = tuple[TypeRule | None, str, tuple[str, ...], str, str, Lane]
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


# What model_validate would record as set: every key the engine passes, which are all but
# the defaults (schema_version always; error_code/reason without an error; lookup_keys
# without emails or phones).
_ALWAYS_SET = frozenset(TimelineEvent.model_fields) - {
    "schema_version", "error_code", "reason", "lookup_keys"
}  # fmt: skip
_SETS = {
    (False, False): _ALWAYS_SET,
    (True, False): _ALWAYS_SET | {"error_code", "reason"},
    (False, True): _ALWAYS_SET | {"lookup_keys"},
    (True, True): _ALWAYS_SET | {"error_code", "reason", "lookup_keys"},
}
_ENGINE_FIELDS = (
    "schema_version", "event_id", "trace_id", "type", "label", "lane", "occurred_at", "source",
    "status", "attempt", "error_code", "reason", "customer_id", "workspace_id", "order_id",
    "job_id", "request_id", "fields", "field_rules", "lookup_keys", "dropped", "rules_version",
)  # fmt: skip


def _plain_model(model: type[BaseModel]) -> bool:
    """Whether validating ``model`` only checks types: no validators, constraints, aliases,
    private attributes or post-init that construction without validation would skip."""
    decorators = model.__pydantic_decorators__
    return (
        not decorators.validators
        and not decorators.field_validators
        and not decorators.root_validators
        and not decorators.model_validators
        and not model.__private_attributes__
        and model.__pydantic_post_init__ is None
        and model.model_config.get("extra") != "allow"
        and all(
            not info.metadata and info.alias is None and info.validation_alias is None
            for info in model.model_fields.values()
        )
    )


# The engine builds every value of a timeline event itself, with the declared types (mypy
# checks the operators; the envelope comes from a validated RawEvent), so validating them
# again only re-checked types and copied the dicts: a sixth of the time per event. The
# event is therefore put together as model_construct does, with the engine's dict used as
# it is. The shortcut is taken only while TimelineEvent has exactly the fields, in the
# order, the engine writes and nothing that validation would run (a schema change falls
# back to validation); a test checks that both ways give equal events and equal JSON.
_TRUSTED = tuple(TimelineEvent.model_fields) == _ENGINE_FIELDS and _plain_model(TimelineEvent)
_new_timeline = TimelineEvent.__new__
# The engine's dict of a timeline event starts as a copy of this one (all fields, in field
# order, values set after): cloning a dict's key table and replacing values cost less than
# building 22 new entries, which Python does as two dict literals merged into one.
_TIMELINE_TEMPLATE: dict[str, Any] = dict.fromkeys(_ENGINE_FIELDS)


def _setter(name: str) -> Any:
    """The ``__set__`` of the data descriptor that stores ``name`` on a TimelineEvent (the
    slot or ``__dict__`` that object.__setattr__ would find), or None without one."""
    for klass in TimelineEvent.__mro__:
        if name in klass.__dict__:
            return getattr(klass.__dict__[name], "__set__", None)
    return None


# What object.__setattr__ does for these four, without looking each descriptor up per event.
_set_dict, _set_fields_set, _set_extra, _set_private = (
    _setter("__dict__"),
    _setter("__pydantic_fields_set__"),
    _setter("__pydantic_extra__"),
    _setter("__pydantic_private__"),
)
_TRUSTED = _TRUSTED and None not in (_set_dict, _set_fields_set, _set_extra, _set_private)


def _timeline(values: dict[str, Any], error: bool, found: bool) -> TimelineEvent:
    """A TimelineEvent over ``values`` (all fields, in field order)."""
    if not _TRUSTED:
        return TimelineEvent.model_validate(values)
    event = _new_timeline(TimelineEvent)
    _set_dict(event, values)
    _set_fields_set(event, set(_SETS[error, found]))
    _set_extra(event, None)
    _set_private(event, None)
    return event


TOKEN_CHARS = 32


class IdentifierError(ValueError):
    """An id of the envelope holds what the scanner would mask (a phone or card number, a
    vendor key): ids are keys (dedup, lookups, links), so a masked id would merge records or
    lose events, and an unmasked one would show the value. The event is refused instead,
    with this reason, and kept as a dead letter."""

    def __init__(self, field: str, shown: str) -> None:
        super().__init__(
            f"{field} reads as personal data or a secret (it would show as {shown!r}); "
            "identifiers must be opaque ids"
        )


# A hash or GUID (24+ hex characters, prefixed or not, as derived event IDs, ObjectIds,
# digests and UUIDs are): its digit runs are chance.
_HASH_ID = re.compile(r"(?:[a-z]{1,8}_)?(?=[\da-fA-F\-]{24,}$)(?:[\da-f\-]+|[\dA-F\-]+)")
# Digit groups joined by the separators IDs may hold, read as one number wherever they stand
# ("tr_4155550134", "acc-4242424242424242", "415_555_0134"): in an ID a prefix is a label.
# Only numbers standing between separators (or the ends): digits glued to letters
# ("ev_leak12x0012345") are part of a word, as they are in free text.
_ID_NUMBER = re.compile(r"(?<![A-Za-z0-9])\d+(?:[_.\-]\d+)*(?![A-Za-z0-9])")


def id_problem(value: str) -> str | None:
    """What ``value`` would show as if it is no plain id: a vendor key or token anywhere in
    it, or a number in it that reads as a phone, card, IBAN or IP address (as the free-text scan
    reads numbers). ``None`` for an opaque id.

    Ids are random by nature (ULIDs, hashes, Stripe ids), so the random-token guess that free
    text gets applies only from the length of generated keys on (32), and digits in a hash
    (``ev_4f3db4252980576``) are chance, not a number someone wrote.
    """
    if is_plain_id(value) or (_HASH_ID.fullmatch(value) and not iban.is_valid(value)):
        return None  # ("DE89..." is all hex characters too)
    if len(value) >= 15 and (PREFIXED.search(value) or JWT.search(value)):
        return mask_tokens(value)
    if len(value) >= 32 and looks_random(value):  # as long as a generated key, and as random
        return SECRET
    if ":" in value:
        shown = mask_ipv6s(value)
        if shown != value:
            return shown
    for match in _ID_NUMBER.finditer(value):
        number = match.group(0)
        # Groups joined by "-" or "." are read in context below ("ord-2024-000123" is an
        # order number, as it is in free text); one group, or groups joined by "_", alone.
        # A leading zero is a zero-padded counter ("job_09930010"), not a national number.
        if "-" in number or "." in number or number.startswith("0"):
            continue
        if sum(c.isdigit() for c in number) < 7:
            continue
        # Alone, with "_" read as the separator it stands for, as free text would show it.
        alone = f" {number.replace('_', '-')} "
        shown = mask_numbers(alone, [])
        if shown != alone:
            return value[: match.start()] + shown.strip() + value[match.end() :]
    run = NUMBER_RUN.search(value)
    if run is not None:  # and as the free-text scan reads them in the ID's context
        shown = mask_numbers(value, [], run)
        if shown != value:
            return shown
    return None


def _lookup_identity(value: str, region: str) -> str | None:
    """What a lookup token is computed over: ``email:<normalized>`` or ``phone:<E.164>``."""
    text = value.strip()
    parts = masks.split_email(text)
    if parts is not None:
        return "email:" + masks.normalize_email(*parts)
    if "@" in text or sum(c.isdigit() for c in text) < 7:
        return None
    if text.startswith("00"):  # the international prefix dialled instead of "+"
        text = "+" + text[2:]
    number = masks.parse_phone(text, region)
    if number is None:
        return None
    return "phone:" + masks.normalize_phone(number)


def _token_under(key: bytes, identity: str) -> str:
    return hmac.new(key, identity.encode(), hashlib.sha256).hexdigest()[:TOKEN_CHARS]


class Redactor:
    """Applies a ``RuleSet`` to raw events.

    Thread-safe: per-event state lives in a ``Walk``; what is shared are bounded caches of
    pure results (scanned strings, operator outputs, lookup tokens), which only make repeated
    values cheaper and never change an output.
    """

    def __init__(
        self, rules: RuleSet, hmac_key: bytes, previous_keys: Sequence[bytes] = ()
    ) -> None:
        if not hmac_key or not all(previous_keys):
            raise ValueError("hmac_key and previous_keys must not be empty")
        self.rules = rules
        self._key = hmac_key
        # Keys retired by rotations: never used to write, only to find what they wrote.
        self._previous = tuple(previous_keys)
        self._scanner = TextScanner()
        self._cache = OperatorCache()
        self._mac = hmac.new(hmac_key, digestmod=hashlib.sha256)
        self._tokens: dict[str, str] = {}
        # Per event type: its rule, the scanned type with its hits, its labels and lane (for
        # the rule set in ``_types_of``: a new one assigned to ``rules`` starts afresh).
        self._types: dict[str, _TypeInfo] = {}
        self._types_of = rules
        # Ids found to be opaque (checked once: every event of a trace repeats its ids).
        self._plain_ids: set[str] = set()
        # Shown lines of recent error messages: a failing job repeats its message per retry.
        self._summaries: dict[str, str] = {}

    def __reduce__(self) -> tuple[type[Redactor], tuple[RuleSet, bytes, tuple[bytes, ...]]]:
        # Pickled as its rules and keys (the HMAC state and caches are rebuilt), so a process
        # pool can run the same redactor in worker processes.
        return (Redactor, (self.rules, self._key, self._previous))

    @property
    def version(self) -> str:
        """Content hash of the rule set; stored on every timeline event."""
        return self.rules.version

    def _token(self, identity: str) -> str:
        token = self._tokens.get(identity)
        if token is None:
            mac = self._mac.copy()  # copying the keyed state skips the key schedule
            mac.update(identity.encode())
            token = mac.hexdigest()[:TOKEN_CHARS]
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
        identity = _lookup_identity(value, region)
        return None if identity is None else self._token(identity)

    def lookup_keys(self, value: str, region: str = "US") -> list[str]:
        """``lookup_key`` under the current key, then under each previous one (rotation):
        events keep the token of the key they were stored with. Empty if ``value`` is not an
        email or phone number."""
        identity = _lookup_identity(value, region)
        if identity is None:
            return []
        retired = [_token_under(key, identity) for key in self._previous]
        return [self._token(identity), *retired]

    def _reason(
        self, code: str | None, message: str | None, known_type: bool, ctx: ApplyContext
    ) -> str | None:
        if code:
            reason = self.rules.reason_for_code(code)
            if reason is not None:
                return reason
        if not known_type or not message:
            # Unknown types keep the envelope only: their free text is never shown.
            return None
        line = self._summaries.get(message)
        if line is None:
            line = summarize_message(message)
            if len(message) <= _SUMMARY_MAX_LEN:  # long messages rarely repeat: not kept
                if len(self._summaries) >= _SMALL_CACHE:
                    self._summaries.clear()
                self._summaries[message] = line
        limit = self.rules.defaults.reason_max_chars
        return bounded_scan(line, limit, self._scanner, ctx.found) or None

    def redact(self, raw: RawEvent) -> TimelineEvent:
        """Redact, label and place one event on its lane; see the module docstring."""
        return self._redact(raw, Walk(self._scanner, self._key, self._cache, 0))

    def dropped_paths(self, raw: RawEvent) -> list[tuple[str, str]]:
        """``(path, why)`` for every ``data`` value the rules drop (``items[*].sku`` form)."""
        walk = Walk(self._scanner, self._key, self._cache, 0, explain=True)
        self._redact(raw, walk)
        return list(walk.drops or [])

    def _type_info(self, event_type: str) -> _TypeInfo:
        rule = self.rules.match(event_type)
        hits: list[str] = []
        scanned = self._scanner.scan(event_type, hits)
        if rule is None:
            info: _TypeInfo = (None, scanned, tuple(hits), "", "", self.rules.defaults.lane)
        else:
            first, retry = rule.label_for(event_type, None), rule.label_for(event_type, 2)
            info = (rule, scanned, tuple(hits), first, retry, rule.lane)
        if len(self._types) >= _SMALL_CACHE:  # types are few; junk types must not grow it
            self._types.clear()
        self._types[event_type] = info
        return info

    def _check_id(self, field: str, value: str) -> None:
        """Raise ``IdentifierError`` if ``value`` is no opaque id (see ``id_problem``)."""
        if value in self._plain_ids:
            return
        problem = id_problem(value)
        if problem is not None:
            raise IdentifierError(field, problem)
        if len(self._plain_ids) >= _SMALL_CACHE:
            self._plain_ids.clear()
        self._plain_ids.add(value)  # every event of a trace, job or customer repeats its ids

    def _redact(self, raw: RawEvent, walk: Walk) -> TimelineEvent:
        rules = self.rules
        # A pydantic model keeps its field values in __dict__: reading them from there skips
        # BaseModel's __getattr__ hook, which every attribute read of a model goes through.
        envelope = raw.__dict__
        event_type: str = envelope["type"]
        if rules is not self._types_of:
            self._types, self._types_of = {}, rules
        info = self._types.get(event_type)
        if info is None:
            info = self._type_info(event_type)
        rule, type_text, type_hits, label, retry_label, lane = info
        found = walk.found
        data = envelope["data"]
        if data:
            walk.max_fields = rules.defaults.max_fields
            if rule is not None:
                walk._walk_object(data, rule.root, "", 0)  # Walk.run, one call less
            else:
                walk.run(data, None)
        attempt: int | None = envelope["attempt"]
        if rule is None:
            defaults = rules.defaults
            if envelope["actor"]:
                lane = Lane(envelope["actor"])
            label = defaults.customer_label if lane is Lane.CUSTOMER else defaults.system_label
        elif attempt is not None and attempt >= 2:
            label = retry_label
        if type_hits:
            found.extend(type_hits)
        scan = self._scanner.scan
        # Envelope strings and ids are scanned too: a service may put anything in them.
        # (Ids are mostly plain prefixed ids: the check scan() starts with, done here first.)
        source: str = envelope["source"]
        if len(source) <= 128:  # always, for a validated event: bounded_scan inlined
            source = scan(source, found)
            if len(source) > 128:
                source = source[:127].rstrip() + "…"
        else:
            source = bounded_scan(source, 128, self._scanner, found)
        event_id: str = envelope["event_id"] or raw.with_event_id().event_id or ""
        subject = envelope["subject"].__dict__
        customer_id, workspace_id = subject["customer_id"], subject["workspace_id"]
        order_id, job_id, request_id = subject["order_id"], subject["job_id"], subject["request_id"]
        # Ids are shown as they are or the event is refused: a masked id would merge records.
        if not (job_id and are_plain_ids(event_id, job_id)):  # both plain: nothing to check
            self._check_id("event_id", event_id)
            if job_id:
                self._check_id("subject.job_id", job_id)
        error: ErrorInfo | None = envelope["error"]
        error_code = reason = None
        if error is not None:
            error_fields = error.__dict__  # as for the envelope: no __getattr__ hook per read
            code: str | None = error_fields["code"]
            error_code = code and scan(code, found)
            reason = self._reason(code, error_fields["message"], rule is not None, walk)
        trace_id: str = envelope["trace_id"]
        if trace_id not in self._plain_ids:
            self._check_id("trace_id", trace_id)
        # Numeric customer ids are often shorter than any phone or card number.
        if customer_id and len(customer_id) >= SHORTEST_HIT:
            self._check_id("subject.customer_id", customer_id)
        if workspace_id:
            self._check_id("subject.workspace_id", workspace_id)
        if order_id:
            self._check_id("subject.order_id", order_id)
        if request_id:
            self._check_id("subject.request_id", request_id)
        lookup_keys: list[str] = []
        if found:
            # Usually every identity already has its token (a customer's email recurs in all
            # their events): one C-level pass, no loop. Tokens are never None, so without a
            # None in the set every identity had one (and the set holds only tokens).
            tokens: set[Any] = set(map(self._tokens.get, found))
            lookup_keys = self._lookup_keys(found) if None in tokens else sorted(tokens)
        # Every field of TimelineEvent, in its order (the template's; see _timeline).
        values = _TIMELINE_TEMPLATE.copy()
        values["schema_version"] = SCHEMA_VERSION
        values["event_id"] = event_id
        values["trace_id"] = trace_id
        values["type"] = type_text
        values["label"] = label
        values["lane"] = lane
        values["occurred_at"] = envelope["occurred_at"]
        values["source"] = source
        values["status"] = envelope["status"]
        values["attempt"] = attempt
        values["error_code"] = error_code
        values["reason"] = reason
        values["customer_id"] = customer_id
        values["workspace_id"] = workspace_id
        values["order_id"] = order_id
        values["job_id"] = job_id
        values["request_id"] = request_id
        values["fields"] = walk.fields
        values["field_rules"] = walk.field_rules
        values["lookup_keys"] = lookup_keys
        values["dropped"] = walk.dropped
        values["rules_version"] = rules.version
        return _timeline(values, error is not None, bool(found))

    def _lookup_keys(self, found: list[str]) -> list[str]:
        tokens = self._tokens
        keys = set()
        for identity in set(found):  # one customer's email is often found several times
            token = tokens.get(identity)
            keys.add(token if token is not None else self._token(identity))
        return sorted(keys)


def default_redactor(hmac_key: bytes) -> Redactor:
    """A redactor over the packaged default rules (``redaction_rules/rules/*.yaml``)."""
    return Redactor(load_rules(), hmac_key)
