"""Shared pieces of the engineers' route tests: apps on a real store, rule versions, queries."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from ingest.schema import RawEvent, TimelineEvent
from projectors.store import Store
from query_api.app import create_app
from redaction_rules.engine import Redactor, load_rules
from tests.api.conftest import ENGINEER, HMAC_KEY, api_settings

PACKAGED_RULES = Path(__file__).resolve().parents[2] / "redaction_rules" / "rules"
OLD_LABEL, NEW_LABEL = "Signup email bounced", "Signup email bounced (hard bounce)"


def rules_v2(tmp_dir: Path) -> Path:
    """The packaged rules with one label changed: a new rules version."""
    target = tmp_dir / "rules_v2"
    shutil.copytree(PACKAGED_RULES, target)
    email = target / "email.yaml"
    text = email.read_text(encoding="utf-8")
    assert f"bounced: {OLD_LABEL}\n" in text
    email.write_text(text.replace(f"bounced: {OLD_LABEL}\n", f"bounced: {NEW_LABEL}\n"))
    return target


def redactor(rules_dir: Path | None = None) -> Redactor:
    """A redactor over ``rules_dir`` (default: the packaged rules) with the test key."""
    return Redactor(load_rules(rules_dir), HMAC_KEY.encode())


class FlakyRedactor(Redactor):
    """A redactor with a bug: it fails on one event type (what a re-drive recovers from)."""

    def __init__(self, rules: Any, key: bytes, broken_type: str) -> None:
        super().__init__(rules, key)
        self.broken_type = broken_type

    def redact(self, raw: RawEvent) -> TimelineEvent:
        """Fail for ``broken_type``, redact everything else."""
        if raw.type == self.broken_type:
            raise RuntimeError("rule bug")
        return super().redact(raw)


@contextmanager
def app_client(
    store: Store, tmp_dir: Path, rules: Redactor, **settings: Any
) -> Iterator[TestClient]:
    """The real app on ``store`` with ``rules`` (the app migrates the store, never closes it)."""
    app = create_app(api_settings(tmp_dir, **settings), store=store, redactor=rules)
    with TestClient(app) as client:
        yield client


def auth(token: str | None = ENGINEER, reason: str | None = None) -> dict[str, str]:
    """Headers with a bearer token and, if given, the access reason."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if reason:
        headers["X-Access-Reason"] = reason
    return headers


def post_json(client: TestClient, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    """POST a JSON body."""
    response: httpx.Response = client.post(path, json=body, headers=headers)
    return response


def stored_rows(store: Store, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
    """Rows of a query straight from the engine (row counts that reads would deduplicate),
    after every access-log entry written so far is stored."""
    store.flush_access()
    return list(store._rows(sql, params or {}))


def at_once(work: Callable[..., object], args: Iterable[tuple[Any, ...]]) -> None:
    """Run ``work(*a)`` for every ``a`` in ``args``, each on its own thread, all at once."""
    threads = [threading.Thread(target=work, args=a) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
