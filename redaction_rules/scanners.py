"""Free-text scanning: every string a rule keeps is searched for PII and secrets, masked in place.

Detectors run in a fixed order (credentials first, then personal data, then the random-token
catch-all) and each one's output is inert for the ones after it (``[secret]``, ``**** 4242``).
Cheap substring pre-checks decide which detectors run at all: most kept strings are short
codes and ids, and regex scanning is where the time goes. Checks rely on maintained
libraries: ``phonenumbers`` for phones, ``python-stdnum`` for Luhn and IBAN checksums.

What is *not* found in general: names and addresses in prose (no NER model here). They are
caught after a key such as ``name=`` or ``"address":``, after words that name them
(``customer Maria Santos``, ``Hi Maria,``, ``ship to``), and a street line with its house number
and street word followed by its town (``places``); other forms pass. Rules must not ``keep``
prose fields that may hold them; use ``mask_name``/``mask_address`` or leave them out
(fail-closed). ``redaction_rules/README.md`` lists what is found and what is not.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote

from redaction_rules import credentials, keyvalues, places, prose
from redaction_rules.masks import (
    REDACTED,
    fold,
    mask_email_parts,
    mask_ip,
    mask_words,
    normalize_email,
)
from redaction_rules.numbers import NUMBER_RUN, mask_numbers

_LOCAL_REVERSED = re.compile(r"[\w.%+\-']{1,64}")  # o'neil@ is a local part too
_DOMAIN = re.compile(r"[\w\-]+(?:\.[\w\-]+)+")
# The display name before "<address>": quoted, or up to four words.
_QUOTED_NAME = re.compile(r"([\"'])([^\"'<>@\n]{1,100})\1[ \t]*<$")
_WORDS_NAME = re.compile(r"((?:[^\W\d_][\w.'\-]*[ \t]+){0,3}[^\W\d_][\w.'\-]*)[ \t]*<$")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4})"
    r"(?:%[\w.]+)?(?![\w:])"
)
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")
# MAC addresses (device ids) with colons or dashes.
_MAC = re.compile(
    r"(?<![\w:\-])[0-9A-Fa-f]{2}([:\-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}(?![\w:\-])"
)
_ENCODED_AT = re.compile(r"%25(?:25)*40|&#0*64;|&#x0*40;|&commat;|\\u0040", re.IGNORECASE)
# JSON escapes of printable characters outside the surrogates: json.dumps writes
# "Jos\u00e9 Santos" and "4242\u00a04242 ..." (ensure_ascii), where the escape hid the name from
# the display-name mask, widened an email mask to "mar\u*****" and split grouped numbers.
_JSON_ESCAPE = re.compile(
    r"\\u(00[2-9a-fA-F][0-9a-fA-F]|0[1-9a-fA-F][0-9a-fA-F]{2}"
    r"|[1-9a-cA-CeEfF][0-9a-fA-F]{3})"
)
# A local part in quotes ("maria santos"@gmail.com, RFC 5321): spaces and dots allowed.
_QUOTED_LOCAL = re.compile(r"\"([^\"\\\n@<>]{1,64})\"$")
# The customer's IPv4 address written into a reverse-DNS host name, as rate limiters and
# fail2ban log the client ("c-203-0-113-77.hsd1.ca.comcast.net", "203-0-113-77.static.isp.net").
_IPV4_HOST = re.compile(
    r"(?<![\w\-])((?:[a-z]{1,12}-)?)((?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)-){3})"
    r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?=\.[a-z])",
    re.IGNORECASE,
)
_CACHE_MAX_LEN = 256
# Text shorter than this holds nothing the detectors look for: scan() returns it as it is
# (callers on hot paths may skip the call for it).
SHORTEST_HIT = 6
# Prefixed ids ("ev_7emwvjugyjf5d3kzan2a", "job_9c1f") with no vendor key prefix, at most 31
# characters after the prefix and no run of 7 digits: the full scan provably leaves them
# unchanged (a test checks the equivalence).
_PLAIN_ID = re.compile(
    r"(?!gh[pousr]_|npm_|whsec_|hf_|shp(?:at|ss|ca|pa)_)[a-z]{1,8}_"
    r"(?=[A-Za-z0-9]{1,31}$)(?:[A-Za-z]|\d{1,6}(?!\d))+"
)
# _PLAIN_ID without its per-character alternation, which made it the costliest check on the
# envelope: an ASCII id shape (one regex step per character) and the vendor prefixes, then
# a run of seven digits looked for with a byte translation. It accepts a subset of
# _PLAIN_ID (ASCII digits only), which a test checks.
_SHAPE = r"(?!gh[pousr]_|npm_|whsec_|hf_|shp(?:at|ss|ca|pa)_)[a-z]{1,8}_[A-Za-z0-9]{1,31}"
_ID_SHAPE = re.compile(_SHAPE)
# Two ids joined by a space, checked in one regex call (the space cannot be part of either).
_TWO_ID_SHAPES = re.compile(f"{_SHAPE} {_SHAPE}")
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")


def is_plain_id(text: str) -> bool:
    """Whether ``text`` is a prefixed id the full scan provably leaves unchanged."""
    if _ID_SHAPE.fullmatch(text) is None:
        return False
    # The id is ASCII here: digits zeroed with a byte translation, searched for as a str
    # (a str search costs a fraction of a bytes one).
    return "0000000" not in text.encode().translate(_DIGITS_AS_ZERO).decode()


def are_plain_ids(first: str, second: str) -> bool:
    """Whether both are plain ids (``is_plain_id``), with one digit-run check for the two."""
    both = f"{first} {second}"
    if _TWO_ID_SHAPES.fullmatch(both) is None:
        return False
    # The space also keeps a digit run from spanning the two ids.
    return "0000000" not in both.encode().translate(_DIGITS_AS_ZERO).decode()


def _local_part(text: str, at: int, floor: int) -> str:
    # Match backwards on the reversed slice: an unanchored local-part regex retries from
    # every position before the '@' and was the slowest part of email scanning.
    start = max(floor, at - 64)
    match = _LOCAL_REVERSED.match(text[start:at][::-1])
    if match is None:
        return ""
    return text[at - match.end() : at].lstrip(".+'")  # not a quote opening 'maria@x.com'


@lru_cache(maxsize=4096)
def _email_facts(local: str, domain: str) -> tuple[str, str]:
    """(mask, lookup identity) of one address found in free text. Cached (bounded): a
    customer's address recurs in the replies and errors of all their events."""
    plain = unquote(local) if "%" in local else local
    if local[0] == '"':  # "maria santos"@: the quoted words masked as a local part's
        inner = local[1:-1]
        masked = mask_email_parts(inner.replace(" ", "."), domain)[: len(inner)]
        shown = "".join([" " if c == " " else m for c, m in zip(inner, masked, strict=True)])
        return f'"{shown}"@{domain}', "email:" + normalize_email(plain, domain)
    return mask_email_parts(local, domain), "email:" + normalize_email(plain, domain)


