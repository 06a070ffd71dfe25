"""The restricted raw panel of the support page: engineers only, with a stated reason.

The trace page shows engineers (never support) a small form asking for a ticket or incident
ID; it opens this page, which writes the access-log entry with that reason, counts against the
same per-user raw-read budget as ``GET /v1/raw/traces/{trace_id}``, and shows the raw events.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from projectors.replay import reason_problem
from query_api.deps import Audit, StoreDep
from query_api.engineer_deps import raw_limiter, stated_reason
from query_api.pages_deps import SignedIn, checked_id, show
from query_api.pages_render import PageError
from safetrail.settings import Role

router = APIRouter(prefix="/support", include_in_schema=False)


@router.get("/traces/{trace_id}/raw")
def raw_trace_page(
    request: Request,
    trace_id: str,
    user: SignedIn,
    store: StoreDep,
    reason: Annotated[str | None, Query(max_length=400)] = None,
) -> Response:
    """Raw events of a trace for an engineer who stated why."""
    if not user.has(Role.ENGINEER):
        raise PageError(
            403,
            "Engineers only",
            "Raw events are restricted to engineers. The trace page shows everything support "
            "needs; ask an engineer (with the ticket ID) if you need more.",
        )
    checked_id(trace_id, "trace")
    stated = stated_reason(reason)
    if stated is None or reason_problem(stated) is not None:
        raise PageError(
            400,
            "Reason needed",
            "Enter the ticket or incident ID on the trace page: 3 to 200 characters on one line.",
        )
    settings = request.app.state.settings
    if not raw_limiter(request).allow(user.name):
        limit = settings.raw_reads_per_minute
        raise PageError(
            429, "Too many raw reads", f"You reached {limit} in a minute. Wait a minute."
        )
    route = getattr(request.scope.get("route"), "path", request.url.path)
    Audit(store, user, route, stated).record("raw_trace", trace_id)
    events = store.raw_trace(trace_id)
    rendered = [
        orjson.dumps(
            e.model_dump(mode="json", exclude_none=True), option=orjson.OPT_INDENT_2
        ).decode()
        for e in events
    ]
    return show(request, user, "raw.html", trace_id=trace_id, reason=stated, events=rendered)
