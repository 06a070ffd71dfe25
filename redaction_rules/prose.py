"""Personal data and secrets that prose names without a key: the words around them say what
they are ("your OTP is 482913", "Hi Maria Santos,", "date of birth 14/03/1985").

Each detector is a pure ``str -> str`` step run by ``scanners.TextScanner`` behind a cheap
substring pre-check; most kept strings never reach the regexes here.
"""

from __future__ import annotations

import re

from redaction_rules.masks import REDACTED, SECRET, mask_words

# One-time codes as SMS and email templates write them, the name first with a verb or a
# colon between ("Your verification code is: 482913", "your OTP is 482913", "2FA: 482913",
# "Your PIN is 4821", "Sign-in code 482-913"). A plain "error code 5001" or "SMS code sent"
# stays: the name must say one-time, or be "your code".
_CODE_NAMED = re.compile(
    r"(?<![\w\-])((?:(?:otp|mfa|2fa|totp|sms|verification|one[ \-]time|security|authenticator"
    r"|backup|recovery|log[ \-]?in|sign[ \-]?in|auth|access|activation|your)"
    r"[ _\-]codes?|one[ \-]time[ \-](?:password|passcode|pin)|t?otp|passcode|2fa|mfa|pin)"
    r"(?:[ \t]+(?:is|was))?[ \t]*[:=#]?[ \t]*[\"']?)"
    r"(\d{4,8}|\d{3}[ \-]\d{3})(?![\w\-])",
    re.IGNORECASE,
)
# The code first: "482913 is your verification code", "G-482913 is your Google code".
_CODE_FIRST = re.compile(
    r"(?<![\w\-])((?:[A-Z]-)?)(\d{4,8}|\d{3}[ \-]\d{3})"
    r"(?=[ \t]+is[ \t]+(?:your|the)[ \t]+(?:[\w\-]+[ \t]+){0,3}"
    r"(?:code|otp|pin|passcode|password)\b)",
    re.IGNORECASE,
)
# The code after what to do with it: "Enter 482913 on the sign-in page", "use 482913 to
# verify". Six digits and more (or 3-3): "use 1024 as the limit" stays.
_CODE_TO_ENTER = re.compile(
    r"(?<![\w\-])((?:enter|use|type)[ \t]+(?:the[ \t]+)?(?:code[ \t]+)?)"
    r"(\d{6,8}|\d{3}[ \-]\d{3})(?=[ \t]+(?:to|on|in|at|as|for|when|within)\b)",
    re.IGNORECASE,
)


def mask_code_sms(text: str, named: bool, first: bool, to_enter: bool) -> str:
    """One-time codes in message templates: after their name (``named``), before "is your
    ... code" (``first``), after "enter"/"use" (``to_enter``); the flags are the caller's
    pre-checks."""
    if named:
        text = _CODE_NAMED.sub(lambda m: m.group(1) + SECRET, text)
    if first:
        text = _CODE_FIRST.sub(lambda m: m.group(1) + SECRET, text)
    if to_enter:
        text = _CODE_TO_ENTER.sub(lambda m: m.group(1) + SECRET, text)
    return text


# Passwords named in prose, where auth logs and SQL echo them: "password 'hunter2' is
# incorrect", "the password is hunter2", "ALTER USER ... WITH PASSWORD 'x'", "IDENTIFIED BY
# 'x'". Unquoted only after "is"/"was" and only with a digit or a symbol in it: "password is
# incorrect" and "token was revoked" stay.
_SECRET_PROSE = re.compile(
    r"(?<![\w\-])(?:(?:password|passwd|passphrase|pwd|secret|api[ _\-]?key|token)"
    r"((?:[ \t]+(?:is|was))?[ \t]+)|identified[ \t]+by([ \t]+))"
    r"(?:\"([^\"\n]{1,200})\"|'([^'\n]{1,200})'"
    r"|(?<=(?:is|as)[ \t])([^\s\"',;]{1,200}?)(?=[.,;:)]?(?:\s|$)))",
    re.IGNORECASE,
)
_STRONG = re.compile(r"[\d!@#$%^&*+=?~]")


