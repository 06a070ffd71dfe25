"""Browser test fixtures: a real server in its own process, loaded through the real collector,
and Debian's Chromium driven by Playwright.

The server runs as a subprocess (not a thread) for two reasons: its whole output, uvicorn's access
log included, is captured to a file the canary tests read; and chDB allows one engine per
process, so the server never competes with other tests for it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from ingest.http_sink import HttpSink
from ingest.sdk import Emitter
from projectors.retention import RetentionPolicy
from safetrail.demo_traffic import DemoTraffic, generate
from tests.browser import canary

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
SUPPORT_TOKEN = "demo-support-token"
ADMIN_TOKEN = "demo-admin-token"
SERVICE_TOKEN = "demo-service-token"
# A second support user only the rate-limit test uses, so its lookups never starve the others.
LIMITED_TOKEN = "browser-test-limited-token"
LOOKUPS_PER_MINUTE = 5
STUCK_AFTER_MINUTES = 30

_SERVER = """
import logging, sys
import uvicorn
from query_api.app import create_app
from safetrail.settings import Settings

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
uvicorn.run(create_app(Settings()), host="127.0.0.1", port=int(sys.argv[1]), log_level="info")
"""


@dataclass
class SupportServer:
    """A running server with known data: the seed case plus seeded demo traffic."""

    base_url: str
    log_path: Path
    traffic: DemoTraffic
    loaded_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)

    def logs(self) -> str:
        """Everything the server process has written so far (stdout and stderr)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def api(self, path: str, token: str = SUPPORT_TOKEN) -> httpx.Response:
        """GET a JSON API route with a bearer token."""
        return httpx.get(
            self.base_url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(base_url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text()[-4000:]}")
        try:
            if httpx.get(base_url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not healthy in 90 s:\n{log_path.read_text()[-4000:]}")


def _load(base_url: str, events: list[dict[str, Any]]) -> HttpSink:
    sink = HttpSink(base_url, SERVICE_TOKEN, batch_size=500)
    emitters: dict[str, Emitter] = {}
    for event in events:
        kwargs = dict(event)
        source = kwargs.pop("source")
        emitter = emitters.setdefault(source, Emitter(sink, source=source))
        emitter.emit(kwargs.pop("type"), **kwargs)
    sink.flush(timeout=120)
    return sink


@pytest.fixture(scope="session")
def support_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SupportServer]:
    """Start the API on a free 127.0.0.1 port with demo settings and load known traffic."""
    data_dir = tmp_path_factory.mktemp("support-data")
    log_path = data_dir / "server.log"
    port = _free_port()
    env = {
        **os.environ,
        "SAFETRAIL_DEMO": "1",
        "SAFETRAIL_DATA_DIR": str(data_dir),
        "SAFETRAIL_LOOKUPS_PER_MINUTE": str(LOOKUPS_PER_MINUTE),
        "SAFETRAIL_STUCK_AFTER_MINUTES": str(STUCK_AFTER_MINUTES),
        "SAFETRAIL_API_TOKENS": json.dumps(
            {LIMITED_TOKEN: {"name": "rita.limited", "role": "support"}}
        ),
    }
    env.pop("SAFETRAIL_CLICKHOUSE_URL", None)
    env.pop("SAFETRAIL_KAFKA_BOOTSTRAP", None)
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(port)],
            cwd=data_dir,  # keeps any `.env` in the repo from changing the test settings
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base_url, proc, log_path)
        now = datetime.now(UTC).replace(microsecond=0)
        traffic = generate(customers=40, days=20, seed=11, now=now)
        # The demo's trace already past retention is stored directly by `safetrail demo`
        # (`store_aged`); through the collector it would be rejected with that reason.
        kept = now - timedelta(days=RetentionPolicy().retention_days)
        shown = [e for e in traffic.events if e["occurred_at"] >= kept]
        sink = _load(base_url, [*shown, *canary.seed_case(now)])
        assert not sink.rejected, sink.rejected[:3]
        yield SupportServer(base_url=base_url, log_path=log_path, traffic=traffic, loaded_at=now)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# Package scope: Playwright's sync API keeps an event loop running in the main thread while it
# is open, which would break `asyncio.run` in the test packages collected after this one.
@pytest.fixture(scope="package")
def playwright_instance() -> Iterator[Playwright]:
    """One Playwright driver for the browser tests."""
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    """Debian's headless Chromium (Playwright cannot download browsers here); no sandbox as root."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium`")
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
    )
    yield browser
    browser.close()


def _new_context(browser: Browser, server: SupportServer) -> BrowserContext:
    ctx = browser.new_context(base_url=server.base_url, viewport={"width": 1280, "height": 900})
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base_url)
    ctx.set_default_timeout(15_000)
    return ctx


@pytest.fixture
def context(browser: Browser, support_server: SupportServer) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) that may use the clipboard on the test server."""
    ctx = _new_context(browser, support_server)
    yield ctx
    ctx.close()


def sign_in(page: Page, token: str = SUPPORT_TOKEN) -> None:
    """Sign in through the login form, as a support agent would."""
    page.goto("/support/login")
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/support")


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A signed-in support agent's tab."""
    tab = context.new_page()
    sign_in(tab)
    return tab


@pytest.fixture
def admin_page(browser: Browser, support_server: SupportServer) -> Iterator[Page]:
    """A signed-in admin's tab, in a browser profile of its own."""
    ctx = _new_context(browser, support_server)
    tab = ctx.new_page()
    sign_in(tab, ADMIN_TOKEN)
    yield tab
    ctx.close()
