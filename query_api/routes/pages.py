"""The support page: search, trace, customer, job and access-log pages (server-rendered HTML).

Read-only, and no more than the JSON API: every page is built from the same query functions
and response models as ``/v1``, and writes the same access-log entry (who, route, record)
before it shows anything. Sign-in is described in ``query_api.pages_auth``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from itertools import zip_longest
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from projectors.rows import SubjectMatch
from projectors.store import Store
from query_api.auth import Principal
from query_api.deps import EscalationDep, MetricsDep, NowDep, StoreDep, StuckAfter
from query_api.exports import timeline_csv
from query_api.guide import build_guide
from query_api.pages_auth import SESSION_COOKIE, SESSION_SECONDS, cookie_is_secure, same_origin
from query_api.pages_deps import PageAudit, SignedIn, TimelineForm, checked_id, show
from query_api.pages_render import (
    SECURITY_HEADERS,
    STATIC_DIR,
    STATIC_PREFIX,
    LoginRequired,
    PageError,
    SupportPages,
    login_required_handler,
    page_error_handler,
    pages_state,
    redirect,
    render,
)
from query_api.pages_search import (
    JOB_PREFIX,
    TRACE_PREFIX,
    QueryKind,
    classify,
    id_candidates,
    search_text,
)
from query_api.pages_view import escalation_hint, glance, whole_minutes
from query_api.queries import (
    BadCursor,
    ExportTooLarge,
    export_customer_timeline,
    get_customer_timeline,
    get_customer_traces,
    get_job_history,
    get_trace_chain,
)
from query_api.routes.pages_admin import router as admin_router
from query_api.summary import render_summary_text
from redaction_rules.engine import Redactor, id_problem
from safetrail.settings import Settings

router = APIRouter(prefix="/support", include_in_schema=False)
KIND_WORDS = {
    "request": "customer request",
    "job": "background job",
    "error": "error",
    "event": "system event",
}
MAX_QUERY = 256
EXPIRED = "That search has expired; search again."
NOT_AN_ID = (
    "That reads as a key, token or personal number, not an ID, so it was not searched. "
    "Search by trace, customer or job ID, or the customer's email or phone number."
)
NO_ID_MATCH = (
    "Nothing matched: no customer, trace, job, order, workspace or request ID like that was "
    "seen within the retention period (IDs are tried as typed and in lower case, trace and job "
    "IDs also with their tr_ or job_ prefix). Check the ID on the ticket, or search by the "
    "customer's email or phone number."
)


def _safe_next(value: str | None) -> str:
    # Only this page's own paths: a crafted link must not send a user to another site.
    if value and value.startswith("/support") and not value.startswith("//"):
        return value
    return "/support"


# --- sign-in --------------------------------------------------------------------------


@router.get("/login")
def login_form(
    request: Request, next_url: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    """The sign-in form (already signed in: straight on)."""
    pages = pages_state(request)
    if pages.signer.resolve(request.cookies.get(SESSION_COOKIE)) is not None:
        return redirect(_safe_next(next_url))
    return render(request, "login.html", {"next_url": _safe_next(next_url), "error": None})


@router.post("/login")
def login(
    request: Request,
    token: Annotated[str, Form()],
    next_url: Annotated[str, Form(alias="next")] = "/support",
) -> Response:
    """Check the API token once and set the session cookie."""
    pages = pages_state(request)
    client = request.client.host if request.client else "unknown"
    ctx: dict[str, Any] = {"next_url": _safe_next(next_url)}
    if not same_origin(request):
        return render(request, "login.html", {**ctx, "error": "Sign in from this site."}, 403)
    if pages.logins.is_full(client):
        ctx["error"] = "Too many failed sign-ins. Wait a minute, then try again."
        return render(request, "login.html", ctx, 429)
    cookie = pages.signer.issue(token)
    if cookie is None:
        pages.logins.allow(client)  # only failures count, so a shared office address is fine
        ctx["error"] = "That token is not valid, or it cannot open the support page."
        return render(request, "login.html", ctx, 401)
    response = redirect(_safe_next(next_url))
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=SESSION_SECONDS,
        path="/support",
        httponly=True,
        samesite="strict",
        secure=cookie_is_secure(request),
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """End the session: in this browser, and on the server (a copy of the cookie is refused)."""
    response = redirect("/support/login")
    if same_origin(request):
        pages_state(request).signer.end(request.cookies.get(SESSION_COOKIE))
        response.delete_cookie(SESSION_COOKIE, path="/support", httponly=True, samesite="strict")
    return response


# --- guide ------------------------------------------------------------------------------


@router.get("/guide")
def guide_page(
    request: Request, user: SignedIn, stuck: StuckAfter, rules: EscalationDep
) -> Response:
    """How to read a case: statuses, steps, masks and who acts next, as this server runs them.

    Not a record view, so nothing is written to the access log."""
    redactor = pages_state(request).redactor
    guide = build_guide(redactor, rules, stuck_after_minutes=whole_minutes(stuck))
    return show(request, user, "guide.html", guide=guide, kind_words=KIND_WORDS)


# --- search -----------------------------------------------------------------------------


@router.get("")
def search_page(request: Request, user: SignedIn) -> Response:
    """The one search box."""
    return show(request, user, "search.html", matches=None, error=None)


@router.get("/search")
def search_result(request: Request, user: SignedIn, r: str | None = None) -> Response:
    """A result ``search`` kept (its redirect lands here), or the search box.

    Nothing is written to the access log: the search wrote one entry per record shown when it
    ran, and this is the same list shown again (Back, reload).
    """
    if r is None:
        return search_page(request, user)
    kept = pages_state(request).results.get(user.name, r)
    if kept is None:
        return show(request, user, "search.html", matches=None, error=EXPIRED)
    return show(request, user, "search.html", **kept)


def _shown(request: Request, user: Principal, **result: Any) -> Response:
    # Post/Redirect/Get: Back to a result must not ask to send the form again, and what was
    # typed must not go into a URL, so the list shown is kept server-side under a random ID.
    key = pages_state(request).results.keep(user.name, {"matches": None, "error": None, **result})
    return redirect(f"/support/search?r={key}")


def _as_stored(value: str, exists: Callable[[str], object]) -> str:
    # Our IDs are lower-case; one copied in capitals opens its record when only that matches.
    lower = value.lower()
    return lower if lower != value and not exists(value) and exists(lower) else value


def _naming(store: Store, value: str, now: datetime) -> list[SubjectMatch]:
    typed = list(dict.fromkeys((value, value.lower())))
    for prefix_cut in (False, True):
        for candidate in typed:
            named = store.traces_naming(candidate, now=now, prefix_cut=prefix_cut)
            if named:
                return named
    return []


@router.post("/search")
def search(
    request: Request,
    user: SignedIn,
    store: StoreDep,
    log: PageAudit,
    now: NowDep,
    q: Annotated[str, Form()] = "",
) -> Response:
    """Open the record typed; an email or phone is looked up by its keyed HMAC only.

    What was typed is never logged, stored, written back into the page or put into a URL.
    """
    if not same_origin(request):
        raise PageError(403, "Search refused", "Search from this site's own search page.")
    # Checked here, not by the form parser, so an over-long value gets this page, not JSON.
    value = search_text(q)
    kind = classify(value) if len(q) <= MAX_QUERY else QueryKind.INVALID
    ids = (QueryKind.TRACE, QueryKind.JOB, QueryKind.CUSTOMER, QueryKind.AMBIGUOUS)
    if kind in ids and id_problem(value) is not None:
        # A key, token or card or phone number: no record has such an ID (ingest refuses them),
        # so it must not go into a URL or the access log. Digits only may still be a phone.
        if kind is not QueryKind.AMBIGUOUS:
            return show(request, user, "search.html", 400, matches=None, error=NOT_AN_ID)
        kind = QueryKind.CONTACT
    if kind in (QueryKind.CUSTOMER, QueryKind.AMBIGUOUS) and not store.customer_exists(
        value, now=now
    ):
        # Not a customer's ID: maybe a trace or job ID (as typed, then with the usual prefix
        # it was typed without), or an order, workspace or request ID some event named.
        traces, jobs = id_candidates(value, TRACE_PREFIX), id_candidates(value, JOB_PREFIX)
        for trace_id, job_id in zip_longest(traces, jobs):
            if trace_id is not None and store.trace_index(trace_id):
                return redirect(f"/support/traces/{trace_id}")
            if job_id is not None and store.job_index(job_id):
                return redirect(f"/support/jobs/{job_id}")
        # As typed, then in lower case (an order ID read out over the phone or in capitals),
        # then as the end of an ID whose prefix was cut off (``UD2WHKF4`` on a receipt).
        named = _naming(store, value, now)
        if named:
            log.record_each("subject_lookup", [m.trace_id for m in named])
            if len(named) == 1:  # one trace: open it (no list of one to click through)
                return redirect(f"/support/traces/{quote(named[0].trace_id, safe='')}")
            return _shown(request, user, named=named)
        if kind is QueryKind.AMBIGUOUS:
            kind = QueryKind.CONTACT  # digits only and no ID matches: a phone number
        else:
            # Not "Customer not found" for what may have been an order ID: say what was tried.
            return show(request, user, "search.html", 404, matches=None, error=NO_ID_MATCH)
    elif kind is QueryKind.AMBIGUOUS:
        kind = QueryKind.CUSTOMER
    if kind is QueryKind.TRACE:
        return redirect(f"/support/traces/{_as_stored(value, store.trace_index)}")
    if kind is QueryKind.JOB:
        return redirect(f"/support/jobs/{_as_stored(value, store.job_index)}")
    if kind is QueryKind.CUSTOMER:
        return redirect(f"/support/customers/{value}")
    if kind is QueryKind.INVALID:
        error = (
            "That is not a trace, customer, job, order, workspace or request ID, an email "
            "address or a phone number."
        )
        return show(request, user, "search.html", 400, matches=None, error=error)
    pages = pages_state(request)
    if not pages.lookups.allow(user.name):
        limit = pages.settings.lookups_per_minute
        error = f"You reached {limit} email or phone lookups in a minute. Wait a minute."
        return show(request, user, "search.html", 429, matches=None, error=error)
    keys = pages.redactor.lookup_keys(value, pages.settings.phone_region)
    if not keys:
        error = "That is not a valid email address or phone number."
        return show(request, user, "search.html", 400, matches=None, error=error)
    matches = store.customers_by_lookup_keys(keys, now=now)
    if not matches:
        log.record("customer_lookup", "no match")
        return _shown(request, user, matches=matches)
    log.record_each("customer_lookup", [m.customer_id for m in matches])
    if len(matches) == 1:  # one customer: open their page
        return redirect(f"/support/customers/{quote(matches[0].customer_id, safe='')}")
    return _shown(request, user, matches=matches)


# --- records ----------------------------------------------------------------------------


@router.get("/traces/{trace_id}")
def trace_page(
    request: Request,
    trace_id: str,
    user: SignedIn,
    store: StoreDep,
    log: PageAudit,
    stuck: StuckAfter,
    now: NowDep,
    rules: EscalationDep,
    metrics: MetricsDep,
) -> Response:
    """Status and escalation hint on top, then steps, event history and the ticket summary."""
    checked_id(trace_id, "trace")
    log.record("trace", trace_id)
    chain = get_trace_chain(store, trace_id, now=now, stuck_after=stuck)
    hint = escalation_hint(chain, rules, now, stuck)
    metrics.observe_hint(hint.rule_id, hint.owner)
    if chain is None:
        raise PageError(404, "Trace not found", f"{hint.reason} {hint.next_step}")
    return show(
        request,
        user,
        "trace.html",
        chain=chain,
        hint=hint,
        answers=glance(chain, hint),
        summary_text=render_summary_text(chain),
        kind_words=KIND_WORDS,
    )


@router.get("/jobs/{job_id}")
def job_page(
    request: Request,
    job_id: str,
    user: SignedIn,
    store: StoreDep,
    log: PageAudit,
    stuck: StuckAfter,
    now: NowDep,
) -> Response:
    """One job: attempts with the wait before each retry, final result, events."""
    checked_id(job_id, "job")
    log.record("job", job_id)
    job = get_job_history(store, job_id, now=now, stuck_after=stuck)
    if job is None:
        raise PageError(404, "Job not found", f"No job {job_id} is known within retention.")
    return show(request, user, "job.html", job=job)


@router.get("/customers/{customer_id}.csv")
def customer_csv(
    customer_id: str, user: SignedIn, store: StoreDep, log: PageAudit, now: NowDep, f: TimelineForm
) -> Response:
    """The filtered timeline as CSV, exactly as the API exports it (same masks)."""
    checked_id(customer_id, "customer")
    _, filters, error = f
    if error:
        raise PageError(400, "Export refused", error)
    log.record("customer_export", customer_id)
    try:
        events = export_customer_timeline(store, customer_id, now=now, filters=filters)
    except ExportTooLarge as exc:  # as the API: never a file cut short without a word
        raise PageError(400, "Export too large", str(exc)) from None
    if events is None:
        raise PageError(404, "Customer not found", f"No customer {customer_id} within retention.")
    disposition = f'attachment; filename="{customer_id}-timeline.csv"'
    headers = {**SECURITY_HEADERS, "Content-Disposition": disposition}
    return Response(timeline_csv(events), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/customers/{customer_id}")
def customer_page(
    request: Request,
    customer_id: str,
    user: SignedIn,
    store: StoreDep,
    log: PageAudit,
    now: NowDep,
    stuck: StuckAfter,
    f: TimelineForm,
    cursor: str | None = None,
) -> Response:
    """The customer's timeline, oldest first, with lane and time filters and CSV export."""
    checked_id(customer_id, "customer")
    form, filters, error = f
    log.record("customer", customer_id)
    try:
        page = get_customer_timeline(store, customer_id, now=now, filters=filters, cursor=cursor)
    except BadCursor:
        page, error = None, "That page link is no longer valid; showing the first page."
        page = get_customer_timeline(store, customer_id, now=now, filters=filters)
    if page is None:
        raise PageError(404, "Customer not found", f"No customer {customer_id} within retention.")
    query = {k: v for k, v in form.items() if v} if not error else {}
    base = f"/support/customers/{customer_id}"
    # Above the filters, over all of retention: the masked contact to confirm who this is,
    # their latest traces, and the problems they met before (the same error in several traces
    # is a pattern, not bad luck).
    contact, latest, problems = store.customer_overview(customer_id, now=now)
    # Each trace's status as its own page derives it, not its latest event's.
    recent = get_customer_traces(store, latest, now=now, stuck_after=stuck)
    return show(
        request,
        user,
        "customer.html",
        customer_id=customer_id,
        contact=contact,
        recent=recent,
        problems=problems,
        page=page,
        form=form,
        error=error,
        csv_url=f"{base}.csv?{urlencode(query)}" if query else f"{base}.csv",
        next_url=f"{base}?{urlencode({**query, 'cursor': page.next})}" if page.next else None,
        first_url=f"{base}?{urlencode(query)}" if cursor else None,
    )


def install_support_pages(app: FastAPI, settings: Settings, redactor: Redactor) -> None:
    """Add the support page to the API app: routes, static files, page error handling."""
    app.state.support_pages = SupportPages.build(settings, redactor)
    app.include_router(router)
    app.include_router(admin_router)
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="support-static")
    app.add_exception_handler(LoginRequired, login_required_handler)
    app.add_exception_handler(PageError, page_error_handler)