def _secret_prose(match: re.Match[str]) -> str:
    group = match.lastindex or 1
    value = match.group(group)
    if group < 3 or value in ("[secret]", "[redacted]") or not value.strip():
        return match.group(0)
    if group == 5 and (len(value) < 4 or _STRONG.search(value) is None):
        return match.group(0)  # "password is incorrect", "token is 2h" (too short)
    start, end = match.span(group)
    offset = match.start()
    whole = match.group(0)
    return whole[: start - offset] + SECRET + whole[end - offset :]


def mask_secret_prose(text: str) -> str:
    """Passwords and keys named in prose (see ``_SECRET_PROSE``)."""
    return _SECRET_PROSE.sub(_secret_prose, text)


# A person's name after a greeting ("Hi Maria Santos,", "Dear Ms. Lima:"), as rendered email
# and SMS bodies carry it into provider errors: one to four capitalized words, then a comma,
# "!", ":", the line's end or the text's.
_GREETING = re.compile(
    r"(?<![\w\-])((?:[Hh]i|[Hh]ello|[Hh]ey|[Dd]ear|[Hh]iya|[Gg]ood (?:morning|afternoon|evening)"
    # other languages' greetings, and a comma after the greeting ("Hello, Maria Santos")
    r"|[Gg]reetings|[Hh]allo|[Ll]ieber?|[Ss]ehr geehrter?(?: (?:Frau|Herr))?|[Bb]onjour|[Bb]onsoir"
    r"|[Ss]alut|[Cc]h[eè]re?|[Hh]ola|[Ee]stimad[oa]|[Qq]uerid[oa]|[Oo]l[aá]|[Cc]iao|[Cc]ar[oa]"
    r"|[Gg]entile|[Bb]este|[Hh]ej)"
    r",?[ \t]+)((?:[^\W\d_][\w'\-]*\.?[ \t]+){0,3}[^\W\d_][\w'\-]*)(?=[ \t]*(?:[,!:\n\r]|$))"
)
# Who a message names after a word for a person ("customer Maria Santos reported ...",
# "recipient 'Ana Lima' unreachable"): two to four capitalized words, or a quoted value.
_PERSON_PROSE = re.compile(
    r"(?<![\w\-])((?:customer|recipient|card[ ]?holder|account[ ]?holder|sender|payer|buyer"
    r"|contact|patient|beneficiary|addressee|(?:ship|bill|deliver)[ \t]+to:?|attn:?)"
    r"(?:[ \t]+name)?[ \t]+)"
    r"(?:\"([^\"\n]{3,64})\"|'([^'\n]{3,64})'"
    r"|((?:[^\W\d_][\w'\-]*[ \t]+){1,3}[^\W\d_][\w'\-]*))",
    re.IGNORECASE,
)
_NAME = re.compile(r"[^\W\d_][^\W\d_'\-]*(?:['\-][^\W\d_]+)*\.?")
# Words a greeting or a person word is followed by that name nobody.
_NOT_NAMES = frozenset(
    {"customer", "customers", "team", "there", "all", "everyone", "support", "sir", "madam",
     "user", "users", "friend", "friends", "folks", "world", "admin", "again", "service",
     "success", "care", "portal", "account", "id", "ids", "name", "email", "phone", "sales",
     "billing", "us", "engineering", "welt", "zusammen", "alle", "tous", "todos", "tutti",
     "everybody"}
)  # fmt: skip


def _name_words(words: str, least: int) -> int:
    """How many leading words of ``words`` read as a name (capitalized name words), or 0
    when fewer than ``least`` do or the first names nobody ("Team", "Support")."""
    count = 0
    for word in words.split():
        if not (word[0].isupper() and _NAME.fullmatch(word)):
            break
        if count == 0 and word.lower().rstrip(".") in _NOT_NAMES:
            return 0
        count += 1
    return count if count >= least else 0


