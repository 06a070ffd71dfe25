"""Phone numbers in runs of digits: one number, or several side by side.

``phonenumbers`` decides what a phone number is. Numbers with ``+`` or ``00`` only need to be
possible; national formats must be valid in one of a short list of regions, tried in order,
which keeps ids, amounts and dates from reading as phones.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException

from redaction_rules.masks import REDACTED, mask_phone_number, normalize_phone, phone_facts

_IPV4_SHAPE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_DATE_SHAPE = re.compile(
    r"(?:19|20)\d\d[-/.](?:0?[1-9]|1[0-2])[-/.]\d\d?|\d\d?[-/.]\d\d?[-/.](?:19|20)\d\d"
)
_COMPACT_DATE = re.compile(r"(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d*")
# Regions tried for numbers written without "+": national trunk-0 formats, then the rest.
_TRUNK_REGIONS = ("GB", "DE", "FR", "IT", "NL", "BE", "AT", "CH", "AU", "IN", "BR", "JP", "IE")
_OTHER_REGIONS = ("ES", "PT", "IT", "PL", "MX")  # 9+ digits: short ones match too much
_MAX_GROUPS = 64
_DOTTED = re.compile(r"\d+(?:\.\d+)+")
PHONE_SEPARATORS = re.compile(r"([\s\-.()]+)")
# A decimal amount ("3125551234.00"): no phone number is written with two decimals.
_AMOUNT = re.compile(r"\d+\.\d\d")


@lru_cache(maxsize=8192)
def _phone_facts(candidate: str) -> tuple[str, str] | None:
    """``(mask, E.164)`` for a free-text candidate, or None; cached like ``phone_facts``."""
    digits = sum(map(str.isdigit, candidate))
    if digits < 7 or digits > 15 or _IPV4_SHAPE.fullmatch(candidate):
        return None
    if _DATE_SHAPE.match(candidate) or _COMPACT_DATE.fullmatch(candidate):
        return None
    if _DOTTED.fullmatch(candidate):
        groups = candidate.split(".")
        # Versions ("124.0.6367.207", "10.0.19045.3930") have one-digit parts, amounts
        # ("1234567.89") two parts; dotted phones have neither (415.555.0134, 06.12.34.56.78).
        if len(groups) == 2 or any(len(group) == 1 for group in groups):
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
    """Several numbers in one run ("415 555 0134 415 555 0199", "03-1234-5115 02 1234 5092").

    phonenumbers' matcher cannot split such runs, and taking the longest number first can
    swallow the head of the next one (variable-length plans). So: choose the windows of
    consecutive digit groups that together cover the most digits (dynamic programming).
    """
    parts = PHONE_SEPARATORS.split(candidate)
    groups = parts[::2]
    count = len(groups)
    if count > _MAX_GROUPS:
        return REDACTED  # a wall of numbers: masking it whole is cheaper and safe
    sizes = [sum(map(str.isdigit, group)) for group in groups]
    # best[i]: (digits covered, chosen window end or -1 to skip) for groups i onwards.
    best: list[tuple[int, int]] = [(0, -1)] * (count + 1)
    windows: dict[tuple[int, int], tuple[str, str]] = {}
    for first in range(count - 1, -1, -1):
        choice = (best[first + 1][0], -1)
        for last in range(first, min(first + 6, count)):
            facts = _phone_facts("".join(parts[first * 2 : last * 2 + 1]))
            covered = sum(sizes[first : last + 1]) + best[last + 1][0]
            if facts is not None and covered > choice[0]:
                windows[first, last] = facts
                choice = (covered, last)
        best[first] = choice
    out: list[str] = []
    first = 0
    while first < count:
        last = best[first][1]
        if last < 0:
            out.append(groups[first])
            last = first
        else:
            mask, e164 = windows[first, last]
            found.append("phone:" + e164)
            out.append(mask)
        if last + 1 < count:
            out.append(parts[last * 2 + 1])
        first = last + 1
    return "".join(out)


def mask_phones(run: str, digits: int, found: list[str]) -> str:
    """Phone numbers in a run of digits: the whole run first (the usual case), then windows."""
    if "." in run and _AMOUNT.fullmatch(run):
        return run
    facts = _phone_facts(run) if digits <= 15 else None
    if facts is not None:
        found.append("phone:" + facts[1])
        return facts[0]
    if digits >= 8 and PHONE_SEPARATORS.search(run):
        # Possibly a phone next to another number ("retry 3 020 7946 0958 42").
        return _phone_windows(run, found)
    return run
