"""Property: canary values planted anywhere in an event never reach the serialized output.

Each example is a batch of events (so one run covers well over 10,000 events quickly). Every
event gets one to four canaries (emails, phones, cards, IBANs, tokens, names, addresses, IPs)
planted at random: at paths no rule keeps (any depth, inside lists), in kept fields of every
operator, inside JSON that arrives as a string, in URLs, in error messages and codes, in the
envelope (source, ids). Names and addresses are planted in free text only after a key
(``name=``, ``"address":``): no pattern scanner can find a name in prose, and the rules never
keep prose that may hold one.
"""

from __future__ import annotations

import json
import random
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ingest.schema import RawEvent
from redaction_rules.engine import IdentifierError, Redactor, default_redactor
from redaction_rules.ruleset import PathNode
from tests.redaction.canaries import MAKERS, Canary, word

BATCH = 50
EXAMPLES = 220  # 11,000 events per run
REDACTOR: Redactor = default_redactor(b"property-test-key-0123456789")
PLANTED = {"events": 0}

TEMPLATES = [
    "{t}",
    "failed for {t} after 3 attempts",
    "<{t}>",
    "user={t}; retry",
    '{{"contact": "{t}", "n": 1}}',
    "see {t}.",
    "ref 7 {t} 42",
    "{t}\n  at com.example.Mailer.send(Mailer.java:42)",
]
KNOWN_TYPES = [
    "signup.submitted", "password_reset.requested", "login.succeeded", "login.failed",
    "plan.changed", "payment.submitted", "import.requested", "account.created",
    "signup_email.retry", "reset_email.sent", "email_job.bounced", "billing_job.failed",
    "import_job.progress", "webhook.attempt",
]  # fmt: skip
ALL_TYPES = [*KNOWN_TYPES, "user_create_v2", "crm.sync.finished"]
PLACEMENTS = ["dropped", "kept", "kept", "json_string", "url", "error", "envelope", "pair"]

ID_FIELDS = ("customer_id", "order_id", "request_id")


def kept_paths(event_type: str) -> list[tuple[list[str], str]]:
    """Every path the rules keep for a type, with its operator name."""
    rule = REDACTOR.rules.match(event_type)
    out: list[tuple[list[str], str]] = []

    def walk(node: PathNode, prefix: list[str]) -> None:
        if node.rule is not None:
            out.append((prefix, node.rule.operator.name))
        for key, child in node.children.items():
            walk(child, [*prefix, key])
        if node.items is not None:
            walk(node.items, [*prefix, "[*]"])

    if rule is not None:
        walk(rule.root, [])
    return out


def put(data: dict[str, Any], segments: list[str], value: Any, rnd: random.Random) -> None:
    """Set ``value`` at a path, creating objects and lists (at a random list position)."""
    if not segments:
        return
    head, rest = segments[0], segments[1:]
    if rest and rest[0] == "[*]":
        items: list[Any] = [{"row": 1}, "ok"][: rnd.randint(0, 2)]
        slot: dict[str, Any] = {}
        if rest[1:]:
            put(slot, rest[1:], value, rnd)
            items.insert(rnd.randint(0, len(items)), slot)
        else:
            items.insert(rnd.randint(0, len(items)), value)
        data[head] = items
    elif rest:
        child = data.get(head)
        if not isinstance(child, dict):
            child = data[head] = {}
        put(child, rest, value, rnd)
    else:
        data[head] = value


def prose(canary: Canary, rnd: random.Random) -> str:
    return rnd.choice(TEMPLATES).format(t=canary.text)


