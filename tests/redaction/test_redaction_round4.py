"""Fourth adversarial round: the login, export, webhook and scheduled-job flows added last,
and the free text their services write (lockouts, two-factor, reset links, rate limits)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from redaction_rules.engine import Redactor
from redaction_rules.scanners import scan_text
from tests.redaction.rounds import Flow, default_redactor

FLOW = Flow(source="auth", failure="login.failed")
redact, reason, body = FLOW.redact, FLOW.reason, FLOW.body


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return default_redactor()


@pytest.mark.parametrize(
    ("mfa", "leaked"),
    [
        ("482913", "482913"),
        (482913, "482913"),
        ("backup code ABCD-EFGH-1234", "ABCD"),
        ("sms to +1 (415) ***-0134", "0134"),
    ],
)
def test_login_mfa_field_never_shows_codes_or_numbers(
    redactor: Redactor, mfa: Any, leaked: str
) -> None:
    """`mfa: keep` showed the code typed, a backup code, or the service's own partial mask of
    the phone (last four digits) on failed logins: it is an enum of states and factors now."""
    event = redact(redactor, "login.failed", {"mfa": mfa}, error={"code": "MFA_FAILED"})
    assert leaked not in event.model_dump_json()
    assert event.fields["mfa"] == "[other]"


@pytest.mark.parametrize(("mfa", "shown"), [(True, "true"), (False, "false"), ("sms", "sms")])
def test_login_mfa_states_stay_readable(redactor: Redactor, mfa: Any, shown: str) -> None:
    """Over-masking guard: what the demo and services send stays as it was."""
    assert redact(redactor, "login.failed", {"mfa": mfa}).fields["mfa"] == shown


@pytest.mark.parametrize(
    "message",
    [
        "Login failed for user 'maria.santos'.",
        'User "msantos" is locked after 5 attempts',
        "pam_tally2: user maria.santos (1001) tally 6, deny 5",
        "Account locked for user maria_santos (5 attempts)",
    ],
)
def test_lockout_messages_hide_the_username(redactor: Redactor, message: str) -> None:
    """A username named after "user"/"login"/"account" in prose (no ':' or '=') was shown."""
    shown = reason(redactor, message)
    assert "santos" not in shown and "[redacted]" in shown


@pytest.mark.parametrize(
    "message",
    [
        "user not found",
        "user account locked",
        "User Agent: Mozilla/5.0",
        "user 'usr_12345' locked",
        "the user_agent header is missing",
    ],
)
def test_plain_words_and_ids_after_user_stay(redactor: Redactor, message: str) -> None:
    """Over-masking guard for the rule above."""
    assert reason(redactor, message) == message


@pytest.mark.parametrize(
    ("message", "leaked"),
    [
        ("MFA code 482913 rejected", "482913"),
        ("Invalid OTP 482913", "482913"),
        ("verification code: 482913 expired", "482913"),
        ("MFA failed: backup code ABCD-EFGH-1234 already used", "EFGH"),
        ('rejected {"otp_code": "482913", "verificationCode": "482913"}', "482913"),
        ("pin_code=4821 wrong", "4821"),
    ],
)
def test_one_time_and_backup_codes_are_secret(
    redactor: Redactor, message: str, leaked: str
) -> None:
    """Two-factor codes after their name (in prose or as "otp_code") were shown."""
    assert leaked not in reason(redactor, message)


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("error code 500", "error code 500"),
        ("exit code 137", "exit code 137"),
        ("zip code 94107", "zip code 94***"),  # a postal code keeps its district (round 6)
    ],
)
def test_other_codes_stay(redactor: Redactor, message: str, shown: str) -> None:
    """Over-masking guard: codes that are not one-time codes are not secret."""
    assert reason(redactor, message) == shown


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example.com/verify/email/k3j9x2m4q8w7z",
        "https://app.example.com/password/reset/confirm/MQ/5xk-3b7a9c8d1e2f",
    ],
)
def test_reset_token_one_segment_after_the_route_is_masked(redactor: Redactor, url: str) -> None:
    """A token after the route's next segment (Django's /reset/<uidb64>/<token>) was shown."""
    shown = reason(redactor, f"Reset link expired: {url}")
    assert shown.endswith("/[secret]")
    assert "/MQ/" in shown or "/email/" in shown


def test_reset_routes_without_a_token_stay(redactor: Redactor) -> None:
    """Over-masking guard: route words after a marker are not tokens."""
    for url in ["https://app.example.com/reset/done/", "https://app.example.com/auth/callback/v2"]:
        assert reason(redactor, f"see {url}") == f"see {url}"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "Too many requests from c-203-0-113-77.hsd1.ca.comcast.net",
            "Too many requests from c-203-0-113-*.hsd1.ca.comcast.net",
        ),
        ("banned 203-0-113-77.static.isp.net", "banned 203-0-113-*.static.isp.net"),
    ],
)
def test_ip_written_into_a_host_name_keeps_its_network(
    redactor: Redactor, message: str, expected: str
) -> None:
    """Rate limiters log the client's reverse-DNS name, which holds the whole IPv4 address."""
    assert reason(redactor, message) == expected


def test_dashed_numbers_that_are_no_host_stay(redactor: Redactor) -> None:
    """Over-masking guard: dates and order numbers with dashes."""
    for text in ["ord-12-34-56-78 shipped", "file 2024-01-02-03.log"]:
        assert reason(redactor, text) == text


