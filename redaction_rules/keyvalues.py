"""Values written after a secret or personal key: ``password=...``, ``"name": "..."``.

This is the only way free text gives names and addresses away to a pattern scanner: after
a key that says what they are. Credentials after ``password``/``token``/... keys are caught
whatever they look like.
"""

from __future__ import annotations

import re

from redaction_rules.masks import REDACTED, SECRET

# key=value / "key": "value" context; keys are compared lower-cased with '-' as '_'.
SECRET_KEYS = frozenset(
    {"password", "passwd", "pwd", "pass", "passphrase", "secret", "client_secret", "token",
     "access_token", "refresh_token", "id_token", "auth_token", "api_key", "apikey",
     "x_api_key", "access_key", "secret_key", "private_key", "authorization", "auth",
     "signature", "sig", "session", "session_id", "sessionid", "cookie", "set_cookie", "otp",
     "pin", "cvc", "cvv", "cvv2", "credentials", "credential", "bearer"}
)  # fmt: skip
PERSONAL_KEYS = frozenset(
    {"name", "full_name", "fullname", "first_name", "firstname", "last_name", "lastname",
     "surname", "given_name", "family_name", "username", "user_name", "email", "e_mail",
     "phone", "mobile", "tel", "telephone", "msisdn", "address", "street", "line1", "line2",
     "address_line1", "address_line2", "postcode", "postal_code", "zip", "zipcode", "dob",
     "date_of_birth", "birthdate", "birth_date", "ssn", "national_id", "tax_id", "passport",
     "iban", "card_number", "pan", "account_number"}
)  # fmt: skip
# Words that name a person or their id as a key ("holder" is written in each use's style).
_PERSON_WORDS = (
    r"user|customer|recipient|sender|payer|buyer|contact|addressee|beneficiary|patient|login"
)
# Keys that name a person or their id: the value is personal unless it is one token with a
# digit ("user=42", "customer: cus_NffrFeUfNV2Hib"); "user=maria_santos" is a username.
_HOLDER = re.compile(
    rf"(?<![\w\-])(?:{_PERSON_WORDS}|(?:account[_\-]?|card)?holder)\\?[\"']?[ \t]*[:=][ \t]*"
    # quoted, also as JSON inside a JSON string ({\"cardholder\": \"Maria Santos\"})
    r"(?:\\?\"([^\"\n]{1,200}?)\\?\"|'([^'\n]{1,200})'"
    # unquoted: up to the next separator or key, an apostrophe inside a word (O'Neil) included
    r"|((?:[^,;&\n\"'}\]<>]|(?<=\w)'(?=\w)){1,200}?)"
    r"(?=$|[,;&\n\"}\]<>]|'(?!\w)|\s+[\w\-]+[\"']?\s*[:=]))",
    re.IGNORECASE,
)
# The same in prose, where lockout and sign-in errors name the account without a separator:
# "Login failed for user 'maria.santos'", "user maria_santos (1001) tally 6": a quoted value,
# or a username (words joined by "." or "_"); plain words ("user not found") stay.
_HOLDER_PROSE = re.compile(
    r"(?<![\w\-])(?:user(?:[_ ]?name)?|login|account)[ \t]+"
    r"(?:\"([^\"\n]{1,64})\"|'([^'\n]{1,64})'"
    r"|((?:[^\W\d_]+[._])+[^\W\d_]+)(?![\w@\-]|\.\w))",
    re.IGNORECASE,
)
_ID_VALUE = re.compile(r"[^\s\d]*\d\S*")
_NAME_WORD = re.compile(r"[^\W\d_][^\W\d_'\-]*(?:['\-][^\W\d_]+)*\.?")  # Maria, O'Neil, Jean-Luc
_USERNAME = re.compile(r"[^\W\d_]+(?:[._][^\W\d_]+)+")  # maria_santos, maria.santos
# The key written just before a separator (``password`` in ``"password": ``), matched on the
# reversed text from the separator back: spaces or tabs, a quote with an optional escaping
# backslash, then up to 40 key characters.
_KEY_BACKWARDS = re.compile(r"[ \t]*(?:[\"']\\?)?([A-Za-z0-9_\-]{0,40})")
# Quoted values are bounded (200 characters) so text full of separators and unclosed quotes
# cannot make each separator scan to the end of the text.
_QUOTED_VALUE = re.compile(
    r"\s*(?:\\\"((?:[^\\]|\\[^\"]){0,200}?)\\\"|\"((?:[^\"\\]|\\.){0,200})\"|'([^']{0,200})')"
)
_MARKER = r"\[(?:secret|redacted)\]"
# A bare secret runs to the next delimiter or the next "key:" (a passphrase has spaces).
_SECRET_BARE = re.compile(
    rf"\s*((?:{_MARKER}|(?!\s+[\w\-]+[\"']?\s*[:=])[^,;&\n\"'}}\]\[<>]){{1,200}})"
)
# Header values that are credentials whole, whatever scheme or list they hold
# ("Authorization: ApiKey ...", "Cookie: a=1; sid=...").
_WHOLE_LINE_KEYS = frozenset({"authorization", "proxy_authorization", "cookie", "set_cookie"})
_WHOLE_LINE = re.compile(r"[ \t]*([^\r\n]{1,500})")
# Key names that say "secret" in any style: snake, kebab, camel (compared lower-cased, so
# "newPassword" reads "newpassword"), environment variables ("PGPASSWORD", "DB_PASS").
_SECRET_KEY = re.compile(
    r"passw|passcode|passphrase|pass$|pwd|^pw$|secret|token|api_?key|access_?key"
    r"|private_?key|credential|^session(?:_?id)?$|cookie|signature|^sig$"
    r"|^(?:proxy_)?auth(?:orization|_\w*)?$|otp$|^pin$|^cvc$|^cvv2?$|^bearer$"
    # one-time and backup codes ("otp_code", "verificationCode", "mfa_code", "pin_code")
    r"|(?:otp|mfa|2fa|totp|sms|verification|verify|one_?time|security|backup|recovery|pin)"
    r"_?codes?$|security_?answer"
    r"|(?:signing|encryption|hmac|master|account|shared|storage|licen[cs]e|client|consumer"
    r"|app|subscription|sas|ssh|gpg|pgp)_?key$"
)
# Key names that say "personal" in any style ("customerName", "street_address", "billingEmail").
_PERSONAL_KEY = re.compile(
    r"(?:first|last|full|given|family|middle|customer|user|contact|holder|sur|display|billing"
    r"|shipping|recipient|sender|owner|payer|buyer|member|legal|nick|maiden|person)_?name$"
    r"|^name_?on_?card$|^card_?name$"
    r"|email|phone|mobile|address|street|postcode|postal_?code|zip_?code|birth|^dob$|ssn"
    r"|passport|national_?id|tax_?id|iban|card_?number|^pan$|account_?number"
)
# Secret values in markup and command lines: "<password>x</password>", "--password x".
_SECRET_TAG = re.compile(r"<([A-Za-z_][\w\-]{0,40})>([^<]{1,200})</\1>")
_SECRET_FLAG = re.compile(r"(--[A-Za-z][\w\-]{0,40})([ =])(\S{1,200})")
# A bare personal value runs to the next delimiter, or to the next "key:" ("name=A B email=..").
_PERSONAL_BARE = re.compile(
    rf"\s*({_MARKER}|(?:(?!\s+[\w\-]+[\"']?\s*[:=])[^,;&\n\"'}}\]<>]){{1,200}})"
)

