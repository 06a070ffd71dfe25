"""Rotating the HMAC key: events keep the lookup token of the key they were stored with, and
support still finds their customers by email or phone once the old key is listed in
``SAFETRAIL_HMAC_PREVIOUS_KEYS``; new events get the new key's tokens only."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from projectors.store import Store
from query_api.app import create_app
from safetrail.redactor import build_redactor
from safetrail.settings import Settings
from tests.api.conftest import HMAC_KEY, RAW_EMAIL, SERVICE, SUPPORT, api_settings, recent
from tests.api.conftest import signup_events as seed_case

NEW_KEY = "rotated-hmac-key-7d41c2a9e0"
OTHER_EMAIL = "joao.pereira@proton.me"
OLD_PHONE = "+1 415 555 0167"


def _events(trace_id: str, customer_id: str, email: str) -> list[dict[str, Any]]:
    text = orjson.dumps(
        seed_case(trace_id, customer_id, f"job_{trace_id[3:]}", recent()), default=str
    )
    return list(orjson.loads(text.replace(RAW_EMAIL.encode(), email.encode())))


def _client(store: Store, data_dir: Path, **overrides: Any) -> TestClient:
    return TestClient(create_app(api_settings(data_dir, **overrides), store=store))


def _search(client: TestClient, typed: str) -> str:
    signed_in = client.post("/support/login", data={"token": SUPPORT, "next": "/support"})
    assert signed_in.status_code == 200, signed_in.text
    page = client.post("/support/search", data={"q": typed})
    assert page.status_code == 200, page.text
    return page.text


def _ingest(client: TestClient, events: list[dict[str, Any]]) -> None:
    response = client.post(
        "/v1/events",
        content=orjson.dumps(events),
        headers={"Authorization": f"Bearer {SERVICE}", "Content-Type": "application/json"},
    )
    assert response.status_code == 202 and response.json()["rejected"] == 0, response.text


@pytest.fixture(scope="module")
def rotated(timeline_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """c_before stored under the old key; c_after stored after the rotation to NEW_KEY."""
    with _client(timeline_store, tmp_path_factory.mktemp("before")) as before:
        _ingest(before, _events("tr_keyrot_before", "c_before", RAW_EMAIL))
    with _client(
        timeline_store,
        tmp_path_factory.mktemp("after"),
        hmac_key=NEW_KEY,
        hmac_previous_keys=(HMAC_KEY,),
    ) as after:
        _ingest(after, _events("tr_keyrot_after", "c_after", OTHER_EMAIL))
    yield timeline_store


def test_when_the_old_key_is_listed_then_customers_stored_before_the_rotation_are_found(
    rotated: Store, tmp_path: Path
) -> None:
    with _client(rotated, tmp_path, hmac_key=NEW_KEY, hmac_previous_keys=(HMAC_KEY,)) as client:
        before = _search(client, RAW_EMAIL)
        by_phone = _search(client, OLD_PHONE)
        after = _search(client, OTHER_EMAIL)
    assert "/support/customers/c_before" in before and "c_after" not in before
    assert "/support/customers/c_before" in by_phone
    assert "/support/customers/c_after" in after and "c_before" not in after
    # What was typed is never written back into the page.
    assert RAW_EMAIL not in before and OTHER_EMAIL not in after


def test_when_the_old_key_is_not_listed_then_only_events_stored_under_the_new_key_match(
    rotated: Store, tmp_path: Path
) -> None:
    with _client(rotated, tmp_path, hmac_key=NEW_KEY) as client:
        before = _search(client, RAW_EMAIL)
        after = _search(client, OTHER_EMAIL)
    assert "No customer used the email or phone number you typed" in before
    assert "/support/customers/c_after" in after


def test_when_events_are_stored_after_a_rotation_then_they_carry_the_new_keys_tokens_only(
    rotated: Store,
) -> None:
    new = build_redactor(api_settings(Path("."), hmac_key=NEW_KEY))
    old = build_redactor(api_settings(Path(".")))
    after = rotated.trace_events("tr_keyrot_after")
    before = rotated.trace_events("tr_keyrot_before")
    new_token, old_token = new.lookup_key(OTHER_EMAIL), old.lookup_key(OTHER_EMAIL)
    assert new_token is not None and new_token != old_token
    assert any(new_token in e.lookup_keys for e in after)
    assert not any(old_token in e.lookup_keys for e in after)
    assert any(old.lookup_key(RAW_EMAIL) in e.lookup_keys for e in before)


def test_when_a_redactor_with_retired_keys_is_pickled_then_its_lookups_are_unchanged() -> None:
    redactor = build_redactor(
        api_settings(Path("."), hmac_key=NEW_KEY, hmac_previous_keys=(HMAC_KEY,))
    )
    copy = pickle.loads(pickle.dumps(redactor))  # noqa: S301 - our own object
    assert copy.lookup_keys(RAW_EMAIL) == redactor.lookup_keys(RAW_EMAIL)
    assert len(redactor.lookup_keys(RAW_EMAIL)) == 2
    assert redactor.lookup_keys("not a contact") == []


def test_when_previous_keys_come_from_the_environment_then_they_are_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAFETRAIL_HMAC_KEY", NEW_KEY)
    monkeypatch.setenv("SAFETRAIL_HMAC_PREVIOUS_KEYS", orjson.dumps([HMAC_KEY]).decode())
    settings = Settings(_env_file=None)
    assert settings.previous_hmac_keys == (HMAC_KEY.encode(),)
    assert HMAC_KEY not in repr(settings)  # secrets stay out of logs and reprs


@pytest.mark.parametrize(
    "previous",
    [("changeme",), ("short-key",), (NEW_KEY,)],
    ids=["placeholder", "too-short", "repeats-the-current-key"],
)
def test_when_a_previous_key_is_unusable_then_the_settings_are_refused(
    previous: tuple[str, ...],
) -> None:
    with pytest.raises(ValidationError, match="SAFETRAIL_HMAC_PREVIOUS_KEYS"):
        Settings(_env_file=None, hmac_key=NEW_KEY, hmac_previous_keys=previous)
