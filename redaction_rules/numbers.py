"""Number-shaped PII in free text: IBANs, payment cards, IPv4 addresses, phone numbers.

All four hide in runs of digits and separators, so one regex finds the runs (it starts with
``\\d`` and the regex engine skips straight to digits) and the detectors then work on each
short run instead of scanning the whole text once per detector. Checks use maintained
libraries: ``python-stdnum`` for Luhn and IBAN checksums, ``phonenumbers`` for phones.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException
from stdnum import iban as stdnum_iban
from stdnum import luhn

from redaction_rules.masks import (
    mask_iban,
    mask_ip,
    mask_last4,
    mask_phone_number,
    normalize_phone,
    phone_facts,
)

# Runs of digits with separators: the one place cards, phones and IPv4 addresses can hide.
NUMBER_RUN = re.compile(r"\d[\d \-.()]{5,}\d")
_IBAN = re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}")
_IBAN_START = re.compile(r"[A-Z]{2}\d\d")
_NOT_CARD_CHARS = re.compile(r"([^\d \-]+)")
_CARD_SEPARATORS = re.compile(r"([ \-]+)")
_PHONE = re.compile(r"(?:\+|00)?\(?\d[\d \-.()]{5,24}\d")
_IPV4_SHAPE = re.compile(
    r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
)
_DATE_SHAPE = re.compile(
    r"(?:19|20)\d\d[-/.](?:0?[1-9]|1[0-2])[-/.]\d\d?|\d\d?[-/.]\d\d?[-/.](?:19|20)\d\d"
)
_COMPACT_DATE = re.compile(r"(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d*")
# Regions tried for numbers written without "+": national trunk-0 formats, then the rest.
_TRUNK_REGIONS = ("GB", "DE", "FR", "IT", "NL", "BE", "AT", "CH", "AU", "IN", "BR", "JP", "IE")
_OTHER_REGIONS = ("ES", "PT", "IT", "PL", "MX")  # 9+ digits: short ones match too much


def _iban(match: re.Match[str]) -> str:
    text = match.group(0)
    start = match.start()
    if start and match.string[start - 1].isalnum():
        return text
    # The candidate may run into a following word ("... 3000 PAID"): drop trailing chunks.
    candidate = text
    while True:
        compact = candidate.replace(" ", "")
        if len(compact) < 15:
            return text
        if stdnum_iban.is_valid(compact):
            return mask_iban(compact) + text[len(candidate) :]
        if " " not in candidate:
            return text
        candidate = candidate.rsplit(" ", 1)[0]


@lru_cache(maxsize=4096)
def _is_card(digits: str) -> bool:
    # Payment cards start with 2-6 (Mastercard 2-series, Amex 3, Visa 4, MC 5, Discover 6);
    # the check keeps Luhn-valid timestamps and order numbers readable.
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn.is_valid(digits)


def _card_at(groups: list[str], first: int) -> tuple[int, str] | None:
    """(last group, digits) of the first card made of groups ``first..last``, if any."""
    digits = ""
    for last in range(first, len(groups)):
        digits += groups[last]
        if len(digits) > 19:
            return None
        if _is_card(digits):
            return last, digits
    return None


def _mask_cards(run: str) -> str:
    """Every card in a run, written compact or in groups separated by spaces or dashes.

    Windows of consecutive digit groups are tried left to right and the scan goes on after a
    card, so two numbers side by side are both found.
    """
    out: list[str] = []
    # "(", "." and ")" never sit inside a card: split on them (kept, via the capture group).
    for segment in _NOT_CARD_CHARS.split(run):
        parts = _CARD_SEPARATORS.split(segment)  # digit groups at even indexes
        groups = parts[::2]
        first = 0
        while first < len(groups):
            card = _card_at(groups, first)
            last = first if card is None else card[0]
            out.append(parts[first * 2] if card is None else mask_last4(card[1]))
            if last * 2 + 1 < len(parts):
                out.append(parts[last * 2 + 1])
            first = last + 1
    return "".join(out)


@lru_cache(maxsize=8192)
def _phone_facts(candidate: str) -> tuple[str, str] | None:
    """``(mask, E.164)`` for a free-text candidate, or None; cached like ``phone_facts``."""
    digits = sum(map(str.isdigit, candidate))
    if digits < 7 or digits > 15 or _IPV4_SHAPE.fullmatch(candidate):
        return None
    if _DATE_SHAPE.match(candidate) or _COMPACT_DATE.fullmatch(candidate):
        return None
    if candidate.startswith(("+", "00")):
        return phone_facts("+" + candidate[2:] if candidate[0] == "0" else candidate, None)
    if candidate.lstrip("(").startswith("0"):
        regions: tuple[str, ...] = _TRUNK_REGIONS
    elif candidate.isdigit():
        regions = ("US",)  # a bare run of digits is far more often an id than a foreign phone
    else:
        regions = ("US", *_OTHER_REGIONS) if digits >= 9 else ()
    for region in regions:
        try:
            number = phonenumbers.parse(candidate, region)
        except NumberParseException:
            continue
        # Without a country code only numbers valid in a region count: fewer false hits.
        if phonenumbers.is_valid_number(number):
            return mask_phone_number(number), normalize_phone(number)
    return None


def _phone_windows(candidate: str, found: list[str]) -> str:
    # Several numbers in a row ("415 555 0134 415 555 0199") fail as one candidate and
    # phonenumbers' matcher cannot split them either: try runs of consecutive groups.
    parts = re.split(r"(\s+)", candidate)
    groups = parts[::2]
    out: list[str] = []
    first = 0
    while first < len(groups):
        for last in range(min(first + 5, len(groups) - 1), first - 1, -1):
            facts = _phone_facts("".join(parts[first * 2 : last * 2 + 1]))
            if facts is not None:
                found.append("phone:" + facts[1])
                out.append(facts[0])
                first = last + 1
                break
        else:
            out.append(groups[first])
            first += 1
        if first < len(groups):
            out.append(parts[first * 2 - 1])
    return "".join(out)


def _mask_phones(run: str, found: list[str]) -> str:
    def one(match: re.Match[str]) -> str:
        candidate = match.group(0)
        facts = _phone_facts(candidate)
        if facts is not None:
            found.append("phone:" + facts[1])
            return facts[0]
        if " " in candidate and sum(map(str.isdigit, candidate)) >= 8:
            # Possibly a phone next to another number ("retry 3 020 7946 0958 42").
            return _phone_windows(candidate, found)
        return candidate

    return _PHONE.sub(one, run)


def _mask_ipv4s(run: str) -> str:
    def one(match: re.Match[str]) -> str:
        start, end = match.span()
        if (start and run[start - 1] in "0123456789.") or run[end : end + 1] == ".":
            return match.group(0)
        if match.group(0).endswith(".0"):
            # "Chrome/120.0.0.0": a /24 mask would hide nothing more, so keep versions tidy.
            return match.group(0)
        return mask_ip(match.group(0)) or match.group(0)

    return _IPV4_SHAPE.sub(one, run)


def _mask_run(text: str, start: int, end: int, found: list[str]) -> str:
    """Cards, IPv4 addresses and phones inside one run of digits and separators."""
    run = text[start:end]
    digits = sum(map(str.isdigit, run))
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    if run.count(".") >= 3:
        run = _mask_ipv4s(run)
    if digits < 7:
        return run  # too short for a phone or a card
    if digits >= 13:
        run = _mask_cards(run)
    # Digits glued to a word or followed by ':' are ids and times, not phone numbers.
    if not (before.isalnum() or before in "_-.") and not (after.isalnum() or after in "_-:"):
        run = _mask_phones(run, found)
    return run


def mask_numbers(text: str, found: list[str]) -> str:
    """IBANs, cards, IPv4 addresses and phone numbers, found through runs of digits."""
    out: list[str] = []
    last = 0
    for match in NUMBER_RUN.finditer(text):
        start, end = match.span()
        if start < last:
            continue  # inside an IBAN already masked
        # An IBAN's country code and check digits sit just before (or at) its long digit run.
        head = _IBAN_START.search(text, max(last, start - 12), start + 2)
        if head is not None:
            iban = _IBAN.match(text, head.start())
            if iban is not None and (masked_iban := _iban(iban)) != iban.group(0):
                out.append(text[last : head.start()])
                out.append(masked_iban)
                last = iban.end()
                continue
        # Widen left for a phone's "+" or its "(" (the run itself starts at a digit).
        opener = text[start - 1] if start > last else ""
        if opener == "+" or (opener == "(" and ")" in text[start:end]):
            start -= 1
        masked = _mask_run(text, start, end, found)
        if masked != text[start:end]:
            out.append(text[last:start])
            out.append(masked)
            last = end
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)