_MARKERS = frozenset({SECRET, REDACTED})
# Database errors name the columns apart from the values: PostgreSQL's
# "Key (email, full_name)=(maria@x.com, Maria Santos) already exists." and MySQL's
# "Duplicate entry 'Maria Santos' for key 'users.full_name'".
_PG_KEY = re.compile(r"\(([^()]{1,200})\)=\((.{0,400}?)\)(?=[\s.,;]|$)", re.MULTILINE)
_MYSQL_DUPLICATE = re.compile(r"(Duplicate entry ')(.{0,400}?)(' for key ')([^']{1,128})'")
_WORD = re.compile(r"[^a-z0-9]+")
_INDEX_WORDS = frozenset({"idx", "ix", "ux", "uk", "uq", "uniq", "unique", "key", "index", "pk"})


def normal_key(raw: str) -> str:
    """``X-Api-Key`` -> ``x_api_key``: the form key lists are written in."""
    return raw.lower().replace("-", "_")


def is_personal_key(key: str) -> bool:
    """Whether a key (``normal_key`` form) names personal data (``customerName`` too)."""
    return key in PERSONAL_KEYS or _PERSONAL_KEY.search(key) is not None


def is_secret_key(key: str) -> bool:
    """Whether a key (``normal_key`` form) names a credential."""
    return key in SECRET_KEYS or _SECRET_KEY.search(key) is not None


def _secret_tag(match: re.Match[str]) -> str:
    if not is_secret_key(normal_key(match.group(1))):
        return match.group(0)
    return f"<{match.group(1)}>{SECRET}</{match.group(1)}>"


