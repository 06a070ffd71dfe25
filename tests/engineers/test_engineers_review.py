"""Review of the engineers' route as its users would probe it: raw retention, reasons, IDs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ingest.schema import RawEvent
from projectors.rows import RAW_COLUMNS, DeadLetter
from projectors.store import Store
from query_api.pages_auth import SESSION_COOKIE
from safetrail.cli import app as cli
from tests.api.conftest import ENGINEER, HMAC_KEY, RAW_EMAIL, SERVICE, recent, signup_events
from tests.engineers.helpers import app_client, auth, post_json, redactor, stored_rows

TRACE = "tr_review001"
EXPIRED, KEPT = "tr_review_expired", "tr_review_kept"
CARD = "4111111111111111"
RANGE = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z", "dry_run": True}


@pytest.fixture(scope="module")
def client(timeline_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app with a generous raw-read budget and one trace ingested."""
    tmp = tmp_path_factory.mktemp("review")
    with app_client(timeline_store, tmp, redactor(), raw_reads_per_minute=1000) as c:
        body = orjson.dumps(signup_events(TRACE, "48291", "job_review", recent(20)))
        headers = {**auth(SERVICE), "Content-Type": "application/json"}
        assert c.post("/v1/events", content=body, headers=headers).status_code == 202
        yield c


def _sign_in(client: TestClient, token: str) -> None:
    cookie = client.app.state.support_pages.signer.issue(token)  # type: ignore[attr-defined]
    assert cookie is not None
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, cookie, path="/support")


def _logged(store: Store, needle: str) -> list[object]:
    """Access-log entries whose reason, record or details contain ``needle``."""
    return stored_rows(
        store,
        "SELECT reason, record_id FROM access_log WHERE position(ifNull(reason, ''), {n:String}) "
        "> 0 OR position(record_id, {n:String}) > 0 OR position(details, {n:String}) > 0",
        {"n": needle},
    )


def test_when_raw_rows_are_past_raw_retention_but_not_yet_dropped_then_no_route_shows_them(
    client: TestClient, timeline_store: Store
) -> None:
    # TTL drops a day's partition only once its newest row expired: one part holding a row
    # received just past retention and one just within it stays on disk as it is.
    now = datetime.now(UTC)
    cutoff = now - timedelta(days=14)
    early, late = cutoff - timedelta(minutes=5), cutoff + timedelta(minutes=5)
    if early.date() != late.date():
        early, late = (
            datetime.combine(cutoff.date(), time(0, 0, 1), tzinfo=UTC),
            datetime.combine(cutoff.date(), time(23, 59, 59), tzinfo=UTC),
        )
        if not early < cutoff < late:
            pytest.skip("too close to midnight UTC to put both rows in one day's partition")
    events = [
        signup_events(trace, "48291", "job_x", at, email_job=False)[0]
        for trace, at in ((EXPIRED, early), (KEPT, late))
    ]
    raws = [RawEvent.model_validate(e).with_event_id() for e in events]
    columns = [
        [r.event_id for r in raws],
        [r.trace_id for r in raws],
        [r.type for r in raws],
        [r.occurred_at for r in raws],
        [early, late],
        ["http", "http"],
        [orjson.dumps(e, default=str) for e in events],
    ]
    timeline_store._insert("raw_events", columns, RAW_COLUMNS)
    old_letter = DeadLetter(reason="old", payload=b'{"expired": true}', received_at=early)
    new_letter = DeadLetter(reason="new", payload=b'{"kept": true}', received_at=late)
    timeline_store.insert_dead_letters([old_letter, new_letter])
    on_disk = stored_rows(
        timeline_store, "SELECT count() FROM raw_events WHERE trace_id = {t:String}", {"t": EXPIRED}
    )
    assert on_disk == [(1,)]  # still stored: only reads can honour retention exactly

    expired = client.get(f"/v1/raw/traces/{EXPIRED}", headers=auth(reason="INC-5"))
    kept = client.get(f"/v1/raw/traces/{KEPT}", headers=auth(reason="INC-5"))
    assert expired.status_code == 404 and RAW_EMAIL not in expired.text
    assert kept.status_code == 200 and kept.json()["count"] == 1
    _sign_in(client, ENGINEER)
    page = client.get(f"/support/traces/{EXPIRED}/raw", params={"reason": "INC-5"})
    client.cookies.clear()
    assert page.status_code == 200 and RAW_EMAIL not in page.text

    letters = client.get("/v1/dead-letters", params={"status": "all"}, headers=auth(reason="INC-5"))
    ids = {d["dead_letter_id"] for d in letters.json()["data"]}
    assert new_letter.dead_letter_id in ids and old_letter.dead_letter_id not in ids

    replay = post_json(
        client, "/v1/replays", {**RANGE, "trace_id": EXPIRED, "reason": "INC-5"}, auth()
    )
    assert replay.status_code == 200 and replay.json()["read"] == 0


