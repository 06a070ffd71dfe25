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
# A secret given as a tuple or list ("auth=('maria', 'hunter2')", Python's requests).
_TUPLE_VALUE = re.compile(r"\s*([\(\[][^()\[\]\n]{1,200}[\)\]])")
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
    # national numbers by their names ("nino", "cpf", "aadhaar", "driverLicenseNumber")
    r"|national_?insurance|^nino$|^ni_?number$|^cpf$|^cnpj$|^dni$|^nie$|^nif$|^bsn$|aadhaar"
    r"|pesel|personnummer|codice_?fiscale|^sin$|^tin$|steuer_?id|social_?security"
    r"|driver_?s?_?licen[cs]e|licen[cs]e_?number"
    # where someone is: coordinates to a few metres ("lat", "lng", "geo_location")
    r"|^(?:geo_?)?(?:lat|lng|lon|long|latitude|longitude)$|^geo_?loc|^coordinates$|^gps"
)
# Secret and personal values in markup and command lines: "<password>x</password>",
# "<wsse:Password Type="...">x</wsse:Password>" (a namespace prefix and attributes),
# "<firstName>Maria</firstName>", "--password x".
_SECRET_TAG = re.compile(
    r"<((?:[A-Za-z_][\w\-.]{0,40}:)?([A-Za-z_][\w\-]{0,40}))(\s[^<>]{0,300})?>([^<]{1,200})</\1>"
)
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


# What is_personal_key and is_secret_key found for recent keys. Each answer costs a regex
# search over the key (two for a key that is neither: most are), and the same few keys recur
# in every URL and log line ("https", "utm_source", "v"): pure answers, remembered. Bounded:
# keys longer than _KNOWN_KEY_LEN are not kept, and a full table starts afresh.
_KNOWN_PERSONAL: dict[str, bool] = {}
_KNOWN_SECRET: dict[str, bool] = {}
_KNOWN_KEY_LEN = 64
_KNOWN_KEYS_MAX = 4096


def _remember(table: dict[str, bool], key: str, answer: bool) -> bool:
    if len(key) <= _KNOWN_KEY_LEN:
        if len(table) >= _KNOWN_KEYS_MAX:
            table.clear()
        table[key] = answer
    return answer


def is_personal_key(key: str) -> bool:
    """Whether a key (``normal_key`` form) names personal data (``customerName`` too)."""
    known = _KNOWN_PERSONAL.get(key)
    if known is not None:
        return known
    answer = key in PERSONAL_KEYS or _PERSONAL_KEY.search(key) is not None
    return _remember(_KNOWN_PERSONAL, key, answer)


def is_secret_key(key: str) -> bool:
    """Whether a key (``normal_key`` form) names a credential."""
    known = _KNOWN_SECRET.get(key)
    if known is not None:
        return known
    answer = key in SECRET_KEYS or _SECRET_KEY.search(key) is not None
    return _remember(_KNOWN_SECRET, key, answer)


def _secret_tag(match: re.Match[str]) -> str:
    tag, attributes, value = match.group(1), match.group(3) or "", match.group(4)
    mask = field_mask(normal_key(match.group(2)))
    if mask is None or value in _MARKERS or (mask == REDACTED and "**" in value):
        return match.group(0)  # no secret or personal element, or masked already
    return f"<{tag}{attributes}>{mask}</{tag}>"


def _secret_flag(match: re.Match[str]) -> str:
    if not is_secret_key(normal_key(match.group(1).lstrip("-"))):
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}{SECRET}"


