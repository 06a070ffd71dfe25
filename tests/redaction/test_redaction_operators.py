"""Each operator as a table: value in, what support sees out."""

from __future__ import annotations

from typing import Any

import pytest

from redaction_rules.operators import OPERATORS, ApplyContext, build_operator
from redaction_rules.scanners import TextScanner

KEY = b"operator-test-key-0123456789"


def apply(name: str, value: Any, **params: Any) -> tuple[str | None, list[str]]:
    ctx = ApplyContext(TextScanner(), KEY)
    return build_operator(name, params).apply(value, ctx), ctx.found


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("maria.santos@gmail.com", "m****.s*****@gmail.com"),  # the example support knows
        ("maria.santos+shop@gmail.com", "m****.s*****+s***@gmail.com"),  # plus tag keeps shape
        ("ops@eu.mail.example.co.uk", "o**@eu.mail.example.co.uk"),  # subdomains kept whole
        ("j.doe@x.io", "j.d**@x.io"),  # one-letter segment
        ("josé.núñez@correo.es", "j***.n****@correo.es"),  # non-ASCII local part
        ("first_last-x@example.com", "f****_l***-x@example.com"),  # _ and - split segments
        ("not an email", "[invalid email]"),  # never echoed back
        ("", ""),  # empty stays empty
    ],
)
def test_when_mask_email_applied_then_first_letters_and_domain_remain(
    value: str, expected: str
) -> None:
    assert apply("mask_email", value)[0] == expected


def test_when_mask_email_applied_then_the_normalized_address_feeds_lookup_keys() -> None:
    _, found = apply("mask_email", "Maria.Santos+shop@Gmail.com")
    assert found == ["email:maria.santos@gmail.com"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+14155550167", "+1 ***-***-**67"),  # E.164
        ("+1 (415) 555-0167", "+1 ***-***-**67"),  # formatted
        ("(415) 555-0167", "+1 ***-***-**67"),  # national, default region US
        ("+44 20 7946 0958", "+44 ** **** **58"),  # London
        ("+4915123456789", "+49 **** *****89"),  # German mobile
        ("+33 6 12 34 56 78", "+33 * ** ** ** 78"),  # French mobile
        ("+39 06 1234 5678", "+39 ** **** **78"),  # Italian leading zero
        ("+81 3-1234-5678", "+81 *-****-**78"),  # Tokyo
        ("12", "[invalid phone]"),  # not a phone: never echoed
    ],
)
def test_when_mask_phone_applied_then_country_code_and_last_two_digits_remain(
    value: str, expected: str
) -> None:
    assert apply("mask_phone", value)[0] == expected


def test_when_mask_phone_has_a_default_region_then_national_numbers_use_it() -> None:
    masked, found = apply("mask_phone", "020 7946 0958", default_region="GB")
    assert masked == "+44 ** **** **58"
    assert found == ["phone:+442079460958"]


@pytest.mark.parametrize(
    ("value", "params", "expected"),
    [
        ("4242424242424242", {}, "**** 4242"),  # card
        ("4242 4242 4242 4242", {}, "**** 4242"),  # card with spaces
        ("3782-822463-10005", {}, "**** 0005"),  # Amex with dashes
        (4242424242424242, {}, "**** 4242"),  # card as a JSON number
        ("ORD-2026-000123", {"keep": 3}, "**** 123"),  # order number, 3 kept
        ("123456", {}, "****"),  # too short to show anything
    ],
)
def test_when_last4_applied_then_only_the_tail_remains(
    value: Any, params: dict[str, Any], expected: str
) -> None:
    assert apply("last4", value, **params)[0] == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Maria Santos - passport.pdf", "M**** S***** - p*******.pdf"),
        ("contacts-2026.CSV", "c*******-2***.csv"),  # support tells a CSV from a PDF
        ("maria.santos", "m***********"),  # no extension (6 letters): masked as one word
        (".env", ".***"),
        ("notes", "n****"),
    ],
)
def test_when_mask_file_name_applied_then_the_name_is_masked_and_the_extension_kept(
    value: str, expected: str
) -> None:
    assert apply("mask_file_name", value)[0] == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Maria Santos", "M**** S*****"),
        ("Jean-Luc O'Brien", "J***-L** O'B****"),  # hyphen and apostrophe split words
        ("José Núñez", "J*** N****"),  # non-ASCII
        ("  Ada  ", "A**"),  # surrounding spaces trimmed
    ],
)
def test_when_mask_name_applied_then_initials_and_lengths_remain(value: str, expected: str) -> None:
    assert apply("mask_name", value)[0] == expected


@pytest.mark.parametrize(
    ("value", "params", "expected"),
    [
        ({"line1": "12 Rua Augusta", "city": "Lisbon", "postcode": "1100", "country": "PT"},
         {}, "Lisbon, PT"),  # street and postcode never shown
        ({"City": "Berlin", "Country": "DE"}, {}, "Berlin, DE"),  # key case ignored
        ({"line1": "1 Main St"}, {}, "[address withheld]"),  # nothing coarse to show
        ("12 Rua Augusta, 1100 Lisbon", {}, "[address withheld]"),  # one-line: cannot split
        ({"city": "Lisbon", "region": "Lisboa", "country": "PT"}, {"keep": ["region"]}, "Lisboa"),
        ({"city": "maria@x.com", "country": "PT"}, {}, "m****@x.com, PT"),  # still scanned
    ],
)  # fmt: skip
def test_when_mask_address_applied_then_only_city_and_country_remain(
    value: Any, params: dict[str, Any], expected: str
) -> None:
    assert apply("mask_address", value, **params)[0] == expected


