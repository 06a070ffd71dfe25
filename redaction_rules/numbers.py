"""Number-shaped PII in free text: IBANs, payment cards, IPv4 addresses, phone numbers.

All four hide in runs of digits and separators, so one regex finds the runs (it starts with
``\\d`` and the regex engine skips straight to digits) and the detectors then work on each
short run instead of scanning the whole text once per detector. Checks use maintained
libraries: ``python-stdnum`` for Luhn and IBAN checksums, ``phonenumbers`` for phones.
"""

from __future__ import annotations

import re
from functools import lru_cache

from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.us import ssn as stdnum_ssn

from redaction_rules.masks import (
    mask_iban,
    mask_ip,
    mask_last4,
)
from redaction_rules.phones import PHONE_SEPARATORS, mask_phones

# Runs of digits with separators: the one place cards, phones and IPv4 addresses can hide.
NUMBER_RUN = re.compile(r"\d[\d \-.()]{5,}\d")
# Upper or lower case, grouped by spaces or dashes ("de89 3704 ...", "DE89-3704-...").
_IBAN = re.compile(r"[A-Za-z]{2}\d{2}(?:[ \-]?[A-Za-z0-9]){11,30}")
_IBAN_START = re.compile(r"[A-Za-z]{2}\d\d")
_NOT_CARD_CHARS = re.compile(r"([^\d \-.]+)")
_CARD_SEPARATORS = re.compile(r"([ \-.]+)")
_IPV4_SHAPE = re.compile(
    r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
)
# A phone extension written against the number ("415-555-0134x22", "...0134ext.22"): the
# letters end the number, they do not glue it to a word.
_EXTENSION = re.compile(r"(?:x|ext?n?\.?)\d{1,6}(?![\w])", re.IGNORECASE)
# US Social Security numbers as written (3-2-4, dashes or spaces): checked with python-stdnum
# before phones, which would read most of them as foreign numbers (and show the rest).
_SSN = re.compile(r"(?<![\d\-])\d{3}([\- ])\d\d\1\d{4}(?![\d\-])")


def _iban_at(text: str, start: int) -> tuple[int, str] | None:
    """(end, mask) of a checksum-valid IBAN starting at ``start``, if there is one."""
    if start and text[start - 1].isalnum():
        return None
    match = _IBAN.match(text, start)
    if match is None:
        return None
    # The candidate may run into what follows ("... 3000 PAID", another IBAN): drop chunks.
    candidate = match.group(0)
    while True:
        compact = candidate.replace(" ", "").replace("-", "").upper()
        if len(compact) < 15:
            return None
        if stdnum_iban.is_valid(compact):
            return start + len(candidate), mask_iban(compact)
        cut = max(candidate.rfind(" "), candidate.rfind("-"))
        if cut < 0:
            return None
        candidate = candidate[:cut]


# Issuer prefixes of payment cards: Visa 4; Mastercard 51-55 and 2221-2720; Amex 34, 37;
# Diners 30, 36, 38; JCB 35; Discover 6011, 64, 65; UnionPay 62.
_CARD_PREFIXES = frozenset({"30", "34", "35", "36", "37", "38", "51", "52", "53", "54", "55",
                            "62", "64", "65"})  # fmt: skip


@lru_cache(maxsize=4096)
def _is_card(digits: str) -> bool:
    # The issuer prefixes keep Luhn-valid timestamps ("20240610123456...") and order numbers
    # readable: one in ten of any digits passes Luhn.
    if not 13 <= len(digits) <= 19:
        return False
    issued = (
        digits[0] == "4"
        or digits[:2] in _CARD_PREFIXES
        or digits[:4] == "6011"
        or "2221" <= digits[:4] <= "2720"
    )
    return issued and luhn.is_valid(digits)


def _card_at(parts: list[str], first: int) -> tuple[int, str] | None:
    """(last group, digits) of a card written from group ``first`` on, if there is one.

    ``parts`` alternates digit groups and separators. A card is one compact group, or groups
    of 3 to 6 digits joined by one and the same separator (4-4-4-4, 4-6-5), which keeps a
    phone number and the start of the next number from looking like a card.
    """
    head = parts[first * 2]
    if 13 <= len(head) <= 19 and _is_card(head):
        return first, head
    if not 3 <= len(head) <= 6:
        return None
    digits, last = head, first
    while last * 2 + 2 < len(parts) and len(digits) < 19:
        separator, group = parts[last * 2 + 1], parts[last * 2 + 2]
        if not 3 <= len(group) <= 6 or (last > first and separator != parts[first * 2 + 1]):
            return None
        digits += group
        last += 1
        if _is_card(digits):
            return last, digits
    return None


def _mask_cards(run: str) -> str:
    """Every card in a run, written compact or in groups separated by spaces or dashes.

    Windows of consecutive digit groups are tried left to right and the scan goes on after a
    card, so two numbers side by side are both found.
    """
    out: list[str] = []
    # "(" and ")" never sit inside a card: split on them (kept, via the capture group). Dots
    # do, as one separator between groups (4242.4242.4242.4242).
    for segment in _NOT_CARD_CHARS.split(run):
        parts = _CARD_SEPARATORS.split(segment)  # digit groups at even indexes
        groups = parts[::2]
        first = 0
        while first < len(groups):
            card = _card_at(parts, first)
            last = first if card is None else card[0]
            out.append(parts[first * 2] if card is None else mask_last4(card[1]))
            if last * 2 + 1 < len(parts):
                out.append(parts[last * 2 + 1])
            first = last + 1
    return "".join(out)