# Form fields, and the elements configuration files give a key and a value
# (<add key="ApiKey" value="..."/>, <property name="db.password" value="..."/>).
_FORM_FIELD = re.compile(r"<[A-Za-z][\w:.\-]{0,40}\s[^<>]{0,600}>")
_FIELD_NAME = re.compile(
    r"""(?<![\w\-])(?:name|id|key)\s*=\s*["']?([\w\-\[\].]{1,60})""", re.IGNORECASE
)
_FIELD_VALUE = re.compile(r"""(\bvalue\s*=\s*)("[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)


# A field named for the person it holds (what ``_HOLDER`` reads after a separator).
_HOLDER_KEY = re.compile(rf"(?:{_PERSON_WORDS}|(?:account_?|card_?)?holder)(?:_?name)?")


def field_mask(key: str) -> str | None:
    """``SECRET``, ``REDACTED`` or None for a field named ``key`` (``normal_key`` form): a
    secret key, a personal key or one naming a person (``cardholder``), or neither."""
    if is_secret_key(key):
        return SECRET
    if is_personal_key(key) or _HOLDER_KEY.fullmatch(key) is not None:
        return REDACTED
    return None


def _form_field(match: re.Match[str]) -> str:
    tag = match.group(0)
    named = _FIELD_NAME.search(tag)
    if named is None:
        return tag
    mask = field_mask(normal_key(named.group(1).replace("[", "_").replace("]", "")))
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
        if key == "name" and "form-data" in text[max(0, start - 20) : start]:
            continue  # a multipart part's field name (its value: mask_multipart)
        after = start + 1
        if text.startswith(">", after) and text[start] == "=":
            after += 1  # "password => 'x'"
        value_match = _QUOTED_VALUE.match(text, after)
        if value_match is None and key in _WHOLE_LINE_KEYS:
            value_match = _WHOLE_LINE.match(text, after)
        if value_match is None and secret and text.startswith(("(", "[", " (", " ["), after):
            value_match = _TUPLE_VALUE.match(text, after)
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


# Rows and parameters a database error prints whole, with no column beside each value:
# PostgreSQL's "Failing row contains (42, Maria Santos, null, 1985-03-14, ...)." (not-null and
# check violations) and SQLAlchemy's "[parameters: ('Maria Santos', 'maria@x.com', ...)]".
_FAILING_ROW = re.compile(r"(Failing row contains \()[^\n]*\)")
_SQL_PARAMETERS = re.compile(r"(\[parameters: )[^\n]*\]")
# "INSERT INTO users (name, email, password) VALUES ('Maria Santos', ..., 'hunter2')": the
# columns name the values, as in a key error.
_INSERT = re.compile(
    r"(INSERT[ \t]+INTO[ \t]+[\w.\"`\[\]]{1,128}[ \t]*\(([^()]{1,500})\)[ \t]*VALUES[ \t]*)"
    r"((?:\((?:'(?:[^'\\]|''|\\.)*'|[^'()]|\([^()]*\)){0,2000}\)[ \t]*,?[ \t]*)+)",
    re.IGNORECASE,
)
_SQL_PLACEHOLDER = re.compile(r"%s|%\(\w+\)s|\?|:\w+|\$\d+|NULL|DEFAULT", re.IGNORECASE)
_SQL_ROW = re.compile(r"\(((?:'(?:[^'\\]|''|\\.)*'|[^'()]|\([^()]*\))*)\)")


def _sql_values(row: str) -> list[str]:
    """The values of one ``VALUES (...)`` row, split at commas outside quotes and brackets."""
    values: list[str] = []
    depth, quoted, start = 0, False, 0
    for index, char in enumerate(row):
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            values.append(row[start:index])
            start = index + 1
    values.append(row[start:])
    return values


def _insert(match: re.Match[str]) -> str:
    kinds = [_column_kind(column) for column in match.group(2).split(",")]
    if not any(kinds):
        return match.group(0)

    def row(values_match: re.Match[str]) -> str:
        values = _sql_values(values_match.group(1))
        if len(values) != len(kinds):  # fail closed: no value can be told apart
            return f"('{SECRET if SECRET in kinds else REDACTED}')"
        shown = []
        for value, kind in zip(values, kinds, strict=True):
            plain = value.strip()
            if kind is None or "**" in plain or _SQL_PLACEHOLDER.fullmatch(plain):
                shown.append(value)
            else:
                lead = value[: len(value) - len(value.lstrip())]
                shown.append(f"{lead}'{kind}'" if plain.startswith("'") else f"{lead}{kind}")
        return "(" + ",".join(shown) + ")"

    return match.group(1) + _SQL_ROW.sub(row, match.group(3))


def mask_db_details(text: str) -> str:
    """Values of personal or secret columns in PostgreSQL and MySQL key errors, in INSERT
    statements, and whole rows and parameter lists that name no column."""
    if ")=(" in text:
        text = _PG_KEY.sub(_pg_key, text)
    if "Duplicate entry '" in text:
        text = _MYSQL_DUPLICATE.sub(_mysql_duplicate, text)
    if "Failing row contains (" in text:
        text = _FAILING_ROW.sub(lambda m: m.group(1) + REDACTED + ")", text)
    if "[parameters: " in text:
        text = _SQL_PARAMETERS.sub(lambda m: m.group(1) + REDACTED + "]", text)
    if "VALUES" in text or "values" in text or "Values" in text:
        text = _INSERT.sub(_insert, text)
    return text


# A multipart/form-data part, as request dumps print it: the field's name in the part's
# header, its value after the blank line (real line breaks, or "\r\n" written out).
_MULTIPART = re.compile(
    r"(form-data;[ \t]*name=([\"']?)([^\"'\r\n;\\]{1,100})\2[^\r\n\\]{0,300}?"
    r"(?:\r?\n|\\r\\n|\\n){2})((?:(?!\\r|\\n)[^\r\n]){1,1000})",
    re.IGNORECASE,
)


def _multipart(match: re.Match[str]) -> str:
    mask = field_mask(normal_key(match.group(3).replace("[", "_").replace("]", "")))
    value = match.group(4)
    if mask is None or value.strip() in _MARKERS or (mask == REDACTED and "**" in value):
        return match.group(0)
    return match.group(1) + mask


def mask_multipart(text: str) -> str:
    """Values of secret or personal fields in multipart/form-data bodies (see ``_MULTIPART``)."""
    return _MULTIPART.sub(_multipart, text)


# Fields sent as name/value pairs, as form builders and CRMs write them
# ([{"name": "firstname", "value": "Maria"}], {"key": "api_key", "value": "..."}): the value
# is named by the pair's other member.
_PAIR_NAME = (
    r"[\"'](?:name|key|field|property|attribute|param|label)[\"'][ \t]*:[ \t]*"
    r"[\"']([\w.\-\[\] ]{1,60})[\"']"
)
_PAIR_VALUE = r"""("(?:[^"\\\n]|\\.){0,500}"|'[^'\n]{0,500}'|[^,}\]\s]{1,100})"""
_NAMED_VALUE = re.compile(
    rf"({_PAIR_NAME}[ \t]*,[ \t]*[\"']value[\"'][ \t]*:[ \t]*){_PAIR_VALUE}", re.IGNORECASE
)
_VALUE_NAMED = re.compile(
    rf"([\"']value[\"'][ \t]*:[ \t]*){_PAIR_VALUE}(?=[ \t]*,[ \t]*{_PAIR_NAME})", re.IGNORECASE
)
# Header lists as Python prints them ([(b'x-api-key', b'...'), ('authorization', 'Token ...')]).
_TUPLE_PAIR = re.compile(
    r"(\([ \t]*b?([\"'])([\w\-.]{1,60})\2[ \t]*,[ \t]*b?([\"']))([^\"'\n]{1,500})(\4[ \t]*\))"
)


