"""What support typed in the one search box: a trace, job or customer ID, or an email/phone.

The classification is by shape only (pure, no storage). An email or phone number is never
kept: the caller turns it into the keyed lookup HMAC at once and drops the text.
"""

from __future__ import annotations

import re
from enum import StrEnum

_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
_TRACE = re.compile(r"^tr_[A-Za-z0-9_\-]{1,61}$")
_JOB = re.compile(r"^job_[A-Za-z0-9_.:\-]{1,124}$")
_PHONE = re.compile(r"^\+?[\d\s().\-/]{6,40}$")
# Long digit runs are more often phone numbers than customer IDs; see ``classify``.
LONG_DIGITS = 8


class QueryKind(StrEnum):
    """What a search is for."""

    TRACE = "trace"
    JOB = "job"
    CUSTOMER = "customer"
    CONTACT = "contact"  # an email address or phone number the customer gave
    AMBIGUOUS = "ambiguous"  # digits only: a customer ID or a phone number without +
    INVALID = "invalid"


def classify(text: str) -> QueryKind:
    """The kind of what was typed. ``AMBIGUOUS`` lets the caller check for a customer first."""
    value = text.strip()
    if not value:
        return QueryKind.INVALID
    if "@" in value:
        return QueryKind.CONTACT
    if _TRACE.match(value):
        return QueryKind.TRACE
    if _JOB.match(value):
        return QueryKind.JOB
    digits = sum(ch.isdigit() for ch in value)
    if value.isdigit():
        return QueryKind.AMBIGUOUS if digits >= LONG_DIGITS else QueryKind.CUSTOMER
    if _PHONE.match(value) and digits >= 6:
        return QueryKind.CONTACT
    if _ID.match(value):
        return QueryKind.CUSTOMER
    return QueryKind.INVALID


TRACE_PREFIX, JOB_PREFIX = "tr_", "job_"


def search_text(typed: str) -> str:
    """What was typed without surrounding spaces and a leading ``#``, as a receipt or a ticket
    writes an order number ("Order #UD2WHKF4")."""
    value = typed.strip()
    return value[1:].lstrip() if value.startswith("#") else value


def id_candidates(value: str, prefix: str) -> tuple[str, ...]:
    """The IDs ``value`` may stand for: itself, then with ``prefix`` when typed without it, then
    the same in lower case.

    Support copies IDs from tickets and screenshots where the ``tr_``/``job_`` prefix is often
    cut off, or where the ID was typed in capitals (ours are lower-case); the exact value is
    tried first, so an ID minted elsewhere without our prefix or in capitals still opens its
    own record.
    """
    found: list[str] = []
    for typed in (value, value.lower()):
        for candidate in (typed,) if typed.startswith(prefix) else (typed, prefix + typed):
            if candidate not in found:
                found.append(candidate)
    return tuple(found)