def _greeting(match: re.Match[str]) -> str:
    words = match.group(2)
    count = _name_words(words, 1)
    if count != len(words.split()):
        return match.group(0)  # "Hi there", "Hello again"
    return match.group(1) + mask_words(words)


def _person(match: re.Match[str]) -> str:
    head = match.group(1)
    if match.group(2) is not None or match.group(3) is not None:
        value = match.group(2) if match.group(2) is not None else match.group(3)
        if "**" in value or value[0] == "[" or any(c.isdigit() for c in value):
            return match.group(0)  # masked already, or an id
        quote = '"' if match.group(2) is not None else "'"
        return f"{head}{quote}{REDACTED}{quote}"
    words = match.group(4)
    count = _name_words(words, 2)
    if not count:
        return match.group(0)
    parts = words.split()
    name_end = words.index(parts[count - 1]) + len(parts[count - 1])
    return head + mask_words(words[:name_end]) + words[name_end:]


def mask_greeted_names(text: str) -> str:
    """Names after a greeting (see ``_GREETING``)."""
    return _GREETING.sub(_greeting, text)


def mask_person_prose(text: str) -> str:
    """Names after a word for a person (see ``_PERSON_PROSE``)."""
    return _PERSON_PROSE.sub(_person, text)


# Dates of birth and national numbers after the words that name them, with no separator
# ("date of birth 14/03/1985", "born on March 14, 1985", "SSN 123456789", "passport X1234567",
# "NINO QQ 12 34 56 C", "CPF 123.456.789-09"): the value must hold a digit.
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_PERSONAL_PROSE = re.compile(
    r"(?<![\w\-])((?:date[ \t]+of[ \t]+birth|birth[ \t]?date|born(?:[ \t]+on)?|dob"
    r"|ssn|social[ \t]+security(?:[ \t]+(?:number|no\.?))?|passport(?:[ \t]+(?:number|no\.?))?"
    r"|national[ \t]+(?:insurance|id)(?:[ \t]+(?:number|no\.?))?|nino|tax[ \t]+id|cpf|dni"
    r"|driver'?s?[ \t]+licen[cs]e(?:[ \t]+(?:number|no\.?))?"
    # the same in other languages, and bank and vehicle numbers ("Reisepass Nr. C01X00T47",
    # "Steuer-ID 12345678901", "NIF 12345678Z", "routing number 021000021", "VIN 1HGCM8...")
    r"|(?:reisepass|personalausweis|f[üu]hrerschein|steuer[ \t\-]?id|steuernummer"
    r"|steueridentifikationsnummer|(?:num[ée]ro[ \t]+de[ \t]+)?passeport"
    r"|permis[ \t]+de[ \t]+conduire"
    r"|pasaporte|passaporto|codice[ \t]+fiscale|(?-i:NIF|NIE|TIN|ITIN|EIN|VIN|DL#)"
    r"|bank[ \t]+account|account[ \t]*(?:number|no\.?|nr\.?|#)|routing|aba[ \t]+routing"
    r"|sort[ \t]+code|bsb)"
    r"(?:[ \t]+(?:number|no\.?|nr\.?|nummer|n[°º]|num[ée]ro))?#?)"
    r"(?:[ \t]+(?:is|was|of))?[ \t]*[:=#]?[ \t]*)"
    # (a number the phone scan read first: "CPF 123.456.789-09" was "+1 ***-***-**09")
    rf"(\+\d{{1,3}}[ ][\d*][\d* \-().]*\d|{_MONTH}[ \t]+\d{{1,2}}(?:st|nd|rd|th)?,?[ \t]+\d{{4}}"
    rf"|\d{{1,2}}[ \t]+{_MONTH}[ \t]+\d{{4}}"
    r"|[A-Za-z0-9][A-Za-z0-9./\-]*(?:[ ](?:\d[\d./\-]*|(?-i:[A-Z]{1,2})(?![\w\-])))*)",
    re.IGNORECASE,
)


