"""Free-text scanning as tables: what must be masked, and what must stay readable."""

from __future__ import annotations

import re
import string
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.schema import RawEvent
from redaction_rules.engine import Redactor, load_rules
from redaction_rules.masks import mask_segments
from redaction_rules.numbers import NUMBER_RUN, _mask_run
from redaction_rules.scanners import _PLAIN_ID, TextScanner, are_plain_ids, is_plain_id


def scan(text: str) -> str:
    return TextScanner().scan(text, [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sent to maria.santos@gmail.com", "sent to m****.s*****@gmail.com"),
        ("<maria.santos+shop@mail.eu.example.co.uk>", "<m****.s*****+s***@mail.eu.example.co.uk>"),
        ("mailto:ops@example.com.", "mailto:o**@example.com."),  # sentence dot stays outside
        ("josé.núñez@correo.es", "j***.n****@correo.es"),  # non-ASCII
        ("?email=maria%40gmail.com", "?email=m****@gmail.com"),  # percent-encoded '@'
        ("a@b.c and user@localhost", "a@b.c and user@localhost"),  # no real domain: left alone
    ],
)
def test_when_text_holds_emails_then_they_are_masked(text: str, expected: str) -> None:
    assert scan(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call +1 415-555-2671 now", "call +1 ***-***-**71 now"),
        ("call (415) 555-2671", "call +1 ***-***-**71"),  # US national format
        ("tel:+44 20 7946 0958", "tel:+44 ** **** **58"),  # UK with a tel: prefix
        ("ring 020 7946 0958", "ring +44 ** **** **58"),  # UK trunk 0, no country code
        ("ring 0044 20 7946 0958", "ring +44 ** **** **58"),  # 00 international prefix
        ("mobile +49 1512 3456789", "mobile +49 **** *****89"),
        ("415 555 2671 415 555 2672", "+1 ***-***-**71 +1 ***-***-**72"),  # two in a row
        ("+٤٤٢٠٧٩٤٦٠٩٥٨", "+44 ** **** **58"),  # Arabic-Indic digits
    ],
)
def test_when_text_holds_phone_numbers_then_they_are_masked(text: str, expected: str) -> None:
    assert scan(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card 4242424242424242 declined", "card **** 4242 declined"),
        ("card 4242 4242 4242 4242.", "card **** 4242."),  # spaces
        ("card 5555-5555-5555-4444", "card **** 4444"),  # dashes
        ("amex 3782 822463 10005", "amex **** 0005"),  # Amex grouping
        ("cards 4242424242424242 and 4000056655665556", "cards **** 4242 and **** 5556"),
        ("ref 4242424242424241", "ref 4242424242424241"),  # Luhn fails: not a card
        ("epoch ms 1764151935120", "epoch ms 1764151935120"),  # starts with 1: not a card
    ],
)
def test_when_text_holds_card_numbers_then_luhn_valid_ones_are_masked(
    text: str, expected: str
) -> None:
    assert scan(text) == expected


@pytest.mark.parametrize("text", ["DE88 3704 0044 0532 0130 00", "GB28NWBK60161331926819"])
def test_when_an_iban_checksum_fails_then_it_is_not_masked_as_an_iban(text: str) -> None:
    assert "** ****" not in scan(text)  # (its digits may still look like a phone number)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("iban DE89 3704 0044 0532 0130 00 PAID", "iban DE** **** 3000 PAID"),  # spaced
        ("GB29NWBK60161331926819", "GB** **** 6819"),  # compact, letters in the BBAN
        ("to NL91ABNA0417164300.", "to NL** **** 4300."),
    ],
)
def test_when_text_holds_ibans_then_checksum_valid_ones_are_masked(
    text: str, expected: str
) -> None:
    assert scan(text) == expected


JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6Ik1hcmlhIn0"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"token {JWT} expired", "token [secret] expired"),  # JWT
        ("Authorization: Bearer pm_live_abcdefgh1234", "Authorization: [secret]"),
        ("auth=Basic dXNlcjpwYXNzd29yZA==", "auth=[secret]"),  # basic user:password
        ("Basic dXNlcjpwYXNzd29yZA==", "Basic [secret]"),  # without a key before it
        ("key sk_live_51HxYzAbCdEf1234", "key [secret]"),  # Stripe
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "[secret]"),  # GitHub
        ("aws AKIAIOSFODNN7EXAMPLE", "aws [secret]"),  # AWS access key id
        ("slack xoxb-1234-5678-abcdefghij", "slack [secret]"),  # Slack
        ("password=hunter2&user=x", "password=[secret]&user=x"),  # key=value
        ('{"password": "hunter2", "plan": "team"}', '{"password": "[secret]", "plan": "team"}'),
        ('{\\"api_key\\": \\"abc123\\"}', '{\\"api_key\\": \\"[secret]\\"}'),  # escaped JSON
        ("session a9F3kL2mQ8wE5rT1yU7iO0pZ end", "session [secret] end"),  # random token
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", "[secret]"),
    ],
)
def test_when_text_holds_credentials_then_they_are_masked(text: str, expected: str) -> None:
    assert scan(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://app.example.com/reset?token=abc123&utm_source=news",
         "https://app.example.com/reset?token=[secret]&utm_source=news"),  # query token
        ("https://app.example.com/reset/k3j9x2m4q8w7", "https://app.example.com/reset/[secret]"),
        ("postgres://app:s3cret@db.internal:5432/main", "postgres://[secret]@db.internal:5432/main"),
        ("https://x.example/cb#access_token=abc123&state=ok",
         "https://x.example/cb#access_token=[secret]&state=ok"),  # OAuth fragment
        ("https://x.example/?next=https%3A%2F%2Fy.example%2F%3Fsig%3Dabc123",
         "https://x.example/?next=https://y.example/?sig=[secret]"),  # URL inside a URL
        ("https://x.example/u?phone=%2B14155552671", "https://x.example/u?phone=+1 ***-***-**71"),
    ],
)  # fmt: skip
def test_when_text_holds_urls_then_credentials_in_them_are_masked(text: str, expected: str) -> None:
    assert scan(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("from 203.0.113.77 at noon", "from 203.0.113.0/24 at noon"),
        ("client=[2001:db8:85a3::8a2e:370:7334]", "client=[2001:db8:85a3::/48]"),
        ("http://10.1.2.3:8080/health", "http://10.1.2.0/24:8080/health"),
    ],
)
def test_when_text_holds_ip_addresses_then_they_are_cut_to_networks(
    text: str, expected: str
) -> None:
    assert scan(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"name": "Maria Santos", "plan": "team"}', '{"name": "[redacted]", "plan": "team"}'),
        ("name=Maria Santos, plan=team", "name=[redacted], plan=team"),
        ("address: 12 Rua Augusta; city: Lisbon", "address: [redacted]; city: Lisbon"),
    ],
)
def test_when_personal_values_follow_a_key_then_they_are_redacted(text: str, expected: str) -> None:
    assert scan(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-26T10:12:15.120Z",  # ISO timestamp
        "2026-11-26 10:12:15 job started",  # date and time
        "123e4567-e89b-12d3-a456-426614174000",  # GUID
        "tr_k3j9x2m4q8w7e5r1 ev_7emwvjugyjf5d3kzan2a job_9c1f",  # prefixed ids
        "customer 48291 order 1000234 rows 12000",  # short numbers
        "SMTP_550 PROVIDER_TIMEOUT WEBHOOK_HTTP_5XX",  # error codes
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0.0.0 Safari/537.36",  # versions
        "421 4.7.0 Try again later",  # SMTP status codes
        "ThisIsALongIdentifierName1 signup_verification_template_v2",  # identifiers
        "sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",  # hex digest
        "chose the basic plan; bearer tokens expire",  # prose about credentials
        "epoch 1764151935 amount 4900",
    ],
)
def test_when_text_is_benign_then_it_stays_readable(text: str) -> None:
    assert scan(text) == text


def test_when_scanning_then_emails_and_phones_found_are_reported_normalized() -> None:
    found: list[str] = []
    TextScanner().scan("Maria.Santos+x@Gmail.com called from +1 (415) 555-2671", found)
    assert found == ["email:maria.santos@gmail.com", "phone:+14155552671"]