def _mask_display_name(before: str) -> str:
    """``before`` (text up to an address's ``<``) with the display name it ends with masked
    like a name: a quoted one, or the capitalized words just before the ``<``."""
    quoted = _QUOTED_NAME.search(before, max(0, len(before) - 120))
    if quoted is not None:
        start, end = quoted.span(2)
        return before[:start] + mask_words(quoted.group(2)) + before[end:]
    words = _WORDS_NAME.search(before, max(0, len(before) - 120))
    if words is None:
        return before
    parts = words.group(1).split()
    count = 0
    for word in reversed(parts):
        if not word[0].isupper():
            break
        count += 1
    if not count:
        return before
    name = " ".join(parts[-count:])
    start = words.start(1) + words.group(1).rindex(name) if count < len(parts) else words.start(1)
    end = start + len(name)
    if before[start:end] != name:  # words separated by tabs or several spaces
        return before
    return before[:start] + mask_words(name) + before[end:]


def _mask_emails(text: str, found: list[str]) -> str:
    out: list[str] = []
    last = 0
    index = 0
    while True:
        at = text.find("@", index)
        pct = text.find("%40", index) if "%40" in text else -1
        if at < 0 and pct < 0:
            break
        pos = at if pct < 0 or 0 <= at < pct else pct
        width = 1 if pos == at else 3
        index = pos + width
        local = _local_part(text, pos, last)
        domain_match = _DOMAIN.match(text, index)
        if domain_match is None:
            continue
        if not local and pos and text[pos - 1] == '"':
            quoted = _QUOTED_LOCAL.search(text, max(last, pos - 66), pos)
            if quoted is not None:
                local = quoted.group(0)
        if not local:
            continue
        domain = domain_match.group(0)
        tld = domain.rsplit(".", 1)[-1]
        if not (len(tld) >= 2 and (tld.isalpha() or tld.startswith("xn--"))):
            continue
        start = pos - len(local)
        if start and text[start - 1] == "<":  # "Maria Santos <maria@x.com>": a display name
            out.append(_mask_display_name(text[last:start]))
        else:
            out.append(text[last:start])
        mask, identity = _email_facts(local, domain)
        out.append(mask)
        found.append(identity)
        last = index = domain_match.end()
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _mac(match: re.Match[str]) -> str:
    # The maker's part (OUI) stays, the device's part is starred: "00:1a:2b:**:**:**".
    mac, separator = match.group(0), match.group(1)
    return mac[:9] + separator.join(["**"] * 3)