@pytest.mark.parametrize(
    "reason",
    [
        "a",
        "T-1\nactor=ada.admin role=admin",
        "INC-1\r\nrole=admin",
        "INC\x1b[2J-1",
        "INC-1\x00",
        "INC-1\u202egnp.exe",
        "x" * 201,
    ],
)
def test_when_reason_is_unusable_then_every_route_refuses_it_and_logs_nothing(
    client: TestClient, timeline_store: Store, reason: str
) -> None:
    marker = reason.strip()[:40]
    raw = client.get(f"/v1/raw/traces/{TRACE}", params={"reason": reason}, headers=auth())
    assert raw.status_code == 400, raw.text
    assert raw.json()["error"] in ("reason_required", "reason_invalid")
    assert RAW_EMAIL not in raw.text and (len(marker) < 3 or marker not in raw.text)
    letters = client.get("/v1/dead-letters", params={"reason": reason}, headers=auth())
    assert letters.status_code == 400
    replay = post_json(client, "/v1/replays", {**RANGE, "reason": reason}, auth())
    assert replay.status_code == 422, replay.text
    redrive = post_json(
        client, "/v1/dead-letters/redrive", {"reason": reason, "dry_run": True}, auth()
    )
    assert redrive.status_code == 422
    _sign_in(client, ENGINEER)
    page = client.get(f"/support/traces/{TRACE}/raw", params={"reason": reason})
    client.cookies.clear()
    assert page.status_code == 400 and RAW_EMAIL not in page.text
    if len(marker) >= 3:
        assert _logged(timeline_store, marker) == []


def test_when_header_reason_is_utf8_then_logged_as_typed(
    client: TestClient, timeline_store: Store
) -> None:
    typed = "INC-88 Kundin Müller, Rückfrage €"
    headers = {"Authorization": f"Bearer {ENGINEER}", "X-Access-Reason": typed.encode()}
    r = client.get(f"/v1/raw/traces/{TRACE}", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["reason"] == typed
    assert (typed, TRACE) in _logged(timeline_store, "INC-88")


def test_when_a_valid_reason_is_long_then_it_is_logged_whole(
    client: TestClient, timeline_store: Store
) -> None:
    reason = "INC-99 " + "y" * 193  # 200 characters: the most a reason may have
    r = client.get(f"/v1/raw/traces/{TRACE}", headers=auth(reason=reason))
    assert r.status_code == 200 and r.json()["reason"] == reason
    assert (reason, TRACE) in _logged(timeline_store, "INC-99")


def test_when_replay_names_a_secret_as_trace_then_refused_and_neither_echoed_nor_logged(
    client: TestClient, timeline_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = post_json(client, "/v1/replays", {**RANGE, "trace_id": CARD, "reason": "INC-3"}, auth())
    assert r.status_code == 422 and CARD not in r.text
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAFETRAIL_CLICKHOUSE_URL", timeline_store.url)
    monkeypatch.setenv("SAFETRAIL_HMAC_KEY", HMAC_KEY)
    monkeypatch.delenv("SAFETRAIL_KAFKA_BOOTSTRAP", raising=False)
    args = ["replay", "--from", "-1h", "--to", "now", "--reason", "INC-3", "--dry-run"]
    for trace in (CARD, RAW_EMAIL):
        result = CliRunner().invoke(cli, [*args, "--trace", trace])
        assert result.exit_code != 0 and trace not in result.output
    assert _logged(timeline_store, CARD) == [] and _logged(timeline_store, RAW_EMAIL) == []


@pytest.mark.parametrize("key", [RAW_EMAIL, "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "a b"])
def test_when_a_body_carries_an_unexpected_key_then_the_422_does_not_repeat_it(
    client: TestClient, key: str
) -> None:
    body = {**RANGE, "reason": "INC-5", key: 1}
    r = post_json(client, "/v1/replays", body, auth())
    assert r.status_code == 422 and key not in r.text
    assert "body.<unexpected key>" in r.json()["message"]
    # A field the body does name is still named.
    r = post_json(client, "/v1/replays", {**RANGE, "reason": "INC-5", "dry_run": "maybe"}, auth())
    assert r.status_code == 422 and "body.dry_run" in r.json()["message"]


@pytest.mark.parametrize("reason", ["INC-4\nforged line", "x"])
def test_when_cli_reason_is_unusable_then_nothing_runs_or_is_logged(
    timeline_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reason: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAFETRAIL_CLICKHOUSE_URL", timeline_store.url)
    monkeypatch.setenv("SAFETRAIL_HMAC_KEY", HMAC_KEY)
    monkeypatch.delenv("SAFETRAIL_KAFKA_BOOTSTRAP", raising=False)
    before = stored_rows(timeline_store, "SELECT count() FROM access_log")
    replay = ["replay", "--from", "-1h", "--to", "now", "--reason", reason, "--dry-run"]
    redrive = ["dead-letters", "redrive", "--reason", reason, "--dry-run"]
    for args in (replay, redrive):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, result.output  # a bad parameter, before the store opens
    assert stored_rows(timeline_store, "SELECT count() FROM access_log") == before
