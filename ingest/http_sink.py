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


MAX_REJECTED_KEPT = 1000


def _retry_after(value: str | None) -> float:
    """Seconds a ``Retry-After`` header asks to wait (0 when absent or a date), at most 30."""
    try:
        return min(max(float(value or 0), 0.0), 30.0)
    except ValueError:
        return 0.0


class HttpSink:
    """Buffers events and posts them in batches; the collector answers after they are durable.

    Retries connection errors, timeouts and 5xx/429 answers with backoff until ``flush``'s
    timeout, keeping the events buffered; a full buffer raises ``BufferFullError`` instead of
    dropping. Each event is serialised by ``send``, so one that is not JSON (a ``Decimal``, a
    ``set``) fails the call that emits it instead of every later flush. A batch the collector
    finds too large (413) or unreadable (400) is split until the event at fault stands alone;
    that event is moved to ``refused`` with the answer (nothing else is held up behind it) and
    ``flush`` raises ``DeliveryError`` once the rest is delivered. Events the collector rejects
    (bad input) are kept server-side with a reason; their results are logged as warnings and
    the latest ``MAX_REJECTED_KEPT`` collected in ``rejected`` (``rejected_total`` counts them
    all) so the service can see them too. A ``Retry-After`` on 429/503 sets the next wait.
    Safe to use from many threads.
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
        self._buffer: list[bytes] = []
        self._lock = threading.Lock()
        # One flush at a time: two would post the same head of the buffer and then each
        # delete a batch from it, dropping events nobody sent.
        self._flushing = threading.Lock()
        self.accepted = 0
        self.rejected: list[dict[str, Any]] = []  # the latest MAX_REJECTED_KEPT
        self.rejected_total = 0
        # (event as JSON, the collector's answer) for events the collector would not take.
        self.refused: list[tuple[bytes, str]] = []

    def send(self, event: Mapping[str, Any]) -> None:
        """Buffer one event; posts a batch when the batch size is reached.

        Raises ``TypeError`` (nothing buffered) when the event cannot be serialised as JSON.
        """
        value = orjson.dumps(event)
        with self._lock:
            if len(self._buffer) >= self.max_buffer:
                raise BufferFullError(
                    f"{len(self._buffer)} events buffered and the collector at {self.url} "
                    "is not taking them; call flush() and check the collector"
                )
            self._buffer.append(value)
            full = len(self._buffer) >= self.batch_size
        if full:
            self.flush()

    def flush(self, timeout: float = 30.0) -> None:
        """Post every buffered event; raise ``DeliveryError`` if the collector stays unreachable
        (the events stay buffered) or refused some events (they are kept in ``refused``)."""
        deadline = time.monotonic() + timeout
        refused: list[tuple[bytes, str]] = []
        with self._flushing:
            while True:
                with self._lock:
                    batch = self._buffer[: self.batch_size]
                if not batch:
                    break
                refused_now = self._post(batch, deadline)
                with self._lock:
                    del self._buffer[: len(batch)]
                    self.refused.extend(refused_now)
                refused += refused_now
        if refused:
            raise DeliveryError(
                f"the collector refused {len(refused)} events ({refused[0][1]}); they are kept "
                "in HttpSink.refused"
            )

    def _post(self, batch: list[bytes], deadline: float) -> list[tuple[bytes, str]]:
        """Deliver ``batch``; return the events the collector refuses even alone."""
        body = b"[" + b",".join(batch) + b"]"
        delay = 0.1
        while True:
            # No single attempt outlasts flush's timeout (a hung collector would otherwise
            # hold flush, and a service's shutdown, for the client's whole timeout).
            remaining = max(0.1, deadline - time.monotonic())
            try:
                resp = self._client.post(
                    self.url, content=body, headers=self._headers, timeout=remaining
                )
            except httpx.TimeoutException as exc:
                problem = f"collector did not answer in time: {exc}"
            except httpx.TransportError as exc:
                problem = f"collector unreachable: {exc}"
            else:
                if resp.status_code == 202:
                    self._record(resp.json())
                    return []
                if resp.status_code in (400, 413):
                    # The body as a whole (its size, its nesting): split it until the event
                    # at fault stands alone, so the others are not held up behind it.
                    answer = f"collector refused ({resp.status_code}): {resp.text[:300]}"
                    if len(batch) == 1:
                        log.warning("%s; event kept in HttpSink.refused", answer)
                        return [(batch[0], answer)]
                    half = len(batch) // 2
                    return self._post(batch[:half], deadline) + self._post(batch[half:], deadline)
                if resp.status_code < 500 and resp.status_code != 429:
                    raise DeliveryError(
                        f"collector refused the batch ({resp.status_code}): {resp.text[:300]}"
                    )
                problem = f"collector answered {resp.status_code}"
                # A busy or catching-up collector says when to come back (429, 503).
                delay = max(delay, _retry_after(resp.headers.get("Retry-After")))
            if time.monotonic() + delay > deadline:
                raise DeliveryError(f"{problem}; {len(batch)} events still buffered")
            log.warning("%s; retrying in %.1fs", problem, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _record(self, answer: dict[str, Any]) -> None:
        rejected = [r for r in answer.get("results", []) if r.get("status") == "rejected"]
        for result in rejected:
            log.warning(
                "collector rejected event %s: %s", result.get("event_id"), result.get("reason")
            )
        with self._lock:
            self.accepted += int(answer.get("accepted", 0))
            self.rejected_total += len(rejected)
            self.rejected.extend(rejected)
            # A long-running service keeps the latest only (each was logged when it came).
            del self.rejected[:-MAX_REJECTED_KEPT]

    def close(self) -> None:
        """Flush what is buffered and close the HTTP client."""
        try:
            self.flush()
        finally:
            self._client.close()