def plant(event: dict[str, Any], canary: Canary, placement: str, rnd: random.Random) -> None:
    data = event["data"]
    paths = kept_paths(event["type"])
    if placement == "kept" and paths:
        segments, operator = rnd.choice(paths)
        if operator == "mask_address" and rnd.random() < 0.5:
            value: Any = {"line1": canary.value, "postcode": canary.text, "city": "Lisbon"}
        elif (
            operator in ("mask_email", "mask_phone", "last4", "ip", "mask_name")
            or rnd.random() < 0.3
        ):
            value = canary.value if canary.kind not in ("name", "address") else canary.text
        else:
            value = prose(canary, rnd)
        put(data, segments, value, rnd)
    elif placement == "json_string":
        blob = json.dumps(
            {"note": prose(canary, rnd), "raw": [canary.value], word(rnd): canary.value}
        )
        segments = rnd.choice(paths)[0] if paths and rnd.random() < 0.5 else ["zz_" + word(rnd)]
        put(data, segments, blob, rnd)
    elif placement == "url":
        param = rnd.choice(["q", "ref", "next", "data", "email", "contact"])
        url = f"https://app.example.com/in?{param}={quote(canary.text, safe='')}&utm_source=x"
        if rnd.random() < 0.3:
            url = f"https://app.example.com/p/{quote(canary.text, safe='')}/view"
        text_paths = [p for p, op in paths if op in ("keep", "truncate")]
        put(data, rnd.choice(text_paths) if text_paths else ["zz_url"], url, rnd)
    elif placement == "error":
        code = rnd.choice(["NEW_ERROR", "PROVIDER_TIMEOUT", canary.text[:128]])
        event["error"] = {"code": code, "message": prose(canary, rnd)}
    elif placement == "envelope" and (canary.id_safe or len(canary.text) < 100):
        if canary.id_safe and rnd.random() < 0.6:
            field = rnd.choice(ID_FIELDS)
            event["subject"][field] = canary.value
        else:
            event["source"] = f"svc {canary.text}"
    else:  # dropped: a path no rule names, at any depth, maybe inside lists
        segments = ["zz_" + word(rnd)] + [word(rnd, 2, 4) for _ in range(rnd.randint(0, 4))]
        value = canary.value if rnd.random() < 0.5 else [1, {"v": canary.value}, canary.text]
        put(data, segments, value, rnd)


@st.composite
def planted_events(draw: st.DrawFn) -> tuple[dict[str, Any], list[Canary]]:
    rnd = draw(st.randoms(use_true_random=False))
    event: dict[str, Any] = {
        "trace_id": "tr_9c1f2a7b",  # fixed ids: generated words must not collide with them
        "type": draw(st.sampled_from(ALL_TYPES)),
        "occurred_at": "2026-11-26T10:12:15.120Z",
        "source": "mail-worker",
        "actor": draw(st.sampled_from(["customer", "system", None])),
        "subject": {"customer_id": "48291", "job_id": "job_9c1f"},
        "status": draw(st.sampled_from(["queued", "running", "done", "failed"])),
        "attempt": draw(st.integers(min_value=0, max_value=5)),
        "data": {"template": "signup_verification", "http_status": 503, "rows_total": 12000},
    }
    kinds = draw(st.lists(st.sampled_from(sorted(MAKERS)), min_size=1, max_size=4))
    canaries = []
    for kind in kinds:
        canary = MAKERS[kind](rnd)
        placement = draw(st.sampled_from(PLACEMENTS))
        if placement == "pair":  # two of a kind side by side in one kept text
            other = MAKERS[kind](rnd)
            canaries.append(other)
            canary = Canary(kind, canary.value, f"{canary.text} {other.text}", canary.forbidden)
            placement = "kept"
        plant(event, canary, placement, rnd)
        canaries.append(canary)
    return event, canaries


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    # No shrinking: batches are large, and the assertion already shows the canary, the
    # event and the output, which is what a failure needs.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=st.lists(planted_events(), min_size=BATCH, max_size=BATCH))
def check_batch(batch: list[tuple[dict[str, Any], list[Canary]]]) -> None:
    for event, canaries in batch:
        try:
            output = REDACTOR.redact(RawEvent.model_validate(event)).model_dump_json().lower()
        except IdentifierError as refused:  # an id holding one: refused, nothing shown
            assert any(event["subject"].get(f) == c.value for c in canaries for f in ID_FIELDS)
            output = str(refused).lower()  # the reason (a dead letter's) must not hold it

        for canary in canaries:
            for forbidden in canary.forbidden:
                assert forbidden.lower() not in output, (canary, forbidden, event, output)
    PLANTED["events"] += len(batch)


def test_when_canaries_are_planted_anywhere_then_none_reaches_the_output() -> None:
    PLANTED["events"] = 0
    check_batch()
    assert PLANTED["events"] >= 10_000
