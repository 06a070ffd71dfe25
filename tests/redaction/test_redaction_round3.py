"""Third adversarial round: bypasses and over-masking found against the default rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ingest.process import Accepted, process
from redaction_rules.engine import Redactor, load_rules
from tests.redaction.rounds import KEY, Flow, default_redactor

FLOW = Flow(
    source="web", failure="webhook.failed", subject={"customer_id": "48291", "job_id": "job_9c1f"}
)
event, reason, body = FLOW.event, FLOW.reason, FLOW.body


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return default_redactor()


def shown(redactor: Redactor, event_type: str, data: dict[str, Any], **envelope: Any) -> str:
    return FLOW.redact(redactor, event_type, data, **envelope).model_dump_json()


@pytest.mark.parametrize(
    "text",
    ["call (415) 555-0134x22", "tel +1-415-555-0134x22", "call 415.555.0134ext22"],
)
def test_phone_with_a_glued_extension_is_masked(redactor: Redactor, text: str) -> None:
    """A phone number with its extension written against it ("...0134x22") was shown whole."""
    out = body(redactor, text)
    assert "555" not in out and "+1 ***-***-**34" in out


@pytest.mark.parametrize("ssn", ["105-41-0502", "311-37-9627", "512-34-5678", "512 34 5678"])
def test_us_ssn_is_masked_as_an_ssn(redactor: Redactor, ssn: str) -> None:
    """US SSNs (3-2-4) were shown whole when not a valid foreign phone, else shown as one."""
    out = body(redactor, f"SSN {ssn} does not match")
    assert out == f"SSN ***-**-{ssn[-4:]} does not match"


@pytest.mark.parametrize(
    ("message", "leaked"),
    [
        ("DETAIL:  Key (full_name)=(Maria Santos) already exists.", "Maria"),
        ("DETAIL:  Key (ssn)=(512345678) already exists.", "512345678"),
        ("Key (name, dob)=(Maria Santos, 1985-03-14) already exists.", "1985-03-14"),
        ("Duplicate entry 'Maria Santos' for key 'users.full_name'", "Maria"),
        ("Duplicate entry 's3cr3t-v4lue' for key 'uniq_api_token'", "s3cr3t"),
    ],
)
def test_database_key_errors_hide_personal_column_values(
    redactor: Redactor, message: str, leaked: str
) -> None:
    """PostgreSQL "Key (col)=(value)" and MySQL "Duplicate entry" errors showed the values of
    personal columns (names, SSNs, dates of birth): the key and the value stand apart."""
    assert leaked not in reason(redactor, message)


def test_database_key_errors_keep_plain_columns(redactor: Redactor) -> None:
    """Over-masking guard: ids and plain columns in key errors stay readable."""
    message = "Key (email, plan)=(maria@gmail.com, pro) already exists."
    assert reason(redactor, message) == "Key (email, plan)=(m****@gmail.com, pro) already exists."
    assert reason(redactor, "Duplicate entry 'ord_123' for key 'PRIMARY'").count("ord_123") == 1


def test_keys_under_a_wildcard_rule_are_scanned(tmp_path: Path) -> None:
    """With a `*` rule (documented), data keys were shown whole in the field paths:
    {"metadata": {"maria.santos@gmail.com": "ok"}} gave a field "metadata.maria.santos@..."."""
    (tmp_path / "r.yaml").write_text(
        "kind: redaction\ntypes:\n  order.*:\n    label: Order\n    lane: system\n"
        "    fields:\n      metadata.*: keep\n"
    )
    redactor = Redactor(load_rules(tmp_path), KEY)
    data = {"metadata": {"maria.santos@gmail.com": "ok", "4111111111111111": "x", "plan": "p"}}
    result = process(event("order.placed", data), redactor)
    assert isinstance(result, Accepted)
    assert result.timeline.fields == {
        "metadata.m****.s*****@gmail.com": "ok",
        "metadata.**** 1111": "x",
        "metadata.plan": "p",
    }
    assert "maria" not in result.timeline.model_dump_json()


def test_ipv4_mapped_addresses_keep_their_ipv4_network(redactor: Redactor) -> None:
    """Over-masking: "::ffff:203.0.113.77" (how dual-stack servers report IPv4 clients) was
    shown as "::/48" by the ip operator and as "::/48/24" in text."""
    out = shown(redactor, "login.failed", {"ip": "::ffff:203.0.113.77"})
    assert '"ip":"203.0.113.0/24"' in out
    assert body(redactor, "from ::ffff:203.0.113.77") == "from ::ffff:203.0.113.0/24"


@pytest.mark.parametrize("text", ["device 00:1A:2B:3C:4D:5E seen", "device 00-1a-2b-3c-4d-5e seen"])
def test_mac_addresses_keep_only_the_maker(redactor: Redactor, text: str) -> None:
    """MAC addresses (device identifiers) were shown whole."""
    out = body(redactor, text)
    assert "3C" not in out.upper() and "**:**:**" in out.replace("-", ":")


@pytest.mark.parametrize(
    "text",
    [
        "signing_key=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "encryption_key: 9f86d081884c7d659a2feaa0c55ad015",
        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=abc123def",
        "Ocp-Apim-Subscription-Key: 0123456789abcdef0123456789abcdef",
    ],
)
def test_values_after_key_names_are_secret(redactor: Redactor, text: str) -> None:
    """Hex secrets after signing/encryption/account/subscription key names were shown."""
    out = body(redactor, text)
    assert out.endswith("[secret]")


@pytest.mark.parametrize(
    "text",
    [
        "dsn user:hunter2@db.internal:5432/app",
        "dsn user:hunter2@localhost:5432/app",
        "fetch //maria:hunter2@api.example.com/x",
    ],
)
def test_userinfo_without_a_scheme_is_secret(redactor: Redactor, text: str) -> None:
    """user:password@host without a scheme: the password read as an email local part
    ("h******": first letter and length), or was shown whole for hosts without a dot."""
    out = body(redactor, text)
    assert "hunter2" not in out and "h******" not in out and "[secret]@" in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("To: Maria Santos <maria@gmail.com>", "To: M**** S***** <m****@gmail.com>"),
        ('From: "Maria Santos" <maria@gmail.com>', 'From: "M**** S*****" <m****@gmail.com>'),
        ("5.1.1 Maria Santos<maria@gmail.com>: no", "5.1.1 M**** S*****<m****@gmail.com>: no"),
    ],
)
def test_display_names_before_addresses_are_masked(
    redactor: Redactor, text: str, expected: str
) -> None:
    """The display name of "Maria Santos <maria@gmail.com>" was shown in replies and reasons."""
    assert body(redactor, text) == expected


def test_mask_email_reads_a_mailbox_with_a_display_name(redactor: Redactor) -> None:
    """Over-masking: a `to` of "Maria Santos <maria@gmail.com>" became "[invalid email]"
    (and gave no lookup key)."""
    result = process(event("email_job.sent", {"to": "Maria Santos <maria@gmail.com>"}), redactor)
    assert isinstance(result, Accepted)
    assert result.timeline.fields["to"] == "M**** S***** <m****@gmail.com>"
    assert result.timeline.lookup_keys == [redactor.lookup_key("maria@gmail.com")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("customer: Maria Santos, plan pro", "customer: [redacted], plan pro"),
        ('level=error user="Maria Santos"', 'level=error user="[redacted]"'),
        ("user=maria_santos action=login", "user=[redacted] action=login"),
        ("customer: cus_NffrFeUfNV2Hib", "customer: cus_NffrFeUfNV2Hib"),
        ("user=42 action=login", "user=42 action=login"),
        ("user: Jean-Luc O'Neil.", "user: [redacted]"),
        ("customer: Maria Santos placed order 7", "customer: [redacted] placed order 7"),
        ("user='Maria Santos' retried", "user='[redacted]' retried"),
        # plain words after such a key are what the error says: they stay readable
        ("lookup failed, user: not found", "lookup failed, user: not found"),
        ("buyer: blocked by fraud, retry later", "buyer: blocked by fraud, retry later"),
        ("customer: cus_Nffr2Hib declined", "customer: cus_Nffr2Hib declined"),
    ],
)
def test_names_after_person_keys_are_redacted_ids_are_kept(
    redactor: Redactor, text: str, expected: str
) -> None:
    """Names after `customer:`/`user=` were shown; ids after them must stay."""
    assert body(redactor, text) == expected


def test_decimal_amounts_are_not_phones(redactor: Redactor) -> None:
    """Over-masking: "3125551234.00" (an amount) was shown as "+1 ***-***-**34.00"."""
    assert body(redactor, "amount 3125551234.00 IDR") == "amount 3125551234.00 IDR"
