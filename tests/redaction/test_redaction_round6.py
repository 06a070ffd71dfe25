"""Sixth adversarial round: street addresses in prose, national, tax, bank and vehicle numbers
after their words in several languages, and greetings beyond English, as delivery, payment and
messaging providers echo them into error messages and response bodies."""

from __future__ import annotations

import pytest

from redaction_rules.engine import Redactor
from tests.redaction.rounds import Flow, default_redactor

FLOW = Flow(
    source="fulfilment",
    failure="webhook.failed",
    subject={"customer_id": "48291", "order_id": "ord_ud2whkf4"},
)
reason, body = FLOW.reason, FLOW.body


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return default_redactor()


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "Delivery failed: ship to 221B Baker Street, London NW1 6XE",
            "Delivery failed: ship to [redacted], London NW1 ***",
        ),
        (
            "Address 1600 Amphitheatre Pkwy, Mountain View, CA 94043 not deliverable",
            "Address [redacted], Mountain View, CA 94*** not deliverable",
        ),
        (
            "shipping to 350 Fifth Avenue, Apt 4B, New York, NY 10118-0110",
            "shipping to [redacted], New York, NY 10***-****",
        ),
        (
            "Lieferadresse Hauptstraße 5, 10115 Berlin ungültig",
            "Lieferadresse [redacted], 10*** Berlin ungültig",
        ),
        (
            "Adresse invalide: 12 rue de la Paix, 75002 Paris",
            "Adresse invalide: [redacted], 75*** Paris",
        ),
        ("Dirección: Calle Mayor 12, 28013 Madrid", "Dirección: [redacted], 28*** Madrid"),
        ("indirizzo Via Roma 15, 00184 Roma", "indirizzo [redacted], 00*** Roma"),
        ("adres Kerkstraat 12, 1017 GM Amsterdam", "adres [redacted], 10** ** Amsterdam"),
        ("address 742 Evergreen Terrace, Springfield", "address [redacted], Springfield"),
    ],
)
def test_when_prose_holds_a_street_address_then_only_the_town_and_district_stay(
    redactor: Redactor, text: str, shown: str
) -> None:
    """House number and street were shown whole in carrier and geocoder errors; the city
    stays and the postal code keeps its district, to confirm the town with the customer."""
    assert body(redactor, text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "Street Fighter 2 launched",
        "Main menu: 3 items",
        "Suite 2 of tests failed",
        "sent via API 2 times, version 2.4.1",
        "Google Drive 3 files shared",
        "HTTP 503 Service Unavailable",
        "charged 12.50 USD via Stripe",
        "Retry 2 Road Warrior plan",
        "SMTP_550 mailbox unavailable at 2026-11-26T10:12:15Z",
        "job job_9c1f ran on worker 3 way behind",
    ],
)
def test_when_street_words_are_no_address_then_the_text_stays(
    redactor: Redactor, text: str
) -> None:
    """Over-masking guard: a street word needs a house number and capitalized name before it."""
    assert body(redactor, text) == text


@pytest.mark.parametrize(
    ("message", "value"),
    [
        ("Bank account 000123456789 rejected", "000123456789"),
        ("ACH: routing number 021000021 invalid", "021000021"),
        ("routing 110000000 unknown", "110000000"),
        ("account number 12345678 sort code 20-00-00", "12345678"),
        ("account number 12345678 sort code 20-00-00", "20-00-00"),
        ("Reisepass Nr. C01X00T47 abgelaufen", "C01X00T47"),
        ("Numéro de passeport 12AB34567 invalide", "12AB34567"),
        ("Führerschein B072RRE2I55 ungültig", "B072RRE2I55"),
        ("DL# D1234567 expired", "D1234567"),
        ("Steuer-ID 12345678901 fehlt", "12345678901"),
        ("Steuernummer 12/345/67890", "12/345/67890"),
        ("NIF 12345678Z no válido", "12345678Z"),
        ("codice fiscale RSSMRA85T10A562S non valido", "RSSMRA85T10A562S"),
        ("TIN 12-3456789 mismatch", "3456789"),
        ("EIN 12-3456789 mismatch", "3456789"),
        ("VIN 1HGCM82633A004352 not found", "1HGCM82633A004352"),
        ("Número de pasaporte X1234567 no válido", "X1234567"),
        ("Personalausweis L01X00T47 abgelaufen", "L01X00T47"),
        ("Permis de conduire 12AB34567 expiré", "12AB34567"),
        ("Passaporto YA1234567 scaduto", "YA1234567"),
        ("ITIN: 912-70-1234 rejected", "912-70-1234"),
        ("bank  account 000123456789 closed", "000123456789"),
    ],
)
def test_when_a_bank_tax_id_or_vehicle_number_follows_its_words_then_it_is_redacted(
    redactor: Redactor, message: str, value: str
) -> None:
    """Bank, routing and sort codes, foreign passport, licence and tax numbers and VINs were
    shown whole (or as a phone number: "Steuer-ID +1 ***-***-**01") after their words."""
    shown = reason(redactor, message)
    assert value not in shown
    assert "[redacted]" in shown


