"""The engine's shortcuts never change an output: shared operators and per-operator caches."""

from __future__ import annotations

from typing import Any

from ingest.schema import RawEvent
from redaction_rules.engine import Redactor, load_rules
from redaction_rules.ruleset import PathNode

KEY = b"cache-test-key-0123456789"


def _rule_operator(root: PathNode, *path: str) -> object:
    node = root
    for segment in path:
        node = node.children[segment]
    assert node.rule is not None
    return node.rule.operator


def _event(event_type: str, data: dict[str, Any]) -> RawEvent:
    return RawEvent.model_validate(
        {
            "trace_id": "tr_9c1f2a7b",
            "type": event_type,
            "occurred_at": "2026-11-26T10:12:15.120Z",
            "source": "import-worker",
            "data": data,
        }
    )


def test_when_rules_name_the_same_operator_and_params_then_they_share_one_instance() -> None:
    rules = load_rules()
    signup = rules.match("signup.submitted")
    login = rules.match("login.failed")
    billing = rules.match("billing_job.retry")
    assert signup is not None and login is not None and billing is not None
    # mask_email without params on both rules: one operator, one cache table.
    assert _rule_operator(signup.root, "email") is _rule_operator(login.root, "email")
    # truncate 160 and truncate 40 differ, and so do their operators.
    ua = _rule_operator(signup.root, "user_agent")
    assert ua is _rule_operator(billing.root, "gateway_response")
    assert ua is not _rule_operator(billing.root, "gateway")


def test_when_scalars_are_equal_but_of_other_types_then_each_keeps_its_own_text() -> None:
    redactor = Redactor(load_rules(), KEY)
    values: list[Any] = [True, 1, "1", 1.0, 0.0, -0.0, False, 0, None]
    expected = ["true", "1", "1", "1.0", "0.0", "-0.0", "false", "0", "null"]
    # The same redactor (and cache) sees each value in turn, in both orders.
    for order in (values, values[::-1]):
        seen = [
            redactor.redact(_event("import_job.progress", {"rows_total": v})).fields["rows_total"]
            for v in order
        ]
        assert seen == (expected if order is values else expected[::-1])


def test_when_a_cached_result_comes_from_another_rule_then_lookup_keys_are_still_found() -> None:
    redactor = Redactor(load_rules(), KEY)
    email = "Maria.Santos@gmail.com"
    first = redactor.redact(_event("signup.submitted", {"email": email}))
    again = redactor.redact(_event("login.failed", {"email": email}))  # a cache hit
    token = redactor.lookup_key(email)
    assert first.lookup_keys == again.lookup_keys == [token]
    assert first.fields["email"] == again.fields["email"] == "M****.S*****@gmail.com"


def test_when_the_cache_fills_up_then_it_starts_afresh_and_outputs_stay_the_same(
    monkeypatch: Any,
) -> None:
    from redaction_rules import walker

    monkeypatch.setattr(walker, "_CACHE_SIZE", 3)
    redactor = Redactor(load_rules(), KEY)
    outputs = []
    for round_ in range(2):
        for n in range(10):
            event = _event("import_job.progress", {"file_name": f"contacts-{n}.csv"})
            outputs.append((round_, n, redactor.redact(event).fields["file_name"]))
        assert redactor._cache.size <= 3
    # File names are masked like names (they carry them), extension kept: "c*******-3.csv".
    assert [text for _, _, text in outputs] == [f"c*******-{n}.csv" for n in range(10)] * 2