@pytest.mark.parametrize(
    ("value", "params", "expected"),
    [
        ("203.0.113.77", {}, "203.0.113.0/24"),  # IPv4 to /24
        ("2001:db8:85a3::8a2e:370:7334", {}, "2001:db8:85a3::/48"),  # IPv6 to /48
        ("203.0.113.77", {"v4_prefix": 16}, "203.0.0.0/16"),  # coarser on request
        ("[2001:db8::1]", {}, "2001:db8::/48"),  # bracketed, as in URLs
        ("999.1.1.1", {}, "[invalid ip]"),  # not an address: never echoed
    ],
)
def test_when_ip_applied_then_the_address_is_cut_to_its_network(
    value: str, params: dict[str, Any], expected: str
) -> None:
    assert apply("ip", value, **params)[0] == expected


@pytest.mark.parametrize(
    "value",
    ["hunter2", {"nested": "object"}, ["a", "b"], None, 12345],
)
def test_when_secret_applied_then_only_a_fixed_marker_remains(value: Any) -> None:
    assert apply("secret", value)[0] == "[secret]"


@pytest.mark.parametrize("value", ["hunter2", {"a": 1}, None])
def test_when_drop_applied_then_nothing_remains(value: Any) -> None:
    assert apply("drop", value)[0] is None


def test_when_hmac_applied_then_tokens_are_stable_keyed_and_normalizable() -> None:
    one, _ = apply("hmac", "maria@x.com")
    again, _ = apply("hmac", "maria@x.com")
    other = build_operator("hmac", {}).apply("maria@x.com", ApplyContext(TextScanner(), b"k" * 32))
    upper, _ = apply("hmac", "MARIA+promo@X.com", normalize="email")
    lower, _ = apply("hmac", "maria@x.com", normalize="email")
    assert one == again and one is not None and one.startswith("h:") and len(one) == 18
    assert other != one  # another key, another token
    assert upper == lower  # normalized before hashing


@pytest.mark.parametrize(
    ("value", "params", "expected"),
    [
        ("short", {"max_chars": 10}, "short"),  # under the limit: unchanged
        ("a fairly long sentence here", {"max_chars": 10}, "a fairly…"),  # cut with a mark
        ("sent to maria.santos@gmail.com", {"max_chars": 200}, "sent to m****.s*****@gmail.com"),
        ("card 4242 4242 4242 4242 declined", {"max_chars": 13}, "card **** 42…"),  # scan first
        ("x " * 400 + "4242 4242 4242 4242", {"max_chars": 20}, "x " * 9 + "x…"),  # huge input
    ],
)
def test_when_truncate_applied_then_text_is_scanned_then_cut(
    value: str, params: dict[str, Any], expected: str
) -> None:
    assert apply("truncate", value, **params)[0] == expected


@pytest.mark.parametrize(
    ("value", "params", "expected"),
    [
        ("team", {"values": ["free", "team"]}, "team"),  # allowed
        ("TEAM", {"values": ["free", "team"]}, "team"),  # case folded to the listed spelling
        ("TEAM", {"values": ["team"], "case_sensitive": True}, "[other]"),
        ("maria@x.com", {"values": ["free"]}, "[other]"),  # anything else never shown
        ("gold", {"values": ["free"], "other": "unknown plan"}, "unknown plan"),
    ],
)
def test_when_enum_applied_then_only_listed_values_pass(
    value: str, params: dict[str, Any], expected: str
) -> None:
    assert apply("enum", value, **params)[0] == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "true"),  # JSON spelling
        (None, "null"),
        (49.5, "49.5"),
        ("Bearer abcdef123456", "Bearer [secret]"),  # kept text is still scanned
    ],
)
def test_when_keep_applied_then_value_is_text_and_scanned(value: Any, expected: str) -> None:
    assert apply("keep", value)[0] == expected


@pytest.mark.parametrize(
    ("name", "params", "problem"),
    [
        ("truncate", {"max_chars": 0}, "max_chars"),  # out of range
        ("enum", {}, "values"),  # required param missing
        ("keep", {"max_chars": 5}, "max_chars"),  # keep takes no params
        ("mask_phone", {"default_region": "usa"}, "default_region"),  # not an ISO code
        ("mask_emails", {}, "unknown operator"),  # typo
    ],
)
def test_when_operator_params_are_wrong_then_build_names_the_problem(
    name: str, params: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        build_operator(name, params)


def test_when_listing_operators_then_every_required_one_is_registered() -> None:
    required = {"keep", "drop", "mask_email", "mask_phone", "last4", "mask_name"}
    required |= {"mask_address", "ip", "secret", "hmac", "truncate", "enum"}
    assert required <= set(OPERATORS)
