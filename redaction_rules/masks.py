"""Shape-keeping masks shared by the operators and the free-text scanners.

Every mask keeps just enough for support to confirm a record with the customer ("is it
m****.s*****@gmail.com?", "the card ending 4242?") and nothing that lets them read it back.
The same functions serve rule operators and free-text hits so a value looks the same wherever
it was found.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat

SECRET = "[secret]"  # noqa: S105 - the mask shown for credentials, not a credential
REDACTED = "[redacted]"

_TAILS: dict[str, re.Pattern[str]] = {}
_EMAIL_FULL = re.compile(r"^([\w.%+\-]{1,64})@([\w\-]+(?:\.[\w\-]+)+)$")
_DIGIT = re.compile(r"\d")
_PHONE_SEPARATORS = str.maketrans("", "", " -().")
_PHONE_TEMPLATES: dict[tuple[int, str, int, bool], str] = {}


# Invisible marks that are not format characters (Cf) but render as nothing: the combining
# grapheme joiner, variation selectors, Hangul fillers and the like (Unicode's
# Default_Ignorable_Code_Point, less Cf): "4111\u034f1111..." reads as a card number.
_IGNORABLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0"
    "\U0001bca0-\U0001bca3\U000e0000-\U000e0fff]"
)
# Full stops that IDNA reads as the dot between domain labels ("gmail。com" is deliverable).
_DOTS = frozenset("\u3002\uff0e\uff61")


@lru_cache(maxsize=4096)
def _folded_char(char: str) -> str:
    if char in _DOTS:
        return "."
    if unicodedata.category(char) == "Cf" or _IGNORABLE.match(char):
        return ""  # zero-width spaces and joiners, soft hyphens, direction marks
    digit = unicodedata.decimal(char, None)
    return char if digit is None else str(digit)


def fold(text: str) -> str:
    """``text`` with look-alikes made plain, so the detectors see what a reader sees.

    NFKC turns full-width and other compatibility forms into their plain characters
    (``maria＠gmail．com`` -> ``maria@gmail.com``, ``４２４２`` -> ``4242``); digits of other
    scripts (``٤٢٤٢``) become ASCII digits; ideographic full stops become ``.`` (IDNA reads
    them as dots: ``gmail。com``); invisible characters (a zero-width space before the ``@``,
    a combining grapheme joiner between digits, variation selectors) are removed. ASCII text
    is returned as it is, at no cost.
    """
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", text)
    if text.isascii():
        return text
    return "".join([char if char < "\x80" else _folded_char(char) for char in text])


def mask_segments(text: str, separators: str = ".-_+") -> str:
    """Keep the first character of each segment and star the rest (same length).

    ``maria.santos`` -> ``m****.s*****``; separators themselves stay visible so the shape of
    the value (how many parts, how long each is) can still be compared.
    """
    pattern = _TAILS.get(separators)
    if pattern is None:
        # Runs of separators, captured: segments sit at the even indexes of the split (one
        # split instead of one regex replacement per starred character).
        pattern = _TAILS.setdefault(separators, re.compile(f"([{re.escape(separators)}]+)"))
    parts = pattern.split(text)
    parts[::2] = [part[:1] + "*" * (len(part) - 1) for part in parts[::2]]
    return "".join(parts)


def split_email(value: str) -> tuple[str, str] | None:
    """Split a plain address into (local part, domain), or None if it is not one."""
    match = _EMAIL_FULL.match(fold(value).strip())
    if match is None:
        return None
    return match.group(1), match.group(2)


def mask_email_parts(local: str, domain: str) -> str:
    """``maria.santos+shop`` at ``gmail.com`` -> ``m****.s*****+s***@gmail.com``.

    The domain is kept whole: it tells support which provider to blame for a bounce and is
    rarely personal on its own.
    """
    masked = mask_segments(local)
    if masked == local:  # one-letter parts ("a@", "j.b@") would be shown whole
        masked = "*" * len(local)
    return f"{masked}@{domain}"


def normalize_email(local: str, domain: str) -> str:
    """The form used for lookup keys: lower case, plus tag removed.

    Dropping the tag means "maria.santos@gmail.com" typed by support finds the account that
    signed up as "maria.santos+shop@gmail.com".
    """
    base = local.split("+", 1)[0] or local
    return f"{base.lower()}@{domain.lower().rstrip('.')}"


def parse_phone(value: str, region: str | None = "US") -> PhoneNumber | None:
    """Parse a phone number; numbers without ``+`` are read in ``region``."""
    number = _parse_international(value)
    if number is None:
        try:
            number = phonenumbers.parse(value, None if value.lstrip().startswith("+") else region)
        except NumberParseException:
            return None
    return number if phonenumbers.is_possible_number(number) else None


def _parse_international(value: str) -> PhoneNumber | None:
    # "+14155550167" and "+44 20 7946 0958" are most of what services send, and building the
    # PhoneNumber directly skips ~15 us of phonenumbers.parse. Anything unusual (letters,
    # extensions, a national number starting with 0) goes through the full parser.
    compact = value.translate(_PHONE_SEPARATORS)
    if len(compact) < 8 or compact[0] != "+" or not compact[1:].isdigit():
        return None
    for size in (1, 2, 3):  # country calling codes are prefix-free
        code = int(compact[1 : 1 + size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            national = compact[1 + size :]
            if not national or national[0] == "0":
                return None
            return PhoneNumber(country_code=code, national_number=int(national))
    return None


def mask_phone_number(number: PhoneNumber) -> str:
    """Country code and the last two digits: ``+1 ***-***-**67``, ``+44 ** **** **58``."""
    national = str(number.national_number)
    if len(national) < 4:
        return f"+{number.country_code} ****"
    key = (number.country_code or 0, national[:6], len(national), bool(number.italian_leading_zero))
    template = _PHONE_TEMPLATES.get(key)
    if template is None:
        # Formatting costs ~8 us; the grouping depends on the country, the leading digits
        # and the length only, so the starred shape is computed once per kind of number.
        plain = PhoneNumber(
            country_code=number.country_code,
            national_number=number.national_number,
            italian_leading_zero=number.italian_leading_zero,
            number_of_leading_zeros=number.number_of_leading_zeros,
        )
        text = phonenumbers.format_number(plain, PhoneNumberFormat.INTERNATIONAL)
        prefix = f"+{number.country_code}"
        rest = text[len(prefix) :] if text.startswith(prefix) else text
        template = prefix + _DIGIT.sub("*", rest)
        if len(_PHONE_TEMPLATES) < 4096:
            _PHONE_TEMPLATES[key] = template
    cut = template.rfind("*")
    cut = template.rfind("*", 0, cut)
    return template[:cut] + national[-2] + template[cut + 1 : -1] + national[-1]


def normalize_phone(number: PhoneNumber) -> str:
    """E.164, the form used for lookup keys."""
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def phone_facts(value: str, region: str | None = "US") -> tuple[str, str] | None:
    """``(mask, E.164)`` for a phone number, or None if it is not one.

    Cached (bounded): a customer's number recurs in every event of their flows.
    """
    if region is not None and value.lstrip().startswith("+"):
        # parse_phone reads a number with its country code the same in every region: one
        # cache entry for it, whether a rule's region or free text's None asked (a signup's
        # phone field and an import error naming the same number each parsed it).
        region = None
    return _phone_facts(value, region)


@lru_cache(maxsize=8192)
def _phone_facts(value: str, region: str | None) -> tuple[str, str] | None:
    number = parse_phone(value, region)
    if number is None:
        return None
    return mask_phone_number(number), normalize_phone(number)


def mask_last4(value: str, keep: int = 4) -> str:
    """``4242 4242 4242 4242`` -> ``**** 4242``; values too short to hide anything -> ``****``."""
    # Card numbers usually arrive as bare digits: nothing to remove, no per-character loop.
    compact = value if value.isalnum() else "".join(c for c in value if c.isalnum())
    if len(compact) <= keep * 2:
        # Showing the last 4 of a 6-character value would reveal most of it.
        return "****"
    return "**** " + compact[-keep:]


def mask_iban(compact: str) -> str:
    """``DE89370400440532013000`` -> ``DE** **** 3000`` (country and last four)."""
    return f"{compact[:2]}** **** {compact[-4:]}"


_IPV4_FULL = re.compile(
    r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
)


def _mask_ipv4(value: str, prefix: int) -> str | None:
    # The ipaddress module takes ~4 us per address; a regex check and integer maths suffice.
    if not _IPV4_FULL.fullmatch(value):
        return None
    if prefix == 24:
        return value.rsplit(".", 1)[0] + ".0/24"
    a, b, c, d = (int(part) for part in value.split("."))
    number = ((a << 24) | (b << 16) | (c << 8) | d) & ((0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF)
    return ".".join(str((number >> shift) & 0xFF) for shift in (24, 16, 8, 0)) + f"/{prefix}"


def mask_ip(value: str, v4_prefix: int = 24, v6_prefix: int = 48) -> str | None:
    """Truncate an address to its network: ``203.0.113.77`` -> ``203.0.113.0/24``."""
    text = value.strip()
    if text.count(".") == 3 and ":" not in text:
        return _mask_ipv4(text, v4_prefix)
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        # "::ffff:203.0.113.77", as dual-stack servers report IPv4 clients: the IPv4 network
        # (an IPv6 /48 of it is "::/48", which tells support nothing).
        return _mask_ipv4(str(address.ipv4_mapped), v4_prefix)
    prefix = v4_prefix if address.version == 4 else v6_prefix
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return str(network)


def mask_words(value: str) -> str:
    """Names: the first letter of each word, ``Maria Santos`` -> ``M**** S*****``."""
    return mask_segments(value.strip(), " \t\n-'")
