"""Signing out of the support page ends the session on the server, not only in the browser:
a cookie copied before (a shared machine, a proxy log, a HAR file) is refused afterwards."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from projectors.store import Store
from query_api.app import create_app
from query_api.pages_auth import SESSION_COOKIE
from tests.api.conftest import SUPPORT, api_settings


def test_when_support_signs_out_then_a_copied_session_cookie_is_refused(
    timeline_store: Store, tmp_path: Path
) -> None:
    with TestClient(create_app(api_settings(tmp_path), store=timeline_store)) as client:
        assert client.post("/support/login", data={"token": SUPPORT}).status_code == 200
        copied = client.cookies.get(SESSION_COOKIE, path="/support")
        assert copied
        assert client.get("/support", follow_redirects=False).status_code == 200
        out = client.post("/support/logout", follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"] == "/support/login"

        client.cookies.set(SESSION_COOKIE, copied, path="/support")  # the copy, replayed
        again = client.get("/support", follow_redirects=False)
        assert again.status_code == 303 and again.headers["location"].startswith("/support/login")

        # Signing in again gives a new session that works.
        client.cookies.clear()
        assert client.post("/support/login", data={"token": SUPPORT}).status_code == 200
        assert client.get("/support", follow_redirects=False).status_code == 200
