"""What the operator who deploys and runs safetrail meets: bad settings, a second process on the
same data directory or port, stop signals, the server's log, and ``/healthz`` when storage
falls behind or the TTL lives on a cluster's ``_local`` tables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ingest.schema import TimelineEvent
from projectors import clients
from projectors.retention import RetentionPolicy, TtlStatus
from projectors.store import Store
from query_api.app import create_app
from query_api.routes import health
from safetrail import cli_demo
from safetrail.cli import app
from tests.api.conftest import RAW_EMAIL, SERVICE, SUPPORT, api_settings, recent
from tests.api.conftest import signup_events as seed
from tests.api.test_cli_serve import ENV, wait_healthy
from tests.store_fixtures import open_store

SECRET_TOKEN = "tok-live-7f3a9c2e51d04b68"
KEY = "operator-review-hmac-key-93be"


def _run(args: list[str], **env: str | None) -> Any:
    return CliRunner().invoke(app, args, env={**ENV, **env})


# --- settings ---------------------------------------------------------------------------


def test_when_a_token_has_an_unknown_role_then_the_error_names_the_variable_not_the_token(
    tmp_path: Path,
) -> None:
    tokens = json.dumps({SECRET_TOKEN: {"name": "ana", "role": "superuser"}})
    result = _run(["migrate", "--data-dir", str(tmp_path)], SAFETRAIL_API_TOKENS=tokens)
    assert result.exit_code == 2
    assert "configuration error: SAFETRAIL_API_TOKENS" in result.output
    assert "role" in result.output
    assert SECRET_TOKEN not in result.output and SECRET_TOKEN[:8] not in result.output


def test_when_a_number_is_out_of_range_then_the_error_names_the_environment_variable(
    tmp_path: Path,
) -> None:
    result = _run(["migrate", "--data-dir", str(tmp_path)], SAFETRAIL_RETENTION_DAYS="0")
    assert result.exit_code == 2
    assert "configuration error: SAFETRAIL_RETENTION_DAYS: " in result.output


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SAFETRAIL_KAFKA_PORT", "-5"),
        ("SAFETRAIL_TOPIC_RAW", ""),
        ("SAFETRAIL_TOPIC_DLQ", "dead letters"),
        ("SAFETRAIL_CONSUMER_GROUP", ""),
    ],
)
def test_when_a_kafka_setting_is_unusable_then_startup_names_it(
    tmp_path: Path, variable: str, value: str
) -> None:
    # Was accepted, to fail at the first produce or consume.
    result = _run(["migrate", "--data-dir", str(tmp_path)], **{variable: value})
    assert result.exit_code == 2
    assert f"configuration error: {variable}: " in result.output


def test_when_the_clickhouse_url_is_https_then_the_client_uses_tls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # clickhouse-connect ignores a DSN's scheme: https:// went as plain HTTP to port 8123.
    seen: dict[str, Any] = {}
    monkeypatch.setattr(
        "projectors.clients.clickhouse_connect.get_client", lambda **kwargs: seen.update(kwargs)
    )
    clients.connect("https://bob:pw@ch.internal:8443/safetrail")
    assert seen["interface"] == "https"
    clients.connect("http://ch.internal:8123/safetrail")
    assert seen["interface"] == "http"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SAFETRAIL_API_TOKENS", '{"' + SECRET_TOKEN + '": {"name": "ana", "role": "support"'),
        ("SAFETRAIL_HMAC_PREVIOUS_KEYS", SECRET_TOKEN),
    ],
)
def test_when_a_json_variable_is_not_json_then_startup_says_which_without_the_value(
    tmp_path: Path, variable: str, value: str
) -> None:
    result = _run(["migrate", "--data-dir", str(tmp_path)], **{variable: value})
    assert result.exit_code == 2, result.output
    assert f"configuration error: {variable}: not valid JSON" in result.output
    assert SECRET_TOKEN not in result.output


@pytest.mark.parametrize("url", ["notaurl", "clickhouse://bob:pw-9d8e7f@ch.internal/db"])
def test_when_the_clickhouse_url_is_not_a_server_url_then_startup_refuses_it(
    tmp_path: Path, url: str
) -> None:
    # Before: anything without http(s):// silently went to localhost:8123.
    result = _run(["migrate", "--data-dir", str(tmp_path)], SAFETRAIL_CLICKHOUSE_URL=url)
    assert result.exit_code == 2, result.output
    assert "configuration error: SAFETRAIL_CLICKHOUSE_URL: expected http(s)://" in result.output
    assert "pw-9d8e7f" not in result.output


def test_when_the_rules_path_is_missing_then_serve_refuses_with_a_message(tmp_path: Path) -> None:
    missing = tmp_path / "no-rules"
    result = _run(
        ["serve", "--port", "1", "--data-dir", str(tmp_path)], SAFETRAIL_RULES_PATH=str(missing)
    )
    assert result.exit_code == 2, result.output
    assert f"configuration error: SAFETRAIL_RULES_PATH: {missing}" in result.output


def test_when_the_demo_meets_bad_settings_then_it_refuses_without_echoing_keys_or_tokens(
    tmp_path: Path,
) -> None:
    tokens = json.dumps({SECRET_TOKEN: {"name": "ana", "role": "support"}})
    result = _run(
        ["demo", "--port", "1", "--data-dir", str(tmp_path)],
        SAFETRAIL_HMAC_KEY=KEY,
        SAFETRAIL_API_TOKENS=tokens,
        SAFETRAIL_HMAC_PREVIOUS_KEYS='["short"]',
    )
    assert result.exit_code == 2, result.output
    assert "configuration error: SAFETRAIL_HMAC_PREVIOUS_KEYS" in result.output
    assert SECRET_TOKEN[:8] not in result.output and KEY[:8] not in result.output


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("serve", ["--port", "70000"]),
        ("serve", ["--port", "0"]),
        ("demo", ["--port", "70000"]),
        ("demo", ["--customers", "-3"]),
        ("demo", ["--days", "0"]),
    ],
)
def test_when_an_option_is_out_of_range_then_it_is_refused_before_anything_starts(
    command: str, args: list[str]
) -> None:
    # Parsed only: before, `serve --port 70000` listened on 4464 and said 70000.
    group = typer.main.get_command(app)
    assert hasattr(group, "commands")
    with pytest.raises(Exception, match="Invalid value|range|less than|greater than"):
        group.commands[command].make_context(command, args)


# --- the running server -----------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SAFETRAIL_")}
    return {**clean, **{k: v for k, v in ENV.items() if v is not None}}


def _safetrail(*args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    out = log.open("wb") if log is not None else subprocess.PIPE
    return subprocess.Popen(
        [sys.executable, "-m", "safetrail.cli", *args],
        env=_env(),
        stdout=out,
        stderr=subprocess.STDOUT,
    )


@dataclass
class Served:
    base: str
    data_dir: Path
    log: Path
    proc: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``safetrail serve`` in its own process; the module's last test stops it with SIGTERM."""
    data_dir = tmp_path_factory.mktemp("operator")
    log = data_dir.parent / f"{data_dir.name}.log"
    port = _free_port()
    proc = _safetrail("serve", "--port", str(port), "--data-dir", str(data_dir), log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, base, log)
        yield Served(base, data_dir, log, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_when_a_second_process_opens_a_served_data_dir_then_it_says_so_and_the_first_serves_on(
    server: Served,
) -> None:
    for args in (["migrate"], ["serve", "--port", str(_free_port())]):
        proc = _safetrail(*args, "--data-dir", str(server.data_dir))
        out, _ = proc.communicate(timeout=120)
        text = out.decode()
        assert proc.returncode == 2, text
        assert f"data directory {server.data_dir} is in use by another safetrail process" in text
        assert f"(process {server.proc.pid})" in text
        assert "Traceback" not in text
    assert httpx.get(f"{server.base}/healthz", timeout=10).status_code == 200


def test_when_the_port_is_taken_then_a_second_serve_exits_non_zero(
    server: Served, tmp_path: Path
) -> None:
    port = server.base.rsplit(":", 1)[1]
    proc = _safetrail("serve", "--port", port, "--data-dir", str(tmp_path))
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode not in (0, None)
    assert "address already in use" in out.decode()


def test_when_sigterm_stops_serve_then_it_exits_0_with_every_event_stored_and_a_clean_log(
    server: Served,
) -> None:
    base = server.base
    events = seed("tr_opreview", "48700", "job_opreview", recent())
    auth = {"Authorization": f"Bearer {SERVICE}", "Content-Type": "application/json"}
    posted = httpx.post(
        f"{base}/v1/events", content=orjson.dumps(events, default=str), headers=auth, timeout=30
    )
    assert posted.status_code == 202 and posted.json()["accepted"] == len(events)
    # Typed into URLs: an email as a trace ID, a token in the query string.
    read = {"Authorization": f"Bearer {SUPPORT}"}
    httpx.get(f"{base}/v1/traces/{RAW_EMAIL}?token={SECRET_TOKEN}", headers=read, timeout=30)
    httpx.get(f"{base}/v1/customers/48700/timeline?since={RAW_EMAIL}", headers=read, timeout=30)

    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=60) == 0  # was -15: uvicorn re-raised the signal

    text = server.log.read_text()
    assert RAW_EMAIL not in text and SECRET_TOKEN not in text and "%40" not in text
    entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    access = [e for e in entries if e["logger"] == "safetrail.access"]
    routes = [(e["method"], e["route"], e["status"]) for e in access]
    assert ("GET", "/v1/traces/{trace_id}", 422) in routes
    assert ("POST", "/v1/events", 202) in routes
    assert "Finished server process" in entries[-1]["message"]

    url = f"chdb://{(server.data_dir / 'chdb').resolve()}"
    store = Store.open(url, RetentionPolicy())
    try:
        assert len(store.trace_events("tr_opreview")) == len(events)
    finally:
        store.close()