def _unescape(match: re.Match[str]) -> str:
    return chr(int(match.group(1), 16))


def _ipv4_host(match: re.Match[str]) -> str:
    # The address's /24 network stays, as the ip operator shows it: "c-203-0-113-*.hsd1...".
    return match.group(1) + match.group(2) + "*"


def _ipv6(match: re.Match[str]) -> str:
    candidate = match.group(0)
    # Too short to be more than ``::``-style loopback or unspecified addresses (and shorter
    # than anything scan() looks at: the same text alone is returned as it is).
    if len(candidate) < SHORTEST_HIT or candidate.count(":") < 2:
        return candidate
    mac = _MAC.fullmatch(candidate) if len(candidate) == 17 else None
    if mac is not None:
        return _mac(mac)
    if "." in candidate and match.string.startswith("/", match.end()):
        return candidate  # "::ffff:203.0.113.0/24": its IPv4 address is already masked
    return mask_ip(candidate.split("%", 1)[0]) or candidate


def mask_ipv6s(text: str) -> str:
    """Every IPv6 address in ``text`` cut to its network (``2001:db8::1`` -> ``2001:db8::/48``)."""
    if _IPV6_HINT.search(text) is None:  # cheaper than the full pattern, and usually enough
        return text
    return _IPV6.sub(_ipv6, text)


