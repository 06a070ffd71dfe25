"""The scanner's and engine's shortcuts give what the plain path gives, on random input.

Each shortcut is checked two ways: on inputs that pass its cheap test the full work still
runs (and still masks), and on random strings the result equals the unshortened path's.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.process import Rejected, process
from ingest.schema import RawEvent
from redaction_rules import keyvalues, scanners
from redaction_rules.engine import Redactor, load_rules, summarize_message
from redaction_rules.masks import mask_email_parts, normalize_email
from redaction_rules.numbers import NUMBER_RUN, mask_numbers
from redaction_rules.operators import ApplyContext
from redaction_rules.operators.base import NoParams, as_text
from redaction_rules.operators.generic import Keep
from redaction_rules.scanners import SHORTEST_HIT, TextScanner, is_plain_id

KEY = b"fastpath-test-key-0123456789"
# Characters that make keys, separators, quotes, escapes, digits, emails and URLs.
KV_ALPHABET = "ab_-Z9 \t\"'\\:=x.,;&/?%@+"
TEXT_ALPHABET = "ab_-Z09 7\t\"'\\:=x.,;&/?%@+()#<>AKtoken"
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def _key_before_loop(text: str, end: int, floor: int) -> str:
    """The former character loop mask_key_values read keys with: the reference."""
    index = end - 1
    while index >= floor and text[index] in " \t":
        index -= 1
    if index >= floor and text[index] in "\"'":
        index -= 1
        if index >= floor and text[index] == "\\":
            index -= 1
    stop = index
    while index >= floor and stop - index < 40 and text[index] in _KEY_CHARS:
        index -= 1
    return text[index + 1 : stop + 1]


def _mask_key_values_reference(text: str) -> str:
    """mask_key_values as it was: a regex iterator over separators, keys read by the loop."""
    kv = keyvalues
    out: list[str] = []
    last = 0
    for sep in re.finditer(r"[:=]", text):
        start = sep.start()
        if start < last:
            continue
        key = kv.normal_key(_key_before_loop(text, start, last))
        if not key:
            continue
        secret = kv.is_secret_key(key)
        if not secret and not kv.is_personal_key(key):
            continue
        if key == "name" and "form-data" in text[max(0, start - 20) : start]:
            continue
        after = sep.end() + (1 if sep.group(0) == "=" and text.startswith(">", sep.end()) else 0)
        value_match = kv._QUOTED_VALUE.match(text, after)
        if value_match is None and key in kv._WHOLE_LINE_KEYS:
            value_match = kv._WHOLE_LINE.match(text, after)
        if value_match is None and secret and text.startswith(("(", "[", " (", " ["), after):
            value_match = kv._TUPLE_VALUE.match(text, after)
        if value_match is None:
            bare = kv._SECRET_BARE if secret else kv._PERSONAL_BARE
            value_match = bare.match(text, after)
        if value_match is None:
            continue
        group = value_match.lastindex or 1
        raw_value = value_match.group(group) or ""
        value = raw_value.strip()
        if not value or value in kv._MARKERS or (not secret and "**" in value):
            continue
        v_start = value_match.start(group) + len(raw_value) - len(raw_value.lstrip())
        out.append(text[last:v_start])
        out.append(kv.SECRET if secret else kv.REDACTED)
        last = v_start + len(value)
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _mask_numbers_reference(text: str, found: list[str]) -> str:
    """mask_numbers over finditer, as it was (the new one searches run by run)."""
    from redaction_rules import numbers as n

    out: list[str] = []
    last = 0
    for match in NUMBER_RUN.finditer(text):
        start, end = match.span()
        if end <= last:
            continue
        for head in n._IBAN_START.finditer(text, max(last, start - 12), start + 2):
            iban = n._iban_at(text, head.start())
            if iban is not None:
                out.append(text[last : head.start()])
                out.append(iban[1])
                last = iban[0]
                break
        if start < last:
            start = last
            while start < end and not text[start].isdigit():
                start += 1
            if start >= end:
                continue
        if text.count(".", start, end) < 3 and sum(map(str.isdigit, text[start:end])) < 7:
            continue
        opener = text[start - 1] if start > last else ""
        if opener == "+" or (opener == "(" and ")" in text[start:end]):
            start -= 1
        masked = n._mask_run(text, start, end, found)
        if masked != text[start:end]:
            out.append(text[last:start])
            out.append(masked)
            last = end
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


# --- key=value: keys read on the reversed text -------------------------------------------


@settings(max_examples=3000, deadline=None)
@given(st.text(KV_ALPHABET, max_size=70), st.data())
def test_when_keys_are_read_backwards_by_regex_then_they_equal_the_character_loop(
    text: str, data: st.DataObject
) -> None:
    end = data.draw(st.integers(0, len(text)))
    floor = data.draw(st.integers(0, end))
    size = len(text)
    match = keyvalues._KEY_BACKWARDS.match(text[::-1], size - end, size - floor)
    assert match is not None
    assert match.group(1)[::-1] == _key_before_loop(text, end, floor)


@settings(max_examples=3000, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(KV_ALPHABET, max_size=12),
            st.sampled_from(
                ["password", "token", "name", "Api-Key", "x" * 45 + "_token", '\\"', " ", "="]
            ),
        ),
        max_size=10,
    )
)
def test_when_key_values_are_masked_then_the_output_equals_the_former_loop(
    parts: list[str],
) -> None:
    text = "".join(parts)
    assert keyvalues.mask_key_values(text) == _mask_key_values_reference(text)


def test_when_a_key_is_long_or_escaped_or_after_a_masked_value_then_it_is_still_found() -> None:
    cases = {
        "password=hunter2": "password=[secret]",
        '{\\"token\\": \\"abc\\"}': '{\\"token\\": \\"[secret]\\"}',
        "x" * 50 + "_token: abc": "x" * 50 + "_token: [secret]",
        "name=Maria Santos password=pw1": "name=[redacted] password=[secret]",
        "https://a.example/c?session=abc": "https://a.example/c?session=[secret]",
    }
    for text, expected in cases.items():
        assert keyvalues.mask_key_values(text) == expected
        assert _mask_key_values_reference(text) == expected


# --- numbers: run by run with search, the caller's first match reused ---------------------


@settings(max_examples=3000, deadline=None)
@given(st.text(TEXT_ALPHABET + "DE89370400440532013000 4242 +44 20 7946 0958", max_size=80))
def test_when_numbers_are_masked_run_by_run_then_the_output_equals_finditer(text: str) -> None:
    found_new: list[str] = []
    found_first: list[str] = []
    found_ref: list[str] = []
    expected = _mask_numbers_reference(text, found_ref)
    assert mask_numbers(text, found_new) == expected
    first = NUMBER_RUN.search(text)
    assert mask_numbers(text, found_first, first) == expected
    assert found_new == found_first == found_ref


def test_when_numbers_follow_an_iban_or_each_other_then_each_is_still_masked() -> None:
    found: list[str] = []
    text = "iban DE89 3704 0044 0532 0130 00 card 4242424242424242 call +44 20 7946 0958"
    masked = mask_numbers(text, found, NUMBER_RUN.search(text))
    assert masked == _mask_numbers_reference(text, [])
    assert "4242424242424242" not in masked and "7946" not in masked and "0532" not in masked
    assert found == ["phone:+442079460958"]


# --- scanner pre-checks -------------------------------------------------------------------


@settings(max_examples=2000, deadline=None)
@given(st.text(TEXT_ALPHABET, max_size=30))
def test_when_text_has_no_underscore_then_it_is_never_a_plain_id(text: str) -> None:
    # scan() skips is_plain_id without a "_": the full scan then runs (never less scanning).
    if "_" not in text:
        assert not is_plain_id(text)
        assert scanners._PLAIN_ID.fullmatch(text) is None


@settings(max_examples=2000, deadline=None)
@given(st.text(TEXT_ALPHABET, max_size=SHORTEST_HIT - 1))
def test_when_text_is_shorter_than_the_shortest_hit_then_scan_returns_it_as_is(
    text: str,
) -> None:
    found: list[str] = []
    assert TextScanner()._scan(text, found, 0) == text
    assert found == []


def test_when_an_id_or_number_reaches_the_shortest_hit_then_it_is_scanned() -> None:
    scanner = TextScanner()
    # Ids with a "_" still go through is_plain_id, and what is not plain is scanned.
    assert scanner.scan("ref_4242424242424242") == "ref_**** 4242"
    assert scanner.scan("user_maria@gmail.com") == "u***_m****@gmail.com"
    assert scanner.scan("tok_ghp_abcdefghijklmnopqrstuvwxyz0123") == "tok_[secret]"
    found: list[str] = []
    ctx = ApplyContext(scanner, KEY, found)
    keep = Keep(NoParams())
    assert keep.apply(4242424242424242, ctx) == "**** 4242"
    assert keep.apply(14155550134, ctx) != "14155550134"
    assert found  # the phone went to the lookup keys


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.integers(), st.integers(-(10**20), 10**20), st.booleans()))
def test_when_keep_gets_an_integer_then_it_equals_scanning_its_text(value: Any) -> None:
    found_fast: list[str] = []
    found_slow: list[str] = []
    fast = Keep(NoParams()).apply(value, ApplyContext(TextScanner(), KEY, found_fast))
    slow = ApplyContext(TextScanner(), KEY, found_slow).scan(as_text(value))
    assert fast == slow
    assert found_fast == found_slow


# --- cached results -----------------------------------------------------------------------


@settings(max_examples=1000, deadline=None)
@given(
    st.text("abAB.%+_-09", min_size=1, max_size=20),
    st.sampled_from(["gmail.com", "Example.CO.uk", "mail.acme-corp.com"]),
)
def test_when_an_email_recurs_then_its_cached_mask_and_identity_are_the_computed_ones(
    local: str, domain: str
) -> None:
    from urllib.parse import unquote

    for _ in range(2):  # computed, then from the cache
        mask, identity = scanners._email_facts(local, domain)
        plain = unquote(local) if "%" in local else local
        assert mask == mask_email_parts(local, domain)
        assert identity == "email:" + normalize_email(plain, domain)


def test_when_two_emails_differ_only_in_case_or_tag_then_each_keeps_its_own_mask() -> None:
    scanner = TextScanner()
    found: list[str] = []
    text = "to Maria.Santos@gmail.com and maria.santos+shop@gmail.com"
    masked = scanner.scan(text, found)
    assert masked == "to M****.S*****@gmail.com and m****.s*****+s***@gmail.com"
    assert found == ["email:maria.santos@gmail.com", "email:maria.santos@gmail.com"]


def _event(message: str, code: str = "ORDER_HOLD") -> RawEvent:
    return RawEvent.model_validate(
        {
            "trace_id": "tr_9c1f2a7b",
            "type": "billing_job.failed",
            "occurred_at": "2026-11-26T10:12:15.120Z",
            "source": "billing-worker",
            "data": {},
            "error": {"code": code, "message": message},
        }
    )


def test_when_an_error_message_repeats_then_its_reason_and_lookup_keys_repeat() -> None:
    redactor = Redactor(load_rules(), KEY)
    first = "card 4242424242424242 declined for maria@gmail.com\nTraceback (most recent"
    other = 'Traceback (most recent call last):\n  File "x.py"\nValueError: bad ana@proton.me'
    seen = [redactor.redact(_event(m)) for m in (first, other, first, other)]
    assert seen[0].reason == seen[2].reason == "card **** 4242 declined for m****@gmail.com"
    assert seen[1].reason == seen[3].reason == "ValueError: bad a**@proton.me"
    assert seen[0].lookup_keys == seen[2].lookup_keys == [redactor.lookup_key("maria@gmail.com")]
    assert summarize_message(first) == first.splitlines()[0]


def test_when_some_identities_have_no_token_yet_then_lookup_keys_hold_all_of_them() -> None:
    redactor = Redactor(load_rules(), KEY)
    known = redactor.redact(_event("failed for maria@gmail.com"))
    assert known.lookup_keys == [redactor.lookup_key("maria@gmail.com")]
    both = redactor.redact(_event("maria@gmail.com and ana@proton.me and maria@gmail.com"))
    expected = sorted(
        {redactor.lookup_key("maria@gmail.com"), redactor.lookup_key("ana@proton.me")}
    )
    assert both.lookup_keys == expected


def test_when_a_subject_id_holds_a_phone_then_the_event_is_refused_not_masked() -> None:
    # Masked, two customers whose numbers end alike would become one (and the customer page
    # of either would 404); the event goes to the dead letters with the reason instead.
    redactor = Redactor(load_rules(), KEY)
    event = _event("failed for maria@gmail.com").model_dump()
    event["subject"] = {"customer_id": "4155550134"}
    routed = process(event, redactor)
    assert isinstance(routed, Rejected)
    assert routed.reason.startswith("subject.customer_id reads as personal data")
    assert "4155550134" not in routed.reason and "+1 ***-***-**34" in routed.reason


@pytest.mark.parametrize(
    ("extra", "shown", "hidden"),
    [
        ({"maria.santos@gmail.com": "x"}, "m****.s*****@gmail.com", "maria.santos"),
        ({"subject": {"customer_id": "c1", "+14155552671": "x"}}, "***-**71", "4155552671"),
        ({"error": {"code": "X", "4242424242424242": "x"}}, "**** 4242", "424242424242"),
    ],
)
def test_when_an_unknown_key_is_personal_data_then_the_reason_masks_it(
    extra: dict[str, object], shown: str, hidden: str
) -> None:
    # A dead letter's reason is listed without the access log (safetrail dead-letters list).
    event = {**_event("x").model_dump(mode="json"), **extra}
    routed = process(event, Redactor(load_rules(), KEY))
    assert isinstance(routed, Rejected)
    assert "Extra inputs are not permitted" in routed.reason
    assert shown in routed.reason and hidden not in routed.reason


def test_when_an_event_type_holds_a_long_number_then_the_event_is_refused() -> None:
    event = {**_event("x").model_dump(mode="json"), "type": "signup.4155552671"}
    routed = process(event, Redactor(load_rules(), KEY))
    assert isinstance(routed, Rejected) and "a run of 7 or more digits" in routed.reason


@pytest.mark.parametrize(
    "event_type", ["webhook.failed.4242.4242.4242.4242", "sms.to_415_555_0134"]
)
def test_when_an_event_type_holds_a_number_in_groups_then_the_event_is_refused(
    event_type: str,
) -> None:
    event = {**_event("x").model_dump(mode="json"), "type": event_type}
    routed = process(event, Redactor(load_rules(), KEY))
    assert isinstance(routed, Rejected) and "a run of 7 or more digits" in routed.reason
