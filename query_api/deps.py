"""Dependency aliases for routes: settings, store, ingestor, clock, caller, role checks.

They only look things up (no I/O), so they are ``async def``: FastAPI runs a plain ``def``
dependency in its thread pool, one hand-off per dependency and request (measured on a
1 M-event store, a trace answered 404 took 1-2 ms less at p50 and 2-4 ms less at p90 with
these on the event loop).

Routes declare what they need as ``Annotated`` aliases (``StoreDep``, ``SupportUser``, ...)
instead of reaching into ``app.state``; tests swap the real objects through ``create_app``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ingest.collector import Ingestor
from ingest.schema import IDENTIFIER_SHAPE
from projectors.store import Store
from query_api.auth import Principal, TokenBook, authenticate, authorize
from query_api.errors import ApiError
from query_api.metrics import Metrics
from redaction_rules.engine import id_problem
from redaction_rules.escalation import EscalationRules
from safetrail.settings import Role, Settings

Clock = Callable[[], datetime]
T = TypeVar("T")
_bearer = HTTPBearer(
    auto_error=False,
    description="An API token from SAFETRAIL_API_TOKENS (the demo prints its tokens).",
)
_MAX_REASON = 200


async def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> Store:
    """The store opened by the app's lifespan."""
    store: Store | None = getattr(request.app.state, "store", None)
    if store is None:
        raise ApiError(503, "storage_unavailable", "Storage is not open yet; retry shortly.")
    return store


async def get_ingestor(request: Request) -> Ingestor:
    """Where this app sends ingested events; 503 when this replica does not ingest."""
    ingestor: Ingestor | None = getattr(request.app.state, "ingestor", None)
    if ingestor is None:
        raise ApiError(
            503,
            "ingest_unavailable",
            "This API replica does not ingest events: with SAFETRAIL_KAFKA_BOOTSTRAP set, "
            "services publish to Kafka (or to a replica running the Kafka ingestor).",
        )
    return ingestor


async def get_now(request: Request) -> datetime:
    """The current time from the app's clock (fixed in tests)."""
    clock: Clock = request.app.state.clock
    return clock()


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from the bearer token; 401 when missing or unknown."""
    book: TokenBook = request.app.state.token_book
    if credentials is None:
        header = request.headers.get("authorization")
        # HTTPBearer hides a malformed header; tell "wrong scheme" apart from "no header".
        scheme, _, token = (header or "").partition(" ")
        return authenticate(book, scheme or None, token.strip() or None if header else None)
    return authenticate(book, credentials.scheme, credentials.credentials)


def require(role: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through callers whose role includes ``role`` (else 403)."""

    async def check(user: Annotated[Principal, Depends(current_user)]) -> Principal:
        return authorize(user, role)

    return check


async def access_reason(request: Request) -> str | None:
    """Optional ``X-Access-Reason`` header (e.g. a ticket number), stored in the access log."""
    reason = request.headers.get("x-access-reason")
    return reason.strip()[:_MAX_REASON] or None if reason else None


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_stuck_after(settings: SettingsDep) -> timedelta:
    """How long a queued or running step may go without news before it counts as stuck."""
    return timedelta(minutes=settings.stuck_after_minutes)


async def get_escalation(request: Request) -> EscalationRules:
    """The escalation rules the app loaded (who acts next on a trace)."""
    rules: EscalationRules = request.app.state.escalation
    return rules


async def get_metrics(request: Request) -> Metrics:
    """The app's Prometheus metrics."""
    metrics: Metrics = request.app.state.metrics
    return metrics


StuckAfter = Annotated[timedelta, Depends(get_stuck_after)]
EscalationDep = Annotated[EscalationRules, Depends(get_escalation)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
StoreDep = Annotated[Store, Depends(get_store)]
IngestorDep = Annotated[Ingestor, Depends(get_ingestor)]
NowDep = Annotated[datetime, Depends(get_now)]
CurrentUser = Annotated[Principal, Depends(current_user)]
ServiceUser = Annotated[Principal, Depends(require(Role.SERVICE))]
SupportUser = Annotated[Principal, Depends(require(Role.SUPPORT))]
EngineerUser = Annotated[Principal, Depends(require(Role.ENGINEER))]
AdminUser = Annotated[Principal, Depends(require(Role.ADMIN))]
AccessReason = Annotated[str | None, Depends(access_reason)]


def logged_filter(*values: str | None) -> str:
    """The record ID an access-log read is logged under: its first filter, or ``*``. A value
    that reads as personal data or a secret (an email typed into the record ID filter) is
    logged as ``(not an ID)``: the access log is kept for good."""
    value = next((v for v in values if v), "*")
    if value == "*" or (IDENTIFIER_SHAPE.fullmatch(value) and id_problem(value) is None):
        return value
    return "(not an ID)"


class Audit:
    """Writes the access-log entry for a read: who, which route, which record, why."""

    def __init__(self, store: Store, user: Principal, route: str, reason: str | None) -> None:
        self._store, self._user, self._route, self._reason = store, user, route, reason

    def record(self, record_kind: str, record_id: str) -> None:
        """Log the read before the record is returned (no entry, no answer)."""
        self._store.log_access(
            actor=self._user.name,
            role=self._user.role.value,
            route=self._route,
            record_kind=record_kind,
            record_id=record_id,
            reason=self._reason,
        )

    def record_each(self, record_kind: str, record_ids: Sequence[str]) -> None:
        """One entry per record a list shows (a search's matches), so "who saw this record"
        finds each of them; written concurrently, the store's group commit shares the writes.
        """
        if len(record_ids) <= 1:
            for record_id in record_ids:
                self.record(record_kind, record_id)
            return
        with ThreadPoolExecutor(max_workers=min(8, len(record_ids))) as pool:
            list(pool.map(partial(self.record, record_kind), record_ids))

    async def around(
        self, record_kind: str, record_id: str, read: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        """Run ``read(*args, **kwargs)`` while the entry is written; answer once both are done.

        The read does not wait for the write (on a server the write's fsync'd insert is the
        slow part), but nothing is returned, and no error is raised from the read, before the
        entry is durable: if the write fails, its error is what the caller gets (no entry, no
        answer).
        """
        entry = asyncio.ensure_future(run_in_threadpool(self.record, record_kind, record_id))
        try:
            result = await run_in_threadpool(read, *args, **kwargs)
        except BaseException:
            await entry
            raise
        await entry
        return result


async def get_audit(
    request: Request, store: StoreDep, user: CurrentUser, reason: AccessReason
) -> Audit:
    """The access-log writer for this request, bound to its caller and route template."""
    route = getattr(request.scope.get("route"), "path", request.url.path)
    return Audit(store, user, route, reason)


AuditDep = Annotated[Audit, Depends(get_audit)]