def _secret_flag(match: re.Match[str]) -> str:
    if not is_secret_key(normal_key(match.group(1).lstrip("-"))):
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}{SECRET}"


_FORM_FIELD = re.compile(r"<(?:input|textarea|option|param)\b[^<>]{0,600}>", re.IGNORECASE)
_FIELD_NAME = re.compile(r"""\b(?:name|id)\s*=\s*["']?([\w\-\[\].]{1,60})""", re.IGNORECASE)
_FIELD_VALUE = re.compile(r"""(\bvalue\s*=\s*)("[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)


# A field named for the person it holds (what ``_HOLDER`` reads after a separator).
_HOLDER_KEY = re.compile(rf"(?:{_PERSON_WORDS}|(?:account_?|card_?)?holder)(?:_?name)?")


def _form_field(match: re.Match[str]) -> str:
    tag = match.group(0)
    named = _FIELD_NAME.search(tag)
    if named is None:
        return tag
    key = normal_key(named.group(1).replace("[", "_").replace("]", ""))
    personal = is_personal_key(key) or _HOLDER_KEY.fullmatch(key) is not None
    mask = SECRET if is_secret_key(key) else REDACTED if personal else None
    if mask is None:
        return tag
    return _FIELD_VALUE.sub(lambda v: f'{v.group(1)}"{mask}"', tag)


def mask_form_fields(text: str) -> str:
    """Values of HTML form fields whose name is a secret or personal key, as an echoed page
    or payload carries them: ``<input name="password" value="...">`` (the ``value`` attribute
    is no key a scan would know)."""
    return _FORM_FIELD.sub(_form_field, text)


def mask_markup_secrets(text: str) -> str:
    """Secrets in XML-style elements and command-line flags (``--password x``)."""
    if "</" in text:
        text = _SECRET_TAG.sub(_secret_tag, text)
    if "--" in text:
        text = _SECRET_FLAG.sub(_secret_flag, text)
    return text


def mask_key_values(text: str) -> str:
    """Values after secret or personal keys: ``password=...``, ``"name": "..."``.

    Anchored on each ``:``/``=`` (a case-insensitive keyword regex over the whole text was
    ten times slower). Personal values already masked by a detector (they contain ``**`` or
    start with ``[``) are left as they are so ``phone: +1 ***-***-**67`` stays useful.
    """
    out: list[str] = []
    last = 0
    # Keys are read back from each separator: one regex match on the reversed text instead
    # of a Python loop per character. Text before ``last`` (a masked value) is out of reach:
    # it lies past ``endpos`` in the reversed text.
    backwards = text[::-1]
    size = len(text)
    # Separators left to right, found with str.find (a regex iterator cost more per hit).
    colon, equals = text.find(":"), text.find("=")
    while colon >= 0 or equals >= 0:
        if equals < 0 or 0 <= colon < equals:
            start, colon = colon, text.find(":", colon + 1)
        else:
            start, equals = equals, text.find("=", equals + 1)
        if start < last:
            continue
        key_match = _KEY_BACKWARDS.match(backwards, size - start, size - last)
        key = normal_key(key_match.group(1)[::-1]) if key_match is not None else ""
        if not key:
            continue
        secret = is_secret_key(key)
        if not secret and not is_personal_key(key):
            continue
        after = start + 1
        if text.startswith(">", after) and text[start] == "=":
            after += 1  # "password => 'x'"
        value_match = _QUOTED_VALUE.match(text, after)
        if value_match is None and key in _WHOLE_LINE_KEYS:
            value_match = _WHOLE_LINE.match(text, after)
        if value_match is None:
            value_match = (_SECRET_BARE if secret else _PERSONAL_BARE).match(text, after)
        if value_match is None:
            continue
        group = value_match.lastindex or 1  # the one alternative that matched
        raw_value = value_match.group(group) or ""
        value = raw_value.strip()
        if not value or value in _MARKERS or (not secret and "**" in value):
            continue
        v_start = value_match.start(group) + len(raw_value) - len(raw_value.lstrip())
        out.append(text[last:v_start])
        out.append(SECRET if secret else REDACTED)
        last = v_start + len(value)
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _column_kind(column: str) -> str | None:
    """``SECRET``, ``REDACTED`` or None for a column or index name (``uniq_users_email``)."""
    name = normal_key(column.strip().strip('"`').rsplit(".", 1)[-1])
    name = "_".join(w for w in _WORD.split(name) if w and w not in _INDEX_WORDS)
    if is_secret_key(name):
        return SECRET
    return REDACTED if is_personal_key(name) else None


def _pg_key(match: re.Match[str]) -> str:
    columns = match.group(1).split(",")
    kinds = [_column_kind(column) for column in columns]
    if not any(kinds):
        return match.group(0)
    values = match.group(2).split(", ")
    if len(values) != len(columns):
        shown = SECRET if SECRET in kinds else REDACTED
    else:  # one value per column: only the personal or secret ones go
        shown = ", ".join(
            value if kind is None or "**" in value else kind
            for value, kind in zip(values, kinds, strict=True)
        )
    return f"({match.group(1)})=({shown})"


def _mysql_duplicate(match: re.Match[str]) -> str:
    kind = _column_kind(match.group(4))
    if kind is None or "**" in match.group(2):
        return match.group(0)
    return f"{match.group(1)}{kind}{match.group(3)}{match.group(4)}'"


def _name_span(value: str) -> int:
    """How many leading characters of an unquoted value read as a person's name or username:
    up to four capitalized words ("Maria Santos placed ..."), or one username token
    ("maria_santos", "maria.santos"); 0 for plain words ("not found", "blocked by fraud"),
    which stay readable, and for an id (a first token with a digit)."""
    tokens = value.split()
    if not tokens or _ID_VALUE.fullmatch(tokens[0]):
        return 0
    names = 0
    for token in tokens[:4]:
        if not (token[0].isupper() and _NAME_WORD.fullmatch(token)):
            break
        names += 1
    if names:
        last = tokens[names - 1]
        return value.index(last) + len(last) if names > 1 else len(last)
    return len(tokens[0]) if len(tokens) == 1 and _USERNAME.fullmatch(tokens[0]) else 0


def _holder(match: re.Match[str]) -> str:
    group = match.lastindex or 1
    raw = match.group(group)
    value = raw.strip()
    if (
        len(value) < 3
        or "**" in value
        or value[0] == "["
        or value[-1] in ":="  # "contact: full_name: ...": a key, read on its own
        or _ID_VALUE.fullmatch(value)
    ):
        return match.group(0)
    start, end = match.span(group)
    if group == 3:  # unquoted: only what reads as a name goes
        span = _name_span(value)
        if not span:
            return match.group(0)
        start += len(raw) - len(raw.lstrip())
        end = start + span
    offset = match.start()
    whole = match.group(0)
    return whole[: start - offset] + REDACTED + whole[end - offset :]


def mask_holder_values(text: str) -> str:
    """Values after keys that name a person (``customer: Maria Santos``, ``user="..."``)
    unless they are an id (one token with a digit)."""
    return _HOLDER.sub(_holder, text)


# One-time and backup codes named in prose: "MFA code 482913", "Invalid OTP 482913", "backup code
# ABCD-EFGH-1234 already used" (a plain "error code 500" or "SMS code sent" stays).
_CODE_PROSE = re.compile(
    r"(?<![\w\-])((?:(?:otp|mfa|2fa|totp|sms|verification|one[ \-]time|security|authenticator"
    r"|backup|recovery|login|auth)[ _\-]codes?|t?otp|passcode)[ \t]*[:=#]?[ \t]*[\"']?)"
    r"(\d{4,8}|[A-Za-z0-9]{4,5}(?:-[A-Za-z0-9]{4,5}){1,3})(?![\w\-])",
    re.IGNORECASE,
)


def mask_code_prose(text: str) -> str:
    """One-time and backup codes written after their name in prose (see ``_CODE_PROSE``)."""
    return _CODE_PROSE.sub(lambda m: m.group(1) + SECRET, text)


def _holder_prose(match: re.Match[str]) -> str:
    group = match.lastindex or 1
    value = match.group(group)
    if group < 3 and (len(value) < 3 or "**" in value or value[0] == "[" or _ID_VALUE.match(value)):
        return match.group(0)  # too short to name anyone, already masked, or an id
    start, end = match.span(group)
    whole, offset = match.group(0), match.start()
    return whole[: start - offset] + REDACTED + whole[end - offset :]


def mask_holder_prose(text: str) -> str:
    """Accounts named in prose: ``user 'maria.santos'``, ``for user maria_santos``."""
    return _HOLDER_PROSE.sub(_holder_prose, text)


def mask_db_details(text: str) -> str:
    """Values of personal or secret columns in PostgreSQL and MySQL key errors."""
    if ")=(" in text:
        text = _PG_KEY.sub(_pg_key, text)
    if "Duplicate entry '" in text:
        text = _MYSQL_DUPLICATE.sub(_mysql_duplicate, text)
    return text