@pytest.mark.parametrize(
    ("payload", "leaked"),
    [
        ({"to": "maría.santos@x.com"}, "mar\\"),
        ({"to": "José Santos <jose.santos@x.com>"}, "Jos"),
        ({"card": "4242\u00a04242\u00a04242\u00a04242"}, "4242\\u00a04242"),
        ({"phone": "+1\u00a0415\u00a0555\u00a00134"}, "415"),
    ],
)
def test_json_escaped_text_is_read_as_its_characters(
    redactor: Redactor, payload: dict[str, str], leaked: str
) -> None:
    """A body echoing JSON with \\u escapes (json.dumps' default) hid a display name from the
    name mask, widened an email mask to "mar\\u*****" and split grouped card numbers."""
    shown = body(redactor, "400 invalid payload: " + json.dumps(payload))
    assert leaked not in shown
    assert "**" in shown


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('to "maria santos"@gmail.com', 'to "m**** s*****"@gmail.com'),
        ('to "maria.santos"@gmail.com', 'to "m****.s*****"@gmail.com'),
    ],
)
def test_quoted_local_parts_are_masked(redactor: Redactor, text: str, expected: str) -> None:
    """An address with a quoted local part (RFC 5321) was shown whole."""
    event = redact(redactor, "webhook.failed", {"response_body": text})
    assert event.fields["response_body"] == expected
    assert len(event.lookup_keys) == 1


@pytest.mark.parametrize(
    "key", ["billing_name", "shippingName", "name_on_card", "owner_name", "login"]
)
def test_echoed_payload_names_under_more_keys_are_masked(redactor: Redactor, key: str) -> None:
    """A webhook response echoing the payload showed names under billing/shipping/owner name
    keys, name_on_card, and usernames under "login"."""
    shown = body(redactor, "Bad Request: " + json.dumps({key: "Maria Santos", "plan": "pro"}))
    assert "Maria" not in shown and '"plan": "pro"' in shown


def test_holder_in_json_inside_a_json_string_is_masked(redactor: Redactor) -> None:
    """{\\"cardholder\\": \\"Maria Santos\\"} (JSON sent as a JSON string) showed the name."""
    text = "400 " + json.dumps(json.dumps({"cardholder": "Maria Santos", "customer": "Ana Lima"}))
    shown = body(redactor, text)
    assert "Maria" not in shown and "Ana" not in shown


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-28T02:00:00Z maria@x.com",
        "2026-11-28T02:00:00",  # no zone
        "٢٠٢٦-11-28T02:00:00Z",
        "2026-11-28T02:00:00Z" + " " * 100,
        1764295200,
        "x" * 100_000,
    ],
)
def test_timestamp_operator_keeps_nothing_but_a_time(redactor: Redactor, value: Any) -> None:
    """Checked sound: run_at shows a formatted UTC time or nothing (guards the operator)."""
    event = redact(redactor, "export_job.scheduled", {"run_at": value, "format": "csv"})
    assert "run_at" not in event.fields
    ok = redact(redactor, "export_job.scheduled", {"run_at": "2026-11-28T03:00:00+01:00"})
    assert ok.fields["run_at"] == "2026-11-28T02:00:00Z"


@pytest.mark.parametrize(
    ("echoed", "hidden", "shown"),
    [
        ('<input type="password" name="password" value="hunter2">', "hunter2", "[secret]"),
        ("<INPUT NAME=user[password] VALUE=hunter2>", "hunter2", "[secret]"),
        ('<input name="csrf_token" value="a8f3c2e19b7d">', "a8f3c2e19b7d", "[secret]"),
        ('<input value="Maria Santos" name="full_name">', "Maria Santos", "[redacted]"),
        ('<input id="cardholder" value="Maria Santos"/>', "Maria Santos", "[redacted]"),
    ],
)
def test_when_a_page_echoes_a_form_then_secret_and_personal_field_values_are_masked(
    echoed: str, hidden: str, shown: str
) -> None:
    # The value attribute is no key a scan knew: the password was shown whole.
    out = scan_text(f"422 from checkout: {echoed}")
    assert hidden not in out and shown in out


def test_when_a_form_field_is_neither_secret_nor_personal_then_its_value_stays() -> None:
    assert 'value="3"' in scan_text('<input name="quantity" value="3">')


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.zapier.com/hooks/catch/1234567/abcd12e/",
        "https://outlook.office.com/webhook/a1b2c3d4-e5f6-7890-abcd-ef1234567890@a1b2c3d4-e5f6"
        "-7890-abcd-ef1234567890/IncomingWebhook/0123456789abcdef0123456789abcdef/a1b2c3d4",
        "https://maker.ifttt.com/trigger/order/with/key/dK3x9aB2mQ",
        "https://hook.eu1.make.com/k2j3h4g5f6d7s8a9",
    ],
)
def test_when_a_webhook_url_is_a_capability_then_its_path_is_masked_and_its_host_kept(
    url: str,
) -> None:
    # Whoever has such a URL can post to it; its secret is the path, often short or hex.
    host = url.split("/")[2]
    out = scan_text(f"delivery to {url} failed")
    assert out == f"delivery to https://{host}/[secret] failed"


def test_when_a_webhook_url_is_the_customers_own_then_its_plain_path_stays() -> None:
    url = "https://hooks.customer.example/in/orders"
    assert scan_text(url) == url
