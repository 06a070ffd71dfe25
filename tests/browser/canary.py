"""The seed's support case with canary personal data planted everywhere a service might leak it.

The case is the one from the support article: a customer signs up, the signup email job retries
once and then bounces. Every personal value below is unique to this module, so finding any of
them (or a recognisable piece of one) in a page, a copied summary, a CSV, a print view or the
server's log is a leak, never a coincidence.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

CUSTOMER_ID = "99001"
TRACE_ID = "tr_bouncecase2x7k4m"
JOB_ID = "job_bounce7q2"
REQUEST_ID = "req_bounce7q2"

EMAIL = "zebulon.quillfeather7@leaky-mail.example"
PHONE = "+1 415 555 0199"
CARD = "4111 1111 1111 1111"
NAME = "Zebulon Quillfeather"
PASSWORD = "Quill-Passw0rd!"
TOKEN = "sk_live_QUILLtok9f8e7d6c5b4a3"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJxdWlsbCJ9.c2lnbmF0dXJlLXF1aWxs"
IBAN = "DE89370400440532013000"
IP = "198.51.100.77"
ADDRESS = {"line1": "12 Larkspur Mews", "city": "Leeds", "postcode": "LS9 7QZ", "country": "GB"}

# Pieces that identify a canary even when the rest of the value is cut away or reformatted.
# Masks may keep a first letter, a domain, a country code or the last digits, which is the
# design, so those parts are not listed.
FORBIDDEN: tuple[str, ...] = (
    EMAIL,
    "zebulon",
    "Zebulon",
    "quillfeather",
    "Quillfeather",
    "4155550199",
    "555 0199",
    "555-0199",
    "5550199",
    "4111111111111111",
    "4111 1111",
    "1111 1111 1111",
    "Quill-Passw0rd",
    "QUILLtok",
    "eyJzdWIiOiJxdWlsbCJ9",
    "c2lnbmF0dXJlLXF1aWxs",
    IBAN,
    "370400440532",
    IP,
    "Larkspur",
    "LS9 7QZ",
)


def leaks(text: str) -> list[str]:
    """The canary pieces found in ``text`` (also after removing spaces and dashes from digits)."""
    found = [piece for piece in FORBIDDEN if piece in text]
    digits_only = re.sub(r"(?<=\d)[\s\-().]+(?=\d)", "", text)
    found += [p for p in ("4155550199", "4111111111111111") if p in digits_only and p not in found]
    return found


def seed_case(now: datetime) -> list[dict[str, Any]]:
    """Emit kwargs (with ``source``) for the seed case, ending two hours before ``now``."""
    at = now - timedelta(hours=2)
    sub = {"customer_id": CUSTOMER_ID, "job_id": JOB_ID}
    mail = {
        "to": EMAIL,
        "template": "signup_verification",
        "provider": "postmark",
        "headers": {"Authorization": f"Bearer {JWT}", "X-Api-Key": TOKEN},
    }
    signup = {
        "email": EMAIL,
        "name": NAME,
        "password": PASSWORD,
        "phone": PHONE,
        "ip": IP,
        "address": ADDRESS,
        "plan": "team",
        "referrer": f"https://ads.example.net/c?email={EMAIL}&token={TOKEN}",
        # JSON inside a string, as some services send it
        "profile": json.dumps({"email": EMAIL, "card": CARD, "iban": IBAN, "phone": PHONE}),
        "payment": {"card": {"number": CARD, "exp": "12/29", "cvc": "737"}, "iban": IBAN},
    }

    def ev(type_: str, when: datetime, source: str, **kw: Any) -> dict[str, Any]:
        return {"type": type_, "trace_id": TRACE_ID, "occurred_at": when, "source": source, **kw}

    return [
        ev(
            "signup.submitted",
            at,
            "web",
            actor="customer",
            status="done",
            subject={**sub, "request_id": REQUEST_ID},
            data=signup,
        ),
        ev(
            "account.created",
            at + timedelta(seconds=1),
            "api",
            actor="system",
            status="done",
            subject={"customer_id": CUSTOMER_ID, "request_id": REQUEST_ID},
        ),
        ev(
            "signup_email.queued",
            at + timedelta(seconds=1, milliseconds=400),
            "api",
            status="queued",
            attempt=0,
            subject=sub,
            data=mail,
        ),
        ev(
            "signup_email.started",
            at + timedelta(seconds=2),
            "mail-worker",
            status="running",
            attempt=1,
            subject=sub,
            data=mail,
        ),
        ev(
            "signup_email.retry",
            at + timedelta(minutes=4, seconds=2),
            "mail-worker",
            status="running",
            attempt=2,
            subject=sub,
            data=mail,
            error={"code": "SMTP_421", "message": f"421 try again later for {EMAIL} from {IP}"},
        ),
        ev(
            "signup_email.bounced",
            at + timedelta(minutes=4, seconds=51),
            "mail-worker",
            status="failed",
            attempt=2,
            subject=sub,
            # Kept free text is scanned for emails, phones, cards, IBANs, tokens and IPs (not
            # for names, which no pattern can find), so those are what is planted here.
            data={**mail, "smtp_response": f"550 5.1.1 <{EMAIL}> unknown user; {PHONE}; {IP}"},
            error={
                "code": "SMTP_550",
                "message": f"550 5.1.1 <{EMAIL}>: mailbox unavailable; card {CARD}; {TOKEN}",
            },
        ),
    ]
