"""Fifth adversarial round: what services echo into bodies and error messages without a key
beside each value (message templates, request dumps, SQL, XML, command lines, CRM pairs)."""

from __future__ import annotations

import json

import pytest

from redaction_rules.engine import Redactor
from redaction_rules.scanners import scan_text
from tests.redaction.rounds import Flow, default_redactor

FLOW = Flow(
    source="notifications",
    failure="webhook.failed",
    subject={"customer_id": "48291", "order_id": "ord_ud2whkf4"},
)
redact, reason, body = FLOW.redact, FLOW.reason, FLOW.body


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return default_redactor()


@pytest.mark.parametrize(
    "message",
    [
        "SMS not delivered: 'Your OTP is 482913'",
        "Twilio 30007 body='Your Acme verification code is: 482913. Do not share it.'",
        "SMS failed: 482913 is your verification code",
        "G-482913 is your Google verification code",
        "Push failed: Enter 482913 on the sign-in page",
        "Your code: 482913",
        "2FA: 482913 rejected",
        "Your PIN is 4821",
        "Your sign-in code is 482-913",
        "Your security code: 482 913",
        "your one-time password is 48291377",
    ],
)
def test_when_a_message_template_carries_a_one_time_code_then_it_is_secret(
    redactor: Redactor, message: str
) -> None:
    # Codes written without "code" right before them ("OTP is", "is your ... code", "Enter
    # ... on the sign-in page") were shown: whoever reads them can sign in as the customer.
    shown = reason(redactor, message)
    assert "482" not in shown and "4821" not in shown
    assert "[secret]" in shown


@pytest.mark.parametrize(
    "message",
    [
        "use 1024 as the page size",
        "error code 5001 returned",
        "Your PIN must be 4 digits",
        "2FA enabled for account",
        "order ord_ud2whkf4 retried 3 times",
    ],
)
def test_when_numbers_are_no_one_time_code_then_they_stay(redactor: Redactor, message: str) -> None:
    assert reason(redactor, message) == message


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ("Authentication failed: password 'hunter2' is incorrect", "hunter2"),
        ("reset for maria: the new password is Tr0ub4dor&3.", "Tr0ub4dor"),
        ("ERROR: syntax error at or near \"WITH PASSWORD 's3cr3t-v4lue'\"", "s3cr3t"),
        ("ALTER USER app WITH PASSWORD 's3cr3t-v4lue'", "s3cr3t"),
        ("CREATE USER 'app'@'%' IDENTIFIED BY 's3cr3t-v4lue'", "s3cr3t"),
    ],
)
def test_when_prose_or_sql_names_a_password_then_it_is_secret(
    redactor: Redactor, message: str, secret: str
) -> None:
    # A password quoted after the word, or after "is"/"was", had no ':' or '=' to be read by.
    shown = reason(redactor, message)
    assert secret not in shown and "[secret]" in shown


@pytest.mark.parametrize(
    "message", ["The password is incorrect", "token was revoked", "password is too short"]
)
def test_when_prose_says_how_a_password_is_then_it_stays(redactor: Redactor, message: str) -> None:
    assert reason(redactor, message) == message


@pytest.mark.parametrize("newline", ["\r\n", "\\r\\n"])
def test_when_a_multipart_body_is_echoed_then_secret_and_personal_parts_are_masked(
    redactor: Redactor, newline: str
) -> None:
    # The password part was shown whole, and its field name was masked as a person's name.
    parts = [
        ("password", "hunter2"),
        ("full_name", "Maria Santos"),
        ("plan", "team"),
    ]
    text = "400 bad form: " + "".join(
        f'--xYz{newline}Content-Disposition: form-data; name="{name}"{newline}{newline}'
        f"{value}{newline}"
        for name, value in parts
    )
    shown = scan_text(text)
    assert "hunter2" not in shown and "Maria" not in shown
    assert f'name="password"{newline}{newline}[secret]' in shown
    assert f'name="full_name"{newline}{newline}[redacted]' in shown
    assert f"{newline}team{newline}" in shown


@pytest.mark.parametrize(
    ("message", "leaked", "kept"),
    [
        (
            'ERROR: null value in column "email" of relation "users" violates not-null '
            "constraint DETAIL: Failing row contains (42, Maria Santos, null, 1985-03-14).",
            "Maria",
            'column "email"',
        ),
        (
            "(psycopg2.errors.NotNullViolation) [SQL: INSERT INTO users (name, email) VALUES "
            "(%(name)s, %(email)s)] [parameters: ('Maria Santos', None)]",
            "Maria",
            "VALUES (%(name)s, %(email)s)",
        ),
        (
            "INSERT INTO users (id, full_name, password) VALUES (42, 'Maria Santos', 'hunter2')",
            "hunter2",
            "VALUES (42, '[redacted]', '[secret]')",
        ),
    ],
)
def test_when_a_database_error_prints_a_row_then_its_values_are_masked(
    message: str, leaked: str, kept: str
) -> None:
    # A not-null violation prints the whole row and SQLAlchemy the statement's parameters,
    # with no column beside each value; an INSERT pairs columns with values.
    shown = scan_text(message)
    assert leaked not in shown and "Maria" not in shown
    assert kept in shown


