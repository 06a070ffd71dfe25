"""Free-text detectors for credentials: URLs, JWTs, auth headers, key=value secrets, API keys.

Each detector is a pure ``str -> str`` step used by ``scanners.TextScanner``. They look for
the *shape* of a credential (a known prefix, a ``password=`` key, a random-looking token), so
the order they run in matters and is fixed in the scanner.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from collections.abc import Callable
from urllib.parse import unquote_plus

from redaction_rules.keyvalues import is_personal_key, normal_key
from redaction_rules.masks import REDACTED, SECRET

Rescan = Callable[[str], str]

PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----.*?"
    r"(?:-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.S,
)
_SCHEME_TAIL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]{1,15}$")
_URL_REST = re.compile(r"[^\s<>\"'`{}|\\^]+")
JWT = re.compile(r"eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*")
AUTH_SCHEME = re.compile(r"\b(Bearer|bearer|BEARER|Basic|basic|BASIC)(\s+)([A-Za-z0-9._~+/\-]+=*)")
PREFIXED = re.compile(
    r"(?:"
    r"[a-z]{2,8}_(?:live|test|prod)_[A-Za-z0-9_]{8,}"
    r"|whsec_[A-Za-z0-9+/=]{16,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}"
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}|xapp-[A-Za-z0-9\-]{10,}"
    r"|AIza[0-9A-Za-z_\-]{35}"
    r"|SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}"
    r"|glpat-[A-Za-z0-9_\-]{20,}|npm_[A-Za-z0-9]{36}|shp(?:at|ss|ca|pa)_[A-Fa-f0-9]{32}"
    r"|sk-(?:proj-)?[A-Za-z0-9_\-]{20,}"
    r"|hf_[A-Za-z0-9]{30,}|secret_[A-Za-z0-9]{40,}|ntn_[A-Za-z0-9]{40,}"
    r"|pypi-[A-Za-z0-9_\-]{50,}|dop_v1_[a-f0-9]{64}|lin_api_[A-Za-z0-9]{30,}"
    r"|[0-9a-f]{32}-us\d{1,2}(?![\w\-])"  # Mailchimp: a hex key and the data center
    r")"
)

# Query parameters whose value is a credential whatever it looks like.
_SECRET_PARAMS = frozenset(
    {
        "key",
        "sig",
        "code",
        "hash",
        "sid",
        "s",
        "t",
        "k",
        "pin",
        "otp",
        "ticket",
        "nonce",
        "x",
        "pw",
        "pass",
        "passcode",
    }
)
_SECRET_PARAM_PARTS = re.compile(
    r"token|secret|passw|pwd|api_?key|access_?key|signature|credential|session|auth|jwt|otp"
    r"|private"
)
# A path segment after one of these is a one-time token (``/reset/<token>``).
_TOKEN_PATH_MARKERS = frozenset(
    {"reset", "verify", "verification", "confirm", "activate", "magic", "invite", "unsubscribe",
     "token", "tokens", "auth", "password", "login", "session", "callback", "sso", "recover",
     "recovery", "forgot", "link", "otp", "passwordless", "signin"}
)  # fmt: skip
_WORDS = re.compile(r"[-_.]")

# Every token-shaped secret is at least 15 characters long.
# "=" only as padding at the end: inside a run it joins a name to its value ("id=evt_..."),
# and judging the two as one token masked the name too.
_TOKEN_RUN = re.compile(r"[A-Za-z0-9_\-+/.]{15,}={0,2}")
_RANDOM_PIECE = re.compile(r"[A-Za-z0-9_\-+]{20,}={0,2}")
_DIGIT = re.compile(r"\d")
_BASE64_KEY = re.compile(r"[A-Za-z0-9+/]{32,}={0,2}")
_LOWER = re.compile(r"[a-z]")
_UPPER = re.compile(r"[A-Z]")
_ALNUM = re.compile(r"[A-Za-z0-9]")
_CLASS_CHANGE = re.compile(r"[a-z](?=[A-Z0-9])|[A-Z](?=[a-z0-9])|[0-9](?=[A-Za-z])")
# Prefixed ids stay readable (``cus_NffrFeUfNV2Hib``, ``pi_3MtwBwLkdIwHu7ix28a3tqPa``), and
# so do long ones in one case (``req_<32 hex>``); a prefix before 32+ characters of mixed-case
# base62 is how vendors write keys (``secret_...``, ``hf_...``), and is judged as a token.
_ID_LIKE = re.compile(r"[a-z]{1,8}_(?:[A-Za-z0-9]{1,31}|[a-z0-9]{32,}|[A-Z0-9]{32,})")
_HEXISH = re.compile(r"[0-9a-fA-F\-]+")


# Userinfo outside a URL with a scheme: protocol-relative ("//user:pass@host") or a DSN
# ("user:pass@db.internal:5432/app", "admin:pw@10.0.0.5/db"): a host followed by a port or
# a path, which an email address never is.
_USERINFO = re.compile(
    r"//[^\s/@]{1,200}@"
    r"|(?<![\w.%+\-~:/])[\w.%+\-~]{1,64}:[^\s@/:\"'<>]{1,128}@(?=[\w\-]+(?:\.[\w\-]+)*(?::\d|/))"
)


def mask_userinfo(text: str) -> str:
    """``user:password@`` before a host, where no scheme announces a URL."""
    return _USERINFO.sub(lambda m: ("//" if m.group(0)[:2] == "//" else "") + SECRET + "@", text)


# Credentials on command lines, as a failed command is reported whole ("Command '['curl',
# '-u', 'maria:hunter2', ...]' returned non-zero exit status 22"): curl's "-u user:password",
# mysql's "-p<password>", and what an SMTP client sends to log in (AUTH PLAIN's base64
# "\0user\0password", and the answers to the server's "Username:"/"Password:" prompts).
_CLI_USER = re.compile(
    r"(?<![\w\-])((?:-u|--user|--proxy-user|-U)(?:=|[ \t]+|[\"'],[ \t]*[\"'])[\"']?)"
    r"([^\s\"':]{1,100}:[^\s\"']{1,200})"
)
_MYSQL_PASSWORD = re.compile(r"(?<![\w\-])(-p)([^\s\"',]{1,200})")
_SMTP_AUTH = re.compile(
    r"((?:AUTH[ \t]+(?:PLAIN|LOGIN|XOAUTH2?|CRAM-MD5)|334[ \t]+(?:VXNlcm5hbWU6|UGFzc3dvcmQ6))"
    r"(?:[ \t]*(?:\r?\n|\\r\\n|\\n))?[ \t]*(?:C:[ \t]*)?)([A-Za-z0-9+/]{4,}={0,2})(?![\w+/=])"
)


def mask_command_secrets(text: str) -> str:
    """Passwords on command lines and in SMTP login transcripts (see ``_CLI_USER``)."""
    if "-u" in text or "-U" in text:
        text = _CLI_USER.sub(lambda m: m.group(1) + SECRET, text)
    if "mysql" in text:
        text = _MYSQL_PASSWORD.sub(lambda m: m.group(1) + SECRET, text)
    if "AUTH" in text or "334 " in text:
        text = _SMTP_AUTH.sub(lambda m: m.group(1) + SECRET, text)
    return text


def mask_private_keys(text: str) -> str:
    """PEM private key blocks, whole."""
    return PRIVATE_KEY.sub(SECRET, text)


def _auth_scheme(match: re.Match[str]) -> str:
    scheme, space, value = match.group(1), match.group(2), match.group(3)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        credential = b":" in decoded or (len(value) >= 8 and not value.isalpha())
    else:
        # "bearer tokens expire" is prose; a real token is long and not a plain word.
        credential = len(value) >= 8 and not value.isalpha()
    return f"{scheme}{space}{SECRET}" if credential else match.group(0)


def mask_auth_headers(text: str) -> str:
    """``Bearer <token>`` and ``Basic <base64 user:pass>`` credentials."""
    return AUTH_SCHEME.sub(_auth_scheme, text)


def _secret_param(name: str) -> bool:
    key = (unquote_plus(name) if "%" in name or "+" in name else name).strip().lower()
    return key in _SECRET_PARAMS or _SECRET_PARAM_PARTS.search(key) is not None


def _mask_params(query: str, rescan: Rescan) -> str:
    out = []
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        if eq and value and _secret_param(name):
            out.append(f"{name}={SECRET}")
        elif eq and value:
            decoded = unquote_plus(value) if "%" in value or "+" in value else value
            for _ in range(2):  # encoded twice or three times over (a URL in a URL's param)
                if "%" not in decoded:
                    break
                decoded = unquote_plus(decoded)
            # Scan the decoded value: %40 and %2B hide emails and phones from plain text; a
            # relative URL ("next=/reset/<token>") has its path read like a URL's.
            scanned = rescan(decoded)
            if decoded.startswith("/") and scanned == decoded:
                scanned = _mask_path(decoded, rescan)
            if scanned != decoded:
                out.append(f"{name}={scanned}")
            elif is_personal_key(
                normal_key(unquote_plus(name) if "%" in name or "+" in name else name)
            ):
                out.append(f"{name}={REDACTED}")  # ?name=Maria+Santos: no detector finds names
            else:
                out.append(pair)
        else:
            out.append(pair)
    return "&".join(out)


def _is_marker(segment: str) -> bool:
    # "reset", and "reset-password", "password_reset", "magic-link", "forgot-password".
    if segment in _TOKEN_PATH_MARKERS:
        return True
    return any(word in _TOKEN_PATH_MARKERS for word in _WORDS.split(segment) if word)


def _looks_like_token(segment: str) -> bool:
    # "/reset/k3j9x2m4q8w7" is a token; "/auth/callback" is a route.
    return len(segment) >= 16 or (len(segment) >= 6 and _DIGIT.search(segment) is not None)


def _mask_path(path: str, rescan: Rescan) -> str:
    segments = path.split("/")
    lowered = [segment.lower() for segment in segments]
    for index, segment in enumerate(segments):
        # Right after a marker, or one segment further: "/verify/email/<token>", and Django's
        # "/reset/<uidb64>/<token>" ("/password/reset/confirm/MQ/5xk-3b7a9c8d1e2f").
        near = (index and _is_marker(lowered[index - 1])) or (
            index > 1 and _is_marker(lowered[index - 2])
        )
        if near and _looks_like_token(segment):
            segments[index] = SECRET
        elif "%" in segment:
            decoded = unquote_plus(segment)  # %40 and %2B hide emails and phones
            scanned = rescan(decoded)
            if scanned != decoded:
                segments[index] = scanned
    return "/".join(segments)


# Capability URLs: whoever has one can post to it, and the secret is the path itself, often
# short or hex (``hooks.zapier.com/hooks/catch/1234567/abcd12e/``, Office 365 connectors,
# IFTTT keys): on these hosts the whole path is masked, the host stays to confirm the service.
_CAPABILITY_HOSTS = re.compile(
    r"(?:hooks\.zapier\.com|webhook\.office\.com|outlook\.office(?:365)?\.com"
    r"|maker\.ifttt\.com|hook\.[a-z0-9]+\.make\.com|hook\.integromat\.com"
    r"|[a-z0-9]+\.m\.pipedream\.net|hooks\.slack\.com|chat\.googleapis\.com)(?::\d+)?",
    re.IGNORECASE,
)


def mask_url(url: str, rescan: Rescan) -> str:
    """Userinfo, secret query/fragment parameters and token path segments of one URL."""
    rest, hash_mark, fragment = url.partition("#")
    base, qmark, query = rest.partition("?")
    scheme, _, after = base.partition("://")
    authority, slash, path = after.partition("/")
    if "@" in authority:
        authority = SECRET + "@" + authority.rsplit("@", 1)[1]
    if path and _CAPABILITY_HOSTS.fullmatch(authority):
        path = SECRET
    elif path:
        path = _mask_path(path, rescan)
    if query:
        query = _mask_params(query, rescan)
    if fragment and "=" in fragment:
        fragment = _mask_params(fragment, rescan)
    return f"{scheme}://{authority}{slash}{path}{qmark}{query}{hash_mark}{fragment}"


def mask_urls(text: str, rescan: Rescan) -> str:
    """Every URL in ``text``; decoded parameter values go through ``rescan``."""
    out: list[str] = []
    last = 0
    index = text.find("://")
    while index >= 0:
        scheme = _SCHEME_TAIL.search(text, max(last, index - 16), index)
        rest = _URL_REST.match(text, index + 3)
        if scheme is None or rest is None:
            index = text.find("://", index + 3)
            continue
        out.append(text[last : scheme.start()])
        out.append(mask_url(text[scheme.start() : rest.end()], rescan))
        last = rest.end()
        index = text.find("://", last)
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def looks_random(token: str) -> bool:
    """Whether a long token looks like a generated secret rather than a word or an id.

    Prefixed ids (``cus_...``, ``tr_...``), hex and GUIDs stay readable: support copies them.
    Random strings switch between lower case, upper case and digits far more often than
    words and identifiers do, which is what this measures (with Shannon entropy as a floor).
    """
    if _ID_LIKE.fullmatch(token) or _HEXISH.fullmatch(token):
        return False
    has_digit = _DIGIT.search(token) is not None
    mixed_case = _LOWER.search(token) is not None and _UPPER.search(token) is not None
    if not has_digit and not mixed_case:
        return False  # one-case words
    alnum = len(_ALNUM.findall(token))
    if alnum < 16:
        return False
    ratio = len(_CLASS_CHANGE.findall(token)) / (alnum - 1)
    if len(token) >= 32:
        # Long tokens: any digit/letter mix will do; identifiers are rarely that long.
        return (has_digit and ratio >= 0.15) or (mixed_case and ratio >= 0.3)
    if not has_digit:
        return ratio >= 0.5
    # CamelCase words change class about every third letter; random base62 60 % of the time.
    counts = Counter(token).values()
    entropy = -sum(c / len(token) * math.log2(c / len(token)) for c in counts)
    return entropy >= 3.0 and ratio >= (0.45 if mixed_case else 0.25)


def _prefixed(match: re.Match[str]) -> str:
    start = match.start()
    if start and match.string[start - 1].isalnum():
        return match.group(0)  # "xsk_live_..." is part of a longer word, not a key
    return SECRET


def _random_piece(match: re.Match[str]) -> str:
    return SECRET if looks_random(match.group(0)) else match.group(0)


def _token(match: re.Match[str]) -> str:
    token = match.group(0)
    if token.islower() and not _DIGIT.search(token):
        return token  # domains, paths, words: no key or random token is all lower-case letters
    if "eyJ" in token:
        token = JWT.sub(SECRET, token)
    token = PREFIXED.sub(_prefixed, token)
    # Base64 keys (AWS secret access keys: 40 characters) hold "/" and "+", where the pieces
    # below would split them into short, word-like parts.
    if (
        len(token) >= 32
        and ("/" in token or "+" in token)
        and _BASE64_KEY.fullmatch(token)
        and looks_random(token.replace("/", "").replace("+", "").rstrip("="))
    ):
        return SECRET
    if len(token) >= 20:
        token = _RANDOM_PIECE.sub(_random_piece, token)
    return token


def mask_tokens(text: str) -> str:
    """JWTs, vendor-prefixed API keys and long random-looking tokens, in one pass over the
    runs of token characters (the detectors then only look at those short runs)."""
    return _TOKEN_RUN.sub(_token, text)