def _split_ipv4s(run: str) -> list[tuple[str, bool]]:
    """The run cut into (piece, is_masked_address) pieces, addresses already masked."""
    pieces: list[tuple[str, bool]] = []
    last = 0
    for match in _IPV4_SHAPE.finditer(run):
        start, end = match.span()
        glued = (start and run[start - 1] in "0123456789.") or run[end : end + 1] == "."
        # "Chrome/120.0.0.0": a /24 mask would hide nothing more, so keep versions tidy.
        if glued or match.group(0).endswith(".0"):
            continue
        pieces.append((run[last:start], False))
        pieces.append((mask_ip(match.group(0)) or match.group(0), True))
        last = end
    pieces.append((run[last:], False))
    return pieces


def _ssn(match: re.Match[str]) -> str:
    number = match.group(0)
    compact = number.replace(" ", "").replace("-", "")
    return "***-**-" + number[-4:] if stdnum_ssn.is_valid(compact) else number


def _mask_digits(piece: str, phones_allowed: bool, found: list[str]) -> str:
    digits = sum(map(str.isdigit, piece))
    if digits < 7:
        return piece  # too short for a phone or a card
    if digits >= 9 and not piece.lstrip().startswith("+"):
        masked = _SSN.sub(_ssn, piece)
        if masked != piece:
            piece, digits = masked, sum(map(str.isdigit, masked))
    # "+..." and "00..." announce a phone: look for phones before cards there.
    international = piece.lstrip().startswith(("+", "00"))
    # Digits are counted again only after a step changed the piece (counting is per character).
    if phones_allowed and international:
        masked = mask_phones(piece, digits, found)
        if masked != piece:
            piece, digits = masked, sum(map(str.isdigit, masked))
    if digits >= 13:
        masked = _mask_cards(piece)
        if masked != piece:
            piece, digits = masked, sum(map(str.isdigit, masked))
    if phones_allowed and not international:
        piece = mask_phones(piece, digits, found)
    return piece


def _mask_piece(piece: str, glued_left: bool, glued_right: bool, found: list[str]) -> str:
    # A group glued to a word ("c3b1 312 ...", "... 42abc") or followed by ':' (a time) is
    # part of an id, not of a phone number: phones are only looked for between such groups.
    # A card written in groups is a card wherever it stands ("PAN-4111 1111 1111 1111").
    if (glued_left or glued_right) and len(piece) >= 15 and _CARD_SEPARATORS.search(piece):
        carded = _mask_cards(piece)
        if carded != piece:
            return carded
    head = tail = ""
    if glued_left:
        cut = PHONE_SEPARATORS.search(piece)
        head, piece = (piece[: cut.end()], piece[cut.end() :]) if cut else (piece, "")
    if piece and glued_right:
        cuts = list(PHONE_SEPARATORS.finditer(piece))
        split = cuts[-1].start() if cuts else 0
        piece, tail = piece[:split], piece[split:]
    core = _mask_digits(piece, True, found) if piece else ""
    if not head and not tail:
        return core
    return _mask_digits(head, False, found) + core + _mask_digits(tail, False, found)


def _mask_run(text: str, start: int, end: int, found: list[str]) -> str:
    """Cards, IPv4 addresses and phones inside one run of digits and separators."""
    run = text[start:end]
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    # A "+" opens a phone number whatever precedes it ("tel_+14155550134"); a ":" glues only
    # when a digit follows (a time, "12:30"), not as punctuation ("... 1111: declined").
    glued_left = not run.startswith("+") and (before.isalnum() or before in "_-.")
    glued_right = (
        after.isalnum() or after in "_-" or (after == ":" and text[end + 1 : end + 2].isdigit())
    ) and not (after in "xXeE" and _EXTENSION.match(text, end))
    pieces = _split_ipv4s(run) if run.count(".") >= 3 else [(run, False)]
    out = []
    for index, (piece, is_address) in enumerate(pieces):
        if is_address:
            out.append(piece)
        else:
            left, right = glued_left and index == 0, glued_right and index == len(pieces) - 1
            out.append(_mask_piece(piece, left, right, found))
    return "".join(out)


def mask_numbers(text: str, found: list[str], first: re.Match[str] | None = None) -> str:
    """IBANs, cards, IPv4 addresses and phone numbers, found through runs of digits.

    ``first`` is ``NUMBER_RUN.search(text)`` when the caller already ran it (its pre-check).
    """
    out: list[str] = []
    last = 0
    # Runs as finditer gives them (each search goes on from the previous run's end), with
    # plain searches: finditer's scanner object cost more than the search itself.
    match = first if first is not None else NUMBER_RUN.search(text)
    while match is not None:
        start, end = match.span()
        match = NUMBER_RUN.search(text, end)  # the next run, for the next iteration
        if end <= last:
            continue  # inside an IBAN already masked
        # An IBAN's country code and check digits sit just before (or at) its long digit run.
        head = _IBAN_START.search(text, max(last, start - 12), start + 2)
        while head is not None:
            iban = _iban_at(text, head.start())
            if iban is not None:
                out.append(text[last : head.start()])
                out.append(iban[1])
                last = iban[0]
                break
            head = _IBAN_START.search(text, head.end(), start + 2)
        if start < last:  # the run goes on after an IBAN: carry on from its next digit
            start = last
            while start < end and not text[start].isdigit():
                start += 1
            if start >= end:
                continue
        # Fewer than 7 digits and 3 dots ("421 4.7.0", "2026-11-26"): no phone, card or
        # IPv4 address fits, and every piece _mask_run would look at is shorter still, so
        # it provably returns the run unchanged (a property test checks this).
        if text.count(".", start, end) < 3 and sum(map(str.isdigit, text[start:end])) < 7:
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