def test_when_an_insert_names_no_personal_column_then_it_stays() -> None:
    text = "INSERT INTO events (id, type) VALUES (42, 'signup')"
    assert scan_text(text) == text


@pytest.mark.parametrize(
    ("xml", "leaked", "expected"),
    [
        (
            '<wsse:Username>maria.s</wsse:Username><wsse:Password Type="#PasswordText">'
            "hunter2</wsse:Password>",
            "hunter2",
            '<wsse:Password Type="#PasswordText">[secret]</wsse:Password>',
        ),
        ("<Customer><FirstName>Maria</FirstName></Customer>", "Maria", "[redacted]"),
        ("<DateOfBirth>1985-03-14</DateOfBirth>", "1985", "[redacted]"),
        ('<add key="StripeApiKey" value="rk_1a2b3c4d5e"/>', "rk_1a2b", 'value="[secret]"'),
        ('<property name="db.password" value="hunter2"/>', "hunter2", 'value="[secret]"'),
    ],
)
def test_when_xml_holds_secret_or_personal_elements_then_they_are_masked(
    redactor: Redactor, xml: str, leaked: str, expected: str
) -> None:
    # Namespaced or attributed elements (SOAP's WS-Security), personal element names, and
    # key/value elements of configuration files were shown.
    shown = body(redactor, "500 SOAP fault for " + xml)
    assert leaked not in shown and expected in shown


@pytest.mark.parametrize(
    ("pairs", "leaked"),
    [
        ([{"name": "firstname", "value": "Maria"}, {"name": "plan", "value": "pro"}], "Maria"),
        ([{"property": "password", "value": "hunter2"}], "hunter2"),
        ([{"key": "api_key", "value": "a1b2c3d4e5f6"}], "a1b2c3"),
        ([{"value": "Santos", "field": "last_name"}], "Santos"),
    ],
)
def test_when_fields_come_as_name_value_pairs_then_named_values_are_masked(
    redactor: Redactor, pairs: list[dict[str, str]], leaked: str
) -> None:
    # CRM and form-builder payloads (HubSpot properties, Typeform answers) name a value by
    # the pair's other member: the value itself had no key a scan knew.
    shown = body(redactor, "422 rejected: " + json.dumps({"properties": pairs}))
    assert leaked not in shown
    assert '"value": "pro"' in shown or len(pairs) == 1


@pytest.mark.parametrize(
    ("message", "leaked"),
    [
        ("headers=[(b'x-api-key', b'8f14e45fceea167a5a36dedd4bea2543'), (b'host', b'x')]", "8f14"),
        ("[('authorization', 'Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b')]", "9944"),
        ("requests.get(url, auth=('maria', 'hunter2')) failed", "hunter2"),
    ],
)
def test_when_credentials_are_python_tuples_then_they_are_secret(message: str, leaked: str) -> None:
    # ASGI scopes and requests calls print headers and auth as tuples, where a hex API key
    # or a "Token" scheme is no shape a scan finds, and no "key:" precedes them.
    shown = scan_text(message)
    assert leaked not in shown and "[secret]" in shown


@pytest.mark.parametrize(
    ("message", "leaked"),
    [
        (
            "Command '['curl', '-sf', '-u', 'maria:hunter2', 'https://x']' returned non-zero "
            "exit status 22.",
            "hunter2",
        ),
        ("curl --user admin:S3cr3tPass https://api.example.com", "S3cr3t"),
        ("Command 'mysql -h db -u app -pS3cr3tPass app' returned non-zero exit status 1", "S3cr"),
        ("SMTP debug: C: AUTH PLAIN AG1hcmlhAGh1bnRlcjI=", "AG1h"),
        ("S: 334 UGFzc3dvcmQ6\\r\\nC: aHVudGVyMg==", "aHVu"),
    ],
)
def test_when_a_command_line_or_smtp_login_holds_a_password_then_it_is_secret(
    redactor: Redactor, message: str, leaked: str
) -> None:
    # A failed command is reported whole (Python's CalledProcessError), SMTP debug logs the
    # base64 login: "-u user:password", "-p<password>" and AUTH's argument were shown.
    shown = reason(redactor, message)
    assert leaked not in shown and "[secret]" in shown


