"""Dependencies of the engineers' routes: engineer role, a stated reason, the raw-read budget.

Raw drill-down, dead letters and replays may show or rewrite unredacted data, so each request
must say why (``X-Access-Reason`` header or ``reason``; a ticket or incident ID), the reason
goes into the access log with the entry, and raw reads are limited per user
(``SAFETRAIL_RAW_READS_PER_MINUTE``), shared between the API and the support page panel.
Lookups without I/O are ``async def`` (no thread-pool hand-off), as in ``query_api.deps``.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Annotated

from fastapi import Depends, Request

from projectors.replay import MIN_REASON, reason_problem
from query_api.auth import Principal
from query_api.deps import CurrentUser
from query_api.errors import ApiError
from query_api.pages_auth import RateLimiter
from redaction_rules.engine import Redactor
from safetrail.settings import Role

_lock = threading.Lock()


async def engineer(user: CurrentUser) -> Principal:
    """The caller if an engineer (or admin); otherwise 403 explaining the restriction."""
    if not user.has(Role.ENGINEER):
        raise ApiError(
            403,
            "forbidden",
            f"Role '{user.role.value}' may not use this route: raw events, replays and dead "
            "letters are restricted to engineers (and admins). Support sees the redacted trace "
            "at /v1/traces/{trace_id}; ask an engineer to open the raw events with a ticket ID.",
        )
    return user


Engineer = Annotated[Principal, Depends(engineer)]


def stated_reason(value: str | None, *, header: bool = False) -> str | None:
    """A stated reason as the access log keeps it (trimmed, never cut short), or None when
    blank. Header values arrive decoded as Latin-1; UTF-8 ones are read back as UTF-8."""
    text = value or ""
    if header:
        with contextlib.suppress(UnicodeError):  # not UTF-8: kept as received
            text = text.encode("latin-1").decode("utf-8")
    return text.strip() or None


async def required_reason(request: Request, reason: str | None = None) -> str:
    """The ``X-Access-Reason`` header or ``reason`` query parameter; 400 when neither holds a
    usable one (``projectors.replay.reason_problem``), before anything is read or logged."""
    stated = stated_reason(request.headers.get("x-access-reason"), header=True)
    stated = stated or stated_reason(reason)
    problem = reason_problem(stated or "")
    if stated is None or len(stated) < MIN_REASON:
        raise ApiError(
            400,
            "reason_required",
            "State why you need raw data: send 'X-Access-Reason: <ticket or incident ID>' "
            "(or ?reason=...). It is written to the access log.",
        )
    if problem is not None:
        # The reason is not echoed: it may hold whatever was pasted.
        raise ApiError(400, "reason_invalid", f"The stated reason cannot be logged: {problem}.")
    return stated


RequiredReason = Annotated[str, Depends(required_reason)]


def raw_limiter(request: Request) -> RateLimiter:
    """The per-user budget of raw reads, created on first use and shared by API and page."""
    state = request.app.state
    with _lock:
        limiter: RateLimiter | None = getattr(state, "raw_limiter", None)
        if limiter is None:
            limiter = RateLimiter(state.settings.raw_reads_per_minute)
            state.raw_limiter = limiter
    return limiter


def spend_raw_read(limiter: RateLimiter, user: Principal, per_minute: int) -> None:
    """Count one raw read for ``user``; 429 once the per-minute budget is used up."""
    if not limiter.allow(user.name):
        raise ApiError(
            429,
            "rate_limited",
            f"You reached {per_minute} raw reads in a minute; wait a minute and retry.",
            {"Retry-After": "60"},
        )


async def get_redactor(request: Request) -> Redactor:
    """The rules the app runs (the ones a replay re-applies)."""
    redactor: Redactor = request.app.state.redactor
    return redactor


RawLimiter = Annotated[RateLimiter, Depends(raw_limiter)]
RedactorDep = Annotated[Redactor, Depends(get_redactor)]