def test_when_the_same_text_is_scanned_twice_then_cached_results_report_hits_again() -> None:
    scanner = TextScanner()
    first: list[str] = []
    second: list[str] = []
    text = "bounce for maria@example.com"
    assert scanner.scan(text, first) == scanner.scan(text, second)
    assert first == second == ["email:maria@example.com"]


@pytest.mark.parametrize(
    "text",
    [
        "ev_" + "a1" * 2000 + "!",  # near-miss of the prefixed-id fast path
        "a" * 8000,  # one long word
        "1 " * 4000,  # endless digit groups
        "@" + "a" * 8000,  # '@' with a domain that never gets a dot
        'name: "' * 1000,  # separators and unclosed quotes
        ":" * 8000,  # separators with nothing around them
        "x=" * 4000,  # keys without values
        "https://" * 1000,  # URL starts without URLs
        "1.2.3." * 1500,  # almost-addresses
        "a:" * 4000,  # almost-IPv6
        "DE89" * 2000,  # almost-IBANs
        "+1 (" * 2000,  # almost-phones
    ],
)
def test_when_text_is_pathological_then_scanning_stays_fast(text: str) -> None:
    started = time.perf_counter()
    TextScanner().scan(text, [])
    assert time.perf_counter() - started < 1.0  # linear-time patterns: milliseconds here


@settings(max_examples=500, deadline=None)
@given(
    prefix=st.sampled_from(["ev", "tr", "job", "cus", "whsec", "ghp", "npm", "sk", "ord"]),
    body=st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=48),
)
def test_when_an_id_takes_the_fast_path_then_the_full_scan_agrees(prefix: str, body: str) -> None:
    text = f"{prefix}_{body}"
    if _PLAIN_ID.fullmatch(text):
        assert TextScanner()._scan(text, [], 0) == text


def test_when_urls_hold_plain_routes_then_they_stay_readable() -> None:
    text = "https://app.example.com/auth/callback?state=ok&utm_source=news#top"
    assert scan(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4242424242424242 4000056655665556", "**** 4242 **** 5556"),  # two compact cards
        ("4242 4242 4242 4242 4000 0566 5566 5556", "**** 4242 **** 5556"),  # two grouped
        ("(4242-4242-4242-4242)", "(**** 4242)"),  # in parentheses
    ],
)
def test_when_cards_sit_side_by_side_then_each_is_masked(text: str, expected: str) -> None:
    assert scan(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GB29NWBK60161331926819 DE89370400440532013000", "GB** **** 6819 DE** **** 3000"),
        ("DE89 3704 0044 0532 0130 00 4155552671", "DE** **** 3000 +1 ***-***-**71"),
    ],
)
def test_when_ibans_sit_next_to_other_numbers_then_each_is_masked(text: str, expected: str) -> None:
    assert scan(text) == expected


@settings(max_examples=500, deadline=None)
@given(
    prefix=st.sampled_from(["ev", "tr", "job", "cus", "whsec", "ghp", "npm", "sk", "ord", "Ev"]),
    body=st.text(alphabet=string.ascii_letters + string.digits + "_-٣", min_size=0, max_size=48),
)
def test_when_the_fast_id_check_accepts_an_id_then_the_reference_pattern_does_too(
    prefix: str, body: str
) -> None:
    text = f"{prefix}_{body}"
    if is_plain_id(text):
        assert _PLAIN_ID.fullmatch(text)
        assert TextScanner()._scan(text, [], 0) == text


@settings(max_examples=1500, deadline=None)
@given(
    text=st.text(alphabet="0123456789٣ -.()+:_aZ/", min_size=0, max_size=40),
)
def test_when_a_number_run_is_short_then_skipping_it_matches_the_full_masker(text: str) -> None:
    # mask_numbers skips runs with fewer than 7 digits and 3 dots; _mask_run must leave every
    # such run unchanged (also widened by a "+" or "(") and report nothing.
    for match in NUMBER_RUN.finditer(text):
        start, end = match.span()
        if text.count(".", start, end) >= 3 or sum(map(str.isdigit, text[start:end])) >= 7:
            continue
        for begin in {start, max(start - 1, 0)}:
            found: list[str] = []
            assert _mask_run(text, begin, end, found) == text[begin:end]
            assert found == []