class TextScanner:
    """Masks PII and secrets in free text; deterministic, with a bounded result cache.

    The cache pays off because kept strings repeat (sources, user agents, provider replies);
    only short strings are cached so memory stays bounded.
    """

    def __init__(self, cache_size: int = 20_000) -> None:
        self._cache: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._cache_size = cache_size
        # Results of the detectors after URL masking (``_scan_masked``), for text whose URLs
        # held a secret or personal value: "https://x/c?token=<random>" differs per event,
        # "https://x/c?token=[secret]" is the same each time, and scanning the rest of it
        # cost two thirds of the scan.
        self._masked: dict[str, tuple[str, tuple[str, ...]]] = {}

    def scan(self, text: str, found: list[str] | None = None) -> str:
        """Return ``text`` with every hit masked; normalized emails/phones go to ``found``."""
        cached = self._cache.get(text)
        if cached is None:
            if len(text) < SHORTEST_HIT or (len(text) < 15 and text.isalpha()):
                return text  # too short for anything but a plain word (keys are 15+)
            if "_" in text and is_plain_id(text):  # every plain id has a "_"
                return text  # most envelope ids: skip the detectors (see _PLAIN_ID)
            hits: list[str] = []
            cached = (self._scan(text, hits, 0), tuple(hits))
            if len(text) <= _CACHE_MAX_LEN:
                if len(self._cache) >= self._cache_size:
                    self._cache.clear()
                self._cache[text] = cached
        if found is not None and cached[1]:
            found.extend(cached[1])
        return cached[0]

    def _rescan(self, text: str, found: list[str], depth: int) -> str:
        # Decoded URL parts: mostly short plain words, which cannot hold anything.
        if len(text) < 6 or (len(text) < 15 and text.isalpha()):
            return text
        return self._scan(text, found, depth)

    def _scan(self, text: str, found: list[str], depth: int) -> str:
        if depth > 3:
            return REDACTED  # URL-encoded URLs nested this deep are not worth the risk
        if "\\u" in text:
            text = _JSON_ESCAPE.sub(_unescape, text)
        if not text.isascii():
            text = fold(text)  # look-alikes: ＠, full-width or other-script digits, ZWSP
        if "PRIVATE KEY" in text:
            text = credentials.mask_private_keys(text)
        if "://" in text:
            masked = credentials.mask_urls(text, lambda v: self._rescan(v, found, depth + 1))
            if masked != text and len(masked) <= _CACHE_MAX_LEN:
                return self._scan_masked(masked, found)
            text = masked
        return self._detect(text, found)

    def _scan_masked(self, text: str, found: list[str]) -> str:
        """``_detect`` over text whose URLs were masked, remembered (bounded) under it."""
        cached = self._masked.get(text)
        if cached is None:
            hits: list[str] = []
            cached = (self._detect(text, hits), tuple(hits))
            if len(self._masked) >= self._cache_size:
                self._masked.clear()
            self._masked[text] = cached
        if cached[1]:
            found.extend(cached[1])
        return cached[0]

    def _detect(self, text: str, found: list[str]) -> str:
        """The detectors after URL masking: a pure function of ``text`` (hits go to ``found``)."""
        if "earer" in text or "asic" in text or "EARER" in text or "ASIC" in text:
            text = credentials.mask_auth_headers(text)
        # Pre-checks below look for words in any case: the text lower-cased once.
        low = text.lower()
        if "-u" in low or "mysql" in low or "AUTH" in text or "334 " in text:
            text = credentials.mask_command_secrets(text)
        # "@" written as %2540 (or encoded further), &#64;, &#x40;, &commat; or \u0040.
        if "%25" in text or "&" in text or "\\u" in text:
            text = _ENCODED_AT.sub("@", text)
        if "at]" in low or "at)" in low or " dot " in low:
            text = prose.unobfuscate_emails(text)  # "maria [at] gmail [dot] com"
        if "@" in text or "%40" in text:
            if ":" in text:
                text = credentials.mask_userinfo(text)
            text = _mask_emails(text, found)
        run = NUMBER_RUN.search(text)
        if run is not None:
            text = mask_numbers(text, found, run)
            if "," in text:  # latitude and longitude: digit runs with a comma between
                text = prose.mask_coordinates(text)
        if ":" in text:
            text = mask_ipv6s(text)  # and MAC addresses written with colons
        if text.count("-") >= 3:
            if text.count("-") >= 5:
                text = _MAC.sub(_mac, text)
            text = _IPV4_HOST.sub(_ipv4_host, text)
        if (
            ")=(" in text
            or "Duplicate entry '" in text
            or "Failing row contains (" in text
            or "[parameters: " in text
            or "values" in low
        ):
            text = keyvalues.mask_db_details(text)
        if "value=" in low or "value =" in low:
            text = keyvalues.mask_form_fields(text)  # before "name=" reads as a person's name
        if "form-data" in low:
            text = keyvalues.mask_multipart(text)  # before "name=" too
        named = "value" in low and ("'value'" in low or '"value"' in low)
        tuples = "('" in text or "(b'" in text or '("' in text or '(b"' in text
        if named or tuples:
            text = keyvalues.mask_pairs(text, named, tuples)  # before "name": reads as a name
        if ":" in text or "=" in text:
            text = keyvalues.mask_key_values(text)
            text = keyvalues.mask_holder_values(text)
        if (
            "ser " in text
            or "SER " in text
            or "ogin " in text
            or "OGIN " in text
            or "ccount " in text
            or "CCOUNT " in text
        ):
            text = keyvalues.mask_holder_prose(text)
        if "ode" in low or "tp " in low:
            text = keyvalues.mask_code_prose(text)
        if " " in text:  # prose: what follows is named by the words around it
            text = _scan_prose(text, low)
        if "</" in text or "--" in text:
            text = keyvalues.mask_markup_secrets(text)
        if len(text) >= 15:
            text = credentials.mask_tokens(text)
        return text