# --- the demo ---------------------------------------------------------------------------


class _Healthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # bind fails
def test_when_the_demo_port_is_taken_by_a_healthy_server_then_the_demo_does_not_mistake_it(
    tmp_path: Path,
) -> None:
    other = ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    settings = api_settings(tmp_path, demo=True, hmac_key="", api_tokens={})
    try:
        with pytest.raises(RuntimeError, match="did not start"):
            server, thread = cli_demo.start_server(settings, "127.0.0.1", other.server_port)
            server.should_exit = True  # reached only by the old check: stop what it started
            thread.join(timeout=30)
    finally:
        other.shutdown()
        other.server_close()


# --- health -----------------------------------------------------------------------------


class _FailingWrites:
    """A real store whose timeline inserts fail (disk full, a server that stopped taking
    writes), while it still answers queries."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def insert_timeline(self, events: Sequence[TimelineEvent], **kw: Any) -> None:
        raise ConnectionError("ClickHouse: Code: 243. NOT_ENOUGH_SPACE (injected)")


def test_when_accepted_events_cannot_be_stored_then_health_says_storage_is_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "JOURNAL_STALL_SECONDS", 0.5)
    real = open_store(tmp_path)
    try:
        flaky = _FailingWrites(real)
        app_ = create_app(api_settings(tmp_path / "api"), store=flaky)  # type: ignore[arg-type]
        headers = {"Authorization": f"Bearer {SERVICE}", "Content-Type": "application/json"}
        with TestClient(app_) as client:
            assert client.get("/healthz").status_code == 200
            events = seed("tr_behind", "48701", "job_behind", recent())
            posted = client.post(
                "/v1/events", content=orjson.dumps(events, default=str), headers=headers
            )
            assert posted.status_code == 202  # journaled: answered, not yet stored
            client.get("/healthz")
            time.sleep(1.0)
            behind = client.get("/healthz")
        assert behind.status_code == 503, behind.text
        assert (behind.json()["status"], behind.json()["storage"]) == ("degraded", "behind")
    finally:
        real.close()


class _ClusterTables:
    """A store laid out on a cluster: the TTL is on the ``_local`` tables, the plain names are
    Distributed tables without one (modelled on the real store's answer)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def migrate(self, *, cluster: str | None = None, offline: bool | None = None) -> Any:
        return self._store.migrate()  # the chDB store underneath has no cluster

    def ttl_status(
        self, policy: RetentionPolicy | None = None, *, cluster: bool = False
    ) -> list[TtlStatus]:
        statuses = self._store.ttl_status(policy)
        if cluster:
            return statuses
        return [TtlStatus(s.table, s.expected_days, None) for s in statuses]


def test_when_the_store_is_a_cluster_then_health_reads_the_ttl_where_it_is_in_force(
    tmp_path: Path,
) -> None:
    real = open_store(tmp_path)
    try:
        settings = api_settings(
            tmp_path / "api",
            clickhouse_url="http://127.0.0.1:9/safetrail",  # a server's (the store is given)
            clickhouse_cluster="prod_cluster",
        )
        app_ = create_app(settings, store=_ClusterTables(real))  # type: ignore[arg-type]
        with TestClient(app_) as client:
            response = client.get("/healthz")
        assert response.status_code == 200, response.text
        assert response.json()["ttl_ok"] is True
    finally:
        real.close()


class _Migrated(Exception):
    pass


class _ClusterStore:
    """Records the cluster a command migrates with, then stops it."""

    seen: list[str | None] = []

    def migrate(self, *, cluster: str | None = None, offline: bool | None = None) -> None:
        self.seen.append(cluster)
        raise _Migrated

    def close(self) -> None:
        pass


def test_when_the_store_is_a_cluster_then_serve_and_the_engineers_cli_migrate_it_as_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the cluster, every start would try to set a TTL on the Distributed tables.
    from safetrail import cli_engineers

    _ClusterStore.seen = []
    settings = api_settings(tmp_path).model_copy(
        update={"clickhouse_url": "http://127.0.0.1:9/safetrail", "clickhouse_cluster": "prod"}
    )
    monkeypatch.setattr("query_api.app.Store.open", lambda *_: _ClusterStore())
    with pytest.raises(_Migrated), TestClient(create_app(settings)):
        pass
    with pytest.raises(_Migrated), cli_engineers._open_store(settings):
        pass
    assert _ClusterStore.seen == ["prod", "prod"]
    assert settings.model_copy(update={"clickhouse_url": None}).store_cluster is None


@pytest.mark.parametrize(
    "args",
    [
        ["audit", "verify"],
        ["dead-letters", "list"],
        ["replay", "--from", "-1h", "--to", "now", "--reason", "INC-7", "--dry-run"],
        ["project"],
        ["process"],
        ["rules", "test", "/dev/null"],
    ],
)
def test_when_any_command_meets_a_bad_setting_then_it_names_it_without_the_value(
    tmp_path: Path, args: list[str]
) -> None:
    # These built Settings directly: a pydantic traceback, exit 1, the value in it.
    tokens = json.dumps({SECRET_TOKEN: {"name": "ana", "role": "superuser"}})
    result = _run(
        args,
        SAFETRAIL_DATA_DIR=str(tmp_path),
        SAFETRAIL_API_TOKENS=tokens,
        SAFETRAIL_KAFKA_BOOTSTRAP="127.0.0.1:9",
    )
    assert result.exit_code == 2, result.output
    assert "configuration error: SAFETRAIL_API_TOKENS" in result.output
    assert SECRET_TOKEN not in result.output and "Traceback" not in result.output


def test_when_rules_check_runs_without_a_path_then_it_checks_the_configured_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It checked the packaged rules and said "ok" while every other command loaded the team's
    # own (SAFETRAIL_RULES_PATH), broken ones.
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yaml").write_text(
        "kind: redaction\ntypes:\n  x.y:\n    label: X\n    lane: nowhere\n", encoding="utf-8"
    )
    monkeypatch.setenv("SAFETRAIL_RULES_PATH", str(rules))
    result = CliRunner().invoke(app, ["rules", "check"])
    assert result.exit_code == 1 and "a.yaml: rule 'x.y': lane:" in result.stderr
    monkeypatch.delenv("SAFETRAIL_RULES_PATH")
    assert CliRunner().invoke(app, ["rules", "check"]).exit_code == 0  # the packaged rules


def test_when_settings_are_printed_then_no_token_shows() -> None:
    # The tokens are the keys of SAFETRAIL_API_TOKENS; repr() (a debugger, an error report)
    # printed them while the HMAC keys showed as '**********'.
    settings = api_settings(Path("/nonexistent"))
    shown = repr(settings) + str(settings)
    assert settings.api_tokens and not any(token in shown for token in settings.api_tokens)
