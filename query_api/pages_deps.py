"""Dependencies of the page routes: signed-in user, access-log writer, rendering, filters.

The dependencies only look things up (no I/O), so they are ``async def``, like those in
``query_api.deps``: each plain ``def`` would cost a thread-pool hand-off per request.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response

from ingest.schema import Lane
from query_api.auth import Principal
from query_api.deps import Audit, StoreDep
from query_api.pages_auth import SESSION_COOKIE
from query_api.pages_render import LoginRequired, PageError, pages_state, render
from query_api.queries import TimelineFilter
from redaction_rules.engine import id_problem
from safetrail.settings import Role

_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")


async def page_user(request: Request) -> Principal:
    """The signed-in user from the session cookie; otherwise off to the sign-in form."""
    user = pages_state(request).signer.resolve(request.cookies.get(SESSION_COOKIE))
    if user is None:
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(wanted if request.method == "GET" else "/support")
    request.state.page_user = user
    return user


SignedIn = Annotated[Principal, Depends(page_user)]


async def page_admin(request: Request, user: SignedIn) -> Principal:
    """The signed-in user if an admin; otherwise a plain 403 page."""
    if not user.has(Role.ADMIN):
        raise PageError(403, "Admins only", "Only admins can open the access log.")
    return user


AdminSignedIn = Annotated[Principal, Depends(page_admin)]


async def page_audit(request: Request, store: StoreDep, user: SignedIn) -> Audit:
    """The access-log writer bound to the user and the page's route template, as on ``/v1``."""
    route = getattr(request.scope.get("route"), "path", request.url.path)
    return Audit(store, user, route, None)


PageAudit = Annotated[Audit, Depends(page_audit)]


def show(request: Request, user: Principal, name: str, status: int = 200, **ctx: Any) -> Response:
    """Render a page for a signed-in user."""
    ctx.update(user=user, is_admin=user.has(Role.ADMIN))
    return render(request, name, ctx, status)


def checked_id(value: str, kind: str) -> str:
    """``value`` if it has the shape of an ID; otherwise a 404 page (the value is not echoed).

    A value that reads as a secret or personal data (a key, token, card or phone number) is no
    ID either: ingest refuses such IDs, so no record has one, and it must not reach the access
    log or the page. Checked before the caller writes its access-log entry.
    """
    if not _ID.match(value) or id_problem(value) is not None:
        raise PageError(404, f"{kind.capitalize()} not found", f"That is not a valid {kind} ID.")
    return value


class _BadTime(ValueError):
    """A time filter the form cannot use; the message names the field, never its value."""


def _parse_time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _BadTime(f"'{name}' is not a date and time.") from exc
    if not 1900 <= parsed.year <= 2299:
        raise _BadTime(f"'{name}' must be between 1900 and 2299.")
    # The form asks for UTC; a value without a zone is taken as UTC.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


async def timeline_form(
    lane: str | None = None, since: str | None = None, until: str | None = None
) -> tuple[dict[str, str], TimelineFilter, str | None]:
    """The filter form's values, the filter they make, and a plain error if they are wrong."""
    form = {"lane": lane or "", "since": since or "", "until": until or ""}
    try:
        chosen = Lane(lane) if lane else None
    except ValueError:
        # The enum's own message quotes the value, which may be anything pasted into the URL.
        return {**form, "lane": ""}, TimelineFilter(), "Choose customer actions or system work."
    try:
        start, end = _parse_time(since, "From"), _parse_time(until, "Until")
    except ValueError as exc:
        # Only our own messages are shown: any other error's text may carry the input. Nor is
        # a value that is no time written back into the form (the browser would drop it).
        message = str(exc) if isinstance(exc, _BadTime) else "Use a date and time in UTC."
        return {**form, "since": "", "until": ""}, TimelineFilter(), message
    if start is not None and end is not None and end <= start:
        return form, TimelineFilter(), "'Until' must be later than 'From'."
    return form, TimelineFilter(lane=chosen, since=start, until=end), None


TimelineForm = Annotated[tuple[dict[str, str], TimelineFilter, str | None], Depends(timeline_form)]