# Tax, vehicle and bank words that gate ``prose.mask_personal_prose`` (its regex over the
# whole text costs more): "TIN", "VIN", "NIF" as words ("INVALID" and "PENDING" are not), and
# "account" as the pattern names it ("account number", "account #", "bank account").
_ID_WORDS = re.compile(r"(?<![A-Za-z])(?:I?TIN|EIN|VIN|NIF|NIE)(?![A-Za-z])")
_ACCOUNT_WORDS = re.compile(r"account[ \t]*(?:n|#)|bank[ \t]+account")


def _other_greeting(low: str) -> bool:
    """Whether lower-cased text may hold a greeting in another language (the pre-check of
    ``prose.mask_greeted_names``; substring checks cost a quarter of one regex search)."""
    return (
        "hallo" in low
        or "liebe" in low
        or "geehrte" in low
        or "bonjour" in low
        or "bonsoir" in low
        or "salut" in low
        or "cher" in low
        or "hola" in low
        or "ola " in low
        or "olá" in low
        or "ciao" in low
        or "estimad" in low
        or "querid" in low
        or "caro " in low
        or "cara " in low
        or "gentile" in low
        or "beste " in low
        or "hej " in low
        or "greetings" in low
    )


def _scan_prose(text: str, low: str) -> str:
    """Codes, passwords, names and personal numbers named by the words around them (see
    ``prose``); ``low`` is ``text`` lower-cased, for the pre-checks."""
    # One-time codes in message templates: "your OTP is 482913", "482913 is your code".
    named = (
        "ode" in low
        or "otp" in low
        or "pin" in low
        or "2fa" in low
        or "mfa" in low
        or "one-t" in low
        or "one t" in low
    )
    first = "is your" in low
    to_enter = "enter " in low or "use " in low or "type " in low
    if named or first or to_enter:
        text = prose.mask_code_sms(text, named, first, to_enter)
    if (
        "assw" in low
        or "pwd" in low
        or "secret" in low
        or "token" in low
        or "key" in low
        or "identified by" in low
    ) and ("'" in text or '"' in text or " is " in low or " was " in low):
        text = prose.mask_secret_prose(text)  # "password 'hunter2' is incorrect"
    if (
        "Hi " in text
        or "Hello" in text
        or "Hey " in text
        or "Dear " in text
        or "Good " in text
        or ("," in text and _other_greeting(low))
    ):
        text = prose.mask_greeted_names(text)  # "Hi Maria Santos,"
    if (
        "customer " in low
        or "recipient " in low
        or "holder " in low
        or "sender " in low
        or "payer " in low
        or "buyer " in low
        or "contact " in low
        or "patient " in low
        or "ship to" in low
        or "bill to" in low
        or "deliver to" in low
        or "attn" in low
    ):
        text = prose.mask_person_prose(text)  # "customer Maria Santos reported ..."
    if (
        "birth" in low
        or "born" in low
        or "dob" in low
        or "ssn" in low
        or "security" in low
        or "passport" in low
        or "passeport" in low
        or "pasaporte" in low
        or "passaporto" in low
        or "reisepass" in low
        or "ausweis" in low
        or "permis" in low
        or "national" in low
        or "nino" in low
        or "tax id" in low
        or "cpf" in low
        or "dni" in low
        or "licen" in low
        or (("IN" in text or "NI" in text) and _ID_WORDS.search(text) is not None)
        or "DL#" in text
        or "steuer" in low
        or "hrersch" in low
        or "fiscal" in low
        or ("account" in low and _ACCOUNT_WORDS.search(low) is not None)
        or "routing" in low
        or "sort code" in low
        or "bsb" in low
    ):
        text = prose.mask_personal_prose(text)  # "date of birth 14/03/1985"
    if ", " in text and places.has_street_word(text, low):
        text = places.mask_addresses(text)  # "221B Baker Street, London NW1 ***"
    if "zip" in low or "post" in low or "plz" in low or "cap" in low:
        text = places.mask_named_postal_codes(text)  # "postcode SW1A ***"
    return text


_DEFAULT = TextScanner()


def scan_text(text: str, found: list[str] | None = None) -> str:
    """Scan with a shared module-level scanner (convenience for callers outside the engine)."""
    return _DEFAULT.scan(text, found)