def _mask_segments_reference(text: str, separators: str) -> str:
    # The previous implementation: star every non-separator that follows a non-separator.
    cls = re.escape(separators)
    return re.sub(f"(?<=[^{cls}])[^{cls}]", "*", text)


@settings(max_examples=1500, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from("ab.-_+ \t\n'é٣*[]\\^"), max_size=30) | st.text(),
    separators=st.sampled_from([".-_+", " \t\n-'", "]\\^-", "."]),
)
def test_when_segments_are_masked_then_output_matches_the_reference(
    text: str, separators: str
) -> None:
    assert mask_segments(text, separators) == _mask_segments_reference(text, separators)


_ID_TEXT = st.builds(
    "{}_{}".format,
    st.sampled_from(["ev", "job", "ghp", "whsec", "Ev", "x y"]),
    st.text(alphabet=string.ascii_letters + "0123456789_-٣", max_size=30)
    | st.text(alphabet="a0123456789", max_size=20),  # digit runs around the 7-digit limit
)


@settings(max_examples=1500, deadline=None)
@given(first=_ID_TEXT | st.text(max_size=12), second=_ID_TEXT | st.text(max_size=12))
def test_when_two_ids_are_checked_together_then_it_agrees_with_checking_each(
    first: str, second: str
) -> None:
    assert are_plain_ids(first, second) == (is_plain_id(first) and is_plain_id(second))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Full-width "＠" and digits: what a reader sees is an address and a card.
        (
            "Could not deliver to maria.santos＠gmail.com (card ４２４２４２４２４２４２４２４２)",
            "Could not deliver to m****.s*****@gmail.com (card **** 4242)",
        ),
        # Arabic-Indic digits are digits too.
        ("550 card ٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢ refused", "550 card **** 4242 refused"),
        # A zero-width space (or joiner, or soft hyphen) before the "@" hides nothing.
        ("u=maria.santos\u200b@gmail.com", "u=m****.s*****@gmail.com"),
        ("maria\u00ad.santos\u200d@gmail.com", "m****.s*****@gmail.com"),
        ("call ＋１ ４１５ ５５５ ０１３４ now", "call +1 ***-***-**34 now"),
    ],
)
def test_when_text_hides_pii_behind_look_alike_characters_then_it_is_masked(
    text: str, expected: str
) -> None:
    found: list[str] = []
    assert TextScanner().scan(text, found) == expected
    # The lookup keys are those of the plain values: support finds the customer either way.
    plain: list[str] = []
    TextScanner().scan(fold_reference(text), plain)
    assert found == plain


def fold_reference(text: str) -> str:
    """The same text typed with plain characters (what the look-alikes stand for)."""
    table = {ord("＠"): "@", 0x200B: None, 0x200D: None, 0xAD: None, ord("＋"): "+"}
    table |= {0xFF10 + d: str(d) for d in range(10)} | {0x0660 + d: str(d) for d in range(10)}
    return text.translate(table)


