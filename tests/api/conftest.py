"""API test fixtures: the real app on a real engine, driven through HTTP by TestClient.

One app per module shares the module's store. Raw events go through ``POST /v1/events``, so
the real processing step and the packaged redaction rules produce what the reads return.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from ingest.process import Accepted, process
from projectors.store import Store
from query_api.app import create_app
from safetrail.settings import Role, Settings, TokenInfo

HMAC_KEY = "api-tests-hmac-key-0f3b9c"
SERVICE, SUPPORT, ENGINEER, ADMIN = "svc-token", "support-token", "engineer-token", "admin-token"
TOKENS = {
    SERVICE: TokenInfo(name="mail-service", role=Role.SERVICE),
    SUPPORT: TokenInfo(name="ana.support", role=Role.SUPPORT),
    ENGINEER: TokenInfo(name="eli.engineer", role=Role.ENGINEER),
    ADMIN: TokenInfo(name="ada.admin", role=Role.ADMIN),
}
RAW_EMAIL = "maria.santos@gmail.com"


def api_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Non-demo settings with test tokens, immune to the developer's environment."""
    values: dict[str, Any] = {
        "hmac_key": HMAC_KEY,
        "api_tokens": TOKENS,
        "data_dir": data_dir,
        "clickhouse_url": None,
        "kafka_bootstrap": None,
        "demo": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@dataclass
class Api:
    """A running app with helpers that send the right token."""

    client: TestClient
    store: Store
    settings: Settings

    def get(self, path: str, bearer: str | None = SUPPORT, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        response: httpx.Response = self.client.get(path, headers=headers, **kw)
        return response

    def post_events(self, events: list[Any], bearer: str = SERVICE) -> httpx.Response:
        return post_events(self.client, events, bearer)


def post_events(client: TestClient, events: list[Any], bearer: str = SERVICE) -> httpx.Response:
    """``POST /v1/events`` with ``events`` as a JSON array (datetimes in ISO 8601)."""
    response: httpx.Response = client.post(
        "/v1/events",
        content=orjson.dumps(events, default=_iso),
        headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"},
    )
    return response


def store_events(client: TestClient, events: list[Any]) -> None:
    """Send ``events`` as the service; every one must be accepted."""
    stored = post_events(client, events)
    assert stored.status_code == 202 and stored.json()["rejected"] == 0, stored.text


def store_aged(client: TestClient, events: list[Any]) -> None:
    """Store ``events`` as they were stored when received, before they aged past retention.

    The collector refuses an event already older than retention (no read would show it),
    so a timeline that has since aged is written as the collector wrote it then: processed
    by the app's rules, stored straight into the app's store.
    """
    app: Any = client.app
    routed = [
        process(orjson.loads(orjson.dumps(e, default=_iso)), app.state.redactor) for e in events
    ]
    assert all(isinstance(r, Accepted) for r in routed), routed
    accepted = [r for r in routed if isinstance(r, Accepted)]
    app.state.store.insert_timeline([a.timeline for a in accepted])


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


@pytest.fixture(scope="module")
def api(timeline_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The app on the module's store (the app migrates it but does not close it)."""
    settings = api_settings(tmp_path_factory.mktemp("api"))
    with TestClient(create_app(settings, store=timeline_store)) as client:
        yield Api(client, timeline_store, settings)


def signup_events(
    trace_id: str,
    customer_id: str,
    job_id: str,
    at: datetime,
    *,
    email_job: bool = True,
) -> list[dict[str, Any]]:
    """The seed case as services send it: a signup, then an email job that retries once after
    four minutes and finally bounces with SMTP 550."""
    request_id = f"req_{trace_id[3:]}"
    mail = {"to": RAW_EMAIL, "template": "signup_verification", "provider": "postmark"}
    sub = {"customer_id": customer_id, "job_id": job_id}
    events: list[dict[str, Any]] = [
        {
            "event_id": f"{trace_id}_1",
            "trace_id": trace_id,
            "type": "signup.submitted",
            "occurred_at": at,
            "source": "web",
            "actor": "customer",
            "status": "done",
            "subject": {"customer_id": customer_id, "request_id": request_id, "job_id": job_id},
            "data": {
                "email": RAW_EMAIL,
                "name": "Maria Santos",
                "password": "hunter2",
                "phone": "+14155550167",
                "plan": "team",
            },
        },
        {
            "event_id": f"{trace_id}_2",
            "trace_id": trace_id,
            "type": "account.created",
            "occurred_at": at + timedelta(milliseconds=420),
            "source": "api",
            "status": "done",
            "subject": {"customer_id": customer_id, "request_id": request_id},
        },
    ]
    if not email_job:
        return events
    t = at + timedelta(seconds=1)
    events += [
        {
            "event_id": f"{trace_id}_3",
            "trace_id": trace_id,
            "type": "signup_email.queued",
            "occurred_at": t,
            "source": "api",
            "status": "queued",
            "attempt": 0,
            "subject": sub,
            "data": mail,
        },
        {
            "event_id": f"{trace_id}_4",
            "trace_id": trace_id,
            "type": "signup_email.started",
            "occurred_at": t + timedelta(seconds=1),
            "source": "mail-worker",
            "status": "running",
            "attempt": 1,
            "subject": sub,
            "data": mail,
        },
        {
            "event_id": f"{trace_id}_5",
            "trace_id": trace_id,
            "type": "signup_email.retry",
            "occurred_at": t + timedelta(seconds=1, minutes=4),
            "source": "mail-worker",
            "status": "running",
            "attempt": 2,
            "subject": sub,
            "data": mail,
            "error": {"code": "SMTP_421", "message": f"421 try again later for {RAW_EMAIL}"},
        },
        {
            "event_id": f"{trace_id}_6",
            "trace_id": trace_id,
            "type": "signup_email.bounced",
            "occurred_at": t + timedelta(seconds=50, minutes=4),
            "source": "mail-worker",
            "status": "failed",
            "attempt": 2,
            "subject": sub,
            "data": mail,
            "error": {
                "code": "SMTP_550",
                "message": f"550 5.1.1 <{RAW_EMAIL}>: mailbox unavailable",
            },
        },
    ]
    return events


def recovered_signup_events(
    trace_id: str, customer_id: str, job_id: str, at: datetime
) -> list[dict[str, Any]]:
    """The seed case up to its retry (which carried SMTP 421), then the email goes out."""
    events = signup_events(trace_id, customer_id, job_id, at)
    sent = {k: v for k, v in events[5].items() if k != "error"}
    sent.update(event_id=f"{trace_id}_6", type="signup_email.sent", status="done")
    return [*events[:5], sent]


@contextmanager
def support_client(store: Store, data_dir: Path, *posts: list[Any]) -> Iterator[TestClient]:
    """The app on ``store`` after each list in ``posts`` was stored (one request each), with a
    client signed in to the support page as the support user."""
    with TestClient(create_app(api_settings(data_dir), store=store)) as client:
        for events in posts:
            store_events(client, events)
        assert client.post("/support/login", data={"token": SUPPORT}).status_code == 200
        yield client


def raw_event(trace_id: str, n: int, type_: str, at: datetime, **kw: Any) -> dict[str, Any]:
    """One raw event of ``trace_id`` (``event_id`` ``<trace_id>_<n>``); ``kw`` adds or
    overrides fields (``source`` is ``test`` unless given)."""
    return {
        "event_id": f"{trace_id}_{n}",
        "trace_id": trace_id,
        "type": type_,
        "occurred_at": at,
        "source": "test",
        **kw,
    }


def recent(minutes: int = 30) -> datetime:
    """A moment inside retention, whole seconds, in UTC."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes)
