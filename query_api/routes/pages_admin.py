"""The access-log page for admins: who opened which record, when, through which route."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from projectors.reads import AccessLogQuery
from query_api.deps import StoreDep, logged_filter
from query_api.pages_deps import AdminSignedIn, PageAudit, show
from query_api.queries import BadCursor, decode_cursor, encode_cursor

router = APIRouter(prefix="/support/admin", include_in_schema=False)
PAGE_SIZE = 100
# The record kinds the API and the page write, in the words an admin reads.
KINDS = (
    ("trace", "Trace"),
    ("job", "Job"),
    ("customer", "Customer timeline"),
    ("customer_export", "Customer CSV export"),
    ("customer_lookup", "Lookup by email or phone"),
    ("subject_lookup", "Lookup by order, workspace or request ID"),
    ("access_log", "Access log"),
    ("raw_trace", "Raw events of a trace (engineers)"),
    ("dead_letters", "Dead letters (engineers)"),
    ("replay", "Replay (engineers)"),
    ("redrive", "Dead-letter re-drive (engineers)"),
)


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()[:128]
    return value or None


# What the page shows of a replay's or re-drive's details, in this order (the API gives all,
# with the counts per event type and the rules versions found before).
DETAIL_KEYS = (
    ("dry_run", "dry run"),
    ("source", "source"),
    ("from", "from"),
    ("to", "to"),
    ("trace_id", "trace"),
    ("type", "type"),
    ("status", "status"),
    ("read", "read"),
    ("accepted", "accepted"),
    ("changed", "changed"),
    ("rejected", "rejected"),
    ("written", "written"),
    ("rules_after", "rules"),
)


def details_text(details: Mapping[str, Any]) -> str:
    """A replay's or re-drive's details in one line: ``dry run: False; source: raw; ...``."""
    return "; ".join(
        f"{word}: {details[key]}" for key, word in DETAIL_KEYS if details.get(key) is not None
    )


@router.get("/access-log")
def access_log_page(
    request: Request,
    user: AdminSignedIn,
    log: PageAudit,
    store: StoreDep,
    actor: str | None = None,
    record_kind: str | None = None,
    record_id: str | None = None,
    cursor: str | None = None,
) -> Response:
    """Access-log entries, oldest first, filtered by user, kind of record or record ID."""
    who, kind, ident = _clean(actor), _clean(record_kind), _clean(record_id)
    error = None
    try:
        after = decode_cursor(cursor) if cursor else None
    except BadCursor:
        after, error = None, "That page link is no longer valid; showing the first page."
    # Reading the access log is itself an access, logged like any other read.
    log.record("access_log", logged_filter(ident, kind, who))
    query = AccessLogQuery(who, kind, ident, after, PAGE_SIZE + 1)
    rows = store.access_log(query)
    entries, more = rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
    form = {"actor": who or "", "record_kind": kind or "", "record_id": ident or ""}
    params = {k: v for k, v in form.items() if v}
    base = "/support/admin/access-log"
    next_url = None
    if more:
        next_cursor = encode_cursor(entries[-1].at, entries[-1].entry_id)
        next_url = f"{base}?{urlencode({**params, 'cursor': next_cursor})}"
    return show(
        request,
        user,
        "access_log.html",
        entries=entries,
        form=form,
        kinds=KINDS,
        kind_words=dict(KINDS),
        details={e.entry_id: details_text(e.details) for e in entries if e.details},
        error=error,
        next_url=next_url,
        first_url=f"{base}?{urlencode(params)}" if cursor else None,
    )
