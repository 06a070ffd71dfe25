"""Search results kept for a short while, so the search page can answer a POST with a redirect.

Back after opening a result must not ask to send the form again, and what was typed must not go
into a URL (logs and history keep URLs). So the POST keeps the list it found here, under a random
ID bound to the user, and redirects to ``/support/search?r=<id>``. Only the list shown is kept
(customer and trace IDs), never what was typed; it lives in memory and ends with the process.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

RESULT_SECONDS = 10 * 60
MAX_RESULTS = 10_000  # the oldest go first past this, so a busy day cannot grow memory unbounded


@dataclass(frozen=True)
class _Kept:
    user: str
    expires: float
    result: dict[str, Any]


class SearchResults:
    """Results by random ID, each readable only by the user who searched, until it expires."""

    def __init__(self, seconds: float = RESULT_SECONDS, limit: int = MAX_RESULTS) -> None:
        self.seconds, self.limit = seconds, limit
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._lock = threading.Lock()

    def keep(self, user: str, result: dict[str, Any], now: float | None = None) -> str:
        """Keep ``result`` for ``user``; the ID to fetch it with."""
        at = now if now is not None else time.monotonic()
        key = secrets.token_urlsafe(18)
        with self._lock:
            # Insertion order is expiry order: drop the expired (and any over the limit) first.
            while self._kept:
                oldest = next(iter(self._kept.values()))
                if oldest.expires > at and len(self._kept) < self.limit:
                    break
                self._kept.popitem(last=False)
            self._kept[key] = _Kept(user, at + self.seconds, result)
        return key

    def get(self, user: str, key: str, now: float | None = None) -> dict[str, Any] | None:
        """The result kept under ``key`` for ``user``; None if unknown, expired or another's."""
        at = now if now is not None else time.monotonic()
        with self._lock:
            kept = self._kept.get(key)
        if kept is None or kept.user != user or kept.expires <= at:
            return None
        return kept.result