_BANK = re.compile(r"bank|account|routing|aba|sort|bsb", re.IGNORECASE)


def _few_digits(value: str) -> bool:
    return sum(c.isdigit() for c in value) < 6


def _personal_prose(match: re.Match[str]) -> str:
    value = match.group(2)
    if len(value) < 4 or not any(c.isdigit() for c in value):
        return match.group(0)  # no number in it
    if "**" in value and value[0] != "+":
        return match.group(0)  # masked already as what it is ("SSN ***-**-6789")
    if (
        match.group(1)[:1] in "abrsABRS"
        and _BANK.match(match.group(1))
        and value[0] != "+"
        and _few_digits(value)
    ):
        return match.group(0)  # bank words: "routing v2", "account no. 42" (an id) stay
    return match.group(1) + REDACTED


def mask_personal_prose(text: str) -> str:
    """Dates of birth and national numbers named in prose (see ``_PERSONAL_PROSE``)."""
    return _PERSONAL_PROSE.sub(_personal_prose, text)


# Addresses written to dodge address scrapers: "maria [at] gmail [dot] com", "maria(at)gmail
# (dot)com", "maria at gmail dot com" (a "dot" in the domain in the plain-word form).
_AT_WORD = r"(?:[ \t]*[\[\(][ \t]*at[ \t]*[\]\)][ \t]*|[ \t]+at[ \t]+)"
_DOT_WORD = r"(?:[ \t]*[\[\(][ \t]*dot[ \t]*[\]\)][ \t]*|[ \t]+dot[ \t]+)"
_OBFUSCATED_EMAIL = re.compile(
    rf"(?<![\w.%+\-])([\w.%+\-]{{1,64}}){_AT_WORD}"
    rf"((?:[\w\-]+(?:\.|{_DOT_WORD}))+[A-Za-z]{{2,24}})(?![\w\-])",
    re.IGNORECASE,
)
_DOT_SPLIT = re.compile(_DOT_WORD, re.IGNORECASE)


def _obfuscated(match: re.Match[str]) -> str:
    separator = match.string[match.end(1) : match.start(2)]
    domain = match.group(2)
    if separator.strip().lower() == "at" and not _DOT_SPLIT.search(domain):
        return match.group(0)  # "maria at example.com" without a "dot": plain prose
    return match.group(1) + "@" + _DOT_SPLIT.sub(".", domain)


def unobfuscate_emails(text: str) -> str:
    """``maria [at] gmail [dot] com`` -> ``maria@gmail.com``, for the email scan to mask."""
    return _OBFUSCATED_EMAIL.sub(_obfuscated, text)


# Geographic coordinates with the precision of a street address ("37.774929,-122.419416"),
# cut to one decimal (about 11 km): enough to confirm a city, as the ip mask confirms a
# network.
_COORDINATES = re.compile(
    r"(?<![\w.\-])(-?(?:[1-8]?\d|90)\.\d)\d{2,}([ \t]*,[ \t]*)"
    r"(-?(?:1[0-7]\d|[1-9]?\d|180)\.\d)\d{2,}(?![\w.])"
)


# What every pair holds, starting with a literal the regex engine skips to: most text with
# digit runs and a comma (user agents, amounts) has no such pair and ends here.
_COORDINATES_HINT = re.compile(r"\.\d{3,}[ \t]*,[ \t]*-?\d{1,3}\.\d{3}")


def mask_coordinates(text: str) -> str:
    """Latitude/longitude pairs with three decimals or more, cut to one decimal."""
    if _COORDINATES_HINT.search(text) is None:
        return text
    return _COORDINATES.sub(lambda m: m.group(1) + m.group(2) + m.group(3), text)