@pytest.mark.parametrize(
    "message",
    [
        "account 48291 locked",
        "account no. 42 closed",
        "routing key orders.v2 not bound",
        "ROUTING_FAILED: 12 retries",
        "Sort 5 items by date",
        "TIN can",
    ],
)
def test_when_bank_words_name_no_bank_number_then_the_text_stays(
    redactor: Redactor, message: str
) -> None:
    """Over-masking guard: account ids and routing keys are not bank numbers."""
    assert reason(redactor, message) == message


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Hello, Maria Santos", "Hello, M**** S*****"),
        ("Hallo Maria Santos, Ihre Bestellung", "Hallo M**** S*****, Ihre Bestellung"),
        ("Bonjour Marie Dupont,", "Bonjour M**** D*****,"),
        ("Hola María García,", "Hola M**** G*****,"),
        ("Olá Maria Santos,", "Olá M**** S*****,"),
        ("Greetings Maria Santos,", "Greetings M**** S*****,"),
        ("Sehr geehrte Frau Müller,", "Sehr geehrte Frau M*****,"),
        ("Liebe Anna,", "Liebe A***,"),
        ("Ship To: Maria Santos, order shipped", "Ship To: M**** S*****, order shipped"),
    ],
)
def test_when_a_foreign_greeting_or_ship_to_names_a_person_then_the_name_is_masked(
    redactor: Redactor, text: str, shown: str
) -> None:
    """Names after greetings other than English ones, after "Hello," with its comma, and
    after "Ship To:" in rendered templates were shown whole."""
    assert body(redactor, text) == shown


@pytest.mark.parametrize(
    "text", ["Hallo Welt", "Hello World 2", "Hola a todos,", "Bonjour à tous,"]
)
def test_when_a_greeting_names_nobody_then_it_stays(redactor: Redactor, text: str) -> None:
    """Over-masking guard: greetings to everyone stay."""
    assert body(redactor, text) == text


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("Invalid postcode SW1A 2AA for region", "Invalid postcode SW1A *** for region"),
        ("ZIP 94043 does not match card", "ZIP 94*** does not match card"),
        ("zip code: 10118 not served", "zip code: 10*** not served"),
        ("PLZ 10115 unbekannt", "PLZ 10*** unbekannt"),
        ("code postal 75002 invalide", "code postal 75*** invalide"),
    ],
)
def test_when_a_postal_code_follows_its_word_then_only_its_district_stays(
    redactor: Redactor, message: str, shown: str
) -> None:
    """A postal code on its own after its word ("postcode SW1A 2AA") was shown whole."""
    assert reason(redactor, message) == shown


@pytest.mark.parametrize(
    "message",
    ["upload.zip 20 MB too large", "post 3 failed", "capacity 12000 reached", "ZIP_INVALID"],
)
def test_when_postal_words_name_no_postal_code_then_the_text_stays(
    redactor: Redactor, message: str
) -> None:
    """Over-masking guard: file names, counts and codes after those words stay."""
    assert reason(redactor, message) == message
