"""Sign-in for the support page, and the per-user lookup limit.

Browsers cannot attach a bearer header by themselves, so the page takes the same API token once
through a sign-in form and keeps a signed session cookie instead. The cookie holds no token:
only a keyed fingerprint of it, an expiry, a random session part and a signature; signing out
ends that session on the server too (a copied cookie stops working). Every request resolves the
fingerprint against the tokens configured *now*, so removing a token from
``SAFETRAIL_API_TOKENS`` signs its sessions out at once, and the page user always has exactly the
name and role the bearer token has on the JSON API.

The cookie is HttpOnly (scripts cannot read it) and SameSite=Strict (other sites cannot make the
browser send it, which is what protects the POST forms); POSTs also check where they come from
(``Sec-Fetch-Site``, else ``Origin``) so a foreign page cannot sign someone in with its token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque

from starlette.requests import Request

from query_api.auth import Principal
from safetrail.settings import Role, Settings

SESSION_COOKIE = "safetrail_session"
SESSION_SECONDS = 8 * 3600  # one working day
# Pages are for people; service tokens may only send events.
PAGE_ROLES = frozenset({Role.SUPPORT, Role.ENGINEER, Role.ADMIN})


class SessionSigner:
    """Issues and checks session cookie values for the configured API tokens."""

    def __init__(self, settings: Settings) -> None:
        # A key of its own, derived from the HMAC key, so a session signature can never be
        # confused with a lookup key or any other HMAC the system stores.
        self._key = hmac.new(
            settings.effective_hmac_key, b"safetrail support session v1", hashlib.sha256
        ).digest()
        # Signatures of sessions signed out before their expiry (replaced whole, under the
        # lock, so readers never see a dict being changed).
        self._ended: dict[str, int] = {}
        self._lock = threading.Lock()
        self._users = {
            self._fingerprint(token): Principal(name=info.name, role=info.role)
            for token, info in settings.effective_tokens.items()
            if info.role in PAGE_ROLES
        }

    def _fingerprint(self, token: str) -> str:
        return hmac.new(self._key, b"token:" + token.encode(), hashlib.sha256).hexdigest()[:40]

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, b"session:" + body.encode(), hashlib.sha256).hexdigest()

    def issue(self, token: str, now: float | None = None) -> str | None:
        """A cookie value for ``token``, or None when the token may not use the page. Each
        sign-in gets a session of its own (a random part), which sign-out can end alone."""
        fingerprint = self._fingerprint(token.strip())
        if fingerprint not in self._users:
            return None
        expires = int((now if now is not None else time.time()) + SESSION_SECONDS)
        body = f"{fingerprint}.{expires}.{secrets.token_hex(8)}"
        return f"{body}.{self._sign(body)}"

    def _checked(self, cookie: str | None, now: float) -> tuple[str, int, str] | None:
        """(fingerprint, expiry, signature) of a well-formed, genuine, unexpired cookie."""
        if not cookie or cookie.count(".") != 3:
            return None
        fingerprint, expires, nonce, signature = cookie.split(".")
        if not hmac.compare_digest(self._sign(f"{fingerprint}.{expires}.{nonce}"), signature):
            return None
        if not expires.isdigit() or int(expires) < now:
            return None
        return fingerprint, int(expires), signature

    def resolve(self, cookie: str | None, now: float | None = None) -> Principal | None:
        """The signed-in user for a cookie value; None when missing, forged, expired or
        signed out (or its token was removed)."""
        checked = self._checked(cookie, now if now is not None else time.time())
        if checked is None or checked[2] in self._ended:
            return None
        return self._users.get(checked[0])

    def end(self, cookie: str | None, now: float | None = None) -> None:
        """Sign a session out for good: its cookie stops working even if it was copied.

        Ended sessions are kept until they would have expired anyway, in this process: with
        several API replicas, each refuses the sessions signed out through it (removing the
        token from ``SAFETRAIL_API_TOKENS`` signs out everywhere).
        """
        at = now if now is not None else time.time()
        checked = self._checked(cookie, at)
        if checked is None:
            return
        with self._lock:
            self._ended = {sig: expiry for sig, expiry in self._ended.items() if expiry >= at} | {
                checked[2]: checked[1]
            }


def same_origin(request: Request) -> bool:
    """Whether a form POST comes from this site.

    Browsers say so in ``Sec-Fetch-Site``; older ones only send ``Origin``. A request with
    neither (curl, scripts) is allowed: it carries no browser cookie to abuse.
    """
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin in {f"http://{host}", f"https://{host}"}


def cookie_is_secure(request: Request) -> bool:
    """Mark the cookie Secure whenever the page is served over HTTPS (directly or via a proxy)."""
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded.split(",")[0].strip() == "https"


class RateLimiter:
    """At most ``limit`` events per user in any sliding 60-second window (thread-safe)."""

    def __init__(self, limit: int, window_seconds: float = 60.0) -> None:
        self.limit = limit
        self.window = window_seconds
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, at: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= at - self.window:
            hits.popleft()
        return hits

    def allow(self, key: str, now: float | None = None) -> bool:
        """Record one attempt for ``key``; False (recording nothing) once the limit is reached."""
        at = now if now is not None else time.monotonic()
        with self._lock:
            hits = self._recent(key, at)
            if len(hits) >= self.limit:
                return False
            hits.append(at)
            return True

    def is_full(self, key: str, now: float | None = None) -> bool:
        """Whether ``key`` has reached the limit, without recording an attempt."""
        at = now if now is not None else time.monotonic()
        with self._lock:
            return len(self._recent(key, at)) >= self.limit
