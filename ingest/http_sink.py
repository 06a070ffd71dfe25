"""SDK sink that posts batches of raw events to the collector's ``POST /v1/events``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from ingest.sdk import BufferFullError, DeliveryError

log = logging.getLogger(__name__)


class HttpSink:
    """Buffers events and posts them in batches; the collector answers after they are durable.

    Retries connection errors and 5xx answers with backoff until ``flush``'s timeout, keeping
    the events buffered; a full buffer raises ``BufferFullError`` instead of dropping. Events
    the collector rejects (bad input) are kept server-side with a reason; their results are
    collected in ``rejected`` so the service can see them too.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        batch_size: int = 500,
        max_buffer: int = 100_000,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/v1/events"
        self.batch_size = batch_size
        self.max_buffer = max_buffer
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._client = client or httpx.Client(timeout=30.0)
        self._buffer: list[Mapping[str, Any]] = []
        self._lock = threading.Lock()
        self.accepted = 0
        self.rejected: list[dict[str, Any]] = []

    def send(self, event: Mapping[str, Any]) -> None:
        """Buffer one event; posts a batch when the batch size is reached."""
        with self._lock:
            if len(self._buffer) >= self.max_buffer:
                raise BufferFullError(
                    f"{len(self._buffer)} events buffered and the collector at {self.url} "
                    "is not taking them; call flush() and check the collector"
                )
            self._buffer.append(event)
            full = len(self._buffer) >= self.batch_size
        if full:
            self.flush()

    def flush(self, timeout: float = 30.0) -> None:
        """Post every buffered event; raise ``DeliveryError`` if the collector stays unreachable."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                batch = self._buffer[: self.batch_size]
            if not batch:
                return
            self._post(batch, deadline)
            with self._lock:
                del self._buffer[: len(batch)]

    def _post(self, batch: list[Mapping[str, Any]], deadline: float) -> None:
        body = orjson.dumps(batch)
        delay = 0.1
        while True:
            try:
                resp = self._client.post(self.url, content=body, headers=self._headers)
            except httpx.TransportError as exc:
                problem = f"collector unreachable: {exc}"
            else:
                if resp.status_code == 202:
                    self._record(resp.json())
                    return
                if resp.status_code < 500 and resp.status_code != 429:
                    raise DeliveryError(
                        f"collector refused the batch ({resp.status_code}): {resp.text[:300]}"
                    )
                problem = f"collector answered {resp.status_code}"
            if time.monotonic() + delay > deadline:
                raise DeliveryError(f"{problem}; {len(batch)} events still buffered")
            log.warning("%s; retrying in %.1fs", problem, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _record(self, answer: dict[str, Any]) -> None:
        self.accepted += int(answer.get("accepted", 0))
        for result in answer.get("results", []):
            if result.get("status") == "rejected":
                self.rejected.append(result)

    def close(self) -> None:
        """Flush what is buffered and close the HTTP client."""
        try:
            self.flush()
        finally:
            self._client.close()