@pytest.mark.parametrize(
    "text",
    ["Ünïcode café", "日本語のメッセージ 123", "naïve résumé — ok", "Straße 12"],
)
def test_when_non_ascii_text_holds_nothing_then_it_stays_readable(text: str) -> None:
    assert scan(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("opt in: secret_Ab3dEf7hIjK1mNoP2rStUvWxYz0aB4cD5eF6gH8 ok", "opt in: [secret] ok"),
        ("hf_AbCdEfGhIjKlMnOpQrStUvWxYz12345678", "[secret]"),
        ("key lin_api_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "key [secret]"),
        # Any short prefix before 32+ characters of mixed-case base62 reads as a key.
        ("tok acme_Xb7Kq2Lm9Pz4Rt6Vw1Yc3Nd5Fg8Hj0Ls2", "tok [secret]"),
    ],
)
def test_when_a_vendor_key_looks_like_a_prefixed_id_then_it_is_masked(
    text: str, expected: str
) -> None:
    assert scan(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "cus_NffrFeUfNV2Hib",  # Stripe object ids: mixed case, short
        "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "req_0123456789abcdef0123456789abcdef",  # long, one case
        "msg_01J9ZK3M5T7V9X1B3D5F7H9K1M3P5R7T",
    ],
)
def test_when_a_prefixed_id_is_long_or_mixed_case_then_it_stays_readable(text: str) -> None:
    assert scan(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a@example.com", "*@example.com"), ("sent to j.b@x.io", "sent to ***@x.io")],
)
def test_when_an_email_has_one_letter_parts_then_they_are_hidden_too(
    text: str, expected: str
) -> None:
    assert scan(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Ideographic full stops are dots to IDNA: these addresses are deliverable.
        ("User maria.santos@gmail。com not found", "User m****.s*****@gmail.com not found"),
        ("maria.santos@gmail｡com", "m****.s*****@gmail.com"),
        # "@" written encoded twice over, or as an HTML character reference.
        ("u=maria.santos%2540gmail.com", "u=m****.s*****@gmail.com"),
        ("maria.santos&#64;gmail.com", "m****.s*****@gmail.com"),
        ("maria.santos&#x40;gmail.com", "m****.s*****@gmail.com"),
        ("maria.santos&commat;gmail.com", "m****.s*****@gmail.com"),
        # A card with dots between its groups.
        ("card 4242.4242.4242.4242 ok", "card **** 4242 ok"),
    ],
)
def test_when_an_address_or_card_is_written_another_way_then_it_is_masked(
    text: str, expected: str
) -> None:
    assert scan(text) == expected


@pytest.mark.parametrize(
    "text", ["R&D team &amp; ops", "50%25 off", "v1.2.3 build 2026.11.26 at 12.30"]
)
def test_when_text_has_ampersands_percents_or_dotted_numbers_then_it_stays_readable(
    text: str,
) -> None:
    assert scan(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Secrets after keys in any style: camelCase JSON, env variables, markup, flags.
        ('{"newPassword":"Summer2024!","clientSecret":"a1b2c3d4e5f6g7h8"}',
         '{"newPassword":"[secret]","clientSecret":"[secret]"}'),
        ("PGPASSWORD=hunter2 DB_PASS=hunter2 pw=hunter2",
         "PGPASSWORD=[secret] DB_PASS=[secret] pw=[secret]"),
        ("passcode: 482913", "passcode: [secret]"),
        ("<password>hunter2</password>", "<password>[secret]</password>"),
        ("password => 'hunter2'", "password => '[secret]'"),
        ("run --password hunter2 now", "run --password [secret] now"),
        ("password: correct horse battery staple", "password: [secret]"),  # a passphrase
        # Credential headers whole, whatever the scheme or list.
        ("Authorization: ApiKey 8f14e45fceea167a5a36dedd4bea2543", "Authorization: [secret]"),
        ("Cookie: a=1; sid=a1b2c3d4e5f6; connect.sid=zz", "Cookie: [secret]"),
        ("DD-API-KEY: 8f14e45fceea167a5a36dedd4bea2543", "DD-API-KEY: [secret]"),
        # An AWS secret access key, after its key or alone.
        ("aws_secret_access_key=nDYP/mxfhcBe/4RJpwmCZD/5WvDEK7XB5HQ/oBkf",
         "aws_secret_access_key=[secret]"),
        ("key nDYP/mxfhcBe/4RJpwmCZD/5WvDEK7XB5HQ/oBkf ok", "key [secret] ok"),
        # One-time tokens after any reset/recover/magic-link route, and in relative URLs.
        ("https://app.example.com/reset-password/7f3c9e1b5d8a2f4c6e0b9d7a1c3e5f8b",
         "https://app.example.com/reset-password/[secret]"),
        ("https://app.example.com/account/recover/7f3c9e1b5d8a2f4c6e0b",
         "https://app.example.com/account/recover/[secret]"),
        ("https://app.example.com/login?next=%2Freset%2Fk3j9x2m4q8w7",
         "https://app.example.com/login?next=/reset/[secret]"),
        ("https://api.example.com/cb?pw=hunter2&passcode=482913",
         "https://api.example.com/cb?pw=[secret]&passcode=[secret]"),
        ("https://a.io/cb?next=https%253A%252F%252Fx.com%252Fcb%253Ftoken%253Dk3j9x2m4",
         "https://a.io/cb?next=https://x.com/cb?token=[secret]"),
    ],
)  # fmt: skip
def test_when_a_secret_is_written_in_one_more_way_then_it_is_masked(
    text: str, expected: str
) -> None:
    assert scan(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Numbers next to punctuation or joined to a word by "_", "-" or a "+".
        ("Card 4111 1111 1111 1111: do_not_honor", "Card **** 1111: do_not_honor"),
        ("PAN-4111 1111 1111 1111 declined", "PAN-**** 1111 declined"),
        ("SMS to +447700900123: undeliverable", "SMS to +44 **** ****23: undeliverable"),
        ("contacts_+447700900123.csv", "contacts_+44 **** ****23.csv"),
        # Invisible combining marks between the characters.
        ("card 4111\u034f1111\u034f1111\u034f1111", "card **** 1111"),
        ("maria.santos\ufe0f@gmail.com", "m****.s*****@gmail.com"),
        # IBANs in lower case or grouped with dashes.
        ("refund to de89370400440532013000 ok", "refund to DE** **** 3000 ok"),
        ("DE89-3704-0044-0532-0130-00", "DE** **** 3000"),
        # Emails with an apostrophe, "@" as \u0040 or encoded three times over.
        ("maria.o'neil@gmail.com", "m****.o*****@gmail.com"),
        ("maria.santos\\u0040gmail.com", "m****.s*****@gmail.com"),
        ("maria.santos%252540gmail.com", "m****.s*****@gmail.com"),
    ],
)
def test_when_pii_stands_next_to_punctuation_or_marks_then_it_is_masked(
    text: str, expected: str
) -> None:
    assert scan(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Mozilla/5.0 (Windows NT 10.0) Chrome/124.0.6367.207 Safari/537.36 Edg/124.0.2478.80",
        "Windows build 10.0.19045.3930",
        "amount 1234567.89 charged",
        "at 12:30:45 the job 48291 retried",
        "https://app.example.com/docs/getting-started/install",
    ],
)
def test_when_versions_amounts_and_routes_look_like_numbers_then_they_stay_readable(
    text: str,
) -> None:
    assert scan(text) == text