def test_when_a_command_line_has_no_password_then_it_stays(redactor: Redactor) -> None:
    message = "Command 'mysql -h db -u app app' returned non-zero exit status 1"
    assert reason(redactor, message) == message


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Render failed: 'Hi Maria Santos, your order shipped'", "Hi M**** S*****, your"),
        ("Dear Ana Lima:\nyour export is ready", "Dear A** L***:"),
        ("customer Maria Santos reported a missing email", "customer M**** S***** reported"),
        ("recipient 'Maria Santos' unreachable", "recipient '[redacted]' unreachable"),
    ],
)
def test_when_prose_greets_or_names_a_person_then_the_name_is_masked(
    redactor: Redactor, message: str, expected: str
) -> None:
    # Names in rendered email and SMS bodies and in notes had no key ("name:") before them.
    assert expected in reason(redactor, message)


@pytest.mark.parametrize(
    "message",
    [
        "Hi there, your export is ready",
        "Dear Customer,",
        "customer Support Team replied",
        "customer ID 48291 not found",
    ],
)
def test_when_a_greeting_or_person_word_names_nobody_then_it_stays(
    redactor: Redactor, message: str
) -> None:
    assert reason(redactor, message) == message


@pytest.mark.parametrize(
    ("message", "leaked"),
    [
        ("KYC failed: date of birth 14/03/1985 does not match", "1985"),
        ("born on March 14, 1985", "1985"),
        ("SSN 512345678 does not match the name", "512345678"),
        ("passport X1234567 expired", "X1234567"),
        ("National Insurance number QQ 12 34 56 C invalid", "QQ 12"),
        ("CPF 123.456.789-09 rejected", "789"),
        ('verification rejected: {"nino": "QQ123456C", "aadhaar": "234567890123"}', "QQ123"),
    ],
)
def test_when_a_date_of_birth_or_national_number_is_named_then_it_is_masked(
    redactor: Redactor, message: str, leaked: str
) -> None:
    # After the words naming them (no ':' or '=') and under national-number keys ("nino",
    # "aadhaar"), these were shown whole, or read as a foreign phone number.
    shown = reason(redactor, message)
    assert leaked not in shown and "[redacted]" in shown
    assert "234567890123" not in shown


@pytest.mark.parametrize("message", ["passport expired", "born 3 days ago", "SSN must be 9 digits"])
def test_when_an_id_word_has_no_number_after_it_then_it_stays(
    redactor: Redactor, message: str
) -> None:
    assert reason(redactor, message) == message


@pytest.mark.parametrize(
    ("data", "leaked"),
    [
        ({"response_body": "400 no courier for lat=37.774929 lng=-122.419416"}, "7749"),
        ({"response_body": "no courier near 37.774929,-122.419416"}, "7749"),
        ({"url": "https://maps.example.com/near?lat=37.774929&lng=-122.419416"}, "7749"),
    ],
)
def test_when_coordinates_locate_the_customer_then_they_are_masked(
    redactor: Redactor, data: dict[str, str], leaked: str
) -> None:
    # Coordinates to six decimals (a house) were shown under "lat"/"lng" keys and in prose.
    event = redact(redactor, "webhook.failed", data)
    shown = json.dumps(event.fields)
    assert leaked not in shown and "4194" not in shown


def test_when_coordinates_are_in_prose_then_the_city_stays() -> None:
    assert scan_text("no courier near 37.774929, -122.419416") == "no courier near 37.7, -122.4"


@pytest.mark.parametrize(
    "written",
    [
        "maria.santos [at] gmail [dot] com",
        "maria.santos(at)gmail(dot)com",
        "maria.santos at gmail dot com",
    ],
)
def test_when_an_email_is_written_to_dodge_scrapers_then_it_is_masked(
    redactor: Redactor, written: str
) -> None:
    # "name [at] domain [dot] com" was shown whole, and found no lookup key.
    event = redact(redactor, "webhook.failed", {"response_body": f"contact {written} please"})
    assert event.fields["response_body"] == "contact m****.s*****@gmail.com please"
    assert event.lookup_keys == [redactor.lookup_key("maria.santos@gmail.com")]


def test_when_at_and_dot_are_plain_words_then_they_stay(redactor: Redactor) -> None:
    message = "deployed at server.example.com at noon"
    assert reason(redactor, message) == message


def test_when_a_mailchimp_key_is_in_text_then_it_is_secret(redactor: Redactor) -> None:
    # A hex key with its data center suffix ("...-us6"); Mailchimp is an import source.
    shown = reason(redactor, "import failed with key 0123456789abcdef0123456789abcdef-us6")
    assert shown == "import failed with key [secret]"
