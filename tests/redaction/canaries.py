"""Canary values for the redaction property test: realistic PII and secrets, each with the
substrings that must never appear in what support sees."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from stdnum import iban, luhn

# Consonants only: generated words never collide with labels, reasons or field names.
LETTERS = "bcdfghjklmnpqrstvwxz"
ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Canary:
    """A planted value, how it is written into prose, and what must never be output."""

    kind: str
    value: str
    text: str
    forbidden: tuple[str, ...]
    id_safe: bool = False  # fits the Identifier pattern of subject ids


def word(rnd: random.Random, low: int = 6, high: int = 9) -> str:
    return "".join(rnd.choice(LETTERS) for _ in range(rnd.randint(low, high)))


def alnum(rnd: random.Random, size: int) -> str:
    """A generated secret: uniformly random base62, as key generators make them.

    Hypothesis' own random leans towards simple values ("aaaa..."), which is not what a
    secret looks like, so it only seeds a uniform generator here.
    """
    uniform = random.Random(rnd.getrandbits(64))
    return "".join(uniform.choice(ALNUM) for _ in range(size))


def email(rnd: random.Random) -> Canary:
    local = ".".join(word(rnd, 4, 8) for _ in range(rnd.randint(1, 3)))
    if rnd.random() < 0.2:
        local = local[:2] + "é" + local[2:]  # non-ASCII
    if rnd.random() < 0.3:
        local += "+" + word(rnd, 3, 6)  # plus tag
    domain = rnd.choice(["gmail.com", "mail.eu.example.co.uk", "corp-mail.example.org", "x.io"])
    value = f"{local}@{domain}"
    text = value
    if rnd.random() < 0.15:  # written with a look-alike "@" (full-width, or a zero-width space)
        text = value.replace("@", rnd.choice(["\uff20", "\u200b@", "\u2060@"]))
    return Canary("email", value, text, (value, local))


def phone(rnd: random.Random) -> Canary:
    region = rnd.choice(["US", "GB", "DE", "FR", "ES", "PT", "JP", "IT"])
    kind = rnd.choice([PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE])
    example = phonenumbers.example_number_for_type(region, kind)
    number = example
    for _ in range(20):  # vary the tail, keep it valid
        digits = str(example.national_number)
        tail = "".join(rnd.choice(string.digits) for _ in range(3))
        candidate = phonenumbers.PhoneNumber(
            country_code=example.country_code,
            national_number=int(digits[:-3] + tail),
            italian_leading_zero=example.italian_leading_zero,
        )
        if phonenumbers.is_valid_number(candidate):
            number = candidate
            break
    style = rnd.choice(
        [PhoneNumberFormat.E164, PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.NATIONAL]
    )
    value = phonenumbers.format_number(number, style)
    national = str(number.national_number)
    id_safe = region == "US" and style == PhoneNumberFormat.NATIONAL
    id_value = national if id_safe else value
    return Canary("phone", id_value, id_value, (value, national), id_safe)


def card(rnd: random.Random) -> Canary:
    prefix, size = rnd.choice([("4", 16), ("51", 16), ("55", 16), ("37", 15), ("6011", 16)])
    body = prefix + "".join(rnd.choice(string.digits) for _ in range(size - len(prefix) - 1))
    digits = body + luhn.calc_check_digit(body)
    style = rnd.choice(["compact", "spaces", "dashes"])
    if style == "compact":
        value = digits
    elif size == 15:
        value = f"{digits[:4]} {digits[4:10]} {digits[10:]}"
    else:
        sep = " " if style == "spaces" else "-"
        value = sep.join(digits[i : i + 4] for i in range(0, 16, 4))
    forbidden = (value, digits, digits[:-4])
    text = value
    if rnd.random() < 0.15:  # written in full-width or Arabic-Indic digits
        zero = rnd.choice([0xFF10, 0x0660])
        look_alike = {ord(str(d)): chr(zero + d) for d in range(10)}
        text = value.translate(look_alike)
        forbidden += (text, digits[:-4].translate(look_alike))
    return Canary("card", value, text, forbidden, style == "compact")


def iban_canary(rnd: random.Random) -> Canary:
    while True:
        country, bban = rnd.choice(
            [
                ("DE", "".join(rnd.choice(string.digits) for _ in range(18))),
                ("GB", "NWBK" + "".join(rnd.choice(string.digits) for _ in range(14))),
                ("AT", "".join(rnd.choice(string.digits) for _ in range(16))),
                ("CH", "".join(rnd.choice(string.digits) for _ in range(17))),
            ]
        )
        compact = country + iban.calc_check_digits(country + "00" + bban) + bban
        if iban.is_valid(compact):
            break
    spaced = " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    value = rnd.choice([compact, spaced])
    return Canary("iban", value, value, (value, compact, compact[4:-4]), value == compact)


def token(rnd: random.Random) -> Canary:
    secret = alnum(rnd, rnd.randint(32, 44))
    style = rnd.choice(
        ["stripe", "github", "aws", "slack", "jwt", "bearer", "password", "url", "raw"]
    )
    if style == "stripe":
        value, core = f"sk_live_{secret}", secret
    elif style == "github":
        value, core = f"ghp_{secret[:36].ljust(36, 'x')}", secret[:36]
    elif style == "aws":
        core = "".join(rnd.choice(string.ascii_uppercase + string.digits) for _ in range(16))
        value = f"AKIA{core}"
    elif style == "slack":
        value, core = f"xoxb-{rnd.randint(10**11, 10**12)}-{secret}", secret
    elif style == "jwt":
        core = secret.replace("+", "-")
        value = f"eyJhbGciOiJIUzI1NiJ9.eyJ{alnum(rnd, 30)}.{core}"
    elif style == "bearer":
        value, core = f"Bearer {secret}", secret
    elif style == "password":
        core = "".join(rnd.choice(ALNUM + "!#$^*-_") for _ in range(14))
        value = f"password={core}"
    elif style == "url":
        value, core = f"https://app.example.com/reset?token={secret}", secret
    else:
        value, core = secret, secret
    return Canary("token", value, value, (core,), style in ("stripe", "github", "aws", "raw"))


def name(rnd: random.Random) -> Canary:
    first, last = word(rnd).title(), word(rnd).title()
    value = f"{first} {last}"
    text = rnd.choice([f"name={value}", f'{{"name": "{value}"}}', f'full_name: "{value}"'])
    return Canary("name", value, text, (value, first, last))


def address(rnd: random.Random) -> Canary:
    street = word(rnd).title()
    value = f"{rnd.randint(1, 999)} {street} Street"
    text = rnd.choice([f"address: {value}", f'{{"line1": "{value}"}}', f"street={value}"])
    return Canary("address", value, text, (value, street))


def ip(rnd: random.Random) -> Canary:
    if rnd.random() < 0.6:
        octets = [rnd.randint(1, 223), rnd.randint(0, 255), rnd.randint(0, 255)]
        value = ".".join(map(str, [*octets, rnd.randint(11, 254)]))  # last octet never 0
        return Canary("ip", value, value, (value,), True)
    groups = [f"{rnd.randint(1, 0xFFFF):x}" for _ in range(8)]
    value = ":".join(groups)
    return Canary("ip", value, value, (value, ":".join(groups[3:])))


MAKERS = {"email": email, "phone": phone, "card": card, "iban": iban_canary, "token": token,
          "name": name, "address": address, "ip": ip}  # fmt: skip