def test_when_a_url_parameter_holds_a_prefixed_id_then_its_name_and_value_stay() -> None:
    url = "https://hooks.example.com/in?id=evt_1MtHbELkdIwHu7ixl4OzzPMv&v=2"
    assert scan(url) == url


@pytest.mark.parametrize("text", ["ts 20240610123456789 ok", "build 30000000000000004 done"])
def test_when_luhn_valid_digits_have_no_card_issuer_prefix_then_they_stay_readable(
    text: str,
) -> None:
    assert scan(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"customerName":"Maria Santos","street_address":"Rua Augusta 100"}',
         '{"customerName":"[redacted]","street_address":"[redacted]"}'),
        ("-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF0ab\n-----END PGP PRIVATE KEY BLOCK-----",
         "[secret]"),
        ("slack xapp-1-A0123456789-1234567890123-abcdef0123456789 ok", "slack [secret] ok"),
        ('Authorization: Digest username="maria", response="6629fae4939"',
         "Authorization: [secret]"),
    ],
)  # fmt: skip
def test_when_personal_keys_or_key_blocks_are_written_another_way_then_they_are_masked(
    text: str, expected: str
) -> None:
    assert scan(text) == expected


def test_when_a_file_name_carries_a_persons_name_then_it_is_masked_like_a_name() -> None:
    redactor = Redactor(load_rules(), b"k" * 32)
    event = RawEvent.model_validate(
        {
            "trace_id": "tr_9c1f2a7b",
            "type": "import.requested",
            "occurred_at": "2026-11-26T10:00:00Z",
            "source": "web",
            "actor": "customer",
            "data": {"file_name": "Maria Santos - passport.pdf"},
        }
    )
    assert redactor.redact(event).fields == {"file_name": "M**** S***** - p*******.pdf"}