def _pair_value(name: str, value: str) -> str | None:
    """The masked form of ``value`` when ``name`` is a secret or personal field, else None."""
    mask = field_mask(normal_key(name.strip().replace("[", "_").replace("]", "")))
    inner = value.strip("\"'")
    if mask is None or inner in _MARKERS or (mask == REDACTED and "**" in inner):
        return None
    return f'"{mask}"' if value[:1] == '"' else f"'{mask}'" if value[:1] == "'" else mask


def _named_value(match: re.Match[str]) -> str:
    shown = _pair_value(match.group(2), match.group(3))
    return match.group(0) if shown is None else match.group(1) + shown


def _value_named(match: re.Match[str]) -> str:
    shown = _pair_value(match.group(3), match.group(2))
    return match.group(0) if shown is None else match.group(1) + shown


def _tuple_pair(match: re.Match[str]) -> str:
    key = normal_key(match.group(3))
    mask = SECRET if key in _WHOLE_LINE_KEYS else field_mask(key)
    value = match.group(5)
    if mask is None or value in _MARKERS or (mask == REDACTED and "**" in value):
        return match.group(0)
    return match.group(1) + mask + match.group(6)


def mask_pairs(text: str, named: bool, tuples: bool) -> str:
    """Values named by the other member of a pair: ``{"name": "firstname", "value": ...}``
    (``named``) and ``('x-api-key', '...')`` (``tuples``)."""
    if named:
        text = _NAMED_VALUE.sub(_named_value, text)
        text = _VALUE_NAMED.sub(_value_named, text)
    if tuples:
        text = _TUPLE_PAIR.sub(_tuple_pair, text)
    return text
