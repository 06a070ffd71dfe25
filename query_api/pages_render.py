"""Rendering and shared state for the support page: templates, headers, page errors.

The page is server-rendered HTML. Every response carries headers that keep customer data out
of places it could travel by accident: no caching (shared machines, back button after sign-out),
no referrer to other sites (trace IDs in URLs stay here), no framing, and a content security policy
that allows only this site's own script and stylesheet.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from query_api.pages_auth import RateLimiter, SessionSigner
from query_api.pages_results import SearchResults
from query_api.pages_view import duration, field_label, lane_word, state_word, utc_time
from query_api.summary import error_outcome, missing_customer, order_ids
from redaction_rules.engine import Redactor
from safetrail.settings import Role, Settings

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/support/static"
FAILED_SIGN_INS_PER_MINUTE = 10  # per client address; against guessing tokens

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


class LoginRequired(Exception):
    """The page needs a signed-in user; answered with a redirect to the sign-in form."""

    def __init__(self, next_url: str) -> None:
        super().__init__("sign-in required")
        self.next_url = next_url


class PageError(Exception):
    """An error shown as a plain page (never JSON, never the raw input)."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def escalation_path(settings: Settings) -> Path | None:
    """A rules directory given in settings may carry its own ``escalation.yaml``."""
    if settings.rules_path is not None and settings.rules_path.is_dir():
        candidate = settings.rules_path / "escalation.yaml"
        if candidate.is_file():
            return candidate
    return None


def _static_versions() -> dict[str, str]:
    # A content hash in the URL lets browsers cache the files and still see every change.
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12]
        for p in STATIC_DIR.iterdir()
        if p.is_file()
    }


def _environment(versions: dict[str, str]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a typo in a template fails loudly in tests
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        utc_time=utc_time,
        duration=duration,
        state_word=state_word,
        field_label=field_label,
        lane_word=lane_word,
        order_ids=order_ids,  # the page and the copied summary name the same orders
        error_outcome=error_outcome,  # and say the same of the last error
        missing_customer=missing_customer,  # and of a customer no event names
    )
    env.globals["static_url"] = lambda name: f"{STATIC_PREFIX}/{name}?v={versions[name]}"
    return env


@dataclass
class SupportPages:
    """Everything the page routes share, built once when the app is created."""

    settings: Settings
    redactor: Redactor
    signer: SessionSigner
    lookups: RateLimiter
    logins: RateLimiter
    env: jinja2.Environment
    results: SearchResults

    @classmethod
    def build(cls, settings: Settings, redactor: Redactor) -> SupportPages:
        """Load templates now, so a broken file stops the start-up."""
        env = _environment(_static_versions())
        env.globals["phone_region"] = settings.phone_region  # the search help says it
        return cls(
            settings=settings,
            redactor=redactor,
            signer=SessionSigner(settings),
            lookups=RateLimiter(settings.lookups_per_minute),
            logins=RateLimiter(FAILED_SIGN_INS_PER_MINUTE),
            env=env,
            results=SearchResults(),
        )


def pages_state(request: Request) -> SupportPages:
    """The shared page state installed on the app."""
    pages: SupportPages = request.app.state.support_pages
    return pages


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """Render a template with the signed-in user (if any) and the page security headers."""
    env = pages_state(request).env
    html = env.get_template(name).render({"user": None, "is_admin": False, **context})
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def redirect(url: str) -> RedirectResponse:
    """A 303 redirect (GET after POST) carrying the same security headers."""
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


async def login_required_handler(request: Request, exc: Exception) -> Response:
    """Send a signed-out browser to the sign-in form, remembering where it wanted to go."""
    if not isinstance(exc, LoginRequired):  # registered for that type only
        raise exc
    return redirect(f"/support/login?next={quote(exc.next_url, safe='/')}")


async def page_error_handler(request: Request, exc: Exception) -> Response:
    """Show a page error as HTML with its status."""
    if not isinstance(exc, PageError):  # registered for that type only
        raise exc
    user = getattr(request.state, "page_user", None)
    context = {"title": exc.title, "message": exc.message, "user": user}
    context["is_admin"] = user is not None and user.has(Role.ADMIN)
    return render(request, "error.html", context, status=exc.status)
